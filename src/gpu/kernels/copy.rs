//! The copy kernels (`copy.wgsl`): an application's plain `[rows, cols]` f32 buffers to and from
//! the workspace's padded rows, for [`GpuMlp::encode`](crate::gpu::GpuMlp::encode).

use crate::gpu::kernels::{PipelineSpec, Slot, WgslStruct, fold, source, wgsl_struct};

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

/// Which way a copy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Plain rows in, padded rows out.
    Pack,
    /// Padded rows in, plain rows out.
    Unpack,
}

/// The pipeline of a copy direction.
pub(crate) fn pipeline_spec(dir: Direction) -> PipelineSpec {
    PipelineSpec {
        label: "copy",
        // No epilogue: an identity `ep_value` and no `ep` binding are needed, but the common
        // helpers expect the function to exist.
        source: source(
            CopyDims::WGSL,
            SLOTS,
            "fn ep_value(x: f32, c: u32) -> f32 { return x; }\n",
            shader!("copy.wgsl"),
        ),
        trusted: false,
        entry: match dir {
            Direction::Pack => "pack",
            Direction::Unpack => "unpack",
        },
        constants: Vec::new(),
        slots: SLOTS,
    }
}

/// The uniform block and grid for a copy of `rows` rows of `cols` values from/to `row0`.
pub(crate) fn dims(
    dir: Direction,
    rows: usize,
    cols: usize,
    row0: usize,
    max_groups: u32,
) -> (CopyDims, (u32, u32)) {
    let stride = crate::gpu::pack::vec4s(cols) * 4;
    let per_row = match dir {
        Direction::Pack => stride,
        Direction::Unpack => cols,
    };
    let grid = fold((rows as u64 * per_row as u64).div_ceil(WG), max_groups);
    let dims = CopyDims {
        rows: rows as u32,
        cols: cols as u32,
        stride: stride as u32,
        row0: row0 as u32,
        groups_x: grid.0,
        ..CopyDims::default()
    };
    (dims, grid)
}
