//! The GPU path: WGSL kernels run through wgpu, checked against [`crate::cpu`].
//!
//! ```no_run
//! use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions};
//! use wgpu_mlp::{Activation, Matrix, Mlp};
//!
//! let model = Mlp::builder(3).layer(3, Activation::Sigmoid).layer(2, Activation::Identity).seed(42).build()?;
//! let ctx = GpuContext::new(&GpuOptions::default())?; // hardware first, then lavapipe, then llvmpipe
//! let gpu = GpuMlp::new(&ctx, &model)?;               // weights uploaded once
//! let y = gpu.forward(&Matrix::new(1, 3, vec![1.0, 2.0, 3.0])?)?;
//! assert_eq!(y.shape(), [1, 2]);
//! # Ok::<(), wgpu_mlp::Error>(())
//! ```

mod choice;
mod context;
mod kernels;
mod model;
pub mod ops;
mod pack;

pub use choice::LinearKernel;
pub use context::{AdapterSummary, GpuContext, GpuOptions, list_adapters};
pub use model::{GpuMlp, GpuMlpOptions, KernelMode, WeightFormat};
