//! Losses, with PyTorch's formulas: the value (`loss.item()`, f32) and the gradient with respect
//! to the model's output, both computed in f64 from the f32 output and rounded once.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// How per-element losses are combined (`reduction=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean: over every element, or over the batch for cross-entropy and NLL (no class
    /// weights).
    #[default]
    Mean,
    /// The sum.
    Sum,
}

impl FromStr for Reduction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            _ => Err(Error::invalid(format!(
                "unknown reduction '{}': use mean or sum",
                crate::escape(s)
            ))),
        }
    }
}

/// A loss function, as `torch.nn.*Loss`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// `MSELoss`: `(o − y)²`.
    Mse,
    /// `L1Loss`: `|o − y|` (gradient `sign(o − y)`, 0 at 0).
    L1,
    /// `SmoothL1Loss(beta)`: `½d²/β` where `|d| < β`, else `|d| − ½β`; `β = 0` is L1.
    SmoothL1 {
        /// β ≥ 0 (PyTorch's default 1).
        beta: f64,
    },
    /// `HuberLoss(delta)`: `½d²` where `|d| < δ`, else `δ·(|d| − ½δ)`.
    Huber {
        /// δ > 0 (PyTorch's default 1).
        delta: f64,
    },
    /// `CrossEntropyLoss(label_smoothing)` on logits with class-index targets:
    /// `(1 − ε)·nll + ε·mean_c(−log p_c)`.
    CrossEntropy {
        /// ε in [0, 1].
        label_smoothing: f64,
    },
    /// `NLLLoss` on log-probabilities with class-index targets: `−input[y]`.
    Nll,
    /// `BCELoss` on probabilities in [0, 1]: `−(y·log p + (1 − y)·log(1 − p))`, each log
    /// clamped at −100.
    Bce,
    /// `BCEWithLogitsLoss`: `max(x, 0) − x·y + log(1 + exp(−|x|))`.
    BceWithLogits,
}

/// What a batch is trained towards: real values (`[batch, out]`), or one class index per row.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Real-valued targets, the model's output shape.
    Values(Matrix),
    /// Class indices (`cross_entropy`, `nll`).
    Classes(Vec<i64>),
}

impl Target {
    /// Rows.
    pub fn rows(&self) -> usize {
        match self {
            Target::Values(m) => m.rows(),
            Target::Classes(c) => c.len(),
        }
    }

    /// The rows at `indices`, in that order (a batch).
    pub fn select(&self, indices: &[usize]) -> Result<Target> {
        Ok(match self {
            Target::Values(m) => Target::Values(select_rows(m, indices)?),
            Target::Classes(c) => Target::Classes(indices.iter().map(|&i| c[i]).collect()),
        })
    }
}

/// The rows of `m` at `indices`, in that order.
pub(crate) fn select_rows(m: &Matrix, indices: &[usize]) -> Result<Matrix> {
    let mut data = Vec::with_capacity(indices.len() * m.cols());
    for &i in indices {
        data.extend_from_slice(m.row(i));
    }
    Matrix::new(indices.len(), m.cols(), data)
}

impl Loss {
    /// Whether the targets are class indices.
    pub fn wants_classes(self) -> bool {
        matches!(self, Loss::CrossEntropy { .. } | Loss::Nll)
    }

