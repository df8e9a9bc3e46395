//! [`GpuTraining`]: a training plan on the device. The program (parameters, gradients,
//! optimizer state, the step-state buffer) is uploaded once; a workspace holds the per-row
//! tensors for the largest batch seen. Each step writes the step's scalars (a few bytes through
//! the queue), the batch (from the host, or copied from a [`GpuBatch`] already on the device),
//! records the replay and submits once. The losses stay in the device's ring until read: with
//! the step when it is asked for ([`GpuTraining::step`] with `read`), else all at once
//! ([`GpuTraining::take_losses`]).

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::device_lock::Held;
use crate::gpu::error_scope::ErrorScope;
use crate::gpu::kernels::adam::AdamHyper;
use crate::gpu::kernels::step_state;
use crate::gpu::pack;
use crate::gpu::plan::DeviceCaps;
use crate::gpu::program::{Program, Resource};
use crate::gpu::tensor::{Role, TensorId};
use crate::gpu::train::plan::{self, TrainPlan};
use crate::gpu::workspace::{Ends, Workspace};
use crate::model::{Mlp, Module, TensorKind};
use crate::rng::Generator;
use crate::train::backward::dropout_mask;
use crate::train::{Loss, Optimizer, Reduction};

mod awaited;
mod batch;

pub(crate) use batch::Batch;
pub use batch::GpuBatch;

/// A training plan on the device (see the module docs).
#[derive(Debug)]
pub(crate) struct GpuTraining {
    // Device objects are released under the device lock (GL: see device_lock.rs).
    program: Held<Program>,
    ws: Option<Held<Workspace>>,
    target: TensorId,
    step: TensorId,
    params: Vec<(TensorId, TensorId, usize)>,
    loss: Loss,
    optimizer: Optimizer,
    /// Optimizer steps submitted (PyTorch's `state["step"]`).
    steps: u64,
    /// Steps whose losses are in the ring, not read yet.
    pending: usize,
    /// Losses read from the ring before it filled, not handed out yet.
    drained: Vec<f32>,
    loss_staging: Held<wgpu::Buffer>,
    param_staging: Held<wgpu::Buffer>,
    /// Each BatchNorm1d's module index and `num_batches_tracked` at the start.
    batchnorms: Vec<(usize, i64)>,
    /// Each Dropout's mask tensor, rate and width.
    masks: Vec<(TensorId, f32, usize)>,
}

/// A parameter read back: its module, kind, tensor and length.
type ParamSlot = (usize, TensorKind, TensorId, usize);

/// Copies `src`'s values `[from, from + len)` into `dst` at byte 0, in `encoder`.
fn copy_values(
    encoder: &mut wgpu::CommandEncoder,
    src: &wgpu::Buffer,
    from: usize,
    len: usize,
    dst: &wgpu::Buffer,
    at: u64,
) {
    let bytes = pack::f32_bytes(len);
    encoder.copy_buffer_to_buffer(src, pack::f32_bytes(from), dst, at, bytes);
}

impl GpuTraining {
    /// Plans and uploads training `model` (its current parameters) on `ctx`.
    pub(crate) fn new(
        ctx: &GpuContext,
        model: &Mlp,
        loss: Loss,
        reduction: Reduction,
        optimizer: Optimizer,
    ) -> Result<Self> {
        ctx.inner.check_alive()?;
        let TrainPlan {
            plan,
            target,
            step,
            params,
            masks,
        } = plan::plan(model, loss, reduction, optimizer, &DeviceCaps::of(ctx))?;
        let lock = ctx.inner.lock.clone();
        let _held = ctx.inner.hold();
        let program = Held::new(Program::upload(ctx, plan)?, lock.clone());
        let device = &ctx.inner.device;
        let staging = |label: &str, values: usize| {
            let b = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: pack::f32_bytes(values).next_multiple_of(16).max(16),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            Held::new(b, lock.clone())
        };
        let batchnorms: Vec<(usize, i64)> = model
            .modules()
            .iter()
            .enumerate()
            .filter_map(|(i, m)| match m {
                Module::BatchNorm1d(bn) => Some((i, bn.num_batches_tracked())),
                _ => None,
            })
            .collect();
        // Room for every parameter and running statistic.
        let total: usize = model
            .tensors()
            .iter()
            .filter_map(|t| t.f32().map(<[f32]>::len))
            .sum();
        Ok(GpuTraining {
            loss_staging: staging("losses readback", step_state::RING),
            param_staging: staging("parameters readback", total),
            program,
            ws: None,
            target,
            step,
            params,
            loss,
            optimizer,
            steps: 0,
            pending: 0,
            drained: Vec::new(),
            batchnorms,
            masks,
        })
    }

