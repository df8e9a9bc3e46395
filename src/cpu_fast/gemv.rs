//! The GEMV driver for a few rows: stream each weight panel once, straight from its packed
//! layout, with `x` read in place (no packing: a row is at most a few KiB and stays in L1).
//! Several panels per call give the independent accumulators that hide the FMA latency; several
//! rows per call share each weight load.

use super::kernel::{GemvCall, Kernels};
use super::pack::{NR, PackedWeight};

/// Computes all `rows` rows × panels `j0..j1` of `y = x·Wᵀ + b`.
///
/// # Safety
/// `y` is valid for reads and writes of `rows` rows of `w.n()` floats, and no other thread
/// accesses columns `j0·NR..` (up to panel `j1`) of them during the call.
pub(crate) unsafe fn gemv_block(
    ks: &Kernels,
    w: &PackedWeight,
    x: &[f32],
    rows: usize,
    y: *mut f32,
    (j0, j1): (usize, usize),
) {
    let (k, n) = (w.k(), w.n());
    // Panels outer, rows inner: a panel group read for the first rows is still in cache for the
    // next. The np table falls with the row count, so the first chunk's np fits every chunk.
    let group = ks.gemv_np[ks.gemv_rows.min(rows)];
    let mut j = j0;
    while j < j1 {
        let np = group.min(j1 - j);
        let mut r0 = 0;
        while r0 < rows {
            let rr = ks.gemv_rows.min(rows - r0);
            let call = GemvCall {
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
            // SAFETY: the table's ISA was checked when the layer was built; np ≤ gemv_np[rr]
            // (see above) and the slices are cut as GemvCall requires; y's part is ours by this
            // function's contract.
            unsafe { (ks.gemv)(&call) };
            r0 += rr;
        }
        j += np;
    }
}
