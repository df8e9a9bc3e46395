//! A train-mode forward pass that records what each module's backward needs (the tape), and the
//! backward pass over it: the gradient of every trainable tensor, in [`Mlp::parameters`] order.
//!
//! Train mode differs from inference in BatchNorm1d (batch statistics; the running ones and
//! `num_batches_tracked` are updated as a side effect, as in PyTorch) and Dropout (a random mask
//! scaled by `1/(1 − p)`). Each module's output, and each gradient, is rounded to f32 as PyTorch's
//! float32 autograd rounds after every op.

use crate::activation::{Activation, log_softmax_row_f64, softmax_row_f64};
use crate::error::{Error, Result};
use crate::model::{Mlp, Module};
use crate::rng::Generator;
use crate::train::activation_grad::{derivative, log_softmax_row_backward, softmax_row_backward};
use crate::train::expr_grad;
use crate::train::linear_grad::{self, Precision};
use crate::train::norm_grad::{self, Stats};

/// What one module saved for its backward.
enum Saved {
    /// Nothing beyond the input (Linear, PReLU, elementwise activations, no-ops).
    Input,
    /// A norm's statistics.
    Norm(Stats),
    /// Dropout's scaled mask (`0` or `1/(1 − p)` per element).
    Mask(Vec<f32>),
}

/// The forward pass's record: each module's input and output, and what it saved.
pub(crate) struct Tape {
    batch: usize,
    /// `inputs[i]` is module `i`'s input; `inputs[n]` the model's output.
    values: Vec<Vec<f32>>,
    widths: Vec<usize>,
    saved: Vec<Saved>,
}

impl Tape {
    /// The model's output, `[batch, out]`.
    pub(crate) fn output(&self) -> &[f32] {
        self.values.last().map_or(&[], Vec::as_slice)
    }

    /// Each module's input (`values()[i]` for module `i`), then the model's output.
    pub(crate) fn values(&self) -> &[Vec<f32>] {
        &self.values
    }

    /// Rows in the batch.
    pub(crate) fn batch(&self) -> usize {
        self.batch
    }
}

/// Modules a training step cannot differentiate, as a clear error (before anything changes):
/// an ONNX elementwise subgraph with per-feature constants, which PyTorch would train.
pub(crate) fn check_trainable(model: &Mlp) -> Result<()> {
    for (i, m) in model.modules().iter().enumerate() {
        if let Module::Elementwise { expr, class } = m
            && !expr_grad::trainable(expr)
        {
            return Err(Error::invalid(format!(
                "cannot train module {i} ({}): its ONNX expression has per-feature constants \
                 (an exporter folds PReLU slopes and norm parameters into them) that PyTorch \
                 would train and this cannot; train the state_dict with --arch instead",
                class.as_deref().unwrap_or("a function")
            )));
        }
    }
    Ok(())
}

/// The train-mode forward pass of `model` on `x` (`[batch, in]`).
pub(crate) fn forward(
    model: &mut Mlp,
    x: &[f32],
    batch: usize,
    p: Precision,
    dropout: &mut Generator,
) -> Result<Tape> {
    check_trainable(model)?;
    let mut width = model.in_features();
    let mut values = vec![x.to_vec()];
    let mut widths = vec![width];
    let mut saved = Vec::new();
    for m in model.modules_mut() {
        let x = values.last().expect("the input is there");
        let (y, s) = match &mut *m {
            Module::Linear(l) => (linear_grad::forward(l, x, batch, p), Saved::Input),
            Module::BatchNorm1d(bn) => {
                let (y, st) = norm_grad::batchnorm_forward(bn, x, batch)?;
                (y, Saved::Norm(st))
            }
            Module::LayerNorm(ln) => {
                let (y, st) = norm_grad::layernorm_forward(ln, x, batch);
                (y, Saved::Norm(st))
            }
            Module::Dropout(rate) => {
                let mask = dropout_mask(*rate, x.len(), dropout);
                let y = x.iter().zip(&mask).map(|(a, b)| a * b).collect();
                (y, Saved::Mask(mask))
            }
            other => (forward_plain(other, x, width), Saved::Input),
        };
        width = m.out_width(width)?;
        values.push(y);
        widths.push(width);
        saved.push(s);
    }
    Ok(Tape {
        batch,
        values,
        widths,
        saved,
    })
}