    fn fixed(&self, id: TensorId) -> wgpu::Buffer {
        match self.program.resource(id) {
            Some(Resource::Buffer(b)) => b.clone(),
            _ => unreachable!("the training plan's fixed tensors are buffers"),
        }
    }

    /// One step on `batch`: forward, loss, backward and (unless `update` is false) the
    /// optimizer's update, in one submit. With `read`, waits for the step and returns its loss
    /// (earlier unread losses are kept for [`take_losses`](Self::take_losses)); a non-finite
    /// one is an error naming its step, and the parameters are as they were before it.
    ///
    /// Dropout's masks are drawn from `dropout` on the host, as the CPU paths draw them (the
    /// same generator gives the same masks), and written with the batch.
    pub(crate) fn step(
        &mut self,
        batch: Batch<'_>,
        update: bool,
        read: bool,
        dropout: &mut Generator,
    ) -> Result<Vec<f32>> {
        if let Batch::Host(x, y) = &batch {
            self.check_batch(x, y)?;
        }
        if self.ring_full() {
            let losses = self.take_losses()?;
            self.drained = losses;
        }
        let (index, verdict) = self.submit(batch, update, read, false, dropout, ErrorScope::pop)?;
        verdict?;
        if read {
            // This step's loss is the last; earlier unread ones wait for take_losses.
            let all = self.read_ring(index, "Trainer::step_async")?;
            Ok(self.split_last(all))
        } else {
            Ok(Vec::new())
        }
    }

    /// Whether the ring of unread losses is full (the next step must read it first).
    pub(crate) fn ring_full(&self) -> bool {
        self.pending == step_state::RING
    }

    /// The step's loss out of a read of the ring (the last); the earlier ones are kept for
    /// [`take_losses`](Self::take_losses).
    fn split_last(&mut self, mut all: Vec<f32>) -> Vec<f32> {
        let last = all.pop();
        self.drained = all;
        last.into_iter().collect()
    }

