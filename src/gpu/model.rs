//! [`GpuMlp`]: a model whose weights live on the device, run with one submit per forward pass.

use std::sync::Mutex;

use bytemuck::{Pod, Zeroable};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::choice::{LinearKernel, pick_variant};
use crate::gpu::context::{ContextInner, ErrorScope, GpuContext};
use crate::gpu::kernels::{
    ELEMENTWISE_WG, LINEAR_BLOCK, LINEAR_SMALL_ROWS, LINEAR_SUBGROUP_WG, LINEAR_WINDOW_BYTES,
    NO_PAIR, PipelineKey, TILED_PAD, TILED_SIDES, Variant, act_code, linear_wg,
};
use crate::gpu::pack;
use crate::matrix::Matrix;
use crate::model::Mlp;

/// Which kernels run each layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelMode {
    /// One kernel per layer: matmul with the bias add and activation in its store step. Softmax
    /// too where a row fits one subgroup (the windowed kernel on a device with subgroups, at most
    /// 32 outputs); otherwise it gets its own row kernel. The default, and the fast path.
    #[default]
    Fused,
    /// Separate matmul, bias-add, activation and softmax kernels, each its own pass. Slower; it
    /// exists so every step can be checked on its own.
    Separate,
}

/// How weights are stored on the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightFormat {
    /// f32, exactly the model's weights.
    #[default]
    F32,
    /// f16 (rounded to nearest, relative error at most 2⁻¹¹ per weight): half the memory and
    /// half the bytes fetched per texel; arithmetic stays f32. Applies to layers run by
    /// [`LinearKernel::Windowed`] (inputs up to 8,192 features); other layers keep f32 weights.
    F16,
}

/// Options for [`GpuMlp::with_options`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuMlpOptions {
    /// Which kernels run each layer.
    pub mode: KernelMode,
    /// How weights are stored.
    pub weights: WeightFormat,
    /// Which kernel runs each Linear layer's matrix product.
    pub kernel: LinearKernel,
}

/// Uniform block of linear.wgsl (`Dims`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct LinearDims {
    rows: u32,
    row_base: u32,
    k4: u32,
    n4: u32,
    n_out: u32,
    wt_n4: u32,
    /// linear.wgsl's weight texture: texels per row and rows per panel ([`pack::PanelLayout`]).
    tex_w: u32,
    panel_rows: u32,
}

/// Uniform block of elementwise.wgsl and softmax.wgsl (`Dims`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct RowDims {
    pub(crate) rows: u32,
    pub(crate) n4: u32,
    pub(crate) n_out: u32,
    pub(crate) groups_x: u32,
}

#[derive(Debug)]
struct GpuLayer {
    n_in: usize,
    n_out: usize,
    /// Rows of x per uniform window of linear.wgsl; 0 when the weight lives in a storage buffer
    /// (linear_wide.wgsl, linear_tiled.wgsl).
    window_rows: usize,
    /// vec4s per row of the packed weight.
    wt_n4: u32,
    /// Rows one Linear dispatch covers: the window, or two windows when a window holds fewer than
    /// 16 rows (then `x` and `x_hi` are bound to consecutive windows).
    dispatch_rows: usize,
    weight: Weight,
    bias: wgpu::Buffer,
    elementwise_dims: wgpu::Buffer,
    softmax_dims: wgpu::Buffer,
    /// The passes of this layer, in order.
    passes: Vec<(PipelineKey, wgpu::ComputePipeline)>,
    /// linear.wgsl with fewer rows per invocation, for batches of at most 1 and 4 rows.
    small: Vec<(u32, wgpu::ComputePipeline)>,
    /// For a storage-buffer weight: the Linear pass's candidate kernels (one unless the kernel
    /// is picked per batch, see [`pick_variant`]).
    variants: Vec<(Variant, wgpu::ComputePipeline)>,
}

/// Where a layer's packed weight lives: a texture in panels ([`pack::PanelLayout`]) for
/// linear.wgsl (texel fetches are gathered in SIMD by software adapters, where storage-buffer
/// loads go lane by lane), or a storage buffer for linear_wide.wgsl.
#[derive(Debug)]
enum Weight {
    Texture(wgpu::TextureView, pack::PanelLayout),
    Buffer(wgpu::Buffer),
}

