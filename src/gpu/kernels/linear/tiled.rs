//! The tiled Linear kernel (`tiled.wgsl`), for hardware GPUs: a TILE × TILE workgroup computes
//! an 8·TILE-square output tile, staging slabs of x and the weight through workgroup memory.

use super::BufferKernel;

/// The 64 × 64 tile (TILE 8) double-buffers its slabs: 8 KiB of workgroup memory, inside
/// WebGPU's default 16 KiB.
pub(crate) const TILE64: BufferKernel = tile(8, 2, "tiled64");

/// The 128 × 128 tile (TILE 16) is single-buffered: on an H100 its 32 KiB double buffer was
/// slower (docs/KERNELS.md, "The tiled kernels").
pub(crate) const TILE128: BufferKernel = tile(16, 1, "tiled128");

const fn tile(side: u32, stages: u32, label: &'static str) -> BufferKernel {
    BufferKernel {
        label,
        entry: "tiled",
        wgsl: shader!("linear/tiled.wgsl"),
        trusted: true,
        constants: if side == 8 {
            &[("TILE", 8.0), ("STAGES", 2.0)]
        } else {
            &[("TILE", 16.0), ("STAGES", 1.0)]
        },
        workgroup: (side, side),
        shared_bytes: stages * 2 * 2 * side * side * 16,
        block: (8 * side, 2 * side),
    }
}
