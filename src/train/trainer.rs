//! [`Trainer`]: a model, a loss and an optimizer, trained step for step as PyTorch's
//! `zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step()` loop trains them.

use std::fmt;

use crate::data::EpochOrder;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::model::{Mlp, TensorKind, TensorValues};
use crate::rng::Generator;
use crate::train::backward;
use crate::train::gpu_backend::{GpuBackend, refuse_blocking};
use crate::train::health::Monitor;
use crate::train::linear_grad::Precision;
use crate::train::loss::{Loss, Reduction, Target, select_rows};
use crate::train::optim::{OptimState, Optimizer};

/// Where a training step runs: the seam through which each path plugs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The f64 reference: every op computed in f64 and rounded to f32 (the yardstick).
    CpuReference,
    /// The fast CPU path: the matrix products on the packed f32 kernels of
    /// [`CpuMlp`](crate::CpuMlp) and their thread pool; the elementwise ops, norms, losses and
    /// optimizers are the reference's.
    #[default]
    Cpu,
    /// The GPU: every kernel of the step on the device (forward keeping what backward needs,
    /// the loss, backward, the optimizer's update), parameters, gradients and optimizer state
    /// resident there, one submit per step. Trains every module the CPU paths train but ONNX
    /// elementwise subgraphs ([`Trainer::new`] refuses those, naming them), with every loss and
    /// optimizer. The default adapter; [`Trainer::on_gpu`] takes a context of your choice.
    /// On wasm32 only through `on_gpu` (with a context from
    /// [`GpuContext::new_async`](crate::gpu::GpuContext::new_async)) and only the calls that
    /// do not wait: [`Trainer::step_async`], [`Trainer::epoch_async`],
    /// [`Trainer::take_losses_async`], [`Trainer::sync_async`], [`Trainer::step_queued`].
    /// docs/TRAINING.md, "On the GPU".
    Gpu,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::CpuReference => "cpu-reference",
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        })
    }
}

/// Trains an [`Mlp`] with a [`Loss`] and an [`Optimizer`].
///
/// ```
/// use wgpu_mlp::train::{Backend, Loss, Optimizer, Reduction, Target, Trainer};
/// use wgpu_mlp::{Activation, Matrix, Mlp};
///
/// let model = Mlp::builder(2).layer(4, Activation::Tanh).layer(1, Activation::Identity)
///     .seed(0).build()?;
/// let mut t = Trainer::new(model, Loss::Mse, Reduction::Mean, Optimizer::sgd(0.1),
///                          Backend::CpuReference)?;
/// let x = Matrix::new(4, 2, vec![0., 0., 0., 1., 1., 0., 1., 1.])?;
/// let y = Target::Values(Matrix::new(4, 1, vec![0., 1., 1., 0.])?);
/// let first = t.step(&x, &y)?;
/// for _ in 0..50 { t.step(&x, &y)?; }
/// assert!(t.step(&x, &y)? < first);
/// let trained: Mlp = t.into_model();
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Debug)]
pub struct Trainer {
    model: Mlp,
    loss: Loss,
    reduction: Reduction,
    optim: OptimState,
    precision: Precision,
    dropout: Generator,
    steps: u64,
    /// `Backend::Gpu`'s session.
    gpu: Option<GpuBackend>,
    /// Losses of queued steps already read (the CPU paths' [`step_queued`](Self::step_queued),
    /// or the GPU's read before an epoch), not taken yet.
    queued: Vec<f32>,
}

impl Trainer {
    /// Checks the loss, the optimizer and that every module can be trained (an ONNX
    /// elementwise subgraph cannot: the error names it), and that `backend` is available.
    pub fn new(
        model: Mlp,
        loss: Loss,
        reduction: Reduction,
        optimizer: Optimizer,
        backend: Backend,
    ) -> Result<Self> {
        Self::make(model, loss, reduction, optimizer, backend, None)
    }

    /// A trainer on the GPU of `ctx` (`Backend::Gpu` on an adapter of your choice).
    pub fn on_gpu(
        model: Mlp,
        loss: Loss,
        reduction: Reduction,
        optimizer: Optimizer,
        ctx: &crate::gpu::GpuContext,
    ) -> Result<Self> {
        Self::make(model, loss, reduction, optimizer, Backend::Gpu, Some(ctx))
    }

