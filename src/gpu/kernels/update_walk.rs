//! How the optimizer kernels (`sgd`, `adam`) walk a parameter tensor: one value per invocation,
//! workgroups of [`WG`], over a grid folded into 2-D past the device's limit (the shader rebuilds
//! the linear index from `groups_x`). One source for the width the host's grid and the shaders'
//! `@workgroup_size` share.

use crate::gpu::kernels::{fold, step_state};

/// Invocations per workgroup (`WG` in the WGSL).
const WG: u64 = 64;

/// What an update kernel's WGSL is prepended with: the step-state layout and `WG`.
pub(crate) fn wgsl(body: &str) -> String {
    format!("{}const WG: u32 = {WG}u;\n{body}", step_state::wgsl())
}

/// The (folded) grid for a tensor of `len` values.
pub(crate) fn grid(len: usize, max_groups: u32) -> (u32, u32) {
    fold((len as u64).div_ceil(WG), max_groups)
}
