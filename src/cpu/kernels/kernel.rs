//! The kernel interface: what one kernel call computes, and the per-ISA table of register tile
//! shapes that the driver (`gemm.rs`) uses.

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

/// Most rows of one kernel call (the size of the `np` tables).
pub(crate) const MAX_ROWS: usize = 8;

/// One kernel call: `y[rows, cols] = x[rows, k]·W + bias` over `k` steps of the reduction, for
/// `np` consecutive panels of W (panel `q`'s step `p` at block `q·ldw + p`: `w` holds at least
/// `(np − 1)·ldw + k` blocks), `x[r][p]` at `r·ldx + p·kx` (`x` holds at least
/// `(rows − 1)·ldx + (k − 1)·kx + 1` values when `k > 0`), `y`
/// rows `ldy` apart. `cols` is the number of valid columns, in `((np − 1)·NR, np·NR]` (the rest
/// of the last panel is neither computed into `y` nor read); `bias` holds at least `np·NR`
/// values (zero-padded).
///
/// A long reduction may be cut into k-blocks (`gemm.rs`): the first call starts each chain from
/// zero (`resume` false), later ones continue it from the f32 partial sum stored in `y`
/// (`resume` true), and only the call with the last block adds the bias (`last`). A stored f32
/// partial is the chain's value exactly, so each output is still one FMA chain over the whole
/// reduction in order, then `+ bias`: the same sum whatever the tile shape, the k-blocking, the
/// row chunking or the thread count.
pub(crate) struct Tile<'a> {
    pub k: usize,
    pub x: &'a [f32],
    pub ldx: usize,
    pub kx: usize,
    pub rows: usize,
    pub w: &'a [Block],
    pub ldw: usize,
    pub np: usize,
    pub y: *mut f32,
    pub ldy: usize,
    pub cols: usize,
    pub bias: &'a [f32],
    pub resume: bool,
    pub last: bool,
}

/// # Safety
/// The CPU supports the table's instruction set; `1 ≤ rows ≤ Kernels::rows`,
/// `1 ≤ np ≤ Kernels::np[rows]`; the slices are as [`Tile`] says; `y` is valid for reads and
/// writes of `rows` rows of `cols` floats `ldy` apart, which no other thread accesses during the
/// call.
pub(crate) type TileFn = unsafe fn(&Tile<'_>);

/// A kernel set: the register tile shapes it supports and its entry point.
pub(crate) struct Kernels {
    pub kernel: Kernel,
    /// Most rows of one call.
    pub rows: usize,
    /// Most panels of one call by its row count (index 0 unused, never increasing with the row
    /// count): enough independent accumulators to hide the FMA latency and to share each
    /// broadcast of x, few enough to stay in registers.
    pub np: [usize; MAX_ROWS + 1],
    pub run: TileFn,
}

/// Stores `tile + bias` (row `i` at `tile[i]`; `tile` alone without a bias: a k-block's
/// partial sums) into `cols` columns of `rows` rows of `y`, one lane at a time: the portable
/// kernel's store and the fallback for partial panels.
///
/// # Safety
/// `y` is valid for writes of `tile.len()` rows of `cols ≤ W` floats `ldy` apart.
pub(crate) unsafe fn store_tile<const W: usize>(
    tile: &[[f32; W]],
    y: *mut f32,
    ldy: usize,
    cols: usize,
    bias: Option<&[f32]>,
) {
    for (i, row) in tile.iter().enumerate() {
        for (col, &v) in row[..cols].iter().enumerate() {
            let v = bias.map_or(v, |b| v + b[col]);
            // SAFETY: i < rows and col < cols, in bounds of y by the caller's contract.
            unsafe { *y.add(i * ldy + col) = v };
        }
    }
}

/// Reads `cols` columns of `tile.len()` rows of `y` into `tile` (the rest of each row zero):
/// a resumed k-block's partial sums, for the portable kernel and partial panels.
///
/// # Safety
/// `y` is valid for reads of `tile.len()` rows of `cols ≤ W` floats `ldy` apart.
pub(crate) unsafe fn load_tile<const W: usize>(
    tile: &mut [[f32; W]],
    y: *const f32,
    ldy: usize,
    cols: usize,
) {
    for (i, row) in tile.iter_mut().enumerate() {
        *row = [0.0; W];
        for (col, v) in row[..cols].iter_mut().enumerate() {
            // SAFETY: i < rows and col < cols, in bounds of y by the caller's contract.
            *v = unsafe { *y.add(i * ldy + col) };
        }
    }
}

const _: () = assert!(NR == 16, "the x86 kernels assume 16-float panels");
