//! A Linear layer's forward pass and its gradients (`dX = G·W`, `dW = Gᵀ·X`, `db = Σ_batch G`)
//! in the two precisions of the trainer: the reference accumulates every dot product in f64 and
//! rounds it once; the fast path runs all three products on the fast CPU path's packed kernels
//! (`fast_linear.rs`: f32 FMA chains, AVX-512/AVX2 where the CPU has them, its thread pool).

use crate::cpu::Kernel;
use crate::model::Linear;
use crate::train::fast_linear;

/// Which arithmetic a training step uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precision {
    /// f64 inside each op, each op's output rounded to f32.
    Reference,
    /// f32 accumulation in the matrix products, threads for large ones.
    Fast,
}

/// `y = x·Wᵀ + b` on `batch` rows.
pub(crate) fn forward(lin: &Linear, x: &[f32], batch: usize, p: Precision) -> Vec<f32> {
    let (n_in, n_out) = (lin.in_features(), lin.out_features());
    if p == Precision::Fast {
        return fast_linear::forward(lin, x, batch, Kernel::best());
    }
    let w = lin.weight();
    let mut y = Vec::with_capacity(batch * n_out);
    for xr in x.chunks_exact(n_in) {
        for (o, wr) in w.chunks_exact(n_in).enumerate() {
            let b0 = lin.bias().map_or(0.0, |v| f64::from(v[o]));
            y.push((b0 + dot_f64(xr, wr)) as f32);
        }
    }
    y
}

/// The gradients of a Linear layer: `(dX or None, dW, db or None)`.
pub(crate) type LinearGrads = (Option<Vec<f32>>, Vec<f32>, Option<Vec<f32>>);

/// Backward of `y = x·Wᵀ + b` for the upstream gradient `g` (`[batch, out]`); `dX` only when
/// `need_dx` (the first layer's input needs none).
pub(crate) fn backward(
    lin: &Linear,
    x: &[f32],
    g: &[f32],
    batch: usize,
    need_dx: bool,
    p: Precision,
) -> LinearGrads {
    let (n_in, n_out) = (lin.in_features(), lin.out_features());
    let w = lin.weight();
    if p == Precision::Fast {
        let kernel = Kernel::best();
        let db = lin.bias().map(|_| fast_linear::bias_grad(g, n_out));
        let dw = fast_linear::weight_grad(x, g, batch, (n_in, n_out), kernel);
        let dx = need_dx.then(|| fast_linear::input_grad(lin, g, batch, kernel));
        return (dx, dw, db);
    }
    let db = lin.bias().map(|_| {
        (0..n_out)
            .map(|o| (0..batch).map(|b| f64::from(g[b * n_out + o])).sum::<f64>() as f32)
            .collect()
    });
    // dW[o, i] = Σ_b g[b, o]·x[b, i], one weight row at a time.
    let mut dw = Vec::with_capacity(n_out * n_in);
    let mut acc = vec![0.0f64; n_in];
    for o in 0..n_out {
        acc.fill(0.0);
        for (b, xr) in x.chunks_exact(n_in).enumerate() {
            let gv = f64::from(g[b * n_out + o]);
            for (a, &xv) in acc.iter_mut().zip(xr) {
                *a += gv * f64::from(xv);
            }
        }
        dw.extend(acc.iter().map(|&a| a as f32));
    }
    // dX[b, i] = Σ_o g[b, o]·W[o, i].
    let dx = need_dx.then(|| {
        let mut dx = Vec::with_capacity(batch * n_in);
        for gr in g.chunks_exact(n_out) {
            acc.fill(0.0);
            for (&gv, wr) in gr.iter().zip(w.chunks_exact(n_in)) {
                let gv = f64::from(gv);
                for (a, &wv) in acc.iter_mut().zip(wr) {
                    *a += gv * f64::from(wv);
                }
            }
            dx.extend(acc.iter().map(|&a| a as f32));
        }
        dx
    });
    (dx, dw, db)
}

fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}
