//! `Backend::Gpu`'s side of the [`Trainer`](super::Trainer): the GPU training session
//! (`gpu/train/`) behind the few calls the trainer makes, so the trainer's own file only
//! dispatches. Each read-back has a blocking form (native targets) and an awaited one (every
//! target); on wasm32 the blocking ones are refused before anything is submitted, naming the
//! call to await instead.

use crate::error::Result;
use crate::gpu::GpuContext;
use crate::gpu::train::{Batch, GpuBatch, GpuTraining};
use crate::matrix::Matrix;
use crate::model::Mlp;
use crate::rng::Generator;
use crate::train::{Loss, Optimizer, Reduction, Target};

/// A model training on the GPU.
#[derive(Debug)]
pub(crate) struct GpuBackend {
    session: GpuTraining,
    /// The host's model has the device's parameters (nothing stepped since the last read).
    synced: bool,
}

/// Refuses a call that waits for the device on wasm32 (a browser may not block), naming
/// `instead`, the call to await; nothing to refuse natively.
pub(crate) fn refuse_blocking(call: &str, instead: &str) -> Result<()> {
    if cfg!(target_arch = "wasm32") {
        return Err(crate::Error::invalid(format!(
            "{call} waits for the GPU, which a browser does not allow: on wasm32 await \
             {instead} instead"
        )));
    }
    Ok(())
}

/// The default adapter's context (`Trainer::new` with `Backend::Gpu`).
#[cfg(not(target_arch = "wasm32"))]
fn default_context() -> Result<GpuContext> {
    GpuContext::new(&crate::gpu::GpuOptions::default())
}

/// On wasm32 a context is opened asynchronously, by the caller.
#[cfg(target_arch = "wasm32")]
fn default_context() -> Result<GpuContext> {
    Err(crate::Error::invalid(
        "Backend::Gpu on wasm32 needs a context opened asynchronously: \
         Trainer::on_gpu(…, &GpuContext::new_async(…).await?)",
    ))
}

impl GpuBackend {
    /// Plans and uploads `model` on `ctx` (the default adapter when `None`).
    pub(crate) fn new(
        ctx: Option<&GpuContext>,
        model: &Mlp,
        loss: Loss,
        reduction: Reduction,
        optimizer: Optimizer,
    ) -> Result<Self> {
        crate::gpu::train::check_supported(model)?;
        let own;
        let ctx = match ctx {
            Some(c) => c,
            None => {
                own = default_context()?;
                &own
            }
        };
        Ok(GpuBackend {
            session: GpuTraining::new(ctx, model, loss, reduction, optimizer)?,
            synced: true,
        })
    }

    /// One step on a host batch; `read`: wait and return its loss (refused on wasm32).
    pub(crate) fn step(
        &mut self,
        x: &Matrix,
        y: &Target,
        read: bool,
        dropout: &mut Generator,
    ) -> Result<Option<f32>> {
        if read {
            refuse_blocking("Trainer::step", "Trainer::step_async")?;
        }
        self.synced = false;
        let losses = self.session.step(Batch::Host(x, y), true, read, dropout)?;
        Ok(read.then(|| losses.last().copied()).flatten())
    }

    /// One step on a host batch, awaiting its loss.
    pub(crate) async fn step_async(
        &mut self,
        x: &Matrix,
        y: &Target,
        dropout: &mut Generator,
    ) -> Result<f32> {
        self.synced = false;
        self.session.step_async(Batch::Host(x, y), dropout).await
    }

    /// One step on a host batch, not waiting for its loss; when the ring of unread losses is
    /// full, it is read first, awaited (never blocking).
    pub(crate) async fn step_queued_async(
        &mut self,
        x: &Matrix,
        y: &Target,
        dropout: &mut Generator,
    ) -> Result<()> {
        self.session.drain_if_full().await?;
        self.step(x, y, false, dropout).map(|_| ())
    }

    /// One step on a batch already on the device, without waiting.
    pub(crate) fn step_batch(&mut self, batch: &GpuBatch, dropout: &mut Generator) -> Result<()> {
        self.synced = false;
        let batch = Batch::Device(batch);
        self.session.step(batch, true, false, dropout).map(|_| ())
    }

    /// Uploads a batch for [`step_batch`](Self::step_batch).
    pub(crate) fn upload_batch(&self, x: &Matrix, y: &Target) -> Result<GpuBatch> {
        self.session.upload_batch(x, y)
    }

    /// The losses of the steps not read yet, in order (blocking: refused on wasm32).
    pub(crate) fn take_losses(&mut self) -> Result<Vec<f32>> {
        self.session.take_losses()
    }

    /// [`take_losses`](Self::take_losses), awaited.
    pub(crate) async fn take_losses_async(&mut self) -> Result<Vec<f32>> {
        self.session.take_losses_async().await
    }

    /// The loss and the parameters' gradients on a batch, without an update (blocking:
    /// refused on wasm32).
    pub(crate) fn gradients(
        &mut self,
        x: &Matrix,
        y: &Target,
        dropout: &mut Generator,
    ) -> Result<(f32, Vec<Vec<f32>>)> {
        refuse_blocking("Trainer::gradients", "a CPU backend's Trainer::gradients")?;
        let losses = self.session.step(Batch::Host(x, y), false, true, dropout)?;
        let loss = *losses.last().expect("this step's loss");
        Ok((loss, self.session.read_gradients()?))
    }

    /// Copies the device's parameters into `model` unless it has them already (blocking:
    /// refused on wasm32).
    pub(crate) fn sync(&mut self, model: &mut Mlp) -> Result<()> {
        if !self.synced {
            self.session.read_parameters(model)?;
            self.synced = true;
        }
        Ok(())
    }

    /// [`sync`](Self::sync), awaited.
    pub(crate) async fn sync_async(&mut self, model: &mut Mlp) -> Result<()> {
        if !self.synced {
            self.session.read_parameters_async(model).await?;
            self.synced = true;
        }
        Ok(())
    }

    /// Optimizer steps taken on the device.
    pub(crate) fn steps(&self) -> u64 {
        self.session.steps()
    }
}
