//! The driver: `y = x·Wᵀ + b` for a block of rows and a range of panels, as a sweep of register
//! tiles (a few rows × a few panels, over all of `k`, see [`Tile`]).
//!
//! Panel groups outer, row chunks inner: a panel group (`np·k` blocks, ≤ 512 KiB at k = 2048) is
//! read once from L3 or memory and then served from L2 to every row chunk of the block, while
//! each chunk's rows of `x` (≤ 64 KiB) come from L1/L2. `x` is read in place: broadcasting from
//! a row-major `x` needs no packing, and there is no k-blocking, so no partial sums go back to
//! memory. On this Zen 4 that beat a BLIS-style GEMM (packed A, k-blocks of 256, an 8×32 or 6×16
//! microkernel) by ~14% single-threaded at batch 8–64 and ~10% at 1024 (docs/CPU.md).

use super::kernel::{Kernels, Tile};
use super::pack::{NR, PackedWeight};

/// Computes rows `0..rows` (of `x`, `[rows, k]`) × panels `j0..j1` of `y = x·Wᵀ + b` into `y`
/// (`[rows, n]`).
///
/// # Safety
/// `y` is valid for reads and writes of `rows` rows of `w.n()` floats, and no other thread
/// accesses columns `j0·NR..` (up to panel `j1`) of them during the call.
pub(crate) unsafe fn block(
    ks: &Kernels,
    w: &PackedWeight,
    x: &[f32],
    rows: usize,
    y: *mut f32,
    (j0, j1): (usize, usize),
) {
    let (k, n) = (w.k(), w.n());
    assert!(x.len() >= rows * k);
    // Rows in equal chunks of at most ks.rows (9 rows: 5 + 4, not 8 + 1, whose 1-row tile has
    // too few accumulators). The np table never grows with the row count, so the group width
    // fitted to the largest chunk fits every chunk.
    let chunks = rows.div_ceil(ks.rows);
    let chunk = rows.div_ceil(chunks);
    let group = ks.np[chunk];
    let mut j = j0;
    while j < j1 {
        let np = group.min(j1 - j);
        let mut r0 = 0;
        while r0 < rows {
            let rr = chunk.min(rows - r0);
            let tile = Tile {
                k,
                x: &x[r0 * k..rows * k],
                ldx: k,
                rows: rr,
                w: &w.from(j, 0)[..np * k],
                np,
                // SAFETY: row r0, column j·NR of y: in bounds by this function's contract.
                y: unsafe { y.add(r0 * n + j * NR) },
                ldy: n,
                cols: w.cols(j, np),
                bias: w.bias_from(j),
            };
            // SAFETY: the table's ISA was checked when the layer was built; rr ≤ ks.rows and
            // np ≤ ks.np[rr] (see above); the slices are cut as Tile requires (panels j..j + np
            // exist, the bias is padded to whole panels); y's part is ours by this function's
            // contract.
            unsafe { (ks.run)(&tile) };
            r0 += rr;
        }
        j += np;
    }
}
