//! The CPU reference forward pass: simple enough to trust at a glance, module by module. It is
//! the yardstick for the GPU and the fast CPU path, not the speed path.
//!
//! Arithmetic: each operation is computed in f64 (a Linear layer's dot products accumulate in
//! f64) and its result rounded to f32, as PyTorch's float32 modules round after every operation.
//! So a product that overflows f32 is ±inf here as in PyTorch, and the result is within an f32
//! rounding per operation of the exact float64 function of the f32 weights and inputs.

use crate::activation::{log_softmax_row_f64, softmax_row_f64};
use crate::error::Result;
use crate::matrix::Matrix;
use crate::model::{Mlp, Module};

/// Runs `model` on `input` (`[batch, in]`) and returns `[batch, out]`.
pub fn forward(model: &Mlp, input: &Matrix) -> Result<Matrix> {
    model.check_input(input.rows(), input.cols())?;
    let batch = input.rows();
    let mut x: Vec<f32> = input.as_slice().to_vec();
    let mut width = input.cols();
    for m in model.modules() {
        x = apply(m, &x, batch, width);
        width = m.out_width(width)?;
    }
    Matrix::new(batch, model.out_features(), x)
}

/// [`forward`] as f64 values (each exactly an f32), for comparisons with a tolerance.
pub fn forward_f64(model: &Mlp, input: &Matrix) -> Result<Vec<f64>> {
    Ok(forward(model, input)?
        .as_slice()
        .iter()
        .map(|&v| f64::from(v))
        .collect())
}

/// One module on `batch` rows of `width` features.
fn apply(m: &Module, x: &[f32], batch: usize, width: usize) -> Vec<f32> {
    let rows = |f: &dyn Fn(&mut [f64])| -> Vec<f32> {
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks(width.max(1)) {
            let mut r: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            f(&mut r);
            out.extend(r.iter().map(|&v| v as f32));
        }
        out
    };
    match m {
        Module::Linear(lin) => {
            let (n_in, n_out) = (lin.in_features(), lin.out_features());
            let mut y = Vec::with_capacity(batch * n_out);
            for xr in x.chunks_exact(n_in) {
                for (o, wr) in lin.weight().chunks_exact(n_in).enumerate() {
                    let mut acc = lin.bias().map_or(0.0, |b| f64::from(b[o]));
                    for (xi, wi) in xr.iter().zip(wr) {
                        acc += f64::from(*xi) * f64::from(*wi);
                    }
                    y.push(acc as f32);
                }
            }
            y
        }
        Module::BatchNorm1d(bn) => x
            .iter()
            .enumerate()
            .map(|(i, &v)| bn.apply_f64(f64::from(v), i % width) as f32)
            .collect(),
        Module::LayerNorm(ln) => rows(&|r| ln.apply_row_f64(r)),
        Module::Activation(a) | Module::Function(a) if a.is_row() => {
            if *a == crate::Activation::Softmax {
                rows(&softmax_row_f64)
            } else {
                rows(&log_softmax_row_f64)
            }
        }
        Module::Activation(a) | Module::Function(a) => x
            .iter()
            .map(|&v| a.apply_f64(f64::from(v)) as f32)
            .collect(),
        Module::PRelu(_) | Module::Elementwise { .. } => {
            let e = m
                .elementwise()
                .expect("elementwise modules have an expression");
            x.iter()
                .enumerate()
                .map(|(i, &v)| e.eval(v, i % width))
                .collect()
        }
        Module::Dropout(_) | Module::Flatten | Module::Identity => x.to_vec(),
    }
}
