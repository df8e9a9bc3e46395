//! AVX-512F kernel (x86-64): rows × panels register tiles, one zmm accumulator per (row, panel),
//! up to 16 of the 32 registers; each W row load serves every row of the tile and each x
//! broadcast every panel. Masked stores handle partial panels without a scalar tail.
//!
//! The AVX-512 intrinsics are stable since Rust 1.89, the crate's `rust-version`.

use std::arch::x86_64::*;

use super::kernel::{Kernel, Kernels, Tile};
use super::pack::NR;

pub(crate) static KERNELS: Kernels = Kernels {
    kernel: Kernel::Avx512,
    // 4 × 4 (16 accumulators): 6 × 4 and 8 × 3 (24) measured no faster (batch 64 and 256,
    // 8 alternations: medians within 1%, 8 × 3 up to 8% slower).
    rows: 4,
    np: [0, 4, 4, 4, 4, 0, 0, 0, 0],
    run,
};

/// `match (rows, np)` over the instances a table allows.
macro_rules! instances {
    ($t:expr; $($r:literal => [$($np:literal)*])*) => {
        match ($t.rows, $t.np) {
            $($(($r, $np) => tile::<$r, $np>($t),)*)*
            (r, np) => unreachable!("{r} rows × {np} panels"),
        }
    };
}

/// # Safety
/// As [`super::kernel::TileFn`] (this table is only handed out when AVX-512F is present).
unsafe fn run(t: &Tile<'_>) {
    // SAFETY: the caller's contract, passed on; (rows, np) picks the instance that fits.
    unsafe { instances!(t; 1 => [1 2 3 4] 2 => [1 2 3 4] 3 => [1 2 3 4] 4 => [1 2 3 4]) }
}

/// Lanes of panel `q` that hold valid columns, as a store/load mask (none past the last).
fn lane_mask(cols: usize, q: usize) -> __mmask16 {
    let lanes = cols.saturating_sub(q * NR).min(NR);
    if lanes == NR {
        0xffff
    } else {
        (1u16 << lanes) - 1
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize, const NP: usize>(t: &Tile<'_>) {
    let (k, ldx, kx, ldw) = (t.k, t.ldx, t.kx, t.ldw);
    assert!(
        t.w.len() >= (NP - 1) * ldw + k
            && (k == 0 || t.x.len() > (R - 1) * ldx + (k - 1) * kx)
            && t.bias.len() >= NP * NR
    );
    let w = t.w.as_ptr().cast::<f32>();
    let x = t.x.as_ptr();
    let mut acc = [[_mm512_setzero_ps(); NP]; R];
    if t.resume {
        for (r, acc_r) in acc.iter_mut().enumerate() {
            for (q, a) in acc_r.iter_mut().enumerate() {
                // SAFETY: row r, panel q of y is valid for the masked lanes by the caller's
                // contract; masked-off lanes are not read (and start from zero).
                *a = unsafe {
                    _mm512_maskz_loadu_ps(lane_mask(t.cols, q), t.y.add(r * t.ldy + q * NR))
                };
            }
        }
    }
    for p in 0..k {
        let mut xv = [_mm512_setzero_ps(); R];
        for (r, v) in xv.iter_mut().enumerate() {
            // SAFETY: r·ldx + p·kx ≤ (R − 1)·ldx + (k − 1)·kx < x.len() (asserted).
            *v = _mm512_set1_ps(unsafe { *x.add(r * ldx + p * kx) });
        }
        for q in 0..NP {
            // SAFETY: block q·ldw + p < (NP − 1)·ldw + k ≤ w.len(); blocks are 64-byte aligned.
            let wq = unsafe { _mm512_load_ps(w.add((q * ldw + p) * NR)) };
            for (acc_r, &xr) in acc.iter_mut().zip(&xv) {
                acc_r[q] = _mm512_fmadd_ps(xr, wq, acc_r[q]);
            }
        }
    }
    let bias = t.bias.as_ptr();
    for (r, acc_r) in acc.iter().enumerate() {
        for (q, &v) in acc_r.iter().enumerate() {
            let m = lane_mask(t.cols, q);
            if m == 0 {
                continue;
            }
            // SAFETY: the bias holds NP·NR values (asserted); row r, panel q of y is valid for
            // the masked lanes by the caller's contract, and the masked store touches no others.
            unsafe {
                let v = if t.last {
                    _mm512_add_ps(v, _mm512_loadu_ps(bias.add(q * NR)))
                } else {
                    v
                };
                _mm512_mask_storeu_ps(t.y.add(r * t.ldy + q * NR), m, v);
            }
        }
    }
}
