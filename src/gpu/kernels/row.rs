//! The row kernel (`shaders/row.wgsl`): softmax, log-softmax or LayerNorm's normalisation over
//! each row, then the step's epilogue (LayerNorm's affine part, and whatever elementwise modules
//! follow).

use crate::gpu::kernels::epilogue::Epilogue;
use crate::gpu::kernels::{Dispatch, Kernel, PipelineSpec, Slot, fold, wgsl_struct};
use crate::model::steps::RowOp;

wgsl_struct! {
    /// The uniform block: the matrix, the folded grid (one workgroup per row) and LayerNorm's eps.
    pub(crate) struct RowDims {
        rows: u32,
        /// vec4s per row.
        n4: u32,
        /// Real width.
        n_out: u32,
        /// Workgroups along x of the folded grid.
        groups_x: u32,
        /// LayerNorm's eps (a run-time value, like every parameter).
        eps: f32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

const DIMS: Slot = Slot::dims("RowDims");
/// The matrix, as scalars, updated in place.
pub(crate) const Y: Slot = Slot::storage(1, "y", "array<f32>", false);
/// The epilogue's parameters.
pub(crate) const EP: Slot = Slot::epilogue(2);
/// The bindings.
pub(crate) const SLOTS: &[Slot] = &[DIMS, Y, EP];
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[SLOTS];

/// A pass of the row kernel: `y = epilogue(op(y))` on rows of `width` values, in place.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) op: RowOp,
    pub(crate) ep: Epilogue,
    pub(crate) width: usize,
}

impl Kernel for Row {
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        // `OP` in the WGSL.
        let op = match self.op {
            RowOp::Softmax => 0.0,
            RowOp::LogSoftmax => 1.0,
            RowOp::Normalize { .. } => 2.0,
        };
        let body = shader!("row.wgsl");
        vec![
            PipelineSpec::checked::<RowDims>("row", "row", SLOTS, &self.ep.code, body)
                .with_constants(vec![("OP", op)]),
        ]
    }

    fn dispatches(&self, rows: usize, max_groups: u32) -> Vec<Dispatch> {
        let grid = fold(rows as u64, max_groups);
        let eps = match self.op {
            RowOp::Normalize { eps } => eps,
            _ => 0.0,
        };
        let dims = RowDims {
            rows: rows as u32,
            n4: crate::gpu::pack::vec4s(self.width) as u32,
            n_out: self.width as u32,
            groups_x: grid.0,
            eps,
            ..RowDims::default()
        };
        vec![Dispatch::new(0, &dims, grid)]
    }
}
