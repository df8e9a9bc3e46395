//! The CPU paths.
//!
//! - [`forward`]: the reference, module by module, each operation in f64 and rounded to f32 as
//!   PyTorch's float32 modules round: the yardstick for every other path, not the speed path.
//! - [`CpuMlp`]: the fast path: weights packed once at load, f32 register-tile kernels (AVX-512,
//!   AVX2 + FMA, or portable Rust, chosen at run time), all cores through a persistent pool, the
//!   same steps and fused epilogues as the GPU. What a machine without a GPU runs.
//!
//! ```
//! use wgpu_mlp::cpu::{self, CpuMlp};
//! use wgpu_mlp::{Activation, Matrix, Mlp};
//!
//! let model = Mlp::builder(3).layer(3, Activation::Sigmoid).layer(2, Activation::Identity).seed(42).build()?;
//! let x = Matrix::new(1, 3, vec![1.0, 2.0, 3.0])?;
//! let fast = CpuMlp::new(&model)?.forward(&x)?;   // ≈ [0.3082, 0.5068], as in PyTorch
//! let exact = cpu::forward(&model, &x)?;
//! assert!(fast.as_slice().iter().zip(exact.as_slice()).all(|(a, b)| (a - b).abs() < 1e-6));
//! # Ok::<(), wgpu_mlp::Error>(())
//! ```

mod fast;
mod kernels;
mod reference;

pub use fast::CpuMlp;
pub(crate) use kernels::Lhs;
pub use kernels::{Kernel, MAX_THREADS, PackedLinear, Threads};
pub use reference::{forward, forward_f64};
