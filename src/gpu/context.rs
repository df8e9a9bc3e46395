//! The device: one [`GpuContext`] per device, shared by every model on it. It picks an adapter
//! (or takes the application's device as it is), and owns what every call needs: the compiled
//! kernels, the error scope helper, and the two ways to wait for a readback (blocking, and a
//! future with a background poller on native backends).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::error::{Error, Result, escape};
use crate::gpu::device_lock::{DeviceGuard, DeviceLock};
use crate::gpu::kernels::Kernels;

/// What to tell a user who has no adapter at all.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const INSTALL_HINT: &str = "install a GPU driver, or a software adapter: on Debian/Ubuntu \
`apt-get install -y mesa-vulkan-drivers libvulkan1` gives lavapipe (Vulkan on the CPU); Mesa's \
llvmpipe (OpenGL) comes with `libegl-mesa0 libgl1-mesa-dri`. Select one with WGPU_BACKEND=vulkan|gl \
or WGPU_ADAPTER_NAME=<substring>; `wgpu-mlp adapters` lists what is found";
/// In a browser the adapter is the browser's to grant.
#[cfg(target_arch = "wasm32")]
pub(crate) const INSTALL_HINT: &str = "use a browser with WebGPU enabled (Chrome or Edge 113+, \
Firefox 141+, Safari 26+; on Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu), on a \
secure page (https or localhost)";

/// How to choose the adapter and set up the device.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Backends to consider. `None`: the `WGPU_BACKEND` variable (e.g. `vulkan`, `gl`), else all.
    pub backends: Option<wgpu::Backends>,
    /// Case-insensitive substring of the adapter's name, backend or driver (`nvidia`, `vulkan`,
    /// `llvmpipe`; lavapipe and llvmpipe both call themselves "llvmpipe", so `vulkan` or `gl`
    /// tells them apart). `None`: the `WGPU_ADAPTER_NAME` variable, else the best adapter
    /// (hardware before software). An adapter name that matches nothing is an error.
    pub adapter_name: Option<String>,
    /// Caps the device's largest storage binding (bytes) below the adapter's own limit. Batches
    /// whose activations exceed it run in chunks; useful to share a device, and to test chunking.
    pub max_storage_binding_size: Option<u64>,
    /// Caps the invocations per workgroup (in all, and along x and y) below the adapter's own
    /// limits, as on downlevel devices: [`LinearKernel::Auto`](crate::gpu::LinearKernel::Auto)
    /// then leaves out the kernels that need more, and naming one is an error. At least 64.
    pub max_workgroup_invocations: Option<u32>,
    /// Use subgroup operations where the adapter has them with subgroups of at least 8
    /// invocations (default `true`): the windowed Linear kernel then shares each row of x
    /// through `subgroupBroadcast` (much faster on lavapipe: docs/KERNELS.md). `false` runs the
    /// kernels written for devices without them, to compare or to test them.
    pub subgroups: bool,
    /// The longest any single wait on the GPU may take before it is reported as
    /// [`Error::Timeout`] (native backends).
    pub timeout: Duration,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            backends: None,
            adapter_name: None,
            max_storage_binding_size: None,
            max_workgroup_invocations: None,
            subgroups: true,
            timeout: Duration::from_secs(120),
        }
    }
}

/// A description of one adapter, as `wgpu-mlp adapters` prints it.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterSummary {
    /// The adapter's name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)` (empty in browsers).
    pub name: String,
    /// `Vulkan`, `Gl`, `Metal`, `BrowserWebGpu`, …
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `Cpu`, …
    pub device_type: String,
    /// Driver name and version, when the backend reports them.
    pub driver: String,
}

impl AdapterSummary {
    fn from_info(info: &wgpu::AdapterInfo) -> Self {
        let driver = [info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver,
        }
    }

    /// Whether `needle` (lower case) is part of the name, backend or driver.
    fn matches(&self, needle: &str) -> bool {
        [&self.name, &self.backend, &self.driver]
            .iter()
            .any(|s| s.to_lowercase().contains(needle))
    }

    /// `name (backend, driver)`, for messages.
    fn label(&self) -> String {
        format!("{} ({}, {})", self.name, self.backend, self.driver)
    }
}

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
    poller: crate::gpu::poller::Poller,
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

/// The backends to consider: the options', else `WGPU_BACKEND` (an unknown name there is an
/// error naming it), else all.
fn backends_from(opts: &GpuOptions) -> Result<wgpu::Backends> {
    if let Some(b) = opts.backends {
        return Ok(b);
    }
    let Ok(env) = std::env::var("WGPU_BACKEND") else {
        return Ok(wgpu::Backends::all());
    };
    let known = [
        "vulkan", "vk", "dx12", "d3d12", "metal", "mtl", "opengl", "gles", "gl", "webgpu",
    ];
    for name in env.split(',').map(|s| s.trim().to_lowercase()) {
        if !known.contains(&name.as_str()) {
            return Err(Error::NoAdapter(format!(
                "WGPU_BACKEND={:?}: '{}' is not a backend; use vulkan, gl, metal, dx12 or webgpu \
                 (comma separated)",
                escape(&env),
                escape(&name)
            )));
        }
    }
    Ok(wgpu::Backends::from_comma_list(&env))
}

fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Lists the adapters wgpu finds (for the given backends, or `WGPU_BACKEND`, or all).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters(backends: Option<wgpu::Backends>) -> Result<Vec<AdapterSummary>> {
    let backends = backends_from(&GpuOptions {
        backends,
        ..GpuOptions::default()
    })?;
    let instance = new_instance(backends);
    Ok(pollster::block_on(instance.enumerate_adapters(backends))
        .iter()
        .map(|a| AdapterSummary::from_info(&a.get_info()))
        .collect())
}

/// Hardware first, then virtual, then CPU adapters; among CPU adapters Vulkan (lavapipe) before GL
/// (llvmpipe). `PowerPreference` alone does not sort: enumeration order would decide.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let ty = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 1,
        _ => 2,
    };
    (ty, backend)
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
        let backends = backends_from(opts)?;
        let instance = new_instance(backends);
        let mut adapters = instance.enumerate_adapters(backends).await;
        if adapters.is_empty() {
            // Browsers list no adapters; ask for one.
            if let Ok(a) = instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    ..Default::default()
                })
                .await
            {
                adapters.push(a);
            }
        }
        let wanted = opts
            .adapter_name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .filter(|s| !s.is_empty());
        if adapters.is_empty() {
            return Err(Error::NoAdapter(format!(
                "wgpu found no adapter for backends {backends:?}; {INSTALL_HINT}"
            )));
        }
        if let Some(name) = &wanted {
            let needle = name.to_lowercase();
            let found: Vec<String> = adapters
                .iter()
                .map(|a| AdapterSummary::from_info(&a.get_info()).label())
                .collect();
            adapters.retain(|a| AdapterSummary::from_info(&a.get_info()).matches(&needle));
            if adapters.is_empty() {
                return Err(Error::NoAdapter(format!(
                    "no adapter's name, backend or driver contains '{}'; found: {}",
                    escape(name),
                    found.join("; ")
                )));
            }
        }
        adapters.sort_by_key(|a| rank(&a.get_info()));
        let adapter = adapters.swap_remove(0);
        Self::open(&adapter, opts).await
    }

    async fn open(adapter: &wgpu::Adapter, opts: &GpuOptions) -> Result<Self> {
        let info = adapter.get_info();
        let mut limits = adapter.limits();
        if let Some(cap) = opts.max_storage_binding_size {
            limits.max_storage_buffer_binding_size =
                limits.max_storage_buffer_binding_size.min(cap);
        }
        if let Some(cap) = opts.max_workgroup_invocations {
            // Every kernel's smallest form needs 64 (elementwise, row, blocked).
            let cap = cap.max(64);
            limits.max_compute_invocations_per_workgroup =
                limits.max_compute_invocations_per_workgroup.min(cap);
            limits.max_compute_workgroup_size_x = limits.max_compute_workgroup_size_x.min(cap);
            limits.max_compute_workgroup_size_y = limits.max_compute_workgroup_size_y.min(cap);
        }
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

/// Subgroup operations are used where the device has them with subgroups of at least 8 lanes
/// (the windowed kernel shares x across 8 lanes; lavapipe at 128 bits has subgroups of 4).
fn subgroups_usable(features: wgpu::Features, info: &wgpu::AdapterInfo) -> bool {
    features.contains(wgpu::Features::SUBGROUP) && info.subgroup_min_size >= 8
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
        #[cfg(not(target_arch = "wasm32"))]
        let _watch = self.poller.watch(&map.state, self.timeout());
        let waited = (&map).await.and_then(|()| self.check_alive());
        let _held = self.hold();
        finish_map(buffer, bytes, waited, read)
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

/// The state of one `map_async`: its outcome once the callback ran, and who to wake.
#[derive(Debug, Default)]
pub(crate) struct MapState {
    pub(crate) outcome: Option<Result<()>>,
    pub(crate) waker: Option<Waker>,
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

/// The limits below which no kernel of this crate can run on an application's device, each with
/// what to ask for: checked once, so that a too-small device is one clear error rather than a
/// wgpu validation error from the first model (after which its cached layouts are invalid).
fn check_device_limits(have: &wgpu::Limits, adapter: &wgpu::Limits) -> Result<()> {
    let needs = [
        (
            "max_storage_buffers_per_shader_stage",
            have.max_storage_buffers_per_shader_stage,
            crate::gpu::kernels::storage_buffers_needed(),
            adapter.max_storage_buffers_per_shader_stage,
        ),
        (
            "max_compute_invocations_per_workgroup",
            have.max_compute_invocations_per_workgroup,
            64,
            adapter.max_compute_invocations_per_workgroup,
        ),
        (
            "max_compute_workgroup_size_x",
            have.max_compute_workgroup_size_x,
            64,
            adapter.max_compute_workgroup_size_x,
        ),
    ];
    for (name, has, need, offered) in needs {
        if has < need {
            return Err(Error::invalid(format!(
                "the device was created with {name} = {has}; wgpu-mlp's kernels need at least \
                 {need} (the adapter offers {offered}): create it with \
                 wgpu::Limits {{ {name}: {need}, .. }} or with the adapter's limits"
            )));
        }
    }
    Ok(())
}

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
/// [`ContextInner::check_alive`] returns them. The awaited path
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