/// Device buffers reused across calls; they grow to the largest batch seen (up to the chunk size)
/// and are never reallocated for a batch that fits.
#[derive(Debug)]
struct Workspace {
    capacity_rows: usize,
    input: wgpu::Buffer,
    acts: [wgpu::Buffer; 2],
    staging: wgpu::Buffer,
    /// Per layer: the Linear pass's uniform blocks, one per window of rows (`dims_stride` apart).
    linear_dims: Vec<wgpu::Buffer>,
    /// Per layer, per pass: the bind group (built with the buffers, reused by every call).
    bind_groups: Vec<Vec<wgpu::BindGroup>>,
    /// Rows the uniform blocks currently describe.
    dims_rows: Option<usize>,
    /// Rows of the input uploaded by [`GpuMlp::prepare`].
    prepared_rows: Option<usize>,
    /// Buffers created so far for the workspace (a test hook: it must stop growing once warm).
    allocations: u64,
}

/// An [`Mlp`] uploaded to a GPU. Weights are uploaded once; each [`forward`](GpuMlp::forward) is
/// one command encoder, one submit and one readback (per chunk; see below).
///
/// Batches of any size work: when a batch's activations would exceed the device's largest storage
/// binding, or its grid the 65,535-workgroup limit, it runs in chunks of rows, each its own
/// submit, with the same result.
///
/// `GpuMlp` is `Send + Sync`: calls from several threads are serialised on the internal workspace
/// and each gets exactly the result it would get alone.
#[derive(Debug)]
pub struct GpuMlp {
    ctx: GpuContext,
    layers: Vec<GpuLayer>,
    mode: KernelMode,
    /// Largest number of rows one submit handles.
    chunk_rows: usize,
    /// Distance between per-window uniform blocks (the device's uniform offset alignment).
    dims_stride: u64,
    workspace: Mutex<Option<Workspace>>,
}

const MAX_INDEX_BYTES: u64 = 1 << 31; // keeps every f32 index in the shaders below 2^31

impl GpuMlp {
    /// Uploads `model` to the device, with the fused kernels.
    pub fn new(ctx: &GpuContext, model: &Mlp) -> Result<Self> {
        Self::with_mode(ctx, model, KernelMode::Fused)
    }

    /// Uploads `model` to the device, running it with the given kernels.
    pub fn with_mode(ctx: &GpuContext, model: &Mlp, mode: KernelMode) -> Result<Self> {
        Self::with_options(
            ctx,
            model,
            GpuMlpOptions {
                mode,
                ..GpuMlpOptions::default()
            },
        )
    }

