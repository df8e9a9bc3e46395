//! The separate kernels, one call each, on matrices from the host: matmul, bias add, an
//! activation (elementwise or row). They build a one-step model per call (allocating) and exist
//! to check each kernel on its own against its CPU counterpart; models run through [`GpuMlp`].
//! Inside the crate, `run_kernel` (tests only) runs any kernel once on host values, the same way.

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
#[cfg(test)]
use crate::gpu::error_scope::ErrorScope;
#[cfg(test)]
use crate::gpu::kernels::{self, DIMS, DIMS_BYTES, Kernel, SlotKind, window};
use crate::gpu::model::GpuMlp;
use crate::gpu::options::{GpuMlpOptions, KernelMode};
#[cfg(test)]
use crate::gpu::pack;
use crate::matrix::Matrix;
use crate::model::Linear;
use crate::model::expr::{Binary, Expr, Node};
use crate::model::steps::{RowOp, Step, StepOp};

/// Runs one step on `x`.
fn run(ctx: &GpuContext, x: &Matrix, step: Step<'_>) -> Result<Matrix> {
    let options = GpuMlpOptions {
        mode: KernelMode::Separate,
        ..GpuMlpOptions::default()
    };
    GpuMlp::from_steps(ctx, &[step], x.cols(), options)?.forward(x)
}

/// `x · Wᵀ` with the matmul kernel alone (`weight` is `[out, in]`).
pub fn matmul(ctx: &GpuContext, x: &Matrix, weight: &Matrix) -> Result<Matrix> {
    let linear = Linear::new(
        weight.cols(),
        weight.rows(),
        weight.as_slice().to_vec(),
        None,
    )?;
    if x.cols() != linear.in_features() {
        return Err(Error::shape(format!(
            "x is [{}, {}] but the weight is [{}, {}]",
            x.rows(),
            x.cols(),
            weight.rows(),
            weight.cols()
        )));
    }
    let step = Step {
        op: StepOp::Linear(&linear),
        epilogue: Expr::identity(),
        n_in: linear.in_features(),
        n_out: linear.out_features(),
    };
    run(ctx, x, step)
}

/// `x + b` (broadcast over rows) with the elementwise kernel alone.
pub fn bias_add(ctx: &GpuContext, x: &Matrix, bias: &[f32]) -> Result<Matrix> {
    if bias.len() != x.cols() {
        return Err(Error::shape(format!(
            "bias has {} values for a [{}, {}] input",
            bias.len(),
            x.rows(),
            x.cols()
        )));
    }
    let nodes = vec![
        Node::Input,
        Node::Column(bias.to_vec().into()),
        Node::Binary(Binary::Add, 0, 1),
    ];
    elementwise(ctx, x, &Expr::from_nodes(nodes)?)
}

/// An elementwise expression applied to every element with the elementwise kernel alone.
pub fn elementwise(ctx: &GpuContext, x: &Matrix, expr: &Expr) -> Result<Matrix> {
    if x.rows() == 0 || x.cols() == 0 {
        return Ok(x.clone());
    }
    expr.check_width(x.cols())?;
    let step = Step {
        op: StepOp::Elementwise,
        epilogue: expr.clone(),
        n_in: x.cols(),
        n_out: x.cols(),
    };
    run(ctx, x, step)
}

/// An activation applied to every element (or, for softmax and log-softmax, every row) with its
/// kernel alone.
pub fn activation(ctx: &GpuContext, x: &Matrix, act: Activation) -> Result<Matrix> {
    if !act.is_row() {
        return elementwise(ctx, x, &Expr::activation(act)?);
    }
    if x.rows() == 0 || x.cols() == 0 {
        return Ok(x.clone());
    }
    let op = if act == Activation::Softmax {
        RowOp::Softmax
    } else {
        RowOp::LogSoftmax
    };
    let step = Step {
        op: StepOp::Row(op),
        epilogue: Expr::identity(),
        n_in: x.cols(),
        n_out: x.cols(),
    };
    run(ctx, x, step)
}

