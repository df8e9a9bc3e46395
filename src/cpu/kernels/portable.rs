//! Portable kernel: plain Rust on fixed-size arrays, which the compiler turns into whatever
//! vector code the target has (SSE2 on x86-64 without AVX2, simd128 on `wasm32` when enabled,
//! NEON on aarch64). Separate multiply and add, not `mul_add`: without FMA hardware `mul_add`
//! is a slow library call.

use super::kernel::{Kernel, Kernels, Tile, load_tile, store_tile};
use super::pack::{Block, NR};

pub(crate) static KERNELS: Kernels = Kernels {
    kernel: Kernel::Portable,
    rows: 4,
    np: [0, 2, 2, 1, 1, 0, 0, 0, 0],
    run,
};

/// # Safety
/// As [`super::kernel::TileFn`].
unsafe fn run(t: &Tile<'_>) {
    // SAFETY: the caller's contract, passed on; (rows, np) picks the instance that fits.
    unsafe {
        match (t.rows, t.np) {
            (1, 1) => tile::<1, 1>(t),
            (1, 2) => tile::<1, 2>(t),
            (2, 1) => tile::<2, 1>(t),
            (2, 2) => tile::<2, 2>(t),
            (3, 1) => tile::<3, 1>(t),
            (4, 1) => tile::<4, 1>(t),
            (r, np) => unreachable!("{r} rows × {np} panels"),
        }
    }
}

unsafe fn tile<const R: usize, const NP: usize>(t: &Tile<'_>) {
    let k = t.k;
    let kx = t.kx;
    let xs: [&[f32]; R] = std::array::from_fn(|r| t.x.get(r * t.ldx..).unwrap_or(&[]));
    let ws: [&[Block]; NP] = std::array::from_fn(|q| &t.w[q * t.ldw..q * t.ldw + k]);
    let mut acc = [[[0.0f32; NR]; R]; NP];
    if t.resume {
        for (q, acc_q) in acc.iter_mut().enumerate() {
            let cols = t.cols.saturating_sub(q * NR).min(NR);
            // SAFETY: panel q's columns of y, in bounds by the caller's contract.
            unsafe { load_tile(acc_q, t.y.add(q * NR), t.ldy, cols) }
        }
    }
    for p in 0..k {
        for (acc_q, wq) in acc.iter_mut().zip(&ws) {
            let wb = &wq[p].0;
            for (acc_r, xr) in acc_q.iter_mut().zip(&xs) {
                let xv = xr[p * kx];
                for (s, &wv) in acc_r.iter_mut().zip(wb) {
                    *s += xv * wv;
                }
            }
        }
    }
    for (q, acc_q) in acc.iter().enumerate() {
        let cols = t.cols.saturating_sub(q * NR).min(NR);
        if cols > 0 {
            let bias = t.last.then(|| &t.bias[q * NR..]);
            // SAFETY: panel q's columns of y, in bounds by the caller's contract.
            unsafe { store_tile(acc_q, t.y.add(q * NR), t.ldy, cols, bias) }
        }
    }
}