    /// Uploads `model` to the device with the given kernels and weight storage.
    pub fn with_options(ctx: &GpuContext, model: &Mlp, options: GpuMlpOptions) -> Result<Self> {
        let mode = options.mode;
        let inner = &ctx.inner;
        inner.check_alive()?;
        let limits = &inner.limits;
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            .min(MAX_INDEX_BYTES);
        // Refuse what can never fit before allocating anything.
        let variants = options.kernel.buffer_variants(ctx.is_software(), limits)?;
        let windowed = |n_in, n_out| match options.kernel {
            LinearKernel::Auto if ctx.is_software() => {
                window_rows(n_in, n_out, limits, inner.subgroups)
            }
            LinearKernel::Windowed => window_rows(n_in, n_out, limits, inner.subgroups),
            _ => 0,
        };
        for (i, l) in model.layers().iter().enumerate() {
            let lin = &l.linear;
            if windowed(lin.in_features(), lin.out_features()) > 0 {
                continue; // its weight lives in a texture, not a storage binding
            }
            let (r, c) = pack::padded_weight_shape(lin, TILED_PAD);
            let bytes = pack::f32_bytes(r).saturating_mul(c as u64);
            if bytes > max_binding {
                return Err(Error::OutOfMemory(format!(
                    "layer {i}'s weight Linear({}, {}) needs {bytes} bytes on the device, over the \
                     largest storage binding of {max_binding} bytes; splitting one weight matrix \
                     across bindings is not supported",
                    lin.in_features(),
                    lin.out_features()
                )));
            }
        }
        let widest = model
            .layers()
            .iter()
            .map(|l| pack::vec4s(l.linear.out_features()))
            .chain([pack::vec4s(model.in_features())])
            .max()
            .unwrap_or(1);
        let row_bytes = pack::f32_bytes(widest * 4);
        // Activation buffers carry the uniform window's slack (see build_workspace).
        let rows_by_binding = max_binding.saturating_sub(WORKSPACE_SLACK) / row_bytes;
        // A chunk must fit the grid of every kernel that may run it. The windowed kernel
        // dispatches once per window: a 64 KiB one is far below the limit, but with subgroups
        // the window is the whole chunk, one grid of 16-row blocks (see window_rows).
        let window_block = inner.subgroups.then_some(LINEAR_BLOCK.0);
        let rows_per_group = variants
            .iter()
            .map(|v| v.group_block().0)
            .chain(window_block)
            .min()
            .unwrap_or(1);
        let rows_by_grid =
            u64::from(limits.max_compute_workgroups_per_dimension) * u64::from(rows_per_group);
        let chunk_rows = rows_by_binding.min(rows_by_grid) as usize;
        if chunk_rows == 0 {
            return Err(Error::OutOfMemory(format!(
                "one row of activations ({row_bytes} bytes) exceeds the largest storage binding \
                 ({max_binding} bytes)"
            )));
        }

        let align = u64::from(limits.min_uniform_buffer_offset_alignment);
        let dims_stride = (std::mem::size_of::<LinearDims>() as u64).next_multiple_of(align);
        let scope = ErrorScope::push(&inner.device);
        let layers = model
            .layers()
            .iter()
            .map(|l| {
                let window = windowed(l.linear.in_features(), l.linear.out_features());
                upload_layer(inner, &l.linear, l.activation, options, window, &variants)
            })
            .collect();
        scope.pop()?;
        Ok(GpuMlp {
            ctx: ctx.clone(),
            layers,
            mode,
            chunk_rows,
            dims_stride,
            workspace: Mutex::new(None),
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.layers[0].n_in
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.layers[self.layers.len() - 1].n_out
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
        self.layers
            .iter()
            .map(|l| {
                if l.variants.is_empty() {
                    return LinearKernel::Windowed;
                }
                match pick_variant(&l.variants, rows, l.n_out).0 {
                    Variant::Window { .. } => LinearKernel::Windowed,
                    Variant::Blocked => LinearKernel::Blocked,
                    Variant::Gemv => LinearKernel::Gemv,
                    Variant::Tiled(side) if side == TILED_SIDES[0] => LinearKernel::Tiled64,
                    Variant::Tiled(_) => LinearKernel::Tiled128,
                }
            })
            .collect()
    }

    /// The context this model lives on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// How many device buffers the reusable workspace has allocated so far. Once the largest batch
    /// has been seen this stays constant: later calls allocate nothing.
    pub fn workspace_allocations(&self) -> u64 {
        self.lock().as_ref().map_or(0, |w| w.allocations)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Workspace>> {
        // A panic while holding the lock cannot leave the buffers inconsistent (they are rebuilt
        // from scratch on growth), so a poisoned lock is still usable.
        self.workspace.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_batch(&self, input: &Matrix) -> Result<()> {
        if input.cols() != self.in_features() {
            return Err(Error::shape(format!(
                "input is [{}, {}] but the model expects [batch, {}]",
                input.rows(),
                input.cols(),
                self.in_features()
            )));
        }
        Ok(())
    }

    /// Runs the forward pass on `input` (`[batch, in]`) and returns `[batch, out]`.
    /// An empty batch returns an empty matrix without touching the GPU.
    pub fn forward(&self, input: &Matrix) -> Result<Matrix> {
        self.check_batch(input)?;
        let inner = &self.ctx.inner;
        inner.check_alive()?;
        let (rows, n_out) = (input.rows(), self.out_features());
        let mut out = Vec::with_capacity(rows * n_out);
        let mut guard = self.lock();
        let scope = ErrorScope::push(&inner.device);
        let mut run = || -> Result<()> {
            let mut start = 0;
            while start < rows {
                let end = (start + self.chunk_rows).min(rows);
                let n = end - start;
                let chunk = &input.as_slice()[start * input.cols()..end * input.cols()];
                let ws = self.workspace_for(&mut guard, n);
                self.upload(ws, chunk, n);
                let mut encoder = inner.device.create_command_encoder(&Default::default());
                self.encode(ws, &mut encoder, n);
                let bytes = self.output_bytes(n);
                encoder.copy_buffer_to_buffer(self.output_buffer(ws), 0, &ws.staging, 0, bytes);
                let index = inner.queue.submit([encoder.finish()]);
                // Straight from the mapped staging buffer into the result: one copy.
                inner.read_mapped(&ws.staging, bytes, index, |b| {
                    pack::unpad_rows_into(bytemuck::cast_slice(b), n, n_out, &mut out)
                })?;
                start = end;
            }
            Ok(())
        };
        let result = run();
        // Pop the scope on every path; its error (validation, out of memory) explains a failed
        // wait better than the wait's own error, so it goes first.
        scope.pop()?;
        result?;
        Matrix::new(rows, n_out, out)
    }

    /// Uploads `input` into the device workspace for [`run_prepared`](Self::run_prepared), so
    /// the forward pass can be timed without transfers ("resident"). The batch must fit one chunk.
    pub fn prepare(&self, input: &Matrix) -> Result<()> {
        self.check_batch(input)?;
        let rows = input.rows();
        if rows == 0 || rows > self.chunk_rows {
            return Err(Error::invalid(format!(
                "prepare takes 1 to {} rows, got {rows}",
                self.chunk_rows
            )));
        }
        let inner = &self.ctx.inner;
        let mut guard = self.lock();
        let scope = ErrorScope::push(&inner.device);
        let ws = self.workspace_for(&mut guard, rows);
        self.upload(ws, input.as_slice(), rows);
        ws.prepared_rows = Some(rows);
        let index = inner.queue.submit([]);
        let waited = inner.wait(index);
        scope.pop()?;
        waited
    }

    /// Runs the forward pass on the prepared input, leaving the output on the device, and waits
    /// until the queue has drained.
    pub fn run_prepared(&self) -> Result<()> {
        let inner = &self.ctx.inner;
        let mut guard = self.lock();
        let ws = prepared(&mut guard)?;
        let rows = ws.prepared_rows.unwrap_or(0);
        let scope = ErrorScope::push(&inner.device);
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        self.encode(ws, &mut encoder, rows);
        let index = inner.queue.submit([encoder.finish()]);
        let waited = inner.wait(index);
        scope.pop()?;
        waited
    }

    /// Reads back the output of the last [`run_prepared`](Self::run_prepared).
    pub fn read_prepared(&self) -> Result<Matrix> {
        let inner = &self.ctx.inner;
        let mut guard = self.lock();
        let ws = prepared(&mut guard)?;
        let rows = ws.prepared_rows.unwrap_or(0);
        let n_out = self.out_features();
        let scope = ErrorScope::push(&inner.device);
        let bytes = self.output_bytes(rows);
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(self.output_buffer(ws), 0, &ws.staging, 0, bytes);
        let index = inner.queue.submit([encoder.finish()]);
        let values = inner.read_mapped(&ws.staging, bytes, index, |b| {
            pack::unpad_rows(bytemuck::cast_slice(b), rows, n_out)
        });
        scope.pop()?;
        Matrix::new(rows, n_out, values?)
    }

    fn output_bytes(&self, rows: usize) -> u64 {
        pack::f32_bytes(rows * pack::vec4s(self.out_features()) * 4)
    }

    fn output_buffer<'w>(&self, ws: &'w Workspace) -> &'w wgpu::Buffer {
        &ws.acts[(self.layers.len() - 1) % 2]
    }

    /// The workspace, (re)built when `rows` exceeds its capacity; uniforms updated for `rows`.
    fn workspace_for<'g>(
        &self,
        guard: &'g mut Option<Workspace>,
        rows: usize,
    ) -> &'g mut Workspace {
        let needs_growth = guard.as_ref().is_none_or(|w| w.capacity_rows < rows);
        if needs_growth {
            let allocations = guard.as_ref().map_or(0, |w| w.allocations);
            *guard = Some(self.build_workspace(rows, allocations));
        }
        let ws = guard.as_mut().expect("workspace was just built");
        if ws.dims_rows != Some(rows) {
            self.write_dims(&ws.linear_dims, rows);
            ws.dims_rows = Some(rows);
        }
        ws
    }