/// The reference forward of the modules that save nothing but their input: activations,
/// PReLU, Flatten, Identity (f64 inside, rounded to f32, as `cpu::forward`).
fn forward_plain(m: &Module, x: &[f32], width: usize) -> Vec<f32> {
    match m {
        Module::Activation(a) | Module::Function(a) if a.is_row() => {
            let mut out = Vec::with_capacity(x.len());
            for row in x.chunks_exact(width) {
                let mut r: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
                if *a == Activation::Softmax {
                    softmax_row_f64(&mut r);
                } else {
                    log_softmax_row_f64(&mut r);
                }
                out.extend(r.iter().map(|&v| v as f32));
            }
            out
        }
        // ReLU is exact: f32 gives the f64 formula's bits, without its per-element dispatch.
        Module::Activation(Activation::Relu) | Module::Function(Activation::Relu) => x
            .iter()
            .map(|&v| if v > 0.0 || v.is_nan() { v } else { 0.0 })
            .collect(),
        Module::Activation(a) | Module::Function(a) => x
            .iter()
            .map(|&v| a.apply_f64(f64::from(v)) as f32)
            .collect(),
        Module::PRelu(p) => {
            let w = p.weight();
            x.iter()
                .enumerate()
                .map(|(k, &v)| {
                    let c = if w.len() == 1 { 0 } else { k % width };
                    if v > 0.0 {
                        v
                    } else {
                        (f64::from(w[c]) * f64::from(v)) as f32
                    }
                })
                .collect()
        }
        Module::Elementwise { expr, .. } => x
            .iter()
            .enumerate()
            .map(|(k, &v)| expr.eval(v, k % width))
            .collect(),
        _ => x.to_vec(),
    }
}

/// Dropout's mask: each element kept with probability `1 − p` (a uniform draw from `rng` ≥ p),
/// kept ones scaled by `1/(1 − p)` rounded to f32 as ATen's `noise.div_(1 − p)`; `p = 1` drops
/// everything. The draws are this crate's own, not PyTorch's bernoulli stream.
pub(crate) fn dropout_mask(p: f32, n: usize, rng: &mut Generator) -> Vec<f32> {
    let p = f64::from(p);
    if p >= 1.0 {
        return vec![0.0; n];
    }
    let scale = (1.0 / (1.0 - p)) as f32;
    (0..n)
        .map(|_| {
            if rng.uniform_f64(0.0, 1.0) >= p {
                scale
            } else {
                0.0
            }
        })
        .collect()
}

