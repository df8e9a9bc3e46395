//! [`GpuMlp`]: a model whose weights live on the device. Made once from its [plan](super::plan)
//! (weights, biases and epilogue parameters uploaded, pipelines compiled); every call then takes a
//! workspace, replays the dispatches for its batch size and reads the result back: one submit
//! and one readback per chunk of rows.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::gpu::context::{ErrorScope, GpuContext};
use crate::gpu::kernels::copy::{self, Direction};
use crate::gpu::kernels::epilogue;
use crate::gpu::kernels::linear::{self, BUFFER_WEIGHT_PAD, LinearKernel, windowed};
use crate::gpu::kernels::{Slot, elementwise, row};
use crate::gpu::pack::{self, PanelLayout};
use crate::gpu::plan::{self, Buf, DeviceCaps, LinearPlan, PassOp, Plan};
use crate::gpu::workspace::{Workspace, windowed_blocks};
use crate::matrix::Matrix;
use crate::model::Mlp;
use crate::model::steps::{RowOp, Step, steps};

/// Which kernels run each step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelMode {
    /// One kernel per step: a Linear layer's matrix product with its bias and the elementwise
    /// modules after it (activations, BatchNorm, …) in its store step; a softmax too where a row
    /// fits one subgroup (the windowed kernel on a device with subgroups, at most 32 outputs).
    /// The default, and the fast path.
    #[default]
    Fused,
    /// Separate matmul, bias-add, elementwise and row passes. Slower; it exists so every step
    /// can be checked on its own.
    Separate,
}

/// How weights are stored on the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// f32, exactly the model's weights.
    #[default]
    F32,
    /// f16 (rounded to nearest): half the memory and half the bytes fetched per texel;
    /// arithmetic stays f32. A weight's relative error is at most 2⁻¹¹ where its magnitude is
    /// at least 2⁻¹⁴ (f16's smallest normal, 6.1e-5); below that its absolute error is at most
    /// 2⁻²⁵ (f16's subnormal spacing). A model with a finite weight of magnitude 65520 or more
    /// (it would round to ±inf) is refused by [`GpuMlp::with_options`] with `InvalidArgument`
    /// naming the layer and the weight's position. Applies to layers run by
    /// [`LinearKernel::Windowed`] (inputs up to 8,192 features); other layers keep f32 weights.
    F16,
}

/// Options for [`GpuMlp::with_options`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuMlpOptions {
    /// Which kernels run each step.
    pub mode: KernelMode,
    /// How weights are stored.
    pub weights: WeightFormat,
    /// Which kernel runs each Linear layer's matrix product.
    pub kernel: LinearKernel,
}

/// A pass on the device: its kind's buffers and pipelines, its epilogue parameters.
#[derive(Debug)]
pub(crate) struct UploadedPass {
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    pub(crate) src: Buf,
    pub(crate) dst: Buf,
    /// The epilogue's parameter buffer (`ep`).
    pub(crate) ep: wgpu::Buffer,
    pub(crate) kind: Kind,
}

/// What a pass runs.
#[derive(Debug)]
pub(crate) enum Kind {
    /// The windowed kernel: its texture and a pipeline per row block (1, 4, 8, 16).
    Windowed {
        geometry: windowed::Geometry,
        wg: u32,
        weight: wgpu::TextureView,
        layout: PanelLayout,
        bias: wgpu::Buffer,
        slots: &'static [Slot],
        pipelines: Vec<(u32, wgpu::ComputePipeline)>,
    },
    /// A storage-buffer kernel, and the candidates' pipelines.
    Buffer {
        weight: wgpu::Buffer,
        bias: wgpu::Buffer,
        wt_n4: u32,
        kernels: Vec<(LinearKernel, wgpu::ComputePipeline)>,
    },
    Row {
        op: RowOp,
        pipeline: wgpu::ComputePipeline,
    },
    Elementwise {
        pipeline: wgpu::ComputePipeline,
    },
}

