//! Running a [`GpuMlp`]: blocking ([`forward`](GpuMlp::forward), [`forward_slice`],
//! [`forward_into`]), awaitable ([`forward_async`]) and inside the application's own command
//! encoder on its own buffers ([`encode`]). All share one path per chunk of rows: upload, replay
//! the dispatches, copy the output to the readback buffer, submit; then a blocking or an awaited
//! read.
//!
//! [`forward_slice`]: GpuMlp::forward_slice
//! [`forward_into`]: GpuMlp::forward_into
//! [`forward_async`]: GpuMlp::forward_async
//! [`encode`]: GpuMlp::encode

use crate::error::{Error, Result};
use crate::gpu::context::ErrorScope;
use crate::gpu::device_lock::Held;
use crate::gpu::model::{GpuMlp, shape_error};
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
    /// Runs the forward pass on `input` (`[batch, in]`) and returns `[batch, out]`.
    /// An empty batch returns an empty matrix without touching the GPU.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward(&self, input: &Matrix) -> Result<Matrix> {
        if input.cols() != self.n_in {
            return Err(shape_error(input, self.n_in));
        }
        let y = self.forward_slice(input.as_slice(), input.rows())?;
        Matrix::new(input.rows(), self.n_out, y)
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
        let mut out = Vec::with_capacity(batch.saturating_mul(self.n_out));
        self.run_blocking(input, batch, Sink::Vec(&mut out), Kernels::Run)?;
        Ok(out)
    }

    /// [`forward_slice`](Self::forward_slice) into a caller's buffer of exactly
    /// `batch · out` values: no allocation.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_into(&self, input: &[f32], batch: usize, out: &mut [f32]) -> Result<()> {
        check_output_slice(out.len(), batch, self.n_out)?;
        self.run_blocking(input, batch, Sink::Slice(out, 0), Kernels::Run)
    }

    /// The end-to-end path with the kernels left out: the upload, the copy to the readback
    /// buffer, the wait and the read, exactly as [`forward_slice`](Self::forward_slice) does
    /// them. The harness times it against the adapter's raw transfer floor: it isolates what
    /// this crate's transfers cost from the kernels' run-to-run noise, which on a software
    /// adapter is larger than the transfers themselves.
    #[cfg(all(feature = "bench", not(target_arch = "wasm32")))]
    pub(crate) fn transfers_alone(&self, input: &[f32], batch: usize) -> Result<()> {
        let mut out = Vec::with_capacity(batch.saturating_mul(self.n_out));
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
        let inner = &self.ctx.inner;
        inner.check_alive()?;
        if batch == 0 {
            return Ok(());
        }
        let _held = inner.hold();
        let mut ws = self.take_workspace(self.workspace_rows(batch));
        let scope = ErrorScope::push(&inner.device);
        let mut run = || -> Result<()> {
            for (start, rows) in chunks(batch, self.chunk_rows()) {
                let index = self.submit_chunk(&mut ws, &input[start * self.n_in..], rows, kernels);
                let bytes = self.output_bytes(rows);
                inner.read_blocking(&ws.staging, bytes, index, |b| {
                    sink.put(bytemuck::cast_slice(b), rows, self.n_out)
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
        let inner = &self.ctx.inner;
        self.upload_rows(ws, data, rows);
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        if kernels == Kernels::Run {
            let replay = ws.replay(self, rows, Ends::Own);
            ws.record(self, &replay, &mut encoder, None);
        }
        let bytes = self.output_bytes(rows);
        encoder.copy_buffer_to_buffer(ws.output(self), 0, &ws.staging, 0, bytes);
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
        if input.cols() != self.n_in {
            return Err(shape_error(input, self.n_in));
        }
        let inner = &self.ctx.inner;
        inner.check_alive()?;
        let batch = input.rows();
        let mut out = Vec::with_capacity(batch * self.n_out);
        if batch > 0 {
            let mut ws = self.take_workspace(self.workspace_rows(batch));
            let result = self
                .run_async(&mut ws, input.as_slice(), batch, &mut out)
                .await;
            self.give_workspace(ws);
            result?;
        }
        Matrix::new(batch, self.n_out, out)
    }

    async fn run_async(
        &self,
        ws: &mut Held<Workspace>,
        input: &[f32],
        batch: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let inner = &self.ctx.inner;
        for (start, rows) in chunks(batch, self.chunk_rows()) {
            // The error scope is thread-local: push, record, submit and pop before any await;
            // the device lock is held for the same span, never across an await.
            let popped = {
                let _held = inner.hold();
                let scope = ErrorScope::push_awaited(&inner.device);
                self.submit_chunk(ws, &input[start * self.n_in..], rows, Kernels::Run);
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
            let bytes = self.output_bytes(rows);
            inner
                .read_async(&ws.staging, bytes, |b| {
                    pack::unpad_rows_into(bytemuck::cast_slice(b), rows, self.n_out, out)
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
        let inner = &self.ctx.inner;
        inner.check_alive()?;
        self.check_app_buffer("input", input, batch, self.n_in)?;
        self.check_app_buffer("output", output, batch, self.n_out)?;
        if batch == 0 {
            return Ok(());
        }
        let _held = inner.hold();
        let mut ws = self.take_workspace(self.workspace_rows(batch));
        // The application's buffers are bound first, under their own scope, so that a buffer
        // wgpu refuses (another device's, a destroyed one) is an error before anything is
        // recorded: the application's encoder stays valid.
        let scope = ErrorScope::push(&inner.device);
        ws.app_groups(self, input, output);
        if let Err(e) = scope.pop() {
            ws.forget_app_groups(input, output);
            self.give_workspace(ws);
            return Err(e);
        }
        let mut order: Vec<(usize, usize)> = chunks(batch, self.chunk_rows()).collect();
        // One buffer as input and output, with rows that grow: a chunk's output reaches into
        // the input rows of the chunks after it, so the chunks run last first (each output
        // then lies past the input rows still to be read).
        if input == output && self.n_out > self.n_in {
            order.reverse();
        }
        let scope = ErrorScope::push(&inner.device);
        for (start, rows) in order {
            // A replay can fill the uniform arena and start a new one: the copy bind groups are
            // fetched after it, against the arena its offsets point into.
            let replay = ws.replay(self, rows, Ends::App { row0: start });
            let groups = ws.app_groups(self, input, output);
            ws.record(self, &replay, encoder, Some(&groups));
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
        let limits = &self.ctx.inner.limits;
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
