//! [`Program`]: a [plan](super::plan) on the device. Its fixed tensors (packed weights, biases,
//! epilogue parameters; in a training plan parameters and optimizer state) are uploaded once and
//! every pass's pipelines compiled once; workspaces allocate the per-row tensors and replay the
//! passes against both. The model holds one program; workspaces read it and nothing else.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::error_scope::ErrorScope;
use crate::gpu::kernels::copy::{Copy, Direction};
use crate::gpu::kernels::linear::windowed;
use crate::gpu::kernels::{Kernel, PipelineSpec, compile_cost};
use crate::gpu::pack;
use crate::gpu::plan::Plan;
use crate::gpu::tensor::{Extent, TensorId};

/// A fixed tensor on the device.
#[derive(Debug)]
pub(crate) enum Resource {
    Buffer(wgpu::Buffer),
    Texture(wgpu::TextureView),
}

/// A plan uploaded: fixed tensors on the device, pipelines compiled.
#[derive(Debug)]
pub(crate) struct Program {
    pub(crate) ctx: GpuContext,
    /// The plan; its fixed tensors' values were moved to the device.
    pub(crate) plan: Plan,
    /// Per tensor: the device's copy of a fixed tensor; `None` for per-row tensors (each
    /// workspace has its own).
    pub(crate) fixed: Vec<Option<Resource>>,
    /// Per pass, its kernel's pipelines (by the index its dispatches name).
    pub(crate) pipelines: Vec<Vec<wgpu::ComputePipeline>>,
    /// The pack / unpack pipelines of [`GpuMlp::encode`](super::GpuMlp::encode).
    pub(crate) copies: [wgpu::ComputePipeline; 2],
    /// Buffers and bind groups the workspaces have allocated so far.
    allocations: AtomicU64,
}

impl Program {
    /// Uploads `plan`'s fixed tensors and compiles its pipelines.
    pub(crate) fn upload(ctx: &GpuContext, mut plan: Plan) -> Result<Self> {
        let inner = &ctx.inner;
        let (device, queue, kernels) = (&inner.device, &inner.queue, &inner.kernels);
        // Refused before anything is uploaded or compiled.
        let specs: Vec<Vec<PipelineSpec>> =
            plan.passes.iter().map(|p| p.kernel.pipelines()).collect();
        let copy_specs = [
            (Direction::Pack, plan.n_in),
            (Direction::Unpack, plan.n_out),
        ]
        .map(|(dir, cols)| Copy { dir, cols, row0: 0 }.pipelines().remove(0));
        compile_cost::check_budget(specs.iter().flatten().chain(&copy_specs))?;
        let scope = ErrorScope::push(device);
        let fixed = plan
            .tensors
            .iter_mut()
            .map(|t| match &mut t.extent {
                Extent::Rows { .. } => None,
                Extent::Values(values) => {
                    let b = device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(&t.name),
                        size: pack::f32_bytes(values.len())
                            .next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
                            .max(16),
                        usage: wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_DST
                            | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    });
                    // Written through the queue rather than mapped at creation: mapping panics
                    // inside wgpu when the device was lost but the loss is not reported yet.
                    queue.write_buffer(&b, 0, bytemuck::cast_slice(values));
                    *values = Vec::new();
                    Some(Resource::Buffer(b))
                }
                Extent::Panels {
                    layout,
                    format,
                    texels,
                } => {
                    let view = windowed::weight_texture(device, queue, texels, layout, *format);
                    *texels = Vec::new();
                    Some(Resource::Texture(view))
                }
            })
            .collect();
        let pipelines = specs
            .iter()
            .map(|specs| specs.iter().map(|s| kernels.pipeline(device, s)).collect())
            .collect();
        let copies = copy_specs.map(|spec| kernels.pipeline(device, &spec));
        scope.pop()?;
        Ok(Program {
            ctx: ctx.clone(),
            plan,
            fixed,
            pipelines,
            copies,
            allocations: AtomicU64::new(0),
        })
    }

    /// The device's copy of fixed tensor `id` (`None` for per-row tensors).
    pub(crate) fn resource(&self, id: TensorId) -> Option<&Resource> {
        self.fixed[id.0].as_ref()
    }

    /// Counts buffers and bind groups a workspace allocated.
    pub(crate) fn count_allocations(&self, n: u64) {
        self.allocations.fetch_add(n, Ordering::Relaxed);
    }

    /// Buffers and bind groups the workspaces have allocated so far.
    pub(crate) fn allocations(&self) -> u64 {
        self.allocations.load(Ordering::Relaxed)
    }

    /// Bytes of `rows` padded output rows.
    pub(crate) fn output_bytes(&self, rows: usize) -> u64 {
        pack::f32_bytes(rows * pack::vec4s(self.plan.n_out) * 4)
    }
}
