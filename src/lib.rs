//! # wgpu-mlp
//!
//! PyTorch-style multi-layer perceptrons on any GPU through WGSL compute shaders and `wgpu`,
//! checked against an exact CPU reference.
//!
//! - [`Mlp`] stacks [`Linear`] layers (`y = x·Wᵀ + b`, weight `[out, in]` as in PyTorch), each
//!   followed by an [`Activation`].
//! - [`init`] implements every `torch.nn.init` scheme with PyTorch's formulas, and a generator that
//!   reproduces `torch.manual_seed` bit for bit.
//! - [`cpu`] is the reference forward pass (f64 accumulation); the GPU path is checked against it.
#![warn(missing_docs)]

pub mod activation;
pub mod bench;
pub mod cpu;
pub mod cpu_fast;
pub mod data;
mod error;
pub mod gpu;
pub mod init;
pub mod io;
mod layer;
mod matrix;
mod model;
pub mod rng;
pub mod summary;

pub use activation::Activation;
pub use data::DataLoader;
pub use error::{Error, Result};
pub use init::Init;
pub use layer::Linear;
pub use matrix::Matrix;
pub use model::{DEFAULT_SEED, Layer, LayerSpec, Mlp, MlpBuilder};
pub use rng::Generator;

/// The README's Rust examples, compiled and run as doctests so they cannot go stale.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
