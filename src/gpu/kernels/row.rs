//! The row kernel (`row.wgsl`): softmax, log-softmax or LayerNorm's normalisation over each row,
//! then the step's epilogue (LayerNorm's affine part, and whatever elementwise modules follow).

use crate::gpu::kernels::epilogue::Epilogue;
use crate::gpu::kernels::{PipelineSpec, Slot, WgslStruct, fold, source, wgsl_struct};
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

/// `OP` in the WGSL.
fn op_code(op: RowOp) -> u32 {
    match op {
        RowOp::Softmax => 0,
        RowOp::LogSoftmax => 1,
        RowOp::Normalize { .. } => 2,
    }
}

/// The pipeline for this operation and epilogue.
pub(crate) fn pipeline_spec(op: RowOp, ep: &Epilogue) -> PipelineSpec {
    PipelineSpec {
        label: "row",
        source: source(RowDims::WGSL, SLOTS, &ep.code, shader!("row.wgsl")),
        trusted: false,
        entry: "row",
        constants: vec![("OP", f64::from(op_code(op)))],
        slots: SLOTS,
    }
}

/// The uniform block and grid for `rows` rows of `n_out` values.
pub(crate) fn dims(op: RowOp, rows: usize, n_out: usize, max_groups: u32) -> (RowDims, (u32, u32)) {
    let grid = fold(rows as u64, max_groups);
    let eps = match op {
        RowOp::Normalize { eps } => eps,
        _ => 0.0,
    };
    let dims = RowDims {
        rows: rows as u32,
        n4: crate::gpu::pack::vec4s(n_out) as u32,
        n_out: n_out as u32,
        groups_x: grid.0,
        eps,
        ..RowDims::default()
    };
    (dims, grid)
}