    /// Writes and submits one step (the part of [`step`](Self::step) that does not wait; the
    /// batch is checked and the ring has room). `awaited`: the caller awaits the error
    /// scopes' verdict (in a browser only those are real scopes); `pop` pops them, under the
    /// device lock, before any await.
    fn submit<V>(
        &mut self,
        batch: Batch<'_>,
        update: bool,
        read: bool,
        awaited: bool,
        dropout: &mut Generator,
        pop: impl FnOnce(ErrorScope) -> V,
    ) -> Result<(wgpu::SubmissionIndex, V)> {
        let rows = batch.rows();
        let ctx = self.program.ctx.clone();
        let inner = &ctx.inner;
        inner.check_alive()?;
        let _held = inner.hold();
        if self.ws.as_ref().is_none_or(|w| w.capacity_rows < rows) {
            let ws = Workspace::new(&self.program, rows);
            self.ws = Some(Held::new(ws, inner.lock.clone()));
        }
        let scope = if awaited {
            ErrorScope::push_awaited(&inner.device)
        } else {
            ErrorScope::push(&inner.device)
        };
        let t = self.steps + 1;
        let mut header = [0.0f32; step_state::HEADER];
        header[step_state::FIRST] = f32::from(u8::from(t == 1));
        if let Optimizer::Adam {
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            decoupled,
        } = self.optimizer
        {
            let hyper = AdamHyper {
                lr,
                betas,
                eps,
                weight_decay,
                amsgrad,
                decoupled,
            };
            let (neg_step, bc2_sqrt) = hyper.step_scalars(t);
            header[step_state::NEG_STEP_SIZE] = neg_step as f32;
            header[step_state::BC2_SQRT] = bc2_sqrt as f32;
        }
        header[step_state::LOSS_SLOT] = self.pending as f32;
        header[step_state::NO_UPDATE] = f32::from(u8::from(!update));
        let step_buf = self.fixed(self.step);
        inner
            .queue
            .write_buffer(&step_buf, 0, bytemuck::cast_slice(&header));
        let ws = self.ws.as_mut().expect("made above");
        let program = &self.program;
        let (x_buf, y_buf) = (ws.input(program), ws.buffer(program, self.target));
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        match batch {
            Batch::Host(x, y) => {
                inner
                    .queue
                    .write_buffer(x_buf, 0, bytemuck::cast_slice(x.as_slice()));
                let values = Self::target_values(y);
                inner
                    .queue
                    .write_buffer(y_buf, 0, bytemuck::cast_slice(&values));
            }
            Batch::Device(b) => {
                encoder.copy_buffer_to_buffer(
                    &b.x,
                    0,
                    x_buf,
                    0,
                    pack::f32_bytes(rows * program.plan.n_in),
                );
                let per_row = if self.loss.wants_classes() {
                    1
                } else {
                    program.plan.n_out
                };
                encoder.copy_buffer_to_buffer(&b.y, 0, y_buf, 0, pack::f32_bytes(rows * per_row));
            }
        }
        for &(mask, p, width) in &self.masks {
            let values = dropout_mask(p, rows * width, dropout);
            inner
                .queue
                .write_buffer(ws.buffer(program, mask), 0, bytemuck::cast_slice(&values));
        }
        let replay = ws.replay(program, rows, Ends::Own);
        ws.record(program, &replay, &mut encoder, None);
        self.pending += 1;
        if update {
            self.steps += 1;
        }
        if read {
            copy_values(
                &mut encoder,
                &step_buf,
                step_state::LOSSES,
                self.pending,
                &self.loss_staging,
                0,
            );
        }
        let index = inner.queue.submit([encoder.finish()]);
        Ok((index, pop(scope)))
    }

    /// Reads the losses of the steps not read so far (waits for them).
    pub(crate) fn take_losses(&mut self) -> Result<Vec<f32>> {
        if self.pending == 0 {
            return Ok(std::mem::take(&mut self.drained));
        }
        let index = self.submit_ring_copy()?;
        self.read_ring(index, "Trainer::take_losses_async")
    }

    /// Copies the ring's pending losses to the readback buffer.
    fn submit_ring_copy(&self) -> Result<wgpu::SubmissionIndex> {
        let ctx = self.program.ctx.clone();
        let inner = &ctx.inner;
        inner.check_alive()?;
        let _held = inner.hold();
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        let step_buf = self.fixed(self.step);
        copy_values(
            &mut encoder,
            &step_buf,
            step_state::LOSSES,
            self.pending,
            &self.loss_staging,
            0,
        );
        Ok(inner.queue.submit([encoder.finish()]))
    }

    /// Reads the ring's pending losses after submission `index`, blocking (`instead`: the
    /// call that does not block, named in wasm32's refusal).
    fn read_ring(&mut self, index: wgpu::SubmissionIndex, instead: &str) -> Result<Vec<f32>> {
        let bytes = pack::f32_bytes(self.pending);
        let ring = self.read_blocking(&self.loss_staging, bytes, index, instead)?;
        self.absorb_ring(ring)
    }