    fn build_workspace(&self, rows: usize, allocations: u64) -> Workspace {
        let device = &self.ctx.inner.device;
        let widest = self
            .layers
            .iter()
            .map(|l| pack::vec4s(l.n_out))
            .max()
            .unwrap_or(1);
        // Activations are also read through linear.wgsl's 64 KiB uniform window, which may start
        // at any row: the slack keeps the last window inside the buffer.
        let buffer = |label: &str, vec4s: usize, usage: wgpu::BufferUsages, slack: u64| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: pack::f32_bytes(rows * vec4s * 4).max(16) + slack,
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM;
        let slack = WORKSPACE_SLACK;
        let input = buffer(
            "input",
            pack::vec4s(self.in_features()),
            storage | wgpu::BufferUsages::COPY_DST,
            slack,
        );
        let acts = [
            buffer(
                "act0",
                widest,
                storage | wgpu::BufferUsages::COPY_SRC,
                slack,
            ),
            buffer(
                "act1",
                widest,
                storage | wgpu::BufferUsages::COPY_SRC,
                slack,
            ),
        ];
        let staging = buffer(
            "staging",
            pack::vec4s(self.out_features()),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            0,
        );
        let linear_dims: Vec<wgpu::Buffer> = self
            .layers
            .iter()
            .map(|l| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("linear dims"),
                    size: windows(rows, l.dispatch_rows) as u64 * self.dims_stride,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let kernels = &self.ctx.inner.kernels;
        let bind_groups = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let src = if i == 0 { &input } else { &acts[(i - 1) % 2] };
                let dst = &acts[i % 2];
                layer
                    .passes
                    .iter()
                    .map(|(key, _)| {
                        let (bgl, entries) = match key {
                            PipelineKey::Linear { variant, .. } => {
                                let dims = sized(&linear_dims[i], 0, LINEAR_DIMS_BYTES);
                                let wide = variant.buffer_weight();
                                // linear.wgsl reads x through 64 KiB uniform windows, or with
                                // subgroups the whole buffer; the storage kernels the whole buffer.
                                let x = || {
                                    if wide || self.ctx.inner.subgroups {
                                        whole(src)
                                    } else {
                                        sized(src, 0, LINEAR_WINDOW_BYTES)
                                    }
                                };
                                let bgl = if wide {
                                    &kernels.linear_wide_layout
                                } else {
                                    let f16 = matches!(variant, Variant::Window { f16: true, .. });
                                    kernels.linear_layout(f16)
                                };
                                let w = match &layer.weight {
                                    Weight::Texture(view, _) => {
                                        wgpu::BindingResource::TextureView(view)
                                    }
                                    Weight::Buffer(buffer) => whole(buffer),
                                };
                                let mut e = vec![dims, x(), w, whole(&layer.bias), whole(dst)];
                                if !wide {
                                    e.push(x()); // x_hi (never read with subgroups: no pairing)
                                }
                                (bgl, e)
                            }
                            PipelineKey::BiasAdd | PipelineKey::Activation { .. } => (
                                &kernels.elementwise_layout,
                                vec![
                                    whole(&layer.elementwise_dims),
                                    whole(&layer.bias),
                                    whole(dst),
                                ],
                            ),
                            PipelineKey::Softmax => (
                                &kernels.softmax_layout,
                                vec![whole(&layer.softmax_dims), whole(dst)],
                            ),
                        };
                        bind_group_of(device, bgl, entries)
                    })
                    .collect()
            })
            .collect();
        Workspace {
            capacity_rows: rows,
            input,
            acts,
            staging,
            linear_dims,
            bind_groups,
            dims_rows: None,
            prepared_rows: None,
            allocations: allocations + 4 + self.layers.len() as u64,
        }
    }

    /// Writes every layer's uniform blocks for a chunk of `rows`.
    fn write_dims(&self, linear_dims: &[wgpu::Buffer], rows: usize) {
        let inner = &self.ctx.inner;
        let max_groups = inner.limits.max_compute_workgroups_per_dimension;
        let stride = self.dims_stride as usize;
        for (l, dims_buffer) in self.layers.iter().zip(linear_dims) {
            let n4 = pack::vec4s(l.n_out) as u32;
            let n = windows(rows, l.dispatch_rows);
            let per_window = if l.dispatch_rows == 0 {
                rows
            } else {
                l.dispatch_rows
            };
            let panel = match &l.weight {
                Weight::Texture(_, layout) => Some(*layout),
                Weight::Buffer(_) => None,
            };
            let mut blocks = vec![0u8; n * stride];
            for (w, block) in blocks.chunks_exact_mut(stride).enumerate() {
                let base = w * per_window;
                let dims = LinearDims {
                    rows: (rows - base).min(per_window) as u32,
                    row_base: base as u32,
                    k4: pack::vec4s(l.n_in) as u32,
                    n4,
                    n_out: l.n_out as u32,
                    wt_n4: l.wt_n4,
                    tex_w: panel.map_or(0, |p| p.width() as u32),
                    panel_rows: panel.map_or(0, |p| p.panel_rows as u32),
                };
                block[..LINEAR_DIMS_BYTES as usize].copy_from_slice(bytemuck::bytes_of(&dims));
            }
            inner.queue.write_buffer(dims_buffer, 0, &blocks);
            let ew_groups = (rows as u64 * u64::from(n4)).div_ceil(u64::from(ELEMENTWISE_WG));
            let row_dims = |groups: u64| RowDims {
                rows: rows as u32,
                n4,
                n_out: l.n_out as u32,
                groups_x: fold(groups, max_groups).0,
            };
            inner.queue.write_buffer(
                &l.elementwise_dims,
                0,
                bytemuck::bytes_of(&row_dims(ew_groups)),
            );
            inner.queue.write_buffer(
                &l.softmax_dims,
                0,
                bytemuck::bytes_of(&row_dims(rows as u64)),
            );
        }
    }

    fn upload(&self, ws: &Workspace, chunk: &[f32], rows: usize) {
        let padded = pack::pad_rows(chunk, rows, self.in_features());
        self.ctx
            .inner
            .queue
            .write_buffer(&ws.input, 0, bytemuck::cast_slice(&padded));
    }

    /// Records every layer's passes for a chunk of `rows` into one compute pass.
    fn encode(&self, ws: &Workspace, encoder: &mut wgpu::CommandEncoder, rows: usize) {
        let max_groups = self.ctx.inner.limits.max_compute_workgroups_per_dimension;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("mlp forward"),
            timestamp_writes: None,
        });
        for (layer, groups) in self.layers.iter().zip(&ws.bind_groups) {
            let n4 = pack::vec4s(layer.n_out) as u64;
            for ((key, pipeline), bg) in layer.passes.iter().zip(groups) {
                if let PipelineKey::Linear {
                    variant: Variant::Window { wg, .. },
                    ..
                } = key
                {
                    // One dispatch per uniform window of rows, each with the smallest row block
                    // that covers the window's rows (so no invocation computes clamped copies).
                    let r = layer.dispatch_rows;
                    let x_row_bytes = pack::f32_bytes(pack::vec4s(layer.n_in) * 4);
                    // x_hi: the second window when windows are paired, else the same as x.
                    let hi_rows = if r > layer.window_rows {
                        layer.window_rows
                    } else {
                        0
                    };
                    let cols = n4.div_ceil(u64::from(LINEAR_BLOCK.1 / 4));
                    for w in 0..windows(rows, r) {
                        let valid = (rows - w * r).min(r);
                        let (block, pipeline) = layer
                            .small
                            .iter()
                            .find(|(n, _)| valid <= *n as usize)
                            .map_or((LINEAR_BLOCK.0, pipeline), |(n, p)| (*n, p));
                        let x_offset = w as u64 * r as u64 * x_row_bytes;
                        let offsets = [
                            (w as u64 * self.dims_stride) as u32,
                            x_offset as u32,
                            (x_offset + hi_rows as u64 * x_row_bytes) as u32,
                        ];
                        pass.set_pipeline(pipeline);
                        pass.set_bind_group(0, bg, &offsets);
                        pass.dispatch_workgroups(
                            cols.div_ceil(u64::from(*wg)) as u32,
                            (valid as u64).div_ceil(u64::from(block)) as u32,
                            1,
                        );
                    }
                    continue;
                }
                let mut pipeline = pipeline;
                let (x, y) = match key {
                    PipelineKey::Linear { .. } => {
                        let (variant, p) = pick_variant(&layer.variants, rows, layer.n_out);
                        pipeline = p;
                        variant.grid(rows as u64, n4)
                    }
                    PipelineKey::BiasAdd | PipelineKey::Activation { .. } => fold(
                        (rows as u64 * n4).div_ceil(u64::from(ELEMENTWISE_WG)),
                        max_groups,
                    ),
                    PipelineKey::Softmax => fold(rows as u64, max_groups),
                };
                let offsets: &[u32] = if matches!(key, PipelineKey::Linear { .. }) {
                    &[0]
                } else {
                    &[]
                };
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, bg, offsets);
                pass.dispatch_workgroups(x, y, 1);
            }
        }
    }
}

