//! The elementwise kernel (`elementwise.wgsl`): a step's epilogue as a pass of its own, in place.

use crate::gpu::kernels::epilogue::Epilogue;
use crate::gpu::kernels::{PipelineSpec, Slot, WgslStruct, fold, source, wgsl_struct};

/// Invocations per workgroup (`WG` in the WGSL).
const WG: u64 = 64;

wgsl_struct! {
    /// The uniform block: the matrix and the folded grid.
    pub(crate) struct ElementwiseDims {
        rows: u32,
        /// vec4s per row.
        n4: u32,
        /// Real width.
        n_out: u32,
        /// Workgroups along x of the folded grid.
        groups_x: u32,
    }
}

const DIMS: Slot = Slot::dims("ElementwiseDims");
/// The matrix, updated in place.
pub(crate) const Y: Slot = Slot::storage(1, "y", "array<vec4<f32>>", false);
/// The epilogue's parameters.
pub(crate) const EP: Slot = Slot::epilogue(2);
/// The bindings.
pub(crate) const SLOTS: &[Slot] = &[DIMS, Y, EP];

/// The pipeline for this epilogue.
pub(crate) fn pipeline_spec(ep: &Epilogue) -> PipelineSpec {
    PipelineSpec {
        label: "elementwise",
        source: source(
            ElementwiseDims::WGSL,
            SLOTS,
            &ep.code,
            shader!("elementwise.wgsl"),
        ),
        trusted: false,
        entry: "elementwise",
        constants: Vec::new(),
        slots: SLOTS,
    }
}

/// The uniform block and grid for `rows` × `n_out` values.
pub(crate) fn dims(rows: usize, n_out: usize, max_groups: u32) -> (ElementwiseDims, (u32, u32)) {
    let n4 = crate::gpu::pack::vec4s(n_out);
    let grid = fold((rows as u64 * n4 as u64).div_ceil(WG), max_groups);
    let dims = ElementwiseDims {
        rows: rows as u32,
        n4: n4 as u32,
        n_out: n_out as u32,
        groups_x: grid.0,
    };
    (dims, grid)
}
