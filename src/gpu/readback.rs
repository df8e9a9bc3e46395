//! Waiting for the device and reading a buffer back: blocking (native targets) or as a future
//! (every target; on native backends the context's [poller](super::poller) polls meanwhile).
//! A map that fails or times out is always unmapped, so the next call can map the buffer again.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
#[cfg(not(target_arch = "wasm32"))]
use std::time::Duration;

use crate::error::{Error, Result};
use crate::gpu::context::ContextInner;
use crate::gpu::map_state::MapState;

impl ContextInner {
    /// Waits (with the context's timeout) until `index` has finished on the GPU.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn wait(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        let _held = self.hold();
        let res = self.device.poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: Some(self.timeout()),
        });
        match res {
            Ok(_) => self.check_alive(),
            Err(wgpu::PollError::Timeout) => {
                self.check_alive()?;
                Err(Error::Timeout(self.timeout()))
            }
            Err(e) => Err(Error::Gpu(e.to_string())),
        }
    }

    /// Maps the first `bytes` of a MAP_READ buffer (after the work writing it was submitted as
    /// `index`), hands the bytes to `read`, and unmaps; blocking, with the context's timeout.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn read_blocking<T>(
        &self,
        buffer: &wgpu::Buffer,
        bytes: u64,
        index: wgpu::SubmissionIndex,
        read: impl FnOnce(&[u8]) -> T,
    ) -> Result<T> {
        let _held = self.hold();
        let map = MapWait::start(buffer, bytes);
        // The callback runs inside some thread's poll: usually ours, but when several threads
        // share the device another poll may be delivering it right now, so wait for it.
        let waited = self.wait(index).and_then(|()| {
            let deadline = std::time::Instant::now() + self.timeout();
            loop {
                if let Some(r) = map.result() {
                    return r;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(Error::Timeout(self.timeout()));
                }
                self.device
                    .poll(wgpu::PollType::Poll)
                    .map_err(|e| Error::Gpu(e.to_string()))?;
                self.check_alive()?;
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        finish_map(buffer, bytes, waited, read)
    }

    /// [`read_blocking`](Self::read_blocking) as a future: nothing blocks. On native backends
    /// the context's poller polls the device meanwhile and enforces the timeout.
    pub(crate) async fn read_async<T>(
        &self,
        buffer: &wgpu::Buffer,
        bytes: u64,
        read: impl FnOnce(&[u8]) -> T,
    ) -> Result<T> {
        // The lock is held for each device call, never across the await.
        let map = {
            let _held = self.hold();
            MapWait::start(buffer, bytes)
        };
        // Unmaps the buffer if the future is dropped before `finish_map` does.
        let mut pending = PendingMap {
            inner: self,
            buffer: Some(buffer),
        };
        #[cfg(not(target_arch = "wasm32"))]
        let _watch = self.poller.watch(&map.state, self.timeout());
        let waited = (&map).await.and_then(|()| self.check_alive());
        pending.buffer = None;
        let _held = self.hold();
        finish_map(buffer, bytes, waited, read)
    }
}

/// A map started by [`ContextInner::read_async`] whose future may be dropped before it ends
/// (a cancelled `forward_async`): dropped while armed, it aborts the map (or unmaps a finished
/// one), so the buffer can be mapped again and its workspace reused.
struct PendingMap<'a> {
    inner: &'a ContextInner,
    buffer: Option<&'a wgpu::Buffer>,
}

impl Drop for PendingMap<'_> {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer {
            let _held = self.inner.hold();
            buffer.unmap();
        }
    }
}

/// Reads a mapped buffer after its wait, and unmaps it in every case (a failed or cancelled map
/// included, so the next call can map it again: a timeout must not leave the model unusable).
fn finish_map<T>(
    buffer: &wgpu::Buffer,
    bytes: u64,
    waited: Result<()>,
    read: impl FnOnce(&[u8]) -> T,
) -> Result<T> {
    let out = waited.and_then(|()| {
        buffer
            .slice(..bytes)
            .get_mapped_range()
            .map(|view| read(&view))
            .map_err(|e| Error::Gpu(format!("reading the mapped buffer: {e}")))
    });
    buffer.unmap();
    out
}

/// A pending map of a readback buffer; a future of its outcome.
struct MapWait {
    state: Arc<Mutex<MapState>>,
}

impl MapWait {
    fn start(buffer: &wgpu::Buffer, bytes: u64) -> Self {
        let state = Arc::new(Mutex::new(MapState::default()));
        let cb = Arc::clone(&state);
        buffer
            .slice(..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                let mut s = cb.lock().unwrap_or_else(|p| p.into_inner());
                s.outcome =
                    Some(r.map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}"))));
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            });
        MapWait { state }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn result(&self) -> Option<Result<()>> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .outcome
            .take()
    }
}

impl Future for &MapWait {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.outcome.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