fn prepared(guard: &mut Option<Workspace>) -> Result<&mut Workspace> {
    guard
        .as_mut()
        .filter(|w| w.prepared_rows.is_some())
        .ok_or_else(|| Error::invalid("call prepare() with an input first"))
}

/// Folds `groups` workgroups into a 2-D grid no wider than `max` per dimension; the shaders rebuild
/// the linear index as `y · groups_x + x`.
pub(crate) fn fold(groups: u64, max: u32) -> (u32, u32) {
    let groups = groups.max(1);
    let x = groups.min(u64::from(max));
    (x as u32, groups.div_ceil(x) as u32)
}

/// Extra bytes after each activation buffer: linear.wgsl's uniform windows (x, and x_hi one
/// window further) may start at any row and must stay inside the buffer.
const WORKSPACE_SLACK: u64 = 2 * LINEAR_WINDOW_BYTES;

/// Bytes of one [`LinearDims`] block.
const LINEAR_DIMS_BYTES: u64 = std::mem::size_of::<LinearDims>() as u64;

/// Rows of x one uniform window of linear.wgsl holds for an input of `n_in` features: as many
/// whole rows as fit in 64 KiB, rounded so every window starts at an offset the device accepts.
/// 0 means linear.wgsl cannot run the layer (input too wide, weight texture over the device's
/// texture size, or uniform bindings too small): use linear_wide.wgsl.
///
/// With subgroups x is the whole activation buffer, one window of [`whole_window_rows`] (each
/// lane loads its own rows, so nothing needs the uniform window; each window was a dispatch,
/// ~0.045 ms apiece on lavapipe). The same layers are admitted either way.
fn window_rows(n_in: usize, n_out: usize, limits: &wgpu::Limits, subgroups: bool) -> usize {
    match uniform_window_rows(n_in, n_out, limits) {
        0 => 0,
        _ if subgroups => whole_window_rows(limits),
        rows => rows,
    }
}

