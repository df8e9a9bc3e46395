//! [`FastCpuMlp`]: the fast CPU baseline, `matrixmultiply::sgemm` (threaded) plus a plain
//! bias/activation loop: what a user would otherwise run on the CPU.

use crate::activation::softmax_row_f32;
use crate::error::Result;
use crate::matrix::Matrix;
use crate::model::Mlp;
use crate::model::expr::Expr;
use crate::model::steps::{RowOp, StepOp, steps};

/// One step: a Linear layer (its parameters copied), or a row operation, or nothing, then the
/// step's epilogue.
#[derive(Clone, Debug)]
struct FastStep {
    n_in: usize,
    n_out: usize,
    /// `[out, in]`, row-major, as in the model (sgemm reads it transposed through its strides).
    linear: Option<(Vec<f32>, Option<Vec<f32>>)>,
    row: Option<RowOp>,
    epilogue: Expr,
}

/// An [`Mlp`] run in f32 on the CPU with `matrixmultiply`'s threaded sgemm. It uses
/// `min(physical cores, 4)` threads unless `MATMUL_NUM_THREADS` says otherwise.
#[derive(Clone, Debug)]
pub struct FastCpuMlp {
    steps: Vec<FastStep>,
    n_in: usize,
}

impl FastCpuMlp {
    /// Copies the model's parameters.
    pub fn new(model: &Mlp) -> Self {
        let steps = steps(model)
            .into_iter()
            .map(|s| FastStep {
                n_in: s.n_in,
                n_out: s.n_out,
                linear: match s.op {
                    StepOp::Linear(l) => Some((l.weight().to_vec(), l.bias().map(<[f32]>::to_vec))),
                    _ => None,
                },
                row: match s.op {
                    StepOp::Row(op) => Some(op),
                    _ => None,
                },
                epilogue: s.epilogue,
            })
            .collect();
        FastCpuMlp {
            steps,
            n_in: model.in_features(),
        }
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.n_in
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
        let mut x: Vec<f32> = input.as_slice().to_vec();
        let mut scratch = Vec::new();
        for s in &self.steps {
            if let Some((w, b)) = &s.linear {
                x = sgemm(&x, batch, s.n_in, s.n_out, w, b.as_deref());
            }
            if let Some(op) = s.row {
                for row in x.chunks_exact_mut(s.n_out) {
                    match op {
                        RowOp::Softmax => softmax_row_f32(row),
                        _ => {
                            let mut r: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
                            match op {
                                RowOp::LogSoftmax => crate::activation::log_softmax_row_f64(&mut r),
                                _ => normalize(&mut r, op),
                            }
                            row.iter_mut().zip(r).for_each(|(o, v)| *o = v as f32);
                        }
                    }
                }
            }
            s.epilogue.apply_rows_f32(&mut x, s.n_out, &mut scratch);
        }
        let n_out = self.steps.last().map_or(self.n_in, |s| s.n_out);
        Matrix::new(batch, n_out, x)
    }
}

/// LayerNorm's normalisation of one row.
fn normalize(r: &mut [f64], op: RowOp) {
    let RowOp::Normalize { eps } = op else { return };
    let n = r.len() as f64;
    let mean = r.iter().sum::<f64>() / n;
    let var = r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let inv = 1.0 / (var + f64::from(eps)).sqrt();
    r.iter_mut().for_each(|x| *x = (*x - mean) * inv);
}

/// `x·Wᵀ + b` with matrixmultiply.
fn sgemm(
    x: &[f32],
    batch: usize,
    k: usize,
    n: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let mut y = vec![0.0f32; batch * n];
    let beta = match bias {
        Some(b) => {
            for row in y.chunks_exact_mut(n) {
                row.copy_from_slice(b);
            }
            1.0
        }
        None => 0.0,
    };
    if batch > 0 {
        assert!(x.len() >= batch * k && weight.len() == n * k);
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
                weight.as_ptr(),
                1,
                k as isize,
                beta,
                y.as_mut_ptr(),
                n as isize,
                1,
            );
        }
    }
    y
}
