//! The CPU reference forward pass: simple enough to trust at a glance, accumulating in f64.
//! It is the yardstick for the GPU path, not the speed path.

use crate::activation::softmax_row_f64;
use crate::error::Result;
use crate::matrix::Matrix;
use crate::model::Mlp;

/// Runs `model` on `input` (`[batch, in]`) and returns `[batch, out]` in f64.
///
/// Every product and sum is done in f64 and activations stay in f64 between layers, so the result
/// is the exact float64 function of the f32 weights and inputs (up to f64 rounding).
pub fn forward_f64(model: &Mlp, input: &Matrix) -> Result<Vec<f64>> {
    model.check_input(input.rows(), input.cols())?;
    let batch = input.rows();
    let mut x: Vec<f64> = input.as_slice().iter().map(|&v| f64::from(v)).collect();
    for layer in model.layers() {
        let lin = &layer.linear;
        let (n_in, n_out) = (lin.in_features(), lin.out_features());
        let mut y = vec![0.0f64; batch * n_out];
        for b in 0..batch {
            let xr = &x[b * n_in..(b + 1) * n_in];
            for o in 0..n_out {
                let wr = &lin.weight()[o * n_in..(o + 1) * n_in];
                let mut acc = lin.bias().map_or(0.0, |bias| f64::from(bias[o]));
                for (xi, wi) in xr.iter().zip(wr) {
                    acc += xi * f64::from(*wi);
                }
                y[b * n_out + o] = acc;
            }
        }
        if layer.activation.is_rowwise() {
            for row in y.chunks_mut(n_out) {
                softmax_row_f64(row);
            }
        } else {
            for v in &mut y {
                *v = layer.activation.apply_f64(*v);
            }
        }
        x = y;
    }
    Ok(x)
}

/// [`forward_f64`] rounded to f32, as a `[batch, out]` matrix.
pub fn forward(model: &Mlp, input: &Matrix) -> Result<Matrix> {
    let y = forward_f64(model, input)?;
    Matrix::new(
        input.rows(),
        model.out_features(),
        y.into_iter().map(|v| v as f32).collect(),
    )
}
