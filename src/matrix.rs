//! A dense row-major `[rows, cols]` f32 matrix: the batch type for inputs and outputs.

use crate::error::{Error, Result};

/// A row-major `[rows, cols]` matrix of f32. Inputs are `[batch, in]`, outputs `[batch, out]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// Wraps `data` (row-major) as a `[rows, cols]` matrix; fails when the length does not match.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        let expected = rows
            .checked_mul(cols)
            .ok_or_else(|| Error::shape(format!("[{rows}, {cols}] overflows usize")))?;
        if data.len() != expected {
            return Err(Error::shape(format!(
                "[{rows}, {cols}] needs {expected} values, got {}",
                data.len()
            )));
        }
        Ok(Matrix { rows, cols, data })
    }

    /// A `[rows, cols]` matrix of zeros.
    ///
    /// Panics, like `vec![0.0; n]`, if `rows · cols` overflows `usize` or the allocation fails;
    /// [`Matrix::try_zeros`] returns an error instead.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        match Self::try_zeros(rows, cols) {
            Ok(m) => m,
            Err(e) => panic!("Matrix::zeros: {e}"),
        }
    }

    /// A `[rows, cols]` matrix of zeros, or an error when `rows · cols` overflows `usize` or the
    /// memory cannot be reserved.
    pub fn try_zeros(rows: usize, cols: usize) -> Result<Self> {
        let n = rows
            .checked_mul(cols)
            .filter(|&n| n <= isize::MAX as usize / 4)
            .ok_or_else(|| {
                Error::shape(format!(
                    "[{rows}, {cols}] is too large: {rows}·{cols} f32 values overflow the address \
                     space"
                ))
            })?;
        let mut data = Vec::new();
        data.try_reserve_exact(n).map_err(|e| {
            Error::invalid(format!(
                "out of memory: cannot allocate a [{rows}, {cols}] matrix ({} bytes): {e}",
                n * 4
            ))
        })?;
        data.resize(n, 0.0);
        Ok(Matrix { rows, cols, data })
    }

    /// Builds a matrix from rows of equal length.
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Self> {
        let cols = rows.first().map_or(0, Vec::len);
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != cols) {
            return Err(Error::shape(format!(
                "row {i} has {} values, row 0 has {cols}",
                r.len()
            )));
        }
        Ok(Matrix {
            rows: rows.len(),
            cols,
            data: rows.concat(),
        })
    }

    /// Number of rows (the batch size).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (the feature width).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `[rows, cols]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// The row-major values.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The row-major values, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the matrix and returns its row-major values.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Row `i` as a slice. Panics if `i >= rows` (like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Rows `start..end` as a new matrix.
    pub fn slice_rows(&self, start: usize, end: usize) -> Result<Matrix> {
        if start > end || end > self.rows {
            return Err(Error::shape(format!(
                "rows {start}..{end} out of range for {} rows",
                self.rows
            )));
        }
        Ok(Matrix {
            rows: end - start,
            cols: self.cols,
            data: self.data[start * self.cols..end * self.cols].to_vec(),
        })
    }
}

/// Checks that a plain input slice holds `batch` rows of `width` features: the one message of
/// every `forward_slice` / `forward_into` / `encode` entry point.
pub(crate) fn check_input_slice(len: usize, batch: usize, width: usize) -> Result<()> {
    match batch.checked_mul(width) {
        Some(n) if n == len => Ok(()),
        _ => Err(Error::shape(format!(
            "the input holds {len} values, but {batch} rows of the model's {width} features are {}",
            batch as u128 * width as u128
        ))),
    }
}

/// Checks that a caller's output slice holds exactly `batch` rows of `width` outputs.
pub(crate) fn check_output_slice(len: usize, batch: usize, width: usize) -> Result<()> {
    match batch.checked_mul(width) {
        Some(n) if n == len => Ok(()),
        _ => Err(Error::shape(format!(
            "the output slice holds {len} values; {batch} rows of {width} outputs need {}",
            batch as u128 * width as u128
        ))),
    }
}
