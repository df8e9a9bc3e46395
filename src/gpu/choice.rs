//! Which Linear kernel runs a layer: [`LinearKernel`], the user's choice, and the rule
//! [`LinearKernel::Auto`] follows on hardware GPUs (by adapter, device limits, layer shape and
//! batch), with the H100 measurements behind its thresholds.

use crate::error::{Error, Result};
use crate::gpu::kernels::{TILED_SIDES, Variant};

/// Which kernel runs the matrix product of each Linear layer. Every choice computes the same
/// function (each is tested against the CPU reference); they differ in speed by adapter and shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinearKernel {
    /// Picked by adapter and shape: [`Windowed`](Self::Windowed) on software adapters; on
    /// hardware GPUs, per layer and batch, [`Gemv`](Self::Gemv) for a few rows and
    /// [`Tiled64`](Self::Tiled64) or [`Tiled128`](Self::Tiled128) for more.
    #[default]
    Auto,
    /// linear.wgsl: rows of x shared across each subgroup with `subgroupBroadcast` where the
    /// device has subgroups (see [`GpuOptions::subgroups`](crate::gpu::GpuOptions::subgroups)),
    /// else read through 64 KiB uniform windows; the weight from a storage texture in panels of
    /// 32 outputs. The fast kernel on software adapters (lavapipe, llvmpipe). Layers with inputs
    /// over 8,192 features or weights over the device's texture size run
    /// [`Blocked`](Self::Blocked).
    Windowed,
    /// linear_wide.wgsl: 4 × 8 register blocks straight from storage buffers.
    Blocked,
    /// linear_gemv.wgsl: k split across a workgroup, for batches of a few rows on hardware GPUs.
    Gemv,
    /// linear_tiled.wgsl with 64 × 64 output tiles staged through workgroup memory.
    Tiled64,
    /// linear_tiled.wgsl with 128 × 128 output tiles.
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
                "unknown kernel {s:?}: expected auto, windowed, blocked, gemv, tiled64 or tiled128"
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

    /// The storage-buffer kernels a layer gets when it does not run the windowed kernel. Auto
    /// leaves out what the device's limits cannot run; a named kernel that does not fit is an
    /// error.
    pub(crate) fn buffer_variants(
        self,
        software: bool,
        limits: &wgpu::Limits,
    ) -> Result<Vec<Variant>> {
        let named = match self {
            LinearKernel::Tiled64 => Variant::Tiled(TILED_SIDES[0]),
            LinearKernel::Tiled128 => Variant::Tiled(TILED_SIDES[1]),
            LinearKernel::Gemv => Variant::Gemv,
            LinearKernel::Auto if !software => {
                let mut fit: Vec<Variant> = [
                    Variant::Gemv,
                    Variant::Tiled(TILED_SIDES[0]),
                    Variant::Tiled(TILED_SIDES[1]),
                ]
                .into_iter()
                .filter(|v| v.fits(limits))
                .collect();
                fit.push(Variant::Blocked); // the fallback of pick_variant
                return Ok(fit);
            }
            _ => Variant::Blocked,
        };
        if !named.fits(limits) {
            let (x, y, bytes) = named.needs();
            return Err(Error::invalid(format!(
                "the {self} kernel needs {x}×{y} invocations and {bytes} bytes of workgroup \
                 memory per workgroup; this device allows {}×{} ({} in all) and {} bytes",
                limits.max_compute_workgroup_size_x,
                limits.max_compute_workgroup_size_y,
                limits.max_compute_invocations_per_workgroup,
                limits.max_compute_workgroup_storage_size
            )));
        }
        Ok(vec![named])
    }
}

/// The kernel for a storage-buffer layer's Linear pass on a batch of `rows`: the only candidate,
/// or, when [`LinearKernel::Auto`] left several (hardware GPUs), by shape. What decides is
/// whether a kernel has enough workgroups to fill a large GPU: the GEMV kernel makes one per 4
/// rows × 32 columns, the tiled kernels one per 64 × 64 or 128 × 128 outputs. The thresholds are
/// the H100 measurements in docs/PERFORMANCE.md ("Kernel choice on a hardware GPU").
pub(crate) fn pick_variant(
    variants: &[(Variant, wgpu::ComputePipeline)],
    rows: usize,
    n_out: usize,
) -> (Variant, &wgpu::ComputePipeline) {
    let tiles64 = rows.div_ceil(64) * n_out.div_ceil(64);
    let tiles128 = rows.div_ceil(128) * n_out.div_ceil(128);
    let want = if rows <= AUTO_GEMV_MAX_ROWS
        || (rows <= AUTO_GEMV_MAX_ROWS_FEW_TILES && tiles64 < AUTO_FEW_TILES)
    {
        Variant::Gemv
    } else if (AUTO_TILED128_TILES.0..AUTO_TILED128_TILES.1).contains(&tiles128) {
        Variant::Tiled(TILED_SIDES[1])
    } else {
        Variant::Tiled(TILED_SIDES[0])
    };
    // A kernel the device's limits ruled out falls back to the 64 tile, then the blocked kernel.
    let (v, p) = [want, Variant::Tiled(TILED_SIDES[0]), Variant::Blocked]
        .iter()
        .find_map(|w| variants.iter().find(|(v, _)| v == w))
        .unwrap_or(&variants[0]);
    (*v, p)
}

/// Up to this many rows, [`LinearKernel::Auto`] runs the GEMV kernel on hardware GPUs (on an
/// H100 it beat the 64 tile at every batch from 1 to 128 of mnist and wide).
const AUTO_GEMV_MAX_ROWS: usize = 64;
/// ... and up to this many when the 64 tile would have fewer than [`AUTO_FEW_TILES`] tiles (mnist
/// b1024: 0.21 vs 0.26 ms; wide b256, 128 tiles: a tie; wide b1024, 512 tiles: 1.9 vs 0.9 ms).
const AUTO_GEMV_MAX_ROWS_FEW_TILES: usize = 1024;
const AUTO_FEW_TILES: usize = 256;
/// [`LinearKernel::Auto`] takes the 128 tile with this many 128 tiles (at least, below): about
/// one or two waves on a large GPU (gemm 2048, 256 tiles: 0.63-0.67 ms vs 0.71 ms for the 64
/// tile); with more, the double-buffered 64 tile wins (gemm 4096: 4.0-4.1 vs 4.2 ms).
const AUTO_TILED128_TILES: (usize, usize) = (256, 1024);
