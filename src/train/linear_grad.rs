//! A Linear layer's forward pass and its gradients (`dX = G·W`, `dW = Gᵀ·X`, `db = Σ_batch G`)
//! in the two precisions of the trainer: the reference accumulates every dot product in f64 and
//! rounds it once; the fast path runs all three products on the fast CPU path's packed kernels
//! ([`PackedLinear`]: f32 FMA chains, AVX-512/AVX2 where the CPU has them, its thread pool),
//! packing `W`, `Wᵀ` and `Xᵀ` afresh each step since they change.

use std::sync::OnceLock;

use crate::cpu::{PackedLinear, Threads};
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
    if p == Precision::Fast {
        let mut y = vec![0.0f32; batch * n_out];
        PackedLinear::new(lin).forward(x, batch, &mut y, pool(), &|_, _| {});
        return y;
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
    let db = lin.bias().map(|_| {
        (0..n_out)
            .map(|o| {
                let col = (0..batch).map(|b| g[b * n_out + o]);
                match p {
                    Precision::Reference => col.map(f64::from).sum::<f64>() as f32,
                    Precision::Fast => col.sum::<f32>(),
                }
            })
            .collect()
    });
    if p == Precision::Fast {
        // dW[out, in] = Gᵀ·X = Gᵀ·(Xᵀ)ᵀ; dX[batch, in] = G·W = G·(Wᵀ)ᵀ.
        let dw = product_nt(
            &transpose(g, batch, n_out),
            n_out,
            batch,
            transpose(x, batch, n_in),
            n_in,
        );
        let dx = need_dx.then(|| product_nt(g, batch, n_out, transpose(w, n_out, n_in), n_in));
        return (dx, dw, db);
    }
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

/// `a[rows, k] · bᵀ` for `b` `[n, k]` row-major, on the packed kernels (`b` is packed as the
/// weight of a Linear(k, n)).
fn product_nt(a: &[f32], rows: usize, k: usize, b: Vec<f32>, n: usize) -> Vec<f32> {
    let lin = Linear::new(k, n, b, None).expect("the shapes come from the model and the batch");
    let mut y = vec![0.0f32; rows * n];
    PackedLinear::new(&lin).forward(a, rows, &mut y, pool(), &|_, _| {});
    y
}

/// `m[rows, cols]` transposed.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; m.len()];
    for (r, row) in m.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}

/// The fast path's thread pool: one thread per core, started on first use and shared by every
/// trainer (a pool runs one job at a time; concurrent trainers take turns).
fn pool() -> &'static Threads {
    static POOL: OnceLock<Threads> = OnceLock::new();
    POOL.get_or_init(|| Threads::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
}