    fn make(
        model: Mlp,
        loss: Loss,
        reduction: Reduction,
        optimizer: Optimizer,
        backend: Backend,
        ctx: Option<&crate::gpu::GpuContext>,
    ) -> Result<Self> {
        let precision = match backend {
            Backend::CpuReference => Precision::Reference,
            Backend::Cpu | Backend::Gpu => Precision::Fast,
        };
        loss.check()?;
        OptimState::new(optimizer)?;
        backward::check_trainable(&model)?;
        let gpu = match backend {
            Backend::Gpu => Some(GpuBackend::new(ctx, &model, loss, reduction, optimizer)?),
            _ => None,
        };
        Ok(Trainer {
            gpu,
            queued: Vec::new(),
            model,
            loss,
            reduction,
            optim: OptimState::new(optimizer)?,
            precision,
            dropout: Generator::new(0),
            steps: 0,
        })
    }

    /// Seeds the generator of the Dropout masks (default 0). The masks are this crate's own
    /// draws, not PyTorch's: a model with Dropout trains as PyTorch's does in distribution,
    /// not bit for bit.
    pub fn dropout_seed(mut self, seed: u64) -> Self {
        self.dropout = Generator::new(seed);
        self
    }

    /// One optimizer step on the batch `x` (`[batch, in]`) with targets `y`: returns the loss
    /// as `loss.item()` gives it. A loss that is NaN or infinite stops with an error naming the
    /// step (counted from 1), and the model is left as it was before the step.
    pub fn step(&mut self, x: &Matrix, y: &Target) -> Result<f32> {
        self.step_inner(x, y, None)
    }

    /// [`Trainer::step`], also showing `monitor` what the step saw (its outputs, every module's
    /// input, the gradients and the updates): see [`Monitor`]. On the GPU, which reads none of
    /// them back, the parameters are read back after the step and the monitor recomputes it on
    /// the f64 reference ([`Monitor::observe_step`]): one read-back and one reference forward
    /// and backward per step, many times the GPU step's own time. Natively only (on wasm32:
    /// [`sync_async`](Self::sync_async) and `observe_step`).
    pub fn step_monitored(&mut self, x: &Matrix, y: &Target, monitor: &mut Monitor) -> Result<f32> {
        self.step_inner(x, y, Some(monitor))
    }

    fn step_inner(
        &mut self,
        x: &Matrix,
        y: &Target,
        mut monitor: Option<&mut Monitor>,
    ) -> Result<f32> {
        if let Some(gpu) = &mut self.gpu {
            // The GPU reads back no activations or gradients: the monitor recomputes the step
            // on the reference from the parameters before and after it (and its Dropout masks).
            let before = match monitor {
                Some(_) => {
                    refuse_blocking(
                        "Trainer::step_monitored",
                        "Trainer::step_async, then sync_async and Monitor::observe_step",
                    )?;
                    gpu.sync(&mut self.model)?;
                    Some((self.model.clone(), self.dropout.clone()))
                }
                None => None,
            };
            let loss = gpu
                .step(x, y, true, &mut self.dropout)?
                .expect("a read step's loss");
            self.steps = gpu.steps();
            if let (Some(m), Some((model, mut dropout))) = (monitor, before) {
                gpu.sync(&mut self.model)?;
                m.observe_step_with(&model, &self.model, x, y, self.reduction, &mut dropout)?;
            }
            return Ok(loss);
        }
        let (loss, grads) = self.loss_and_gradients(x, y, monitor.as_deref_mut())?;
        let before = monitor.as_ref().map(|m| m.weights(&self.model));
        let params: Vec<(usize, TensorKind)> = self
            .model
            .parameters()
            .iter()
            .map(|t| (t.module, t.kind))
            .collect();
        for (k, ((module, kind), g)) in params.into_iter().zip(&grads).enumerate() {
            let p = self.model.tensor_mut(module, kind)?;
            self.optim.update(k, p, g);
        }
        self.steps += 1;
        if let (Some(m), Some(before)) = (monitor, before) {
            m.observe_update(&self.model, &grads, &before);
        }
        Ok(loss)
    }

