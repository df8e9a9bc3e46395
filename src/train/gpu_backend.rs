//! `Backend::Gpu`'s side of the [`Trainer`](super::Trainer): the GPU training session
//! (`gpu/train/`) behind the few calls the trainer makes, so the trainer's own file only
//! dispatches. On wasm32 (no blocking readback) the GPU backend is refused at construction.

use crate::error::Result;
use crate::gpu::GpuContext;
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::GpuOptions;
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::train::{Batch, GpuBatch, GpuTraining};
use crate::matrix::Matrix;
use crate::model::Mlp;
use crate::rng::Generator;
use crate::train::{Loss, Optimizer, Reduction, Target};

/// A model training on the GPU.
#[derive(Debug)]
pub(crate) struct GpuBackend {
    #[cfg(not(target_arch = "wasm32"))]
    session: GpuTraining,
    /// Never made on wasm32.
    #[cfg(target_arch = "wasm32")]
    never: std::convert::Infallible,
    /// The host's model has the device's parameters (nothing stepped since the last read).
    synced: bool,
}

#[cfg(not(target_arch = "wasm32"))]
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
                own = GpuContext::new(&GpuOptions::default())?;
                &own
            }
        };
        Ok(GpuBackend {
            session: GpuTraining::new(ctx, model, loss, reduction, optimizer)?,
            synced: true,
        })
    }

    /// One step on a host batch; `read`: wait and return its loss.
    pub(crate) fn step(
        &mut self,
        x: &Matrix,
        y: &Target,
        read: bool,
        dropout: &mut Generator,
    ) -> Result<Option<f32>> {
        self.synced = false;
        let losses = self.session.step(Batch::Host(x, y), true, read, dropout)?;
        Ok(read.then(|| losses.last().copied()).flatten())
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

    /// The losses of the steps not read yet, in order.
    pub(crate) fn take_losses(&mut self) -> Result<Vec<f32>> {
        self.session.take_losses()
    }

    /// The loss and the parameters' gradients on a batch, without an update.
    pub(crate) fn gradients(
        &mut self,
        x: &Matrix,
        y: &Target,
        dropout: &mut Generator,
    ) -> Result<(f32, Vec<Vec<f32>>)> {
        let losses = self.session.step(Batch::Host(x, y), false, true, dropout)?;
        let loss = *losses.last().expect("this step's loss");
        Ok((loss, self.session.read_gradients()?))
    }

    /// Copies the device's parameters into `model` unless it has them already.
    pub(crate) fn sync(&mut self, model: &mut Mlp) -> Result<()> {
        if !self.synced {
            self.session.read_parameters(model)?;
            self.synced = true;
        }
        Ok(())
    }

    /// Optimizer steps taken on the device.
    pub(crate) fn steps(&self) -> u64 {
        self.session.steps()
    }
}

#[cfg(target_arch = "wasm32")]
impl GpuBackend {
    pub(crate) fn new(
        _: Option<&GpuContext>,
        _: &Mlp,
        _: Loss,
        _: Reduction,
        _: Optimizer,
    ) -> Result<Self> {
        Err(crate::Error::invalid(
            "training on the GPU needs a native target (it reads the loss back blocking)",
        ))
    }

    pub(crate) fn step(
        &mut self,
        _: &Matrix,
        _: &Target,
        _: bool,
        _: &mut Generator,
    ) -> Result<Option<f32>> {
        match self.never {}
    }

    pub(crate) fn take_losses(&mut self) -> Result<Vec<f32>> {
        match self.never {}
    }

    pub(crate) fn gradients(
        &mut self,
        _: &Matrix,
        _: &Target,
        _: &mut Generator,
    ) -> Result<(f32, Vec<Vec<f32>>)> {
        match self.never {}
    }

    pub(crate) fn sync(&mut self, _: &mut Mlp) -> Result<()> {
        match self.never {}
    }

    pub(crate) fn steps(&self) -> u64 {
        match self.never {}
    }
}
