//! Where a forward pass runs: the `device` argument, and the GPU context every model of the
//! process shares (opening a device costs tens of milliseconds and a GPU's memory; one is enough).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use pyo3::prelude::*;
use wgpu_mlp::gpu::{GpuContext, GpuOptions, list_adapters};

use crate::errors::raise;

/// The `device` argument of `forward`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Device {
    /// A hardware GPU if there is one, else the fast CPU path (as `wgpu-mlp infer` decides).
    Auto,
    /// The GPU the context picks (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`), software adapters included.
    Gpu,
    /// The fast CPU path (`CpuMlp`).
    Cpu,
    /// The f64 reference (`cpu::forward`).
    Reference,
}

impl Device {
    /// Parses the argument; anything else is an `InvalidArgumentError` listing the choices.
    pub(crate) fn parse(s: &str) -> PyResult<Self> {
        match s {
            "auto" => Ok(Device::Auto),
            "gpu" => Ok(Device::Gpu),
            "cpu" => Ok(Device::Cpu),
            "cpu-reference" => Ok(Device::Reference),
            _ => Err(raise(
                "InvalidArgumentError",
                format!(
                    "invalid argument: device {:?}: use \"auto\", \"gpu\", \"cpu\" or \
                     \"cpu-reference\"",
                    wgpu_mlp::escape(s)
                ),
            )),
        }
    }

    /// `Auto` resolved: `Gpu` where a hardware adapter exists (decided once per process: the
    /// adapters do not change under a running program), else `Cpu`. A software adapter is slower
    /// than the CPU path on the same cores, so `auto` never picks one; an adapter named in
    /// `WGPU_ADAPTER_NAME` is a request for it, as in the CLI.
    pub(crate) fn resolve(self) -> Self {
        static AUTO: OnceLock<Device> = OnceLock::new();
        if self != Device::Auto {
            return self;
        }
        *AUTO.get_or_init(|| {
            let named = std::env::var("WGPU_ADAPTER_NAME").is_ok_and(|s| !s.is_empty());
            let hardware = list_adapters(None)
                .map(|found| found.iter().any(|a| a.device_type != "Cpu"))
                .unwrap_or(false);
            if named || hardware {
                Device::Gpu
            } else {
                Device::Cpu
            }
        })
    }
}

/// The process's GPU context, opened on first use, and its generation (a new number each time a
/// context replaces a lost one, so models built on the old one know to rebuild). A failure is not
/// cached: the next call tries again (a driver may have been installed, or `WGPU_BACKEND`
/// changed). Called without the GIL: opening a device can take a while.
pub(crate) fn context() -> wgpu_mlp::Result<(GpuContext, u64)> {
    // A panic while the lock was held cannot leave a half-made context: the slot is written last.
    let mut slot = CONTEXT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = slot.as_ref() {
        return Ok((ctx.clone(), GENERATION.load(Ordering::Acquire)));
    }
    let ctx = GpuContext::new(&GpuOptions::default())?;
    *slot = Some(ctx.clone());
    Ok((ctx, GENERATION.load(Ordering::Acquire)))
}

/// The generation of the current context (see [`context`]).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Drops the shared context after its device was lost, so the next GPU call opens a new one and
/// every model rebuilds on it.
pub(crate) fn forget_context() {
    let mut slot = CONTEXT.lock().unwrap_or_else(|p| p.into_inner());
    if slot.take().is_some() {
        GENERATION.fetch_add(1, Ordering::AcqRel);
    }
}

/// Test hook: makes the shared context's device lost, as a driver reset would (returns whether
/// there was one). Every model on it then fails with `DeviceLostError` once and recovers on the
/// next call.
#[pyfunction]
pub(crate) fn _simulate_device_loss() -> bool {
    let slot = CONTEXT.lock().unwrap_or_else(|p| p.into_inner());
    slot.as_ref()
        .map(GpuContext::simulate_device_loss)
        .is_some()
}

static CONTEXT: Mutex<Option<GpuContext>> = Mutex::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);
