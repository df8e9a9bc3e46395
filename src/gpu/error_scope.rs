//! Error scopes: validation and out-of-memory errors of a piece of GPU work turned into a
//! [`Result`] (native targets), and what a browser, whose verdicts arrive asynchronously, does
//! instead.

use std::future::Future;

use crate::error::{Error, Result};

/// Two popped scopes' verdict as a `Result`: out of memory wins over validation (an allocation
/// that failed also makes the commands that use it invalid).
async fn verdict(
    oom: impl Future<Output = Option<wgpu::Error>>,
    validation: impl Future<Output = Option<wgpu::Error>>,
) -> Result<()> {
    let validation = validation.await;
    if let Some(e) = oom.await {
        return Err(Error::OutOfMemory(e.to_string()));
    }
    if let Some(e) = validation {
        return Err(Error::Gpu(e.to_string()));
    }
    Ok(())
}

/// Validation and out-of-memory scopes around a piece of GPU work, turned into a `Result`.
/// (wgpu's scopes are thread-local: push and pop on the same thread, before any await.)
#[cfg(not(target_arch = "wasm32"))]
pub(crate) struct ErrorScope {
    oom: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
}

#[cfg(not(target_arch = "wasm32"))]
impl ErrorScope {
    pub(crate) fn push(device: &wgpu::Device) -> Self {
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        ErrorScope { oom, validation }
    }

    /// Pops both scopes now and returns a future of their verdict (ready at once on native
    /// backends).
    pub(crate) fn pop_async(self) -> impl Future<Output = Result<()>> {
        // Last pushed, first popped.
        let validation = self.validation.pop();
        verdict(self.oom.pop(), validation)
    }

    /// [`pop_async`](Self::pop_async), blocking.
    pub(crate) fn pop(self) -> Result<()> {
        pollster::block_on(self.pop_async())
    }

    /// The scopes of a path that awaits their verdict (the same as [`push`](Self::push) here;
    /// in a browser only these are real scopes).
    pub(crate) fn push_awaited(device: &wgpu::Device) -> Self {
        Self::push(device)
    }
}

/// In a browser a scope's verdict arrives asynchronously. The synchronous paths (uploading a
/// model, [`GpuMlp::encode`](crate::gpu::GpuMlp::encode)) cannot wait for it: they push no
/// scope, so their errors reach the device's uncaptured-error handler and the next call's
/// `ContextInner::check_alive` returns them. The awaited path
/// ([`GpuMlp::forward_async`](crate::gpu::GpuMlp::forward_async)) pushes real scopes with
/// [`push_awaited`](Self::push_awaited) and awaits their verdict.
#[cfg(target_arch = "wasm32")]
pub(crate) struct ErrorScope(Option<(wgpu::ErrorScopeGuard, wgpu::ErrorScopeGuard)>);

#[cfg(target_arch = "wasm32")]
impl ErrorScope {
    pub(crate) fn push(_: &wgpu::Device) -> Self {
        ErrorScope(None)
    }

    /// Scopes whose verdict the caller awaits with [`pop_async`](Self::pop_async).
    pub(crate) fn push_awaited(device: &wgpu::Device) -> Self {
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        ErrorScope(Some((oom, validation)))
    }

    pub(crate) fn pop_async(self) -> impl Future<Output = Result<()>> {
        let popped = self.0.map(|(oom, validation)| {
            let validation = validation.pop();
            (oom.pop(), validation)
        });
        async move {
            match popped {
                Some((oom, validation)) => verdict(oom, validation).await,
                None => Ok(()),
            }
        }
    }

    pub(crate) fn pop(self) -> Result<()> {
        Ok(())
    }
}
