//! The device: one [`GpuContext`] per device, shared by every model on it. It opens a device on
//! the adapter `adapter.rs` picks (or takes the application's device as it is), and owns what
//! every call needs: the compiled kernels, the device-lost and uncaptured-error state, the wait
//! timeout and the background poller. Waiting and reading back are in `readback.rs`, error
//! scopes in `error_scope.rs`, the limits in `limits.rs`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
#[cfg(target_arch = "wasm32")]
use crate::gpu::adapter::INSTALL_HINT;
use crate::gpu::adapter::{AdapterSummary, GpuOptions, pick_adapter, subgroups_usable};
use crate::gpu::device_lock::{DeviceGuard, DeviceLock};
use crate::gpu::kernels::Kernels;
use crate::gpu::limits::{capped, check_device_limits};

/// A device and queue with the crate's compiled kernels. Cheap to clone (shared inside).
#[derive(Clone, Debug)]
pub struct GpuContext {
    pub(crate) inner: Arc<ContextInner>,
}

#[derive(Debug)]
pub(crate) struct ContextInner {
    /// Polls the device while async readbacks wait (native backends). First, so that it is
    /// dropped (its thread joined) before anything else: nothing else uses the device then.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) poller: crate::gpu::poller::Poller,
    /// Held around every call into the device on GL (see [`DeviceLock`]).
    pub(crate) lock: DeviceLock,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    pub(crate) kernels: Kernels,
    /// Whether the kernels use subgroup operations (see [`GpuOptions::subgroups`]).
    pub(crate) subgroups: bool,
    /// The longest single wait; changeable at run time (see [`GpuContext::set_timeout`]).
    timeout: Mutex<Duration>,
    /// Set by the device-lost callback; checked before and after every GPU call.
    lost: Arc<Mutex<Option<String>>>,
    /// Errors no error scope caught (they would panic by default).
    uncaptured: Arc<Mutex<Vec<String>>>,
}