/// An [`Mlp`] uploaded to a GPU. Weights are uploaded once; each call is one command encoder,
/// one submit and one readback (per chunk; see below).
///
/// Batches of any size work: when a batch's activations would exceed the device's largest storage
/// binding, or its grid the 65,535-workgroup limit, it runs in chunks of rows, each its own
/// submit, with the same result.
///
/// `GpuMlp` is `Send + Sync`: concurrent calls each take a workspace of their own (made on
/// first need, then reused) and each gets exactly the result it would get alone.
#[derive(Debug)]
pub struct GpuMlp {
    pub(crate) ctx: GpuContext,
    pub(crate) passes: Vec<UploadedPass>,
    pub(crate) copy_input: bool,
    pub(crate) output: Buf,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    pub(crate) widest4: usize,
    /// The pack / unpack pipelines of [`GpuMlp::encode`].
    pub(crate) copies: [wgpu::ComputePipeline; 2],
    mode: KernelMode,
    chunk_rows: usize,
    /// Idle workspaces, ready for the next call.
    pool: Mutex<Vec<Workspace>>,
    /// The workspace of [`prepare`](Self::prepare) / [`run_prepared`](Self::run_prepared).
    #[cfg(not(target_arch = "wasm32"))]
    prepared: Mutex<Option<Workspace>>,
    allocations: AtomicU64,
}

/// Idle workspaces kept per model (more exist only while that many calls run at once).
const POOL: usize = 4;

impl GpuMlp {
    /// Uploads `model` to the device, with the fused kernels.
    pub fn new(ctx: &GpuContext, model: &Mlp) -> Result<Self> {
        Self::with_options(ctx, model, GpuMlpOptions::default())
    }

    /// Uploads `model` to the device with the given kernels and weight storage.
    pub fn with_options(ctx: &GpuContext, model: &Mlp, options: GpuMlpOptions) -> Result<Self> {
        Self::from_steps(ctx, &steps(model), model.in_features(), options)
    }

    /// Uploads a plan of `steps` (the single-kernel [`ops`](super::ops) use it directly).
    pub(crate) fn from_steps(
        ctx: &GpuContext,
        steps: &[Step<'_>],
        n_in: usize,
        options: GpuMlpOptions,
    ) -> Result<Self> {
        let inner = &ctx.inner;
        inner.check_alive()?;
        let caps = DeviceCaps {
            software: ctx.is_software(),
            subgroups: inner.subgroups,
            limits: inner.limits.clone(),
        };
        let plan = plan::plan(steps, n_in, &caps, options)?;
        let scope = ErrorScope::push(&inner.device);
        let passes = upload(ctx, &plan);
        let copies = [Direction::Pack, Direction::Unpack].map(|d| {
            inner
                .kernels
                .pipeline(&inner.device, &copy::pipeline_spec(d))
        });
        scope.pop()?;
        Ok(GpuMlp {
            ctx: ctx.clone(),
            passes,
            copy_input: plan.copy_input,
            output: plan.output(),
            n_in: plan.n_in,
            n_out: plan.n_out,
            widest4: plan.widest4,
            copies,
            mode: options.mode,
            chunk_rows: plan.chunk_rows,
            pool: Mutex::new(Vec::new()),
            #[cfg(not(target_arch = "wasm32"))]
            prepared: Mutex::new(None),
            allocations: AtomicU64::new(0),
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.n_in
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.n_out
    }

    /// The kernels this model runs with.
    pub fn mode(&self) -> KernelMode {
        self.mode
    }

    /// The most rows one submit handles; larger batches run in chunks of this size.
    pub fn chunk_rows(&self) -> usize {
        self.chunk_rows
    }

    /// The kernel each Linear layer runs for a batch of `batch` rows (with
    /// [`LinearKernel::Auto`] this depends on the adapter, the layer's shape and the batch).
    pub fn linear_kernels(&self, batch: usize) -> Vec<LinearKernel> {
        let rows = batch.clamp(1, self.chunk_rows);
        self.passes
            .iter()
            .filter_map(|p| match &p.kind {
                Kind::Windowed { .. } => Some(LinearKernel::Windowed),
                Kind::Buffer { kernels, .. } => {
                    let c: Vec<_> = kernels.iter().map(|k| k.0).collect();
                    Some(linear::pick(&c, rows, p.n_out))
                }
                _ => None,
            })
            .collect()
    }

    /// The context this model lives on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// How many device buffers and bind groups the model's workspaces have allocated so far.
    /// Once the largest batch has been seen (by each concurrent caller) this stays constant:
    /// later calls allocate nothing.
    pub fn workspace_allocations(&self) -> u64 {
        self.allocations.load(Ordering::Relaxed)
    }

    pub(crate) fn count_allocations(&self, n: u64) {
        self.allocations.fetch_add(n, Ordering::Relaxed);
    }

    /// A workspace of at least `rows` rows: an idle one, grown if needed, or a new one.
    pub(crate) fn take_workspace(&self, rows: usize) -> Workspace {
        let idle = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(ws) if ws.capacity_rows >= rows => ws,
            _ => Workspace::new(self, rows),
        }
    }

    /// Returns a workspace to the pool.
    pub(crate) fn give_workspace(&self, ws: Workspace) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL {
            pool.push(ws);
        }
    }

    /// The rows one call's workspace needs for a batch.
    pub(crate) fn workspace_rows(&self, batch: usize) -> usize {
        batch.clamp(1, self.chunk_rows)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn check_width(&self, len: usize, batch: usize) -> Result<()> {
        crate::matrix::check_input_slice(len, batch, self.n_in)
    }

    /// Uploads `input` into the device workspace for [`run_prepared`](Self::run_prepared), so
    /// the forward pass can be timed without transfers ("resident"). The batch must fit one chunk.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn prepare(&self, input: &Matrix) -> Result<()> {
        self.check_width(input.as_slice().len(), input.rows())
            .map_err(|_| shape_error(input, self.n_in))?;
        let rows = input.rows();
        if rows == 0 || rows > self.chunk_rows {
            return Err(Error::invalid(format!(
                "prepare takes 1 to {} rows, got {rows}",
                self.chunk_rows
            )));
        }
        let inner = &self.ctx.inner;
        let mut guard = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let mut ws = match guard.take() {
            Some(ws) if ws.capacity_rows >= rows => ws,
            _ => Workspace::new(self, rows),
        };
        let scope = ErrorScope::push(&inner.device);
        self.upload_rows(&ws, input.as_slice(), rows);
        ws.replay(self, rows, crate::gpu::workspace::Ends::Own);
        ws.prepared_rows = Some(rows);
        let index = inner.queue.submit([]);
        let waited = inner.wait(index);
        *guard = Some(ws);
        scope.pop()?;
        waited
    }

    /// Runs the forward pass on the prepared input, leaving the output on the device, and waits
    /// until the queue has drained.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_prepared(&self) -> Result<()> {
        let inner = &self.ctx.inner;
        let mut guard = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let ws = prepared(&mut guard)?;
        let rows = ws.prepared_rows.unwrap_or(1);
        let scope = ErrorScope::push(&inner.device);
        let replay = ws.replay(self, rows, crate::gpu::workspace::Ends::Own);
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        ws.record(self, &replay, &mut encoder, None);
        let index = inner.queue.submit([encoder.finish()]);
        let waited = inner.wait(index);
        scope.pop()?;
        waited
    }

