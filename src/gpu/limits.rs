//! The device limits this crate needs of an application's device, and the caps
//! [`GpuOptions`] puts on a device it opens.

use crate::error::{Error, Result};
use crate::gpu::adapter::GpuOptions;

/// The adapter's limits less the caps of `opts`.
pub(crate) fn capped(mut limits: wgpu::Limits, opts: &GpuOptions) -> wgpu::Limits {
    if let Some(cap) = opts.max_storage_binding_size {
        limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
    }
    if let Some(cap) = opts.max_workgroup_invocations {
        // Every kernel's smallest form needs 64 (elementwise, row, blocked).
        let cap = cap.max(64);
        limits.max_compute_invocations_per_workgroup =
            limits.max_compute_invocations_per_workgroup.min(cap);
        limits.max_compute_workgroup_size_x = limits.max_compute_workgroup_size_x.min(cap);
        limits.max_compute_workgroup_size_y = limits.max_compute_workgroup_size_y.min(cap);
    }
    limits
}

/// The limits below which no kernel of this crate can run on an application's device, each with
/// what to ask for: checked once, so that a too-small device is one clear error rather than a
/// wgpu validation error from the first model (after which its cached layouts are invalid).
pub(crate) fn check_device_limits(have: &wgpu::Limits, adapter: &wgpu::Limits) -> Result<()> {
    let needs = [
        (
            "max_storage_buffers_per_shader_stage",
            have.max_storage_buffers_per_shader_stage,
            crate::gpu::kernels::storage_buffers_needed(),
            adapter.max_storage_buffers_per_shader_stage,
        ),
        (
            "max_compute_invocations_per_workgroup",
            have.max_compute_invocations_per_workgroup,
            64,
            adapter.max_compute_invocations_per_workgroup,
        ),
        (
            "max_compute_workgroup_size_x",
            have.max_compute_workgroup_size_x,
            64,
            adapter.max_compute_workgroup_size_x,
        ),
    ];
    for (name, has, need, offered) in needs {
        if has < need {
            return Err(Error::invalid(format!(
                "the device was created with {name} = {has}; wgpu-mlp's kernels need at least \
                 {need} (the adapter offers {offered}): create it with \
                 wgpu::Limits {{ {name}: {need}, .. }} or with the adapter's limits"
            )));
        }
    }
    Ok(())
}
