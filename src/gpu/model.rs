//! [`GpuMlp`]: a model whose weights live on the device. Made once: the model is
//! [planned](super::plan) and the plan uploaded as a [`Program`]; every call then takes a
//! workspace, replays the dispatches for its batch size and reads the result back (`run.rs`,
//! where every entry point that runs the model is).

use std::sync::Mutex;

use crate::error::Result;
use crate::gpu::context::GpuContext;
use crate::gpu::device_lock::Held;
use crate::gpu::kernels::linear::LinearKernel;
use crate::gpu::options::{GpuMlpOptions, KernelMode};
use crate::gpu::plan::{self, DeviceCaps};
use crate::gpu::program::Program;
use crate::gpu::workspace::Workspace;
use crate::model::Mlp;
use crate::model::steps::{Step, steps};

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
    /// Released under the device lock when the model is dropped.
    pub(crate) program: Held<Program>,
    mode: KernelMode,
    /// Idle workspaces, ready for the next call.
    pool: Mutex<Vec<Held<Workspace>>>,
    /// The workspace of [`prepare`](Self::prepare) / [`run_prepared`](Self::run_prepared).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) prepared: Mutex<Option<Held<Workspace>>>,
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
        let caps = DeviceCaps::of(ctx);
        let plan = plan::plan(steps, n_in, &caps, options)?;
        let _held = inner.hold();
        Ok(GpuMlp {
            program: Held::new(Program::upload(ctx, plan)?, inner.lock.clone()),
            mode: options.mode,
            pool: Mutex::new(Vec::new()),
            #[cfg(not(target_arch = "wasm32"))]
            prepared: Mutex::new(None),
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.program.plan.n_in
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.program.plan.n_out
    }

    /// The kernels this model runs with.
    pub fn mode(&self) -> KernelMode {
        self.mode
    }

    /// The most rows one submit handles; larger batches run in chunks of this size.
    pub fn chunk_rows(&self) -> usize {
        self.program.plan.chunk_rows
    }

    /// The kernel each Linear layer runs for a batch of `batch` rows (with
    /// [`LinearKernel::Auto`] this depends on the adapter, the layer's shape and the batch).
    pub fn linear_kernels(&self, batch: usize) -> Vec<LinearKernel> {
        let rows = batch.clamp(1, self.chunk_rows());
        let passes = &self.program.plan.passes;
        passes
            .iter()
            .filter_map(|p| p.kernel.linear_kernel(rows))
            .collect()
    }

    /// The context this model lives on.
    pub fn context(&self) -> &GpuContext {
        &self.program.ctx
    }

    /// How many device buffers and bind groups the model's workspaces have allocated so far.
    /// Once the largest batch has been seen (by each concurrent caller) this stays constant:
    /// later calls allocate nothing.
    pub fn workspace_allocations(&self) -> u64 {
        self.program.allocations()
    }

    /// A workspace of at least `rows` rows: an idle one, grown if needed, or a new one.
    pub(crate) fn take_workspace(&self, rows: usize) -> Held<Workspace> {
        let idle = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(ws) if ws.capacity_rows >= rows => ws,
            _ => self.new_workspace(rows),
        }
    }

    /// A new workspace of `rows` rows, released under the device lock wherever it is dropped.
    pub(crate) fn new_workspace(&self, rows: usize) -> Held<Workspace> {
        let inner = &self.program.ctx.inner;
        let _held = inner.hold();
        Held::new(Workspace::new(&self.program, rows), inner.lock.clone())
    }

    /// Returns a workspace to the pool.
    pub(crate) fn give_workspace(&self, ws: Held<Workspace>) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < POOL {
            pool.push(ws);
        }
    }

    /// The rows one call's workspace needs for a batch.
    pub(crate) fn workspace_rows(&self, batch: usize) -> usize {
        batch.clamp(1, self.chunk_rows())
    }
}