    /// The loss on a batch and the gradient of every trainable tensor (in
    /// [`Mlp::parameters`] order), as `loss.backward()` leaves them in `.grad`, without an
    /// optimizer step. BatchNorm's running statistics are left as they were.
    pub fn gradients(&mut self, x: &Matrix, y: &Target) -> Result<(f32, Vec<Vec<f32>>)> {
        if let Some(gpu) = &mut self.gpu {
            return gpu.gradients(x, y, &mut self.dropout);
        }
        let buffers = snapshot_buffers(&self.model);
        let out = self.loss_and_gradients(x, y, None);
        restore_buffers(&mut self.model, buffers);
        out
    }

    /// The train-mode forward pass, the loss and the backward pass.
    fn loss_and_gradients(
        &mut self,
        x: &Matrix,
        y: &Target,
        monitor: Option<&mut Monitor>,
    ) -> Result<(f32, Vec<Vec<f32>>)> {
        self.model.check_input(x.rows(), x.cols())?;
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
        let step = self.steps + 1;
        let buffers = snapshot_buffers(&self.model);
        let tape = backward::forward(
            &mut self.model,
            x.as_slice(),
            x.rows(),
            self.precision,
            &mut self.dropout,
        );
        // A module's error (BatchNorm's batch of one) says which step it stopped at.
        let tape = tape.map_err(|e| {
            Error::invalid(format!(
                "at step {step}: {}",
                e.to_string().trim_start_matches("invalid argument: ")
            ))
        });
        let evaluated = tape.and_then(|tape| {
            let out = Matrix::new(x.rows(), self.model.out_features(), tape.output().to_vec())?;
            let (loss, grad) = self.loss.evaluate(&out, y, self.reduction)?;
            if !loss.is_finite() {
                return Err(Error::invalid(format!(
                    "the loss became {loss} at step {step}: training stopped (lower --lr, \
                     check the inputs for NaN or huge values)"
                )));
            }
            Ok((tape, loss, grad))
        });
        let (tape, loss, grad) = match evaluated {
            Ok(v) => v,
            Err(e) => {
                restore_buffers(&mut self.model, buffers);
                return Err(e);
            }
        };
        if let Some(m) = monitor {
            m.observe_forward(&self.model, &tape, y, loss, self.reduction);
        }
        let grads = backward::backward(&self.model, &tape, grad, self.precision)?;
        Ok((loss, grads))
    }

    /// One epoch over the data set `x`, `y` in the batches `order` gives (see [`EpochOrder`]):
    /// the loss of each step.
    pub fn epoch(&mut self, x: &Matrix, y: &Target, order: &mut EpochOrder) -> Result<Vec<f32>> {
        if y.rows() != x.rows() {
            return Err(Error::shape(format!(
                "the input has {} rows but the target {}",
                x.rows(),
                y.rows()
            )));
        }
        if self.gpu.is_some() {
            refuse_blocking("Trainer::epoch", "Trainer::epoch_async")?;
            // On the GPU the steps do not wait: the losses are read once, at the end (losses
            // queued before the epoch stay for take_losses).
            let earlier = self.take_losses()?;
            let mut run = || -> Result<Vec<f32>> {
                for batch in order.next_epoch() {
                    self.step_queued(&select_rows(x, &batch)?, &y.select(&batch)?)?;
                }
                self.take_losses()
            };
            let losses = run();
            self.queued = earlier;
            let losses = losses?;
            self.sync()?;
            return Ok(losses);
        }
        let mut losses = Vec::new();
        for batch in order.next_epoch() {
            let xb = select_rows(x, &batch)?;
            let yb = y.select(&batch)?;
            losses.push(self.step(&xb, &yb)?);
        }
        Ok(losses)
    }

    /// A step that does not wait for its loss: on the GPU it is submitted and the call returns
    /// (the loss stays in a device buffer until [`take_losses`](Self::take_losses)); on the
    /// CPU paths it is [`step`](Self::step) with the loss kept for `take_losses`. A loss that
    /// is not finite is reported by `take_losses`, naming its step; the device then leaves the
    /// parameters as they were before that step, and later queued steps change nothing.
    pub fn step_queued(&mut self, x: &Matrix, y: &Target) -> Result<()> {
        if let Some(gpu) = &mut self.gpu {
            gpu.step(x, y, false, &mut self.dropout)?;
            self.steps = gpu.steps();
            return Ok(());
        }
        let loss = self.step(x, y)?;
        self.queued.push(loss);
        Ok(())
    }

