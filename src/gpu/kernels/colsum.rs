//! Column sums (`shaders/colsum.wgsl`): `out[c] = Σ_r x[r, c]` over a batch, a Linear bias's
//! gradient. Deterministic: a fixed-order tree per column, no atomics.

use crate::gpu::kernels::{Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, Slot, fold, wgsl_struct};

wgsl_struct! {
    /// The uniform block.
    pub(crate) struct ColsumDims {
        rows: u32,
        cols: u32,
        /// Workgroups along x of the folded grid (one per column).
        groups_x: u32,
        pad0: u32,
    }
}

const DIMS: Slot = Slot::dims("ColsumDims");
/// The rows summed.
pub(crate) const X: Slot = Slot::storage(1, "x", "array<f32>", true);
/// The sums.
pub(crate) const OUT: Slot = Slot::storage(2, "out", "array<f32>", false);
/// The bindings.
pub(crate) const SLOTS: &[Slot] = &[DIMS, X, OUT];
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[SLOTS];

/// The column sums of a batch of rows of `cols` values.
#[derive(Debug)]
pub(crate) struct Colsum {
    pub(crate) cols: usize,
    /// Rows summed per batch row: 1 for a `[rows, cols]` tensor; a tensor's width with
    /// `cols = 1` sums every value (a single PReLU slope's gradient).
    pub(crate) rows_per_row: usize,
}

impl Kernel for Colsum {
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        let body = shader!("colsum.wgsl");
        vec![PipelineSpec::checked::<ColsumDims>(
            "colsum",
            "colsum",
            SLOTS,
            NO_EPILOGUE,
            body,
        )]
    }

    fn dispatches(&self, rows: usize, max_groups: u32) -> Vec<Dispatch> {
        let grid = fold(self.cols as u64, max_groups);
        let dims = ColsumDims {
            rows: (rows * self.rows_per_row) as u32,
            cols: self.cols as u32,
            groups_x: grid.0,
            pad0: 0,
        };
        vec![Dispatch::new(0, &dims, grid)]
    }
}
