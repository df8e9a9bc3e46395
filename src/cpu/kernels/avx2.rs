//! AVX2 + FMA kernel (x86-64): rows × panels register tiles, two ymm accumulators per (row,
//! panel), sized so that at least 8 independent FMA chains hide the latency and at most 12
//! accumulators (plus the W row and a broadcast of x) fit the 16 ymm registers. From 5 rows on
//! it is the classic 6×16 tile.

use std::arch::x86_64::*;

use super::kernel::{Kernel, Kernels, Tile, load_tile, store_tile};
use super::pack::NR;

pub(crate) static KERNELS: Kernels = Kernels {
    kernel: Kernel::Avx2,
    rows: 6,
    np: [0, 4, 3, 2, 1, 1, 1, 0, 0],
    run,
};

/// # Safety
/// As [`super::kernel::TileFn`] (this table is only handed out when AVX2 and FMA are present).
unsafe fn run(t: &Tile<'_>) {
    // SAFETY: the caller's contract, passed on; (rows, np) picks the instance that fits.
    unsafe {
        match (t.rows, t.np) {
            (1, 1) => tile::<1, 1>(t),
            (1, 2) => tile::<1, 2>(t),
            (1, 3) => tile::<1, 3>(t),
            (1, 4) => tile::<1, 4>(t),
            (2, 1) => tile::<2, 1>(t),
            (2, 2) => tile::<2, 2>(t),
            (2, 3) => tile::<2, 3>(t),
            (3, 1) => tile::<3, 1>(t),
            (3, 2) => tile::<3, 2>(t),
            (4, 1) => tile::<4, 1>(t),
            (5, 1) => tile::<5, 1>(t),
            (6, 1) => tile::<6, 1>(t),
            (r, np) => unreachable!("{r} rows × {np} panels"),
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize, const NP: usize>(t: &Tile<'_>) {
    let (k, ldx, kx, ldw) = (t.k, t.ldx, t.kx, t.ldw);
    assert!(
        t.w.len() >= (NP - 1) * ldw + k
            && (k == 0 || t.x.len() > (R - 1) * ldx + (k - 1) * kx)
            && t.bias.len() >= NP * NR
    );
    let w = t.w.as_ptr().cast::<f32>();
    let x = t.x.as_ptr();
    let mut acc = [[[_mm256_setzero_ps(); 2]; NP]; R];
    if t.resume {
        for (r, acc_r) in acc.iter_mut().enumerate() {
            for (q, acc_rq) in acc_r.iter_mut().enumerate() {
                let cols = t.cols.saturating_sub(q * NR).min(NR);
                // SAFETY: row r, panel q of y (cols floats) is in bounds by the caller's
                // contract; a partial panel is read through a zero-padded copy.
                unsafe {
                    let yp = t.y.add(r * t.ldy + q * NR);
                    let mut row = [[0.0f32; NR]];
                    let src = if cols == NR {
                        yp.cast_const()
                    } else {
                        load_tile(&mut row, yp, 0, cols);
                        row[0].as_ptr()
                    };
                    *acc_rq = [_mm256_loadu_ps(src), _mm256_loadu_ps(src.add(8))];
                }
            }
        }
    }
    for p in 0..k {
        let mut xv = [_mm256_setzero_ps(); R];
        for (r, v) in xv.iter_mut().enumerate() {
            // SAFETY: r·ldx + p·kx ≤ (R − 1)·ldx + (k − 1)·kx < x.len() (asserted).
            *v = unsafe { _mm256_broadcast_ss(&*x.add(r * ldx + p * kx)) };
        }
        for q in 0..NP {
            // SAFETY: block q·ldw + p < (NP − 1)·ldw + k ≤ w.len(); blocks are 64-byte aligned.
            let (w0, w1) = unsafe {
                let wq = w.add((q * ldw + p) * NR);
                (_mm256_load_ps(wq), _mm256_load_ps(wq.add(8)))
            };
            for (acc_r, &xr) in acc.iter_mut().zip(&xv) {
                acc_r[q][0] = _mm256_fmadd_ps(xr, w0, acc_r[q][0]);
                acc_r[q][1] = _mm256_fmadd_ps(xr, w1, acc_r[q][1]);
            }
        }
    }
    let bias = t.bias.as_ptr();
    for (r, acc_r) in acc.iter().enumerate() {
        for (q, acc_rq) in acc_r.iter().enumerate() {
            let cols = t.cols.saturating_sub(q * NR).min(NR);
            if cols == 0 {
                continue;
            }
            // SAFETY: row r, panel q of y (cols floats) is in bounds by the caller's contract;
            // the bias holds NP·NR values (asserted).
            unsafe {
                let yp = t.y.add(r * t.ldy + q * NR);
                let (v0, v1) = if t.last {
                    let (b0, b1) = (
                        _mm256_loadu_ps(bias.add(q * NR)),
                        _mm256_loadu_ps(bias.add(q * NR + 8)),
                    );
                    (_mm256_add_ps(acc_rq[0], b0), _mm256_add_ps(acc_rq[1], b1))
                } else {
                    (acc_rq[0], acc_rq[1])
                };
                if cols == NR {
                    _mm256_storeu_ps(yp, v0);
                    _mm256_storeu_ps(yp.add(8), v1);
                } else {
                    let mut row = [[0.0f32; NR]];
                    _mm256_storeu_ps(row[0].as_mut_ptr(), v0);
                    _mm256_storeu_ps(row[0].as_mut_ptr().add(8), v1);
                    store_tile(&row, yp, 0, cols, None);
                }
            }
        }
    }
}
