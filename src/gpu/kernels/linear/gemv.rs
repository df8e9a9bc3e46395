//! The GEMV Linear kernel (`gemv.wgsl`), for a few rows on hardware GPUs: a workgroup of
//! COLS4 × SLICES invocations owns COLS4 vec4 columns and splits k among SLICES slices, 4 rows
//! per invocation; the partial sums meet in workgroup memory.

use super::BufferKernel;

/// vec4 columns per workgroup.
const COLS4: u32 = 8;
/// k slices per workgroup.
const SLICES: u32 = 32;

/// 256 invocations, 4 KiB of partial sums; a workgroup covers 4 rows × 8 vec4s.
pub(crate) const KERNEL: BufferKernel = BufferKernel {
    label: "gemv",
    entry: "gemv",
    wgsl: shader!("linear/gemv.wgsl"),
    trusted: true,
    constants: &[("COLS4", COLS4 as f64), ("SLICES", SLICES as f64)],
    workgroup: (COLS4 * SLICES, 1),
    shared_bytes: COLS4 * SLICES * 16,
    block: (4, COLS4),
};