    /// The losses of the steps taken with [`step_queued`](Self::step_queued) (and
    /// [`step_batch`](Self::step_batch)) since the last call, in order (`loss.item()` each).
    /// On the GPU this waits for them: the one read-back of a run of queued steps.
    pub fn take_losses(&mut self) -> Result<Vec<f32>> {
        let mut losses = std::mem::take(&mut self.queued);
        if let Some(gpu) = &mut self.gpu {
            let device = gpu.take_losses();
            self.steps = gpu.steps();
            losses.extend(device?);
        }
        Ok(losses)
    }

    /// [`Trainer::epoch`] with a [`Monitor`] watching every step, and `on_step(done, of, loss)`
    /// called after each (a progress display).
    pub fn epoch_monitored(
        &mut self,
        x: &Matrix,
        y: &Target,
        order: &mut EpochOrder,
        monitor: &mut Monitor,
        mut on_step: impl FnMut(usize, usize, f32),
    ) -> Result<Vec<f32>> {
        if y.rows() != x.rows() {
            return Err(Error::shape(format!(
                "the input has {} rows but the target {}",
                x.rows(),
                y.rows()
            )));
        }
        let batches = order.next_epoch();
        let mut losses = Vec::with_capacity(batches.len());
        for (b, batch) in batches.iter().enumerate() {
            let xb = select_rows(x, batch)?;
            let yb = y.select(batch)?;
            let loss = self.step_monitored(&xb, &yb, monitor)?;
            losses.push(loss);
            on_step(b + 1, batches.len(), loss);
        }
        Ok(losses)
    }

    /// [`step`](Self::step) as a future that never blocks: on the GPU the step is submitted
    /// and its loss awaited through the device's readback (natively the context's poller maps
    /// it; in a browser, WebGPU does), the counterpart of
    /// [`GpuMlp::forward_async`](crate::gpu::GpuMlp::forward_async); the same bits as `step`.
    /// On the CPU paths it is `step`, ready at once. A future dropped before it ends leaves the
    /// trainer usable: the step was taken (if it was submitted), and its loss, not handed out,
    /// comes with the next [`take_losses`](Self::take_losses).
    pub async fn step_async(&mut self, x: &Matrix, y: &Target) -> Result<f32> {
        match &mut self.gpu {
            Some(gpu) => {
                let loss = gpu.step_async(x, y, &mut self.dropout).await;
                self.steps = gpu.steps();
                loss
            }
            None => self.step(x, y),
        }
    }

    /// [`take_losses`](Self::take_losses) as a future that never blocks.
    pub async fn take_losses_async(&mut self) -> Result<Vec<f32>> {
        let mut losses = std::mem::take(&mut self.queued);
        if let Some(gpu) = &mut self.gpu {
            let device = gpu.take_losses_async().await;
            self.steps = gpu.steps();
            losses.extend(device?);
        }
        Ok(losses)
    }

    /// [`sync`](Self::sync) as a future that never blocks (on wasm32 the way to read the
    /// trained parameters back: `into_model` cannot, and returns the model as of the last
    /// sync).
    pub async fn sync_async(&mut self) -> Result<&Mlp> {
        if let Some(gpu) = &mut self.gpu {
            gpu.sync_async(&mut self.model).await?;
        }
        Ok(&self.model)
    }

    /// [`epoch`](Self::epoch) as a future that never blocks: on the GPU the steps are queued
    /// (one submit each), the losses read once at the end (and whenever the device's ring of
    /// unread losses fills), then the parameters; the same bits as `epoch`.
    pub async fn epoch_async(
        &mut self,
        x: &Matrix,
        y: &Target,
        order: &mut EpochOrder,
    ) -> Result<Vec<f32>> {
        if self.gpu.is_none() {
            return self.epoch(x, y, order);
        }
        if y.rows() != x.rows() {
            return Err(Error::shape(format!(
                "the input has {} rows but the target {}",
                x.rows(),
                y.rows()
            )));
        }
        let earlier = self.take_losses_async().await?;
        let losses = self.queued_epoch(x, y, order).await;
        self.queued = earlier;
        let losses = losses?;
        self.sync_async().await?;
        Ok(losses)
    }

    /// The GPU's steps of [`epoch_async`](Self::epoch_async) and their losses.
    async fn queued_epoch(
        &mut self,
        x: &Matrix,
        y: &Target,
        order: &mut EpochOrder,
    ) -> Result<Vec<f32>> {
        for batch in order.next_epoch() {
            let (xb, yb) = (select_rows(x, &batch)?, y.select(&batch)?);
            let gpu = self.gpu.as_mut().expect("a GPU trainer");
            gpu.step_queued_async(&xb, &yb, &mut self.dropout).await?;
        }
        self.take_losses_async().await
    }

