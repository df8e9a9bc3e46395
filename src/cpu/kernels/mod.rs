//! The fast CPU path's kernels: f32 matrix products competitive with an optimised BLAS, for
//! inference. [`CpuMlp`](super::CpuMlp) runs a model on them.
//!
//! - [`PackedLinear`] packs a [`Linear`](crate::Linear) layer's weight once, at load, into the
//!   panel layout the kernels stream (`pack.rs`), and runs `y = x·Wᵀ + b` as a sweep of register
//!   tiles (`gemm.rs`, `kernel.rs`), split across threads by columns for a few rows and by row
//!   blocks for many (`linear.rs`), calling an epilogue on each block of finished rows while it
//!   is hot in cache.
//! - [`Threads`] is the persistent worker pool it runs on (`pool.rs`).
//! - [`Kernel`] names the instruction set: AVX-512F or AVX2 + FMA intrinsics on x86-64 (picked
//!   at run time), portable Rust everywhere else (`wasm32` included).
//!
//! This is the speed path (f32 accumulation, FMA); [`crate::cpu::forward`] is the exact
//! reference. Design and measurements: `docs/CPU.md`.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod gemm;
mod kernel;
mod linear;
mod pack;
mod pool;
mod portable;

pub(crate) use gemm::Lhs;
pub use kernel::Kernel;
pub use linear::PackedLinear;
pub use pool::{MAX_THREADS, Threads};

#[cfg(test)]
mod tests;