/// Runs `kernel` once on host values, allocating everything (a test path, never the hot one):
/// each storage binding gets a buffer holding the values given for its name, the dispatches
/// for `rows` rows run in one submit, and every writable binding's values come back by name.
#[cfg(test)]
pub(crate) fn run_kernel(
    ctx: &GpuContext,
    kernel: &dyn Kernel,
    rows: usize,
    values: &[(&str, &[f32])],
) -> Result<Vec<(&'static str, Vec<f32>)>> {
    let inner = &ctx.inner;
    inner.check_alive()?;
    let (device, queue) = (&inner.device, &inner.queue);
    let _held = inner.hold();
    let scope = ErrorScope::push(device);
    let storage = |size: u64, usage: wgpu::BufferUsages| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("run_kernel"),
            size: size.max(16),
            usage,
            mapped_at_creation: false,
        })
    };
    let dispatches = kernel.dispatches(rows, inner.limits.max_compute_workgroups_per_dimension);
    let align = u64::from(inner.limits.min_uniform_buffer_offset_alignment).max(1);
    let stride = DIMS_BYTES.next_multiple_of(align);
    let dims = storage(
        stride * dispatches.len() as u64,
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    );
    for (i, d) in dispatches.iter().enumerate() {
        queue.write_buffer(&dims, i as u64 * stride, &d.dims);
    }
    let mut bound = Vec::new();
    for slot in kernel.slots() {
        match slot.kind {
            SlotKind::Storage { read_only } => {
                let data = values
                    .iter()
                    .find(|(n, _)| *n == slot.name)
                    .map(|v| v.1)
                    .ok_or_else(|| Error::invalid(format!("no values for `{}`", slot.name)))?;
                let usage = wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST;
                let buffer = storage(pack::f32_bytes(data.len()), usage);
                queue.write_buffer(&buffer, 0, bytemuck::cast_slice(data));
                bound.push((*slot, buffer, data.len(), read_only));
            }
            SlotKind::Window(_) if slot.name == DIMS => {}
            _ => {
                return Err(Error::invalid(format!(
                    "run_kernel binds storage buffers only, not `{}`",
                    slot.name
                )));
            }
        }
    }
    let dims_slot = kernel.slots()[0];
    let mut entries = vec![(dims_slot, window(&dims, DIMS_BYTES))];
    entries.extend(bound.iter().map(|(s, b, ..)| (*s, b.as_entire_binding())));
    let layout = inner.kernels.layout(device, kernel.slots());
    let group = kernels::bind_group(device, "run_kernel", &layout, &entries);
    let pipelines: Vec<_> = kernel
        .pipelines()
        .iter()
        .map(|spec| inner.kernels.pipeline(device, spec))
        .collect();
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for (i, d) in dispatches.iter().enumerate() {
            let mut offsets = vec![(i as u64 * stride) as u32];
            offsets.extend_from_slice(&d.windows);
            pass.set_pipeline(&pipelines[d.pipeline]);
            pass.set_bind_group(0, &group, &offsets);
            pass.dispatch_workgroups(d.grid.0, d.grid.1, 1);
        }
    }
    let written: Vec<_> = bound.iter().filter(|b| !b.3).collect();
    let total: usize = written.iter().map(|b| b.2).sum();
    let staging = storage(
        pack::f32_bytes(total),
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let mut at = 0;
    for (_, buffer, len, _) in &written {
        let bytes = pack::f32_bytes(*len);
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, at, bytes);
        at += bytes;
    }
    let index = queue.submit([encoder.finish()]);
    let read = inner.read_blocking(&staging, pack::f32_bytes(total).max(4), index, |b| {
        let all: &[f32] = bytemuck::cast_slice(b);
        let mut from = 0;
        written
            .iter()
            .map(|(slot, _, len, _)| {
                from += len;
                (slot.name, all[from - len..from].to_vec())
            })
            .collect()
    });
    scope.pop()?;
    read
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::GpuOptions;
    use crate::gpu::kernels::elementwise::Elementwise;
    use crate::gpu::kernels::epilogue;

    #[test]
    fn run_kernel_binds_by_name_and_reads_back_what_was_written() {
        let ctx = GpuContext::new(&GpuOptions::default()).expect("a GPU adapter");
        // ReLU on 3 rows of 5 (padded to 8): negatives and padding lanes become 0.
        let (rows, width) = (3, 5);
        let ep = epilogue::compile(&Expr::activation(Activation::Relu).unwrap(), width);
        let y: Vec<f32> = (0..rows * 8).map(|i| i as f32 - 11.5).collect();
        let params = ep.params.clone();
        let kernel = Elementwise { ep, width };
        let out = run_kernel(&ctx, &kernel, rows, &[("y", &y), ("ep", &params)]).unwrap();
        assert_eq!(out.len(), 1, "only y is writable");
        let want: Vec<f32> = y
            .iter()
            .enumerate()
            .map(|(i, v)| if i % 8 < width { v.max(0.0) } else { 0.0 })
            .collect();
        assert_eq!(out[0], ("y", want));
    }
}
