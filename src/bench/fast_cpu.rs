//! [`FastCpuMlp`]: the fast CPU baseline, `matrixmultiply::sgemm` (threaded) plus a plain
//! bias/activation loop: what a user would otherwise run on the CPU.

use crate::activation::{Activation, softmax_row_f32};
use crate::error::Result;
use crate::matrix::Matrix;
use crate::model::Mlp;

#[derive(Clone, Debug)]
struct FastLayer {
    n_in: usize,
    n_out: usize,
    /// `[out, in]`, row-major, as in the model (sgemm reads it transposed through its strides).
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    activation: Activation,
}

/// An [`Mlp`] run in f32 on the CPU with `matrixmultiply`'s threaded sgemm. It uses
/// `min(physical cores, 4)` threads unless `MATMUL_NUM_THREADS` says otherwise.
#[derive(Clone, Debug)]
pub struct FastCpuMlp {
    layers: Vec<FastLayer>,
}

impl FastCpuMlp {
    /// Copies the model's parameters.
    pub fn new(model: &Mlp) -> Self {
        let layers = model
            .layers()
            .iter()
            .map(|l| FastLayer {
                n_in: l.linear.in_features(),
                n_out: l.linear.out_features(),
                weight: l.linear.weight().to_vec(),
                bias: l.linear.bias().map(<[f32]>::to_vec),
                activation: l.activation,
            })
            .collect();
        FastCpuMlp { layers }
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.layers[0].n_in
    }

    /// Runs the forward pass on `input` (`[batch, in]`) and returns `[batch, out]`.
    pub fn forward(&self, input: &Matrix) -> Result<Matrix> {
        if input.cols() != self.in_features() {
            return Err(crate::Error::shape(format!(
                "input is [{}, {}] but the model expects [batch, {}]",
                input.rows(),
                input.cols(),
                self.in_features()
            )));
        }
        let batch = input.rows();
        let mut x: Option<Vec<f32>> = None;
        for l in &self.layers {
            let src: &[f32] = x.as_deref().unwrap_or(input.as_slice());
            let y = l.forward(src, batch);
            x = Some(y);
        }
        let n_out = self.layers[self.layers.len() - 1].n_out;
        Matrix::new(batch, n_out, x.unwrap_or_default())
    }
}

impl FastLayer {
    fn forward(&self, x: &[f32], batch: usize) -> Vec<f32> {
        let (k, n) = (self.n_in, self.n_out);
        let mut y = vec![0.0f32; batch * n];
        let beta = match &self.bias {
            Some(b) => {
                for row in y.chunks_exact_mut(n) {
                    row.copy_from_slice(b);
                }
                1.0
            }
            None => 0.0,
        };
        if batch > 0 {
            assert!(x.len() >= batch * k && self.weight.len() == n * k);
            // SAFETY: A = x is [batch, k] with strides (k, 1); B = weightᵀ is [k, n] read from the
            // [n, k] weight with strides (1, k); C = y is [batch, n] with strides (n, 1). The
            // asserts and the allocation above make every index in bounds, and y does not alias
            // x or the weight.
            unsafe {
                matrixmultiply::sgemm(
                    batch,
                    k,
                    n,
                    1.0,
                    x.as_ptr(),
                    k as isize,
                    1,
                    self.weight.as_ptr(),
                    1,
                    k as isize,
                    beta,
                    y.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
        }
        match self.activation {
            Activation::Identity => {}
            Activation::Relu => {
                for v in &mut y {
                    // A select, not a branch (random signs mispredict); NaN propagates.
                    *v = if *v < 0.0 { 0.0 } else { *v };
                }
            }
            a if a.is_rowwise() => {
                for row in y.chunks_exact_mut(n) {
                    softmax_row_f32(row);
                }
            }
            a => {
                for v in &mut y {
                    *v = a.apply_f32(*v);
                }
            }
        }
        y
    }
}
