//! Every entry point that runs a [`GpuMlp`]: blocking ([`forward`](GpuMlp::forward),
//! [`forward_slice`], [`forward_into`]), awaitable ([`forward_async`]), inside the application's
//! own command encoder on its own buffers ([`encode`]), and resident for timing
//! ([`prepare`](GpuMlp::prepare), [`run_prepared`](GpuMlp::run_prepared),
//! [`read_prepared`](GpuMlp::read_prepared)). All share one path per chunk of rows: upload,
//! replay the dispatches, copy the output to the readback buffer, submit; then a blocking or an
//! awaited read.
//!
//! [`forward_slice`]: GpuMlp::forward_slice
//! [`forward_into`]: GpuMlp::forward_into
//! [`forward_async`]: GpuMlp::forward_async
//! [`encode`]: GpuMlp::encode

use crate::error::{Error, Result};
use crate::gpu::device_lock::Held;
use crate::gpu::error_scope::ErrorScope;
use crate::gpu::model::GpuMlp;
use crate::gpu::pack;
use crate::gpu::plan::MAX_INDEX_BYTES;
use crate::gpu::workspace::{Ends, Workspace};
use crate::matrix::Matrix;
#[cfg(not(target_arch = "wasm32"))]
use crate::matrix::check_output_slice;

/// Where read-back rows go.
#[cfg(not(target_arch = "wasm32"))]
enum Sink<'a> {
    /// Appended.
    Vec(&'a mut Vec<f32>),
    /// Written in order into a slice of exactly the output's length.
    Slice(&'a mut [f32], usize),
}

#[cfg(not(target_arch = "wasm32"))]
impl Sink<'_> {
    fn put(&mut self, padded: &[f32], rows: usize, cols: usize) {
        match self {
            Sink::Vec(v) => pack::unpad_rows_into(padded, rows, cols, v),
            Sink::Slice(s, at) => {
                pack::unpad_rows_to_slice(padded, rows, cols, &mut s[*at..*at + rows * cols]);
                *at += rows * cols;
            }
        }
    }
}

impl GpuMlp {
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn check_width(&self, len: usize, batch: usize) -> Result<()> {
        crate::matrix::check_input_slice(len, batch, self.in_features())
    }

