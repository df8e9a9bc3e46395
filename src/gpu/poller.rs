//! The background poller of native backends: wgpu delivers a buffer mapping only while someone
//! polls the device, so while async readbacks wait, one thread per context polls it (and fails
//! the waits that pass their deadline); with none waiting it sleeps. Browsers need none of this.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::gpu::device_lock::DeviceLock;
use crate::gpu::map_state::MapState;

/// How long one poll waits for work to finish before the deadlines are checked again.
const SLICE: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub(crate) struct Poller {
    shared: Arc<Shared>,
    /// The thread, once started: joined when the poller is dropped.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    device: wgpu::Device,
    /// The context's device lock: each poll holds it (on GL, see `device_lock.rs`).
    lock: DeviceLock,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The waits in flight: their map state and deadline.
    waiting: Vec<(Weak<Mutex<MapState>>, Instant, Duration)>,
    running: bool,
    stop: bool,
}

/// Deregisters a wait when dropped (completed, failed or cancelled).
pub(crate) struct Watch<'a> {
    poller: &'a Poller,
    state: Weak<Mutex<MapState>>,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut s = self
            .poller
            .shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        s.waiting.retain(|(w, ..)| !w.ptr_eq(&self.state));
    }
}

impl Poller {
    pub(crate) fn new(device: wgpu::Device, lock: DeviceLock) -> Self {
        Poller {
            shared: Arc::new(Shared {
                device,
                lock,
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
            }),
            thread: Mutex::new(None),
        }
    }

    /// Polls the device until `state`'s map completes or `timeout` passes (then the wait fails
    /// with [`Error::Timeout`]); the thread starts on first use.
    pub(crate) fn watch(&self, state: &Arc<Mutex<MapState>>, timeout: Duration) -> Watch<'_> {
        let weak = Arc::downgrade(state);
        let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + timeout;
        s.waiting.push((weak.clone(), deadline, timeout));
        if !s.running {
            s.running = true;
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("wgpu-mlp poller".into())
                .spawn(move || run(&shared));
            match spawned {
                Ok(handle) => {
                    let mut t = self.thread.lock().unwrap_or_else(|p| p.into_inner());
                    // A thread that stopped earlier has ended (or is ending): join it.
                    if let Some(old) = t.replace(handle) {
                        let _ = old.join();
                    }
                }
                Err(_) => s.running = false,
            }
        }
        self.shared.wake.notify_all();
        Watch {
            poller: self,
            state: weak,
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        {
            let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            s.stop = true;
            self.shared.wake.notify_all();
        }
        // Joined (within one poll slice), so the thread's device handle is gone before the
        // context's: a thread still polling while the process exits raced the GL driver's
        // teardown (a double free at exit on llvmpipe). Not from the thread itself, which can
        // drop the last context through a waker it calls.
        let handle = self
            .thread
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

fn run(shared: &Shared) {
    loop {
        {
            let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            while s.waiting.is_empty() && !s.stop {
                s = shared.wake.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            if s.stop {
                s.running = false;
                return;
            }
        }
        {
            let _held = shared.lock.hold();
            let _ = shared.device.poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: Some(SLICE),
            });
        }
        let now = Instant::now();
        let s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        for (weak, deadline, timeout) in &s.waiting {
            if *deadline > now {
                continue;
            }
            if let Some(state) = weak.upgrade() {
                let mut m = state.lock().unwrap_or_else(|p| p.into_inner());
                if m.outcome.is_none() {
                    m.outcome = Some(Err(Error::Timeout(*timeout)));
                    if let Some(w) = m.waker.take() {
                        w.wake();
                    }
                }
            }
        }
    }
}
