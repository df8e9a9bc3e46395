//! # wgpu-mlp
//!
//! PyTorch-style multi-layer perceptrons on any GPU through WGSL compute shaders and `wgpu`,
//! checked against an exact CPU reference.
//!
//! - [`Mlp`] is a sequence of [`Module`]s: [`Linear`] layers (`y = x·Wᵀ + b`, weight
//!   `[out, in]` as in PyTorch), [`BatchNorm1d`], [`LayerNorm`], [`Activation`]s, dropout, …
//! - [`init`] implements every `torch.nn.init` scheme with PyTorch's formulas, and a generator that
//!   reproduces `torch.manual_seed` bit for bit.
//! - [`GpuMlp`] runs a model on a GPU ([`GpuContext`]: the device, yours or one it opens);
//!   [`CpuMlp`] is the fast CPU path; [`cpu::forward`] is the reference forward pass (f64
//!   accumulation) both are checked against.
#![warn(missing_docs)]
// A library does not print; the CLI prints through writers that survive a closed stdout/stderr.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod activation;
#[cfg(all(feature = "bench", not(target_arch = "wasm32")))]
pub mod bench;
pub mod cpu;
pub mod data;
mod error;
pub mod gpu;
pub mod init;
pub mod io;
mod matrix;
pub mod memory;
pub mod model;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod rng;
pub mod summary;
pub mod train;

pub use activation::Activation;
pub use cpu::CpuMlp;
pub use data::DataLoader;
pub use error::{Error, Result, escape};
pub use gpu::{GpuContext, GpuMlp, GpuOptions};
pub use init::Init;
pub use matrix::Matrix;
pub use model::{
    Arch, BatchNorm1d, Expr, Layer, LayerNorm, LayerSpec, Linear, Mlp, MlpBuilder, Module, PRelu,
};
pub use rng::{DEFAULT_SEED, Generator};
/// The wgpu this crate is built with: its types appear in the public API
/// ([`GpuContext::from_wgpu`](gpu::GpuContext::from_wgpu), [`GpuMlp::encode`](gpu::GpuMlp::encode)).
pub use wgpu;

/// The README's Rust examples, compiled and run as doctests so they cannot go stale.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
