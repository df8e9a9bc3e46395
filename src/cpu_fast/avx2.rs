//! AVX2 + FMA kernels (x86-64). GEMM: a 6×16 register tile (12 ymm accumulators, 2 for the
//! B row, 1 broadcast: 15 of 16 registers), the classic shape for 16 ymm registers. GEMV: rows ×
//! panels sized so that at least 8 independent accumulators hide the FMA latency.

use std::arch::x86_64::*;

use super::kernel::{GemmTile, GemvCall, Kernel, Kernels, store_tile};
use super::pack::NR;

pub(crate) static KERNELS: Kernels = Kernels {
    kernel: Kernel::Avx2,
    mr: 6,
    npk: 1,
    kc: 256,
    mc: 96,
    gemm,
    gemv_rows: 4,
    gemv_np: [0, 4, 3, 2, 1],
    gemv,
};

/// # Safety
/// As [`super::kernel::GemmFn`] (this table is only handed out when AVX2 and FMA are present).
unsafe fn gemm(t: &GemmTile<'_>) {
    // SAFETY: the caller's contract, passed on; rows picks the instance whose tile it fits.
    unsafe {
        match t.rows {
            1 => gemm_mr::<1>(t),
            2 => gemm_mr::<2>(t),
            3 => gemm_mr::<3>(t),
            4 => gemm_mr::<4>(t),
            5 => gemm_mr::<5>(t),
            6 => gemm_mr::<6>(t),
            r => unreachable!("{r} rows"),
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_mr<const MR: usize>(t: &GemmTile<'_>) {
    let kc = t.kc;
    assert!(t.np == 1 && t.a.len() >= kc * MR && t.b.len() >= kc);
    let a = t.a.as_ptr();
    let b = t.b.as_ptr().cast::<f32>();
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for p in 0..kc {
        // SAFETY: p < kc ≤ b.len() blocks; a block is 64-byte aligned, so both halves are
        // 32-byte aligned.
        let (b0, b1) = unsafe {
            (
                _mm256_load_ps(b.add(p * NR)),
                _mm256_load_ps(b.add(p * NR + 8)),
            )
        };
        for (i, acc_i) in acc.iter_mut().enumerate() {
            // SAFETY: p·MR + i < kc·MR ≤ a.len().
            let av = unsafe { _mm256_broadcast_ss(&*a.add(p * MR + i)) };
            acc_i[0] = _mm256_fmadd_ps(av, b0, acc_i[0]);
            acc_i[1] = _mm256_fmadd_ps(av, b1, acc_i[1]);
        }
    }
    for (i, acc_i) in acc.iter().enumerate() {
        // SAFETY: row i < rows of C, valid by the caller's contract.
        unsafe { store_row(*acc_i, t.c.add(i * t.ldc), t.cols, t.bias) };
    }
}

/// # Safety
/// As [`super::kernel::GemvFn`] (this table is only handed out when AVX2 and FMA are present).
unsafe fn gemv(g: &GemvCall<'_>) {
    // SAFETY: the caller's contract, passed on; (rows, np) picks the instance that fits.
    unsafe {
        match (g.rows, g.np) {
            (1, 1) => gemv_rn::<1, 1>(g),
            (1, 2) => gemv_rn::<1, 2>(g),
            (1, 3) => gemv_rn::<1, 3>(g),
            (1, 4) => gemv_rn::<1, 4>(g),
            (2, 1) => gemv_rn::<2, 1>(g),
            (2, 2) => gemv_rn::<2, 2>(g),
            (2, 3) => gemv_rn::<2, 3>(g),
            (3, 1) => gemv_rn::<3, 1>(g),
            (3, 2) => gemv_rn::<3, 2>(g),
            (4, 1) => gemv_rn::<4, 1>(g),
            (r, np) => unreachable!("{r} rows × {np} panels"),
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_rn<const R: usize, const NP: usize>(g: &GemvCall<'_>) {
    let (k, ldx) = (g.k, g.ldx);
    assert!(g.w.len() >= NP * k && g.x.len() >= (R - 1) * ldx + k);
    let w = g.w.as_ptr().cast::<f32>();
    let x = g.x.as_ptr();
    let mut acc = [[[_mm256_setzero_ps(); 2]; NP]; R];
    for p in 0..k {
        let mut xv = [_mm256_setzero_ps(); R];
        for (r, v) in xv.iter_mut().enumerate() {
            // SAFETY: r·ldx + p < (R - 1)·ldx + k ≤ x.len().
            *v = unsafe { _mm256_broadcast_ss(&*x.add(r * ldx + p)) };
        }
        for q in 0..NP {
            // SAFETY: block q·k + p < NP·k ≤ w.len(); blocks are 64-byte aligned.
            let (w0, w1) = unsafe {
                let wq = w.add((q * k + p) * NR);
                (_mm256_load_ps(wq), _mm256_load_ps(wq.add(8)))
            };
            for (acc_r, &xr) in acc.iter_mut().zip(&xv) {
                acc_r[q][0] = _mm256_fmadd_ps(xr, w0, acc_r[q][0]);
                acc_r[q][1] = _mm256_fmadd_ps(xr, w1, acc_r[q][1]);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (q, acc_rq) in acc_r.iter().enumerate() {
            let cols = g.cols.saturating_sub(q * NR).min(NR);
            if cols > 0 {
                // SAFETY: row r, panel q of y: in bounds by the caller's contract.
                unsafe {
                    store_row(
                        *acc_rq,
                        g.y.add(r * g.ldy + q * NR),
                        cols,
                        Some(&g.bias[q * NR..]),
                    )
                };
            }
        }
    }
}

/// One row of a tile: `cp[..cols] = acc + (bias or cp)`, `cols ≤ NR`.
///
/// # Safety
/// `cp` is valid for reads and writes of `cols` floats.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store_row(acc: [__m256; 2], cp: *mut f32, cols: usize, bias: Option<&[f32]>) {
    if cols == NR {
        // SAFETY: 16 floats at cp (cols == NR) and, when reading the bias, at b (asserted).
        unsafe {
            let (p0, p1) = match bias {
                Some(b) => {
                    assert!(b.len() >= NR);
                    (
                        _mm256_loadu_ps(b.as_ptr()),
                        _mm256_loadu_ps(b.as_ptr().add(8)),
                    )
                }
                None => (_mm256_loadu_ps(cp), _mm256_loadu_ps(cp.add(8))),
            };
            _mm256_storeu_ps(cp, _mm256_add_ps(acc[0], p0));
            _mm256_storeu_ps(cp.add(8), _mm256_add_ps(acc[1], p1));
        }
    } else {
        let mut tile = [[0.0f32; NR]];
        // SAFETY: tile[0] holds 16 floats; cp is valid for cols floats.
        unsafe {
            _mm256_storeu_ps(tile[0].as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(tile[0].as_mut_ptr().add(8), acc[1]);
            store_tile(&tile, cp, 0, cols, bias);
        }
    }
}