/// The gradients of every trainable tensor of `model`, in [`Mlp::parameters`] order, given the
/// gradient of the loss with respect to the output (`[batch, out]`).
pub(crate) fn backward(
    model: &Mlp,
    tape: &Tape,
    grad_out: Vec<f32>,
    p: Precision,
) -> Result<Vec<Vec<f32>>> {
    let batch = tape.batch;
    let mut g = grad_out;
    // Per module, its parameter gradients in its state_dict order.
    let mut per_module: Vec<Vec<Vec<f32>>> = vec![Vec::new(); model.modules().len()];
    let first_with_params = model
        .modules()
        .iter()
        .position(Module::has_tensors)
        .unwrap_or(0);
    for (i, m) in model.modules().iter().enumerate().rev() {
        let (x, y) = (&tape.values[i], &tape.values[i + 1]);
        let width = tape.widths[i];
        let need_dx = i > first_with_params;
        g = match (m, &tape.saved[i]) {
            (Module::Linear(l), _) => {
                let (dx, dw, db) = linear_grad::backward(l, x, &g, batch, need_dx, p);
                per_module[i].push(dw);
                per_module[i].extend(db);
                dx.unwrap_or_default()
            }
            (Module::BatchNorm1d(bn), Saved::Norm(s)) => {
                let (dx, dw, db) = norm_grad::batchnorm_backward(bn, x, &g, batch, s);
                push_affine(&mut per_module[i], bn.weight(), bn.bias(), dw, db);
                dx
            }
            (Module::LayerNorm(ln), Saved::Norm(s)) => {
                let (dx, dw, db) = norm_grad::layernorm_backward(ln, x, &g, batch, s);
                push_affine(&mut per_module[i], ln.weight(), ln.bias(), dw, db);
                dx
            }
            (Module::PRelu(pr), _) => {
                let w = pr.weight();
                let mut dw = vec![0.0f64; w.len()];
                let dx = x
                    .iter()
                    .zip(&g)
                    .enumerate()
                    .map(|(k, (&xv, &gv))| {
                        let c = if w.len() == 1 { 0 } else { k % width };
                        if xv > 0.0 {
                            gv
                        } else {
                            dw[c] += f64::from(xv) * f64::from(gv);
                            (f64::from(w[c]) * f64::from(gv)) as f32
                        }
                    })
                    .collect();
                per_module[i].push(dw.into_iter().map(|v| v as f32).collect());
                dx
            }
            // ReLU's mask in place: no fresh buffer (and its page faults) per step.
            (Module::Activation(Activation::Relu) | Module::Function(Activation::Relu), _) => {
                let mut g = std::mem::take(&mut g);
                relu_backward_in_place(y, &mut g);
                g
            }
            (Module::Activation(a) | Module::Function(a), _) => {
                activation_backward(*a, x, y, &g, width)
            }
            (Module::Dropout(_), Saved::Mask(mask)) => {
                g.iter().zip(mask).map(|(a, b)| a * b).collect()
            }
            (Module::Elementwise { expr, .. }, _) => x
                .iter()
                .zip(&g)
                .enumerate()
                .map(|(k, (&xv, &gv))| {
                    (f64::from(gv) * expr_grad::derivative(expr, xv, k % width)) as f32
                })
                .collect(),
            (Module::Flatten | Module::Identity, _) => g,
            (other, _) => {
                return Err(Error::invalid(format!(
                    "cannot train module {i} ({}): no backward",
                    other.class().unwrap_or("a function")
                )));
            }
        };
    }
    Ok(per_module.into_iter().flatten().collect())
}

fn push_affine(
    out: &mut Vec<Vec<f32>>,
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    dw: Vec<f32>,
    db: Vec<f32>,
) {
    if weight.is_some() {
        out.push(dw);
    }
    if bias.is_some() {
        out.push(db);
    }
}

/// An activation's vector-Jacobian product on `[rows, width]`: the input gradient for the
/// upstream gradient `g`, as PyTorch's autograd computes it (its forward output first, rounded to
/// f32, for the activations that differentiate from their output). The reference a device
/// kernel's backward is checked against.
pub fn activation_vjp(a: Activation, x: &[f32], g: &[f32], width: usize) -> Vec<f32> {
    let y = forward_plain(&Module::Activation(a), x, width);
    activation_backward(a, x, &y, g, width)
}

/// An activation's input gradient from its input `x`, output `y` and upstream gradient `g`.
fn activation_backward(a: Activation, x: &[f32], y: &[f32], g: &[f32], width: usize) -> Vec<f32> {
    if a.is_row() {
        let mut out = vec![0.0f32; g.len()];
        let mut row = vec![0.0f64; width];
        for ((o, yr), gr) in out
            .chunks_exact_mut(width)
            .zip(y.chunks_exact(width))
            .zip(g.chunks_exact(width))
        {
            if a == Activation::Softmax {
                softmax_row_backward(yr, gr, &mut row);
            } else {
                log_softmax_row_backward(yr, gr, &mut row);
            }
            for (o, r) in o.iter_mut().zip(&row) {
                *o = *r as f32;
            }
        }
        return out;
    }
    if a == Activation::Relu {
        let mut g = g.to_vec();
        relu_backward_in_place(y, &mut g);
        return g;
    }
    x.iter()
        .zip(y)
        .zip(g)
        .map(|((&x, &y), &g)| (f64::from(g) * derivative(a, f64::from(x), f64::from(y))) as f32)
        .collect()
}

/// ReLU's input gradient from its output: `g·1` or `g·0` (ReLU'(0) = 0, on the output), exact
/// in f32, the f64 product's bits (a negative or non-finite `g` times 0 gives −0 or NaN, as
/// that product does).
fn relu_backward_in_place(y: &[f32], g: &mut [f32]) {
    for (g, &y) in g.iter_mut().zip(y) {
        *g *= f32::from(u8::from(y > 0.0));
    }
}