    /// Reads back the output of the last [`run_prepared`](Self::run_prepared).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_prepared(&self) -> Result<Matrix> {
        let inner = &self.ctx.inner;
        let mut guard = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let ws = prepared(&mut guard)?;
        let rows = ws.prepared_rows.unwrap_or(1);
        let scope = ErrorScope::push(&inner.device);
        let bytes = self.output_bytes(rows);
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(ws.output(self), 0, &ws.staging, 0, bytes);
        let index = inner.queue.submit([encoder.finish()]);
        let mut out = Vec::with_capacity(rows * self.n_out);
        let read = inner.read_blocking(&ws.staging, bytes, index, |b| {
            pack::unpad_rows_into(bytemuck::cast_slice(b), rows, self.n_out, &mut out)
        });
        scope.pop()?;
        read?;
        Matrix::new(rows, self.n_out, out)
    }

    /// Bytes of `rows` padded output rows.
    pub(crate) fn output_bytes(&self, rows: usize) -> u64 {
        pack::f32_bytes(rows * pack::vec4s(self.n_out) * 4)
    }

    /// Writes `rows` rows of `data` into the workspace input, padded, straight into the queue's
    /// staging memory (no copy of the input on the host).
    pub(crate) fn upload_rows(&self, ws: &Workspace, data: &[f32], rows: usize) {
        let queue = &self.ctx.inner.queue;
        let stride = pack::vec4s(self.n_in) * 4;
        let bytes = pack::f32_bytes(rows * stride);
        let Some(size) = wgpu::BufferSize::new(bytes) else {
            return;
        };
        match queue.write_buffer_with(&ws.input, 0, size) {
            Some(mut view) => {
                // Row by row into the write-only mapping: the values, then zeros to the stride.
                let (row, width) = (stride * 4, self.n_in * 4);
                if row == width {
                    view.copy_from_slice(bytemuck::cast_slice(&data[..rows * self.n_in]));
                } else {
                    for (r, src) in data.chunks_exact(self.n_in).take(rows).enumerate() {
                        view.slice(r * row..r * row + width)
                            .copy_from_slice(bytemuck::cast_slice(src));
                        view.slice(r * row + width..(r + 1) * row).fill(0);
                    }
                }
            }
            // The view is refused only on a validation error, which the caller's scope reports.
            None => queue.write_buffer(
                &ws.input,
                0,
                bytemuck::cast_slice(&pack::pad_rows(data, rows, self.n_in)),
            ),
        }
    }
}