impl GpuContext {
    /// Picks an adapter as [`GpuOptions`] says and opens a device with the adapter's own limits
    /// (blocking; native backends). See [`new_async`](Self::new_async).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(opts: &GpuOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(opts))
    }

    /// [`new`](Self::new) as a future: the way to open a device in a browser.
    pub async fn new_async(opts: &GpuOptions) -> Result<Self> {
        // wgpu's browser backend panics outside a window or a dedicated worker; ask first.
        #[cfg(target_arch = "wasm32")]
        if !wgpu::util::is_browser_webgpu_supported().await {
            return Err(Error::NoAdapter(format!(
                "the browser grants no WebGPU adapter here (WebGPU is off or blocked for this \
                 GPU, or this is not a window or a dedicated worker): {INSTALL_HINT}"
            )));
        }
        let adapter = pick_adapter(opts).await?;
        Self::open(&adapter, opts).await
    }

    async fn open(adapter: &wgpu::Adapter, opts: &GpuOptions) -> Result<Self> {
        let info = adapter.get_info();
        let limits = capped(adapter.limits(), opts);
        let subgroups = opts.subgroups && subgroups_usable(adapter.features(), &info);
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgpu-mlp"),
            required_features: if subgroups {
                wgpu::Features::SUBGROUP
            } else {
                wgpu::Features::empty()
            },
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = adapter
            .request_device(&desc)
            .await
            .map_err(|e| Error::Gpu(format!("request_device on {}: {e}", info.name)))?;
        let lost = Arc::new(Mutex::new(None));
        let lost_cb = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = lost_cb.lock() {
                *l = Some(format!("{reason:?}: {msg}"));
            }
        });
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let unc_cb = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut u) = unc_cb.lock() {
                u.push(e.to_string());
            }
        }));
        Ok(Self::assemble(
            device,
            queue,
            info,
            limits,
            subgroups,
            opts.timeout,
            lost,
            uncaptured,
        ))
    }

    /// The application's device, as it is: its limits and features (no second device is
    /// opened, nothing is requested). Kernel choice follows what it has: subgroup operations
    /// are used if the device was created with [`wgpu::Features::SUBGROUP`] and the adapter's
    /// subgroups have at least 8 invocations; the device's limits decide which kernels fit and
    /// how large a chunk of rows is.
    ///
    /// The application keeps its device-lost callback and uncaptured-error handler (this crate
    /// installs none on a device it did not open): errors of this crate's work are still caught
    /// by error scopes around each call and returned as [`Error`]s. Waits use the default
    /// timeout ([`set_timeout`](Self::set_timeout) changes it).
    pub fn from_wgpu(
        adapter: &wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Result<GpuContext> {
        let info = adapter.get_info();
        let limits = device.limits();
        check_device_limits(&limits, &adapter.limits())?;
        let subgroups = subgroups_usable(device.features(), &info);
        let lost = Arc::new(Mutex::new(None));
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let timeout = GpuOptions::default().timeout;
        let ctx = Self::assemble(
            device, queue, info, limits, subgroups, timeout, lost, uncaptured,
        );
        ctx.inner.check_alive()?;
        Ok(ctx)
    }

    #[allow(clippy::too_many_arguments)]
    // In a browser wgpu's handles are !Send (one thread); one Arc keeps one code path.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    fn assemble(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        limits: wgpu::Limits,
        subgroups: bool,
        timeout: Duration,
        lost: Arc<Mutex<Option<String>>>,
        uncaptured: Arc<Mutex<Vec<String>>>,
    ) -> Self {
        let lock = DeviceLock::for_backend(info.backend);
        GpuContext {
            inner: Arc::new(ContextInner {
                #[cfg(not(target_arch = "wasm32"))]
                poller: crate::gpu::poller::Poller::new(device.clone(), lock.clone()),
                lock,
                device,
                queue,
                info,
                limits,
                kernels: Kernels::default(),
                subgroups,
                timeout: Mutex::new(timeout),
                lost,
                uncaptured,
            }),
        }
    }

    /// The chosen adapter.
    pub fn adapter(&self) -> AdapterSummary {
        AdapterSummary::from_info(&self.inner.info)
    }

    /// What the backend reports about the adapter: vendor and device ids, subgroup sizes, …
    /// (in a browser, what WebGPU exposes: often no name).
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// True for software adapters (lavapipe, llvmpipe, WARP), which report a CPU device type
    /// (in a browser: the adapter WebGPU marks as a fallback adapter).
    pub fn is_software(&self) -> bool {
        self.inner.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Whether the kernels use subgroup operations on this device ([`GpuOptions::subgroups`] and
    /// an adapter with subgroups of at least 8 invocations).
    pub fn uses_subgroups(&self) -> bool {
        self.inner.subgroups
    }

    /// Changes the longest single wait on the GPU (see [`GpuOptions::timeout`]) for every model on
    /// this context.
    pub fn set_timeout(&self, timeout: Duration) {
        *self.inner.timeout.lock().unwrap_or_else(|p| p.into_inner()) = timeout;
    }

    /// The device's limits (the adapter's own, less any cap from [`GpuOptions`]).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// The device (for an application that records its own work around this crate's).
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// Runs `f` under this context's device lock. On a GL device (llvmpipe, ANGLE, …) every
    /// call this crate makes into the device holds it, because wgpu's GL backend panics when a
    /// thread waits more than a few seconds for its GL context while another thread compiles a
    /// large shader or runs a long submit. An application that calls into [`device`](Self::device)
    /// or [`queue`](Self::queue) itself while other threads use this context should do so here.
    /// On other backends there is no lock and `f` just runs.
    pub fn serialized<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held = self.inner.hold();
        f()
    }

    /// Test hook: loses the device as a driver reset or an unplugged GPU would. It destroys the
    /// device (WebGPU's `GPUDevice.destroy()`) and polls once, so that wgpu reports the loss
    /// through the device-lost callback, as it does at once when the driver reports a real loss
    /// (`destroy` alone defers the report to the next poll). Every later call on this context, or
    /// on a model built on it, returns [`Error::DeviceLost`]; build a new [`GpuContext`] (and
    /// models on it) to carry on.
    #[doc(hidden)]
    pub fn simulate_device_loss(&self) {
        let _held = self.inner.hold();
        self.inner.device.destroy();
        let _ = self.inner.device.poll(wgpu::PollType::Poll);
    }
}

impl ContextInner {
    /// Holds the device lock (see [`DeviceLock`]) until the guard is dropped.
    pub(crate) fn hold(&self) -> DeviceGuard<'_> {
        self.lock.hold()
    }

    /// The longest single wait (native backends: a browser's readbacks are not timed out).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn timeout(&self) -> Duration {
        *self.timeout.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails if the device was lost or an error escaped every scope.
    pub(crate) fn check_alive(&self) -> Result<()> {
        if let Some(msg) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(Error::DeviceLost(msg));
        }
        let escaped: Vec<String> = self
            .uncaptured
            .lock()
            .map(|mut u| u.drain(..).collect())
            .unwrap_or_default();
        if !escaped.is_empty() {
            return Err(Error::Gpu(escaped.join("; ")));
        }
        Ok(())
    }
}