/// Rows of the single window used with subgroups: as many 16-row blocks as one dispatch's grid
/// holds. The chunk size obeys the same grid limit, so a chunk is one window.
fn whole_window_rows(limits: &wgpu::Limits) -> usize {
    limits.max_compute_workgroups_per_dimension as usize * LINEAR_BLOCK.0 as usize
}

/// [`window_rows`] for a 64 KiB uniform window.
fn uniform_window_rows(n_in: usize, n_out: usize, limits: &wgpu::Limits) -> usize {
    let tex = limits.max_texture_dimension_2d as usize;
    if limits.max_uniform_buffer_binding_size < LINEAR_WINDOW_BYTES
        || pack::PanelLayout::new(n_in, n_out, tex).is_none()
    {
        return 0;
    }
    let row_bytes = pack::f32_bytes(pack::vec4s(n_in) * 4);
    let align = u64::from(limits.min_uniform_buffer_offset_alignment).max(1);
    let fit = LINEAR_WINDOW_BYTES / row_bytes;
    // Offsets are multiples of row_bytes; they must also be multiples of align (a power of two
    // of at most 256, so `step` divides 16). Windows of whole 16-row blocks waste no invocation.
    let step = align / gcd(row_bytes, align);
    if fit >= u64::from(LINEAR_BLOCK.0) {
        let unit = u64::from(LINEAR_BLOCK.0).max(step);
        return ((fit / unit) * unit) as usize;
    }
    // Fewer than 16 rows fit: windows of 8, 4 or 2 rows, paired two to a dispatch.
    [8u64, 4, 2]
        .into_iter()
        .find(|&r| r <= fit && r % step == 0)
        .unwrap_or(0) as usize
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Dispatches (and uniform blocks) a Linear pass needs for `rows`: one per window of `window`
/// rows, or one for the wide kernel (`window` 0).
fn windows(rows: usize, window: usize) -> usize {
    if window == 0 {
        1
    } else {
        rows.div_ceil(window).max(1)
    }
}

/// The weight of `linear` as a texture in panels ([`pack::PanelLayout`]): rgba32float, or
/// rgba16float for [`WeightFormat::F16`] (texel fetches convert to f32, so the shader is the same).
/// The caller checked that the layout fits (`window_rows`).
fn weight_texture(
    inner: &ContextInner,
    linear: &crate::layer::Linear,
    format: WeightFormat,
) -> (wgpu::TextureView, pack::PanelLayout) {
    let max_dim = inner.limits.max_texture_dimension_2d as usize;
    let layout = pack::PanelLayout::new(linear.in_features(), linear.out_features(), max_dim)
        .expect("window_rows admits only layers whose panels fit");
    let packed = pack::weight_panels(linear, &layout);
    let size = wgpu::Extent3d {
        width: layout.width() as u32,
        height: layout.height() as u32,
        depth_or_array_layers: 1,
    };
    let (texture_format, bytes): (_, Vec<u8>) = match format {
        WeightFormat::F32 => (
            wgpu::TextureFormat::Rgba32Float,
            bytemuck::cast_slice(&packed).to_vec(),
        ),
        WeightFormat::F16 => {
            let halves: Vec<half::f16> = packed.iter().map(|&w| half::f16::from_f32(w)).collect();
            (
                wgpu::TextureFormat::Rgba16Float,
                bytemuck::cast_slice(&halves).to_vec(),
            )
        }
    };
    let texel_bytes = texture_format.block_copy_size(None).unwrap_or(16);
    let tex = inner.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("weight texture"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: texture_format,
        usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    inner.queue.write_texture(
        tex.as_image_copy(),
        &bytes,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(size.width * texel_bytes),
            rows_per_image: Some(size.height),
        },
        size,
    );
    (tex.create_view(&Default::default()), layout)
}

/// A buffer holding `data`. Written through the queue rather than mapped at creation: mapping
/// panics inside wgpu when the device was lost but the loss is not reported yet.
pub(crate) fn upload_buffer(
    inner: &ContextInner,
    label: &str,
    data: &[u8],
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    let buffer = inner.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (data.len() as u64)
            .next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
            .max(16),
        usage: usage | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    inner.queue.write_buffer(&buffer, 0, data);
    buffer
}

/// A binding of a whole buffer.
fn whole(buffer: &wgpu::Buffer) -> wgpu::BindingResource<'_> {
    buffer.as_entire_binding()
}

