//! The fast CPU forward pass: f32 kernels competitive with an optimised BLAS, for inference.
//!
//! - [`Threads`] is the persistent worker pool the kernels run on (`pool.rs`).

mod pool;

pub use pool::{MAX_THREADS, Threads};
