//! [`GpuTraining`]'s reads as futures: a step that awaits its loss, the ring's losses and the
//! parameters, on the same readback as [`GpuMlp::forward_async`](crate::gpu::GpuMlp::forward_async)
//! (`ContextInner::read_async`: the poller natively, the browser's map on wasm32). Nothing
//! blocks. A future dropped while its read is in flight leaves the session usable: the map is
//! aborted, and the losses not handed out stay in the ring for the next read.

use super::{Batch, GpuTraining};
use crate::error::Result;
use crate::gpu::error_scope::ErrorScope;
use crate::gpu::pack;
use crate::model::Mlp;
use crate::rng::Generator;

impl GpuTraining {
    /// [`step`](GpuTraining::step) with `read`, awaited: submits the step, then awaits its
    /// loss (earlier unread losses are kept for [`take_losses`](GpuTraining::take_losses)).
    pub(crate) async fn step_async(
        &mut self,
        batch: Batch<'_>,
        dropout: &mut Generator,
    ) -> Result<f32> {
        if let Batch::Host(x, y) = &batch {
            self.check_batch(x, y)?;
        }
        self.drain_if_full().await?;
        let (_, verdict) = self.submit(batch, true, true, true, dropout, ErrorScope::pop_async)?;
        self.awaited_verdict(verdict).await?;
        let all = self.read_ring_async().await?;
        Ok(self.split_last(all)[0])
    }

    /// When the ring is full, reads it (keeping its losses for `take_losses`) so the next
    /// step has room.
    pub(crate) async fn drain_if_full(&mut self) -> Result<()> {
        if self.ring_full() {
            let losses = self.take_losses_async().await?;
            self.drained = losses;
        }
        Ok(())
    }

    /// [`take_losses`](GpuTraining::take_losses), awaited.
    pub(crate) async fn take_losses_async(&mut self) -> Result<Vec<f32>> {
        if self.pending == 0 {
            return Ok(std::mem::take(&mut self.drained));
        }
        self.submit_ring_copy()?;
        self.read_ring_async().await
    }

    /// [`read_parameters`](GpuTraining::read_parameters), awaited.
    pub(crate) async fn read_parameters_async(&self, model: &mut Mlp) -> Result<()> {
        let (held, _, bytes) = self.submit_parameter_copy(model)?;
        let inner = &self.program.ctx.inner;
        let values: Vec<f32> = inner
            .read_async(&self.param_staging, bytes, |b| {
                bytemuck::cast_slice(b).to_vec()
            })
            .await?;
        self.apply_parameters(model, &held, &values)
    }

    /// The ring's pending losses, copied to the readback buffer already.
    async fn read_ring_async(&mut self) -> Result<Vec<f32>> {
        let bytes = pack::f32_bytes(self.pending);
        let ctx = self.program.ctx.clone();
        let ring: Vec<f32> = ctx
            .inner
            .read_async(&self.loss_staging, bytes, |b| {
                bytemuck::cast_slice(b).to_vec()
            })
            .await?;
        self.absorb_ring(ring)
    }

    /// The verdict of a step's error scopes; in a browser, errors of the plan's creation (a
    /// shader the browser refuses) reach the uncaptured-error handler: they explain a failed
    /// submit better.
    async fn awaited_verdict(&self, verdict: impl Future<Output = Result<()>>) -> Result<()> {
        let res = verdict.await;
        #[cfg(target_arch = "wasm32")]
        let res = res.map_err(|e| self.program.ctx.inner.check_alive().err().unwrap_or(e));
        res
    }
}
