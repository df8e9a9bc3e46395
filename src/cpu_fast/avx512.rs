//! AVX-512F kernels (x86-64). GEMM: an MR×32 register tile, two zmm accumulators per row (two
//! panels), B rows from two panel streams, A broadcast straight from memory into the FMA. Masked
//! loads and stores handle partial panels without a scalar tail. GEMV: rows × panels with one zmm
//! accumulator each.
//!
//! The AVX-512 intrinsics are stable since Rust 1.89, above the crate's declared `rust-version`
//! (1.85, already stale: `layer.rs` uses let-chains, stable since 1.88); raising it is left to
//! the crate's owners, since it turns on newer clippy lints in other modules.
#![allow(clippy::incompatible_msrv)]

use std::arch::x86_64::*;

use super::kernel::{GemmTile, GemvCall, Kernel, Kernels};
use super::pack::NR;

/// Rows of the GEMM register tile: 2·MR accumulators + 2 B rows of 32 zmm registers.
const MR: usize = 8;

pub(crate) static KERNELS: Kernels = Kernels {
    kernel: Kernel::Avx512,
    mr: MR,
    npk: 2,
    kc: 256,
    mc: 96,
    gemm,
    gemv_rows: 4,
    gemv_np: [0, 4, 4, 4, 4],
    gemv,
};

macro_rules! by_rows {
    ($t:expr, $np:literal; $($r:literal)*) => {
        match $t.rows {
            $($r => gemm_mr::<$r, $np>($t),)*
            r => unreachable!("{r} rows"),
        }
    };
}

/// # Safety
/// As [`super::kernel::GemmFn`] (this table is only handed out when AVX-512F is present).
unsafe fn gemm(t: &GemmTile<'_>) {
    // SAFETY: the caller's contract, passed on; (rows, np) picks the instance that fits.
    unsafe {
        if t.np == 2 {
            by_rows!(t, 2; 1 2 3 4 5 6 7 8 9 10 11 12)
        } else {
            by_rows!(t, 1; 1 2 3 4 5 6 7 8 9 10 11 12)
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn gemm_mr<const R: usize, const NP: usize>(t: &GemmTile<'_>) {
    let (kc, bs) = (t.kc, t.b_stride);
    assert!(t.np == NP && t.a.len() >= kc * R && t.b.len() >= (NP - 1) * bs + kc);
    let a = t.a.as_ptr();
    let b = t.b.as_ptr().cast::<f32>();
    let mut acc = [[_mm512_setzero_ps(); NP]; R];
    for p in 0..kc {
        let mut bv = [_mm512_setzero_ps(); NP];
        for (q, v) in bv.iter_mut().enumerate() {
            // SAFETY: block q·bs + p < (NP - 1)·bs + kc ≤ b.len(); blocks are 64-byte aligned.
            *v = unsafe { _mm512_load_ps(b.add((q * bs + p) * NR)) };
        }
        for (i, acc_i) in acc.iter_mut().enumerate() {
            // SAFETY: p·R + i < kc·R ≤ a.len().
            let av = _mm512_set1_ps(unsafe { *a.add(p * R + i) });
            for (s, &bq) in acc_i.iter_mut().zip(&bv) {
                *s = _mm512_fmadd_ps(av, bq, *s);
            }
        }
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (q, &v) in acc_i.iter().enumerate() {
            let lanes = t.cols.saturating_sub(q * NR).min(NR);
            if lanes > 0 {
                let bias = t.bias.map(|b| &b[q * NR..]);
                // SAFETY: row i, panel q of C: in bounds by the caller's contract.
                unsafe { store_vec(v, t.c.add(i * t.ldc + q * NR), lanes, bias) };
            }
        }
    }
}

/// # Safety
/// As [`super::kernel::GemvFn`] (this table is only handed out when AVX-512F is present).
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
            (2, 4) => gemv_rn::<2, 4>(g),
            (3, 1) => gemv_rn::<3, 1>(g),
            (3, 2) => gemv_rn::<3, 2>(g),
            (3, 3) => gemv_rn::<3, 3>(g),
            (3, 4) => gemv_rn::<3, 4>(g),
            (4, 1) => gemv_rn::<4, 1>(g),
            (4, 2) => gemv_rn::<4, 2>(g),
            (4, 3) => gemv_rn::<4, 3>(g),
            (4, 4) => gemv_rn::<4, 4>(g),
            (r, np) => unreachable!("{r} rows × {np} panels"),
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn gemv_rn<const R: usize, const NP: usize>(g: &GemvCall<'_>) {
    let (k, ldx) = (g.k, g.ldx);
    assert!(g.w.len() >= NP * k && g.x.len() >= (R - 1) * ldx + k);
    let w = g.w.as_ptr().cast::<f32>();
    let x = g.x.as_ptr();
    let mut acc = [[_mm512_setzero_ps(); NP]; R];
    for p in 0..k {
        let mut xv = [_mm512_setzero_ps(); R];
        for (r, v) in xv.iter_mut().enumerate() {
            // SAFETY: r·ldx + p < (R - 1)·ldx + k ≤ x.len().
            *v = _mm512_set1_ps(unsafe { *x.add(r * ldx + p) });
        }
        for q in 0..NP {
            // SAFETY: block q·k + p < NP·k ≤ w.len(); blocks are 64-byte aligned.
            let wq = unsafe { _mm512_load_ps(w.add((q * k + p) * NR)) };
            for (acc_r, &xr) in acc.iter_mut().zip(&xv) {
                acc_r[q] = _mm512_fmadd_ps(xr, wq, acc_r[q]);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (q, &v) in acc_r.iter().enumerate() {
            let lanes = g.cols.saturating_sub(q * NR).min(NR);
            if lanes > 0 {
                // SAFETY: row r, panel q of y: in bounds by the caller's contract.
                unsafe {
                    store_vec(
                        v,
                        g.y.add(r * g.ldy + q * NR),
                        lanes,
                        Some(&g.bias[q * NR..]),
                    )
                };
            }
        }
    }
}

/// `cp[..lanes] = acc + (bias or cp)` for `1 ≤ lanes ≤ 16`, masked: lanes past `lanes` are
/// neither read nor written.
///
/// # Safety
/// `cp` is valid for reads and writes of `lanes` floats.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store_vec(acc: __m512, cp: *mut f32, lanes: usize, bias: Option<&[f32]>) {
    let m: __mmask16 = if lanes >= NR {
        0xffff
    } else {
        (1u16 << lanes) - 1
    };
    // SAFETY: masked-off lanes are not accessed; the others lie within cp[..lanes] and, for the
    // bias, within b (asserted).
    unsafe {
        let prev = match bias {
            Some(b) => {
                assert!(b.len() >= lanes);
                _mm512_maskz_loadu_ps(m, b.as_ptr())
            }
            None => _mm512_maskz_loadu_ps(m, cp),
        };
        _mm512_mask_storeu_ps(cp, m, _mm512_add_ps(acc, prev));
    }
}