    /// The loss, the reduction, the optimizer state and the Dropout generator, for a
    /// checkpoint (`train::checkpoint`).
    pub(crate) fn parts(&self) -> (Loss, Reduction, &OptimState, &Generator) {
        (self.loss, self.reduction, &self.optim, &self.dropout)
    }

    /// The model, the optimizer state, the Dropout generator and the step count, for
    /// restoring a checkpoint.
    pub(crate) fn parts_mut(&mut self) -> (&mut Mlp, &mut OptimState, &mut Generator, &mut u64) {
        (
            &mut self.model,
            &mut self.optim,
            &mut self.dropout,
            &mut self.steps,
        )
    }

    /// Uploads a batch to the GPU once, for [`step_batch`](Self::step_batch): a data set
    /// resident on the device trains without any host-to-device copy per step. `Backend::Gpu`
    /// only.
    pub fn upload_batch(&self, x: &Matrix, y: &Target) -> Result<crate::gpu::GpuBatch> {
        match &self.gpu {
            Some(gpu) => gpu.upload_batch(x, y),
            None => Err(Error::invalid("upload_batch needs Backend::Gpu")),
        }
    }

    /// A [`step_queued`](Self::step_queued) on a batch already on the device (copied there by
    /// [`upload_batch`](Self::upload_batch)): one submit, no upload, no wait.
    pub fn step_batch(&mut self, batch: &crate::gpu::GpuBatch) -> Result<()> {
        let gpu = self
            .gpu
            .as_mut()
            .ok_or_else(|| Error::invalid("step_batch needs Backend::Gpu"))?;
        gpu.step_batch(batch, &mut self.dropout)?;
        self.steps = gpu.steps();
        Ok(())
    }

    /// Copies the trained parameters from the device into the model [`model`](Self::model)
    /// returns (`Backend::Gpu`: one read-back; nothing to do on the CPU paths). [`epoch`](Self::epoch)
    /// and [`into_model`](Self::into_model) do it themselves.
    pub fn sync(&mut self) -> Result<&Mlp> {
        if let Some(gpu) = &mut self.gpu {
            gpu.sync(&mut self.model)?;
        }
        Ok(&self.model)
    }

    /// The model as trained so far. On the GPU: as of the last [`sync`](Self::sync) (or
    /// epoch); call `sync` first for the device's latest parameters.
    pub fn model(&self) -> &Mlp {
        &self.model
    }

    /// Where the steps run.
    pub fn backend(&self) -> Backend {
        match (&self.gpu, self.precision) {
            (Some(_), _) => Backend::Gpu,
            (None, Precision::Reference) => Backend::CpuReference,
            (None, _) => Backend::Cpu,
        }
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        // The device's count: an awaited step dropped mid-read was taken all the same.
        self.gpu.as_ref().map_or(self.steps, GpuBackend::steps)
    }

    /// The trained model. On the GPU the parameters are read back first; if that fails (the
    /// device was lost, or on wasm32, where reading back blocks) the model is as of the last
    /// successful [`sync`](Self::sync) or [`sync_async`](Self::sync_async): call one of them
    /// first (on wasm32 `sync_async`).
    pub fn into_model(mut self) -> Mlp {
        let _ = self.sync();
        self.model
    }
}

/// A copy of the buffers a forward pass changes (BatchNorm's running statistics and count).
type Buffers = Vec<(usize, TensorKind, Option<Vec<f32>>, i64)>;

fn snapshot_buffers(model: &Mlp) -> Buffers {
    model
        .tensors()
        .into_iter()
        .filter(|t| !t.trainable)
        .map(|t| match t.values {
            TensorValues::F32(v) => (t.module, t.kind, Some(v.to_vec()), 0),
            TensorValues::Count(n) => (t.module, t.kind, None, n),
        })
        .collect()
}

fn restore_buffers(model: &mut Mlp, buffers: Buffers) {
    for (module, kind, values, count) in buffers {
        // The shapes are the model's own: these writes cannot fail.
        let _ = match values {
            Some(v) => model.set_tensor(module, kind, &v),
            None => model.set_num_batches_tracked(module, count),
        };
    }
}
