//! The GEMM driver for many rows: BLIS-style blocking over the prepacked weight.
//!
//! For a block of rows, per k-block of `kc` steps: pack that slice of `x` into register-tile
//! order (`mr` rows interleaved, so the microkernel reads A as one stream of broadcasts and the
//! block stays in L2), then for each group of `npk` panels (B, `kc·npk` blocks that stay in L1)
//! run the microkernel down all row tiles. The first k-block writes `A·B + bias`, later ones add.

use std::cell::Cell;

use super::kernel::{GemmTile, Kernels};
use super::pack::{NR, PackedWeight};

thread_local! {
    /// Each thread's A-packing buffer, kept between calls (taken while in use, so a reentrant
    /// call just gets a fresh one).
    static A_PACK: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Computes rows `r0..r1` × panels `j0..j1` of `y = x·Wᵀ + b` (`y` is `[rows, n]`, `x` is
/// `[rows, k]`).
///
/// # Safety
/// `y` is valid for reads and writes of rows `r0..r1` of `w.n()` floats, and no other thread
/// accesses columns `j0·NR..` (up to panel `j1`) of those rows during the call.
pub(crate) unsafe fn gemm_block(
    ks: &Kernels,
    w: &PackedWeight,
    x: &[f32],
    y: *mut f32,
    (r0, r1): (usize, usize),
    (j0, j1): (usize, usize),
) {
    let (k, n) = (w.k(), w.n());
    let mc = r1 - r0;
    let x = &x[r0 * k..r1 * k];
    // Equal k-blocks of at most ks.kc: 784 = 4 × 196, not 3 × 256 + 16, whose short last block
    // would pay the C tile's load and store for few steps.
    let kc_max = k.div_ceil(k.div_ceil(ks.kc));
    let mut buf = A_PACK.with(Cell::take);
    let need = mc * kc_max;
    if buf.len() < need {
        buf.resize(need, 0.0);
    }
    let mut pc = 0;
    while pc < k {
        let kc = kc_max.min(k - pc);
        pack_a(x, k, pc, kc, ks.mr, &mut buf[..mc * kc]);
        let mut j = j0;
        while j < j1 {
            let np = ks.npk.min(j1 - j);
            let b = w.from(j, pc);
            let bias = (pc == 0).then(|| w.bias_from(j));
            let cols = w.cols(j, np);
            let mut i = 0;
            while i < mc {
                let rows = ks.mr.min(mc - i);
                let tile = GemmTile {
                    kc,
                    a: &buf[i * kc..(i + rows) * kc],
                    rows,
                    b,
                    b_stride: k,
                    np,
                    // SAFETY: row r0 + i, column j·NR of y: in bounds by this function's contract.
                    c: unsafe { y.add((r0 + i) * n + j * NR) },
                    ldc: n,
                    cols,
                    bias,
                };
                // SAFETY: the table's ISA was checked when the layer was built; the tile's
                // slices are cut as GemmTile requires (b: see PackedWeight::from, panels
                // j..j + np exist); C is this call's block, rows i..i + rows, columns of panels
                // j..j + np (cols of them), exclusively ours by this function's contract.
                unsafe { (ks.gemm)(&tile) };
                i += rows;
            }
            j += np;
        }
        pc += kc;
    }
    A_PACK.with(|c| c.set(buf));
}

/// Packs columns `pc..pc + kc` of `x` (`[rows, k]`) tile by tile: the tile of rows `i..i + r`
/// (`r = min(mr, rows - i)`) goes to `buf[i·kc..]` as `[kc][r]`.
fn pack_a(x: &[f32], k: usize, pc: usize, kc: usize, mr: usize, buf: &mut [f32]) {
    let rows = x.len() / k;
    let mut i = 0;
    while i < rows {
        let r = mr.min(rows - i);
        let dst = &mut buf[i * kc..(i + r) * kc];
        for row in 0..r {
            let src = &x[(i + row) * k + pc..][..kc];
            for (d, &v) in dst[row..].iter_mut().step_by(r).zip(src) {
                *d = v;
            }
        }
        i += r;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pack_a_layout() {
        // x [5, 4], x[r][c] = 10·r + c; tiles of 2 rows, k-block columns 1..4.
        let x: Vec<f32> = (0..20).map(|i| (10 * (i / 4) + i % 4) as f32).collect();
        let mut buf = vec![0.0; 15];
        super::pack_a(&x, 4, 1, 3, 2, &mut buf);
        #[rustfmt::skip]
        let want = [1.0, 11.0, 2.0, 12.0, 3.0, 13.0,
                    21.0, 31.0, 22.0, 32.0, 23.0, 33.0,
                    41.0, 42.0, 43.0];
        assert_eq!(buf, want);
    }
}
