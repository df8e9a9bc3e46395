//! The kernel interface: what one GEMM microkernel or GEMV call computes, and the per-ISA table
//! of kernels and block sizes that the drivers (`gemm.rs`, `gemv.rs`) use.

use super::pack::{Block, NR};

/// Which instruction set the kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Plain Rust that the compiler vectorises where it can (every target, `wasm32` included).
    Portable,
    /// x86-64 AVX2 + FMA intrinsics.
    Avx2,
    /// x86-64 AVX-512F intrinsics.
    Avx512,
}

impl Kernel {
    /// Every kernel, fastest first.
    pub const ALL: [Kernel; 3] = [Kernel::Avx512, Kernel::Avx2, Kernel::Portable];

    /// The fastest kernel this CPU runs (detected at run time).
    pub fn best() -> Kernel {
        Kernel::ALL
            .into_iter()
            .find(|k| k.is_supported())
            .unwrap_or(Kernel::Portable)
    }

    /// Whether this CPU (and target) can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// A short name for reports (`portable`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
        }
    }

    /// The kernel table, if this CPU supports the kernel.
    pub(crate) fn table(self) -> Option<&'static Kernels> {
        if !self.is_supported() {
            return None;
        }
        match self {
            Kernel::Portable => Some(&super::portable::KERNELS),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => Some(&super::avx2::KERNELS),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => Some(&super::avx512::KERNELS),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }
}

/// One GEMM microkernel call: `C[rows, cols] (+)= A·B` over one k-block of `kc` steps.
///
/// - `a`: the packed A tile, `a[p·rows + i]` = row `i`, step `p`; at least `kc·rows` values.
/// - `b`: `np` panels `b_stride` blocks apart, each read from its start for `kc` blocks; at least
///   `(np - 1)·b_stride + kc` blocks.
/// - `cols`: valid columns, in `((np - 1)·NR, np·NR]`; the rest of the last panel is not stored.
/// - `bias`: `Some` on the first k-block: `C = A·B + bias` (at least `cols` values); `None` after:
///   `C += A·B`.
pub(crate) struct GemmTile<'a> {
    pub kc: usize,
    pub a: &'a [f32],
    pub rows: usize,
    pub b: &'a [Block],
    pub b_stride: usize,
    pub np: usize,
    pub c: *mut f32,
    pub ldc: usize,
    pub cols: usize,
    pub bias: Option<&'a [f32]>,
}

/// One GEMV call: `y[rows, cols] = x[rows, k]·W + bias` over all of `k`, for `np` consecutive
/// panels (`w` holds at least `np·k` blocks, `bias` at least `cols` values), `x` rows `ldx`
/// apart (at least `(rows - 1)·ldx + k` values), `y` rows `ldy` apart. `cols` as in [`GemmTile`].
pub(crate) struct GemvCall<'a> {
    pub k: usize,
    pub x: &'a [f32],
    pub ldx: usize,
    pub rows: usize,
    pub w: &'a [Block],
    pub np: usize,
    pub y: *mut f32,
    pub ldy: usize,
    pub cols: usize,
    pub bias: &'a [f32],
}

/// # Safety
/// The CPU supports the table's instruction set; the slices satisfy [`GemmTile`]'s contract,
/// `1 ≤ rows ≤ mr`, `1 ≤ np ≤ npk`; `c` is valid for reads and writes of `rows` rows of `cols`
/// floats `ldc` apart, which no other thread accesses during the call.
pub(crate) type GemmFn = unsafe fn(&GemmTile<'_>);

/// # Safety
/// As [`GemmFn`], for [`GemvCall`]: `1 ≤ rows ≤ gemv_rows`, `1 ≤ np ≤ gemv_np[rows]`, and `y`
/// valid for `rows` rows of `cols` floats `ldy` apart.
pub(crate) type GemvFn = unsafe fn(&GemvCall<'_>);

/// A kernel set and the block sizes that suit it.
pub(crate) struct Kernels {
    pub kernel: Kernel,
    /// Rows of the GEMM microkernel's register tile.
    pub mr: usize,
    /// Panels (of [`NR`] columns) of the GEMM microkernel's register tile.
    pub npk: usize,
    /// k-block: `kc·npk` blocks of B stay in L1 while the A tiles of a row block stream past.
    pub kc: usize,
    /// Most rows of a row block: its packed A (`mc·kc` floats) stays in L2.
    pub mc: usize,
    pub gemm: GemmFn,
    /// Most rows of one GEMV call.
    pub gemv_rows: usize,
    /// Panels per GEMV call by its row count (index 0 unused): enough independent accumulators
    /// to hide the FMA latency, few enough to stay in registers.
    pub gemv_np: [usize; 5],
    pub gemv: GemvFn,
}

/// Adds `tile` (row `i` at `tile[i]`) to C as a [`GemmTile`] says, one lane at a time: the
/// fallback for partial panels and the portable kernels.
///
/// # Safety
/// `c` is valid as [`GemmFn`] requires for `tile.len()` rows of `cols ≤ np·NR` floats.
pub(crate) unsafe fn store_tile<const W: usize>(
    tile: &[[f32; W]],
    c: *mut f32,
    ldc: usize,
    cols: usize,
    bias: Option<&[f32]>,
) {
    debug_assert!(cols <= W);
    for (i, row) in tile.iter().enumerate() {
        for (col, &v) in row[..cols].iter().enumerate() {
            // SAFETY: i < rows and col < cols, in bounds of C by the caller's contract.
            unsafe {
                let cp = c.add(i * ldc + col);
                *cp = v + match bias {
                    Some(b) => b[col],
                    None => *cp,
                };
            }
        }
    }
}

const _: () = assert!(NR == 16, "the x86 kernels assume 16-float panels");
