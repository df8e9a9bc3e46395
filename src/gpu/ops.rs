//! The separate kernels, one call each, on matrices from the host: matmul, bias add, an
//! activation, softmax. They allocate per call and exist to check each kernel on its own against
//! its CPU counterpart; models run through [`GpuMlp`].

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::{ErrorScope, GpuContext};
use crate::gpu::kernels::{ELEMENTWISE_WG, PipelineKey, act_code};
use crate::gpu::model::{GpuMlp, KernelMode, RowDims, bind_group, fold, upload_buffer};
use crate::gpu::pack;
use crate::layer::Linear;
use crate::matrix::Matrix;
use crate::model::{Layer, Mlp};

/// `x · Wᵀ` with the matmul kernel alone (`weight` is `[out, in]`).
pub fn matmul(ctx: &GpuContext, x: &Matrix, weight: &Matrix) -> Result<Matrix> {
    let linear = Linear::new(
        weight.cols(),
        weight.rows(),
        weight.as_slice().to_vec(),
        None,
    )?;
    let model = Mlp::from_layers(vec![Layer {
        linear,
        activation: Activation::Identity,
    }])?;
    GpuMlp::with_mode(ctx, &model, KernelMode::Separate)?.forward(x)
}

/// `x + b` (broadcast over rows) with the bias-add kernel alone.
pub fn bias_add(ctx: &GpuContext, x: &Matrix, bias: &[f32]) -> Result<Matrix> {
    if bias.len() != x.cols() {
        return Err(Error::shape(format!(
            "bias has {} values for a [{}, {}] input",
            bias.len(),
            x.rows(),
            x.cols()
        )));
    }
    run_rowwise(ctx, x, bias, PipelineKey::BiasAdd)
}

/// An activation applied to every element (or, for softmax, every row) with its kernel alone.
pub fn activation(ctx: &GpuContext, x: &Matrix, act: Activation) -> Result<Matrix> {
    let key = if act.is_rowwise() {
        PipelineKey::Softmax
    } else {
        let (act, alpha) = act_code(act);
        PipelineKey::Activation {
            act,
            alpha: alpha.to_bits(),
        }
    };
    run_rowwise(ctx, x, &[], key)
}

/// Runs one elementwise or softmax pass over `x` in a fresh buffer and reads it back.
fn run_rowwise(ctx: &GpuContext, x: &Matrix, bias: &[f32], key: PipelineKey) -> Result<Matrix> {
    let inner = &ctx.inner;
    inner.check_alive()?;
    let (rows, cols) = (x.rows(), x.cols());
    if rows == 0 || cols == 0 {
        return Ok(x.clone());
    }
    let n4 = pack::vec4s(cols);
    let bytes = pack::f32_bytes(rows * n4 * 4);
    if bytes > inner.limits.max_storage_buffer_binding_size {
        return Err(Error::OutOfMemory(format!(
            "[{rows}, {cols}] needs {bytes} bytes, over the largest storage binding"
        )));
    }
    let max_groups = inner.limits.max_compute_workgroups_per_dimension;
    let groups = match key {
        PipelineKey::Softmax => rows as u64,
        _ => (rows as u64 * n4 as u64).div_ceil(u64::from(ELEMENTWISE_WG)),
    };
    let (gx, gy) = fold(groups, max_groups);
    let dims = RowDims {
        rows: rows as u32,
        n4: n4 as u32,
        n_out: cols as u32,
        groups_x: gx,
    };
    let device = &inner.device;
    let scope = ErrorScope::push(device);
    let init = |data: &[u8], usage| upload_buffer(inner, "ops", data, usage);
    let mut padded_bias = vec![0.0f32; n4 * 4];
    padded_bias[..bias.len()].copy_from_slice(bias);
    let dims_buf = init(bytemuck::bytes_of(&dims), wgpu::BufferUsages::UNIFORM);
    let bias_buf = init(
        bytemuck::cast_slice(&padded_bias),
        wgpu::BufferUsages::STORAGE,
    );
    let data = init(
        bytemuck::cast_slice(&pack::pad_rows(x.as_slice(), rows, cols)),
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    );
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let kernels = &inner.kernels;
    let bg = match key {
        PipelineKey::Softmax => bind_group(device, &kernels.softmax_layout, &[&dims_buf, &data]),
        _ => bind_group(
            device,
            &kernels.elementwise_layout,
            &[&dims_buf, &bias_buf, &data],
        ),
    };
    let pipeline = kernels.pipeline(device, key);
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(gx, gy, 1);
    }
    encoder.copy_buffer_to_buffer(&data, 0, &staging, 0, bytes);
    let index = inner.queue.submit([encoder.finish()]);
    let values = inner.read_mapped(&staging, bytes, index, |b| {
        pack::unpad_rows(bytemuck::cast_slice(b), rows, cols)
    });
    scope.pop()?;
    Matrix::new(rows, cols, values?)
}
