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
use crate::gpu::kernels::matmul::Matmul;
use crate::gpu::kernels::step_state;
use crate::gpu::pack;
use crate::gpu::program::{Program, Resource};
use crate::gpu::tensor::{Role, TensorId};
use crate::gpu::train::plan::{self, TrainPlan};
use crate::gpu::workspace::{Ends, Workspace};
use crate::matrix::Matrix;
use crate::model::{Mlp, Module, TensorKind};
use crate::rng::Generator;
use crate::train::backward::dropout_mask;
use crate::train::{Loss, Optimizer, Reduction, Target};

/// A batch uploaded to the device once, for steps that do not upload their batch
/// ([`Trainer::step_batch`](crate::train::Trainer::step_batch)): the inputs and the targets in
/// device buffers of their own.
#[derive(Debug)]
pub struct GpuBatch {
    // Released under the device lock (GL: see device_lock.rs).
    x: Held<wgpu::Buffer>,
    y: Held<wgpu::Buffer>,
    rows: usize,
}

impl GpuBatch {
    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// Where a step's batch comes from.
pub(crate) enum Batch<'a> {
    Host(&'a Matrix, &'a Target),
    Device(&'a GpuBatch),
}

impl Batch<'_> {
    fn rows(&self) -> usize {
        match self {
            Batch::Host(x, _) => x.rows(),
            Batch::Device(b) => b.rows,
        }
    }
}

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
        } = plan::plan(model, loss, reduction, optimizer)?;
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

    /// Checks a host batch's shapes and targets as the CPU trainer does.
    fn check_batch(&self, x: &Matrix, y: &Target) -> Result<()> {
        let plan = &self.program.plan;
        if x.cols() != plan.n_in {
            return Err(Error::shape(format!(
                "the batch has {} columns but the model takes {}",
                x.cols(),
                plan.n_in
            )));
        }
        if x.rows() == 0 {
            return Err(Error::invalid("a training batch needs at least one row"));
        }
        if y.rows() != x.rows() {
            return Err(Error::shape(format!(
                "the batch has {} input rows but {} targets",
                x.rows(),
                y.rows()
            )));
        }
        if x.rows() < 2
            && let Some(&(module, _)) = self.batchnorms.first()
        {
            return Err(Error::invalid(format!(
                "at step {}: BatchNorm1d (module {module}) in train mode needs more than 1 value \
                 per channel, got a batch of 1 row (as PyTorch; use drop_last or another batch \
                 size)",
                self.steps + 1
            )));
        }
        let max = Matmul::max_rows(
            self.program
                .ctx
                .inner
                .limits
                .max_compute_workgroups_per_dimension,
        );
        if x.rows() > max {
            return Err(Error::invalid(format!(
                "a GPU training batch has at most {max} rows, not {}",
                x.rows()
            )));
        }
        // The loss's own checks (kinds, shapes, class ranges) on a zero output of the batch's
        // shape: the same messages as the CPU paths.
        match (self.loss.wants_classes(), y) {
            (true, Target::Classes(c)) => {
                let cols = plan.n_out as i64;
                if let Some((i, &bad)) = c.iter().enumerate().find(|(_, v)| **v < 0 || **v >= cols)
                {
                    return Err(Error::invalid(format!(
                        "{}: target {bad} at row {i} is out of bounds: the model has {cols} \
                         classes (0..={})",
                        self.loss,
                        cols - 1
                    )));
                }
                Ok(())
            }
            (false, Target::Values(m)) if m.cols() == plan.n_out => Ok(()),
            _ => {
                let zeros = Matrix::new(x.rows(), plan.n_out, vec![0.0; x.rows() * plan.n_out])?;
                self.loss.evaluate(&zeros, y, Reduction::Mean).map(|_| ())
            }
        }
    }

    /// The target values as the device stores them (class indices as f32).
    fn target_values(y: &Target) -> std::borrow::Cow<'_, [f32]> {
        match y {
            Target::Values(m) => m.as_slice().into(),
            Target::Classes(c) => c.iter().map(|&k| k as f32).collect::<Vec<_>>().into(),
        }
    }

    /// Uploads a batch to device buffers of its own.
    pub(crate) fn upload_batch(&self, x: &Matrix, y: &Target) -> Result<GpuBatch> {
        self.check_batch(x, y)?;
        let inner = &self.program.ctx.inner;
        let _held = inner.hold();
        let scope = ErrorScope::push(&inner.device);
        let buffer = |label: &str, values: &[f32]| {
            let b = inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: pack::f32_bytes(values.len()).next_multiple_of(16).max(16),
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            inner
                .queue
                .write_buffer(&b, 0, bytemuck::cast_slice(values));
            Held::new(b, inner.lock.clone())
        };
        let batch = GpuBatch {
            x: buffer("batch x", x.as_slice()),
            y: buffer("batch y", &Self::target_values(y)),
            rows: x.rows(),
        };
        scope.pop()?;
        Ok(batch)
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
        if self.pending == step_state::RING {
            let losses = self.take_losses()?;
            self.drained = losses;
        }
        let rows = batch.rows();
        let ctx = self.program.ctx.clone();
        let inner = &ctx.inner;
        inner.check_alive()?;
        let _held = inner.hold();
        if self.ws.as_ref().is_none_or(|w| w.capacity_rows < rows) {
            let ws = Workspace::new(&self.program, rows);
            self.ws = Some(Held::new(ws, inner.lock.clone()));
        }
        let scope = ErrorScope::push(&inner.device);
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
        scope.pop()?;
        if read {
            // This step's loss is the last; earlier unread ones wait for take_losses.
            let mut all = self.read_ring(index)?;
            let last = all.pop();
            self.drained = all;
            Ok(last.into_iter().collect())
        } else {
            Ok(Vec::new())
        }
    }

    /// Reads the losses of the steps not read so far (waits for them).
    pub(crate) fn take_losses(&mut self) -> Result<Vec<f32>> {
        if self.pending == 0 {
            return Ok(std::mem::take(&mut self.drained));
        }
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
        let index = inner.queue.submit([encoder.finish()]);
        self.read_ring(index)
    }

    /// Reads the ring's pending losses after submission `index`; a non-finite loss stops there.
    fn read_ring(&mut self, index: wgpu::SubmissionIndex) -> Result<Vec<f32>> {
        let ctx = self.program.ctx.clone();
        let inner = &ctx.inner;
        let n = self.pending;
        let ring: Vec<f32> =
            inner.read_blocking(&self.loss_staging, pack::f32_bytes(n), index, |b| {
                bytemuck::cast_slice(b).to_vec()
            })?;
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
        let inner = &self.program.ctx.inner;
        inner.check_alive()?;
        let _held = inner.hold();
        let tensors = &self.program.plan.tensors;
        let held: Vec<(usize, TensorKind, TensorId)> = (0..tensors.len())
            .filter_map(|i| match tensors[i].role {
                Role::Parameter { module, kind } => Some((module, kind, TensorId(i))),
                _ => None,
            })
            .collect();
        let lens: Vec<usize> = held
            .iter()
            .map(|&(module, kind, _)| model.tensor_mut(module, kind).map(|t| t.len()))
            .collect::<Result<_>>()?;
        let mut encoder = inner.device.create_command_encoder(&Default::default());
        let mut at = 0;
        for (&(_, _, id), &len) in held.iter().zip(&lens) {
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
        let values: Vec<f32> = inner.read_blocking(&self.param_staging, at.max(4), index, |b| {
            bytemuck::cast_slice(b).to_vec()
        })?;
        let mut from = 0;
        for (&(module, kind, _), &len) in held.iter().zip(&lens) {
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
        inner.read_blocking(&self.param_staging, at.max(4), index, |b| {
            let all: &[f32] = bytemuck::cast_slice(b);
            let mut from = 0;
            self.params
                .iter()
                .map(|&(_, _, len)| {
                    from += len;
                    all[from - len..from].to_vec()
                })
                .collect()
        })
    }

    /// Optimizer steps taken (submitted).
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }
}
