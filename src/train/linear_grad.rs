//! A Linear layer's forward pass and its gradients (`dX = G·W`, `dW = Gᵀ·X`, `db = Σ_batch G`)
//! in the two precisions of the trainer: the reference accumulates every dot product in f64 and
//! rounds it once; the fast path accumulates in f32 (as a BLAS does), with 8 independent partial
//! sums so the compiler vectorises the loops, and splits large products over threads.

use crate::model::Linear;

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
    let mut y = vec![0.0f32; batch * n_out];
    let w = lin.weight();
    let bias = lin.bias();
    par_rows(&mut y, n_out, p, batch * n_in * n_out, |b, row| {
        let xr = &x[b * n_in..(b + 1) * n_in];
        for (o, out) in row.iter_mut().enumerate() {
            let wr = &w[o * n_in..(o + 1) * n_in];
            let b0 = bias.map_or(0.0, |v| v[o]);
            *out = match p {
                Precision::Reference => (f64::from(b0) + dot_f64(xr, wr)) as f32,
                Precision::Fast => b0 + dot_f32(xr, wr),
            };
        }
    });
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
    let work = batch * n_in * n_out;
    // dW[o, i] = Σ_b g[b, o]·x[b, i]: one output row per weight row.
    let mut dw = vec![0.0f32; n_out * n_in];
    par_rows(&mut dw, n_in, p, work, |o, row| match p {
        Precision::Reference => {
            let mut acc = vec![0.0f64; n_in];
            for b in 0..batch {
                let gv = f64::from(g[b * n_out + o]);
                for (a, &xv) in acc.iter_mut().zip(&x[b * n_in..(b + 1) * n_in]) {
                    *a += gv * f64::from(xv);
                }
            }
            for (r, a) in row.iter_mut().zip(acc) {
                *r = a as f32;
            }
        }
        Precision::Fast => {
            for b in 0..batch {
                let gv = g[b * n_out + o];
                for (r, &xv) in row.iter_mut().zip(&x[b * n_in..(b + 1) * n_in]) {
                    *r += gv * xv;
                }
            }
        }
    });
    let db = lin.bias().map(|_| {
        (0..n_out)
            .map(|o| match p {
                Precision::Reference => {
                    (0..batch).map(|b| f64::from(g[b * n_out + o])).sum::<f64>() as f32
                }
                Precision::Fast => (0..batch).map(|b| g[b * n_out + o]).sum::<f32>(),
            })
            .collect()
    });
    let dx = need_dx.then(|| {
        // dX[b, i] = Σ_o g[b, o]·W[o, i].
        let mut dx = vec![0.0f32; batch * n_in];
        par_rows(&mut dx, n_in, p, work, |b, row| {
            let gr = &g[b * n_out..(b + 1) * n_out];
            match p {
                Precision::Reference => {
                    let mut acc = vec![0.0f64; n_in];
                    for (o, &gv) in gr.iter().enumerate() {
                        let gv = f64::from(gv);
                        for (a, &wv) in acc.iter_mut().zip(&w[o * n_in..(o + 1) * n_in]) {
                            *a += gv * f64::from(wv);
                        }
                    }
                    for (r, a) in row.iter_mut().zip(acc) {
                        *r = a as f32;
                    }
                }
                Precision::Fast => {
                    for (o, &gv) in gr.iter().enumerate() {
                        for (r, &wv) in row.iter_mut().zip(&w[o * n_in..(o + 1) * n_in]) {
                            *r += gv * wv;
                        }
                    }
                }
            }
        });
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

/// An f32 dot product with 8 partial sums (vectorisable; the summation order differs from a
/// sequential loop, as a BLAS's does).
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((a, &xv), &yv) in acc.iter_mut().zip(x).zip(y) {
            *a += xv * yv;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Runs `f(row_index, row)` over the rows of `out` (each `width` long); the fast path splits the
/// rows over the machine's threads when the product is large enough to pay for them.
fn par_rows<F>(out: &mut [f32], width: usize, p: Precision, work: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let rows = out.len() / width.max(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if p == Precision::Reference || threads < 2 || work < 1 << 18 || rows < 2 {
        for (i, row) in out.chunks_mut(width.max(1)).enumerate() {
            f(i, row);
        }
        return;
    }
    let per = rows.div_ceil(threads);
    std::thread::scope(|s| {
        for (c, chunk) in out.chunks_mut(per * width).enumerate() {
            let f = &f;
            s.spawn(move || {
                for (i, row) in chunk.chunks_mut(width).enumerate() {
                    f(c * per + i, row);
                }
            });
        }
    });
}
