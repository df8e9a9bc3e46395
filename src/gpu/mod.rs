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
//! Layout (the map, with training's place in it: docs/KERNELS.md, "The GPU layer in five
//! minutes"): [`GpuContext`] (`context.rs`; the adapter chosen in `adapter.rs`) holds the device
//! and the compiled kernels (`kernels/`, one Rust file per kernel, its WGSL under `shaders/`,
//! each implementing `Kernel`); `plan.rs` decides, once per model and without a device, which
//! passes (`pass.rs`) run on which named tensors (`tensor.rs`); `program.rs` uploads the plan's
//! fixed tensors and pipelines, and `workspace.rs` replays it per batch size; [`GpuMlp`]
//! (`model.rs`) holds it, and `run.rs` has every entry point (blocking, async, into the
//! application's own encoder, resident). [`GpuMlpOptions`] and its vocabulary are in
//! `options.rs`.
//!
//! In a browser (`wasm32`, WebGPU) nothing may block: open the device with
//! [`GpuContext::new_async`] (or take the page's with [`GpuContext::from_wgpu`]) and run models
//! with [`GpuMlp::forward_async`] or [`GpuMlp::encode`]; the blocking calls and [`ops`] exist on
//! native targets only.

mod adapter;
mod context;
mod device_lock;
mod error_scope;
mod kernels;
mod limits;
mod map_state;
mod model;
// The single-kernel calls block on their readback: native targets only.
#[cfg(not(target_arch = "wasm32"))]
pub mod ops;
mod options;
mod pack;
mod pass;
mod plan;
#[cfg(not(target_arch = "wasm32"))]
mod poller;
mod program;
mod readback;
mod run;
mod tensor;
pub(crate) mod train;
mod workspace;

#[cfg(not(target_arch = "wasm32"))]
pub use adapter::list_adapters;
pub use adapter::{AdapterSummary, GpuOptions};
pub use context::GpuContext;
pub use model::GpuMlp;
pub use options::{GpuMlpOptions, KernelMode, LinearKernel, WeightFormat};
pub use train::GpuBatch;
