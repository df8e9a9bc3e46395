//! The blocked Linear kernel (`blocked.wgsl`): each invocation computes a 4-row × 8-column block
//! in registers straight from storage buffers. Software adapters run it for layers the windowed
//! kernel cannot take; on hardware GPUs it is the fallback when the others do not fit the limits.

use super::BufferKernel;

/// Workgroup of 8 × 8 invocations, each 4 rows × 8 columns (2 vec4s): 32 rows × 16 vec4s.
pub(crate) const KERNEL: BufferKernel = BufferKernel {
    label: "blocked",
    entry: "blocked",
    wgsl: shader!("linear/blocked.wgsl"),
    trusted: false,
    constants: &[("WG_X", 8.0), ("WG_Y", 8.0)],
    workgroup: (8, 8),
    shared_bytes: 0,
    block: (8 * 4, 8 * 2),
};
