//! Portable kernels: plain Rust on fixed-size arrays, which the compiler turns into whatever
//! vector code the target has (SSE2 on x86-64 without AVX2, simd128 on `wasm32` when enabled,
//! NEON on aarch64). Separate multiply and add, not `mul_add`: without FMA hardware `mul_add`
//! is a slow library call.

use super::kernel::{GemmTile, GemvCall, Kernel, Kernels, store_tile};
use super::pack::NR;

pub(crate) static KERNELS: Kernels = Kernels {
    kernel: Kernel::Portable,
    mr: 4,
    npk: 1,
    kc: 256,
    mc: 64,
    gemm,
    gemv_rows: 4,
    gemv_np: [0, 2, 2, 1, 1],
    gemv,
};

/// # Safety
/// As [`super::kernel::GemmFn`].
unsafe fn gemm(t: &GemmTile<'_>) {
    // SAFETY: the caller's contract, passed on; rows picks the instance whose tile it fits.
    unsafe {
        match t.rows {
            1 => gemm_mr::<1>(t),
            2 => gemm_mr::<2>(t),
            3 => gemm_mr::<3>(t),
            4 => gemm_mr::<4>(t),
            r => unreachable!("{r} rows"),
        }
    }
}

unsafe fn gemm_mr<const MR: usize>(t: &GemmTile<'_>) {
    // One panel per call (npk = 1), so b_stride is never needed past this check.
    assert!(t.np == 1 && t.b.len() >= (t.np - 1) * t.b_stride + t.kc);
    let mut acc = [[0.0f32; NR]; MR];
    let a = &t.a[..t.kc * MR];
    let b = &t.b[..t.kc];
    for (ap, bp) in a.chunks_exact(MR).zip(b) {
        for (acc_i, &av) in acc.iter_mut().zip(ap) {
            for (s, &bv) in acc_i.iter_mut().zip(&bp.0) {
                *s += av * bv;
            }
        }
    }
    // SAFETY: C is valid for this tile by the caller's contract.
    unsafe { store_tile(&acc, t.c, t.ldc, t.cols, t.bias) }
}

/// # Safety
/// As [`super::kernel::GemvFn`].
unsafe fn gemv(g: &GemvCall<'_>) {
    // SAFETY: the caller's contract, passed on; (rows, np) picks the instance that fits.
    unsafe {
        match (g.rows, g.np) {
            (1, 1) => gemv_rn::<1, 1>(g),
            (1, 2) => gemv_rn::<1, 2>(g),
            (2, 1) => gemv_rn::<2, 1>(g),
            (2, 2) => gemv_rn::<2, 2>(g),
            (3, 1) => gemv_rn::<3, 1>(g),
            (4, 1) => gemv_rn::<4, 1>(g),
            (r, np) => unreachable!("{r} rows × {np} panels"),
        }
    }
}

unsafe fn gemv_rn<const R: usize, const NP: usize>(g: &GemvCall<'_>) {
    let k = g.k;
    let xs: [&[f32]; R] = std::array::from_fn(|r| &g.x[r * g.ldx..r * g.ldx + k]);
    let ws: [&[super::pack::Block]; NP] = std::array::from_fn(|q| &g.w[q * k..(q + 1) * k]);
    let mut acc = [[[0.0f32; NR]; R]; NP];
    for p in 0..k {
        for (acc_q, wq) in acc.iter_mut().zip(&ws) {
            let wb = &wq[p].0;
            for (acc_r, xr) in acc_q.iter_mut().zip(&xs) {
                let xv = xr[p];
                for (s, &wv) in acc_r.iter_mut().zip(wb) {
                    *s += xv * wv;
                }
            }
        }
    }
    for (q, acc_q) in acc.iter().enumerate() {
        let cols = g.cols.saturating_sub(q * NR).min(NR);
        if cols > 0 {
            // SAFETY: panel q's columns of y, in bounds by the caller's contract.
            unsafe { store_tile(acc_q, g.y.add(q * NR), g.ldy, cols, Some(&g.bias[q * NR..])) }
        }
    }
}
