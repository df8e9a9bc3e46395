//! The fast path's Linear products on the packed f32 kernels and their thread pool
//! ([`PackedLinear`]), arranged so that each step packs as little as it can: the operand
//! streamed as panels is the one that packs by a copy (`B` row-major, [`PackedLinear::from_kn`])
//! or the smaller one to transpose. Every output is one f32 FMA chain over the reduced dimension
//! in order (docs/CPU.md), so each result is the same whichever arrangement and kernel set runs
//! it; the bias is added once at the end, as the forward kernels add it.

use std::sync::OnceLock;

use crate::cpu::{Kernel, PackedLinear, Threads};
use crate::model::Linear;

/// `y = x·Wᵀ + b` on `batch` rows.
pub(crate) fn forward(lin: &Linear, x: &[f32], batch: usize, kernel: Kernel) -> Vec<f32> {
    let (k, n) = (lin.in_features(), lin.out_features());
    let mut y = vec![0.0f32; batch * n];
    if batch.saturating_mul(k + n) >= k * n {
        // Pack W (the smaller operand) as the forward pass does.
        let w = PackedLinear::from_nk(k, n, lin.weight(), kernel).expect(SUPPORTED);
        w.forward(x, batch, &mut y, pool(), &|_, _| {});
    } else {
        // Few rows: yᵀ = W·xᵀ, packing x ([batch, k] is a Linear weight's layout) and reading
        // W in place, then y = (yᵀ)ᵀ.
        let xs = PackedLinear::from_nk(k, batch, x, kernel).expect(SUPPORTED);
        let mut yt = vec![0.0f32; n * batch];
        xs.forward(lin.weight(), n, &mut yt, pool(), &|_, _| {});
        transpose_into(&yt, n, batch, &mut y);
    }
    if let Some(b) = lin.bias() {
        for row in y.chunks_exact_mut(n) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
    }
    y
}

/// `dX = G·W` (`G` `[batch, out]`, `W` `[out, in]`): `W` packed by a copy.
pub(crate) fn input_grad(lin: &Linear, g: &[f32], batch: usize, kernel: Kernel) -> Vec<f32> {
    let (k, n) = (lin.in_features(), lin.out_features());
    let w = PackedLinear::from_kn(n, k, lin.weight(), kernel).expect(SUPPORTED);
    let mut dx = vec![0.0f32; batch * k];
    w.forward(g, batch, &mut dx, pool(), &|_, _| {});
    dx
}

/// `dW = Gᵀ·X` (`[out, in]`): `X` packed by a copy, `G` transposed (`[out, batch]`).
pub(crate) fn weight_grad(
    x: &[f32],
    g: &[f32],
    batch: usize,
    (k, n): (usize, usize),
    kernel: Kernel,
) -> Vec<f32> {
    let xs = PackedLinear::from_kn(batch, k, x, kernel).expect(SUPPORTED);
    let mut gt = vec![0.0f32; n * batch];
    transpose_into(g, batch, n, &mut gt);
    let mut dw = vec![0.0f32; n * k];
    xs.forward(&gt, n, &mut dw, pool(), &|_, _| {});
    dw
}

/// `db = Σ_batch G` in f32, each column summed over the rows in order (rows added one at a
/// time: contiguous, vectorisable).
pub(crate) fn bias_grad(g: &[f32], n: usize) -> Vec<f32> {
    let mut rows = g.chunks_exact(n);
    let mut acc = rows.next().map_or_else(|| vec![0.0; n], <[f32]>::to_vec);
    for r in rows {
        acc.iter_mut().zip(r).for_each(|(a, v)| *a += v);
    }
    acc
}

const SUPPORTED: &str = "the training path's kernel is supported (Kernel::best or checked)";

/// `t = mᵀ` for `m` `[rows, cols]`, in tiles so both sides stay in cache.
fn transpose_into(m: &[f32], rows: usize, cols: usize, t: &mut [f32]) {
    const T: usize = 16;
    for r0 in (0..rows).step_by(T) {
        for c0 in (0..cols).step_by(T) {
            for r in r0..(r0 + T).min(rows) {
                for c in c0..(c0 + T).min(cols) {
                    t[c * rows + r] = m[r * cols + c];
                }
            }
        }
    }
}

/// The fast path's thread pool: one thread per core, started on first use and shared by every
/// trainer (a pool runs one job at a time; concurrent trainers take turns).
fn pool() -> &'static Threads {
    static POOL: OnceLock<Threads> = OnceLock::new();
    POOL.get_or_init(|| Threads::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
}