/// A binding of `size` bytes of `buffer` from `offset`.
fn sized(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset,
        size: std::num::NonZeroU64::new(size),
    })
}

/// A bind group of whole buffers, bound in order.
pub(crate) fn bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    bind_group_of(
        device,
        layout,
        buffers.iter().map(|b| b.as_entire_binding()).collect(),
    )
}

/// A bind group of the given resources, bound in order.
fn bind_group_of(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    resources: Vec<wgpu::BindingResource<'_>>,
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = resources
        .into_iter()
        .enumerate()
        .map(|(i, resource)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource,
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &entries,
    })
}

fn upload_layer(
    inner: &ContextInner,
    linear: &crate::layer::Linear,
    activation: Activation,
    options: GpuMlpOptions,
    window_rows: usize,
    buffer_variants: &[Variant],
) -> GpuLayer {
    let mode = options.mode;
    let device = &inner.device;
    let init = |label: &str, data: &[f32], usage| {
        upload_buffer(inner, label, bytemuck::cast_slice(data), usage)
    };
    let uniform = |label: &str, size: u64| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    let has_bias = linear.bias().is_some();
    let (act, alpha) = act_code(activation);
    let alpha = alpha.to_bits();
    let wide = window_rows == 0;
    // A window of fewer than 16 rows is paired with the next one in each dispatch.
    let paired = !wide && window_rows < LINEAR_BLOCK.0 as usize;
    let dispatch_rows = if paired { 2 * window_rows } else { window_rows };
    let half = if paired { window_rows as u32 } else { NO_PAIR };
    let wg = linear_wg(pack::vec4s(linear.out_features()));
    // Softmax folds into the Linear kernel's store step when a row's outputs fit one subgroup
    // (a workgroup of 8 invocations, at most 32 outputs): one dispatch less, which at batch 1
    // on lavapipe was 0.1 of mnist's 0.47 ms.
    let softmax = !wide
        && mode == KernelMode::Fused
        && activation.is_rowwise()
        && inner.subgroups
        && wg == LINEAR_SUBGROUP_WG;
    let window = |rows| Variant::Window {
        rows,
        half,
        wg,
        f16: options.weights == WeightFormat::F16,
        softmax,
    };
    let variant = if wide {
        buffer_variants[0]
    } else {
        window(LINEAR_BLOCK.0)
    };
    let mut keys = Vec::new();
    match mode {
        KernelMode::Fused => keys.push(PipelineKey::Linear {
            act,
            alpha,
            bias: has_bias,
            variant,
        }),
        KernelMode::Separate => {
            keys.push(PipelineKey::Linear {
                act: 0,
                alpha: 0,
                bias: false,
                variant,
            });
            if has_bias {
                keys.push(PipelineKey::BiasAdd);
            }
            if act != 0 {
                keys.push(PipelineKey::Activation { act, alpha });
            }
        }
    }
    if activation.is_rowwise() && !softmax {
        keys.push(PipelineKey::Softmax);
    }
    let with_variant = |variant| match keys[0] {
        PipelineKey::Linear {
            act, alpha, bias, ..
        } => PipelineKey::Linear {
            act,
            alpha,
            bias,
            variant,
        },
        other => other,
    };
    let small = if wide {
        Vec::new()
    } else {
        LINEAR_SMALL_ROWS
            .iter()
            .map(|&rows| {
                (
                    rows,
                    inner.kernels.pipeline(device, with_variant(window(rows))),
                )
            })
            .collect()
    };
    let variants = if wide {
        buffer_variants
            .iter()
            .map(|&v| (v, inner.kernels.pipeline(device, with_variant(v))))
            .collect()
    } else {
        Vec::new()
    };
    let (weight, wt_cols) = if wide {
        let (_, cols) = pack::padded_weight_shape(linear, TILED_PAD);
        let packed = pack::weight_transposed_padded(linear, TILED_PAD.0, TILED_PAD.1);
        let buffer = init("weight", &packed, wgpu::BufferUsages::STORAGE);
        (Weight::Buffer(buffer), cols)
    } else {
        let (view, layout) = weight_texture(inner, linear, options.weights);
        (
            Weight::Texture(view, layout),
            pack::weight_cols(linear.out_features()),
        )
    };
    let passes = keys
        .into_iter()
        .map(|k| (k, inner.kernels.pipeline(device, k)))
        .collect();
    GpuLayer {
        n_in: linear.in_features(),
        n_out: linear.out_features(),
        window_rows,
        wt_n4: (wt_cols / 4) as u32,
        dispatch_rows,
        weight,
        bias: init(
            "bias",
            &pack::bias_padded(linear),
            wgpu::BufferUsages::STORAGE,
        ),
        elementwise_dims: uniform("elementwise dims", std::mem::size_of::<RowDims>() as u64),
        softmax_dims: uniform("softmax dims", std::mem::size_of::<RowDims>() as u64),
        passes,
        small,
        variants,
    }
}
