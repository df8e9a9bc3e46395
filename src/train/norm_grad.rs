//! BatchNorm1d in train mode and LayerNorm: forward passes that keep what the backward needs
//! (each group's mean and `1/√(var + eps)`), and their gradients, in f64 with f32 outputs.
//!
//! Both normalise a group (a feature's column for BatchNorm1d, a row for LayerNorm) with the
//! biased variance: `x̂ = (x − μ)·r`, `y = x̂·γ + β`. With `ĝ = g·γ`, the input gradient is
//! `r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))`, and `dγ = Σ g·x̂`, `dβ = Σ g` over the batch.

use crate::error::{Error, Result};
use crate::model::{BatchNorm1d, LayerNorm};

/// PyTorch's default BatchNorm momentum.
pub(crate) const BN_MOMENTUM: f64 = 0.1;

/// Per-group statistics saved by a forward pass.
#[derive(Clone, Debug)]
pub(crate) struct Stats {
    mean: Vec<f64>,
    rstd: Vec<f64>,
}

/// BatchNorm1d's train-mode forward on `[batch, c]`: normalises with the batch statistics and
/// updates the running ones (`(1 − m)·running + m·stat`, the variance unbiased: `n/(n − 1)`),
/// and `num_batches_tracked`.
pub(crate) fn batchnorm_forward(
    bn: &mut BatchNorm1d,
    x: &[f32],
    batch: usize,
) -> Result<(Vec<f32>, Stats)> {
    let c = bn.features();
    if batch < 2 {
        return Err(Error::invalid(format!(
            "BatchNorm1d in train mode needs more than 1 value per channel, got input size \
             [{batch}, {c}] (as PyTorch; use drop_last or another batch size)"
        )));
    }
    let n = batch as f64;
    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    for f in 0..c {
        let col = || (0..batch).map(|b| f64::from(x[b * c + f]));
        let m = col().sum::<f64>() / n;
        mean[f] = m;
        var[f] = col().map(|v| (v - m) * (v - m)).sum::<f64>() / n;
    }
    let eps = f64::from(bn.eps());
    let rstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let (w, b) = (affine(bn.weight(), c, 1.0), affine(bn.bias(), c, 0.0));
    let y = (0..batch * c)
        .map(|i| {
            let f = i % c;
            ((f64::from(x[i]) - mean[f]) * rstd[f] * w[f] + b[f]) as f32
        })
        .collect();
    let tracked = bn.num_batches_tracked() + 1;
    bn.set_num_batches_tracked(tracked);
    let (rm, rv, _, _) = bn.tensors_mut();
    for (r, m) in rm.iter_mut().zip(&mean) {
        *r = ((1.0 - BN_MOMENTUM) * f64::from(*r) + BN_MOMENTUM * m) as f32;
    }
    for (r, v) in rv.iter_mut().zip(&var) {
        let unbiased = v * n / (n - 1.0);
        *r = ((1.0 - BN_MOMENTUM) * f64::from(*r) + BN_MOMENTUM * unbiased) as f32;
    }
    Ok((y, Stats { mean, rstd }))
}

/// LayerNorm's forward on `[batch, c]`, each row normalised by its own statistics.
pub(crate) fn layernorm_forward(ln: &LayerNorm, x: &[f32], batch: usize) -> (Vec<f32>, Stats) {
    let c = ln.features();
    let (w, b) = (affine(ln.weight(), c, 1.0), affine(ln.bias(), c, 0.0));
    let eps = f64::from(ln.eps());
    let mut y = Vec::with_capacity(batch * c);
    let (mut mean, mut rstd) = (Vec::with_capacity(batch), Vec::with_capacity(batch));
    for row in x.chunks_exact(c) {
        let m = row.iter().map(|&v| f64::from(v)).sum::<f64>() / c as f64;
        let var = row
            .iter()
            .map(|&v| (f64::from(v) - m) * (f64::from(v) - m))
            .sum::<f64>()
            / c as f64;
        let r = 1.0 / (var + eps).sqrt();
        y.extend(
            row.iter()
                .enumerate()
                .map(|(f, &v)| ((f64::from(v) - m) * r * w[f] + b[f]) as f32),
        );
        mean.push(m);
        rstd.push(r);
    }
    (y, Stats { mean, rstd })
}

/// The gradients of a normalisation: `(dX, dγ, dβ)` (`dγ`/`dβ` empty without them).
pub(crate) type NormGrads = (Vec<f32>, Vec<f32>, Vec<f32>);

/// BatchNorm1d's backward (train mode): the groups are the columns.
pub(crate) fn batchnorm_backward(
    bn: &BatchNorm1d,
    x: &[f32],
    g: &[f32],
    batch: usize,
    s: &Stats,
) -> NormGrads {
    norm_backward(x, g, s, bn.weight(), batch, bn.features(), true)
}

/// LayerNorm's backward: the groups are the rows.
pub(crate) fn layernorm_backward(
    ln: &LayerNorm,
    x: &[f32],
    g: &[f32],
    batch: usize,
    s: &Stats,
) -> NormGrads {
    norm_backward(x, g, s, ln.weight(), batch, ln.features(), false)
}

/// The shared backward on `[batch, c]`; a group is a column (`by_column`) or a row.
fn norm_backward(
    x: &[f32],
    g: &[f32],
    s: &Stats,
    weight: Option<&[f32]>,
    batch: usize,
    c: usize,
    by_column: bool,
) -> NormGrads {
    let group = |b: usize, f: usize| if by_column { f } else { b };
    let size = (if by_column { batch } else { c }) as f64;
    let groups = s.mean.len();
    let w = affine(weight, c, 1.0);
    let (mut sum_gh, mut sum_ghx) = (vec![0.0; groups], vec![0.0; groups]);
    let (mut dw, mut db) = (vec![0.0f64; c], vec![0.0f64; c]);
    let xhat = |b: usize, f: usize| {
        let gr = group(b, f);
        (f64::from(x[b * c + f]) - s.mean[gr]) * s.rstd[gr]
    };
    for b in 0..batch {
        for f in 0..c {
            let gv = f64::from(g[b * c + f]);
            let xh = xhat(b, f);
            let gr = group(b, f);
            sum_gh[gr] += gv * w[f];
            sum_ghx[gr] += gv * w[f] * xh;
            dw[f] += gv * xh;
            db[f] += gv;
        }
    }
    let mut dx = vec![0.0f32; batch * c];
    for b in 0..batch {
        for f in 0..c {
            let gr = group(b, f);
            let gh = f64::from(g[b * c + f]) * w[f];
            let v = s.rstd[gr] * (gh - sum_gh[gr] / size - xhat(b, f) * sum_ghx[gr] / size);
            dx[b * c + f] = v as f32;
        }
    }
    let round = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    (dx, round(dw), round(db))
}

/// An optional affine vector in f64, or `c` copies of `default`.
fn affine(v: Option<&[f32]>, c: usize, default: f64) -> Vec<f64> {
    v.map_or_else(
        || vec![default; c],
        |v| v.iter().map(|&x| f64::from(x)).collect(),
    )
}
