//! A value made on first use and shared after: the GPU and CPU forms of a model are built only
//! when a forward pass first asks for them, and then used by every thread at once.

use std::sync::{Arc, Mutex};

/// Holds `Arc<T>` once made. The lock is held only while the value is looked up or made, never
/// during a forward pass, so concurrent passes on one model run side by side.
pub(crate) struct Slot<T>(Mutex<Option<Arc<T>>>);

impl<T> Slot<T> {
    /// An empty slot.
    pub(crate) fn new() -> Self {
        Slot(Mutex::new(None))
    }

    /// The value, made by `make` if there is none yet. A failure leaves the slot empty, so the
    /// next call tries again.
    pub(crate) fn get_or_try(
        &self,
        make: impl FnOnce() -> wgpu_mlp::Result<T>,
    ) -> wgpu_mlp::Result<Arc<T>> {
        self.get_valid_or_try(|_| true, make)
    }

    /// [`get_or_try`](Self::get_or_try), also remaking a value that `valid` rejects (a model on a
    /// device that has since been replaced).
    pub(crate) fn get_valid_or_try(
        &self,
        valid: impl FnOnce(&T) -> bool,
        make: impl FnOnce() -> wgpu_mlp::Result<T>,
    ) -> wgpu_mlp::Result<Arc<T>> {
        // A thread that panicked while holding the lock could only have left the slot empty or
        // full, both valid: the poison carries no information here.
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = slot.as_ref()
            && valid(v)
        {
            return Ok(Arc::clone(v));
        }
        let v = Arc::new(make()?);
        *slot = Some(Arc::clone(&v));
        Ok(v)
    }
}
