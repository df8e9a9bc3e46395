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
//!
//! Features: `onnx` (default) loads ONNX files ([`onnx`]); `cli` (default) builds the
//! `wgpu-mlp` command line; `bench` (default) its benchmark harness.
#![deny(missing_docs)]
// docs.rs (`--cfg docsrs`, see Cargo.toml) marks items that need a feature or platform.
#![cfg_attr(docsrs, feature(doc_cfg))]
// A library does not print; the CLI prints through writers that survive a closed stdout/stderr.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod activation;
// The harness behind `wgpu-mlp bench`, public for the binary and the tests only: its types
// change with the command, so it is not part of the API.
#[cfg(all(feature = "bench", not(target_arch = "wasm32")))]
#[doc(hidden)]
pub mod bench;
pub mod chart;
pub mod cpu;
pub mod data;
mod error;
pub mod gpu;
pub mod init;
pub mod io;
mod matrix;
// Memory estimates for the command line's checks; public for the binary and the tests only.
#[doc(hidden)]
pub mod memory;
pub mod model;
#[cfg(feature = "onnx")]
#[cfg_attr(docsrs, doc(cfg(feature = "onnx")))]
pub mod onnx;
pub mod rng;
pub mod summary;
pub mod train;

pub use activation::Activation;
pub use cpu::CpuMlp;
pub use data::DataLoader;
pub use error::{Error, Result};
// Message escaping, shared with the binary; not part of the API.
#[doc(hidden)]
pub use error::escape;
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