    /// Checks the loss's own parameters (PyTorch's errors).
    pub fn check(self) -> Result<()> {
        match self {
            Loss::SmoothL1 { beta } if !(beta >= 0.0 && beta.is_finite()) => Err(Error::invalid(
                format!("smooth_l1: beta must be a finite number ≥ 0, got {beta}"),
            )),
            Loss::Huber { delta } if !(delta > 0.0 && delta.is_finite()) => Err(Error::invalid(
                format!("huber: delta must be a finite number > 0, got {delta}"),
            )),
            Loss::CrossEntropy { label_smoothing } if !(0.0..=1.0).contains(&label_smoothing) => {
                Err(Error::invalid(format!(
                    "cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// The loss of `output` (`[batch, out]`) against `target`, and its gradient with respect to
    /// `output`. Errors: a target of the wrong kind or shape, a class index out of range, BCE
    /// inputs outside [0, 1] (as PyTorch).
    pub fn evaluate(
        self,
        output: &Matrix,
        target: &Target,
        reduction: Reduction,
    ) -> Result<(f32, Vec<f32>)> {
        self.check()?;
        let (batch, cols) = (output.rows(), output.cols());
        let o = output.as_slice();
        match (self.wants_classes(), target) {
            (true, Target::Classes(c)) => {
                if c.len() != batch {
                    return Err(Error::shape(format!(
                        "{self}: {} targets for a batch of {batch}",
                        c.len()
                    )));
                }
                if let Some((i, &bad)) = c
                    .iter()
                    .enumerate()
                    .find(|(_, v)| **v < 0 || **v >= cols as i64)
                {
                    return Err(Error::invalid(format!(
                        "{self}: target {bad} at row {i} is out of bounds: the model has {cols} \
                         classes (0..={})",
                        cols - 1
                    )));
                }
                Ok(self.classes(o, c, batch, cols, reduction))
            }
            (false, Target::Values(y)) => {
                if y.shape() != output.shape() {
                    return Err(Error::shape(format!(
                        "{self}: target is {:?} but the model's output is {:?}",
                        y.shape(),
                        output.shape()
                    )));
                }
                self.elementwise(o, y.as_slice(), reduction)
            }
            (true, Target::Values(_)) => Err(Error::invalid(format!(
                "{self} takes class indices (integers), not real-valued targets"
            ))),
            (false, Target::Classes(_)) => Err(Error::invalid(format!(
                "{self} takes real-valued targets of the output's shape, not class indices"
            ))),
        }
    }

    fn elementwise(self, o: &[f32], y: &[f32], red: Reduction) -> Result<(f32, Vec<f32>)> {
        if self == Loss::Bce
            && let Some(i) = o.iter().position(|p| !(0.0..=1.0).contains(p))
        {
            return Err(Error::invalid(format!(
                "bce: all elements of input should be between 0 and 1 (element {i} is {}); use \
                 bce_with_logits on logits",
                o[i]
            )));
        }
        let norm = match red {
            Reduction::Mean => 1.0 / o.len() as f64,
            Reduction::Sum => 1.0,
        };
        let mut total = 0.0;
        let mut grad = Vec::with_capacity(o.len());
        for (&a, &b) in o.iter().zip(y) {
            let (x, t) = (f64::from(a), f64::from(b));
            let d = x - t;
            let (l, g) = match self {
                Loss::Mse => (d * d, 2.0 * d),
                Loss::L1 => (d.abs(), sign(d)),
                Loss::SmoothL1 { beta } => {
                    if d.abs() < beta {
                        (0.5 * d * d / beta, d / beta)
                    } else {
                        (d.abs() - 0.5 * beta, sign(d))
                    }
                }
                Loss::Huber { delta } => {
                    if d.abs() < delta {
                        (0.5 * d * d, d)
                    } else {
                        (delta * (d.abs() - 0.5 * delta), delta * sign(d))
                    }
                }
                Loss::Bce => {
                    let l = -(t * x.ln().max(-100.0) + (1.0 - t) * (1.0 - x).ln().max(-100.0));
                    // binary_cross_entropy_backward: (x − y) / max((1 − x)·x, 1e-12).
                    (l, d / ((1.0 - x) * x).max(1e-12))
                }
                Loss::BceWithLogits => {
                    let l = x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
                    (l, 1.0 / (1.0 + (-x).exp()) - t)
                }
                Loss::CrossEntropy { .. } | Loss::Nll => unreachable!("class losses"),
            };
            total += l;
            grad.push((g * norm) as f32);
        }
        Ok(((total * norm) as f32, grad))
    }

    fn classes(
        self,
        o: &[f32],
        c: &[i64],
        batch: usize,
        cols: usize,
        red: Reduction,
    ) -> (f32, Vec<f32>) {
        let norm = match red {
            Reduction::Mean => 1.0 / batch as f64,
            Reduction::Sum => 1.0,
        };
        let mut total = 0.0;
        let mut grad = vec![0.0f32; o.len()];
        for (b, (row, &k)) in o.chunks_exact(cols).zip(c).enumerate() {
            let k = k as usize;
            let g = &mut grad[b * cols..(b + 1) * cols];
            match self {
                Loss::Nll => {
                    total -= f64::from(row[k]);
                    g[k] = (-norm) as f32;
                }
                Loss::CrossEntropy { label_smoothing: e } => {
                    let mut logp: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
                    crate::activation::log_softmax_row_f64(&mut logp);
                    let smooth = -logp.iter().sum::<f64>() / cols as f64;
                    total += (1.0 - e) * -logp[k] + e * smooth;
                    for (j, (gj, lp)) in g.iter_mut().zip(&logp).enumerate() {
                        let onehot = if j == k { 1.0 } else { 0.0 };
                        let want = (1.0 - e) * onehot + e / cols as f64;
                        *gj = ((lp.exp() - want) * norm) as f32;
                    }
                }
                _ => unreachable!("elementwise losses"),
            }
        }
        ((total * norm) as f32, grad)
    }
}

/// `sign(d)` with `sign(0) = 0` (autograd's `sgn` at the kink).
fn sign(d: f64) -> f64 {
    if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loss::Mse => "mse",
            Loss::L1 => "l1",
            Loss::SmoothL1 { .. } => "smooth_l1",
            Loss::Huber { .. } => "huber",
            Loss::CrossEntropy { .. } => "cross_entropy",
            Loss::Nll => "nll",
            Loss::Bce => "bce",
            Loss::BceWithLogits => "bce_with_logits",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOSSES: [Loss; 8] = [
        Loss::Mse,
        Loss::L1,
        Loss::SmoothL1 { beta: 0.5 },
        Loss::Huber { delta: 0.7 },
        Loss::CrossEntropy {
            label_smoothing: 0.2,
        },
        Loss::Nll,
        Loss::Bce,
        Loss::BceWithLogits,
    ];

    /// Central differences of the loss value (f64 math; inputs kept away from the kinks): the
    /// analytic gradient agrees to 2e-4 relative, the f32 rounding of loss and gradient
    /// (≈ 6e-8 relative) over a step of 1e-3 being the floor.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = crate::Generator::new(5);
        for loss in LOSSES {
            for (batch, cols) in [(1, 1), (3, 7), (7, 3), (33, 2)] {
                if loss.wants_classes() && cols < 2 {
                    continue;
                }
                let mut o: Vec<f32> = (0..batch * cols)
                    .map(|_| rng.uniform_f32(-2.0, 2.0))
                    .collect();
                if loss == Loss::Bce {
                    o.iter_mut().for_each(|v| *v = 0.1 + 0.8 * (*v + 2.0) / 4.0);
                }
                let target = if loss.wants_classes() {
                    Target::Classes((0..batch).map(|b| (b * 5 % cols) as i64).collect())
                } else {
                    let y = (0..batch * cols)
                        .map(|_| rng.uniform_f32(0.0, 1.0))
                        .collect();
                    Target::Values(Matrix::new(batch, cols, y).unwrap())
                };
                for red in [Reduction::Mean, Reduction::Sum] {
                    let out = Matrix::new(batch, cols, o.clone()).unwrap();
                    let (_, g) = loss.evaluate(&out, &target, red).unwrap();
                    for i in 0..o.len() {
                        let h = 1e-3f32;
                        let at = |v: f32| {
                            let mut p = o.clone();
                            p[i] = v;
                            let m = Matrix::new(batch, cols, p).unwrap();
                            f64::from(loss.evaluate(&m, &target, red).unwrap().0)
                        };
                        let fd = (at(o[i] + h) - at(o[i] - h)) / f64::from(2.0 * h);
                        let d = f64::from(g[i]);
                        let scale = at(o[i]).abs() / f64::from(h) * 1.2e-7;
                        assert!(
                            (fd - d).abs() <= 2e-3 * d.abs().max(1e-2) + scale,
                            "{loss} {red:?} [{batch}x{cols}] element {i}: {d} vs {fd}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bce_clamps_the_log_and_checks_its_range() {
        let o = Matrix::new(1, 2, vec![0.0, 1.0]).unwrap();
        let y = Target::Values(Matrix::new(1, 2, vec![1.0, 0.0]).unwrap());
        let (l, _) = Loss::Bce.evaluate(&o, &y, Reduction::Sum).unwrap();
        assert_eq!(l, 200.0);
        let bad = Matrix::new(1, 2, vec![1.5, 0.0]).unwrap();
        let e = Loss::Bce.evaluate(&bad, &y, Reduction::Sum).unwrap_err();
        assert!(e.to_string().contains("between 0 and 1"), "{e}");
    }

    #[test]
    fn class_targets_are_checked() {
        let o = Matrix::new(2, 3, vec![0.0; 6]).unwrap();
        let e = Loss::Nll
            .evaluate(&o, &Target::Classes(vec![0, 3]), Reduction::Mean)
            .unwrap_err();
        assert!(
            e.to_string().contains("target 3 at row 1 is out of bounds"),
            "{e}"
        );
        let e = Loss::Mse
            .evaluate(&o, &Target::Classes(vec![0, 1]), Reduction::Mean)
            .unwrap_err();
        assert!(e.to_string().contains("not class indices"), "{e}");
        let (l, _) = Loss::CrossEntropy {
            label_smoothing: 0.0,
        }
        .evaluate(&o, &Target::Classes(vec![0, 2]), Reduction::Mean)
        .unwrap();
        assert!((l - 3f32.ln()).abs() < 1e-7);
    }
}
