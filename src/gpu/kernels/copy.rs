//! The copy kernels (`shaders/copy.wgsl`): an application's plain `[rows, cols]` f32 buffers to
//! and from the workspace's padded rows, for [`GpuMlp::encode`](crate::gpu::GpuMlp::encode).

use crate::gpu::kernels::{Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, Slot, fold, wgsl_struct};

/// Invocations per workgroup (`WG` in the WGSL).
const WG: u64 = 64;

wgsl_struct! {
    /// The uniform block of one copy.
    pub(crate) struct CopyDims {
        rows: u32,
        /// Values per plain row.
        cols: u32,
        /// Values per padded row (4·ceil(cols/4)).
        stride: u32,
        /// The chunk's first row in the plain buffer.
        row0: u32,
        /// Workgroups along x of the folded grid.
        groups_x: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

const DIMS: Slot = Slot::dims("CopyDims");
/// What is read.
pub(crate) const SRC: Slot = Slot::storage(1, "src", "array<f32>", true);
/// What is written.
pub(crate) const DST: Slot = Slot::storage(2, "dst", "array<f32>", false);
/// The bindings.
pub(crate) const SLOTS: &[Slot] = &[DIMS, SRC, DST];
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[SLOTS];

/// Which way a copy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Plain rows in, padded rows out.
    Pack,
    /// Padded rows in, plain rows out.
    Unpack,
}

/// A copy of rows of `cols` values, the chunk starting at plain row `row0`.
#[derive(Debug)]
pub(crate) struct Copy {
    pub(crate) dir: Direction,
    pub(crate) cols: usize,
    pub(crate) row0: usize,
}

impl Kernel for Copy {
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        let entry = match self.dir {
            Direction::Pack => "pack",
            Direction::Unpack => "unpack",
        };
        let body = shader!("copy.wgsl");
        vec![PipelineSpec::checked::<CopyDims>(
            "copy",
            entry,
            SLOTS,
            NO_EPILOGUE,
            body,
        )]
    }

    fn dispatches(&self, rows: usize, max_groups: u32) -> Vec<Dispatch> {
        let stride = crate::gpu::pack::vec4s(self.cols) * 4;
        let per_row = match self.dir {
            Direction::Pack => stride,
            Direction::Unpack => self.cols,
        };
        let grid = fold((rows as u64 * per_row as u64).div_ceil(WG), max_groups);
        let dims = CopyDims {
            rows: rows as u32,
            cols: self.cols as u32,
            stride: stride as u32,
            row0: self.row0 as u32,
            groups_x: grid.0,
            ..CopyDims::default()
        };
        vec![Dispatch::new(0, &dims, grid)]
    }
}
