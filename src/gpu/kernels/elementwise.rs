//! The elementwise kernel (`shaders/elementwise.wgsl`): a step's epilogue as a pass of its own,
//! in place.

use crate::gpu::kernels::epilogue::Epilogue;
use crate::gpu::kernels::{Dispatch, Kernel, PipelineSpec, Slot, fold, wgsl_struct};

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
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[SLOTS];

/// Its pipeline's label (the compile budget counts these pipelines apart).
pub(crate) const LABEL: &str = "elementwise";

/// A pass of the elementwise kernel: `y = epilogue(y)` on rows of `width` values.
#[derive(Debug)]
pub(crate) struct Elementwise {
    pub(crate) ep: Epilogue,
    pub(crate) width: usize,
}

impl Kernel for Elementwise {
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        let body = shader!("elementwise.wgsl");
        vec![PipelineSpec::checked::<ElementwiseDims>(
            LABEL,
            "elementwise",
            SLOTS,
            &self.ep.code,
            body,
        )]
    }

    fn dispatches(&self, rows: usize, max_groups: u32) -> Vec<Dispatch> {
        let n4 = crate::gpu::pack::vec4s(self.width);
        let grid = fold((rows as u64 * n4 as u64).div_ceil(WG), max_groups);
        let dims = ElementwiseDims {
            rows: rows as u32,
            n4: n4 as u32,
            n_out: self.width as u32,
            groups_x: grid.0,
        };
        vec![Dispatch::new(0, &dims, grid)]
    }
}