    /// Uploads `input` into the device workspace for [`run_prepared`](Self::run_prepared), so
    /// the forward pass can be timed without transfers ("resident"). The batch must fit one chunk.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn prepare(&self, input: &Matrix) -> Result<()> {
        self.check_width(input.as_slice().len(), input.rows())
            .map_err(|_| shape_error(input, self.in_features()))?;
        let rows = input.rows();
        if rows == 0 || rows > self.chunk_rows() {
            return Err(Error::invalid(format!(
                "prepare takes 1 to {} rows, got {rows}",
                self.chunk_rows()
            )));
        }
        let inner = &self.program.ctx.inner;
        // A lost device is named as such (wgpu would report the upload as a validation error).
        inner.check_alive()?;
        let mut guard = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let _held = inner.hold();
        let mut ws = match guard.take() {
            Some(ws) if ws.capacity_rows >= rows => ws,
            _ => self.new_workspace(rows),
        };
        let scope = ErrorScope::push(&inner.device);
        self.upload_rows(&ws, input.as_slice(), rows);
        ws.replay(&self.program, rows, Ends::Own);
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
        let inner = &self.program.ctx.inner;
        inner.check_alive()?;
        let mut guard = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let ws = prepared(&mut guard)?;
        let rows = ws.prepared_rows.unwrap_or(1);
        let _held = inner.hold();
        let scope = ErrorScope::push(&inner.device);
        let replay = ws.replay(&self.program, rows, Ends::Own);
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        ws.record(&self.program, &replay, &mut encoder, None);
        let index = inner.queue.submit([encoder.finish()]);
        let waited = inner.wait(index);
        scope.pop()?;
        waited
    }

    /// Reads back the output of the last [`run_prepared`](Self::run_prepared).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_prepared(&self) -> Result<Matrix> {
        let inner = &self.program.ctx.inner;
        inner.check_alive()?;
        let mut guard = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let ws = prepared(&mut guard)?;
        let rows = ws.prepared_rows.unwrap_or(1);
        let _held = inner.hold();
        let scope = ErrorScope::push(&inner.device);
        let bytes = self.program.output_bytes(rows);
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(ws.output(&self.program), 0, &ws.staging, 0, bytes);
        let index = inner.queue.submit([encoder.finish()]);
        let mut out = Vec::with_capacity(rows * self.out_features());
        let read = inner.read_blocking(&ws.staging, bytes, index, |b| {
            pack::unpad_rows_into(bytemuck::cast_slice(b), rows, self.out_features(), &mut out)
        });
        scope.pop()?;
        read?;
        Matrix::new(rows, self.out_features(), out)
    }

    /// Writes `rows` rows of `data` into the workspace input, padded, straight into the queue's
    /// staging memory (no copy of the input on the host).
    fn upload_rows(&self, ws: &Workspace, data: &[f32], rows: usize) {
        let queue = &self.program.ctx.inner.queue;
        let stride = pack::vec4s(self.in_features()) * 4;
        let bytes = pack::f32_bytes(rows * stride);
        let Some(size) = wgpu::BufferSize::new(bytes) else {
            return;
        };
        match queue.write_buffer_with(ws.input(&self.program), 0, size) {
            Some(mut view) => {
                // Row by row into the write-only mapping: the values, then zeros to the stride.
                let (row, width) = (stride * 4, self.in_features() * 4);
                if row == width {
                    view.copy_from_slice(bytemuck::cast_slice(&data[..rows * self.in_features()]));
                } else {
                    for (r, src) in data.chunks_exact(self.in_features()).take(rows).enumerate() {
                        view.slice(r * row..r * row + width)
                            .copy_from_slice(bytemuck::cast_slice(src));
                        view.slice(r * row + width..(r + 1) * row).fill(0);
                    }
                }
            }
            // The view is refused only on a validation error, which the caller's scope reports.
            None => queue.write_buffer(
                ws.input(&self.program),
                0,
                bytemuck::cast_slice(&pack::pad_rows(data, rows, self.in_features())),
            ),
        }
    }

    /// Runs the forward pass on `input` (`[batch, in]`) and returns `[batch, out]`.
    /// An empty batch returns an empty matrix without touching the GPU.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward(&self, input: &Matrix) -> Result<Matrix> {
        if input.cols() != self.in_features() {
            return Err(shape_error(input, self.in_features()));
        }
        let y = self.forward_slice(input.as_slice(), input.rows())?;
        Matrix::new(input.rows(), self.out_features(), y)
    }

    /// [`forward`](Self::forward) on a plain slice of `batch` rows (`[batch, in]` row-major),
    /// returning `[batch, out]` row-major. The input is written straight into the device's
    /// staging memory and the output read straight from the mapped readback buffer: no other
    /// copy.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_slice(&self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        // Checked before the output is allocated: a wrong `batch` is an error, not an
        // allocation of `batch · out` values.
        self.check_width(input.len(), batch)?;
        let mut out = Vec::with_capacity(batch.saturating_mul(self.out_features()));
        self.run_blocking(input, batch, Sink::Vec(&mut out), Kernels::Run)?;
        Ok(out)
    }

    /// [`forward_slice`](Self::forward_slice) into a caller's buffer of exactly
    /// `batch · out` values: no allocation.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_into(&self, input: &[f32], batch: usize, out: &mut [f32]) -> Result<()> {
        check_output_slice(out.len(), batch, self.out_features())?;
        self.run_blocking(input, batch, Sink::Slice(out, 0), Kernels::Run)
    }

    /// The end-to-end path with the kernels left out: the upload, the copy to the readback
    /// buffer, the wait and the read, exactly as [`forward_slice`](Self::forward_slice) does
    /// them. The harness times it against the adapter's raw transfer floor: it isolates what
    /// this crate's transfers cost from the kernels' run-to-run noise, which on a software
    /// adapter is larger than the transfers themselves.
    #[cfg(all(feature = "bench", not(target_arch = "wasm32")))]
    pub(crate) fn transfers_alone(&self, input: &[f32], batch: usize) -> Result<()> {
        let mut out = Vec::with_capacity(batch.saturating_mul(self.out_features()));
        self.run_blocking(input, batch, Sink::Vec(&mut out), Kernels::Skip)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn run_blocking(
        &self,
        input: &[f32],
        batch: usize,
        mut sink: Sink<'_>,
        kernels: Kernels,
    ) -> Result<()> {
        self.check_width(input.len(), batch)?;
        let inner = &self.program.ctx.inner;
        inner.check_alive()?;
        if batch == 0 {
            return Ok(());
        }
        let _held = inner.hold();
        let mut ws = self.take_workspace(self.workspace_rows(batch));
        let scope = ErrorScope::push(&inner.device);
        let mut run = || -> Result<()> {
            for (start, rows) in chunks(batch, self.chunk_rows()) {
                let index =
                    self.submit_chunk(&mut ws, &input[start * self.in_features()..], rows, kernels);
                let bytes = self.program.output_bytes(rows);
                inner.read_blocking(&ws.staging, bytes, index, |b| {
                    sink.put(bytemuck::cast_slice(b), rows, self.out_features())
                })?;
            }
            Ok(())
        };
        let result = run();
        // Pop the scope on every path; its error (validation, out of memory) explains a failed
        // wait better than the wait's own error, so it goes first.
        let popped = scope.pop();
        self.give_workspace(ws);
        popped?;
        result
    }

    /// Uploads a chunk, records its dispatches and the copy to the readback buffer, submits.
    fn submit_chunk(
        &self,
        ws: &mut Workspace,
        data: &[f32],
        rows: usize,
        kernels: Kernels,
    ) -> wgpu::SubmissionIndex {
        let inner = &self.program.ctx.inner;
        self.upload_rows(ws, data, rows);
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        if kernels == Kernels::Run {
            let replay = ws.replay(&self.program, rows, Ends::Own);
            ws.record(&self.program, &replay, &mut encoder, None);
        }
        let bytes = self.program.output_bytes(rows);
        encoder.copy_buffer_to_buffer(ws.output(&self.program), 0, &ws.staging, 0, bytes);
        inner.queue.submit([encoder.finish()])
    }

    /// [`forward`](Self::forward) as a future, awaitable from any executor (tokio, pollster, a
    /// browser's) without blocking a thread on the device.
    ///
    /// How the device is polled: in a browser the GPU completes the readback on its own. On
    /// native backends wgpu delivers a readback only while someone polls the device, so the
    /// context starts one background thread on first use that polls while async calls are in
    /// flight and sleeps otherwise (an application that polls the device itself changes
    /// nothing). Each readback has the context's timeout
    /// ([`GpuOptions::timeout`](super::GpuOptions::timeout)) on native backends.
    ///
    /// Concurrent calls on one model each use a workspace of their own. The future is `Send`
    /// on native targets.
    pub async fn forward_async(&self, input: &Matrix) -> Result<Matrix> {
        if input.cols() != self.in_features() {
            return Err(shape_error(input, self.in_features()));
        }
        let inner = &self.program.ctx.inner;
        inner.check_alive()?;
        let batch = input.rows();
        let mut out = Vec::with_capacity(batch * self.out_features());
        if batch > 0 {
            // Back to the pool however the call ends: finished, failed, or dropped mid-flight.
            let mut lent = Lent {
                model: self,
                ws: Some(self.take_workspace(self.workspace_rows(batch))),
            };
            let ws = lent.ws.as_mut().expect("set above");
            self.run_async(ws, input.as_slice(), batch, &mut out)
                .await?;
        }
        Matrix::new(batch, self.out_features(), out)
    }

    async fn run_async(
        &self,
        ws: &mut Held<Workspace>,
        input: &[f32],
        batch: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let inner = &self.program.ctx.inner;
        for (start, rows) in chunks(batch, self.chunk_rows()) {
            // The error scope is thread-local: push, record, submit and pop before any await;
            // the device lock is held for the same span, never across an await.
            let popped = {
                let _held = inner.hold();
                let scope = ErrorScope::push_awaited(&inner.device);
                self.submit_chunk(ws, &input[start * self.in_features()..], rows, Kernels::Run);
                scope.pop_async()
            };
            // In a browser, errors of the model's creation (a shader the browser refuses) reach
            // the uncaptured-error handler, not a scope: they explain a failed submit better.
            #[cfg(target_arch = "wasm32")]
            let popped = async {
                popped
                    .await
                    .map_err(|e| inner.check_alive().err().unwrap_or(e))
            };
            popped.await?;
            let bytes = self.program.output_bytes(rows);
            inner
                .read_async(&ws.staging, bytes, |b| {
                    pack::unpad_rows_into(bytemuck::cast_slice(b), rows, self.out_features(), out)
                })
                .await?;
        }
        Ok(())
    }

    /// Records the forward pass of `batch` rows into the application's `encoder`, reading
    /// `input` and writing `output`, both buffers of the application on this model's device.
    /// Nothing is submitted: the result is in `output` once the application has submitted the
    /// encoder's commands and they have run.
    ///
    /// - `input` holds `[batch, in]` f32 row-major from offset 0, `output` receives
    ///   `[batch, out]` the same way; no padding is asked of either.
    /// - Both need [`wgpu::BufferUsages::STORAGE`]; their sizes must hold the rows, and each
    ///   must fit one storage binding of the device (checked: an [`Error::InvalidArgument`]
    ///   names the problem; any size, not only multiples of 4). They may be the same buffer
    ///   (each row is read before any output row that overlaps it is written).
    /// - An error leaves `encoder` as it was: nothing is recorded unless the whole pass can be.
    /// - The model's own buffers are used in between; calls may be recorded from several
    ///   threads and encoders, and for batches of any size (chunked as
    ///   [`forward`](Self::forward) is).
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
        batch: usize,
    ) -> Result<()> {
        let inner = &self.program.ctx.inner;
        inner.check_alive()?;
        self.check_app_buffer("input", input, batch, self.in_features())?;
        self.check_app_buffer("output", output, batch, self.out_features())?;
        if batch == 0 {
            return Ok(());
        }
        let _held = inner.hold();
        let mut ws = self.take_workspace(self.workspace_rows(batch));
        // The application's buffers are bound first, under their own scope, so that a buffer
        // wgpu refuses (another device's, a destroyed one) is an error before anything is
        // recorded: the application's encoder stays valid.
        let scope = ErrorScope::push(&inner.device);
        ws.app_groups(&self.program, input, output);
        if let Err(e) = scope.pop() {
            ws.forget_app_groups(input, output);
            self.give_workspace(ws);
            return Err(e);
        }
        let mut order: Vec<(usize, usize)> = chunks(batch, self.chunk_rows()).collect();
        // One buffer as input and output, with rows that grow: a chunk's output reaches into
        // the input rows of the chunks after it, so the chunks run last first (each output
        // then lies past the input rows still to be read).
        if input == output && self.out_features() > self.in_features() {
            order.reverse();
        }
        let scope = ErrorScope::push(&inner.device);
        for (start, rows) in order {
            // A replay can fill the uniform arena and start a new one: the copy bind groups are
            // fetched after it, against the arena its offsets point into.
            let replay = ws.replay(&self.program, rows, Ends::App { row0: start });
            let groups = ws.app_groups(&self.program, input, output);
            ws.record(&self.program, &replay, encoder, Some(&groups));
        }
        let popped = scope.pop();
        self.give_workspace(ws);
        popped
    }

    fn check_app_buffer(
        &self,
        what: &str,
        buffer: &wgpu::Buffer,
        batch: usize,
        width: usize,
    ) -> Result<()> {
        let limits = &self.program.ctx.inner.limits;
        if !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::invalid(format!(
                "encode: the {what} buffer needs BufferUsages::STORAGE (it has {:?})",
                buffer.usage()
            )));
        }
        let need = (batch as u64)
            .checked_mul(width as u64)
            .and_then(|n| n.checked_mul(4))
            .unwrap_or(u64::MAX);
        if buffer.size() < need {
            return Err(Error::invalid(format!(
                "encode: the {what} buffer has {} bytes; {batch} rows of {width} f32 need {need}",
                buffer.size()
            )));
        }
        let max = limits.max_storage_buffer_binding_size.min(MAX_INDEX_BYTES);
        if buffer.size() > max {
            return Err(Error::invalid(format!(
                "encode: the {what} buffer has {} bytes, over the largest storage binding of \
                 {max} bytes; split the batch over smaller buffers",
                buffer.size()
            )));
        }
        Ok(())
    }
}

