//! [`Kernel`]: the one interface through which the plan and the replay know a kernel. A kernel's
//! file implements it for the pass it runs (the plan holds a `Box<dyn Kernel>` per pass); nothing
//! outside that file matches on which kernel a pass is.
//!
//! What a kernel declares: its bindings ([`Slot`]s, by number and name; the workspace binds each
//! slot to the tensor the pass names for it), the pipelines a dispatch of it may use (compiled
//! once, when the model is uploaded), and, per batch size, its dispatches: which pipeline, the
//! uniform block, the offsets of any further uniform windows and the grid.

use crate::gpu::kernels::linear::LinearKernel;
use crate::gpu::kernels::{DIMS_BYTES, PipelineSpec, Slot, WgslStruct};

/// One dispatch: which of the kernel's [pipelines](Kernel::pipelines), its uniform block (bound
/// at the `dims` slot), the byte offsets of its other dynamic-offset windows (in slot order) and
/// the workgroup grid.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Dispatch {
    pub(crate) pipeline: usize,
    pub(crate) dims: Vec<u8>,
    pub(crate) windows: Vec<u32>,
    pub(crate) grid: (u32, u32),
}

impl Dispatch {
    /// A dispatch of `pipeline` with uniform block `dims` and no further windows.
    pub(crate) fn new<T: WgslStruct>(pipeline: usize, dims: &T, grid: (u32, u32)) -> Self {
        let dims = bytemuck::bytes_of(dims).to_vec();
        debug_assert!(dims.len() as u64 <= DIMS_BYTES);
        Dispatch {
            pipeline,
            dims,
            windows: Vec::new(),
            grid,
        }
    }
}

/// A kernel as the plan and the replay see it (see the module docs).
pub(crate) trait Kernel: std::fmt::Debug + Send + Sync {
    /// Its bindings; the first is its uniform block (`Slot::dims`).
    fn slots(&self) -> &'static [Slot];

    /// Every pipeline a dispatch may name, by index.
    fn pipelines(&self) -> Vec<PipelineSpec>;

    /// The dispatches for a batch of `rows` rows (kernels over parameters ignore it), on a device
    /// whose grids are at most `max_groups` workgroups per dimension.
    fn dispatches(&self, rows: usize, max_groups: u32) -> Vec<Dispatch>;

    /// The Linear kernel that runs `rows` rows, for a Linear pass (what
    /// [`GpuMlp::linear_kernels`](crate::gpu::GpuMlp::linear_kernels) reports).
    fn linear_kernel(&self, rows: usize) -> Option<LinearKernel> {
        let _ = rows;
        None
    }
}
