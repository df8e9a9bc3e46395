//! The driver: `y = x·Wᵀ + b` for a block of rows and a range of panels, as a sweep of register
//! tiles (a few rows × a few panels, over all of `k` or a k-block, see [`Tile`]).
//!
//! Panel groups outer, row chunks inner: a panel group (`np·k` blocks, ≤ 512 KiB at k = 2048) is
//! read once from L3 or memory and then served from L2 to every row chunk of the block, while
//! each chunk's rows of `x` (≤ 64 KiB) come from L1/L2. A row-major `x` is read in place
//! (broadcasting from it needs no packing) over all of `k`, so no partial sums go back to
//! memory. On this Zen 4 that beat a BLIS-style GEMM (packed A, k-blocks of 256, an 8×32 or 6×16
//! microkernel) by ~14% single-threaded at batch 8–64 and ~10% at 1024 (docs/CPU.md).
//!
//! A transposed left operand ([`Lhs`] with a stride along `k`: training's `Gᵀ` in
//! `dW = Gᵀ·X`) is copied per k-block into the tiles' order (k-blocks outermost, ≤ 32 KiB of a
//! panel group each); each k-block after the first resumes the chains from the f32 partial sums
//! stored in `y`, which are their values exactly, so the bits do not depend on the blocking.

use super::kernel::{Kernels, Tile};
use super::pack::{Block, NR, PackedWeight};

/// Bytes of a panel group's k-block: small enough to stay in L1 (32–48 KiB) beside a row
/// chunk's `x` while every row chunk of the block reads it.
const KBLOCK_BYTES: usize = 32 * 1024;

/// The left operand of a product, `a[r][p] = data[r·ld + p·kx]`: row-major `x` (`ld = k`,
/// `kx = 1`), or the transpose of a row-major matrix read in place (`ld = 1`, `kx` its row
/// length), as training's `dW = Gᵀ·X` reads `G`.
#[derive(Clone, Copy)]
pub(crate) struct Lhs<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub kx: usize,
}

impl<'a> Lhs<'a> {
    /// Row-major `[rows, k]`.
    pub(crate) fn rows(data: &'a [f32], k: usize) -> Self {
        Lhs { data, ld: k, kx: 1 }
    }

    /// The rows from `r0` on.
    pub(crate) fn skip_rows(self, r0: usize) -> Self {
        Lhs {
            data: &self.data[(r0 * self.ld).min(self.data.len())..],
            ..self
        }
    }

    /// Whether `data` holds `rows` rows of `k` values.
    pub(crate) fn holds(&self, rows: usize, k: usize) -> bool {
        rows == 0 || k == 0 || self.data.len() > (rows - 1) * self.ld + (k - 1) * self.kx
    }
}

/// Computes rows `0..rows` (of `x`, `k` values each) × panels `j0..j1` of `y = x·Wᵀ + b` into
/// `y` (`[rows, n]`).
///
/// # Safety
/// `y` is valid for reads and writes of `rows` rows of `w.n()` floats, and no other thread
/// accesses columns `j0·NR..` (up to panel `j1`) of them during the call.
pub(crate) unsafe fn block(
    ks: &Kernels,
    w: &PackedWeight,
    x: Lhs<'_>,
    rows: usize,
    y: *mut f32,
    (j0, j1): (usize, usize),
) {
    let (k, n) = (w.k(), w.n());
    assert!(x.holds(rows, k));
    // Rows in equal chunks of at most ks.rows (9 rows: 5 + 4, not 8 + 1, whose 1-row tile has
    // too few accumulators). The np table never grows with the row count, so the group width
    // fitted to the largest chunk fits every chunk.
    let chunks = rows.div_ceil(ks.rows);
    let chunk = rows.div_ceil(chunks);
    let group = ks.np[chunk];
    // k-blocks of equal length, only for a strided left operand (copied block by block, below)
    // shared by several row chunks: on a row-major one they measured no faster on the Xeon of
    // docs/LOG.md (cpustep), and their partial sums' round trips cost the inference path at
    // batch 64 a few percent.
    let kblocks = if chunks > 1 && x.kx != 1 {
        k.div_ceil((KBLOCK_BYTES / (group * size_of::<Block>())).max(16))
            .max(1)
    } else {
        1
    };
    let kc = k.div_ceil(kblocks);
    // A transposed left operand is copied per k-block into chunk-major order (chunk c's step p,
    // row r at c·chunk·kc + p·chunk + r): read in place, each step's few values sit one row of
    // the source apart (2 KiB for a 512-wide G), so a k-block's lines fell into two L1 sets.
    let pack = x.kx != 1 && chunks > 1;
    APACK.with_borrow_mut(|buf| {
        if pack {
            buf.clear();
            buf.resize(chunks * chunk * kc, 0.0);
        }
        for b in 0..kblocks {
            let p0 = (b * kc).min(k);
            let pk = kc.min(k - p0);
            if pack {
                // Step by step (the source's rows are contiguous for a transposed G), each
                // chunk's few values to its own run.
                for p in 0..pk {
                    let src = &x.data[(p0 + p) * x.kx..];
                    for (c, dst) in buf.chunks_exact_mut(chunk * kc).enumerate() {
                        let (r0, rr) = (c * chunk, chunk.min(rows - c * chunk));
                        let dst = &mut dst[p * chunk..p * chunk + rr];
                        // A plain loop: a few floats, where copy_from_slice was a memmove
                        // call each.
                        for (r, d) in dst.iter_mut().enumerate() {
                            *d = src[(r0 + r) * x.ld];
                        }
                    }
                }
            }
            let mut j = j0;
            while j < j1 {
                let np = group.min(j1 - j);
                let mut r0 = 0;
                while r0 < rows {
                    let rr = chunk.min(rows - r0);
                    let (xs, ldx, kx) = if pack {
                        (&buf[(r0 / chunk) * chunk * kc..], 1, chunk)
                    } else {
                        let xs = x.skip_rows(r0).data;
                        (&xs[(p0 * x.kx).min(xs.len())..], x.ld, x.kx)
                    };
                    let tile = Tile {
                        k: pk,
                        x: xs,
                        ldx,
                        kx,
                        rows: rr,
                        w: &w.from(j, p0)[..(np - 1) * k + pk],
                        ldw: k,
                        np,
                        // SAFETY: row r0, column j·NR of y: in bounds by this function's
                        // contract.
                        y: unsafe { y.add(r0 * n + j * NR) },
                        ldy: n,
                        cols: w.cols(j, np),
                        bias: w.bias_from(j),
                        resume: b > 0,
                        last: b + 1 == kblocks,
                    };
                    // SAFETY: the table's ISA was checked when the layer was built; rr ≤
                    // ks.rows and np ≤ ks.np[rr] (see above); the slices are cut as Tile
                    // requires (panels j..j + np exist, the bias is padded to whole panels, x
                    // or its packed copy holds the rows' k-block, asserted above); y's part
                    // is ours by this function's contract.
                    unsafe { (ks.run)(&tile) };
                    r0 += rr;
                }
                j += np;
            }
        }
    });
}

thread_local! {
    /// Each thread's buffer for a transposed left operand's k-block (kept: no allocation per
    /// call).
    static APACK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}