/// Whether a blocking call runs the kernels (always, but for the harness's transfer timing).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kernels {
    Run,
    #[cfg_attr(
        not(all(feature = "bench", not(target_arch = "wasm32"))),
        allow(dead_code)
    )]
    Skip,
}

/// `(first row, rows)` of each chunk of at most `chunk` rows.
fn chunks(batch: usize, chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..batch)
        .step_by(chunk.max(1))
        .map(move |start| (start, (batch - start).min(chunk)))
}

/// `input is [r, c] but the model expects [batch, n]`.
fn shape_error(input: &Matrix, n_in: usize) -> Error {
    Error::shape(format!(
        "input is [{}, {}] but the model expects [batch, {n_in}]",
        input.rows(),
        input.cols()
    ))
}

#[cfg(not(target_arch = "wasm32"))]
fn prepared(guard: &mut Option<Held<Workspace>>) -> Result<&mut Held<Workspace>> {
    guard
        .as_mut()
        .filter(|w| w.prepared_rows.is_some())
        .ok_or_else(|| Error::invalid("call prepare() with an input first"))
}

/// A workspace lent to one [`GpuMlp::forward_async`] call, returned to the model's pool when the
/// call ends or its future is dropped (a readback then in flight was aborted by
/// `read_async`; the work already submitted runs before any later submit that reuses it).
struct Lent<'m> {
    model: &'m GpuMlp,
    ws: Option<Held<Workspace>>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(ws) = self.ws.take() {
            self.model.give_workspace(ws);
        }
    }
}
