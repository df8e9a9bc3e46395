//! The vocabulary the whole GPU layer shares: how a model is run ([`GpuMlpOptions`]: which
//! kernels, which weight storage, which Linear kernel). The plan, the kernels and the model
//! read it; it imports none of them.

use crate::error::{Error, Result};

/// Which kernels run each step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelMode {
    /// One kernel per step: a Linear layer's matrix product with its bias and the elementwise
    /// modules after it (activations, BatchNorm, …) in its store step; a softmax too where a row
    /// fits one subgroup (the windowed kernel on a device with subgroups, at most 32 outputs).
    /// The default, and the fast path.
    #[default]
    Fused,
    /// Separate matmul, bias-add, elementwise and row passes. Slower; it exists so every step
    /// can be checked on its own.
    Separate,
}

/// How weights are stored on the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// f32, exactly the model's weights.
    #[default]
    F32,
    /// f16 (rounded to nearest): half the memory and half the bytes fetched per texel;
    /// arithmetic stays f32. A weight's relative error is at most 2⁻¹¹ where its magnitude is
    /// at least 2⁻¹⁴ (f16's smallest normal, 6.1e-5); below that its absolute error is at most
    /// 2⁻²⁵ (f16's subnormal spacing). A model with a finite weight of magnitude 65520 or more
    /// (it would round to ±inf) is refused by
    /// [`GpuMlp::with_options`](crate::gpu::GpuMlp::with_options) with `InvalidArgument` naming
    /// the layer and the weight's position. Applies to layers run by
    /// [`LinearKernel::Windowed`] (inputs up to 8,192 features); other layers keep f32 weights.
    F16,
}

/// Options for [`GpuMlp::with_options`](crate::gpu::GpuMlp::with_options).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuMlpOptions {
    /// Which kernels run each step.
    pub mode: KernelMode,
    /// How weights are stored.
    pub weights: WeightFormat,
    /// Which kernel runs each Linear layer's matrix product.
    pub kernel: LinearKernel,
}

/// Which kernel runs the matrix product of each Linear layer. Every choice computes the same
/// function (each is tested against the CPU reference); they differ in speed by adapter and shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LinearKernel {
    /// Picked by adapter and shape: [`Windowed`](Self::Windowed) on software adapters; on
    /// hardware GPUs, per layer and batch, [`Gemv`](Self::Gemv) for a few rows and
    /// [`Tiled64`](Self::Tiled64) or [`Tiled128`](Self::Tiled128) for more.
    #[default]
    Auto,
    /// `windowed.wgsl`: rows of x shared across each subgroup with `subgroupBroadcast` where the
    /// device has subgroups (see [`GpuOptions::subgroups`](crate::gpu::GpuOptions::subgroups)),
    /// else read through 64 KiB uniform windows; the weight from a storage texture in panels of
    /// 32 outputs. The fast kernel on software adapters (lavapipe, llvmpipe). Layers with inputs
    /// over 8,192 features or weights over the device's texture size run
    /// [`Blocked`](Self::Blocked).
    Windowed,
    /// `blocked.wgsl`: 4 × 8 register blocks straight from storage buffers.
    Blocked,
    /// `gemv.wgsl`: k split across a workgroup, for batches of a few rows on hardware GPUs.
    Gemv,
    /// `tiled.wgsl` with 64 × 64 output tiles staged through workgroup memory.
    Tiled64,
    /// `tiled.wgsl` with 128 × 128 output tiles.
    Tiled128,
}

impl std::fmt::Display for LinearKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinearKernel::Auto => "auto",
            LinearKernel::Windowed => "windowed",
            LinearKernel::Blocked => "blocked",
            LinearKernel::Gemv => "gemv",
            LinearKernel::Tiled64 => "tiled64",
            LinearKernel::Tiled128 => "tiled128",
        })
    }
}

impl std::str::FromStr for LinearKernel {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        LinearKernel::ALL
            .into_iter()
            .find(|k| k.to_string() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown kernel {:?}: expected auto, windowed, blocked, gemv, tiled64 or \
                     tiled128",
                    crate::error::escape(s)
                ))
            })
    }
}

impl LinearKernel {
    /// Every choice, [`Auto`](Self::Auto) first.
    pub const ALL: [LinearKernel; 6] = [
        LinearKernel::Auto,
        LinearKernel::Windowed,
        LinearKernel::Blocked,
        LinearKernel::Gemv,
        LinearKernel::Tiled64,
        LinearKernel::Tiled128,
    ];
}
