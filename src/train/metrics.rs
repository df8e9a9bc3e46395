//! What an epoch is judged by: the mean loss over its samples and, for the classification
//! losses, the accuracy; the same on held-out data in eval mode ([`evaluate`]).
//!
//! Accuracy: `cross_entropy` and `nll` count a row correct when the first largest output is its
//! class (`argmax`, as `torch.argmax` picks the first of equal maxima); `bce` counts an element
//! correct when `(output ≥ 0.5) == (target ≥ 0.5)`, `bce_with_logits` when
//! `(output ≥ 0) == (target ≥ 0.5)` (per element, so a multi-label output counts each label).
//! The regression losses have none.

use crate::cpu as reference;
use crate::error::Result;
use crate::matrix::Matrix;
use crate::model::Mlp;
use crate::train::loss::{Loss, Reduction, Target, select_rows};

/// Correct predictions and how many were judged, for the losses that have an accuracy.
pub fn correct(loss: Loss, output: &[f32], width: usize, target: &Target) -> Option<(u64, u64)> {
    match (loss, target) {
        (Loss::CrossEntropy { .. } | Loss::Nll, Target::Classes(c)) => {
            let hits = output
                .chunks_exact(width)
                .zip(c)
                .filter(|(row, class)| argmax(row) == **class as usize)
                .count();
            Some((hits as u64, c.len() as u64))
        }
        (Loss::Bce | Loss::BceWithLogits, Target::Values(t)) => {
            let cut = if loss == Loss::Bce { 0.5 } else { 0.0 };
            let hits = output
                .iter()
                .zip(t.as_slice())
                .filter(|(o, t)| (**o >= cut) == (**t >= 0.5))
                .count();
            Some((hits as u64, output.len() as u64))
        }
        _ => None,
    }
}

/// The index of the first largest value (NaN never wins).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}

/// An evaluation's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// The loss over every row: the mean over the samples for reduction `mean`
    /// (each batch's loss weighted by its rows), the per-row sum for `sum`.
    pub loss: f64,
    /// The fraction correct (see the module doc), `None` for the regression losses.
    pub accuracy: Option<f64>,
    /// Rows evaluated.
    pub rows: usize,
}

/// The loss and accuracy of `model` in eval mode (BatchNorm's running statistics, no Dropout)
/// on `x`, `y`, `batch` rows at a time, on the f64 reference forward. `model` is not changed.
pub fn evaluate(
    model: &Mlp,
    loss: Loss,
    reduction: Reduction,
    x: &Matrix,
    y: &Target,
    batch: usize,
) -> Result<Evaluation> {
    let mut sums = Sums::default();
    let rows: Vec<usize> = (0..x.rows()).collect();
    for chunk in rows.chunks(batch.max(1)) {
        let xb = select_rows(x, chunk)?;
        let yb = y.select(chunk)?;
        let out = reference::forward(model, &xb)?;
        let (l, _) = loss.evaluate(&out, &yb, reduction)?;
        sums.add(loss, reduction, l, out.as_slice(), out.cols(), &yb);
    }
    Ok(sums.finish())
}

/// Running sums of an epoch's or an evaluation's loss and accuracy.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sums {
    loss: f64,
    rows: usize,
    hits: u64,
    judged: u64,
    has_accuracy: bool,
}

impl Sums {
    /// Adds one batch: its loss (as `loss.item()`), its output and its targets.
    pub(crate) fn add(
        &mut self,
        loss: Loss,
        reduction: Reduction,
        value: f32,
        output: &[f32],
        width: usize,
        y: &Target,
    ) {
        let rows = y.rows();
        self.loss += match reduction {
            Reduction::Mean => f64::from(value) * rows as f64,
            Reduction::Sum => f64::from(value),
        };
        self.rows += rows;
        if let Some((h, n)) = correct(loss, output, width, y) {
            self.hits += h;
            self.judged += n;
            self.has_accuracy = true;
        }
    }

    /// The totals as an [`Evaluation`]; the sums start again from zero.
    pub(crate) fn finish(&mut self) -> Evaluation {
        let e = Evaluation {
            loss: self.loss / self.rows.max(1) as f64,
            accuracy: self
                .has_accuracy
                .then(|| self.hits as f64 / self.judged.max(1) as f64),
            rows: self.rows,
        };
        *self = Sums::default();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.0]), 1);
        let y = Target::Classes(vec![1, 0]);
        let ce = Loss::CrossEntropy {
            label_smoothing: 0.0,
        };
        assert_eq!(correct(ce, &[0.0, 1.0, 0.0, 1.0], 2, &y), Some((1, 2)));
        assert_eq!(correct(Loss::Mse, &[0.0], 1, &y), None);
    }

    #[test]
    fn bce_accuracy_thresholds_per_element() {
        let t = Target::Values(Matrix::new(1, 3, vec![1.0, 0.0, 1.0]).unwrap());
        assert_eq!(correct(Loss::Bce, &[0.5, 0.49, 0.2], 3, &t), Some((2, 3)));
        assert_eq!(
            correct(Loss::BceWithLogits, &[0.0, -0.1, -2.0], 3, &t),
            Some((2, 3))
        );
    }
}
