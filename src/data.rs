//! A DataLoader-like helper that walks a dataset in batches.

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::rng::Generator;

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

/// `torch.randperm(n, generator=g)` on the CPU, bit for bit: a Fisher–Yates pass over
/// `0..n` swapping position `i` with `i + random() % (n − i)` (one 32-bit draw per position but
/// the last). For `n ≥ u32::MAX / 20` PyTorch switches to the "inside-out" variant with 64-bit
/// draws, reproduced too.
pub fn randperm(n: usize, g: &mut Generator) -> Vec<usize> {
    let mut r: Vec<usize> = (0..n).collect();
    if (n as u64) < u64::from(u32::MAX / 20) {
        for i in 0..n.saturating_sub(1) {
            let z = (u64::from(g.next_u32()) % (n - i) as u64) as usize;
            r.swap(i, z + i);
        }
    } else {
        for i in 0..n {
            let z = (g.next_u64() % (i as u64 + 1)) as usize;
            r[i] = r[z];
            r[z] = i;
        }
    }
    r
}

/// The batch order of `DataLoader(TensorDataset(..), batch_size, shuffle, generator=
/// torch.Generator().manual_seed(seed), drop_last)` over `n` rows, epoch after epoch.
///
/// Each epoch reproduces torch 2.15's single-process iterator: `_BaseDataLoaderIter.__init__`
/// first draws `_base_seed` from the loader's generator (`random_()` on an int64: one 64-bit
/// draw, two 32-bit words), then `RandomSampler` draws `randperm(n)` from the same generator,
/// and a second `randperm(n)` when it is exhausted (its `[:num_samples % n]` tail, empty).
/// Without shuffling the order is `0..n` every epoch.
///
/// ```
/// use wgpu_mlp::data::EpochOrder;
/// let mut order = EpochOrder::new(10, 3, Some(0), false)?;
/// let batches = order.next_epoch();
/// assert_eq!(batches.len(), 4); // 3 + 3 + 3 + 1
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct EpochOrder {
    n: usize,
    batch_size: usize,
    drop_last: bool,
    generator: Option<Generator>,
}

impl EpochOrder {
    /// `shuffle_seed`: `Some(S)` shuffles with `manual_seed(S)`; `None` keeps the file's order.
    /// Fails when `batch_size` is 0 or `n` is 0.
    pub fn new(
        n: usize,
        batch_size: usize,
        shuffle_seed: Option<u64>,
        drop_last: bool,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid("batch size must be at least 1"));
        }
        if n == 0 {
            return Err(Error::invalid("the data set has no rows"));
        }
        Ok(EpochOrder {
            n,
            batch_size,
            drop_last,
            generator: shuffle_seed.map(Generator::new),
        })
    }

    /// Batches per epoch: `n / B` with `drop_last`, else `ceil(n / B)`.
    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.n / self.batch_size
        } else {
            self.n.div_ceil(self.batch_size)
        }
    }

    /// The next epoch's batches, each a list of row indices.
    pub fn next_epoch(&mut self) -> Vec<Vec<usize>> {
        let order = match &mut self.generator {
            Some(g) => {
                let _base_seed = g.next_u64();
                let order = randperm(self.n, g);
                // RandomSampler ends with `yield from randperm(n)[:num_samples % n]`: an empty
                // slice here, but the permutation is drawn when the sampler is exhausted, which
                // every epoch's BatchSampler does (drop_last or not).
                let _tail = randperm(self.n, g);
                order
            }
            None => (0..self.n).collect(),
        };
        let mut batches: Vec<Vec<usize>> = order
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        if self.drop_last && batches.last().is_some_and(|b| b.len() < self.batch_size) {
            batches.pop();
        }
        batches
    }
}
