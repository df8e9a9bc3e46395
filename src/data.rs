//! A DataLoader-like helper that walks a dataset in batches.

use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// Walks the rows of a `[n, cols]` dataset in batches of `batch_size` (the last may be short),
/// like `torch.utils.data.DataLoader(dataset, batch_size, shuffle=False)`.
#[derive(Debug)]
pub struct DataLoader<'a> {
    data: &'a Matrix,
    batch_size: usize,
    next: usize,
}

impl<'a> DataLoader<'a> {
    /// Fails when `batch_size` is 0.
    pub fn new(data: &'a Matrix, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid("batch size must be at least 1"));
        }
        Ok(DataLoader {
            data,
            batch_size,
            next: 0,
        })
    }

    /// Number of batches: `ceil(rows / batch_size)`.
    pub fn num_batches(&self) -> usize {
        self.data.rows().div_ceil(self.batch_size)
    }
}

impl Iterator for DataLoader<'_> {
    type Item = Matrix;

    fn next(&mut self) -> Option<Matrix> {
        if self.next >= self.data.rows() {
            return None;
        }
        let end = (self.next + self.batch_size).min(self.data.rows());
        let batch = self.data.slice_rows(self.next, end).ok()?;
        self.next = end;
        Some(batch)
    }
}