    /// Reads `bytes` of a staging buffer after submission `index`, blocking; refused on wasm32,
    /// naming `instead`, the call to await.
    fn read_blocking(
        &self,
        buffer: &wgpu::Buffer,
        bytes: u64,
        index: wgpu::SubmissionIndex,
        instead: &str,
    ) -> Result<Vec<f32>> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = instead;
            self.program
                .ctx
                .inner
                .read_blocking(buffer, bytes, index, |b| bytemuck::cast_slice(b).to_vec())
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (buffer, bytes, index);
            Err(Error::invalid(format!(
                "reading back from the GPU blocks, which a browser does not allow: on wasm32 \
                 await {instead} instead"
            )))
        }
    }

    /// Takes a read of the ring's pending losses (with those drained before it); a non-finite
    /// loss stops there.
    fn absorb_ring(&mut self, ring: Vec<f32>) -> Result<Vec<f32>> {
        let ctx = self.program.ctx.clone();
        let inner = &ctx.inner;
        let n = self.pending;
        self.pending = 0;
        let mut losses = std::mem::take(&mut self.drained);
        let base = losses.len();
        losses.extend(ring);
        if let Some(j) = losses[base..].iter().position(|l| !l.is_finite()) {
            // The device skipped every update from this step on: so does the count.
            let bad = losses[base + j];
            let step = self.steps - (n - 1 - j) as u64;
            self.steps = step - 1;
            inner.queue.write_buffer(
                &self.fixed(self.step),
                pack::f32_bytes(step_state::STOP),
                bytemuck::cast_slice(&[0.0f32]),
            );
            return Err(Error::invalid(format!(
                "the loss became {bad} at step {step}: training stopped (lower --lr, check the \
                 inputs for NaN or huge values{})",
                if self.loss == Loss::Bce {
                    "; bce takes probabilities in [0, 1]"
                } else {
                    ""
                }
            )));
        }
        Ok(losses)
    }

    /// Reads every parameter and running statistic back into `model` (the tensors whose role
    /// is `Parameter`), and counts BatchNorm's `num_batches_tracked` on by the steps taken.
    pub(crate) fn read_parameters(&self, model: &mut Mlp) -> Result<()> {
        let (held, index, bytes) = self.submit_parameter_copy(model)?;
        let values =
            self.read_blocking(&self.param_staging, bytes, index, "Trainer::sync_async")?;
        self.apply_parameters(model, &held, &values)
    }

    /// Copies every parameter to the readback buffer: which tensors (with their lengths), the
    /// submission and the bytes to read.
    fn submit_parameter_copy(
        &self,
        model: &mut Mlp,
    ) -> Result<(Vec<ParamSlot>, wgpu::SubmissionIndex, u64)> {
        let inner = &self.program.ctx.inner;
        inner.check_alive()?;
        let _held = inner.hold();
        let tensors = &self.program.plan.tensors;
        let held: Vec<ParamSlot> = (0..tensors.len())
            .filter_map(|i| match tensors[i].role {
                Role::Parameter { module, kind } => Some((module, kind, TensorId(i))),
                _ => None,
            })
            .map(|(module, kind, id)| Ok((module, kind, id, model.tensor_mut(module, kind)?.len())))
            .collect::<Result<_>>()?;
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        let mut at = 0;
        for &(_, _, id, len) in &held {
            copy_values(
                &mut encoder,
                &self.fixed(id),
                0,
                len,
                &self.param_staging,
                at,
            );
            at += pack::f32_bytes(len);
        }
        let index = inner.queue.submit([encoder.finish()]);
        Ok((held, index, at.max(4)))
    }

    /// Writes the read-back parameters into `model`.
    fn apply_parameters(&self, model: &mut Mlp, held: &[ParamSlot], values: &[f32]) -> Result<()> {
        let mut from = 0;
        for &(module, kind, _, len) in held {
            model.set_tensor(module, kind, &values[from..from + len])?;
            from += len;
        }
        for &(module, start) in &self.batchnorms {
            model.set_num_batches_tracked(module, start + self.steps as i64)?;
        }
        Ok(())
    }

    /// Reads every parameter's gradient (state_dict order) as the last step left them.
    pub(crate) fn read_gradients(&self) -> Result<Vec<Vec<f32>>> {
        let inner = &self.program.ctx.inner;
        inner.check_alive()?;
        let _held = inner.hold();
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        let mut at = 0;
        for &(_, g, len) in &self.params {
            copy_values(
                &mut encoder,
                &self.fixed(g),
                0,
                len,
                &self.param_staging,
                at,
            );
            at += pack::f32_bytes(len);
        }
        let index = inner.queue.submit([encoder.finish()]);
        let all = self.read_blocking(
            &self.param_staging,
            at.max(4),
            index,
            "a CPU backend's Trainer::gradients (the GPU's has no async form)",
        )?;
        let mut from = 0;
        Ok(self
            .params
            .iter()
            .map(|&(_, _, len)| {
                from += len;
                all[from - len..from].to_vec()
            })
            .collect())
    }

    /// Optimizer steps taken (submitted).
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }
}
