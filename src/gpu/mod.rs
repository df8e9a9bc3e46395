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
//!
//! Layout: [`GpuContext`] (`context.rs`) holds the device and the compiled kernels
//! (`kernels/`, one Rust file beside each WGSL); `plan.rs` decides, once per model and without a
//! device, which passes and kernels run; [`GpuMlp`] (`model.rs`) uploads the plan, and
//! `workspace.rs` replays it per batch size; `run.rs` has the entry points (blocking, async,
//! into the application's own encoder).
//!
//! In a browser (`wasm32`, WebGPU) nothing may block: open the device with
//! [`GpuContext::new_async`] (or take the page's with [`GpuContext::from_wgpu`]) and run models
//! with [`GpuMlp::forward_async`] or [`GpuMlp::encode`]; the blocking calls and [`ops`] exist on
//! native targets only.

mod context;
mod device_lock;
mod kernels;
mod model;
// The single-kernel calls block on their readback: native targets only.
#[cfg(not(target_arch = "wasm32"))]
pub mod ops;
mod pack;
mod plan;
#[cfg(not(target_arch = "wasm32"))]
mod poller;
mod run;
mod workspace;

#[cfg(not(target_arch = "wasm32"))]
pub use context::list_adapters;
pub use context::{AdapterSummary, GpuContext, GpuOptions};
pub use kernels::linear::LinearKernel;
pub use model::{GpuMlp, GpuMlpOptions, KernelMode, WeightFormat};
