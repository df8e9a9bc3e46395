//! The device lock: on a GL context every call into the device runs under it.
//!
//! Why: wgpu-hal's GL backend has one GL context per device, guarded by a lock that gives up
//! and **panics** ("Could not lock adapter context. This is most-likely a deadlock.") when it
//! waits longer than a few seconds. Some GL calls hold that context far longer on a slow driver:
//! compiling a large shader on llvmpipe with Mesa's shader cache off, or a submit, since
//! llvmpipe runs a compute dispatch before the call returns. Another thread touching the same
//! device meanwhile (creating a pipeline, dropping a buffer, polling) then panicked: 2 CI runs in
//! 3 on a slower machine (issue 24). Our own lock waits without a timeout, so every thread using
//! one [`GpuContext`](super::GpuContext) takes its turn instead.
//!
//! It is reentrant (entry points nest: a forward pass waits on a readback that polls), held
//! around whole calls (pipeline creation, upload, record, submit, poll, map, read), never across
//! an `await`, and around the release of device objects ([`Held`]). Other backends are
//! thread-safe and get no lock: concurrent calls there stay concurrent. In a browser there is
//! one thread and no lock.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
#[cfg(not(target_arch = "wasm32"))]
use std::sync::Arc;

/// The lock of one device: present on GL, absent elsewhere. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub(crate) struct DeviceLock {
    #[cfg(not(target_arch = "wasm32"))]
    inner: Option<Arc<parking_lot::ReentrantMutex<()>>>,
}

/// Proof that the device lock is held (nothing when the device needs none).
pub(crate) struct DeviceGuard<'a> {
    #[cfg(not(target_arch = "wasm32"))]
    _guard: Option<parking_lot::ReentrantMutexGuard<'a, ()>>,
    #[cfg(target_arch = "wasm32")]
    _life: std::marker::PhantomData<&'a ()>,
}

impl DeviceLock {
    /// The lock a device of this backend needs: a real one for GL only.
    pub(crate) fn for_backend(backend: wgpu::Backend) -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        {
            DeviceLock {
                inner: (backend == wgpu::Backend::Gl)
                    .then(|| Arc::new(parking_lot::ReentrantMutex::new(()))),
            }
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = backend;
            DeviceLock {}
        }
    }

    /// Waits (without a timeout) until this thread holds the lock.
    pub(crate) fn hold(&self) -> DeviceGuard<'_> {
        DeviceGuard {
            #[cfg(not(target_arch = "wasm32"))]
            _guard: self.inner.as_ref().map(|m| m.lock()),
            #[cfg(target_arch = "wasm32")]
            _life: std::marker::PhantomData,
        }
    }
}

/// A value holding device objects (buffers, textures, bind groups) that are released under the
/// device lock when it is dropped, wherever that happens: a dropped model, a workspace the pool
/// does not keep, a future cancelled mid-flight.
#[derive(Debug)]
pub(crate) struct Held<T> {
    value: ManuallyDrop<T>,
    lock: DeviceLock,
}

impl<T> Held<T> {
    pub(crate) fn new(value: T, lock: DeviceLock) -> Self {
        Held {
            value: ManuallyDrop::new(value),
            lock,
        }
    }
}

impl<T> Deref for Held<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Held<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T> Drop for Held<T> {
    fn drop(&mut self) {
        let _held = self.lock.hold();
        // SAFETY: `value` is dropped exactly once, here, and never used after.
        unsafe { ManuallyDrop::drop(&mut self.value) };
    }
}
