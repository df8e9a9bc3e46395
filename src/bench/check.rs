//! The correctness gate: every output is compared with the f64 CPU reference before it is timed.

use crate::cpu;
use crate::error::Result;
use crate::matrix::Matrix;
use crate::model::Mlp;

/// Element-wise tolerance: `|a − e| ≤ abs + rel · |e|`, with `e` the f64 reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute part.
    pub abs: f64,
    /// Relative part.
    pub rel: f64,
}

impl Default for Tolerance {
    /// `|a − e| ≤ 1e-3 · (1 + |e|)`.
    fn default() -> Self {
        Tolerance {
            abs: 1e-3,
            rel: 1e-3,
        }
    }
}

impl Tolerance {
    /// The rule as text, e.g. `|a − e| ≤ 1e-3 + 1e-3·|e|`.
    pub fn describe(&self) -> String {
        format!("|a − e| ≤ {:e} + {:e}·|e|", self.abs, self.rel)
    }
}

/// What a passed check compared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckInfo {
    /// Rows compared.
    pub rows: usize,
    /// Rows in the output.
    pub of_rows: usize,
    /// Largest |a − e| seen.
    pub max_abs_err: f64,
}

/// Batches up to this many rows are checked in full; larger ones on their first and last
/// [`SUBSET_ROWS`]` / 2` rows (the f64 reference is slow on big shapes).
pub const CHECK_ALL_ROWS_UP_TO: usize = 256;
/// Rows checked in a batch larger than [`CHECK_ALL_ROWS_UP_TO`].
pub const SUBSET_ROWS: usize = 64;

/// The f64 reference output on a set of rows of one input.
#[derive(Clone, Debug)]
pub struct Reference {
    /// Row indices of the input the reference covers, ascending.
    pub rows: Vec<usize>,
    /// Output width.
    pub cols: usize,
    /// Rows of the input in all.
    pub batch: usize,
    /// `[rows.len(), cols]`, row-major.
    pub values: Vec<f64>,
}

/// The rows checked for a batch: all up to [`CHECK_ALL_ROWS_UP_TO`], else the first and last
/// [`SUBSET_ROWS`]` / 2`.
pub fn check_rows(batch: usize) -> Vec<usize> {
    if batch <= CHECK_ALL_ROWS_UP_TO {
        (0..batch).collect()
    } else {
        let half = SUBSET_ROWS / 2;
        (0..half).chain(batch - half..batch).collect()
    }
}

impl Reference {
    /// Runs [`cpu::forward_f64`] on the rows of `input` that [`check_rows`] picks.
    pub fn new(model: &Mlp, input: &Matrix) -> Result<Reference> {
        let rows = check_rows(input.rows());
        let mut sub = Vec::with_capacity(rows.len() * input.cols());
        for &r in &rows {
            sub.extend_from_slice(input.row(r));
        }
        let sub = Matrix::new(rows.len(), input.cols(), sub)?;
        let values = cpu::forward_f64(model, &sub)?;
        Ok(Reference {
            rows,
            cols: model.out_features(),
            batch: input.rows(),
            values,
        })
    }

    /// Compares `output` with the reference on the reference's rows. `Err` says where and by how
    /// much the first element out of tolerance (NaN included) differs.
    pub fn check(&self, output: &Matrix, tol: Tolerance) -> std::result::Result<CheckInfo, String> {
        if output.shape() != [self.batch, self.cols] {
            return Err(format!(
                "output is [{}, {}], expected [{}, {}]",
                output.rows(),
                output.cols(),
                self.batch,
                self.cols
            ));
        }
        let mut max_abs_err = 0.0f64;
        for (i, &r) in self.rows.iter().enumerate() {
            let expected = &self.values[i * self.cols..(i + 1) * self.cols];
            for (c, (&a, &e)) in output.row(r).iter().zip(expected).enumerate() {
                let a = f64::from(a);
                let err = (a - e).abs();
                let limit = tol.abs + tol.rel * e.abs();
                // NaN fails the comparison, so it is rejected too.
                if err.is_nan() || err > limit {
                    return Err(format!(
                        "wrong result at [{r}, {c}]: got {a}, the CPU reference gives {e} \
                         (|a − e| = {err:e}, tolerance {limit:e})"
                    ));
                }
                max_abs_err = max_abs_err.max(err);
            }
        }
        Ok(CheckInfo {
            rows: self.rows.len(),
            of_rows: self.batch,
            max_abs_err,
        })
    }
}