/// `input is [r, c] but the model expects [batch, n]`.
pub(crate) fn shape_error(input: &Matrix, n_in: usize) -> Error {
    Error::shape(format!(
        "input is [{}, {}] but the model expects [batch, {n_in}]",
        input.rows(),
        input.cols()
    ))
}

#[cfg(not(target_arch = "wasm32"))]
fn prepared(guard: &mut Option<Workspace>) -> Result<&mut Workspace> {
    guard
        .as_mut()
        .filter(|w| w.prepared_rows.is_some())
        .ok_or_else(|| Error::invalid("call prepare() with an input first"))
}

/// Uploads every pass of the plan: weights, biases, epilogue parameters, pipelines.
fn upload(ctx: &GpuContext, plan: &Plan<'_>) -> Vec<UploadedPass> {
    let inner = &ctx.inner;
    let (device, queue, kernels) = (&inner.device, &inner.queue, &inner.kernels);
    let buffer = |label: &str, data: &[f32]| {
        let b = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: pack::f32_bytes(data.len())
                .next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
                .max(16),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        // Written through the queue rather than mapped at creation: mapping panics inside wgpu
        // when the device was lost but the loss is not reported yet.
        queue.write_buffer(&b, 0, bytemuck::cast_slice(data));
        b
    };
    plan.passes
        .iter()
        .map(|p| {
            let ep = epilogue::compile(&p.epilogue, p.n_out);
            let kind = match &p.op {
                PassOp::Linear {
                    linear,
                    bias,
                    kernel,
                } => {
                    let bias_buf = buffer("bias", &pack::bias_padded(linear));
                    match kernel {
                        LinearPlan::Windowed {
                            geometry,
                            wg,
                            row_op,
                            format,
                        } => {
                            let max_dim = inner.limits.max_texture_dimension_2d as usize;
                            let (weight, layout) =
                                windowed::weight_texture(device, queue, linear, *format, max_dim);
                            let variant = windowed::Variant {
                                subgroups: inner.subgroups,
                                format: *format,
                            };
                            let row_op = match row_op {
                                None => 0,
                                Some(RowOp::Softmax) => 1,
                                Some(_) => 2,
                            };
                            let pipelines = windowed_blocks()
                                .map(|rows| {
                                    let spec = windowed::WindowedSpec {
                                        rows,
                                        half: geometry.half(),
                                        wg: *wg,
                                        row_op,
                                    };
                                    let ps = variant.pipeline_spec(spec, &ep, *bias);
                                    (rows, kernels.pipeline(device, &ps))
                                })
                                .collect();
                            Kind::Windowed {
                                geometry: *geometry,
                                wg: *wg,
                                weight,
                                layout,
                                bias: bias_buf,
                                slots: windowed::slots(inner.subgroups, *format),
                                pipelines,
                            }
                        }
                        LinearPlan::Buffer { candidates } => {
                            let (r, c) = (BUFFER_WEIGHT_PAD.0, BUFFER_WEIGHT_PAD.1);
                            let packed = pack::weight_transposed_padded(linear, r, c);
                            let cols = linear.out_features().next_multiple_of(c);
                            Kind::Buffer {
                                weight: buffer("weight", &packed),
                                bias: bias_buf,
                                wt_n4: (cols / 4) as u32,
                                kernels: candidates
                                    .iter()
                                    .map(|k| {
                                        let b = k.buffer_kernel().expect("a buffer kernel");
                                        let ps = b.pipeline_spec(&ep, *bias);
                                        (*k, kernels.pipeline(device, &ps))
                                    })
                                    .collect(),
                            }
                        }
                    }
                }
                PassOp::Row(op) => Kind::Row {
                    op: *op,
                    pipeline: kernels.pipeline(device, &row::pipeline_spec(*op, &ep)),
                },
                PassOp::Elementwise => Kind::Elementwise {
                    pipeline: kernels.pipeline(device, &elementwise::pipeline_spec(&ep)),
                },
            };
            UploadedPass {
                n_in: p.n_in,
                n_out: p.n_out,
                src: p.src,
                dst: p.dst,
                ep: buffer("epilogue", &ep.params),
                kind,
            }
        })
        .collect()
}
