//! Adapter choice and the device: one [`GpuContext`] per device, shared by every model on it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::gpu::kernels::Kernels;

/// What to tell a user who has no adapter at all.
pub(crate) const INSTALL_HINT: &str = "install a GPU driver, or a software adapter: on Debian/Ubuntu \
`apt-get install -y mesa-vulkan-drivers libvulkan1` gives lavapipe (Vulkan on the CPU); Mesa's \
llvmpipe (OpenGL) comes with `libegl-mesa0 libgl1-mesa-dri`. Select one with WGPU_BACKEND=vulkan|gl \
or WGPU_ADAPTER_NAME=<substring>; `wgpu-mlp adapters` lists what is found";

/// How to choose the adapter and set up the device.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Backends to consider. `None`: the `WGPU_BACKEND` variable (e.g. `vulkan`, `gl`), else all.
    pub backends: Option<wgpu::Backends>,
    /// Case-insensitive substring of the adapter name. `None`: the `WGPU_ADAPTER_NAME` variable,
    /// else the best adapter (hardware before software).
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
    /// through `subgroupBroadcast` (about 2× on lavapipe). `false` runs the kernels written for
    /// devices without them, to compare or to test them.
    pub subgroups: bool,
    /// The longest any single wait on the GPU may take before it is reported as
    /// [`Error::Timeout`].
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
    /// The adapter's name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// `Vulkan`, `Gl`, `Metal`, …
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
}

/// A device and queue with the crate's compiled kernels. Cheap to clone (shared inside).
#[derive(Clone, Debug)]
pub struct GpuContext {
    pub(crate) inner: Arc<ContextInner>,
}

#[derive(Debug)]
pub(crate) struct ContextInner {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    pub(crate) kernels: Kernels,
    /// Whether the device was opened with subgroup operations (see [`GpuOptions::subgroups`]).
    pub(crate) subgroups: bool,
    /// The longest single wait; changeable at run time (see [`GpuContext::set_timeout`]).
    timeout: Mutex<Duration>,
    /// Set by the device-lost callback; checked before and after every GPU call.
    lost: Arc<Mutex<Option<String>>>,
    /// Errors no error scope caught (they would panic by default).
    uncaptured: Arc<Mutex<Vec<String>>>,
}

fn backends_from(opts: &GpuOptions) -> wgpu::Backends {
    opts.backends
        .or_else(wgpu::Backends::from_env)
        .unwrap_or(wgpu::Backends::all())
}

fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Lists the adapters wgpu finds (for the given backends, or `WGPU_BACKEND`, or all).
pub fn list_adapters(backends: Option<wgpu::Backends>) -> Vec<AdapterSummary> {
    let opts = GpuOptions {
        backends,
        ..GpuOptions::default()
    };
    let backends = backends_from(&opts);
    let instance = new_instance(backends);
    pollster::block_on(instance.enumerate_adapters(backends))
        .iter()
        .map(|a| AdapterSummary::from_info(&a.get_info()))
        .collect()
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
    /// Picks an adapter as [`GpuOptions`] says and opens a device with the adapter's own limits.
    pub fn new(opts: &GpuOptions) -> Result<Self> {
        let backends = backends_from(opts);
        let instance = new_instance(backends);
        let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
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
            let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&needle));
            if adapters.is_empty() {
                return Err(Error::NoAdapter(format!(
                    "no adapter name contains '{name}'; found: {}",
                    names.join(", ")
                )));
            }
        }
        adapters.sort_by_key(|a| rank(&a.get_info()));
        let adapter = adapters.swap_remove(0);
        Self::from_adapter(&adapter, opts)
    }

    fn from_adapter(adapter: &wgpu::Adapter, opts: &GpuOptions) -> Result<Self> {
        let info = adapter.get_info();
        let mut limits = adapter.limits();
        if let Some(cap) = opts.max_storage_binding_size {
            limits.max_storage_buffer_binding_size =
                limits.max_storage_buffer_binding_size.min(cap);
        }
        if let Some(cap) = opts.max_workgroup_invocations {
            // Every kernel's smallest form needs 64 (elementwise, softmax, blocked).
            let cap = cap.max(64);
            limits.max_compute_invocations_per_workgroup =
                limits.max_compute_invocations_per_workgroup.min(cap);
            limits.max_compute_workgroup_size_x = limits.max_compute_workgroup_size_x.min(cap);
            limits.max_compute_workgroup_size_y = limits.max_compute_workgroup_size_y.min(cap);
        }
        let subgroups = opts.subgroups
            && adapter.features().contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size >= 8;
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
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
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

        let scope = ErrorScope::push(&device);
        let kernels = Kernels::new(&device, subgroups);
        scope.pop()?;
        Ok(GpuContext {
            inner: Arc::new(ContextInner {
                device,
                queue,
                info,
                limits,
                kernels,
                subgroups,
                timeout: Mutex::new(opts.timeout),
                lost,
                uncaptured,
            }),
        })
    }

    /// The chosen adapter.
    pub fn adapter(&self) -> AdapterSummary {
        AdapterSummary::from_info(&self.inner.info)
    }

    /// True for software adapters (lavapipe, llvmpipe, WARP), which report a CPU device type.
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
}

impl ContextInner {
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
    pub(crate) fn wait(&self, index: wgpu::SubmissionIndex) -> Result<()> {
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

    /// Maps the first `bytes` of a MAP_READ buffer (after the work writing it was submitted), hands
    /// the bytes to `read`, and unmaps.
    pub(crate) fn read_mapped<T>(
        &self,
        buffer: &wgpu::Buffer,
        bytes: u64,
        index: wgpu::SubmissionIndex,
        read: impl FnOnce(&[u8]) -> T,
    ) -> Result<T> {
        let slice = buffer.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        // On any failure the buffer is unmapped (cancelling a pending map), so the next call can
        // map it again: a timeout must not leave the model unusable.
        if let Err(e) = self.wait_for_map(index, &rx) {
            buffer.unmap();
            return Err(e);
        }
        let out = slice
            .get_mapped_range()
            .map(|view| read(&view))
            .map_err(|e| Error::Gpu(format!("reading the mapped buffer: {e}")));
        buffer.unmap();
        out
    }

    /// Waits for submission `index`, then for the map callback that reports on `rx`.
    fn wait_for_map(
        &self,
        index: wgpu::SubmissionIndex,
        rx: &std::sync::mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
    ) -> Result<()> {
        self.wait(index)?;
        // The callback runs inside some thread's poll: usually ours, but when several threads
        // share the device another poll may be delivering it right now, so wait for it.
        let deadline = std::time::Instant::now() + self.timeout();
        loop {
            match rx.recv_timeout(Duration::from_millis(1)) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => return Err(Error::Gpu(format!("mapping the readback buffer: {e}"))),
                Err(_) if std::time::Instant::now() < deadline => {
                    self.device
                        .poll(wgpu::PollType::Poll)
                        .map_err(|e| Error::Gpu(e.to_string()))?;
                    self.check_alive()?;
                }
                Err(_) => return Err(Error::Timeout(self.timeout())),
            }
        }
    }
}

/// Validation and out-of-memory scopes around a piece of GPU work, turned into a `Result`.
/// (wgpu's scopes are thread-local, so push and pop on the same thread.)
pub(crate) struct ErrorScope {
    oom: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
}

impl ErrorScope {
    pub(crate) fn push(device: &wgpu::Device) -> Self {
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        ErrorScope { oom, validation }
    }

    pub(crate) fn pop(self) -> Result<()> {
        let validation = pollster::block_on(self.validation.pop());
        let oom = pollster::block_on(self.oom.pop());
        if let Some(e) = oom {
            return Err(Error::OutOfMemory(e.to_string()));
        }
        if let Some(e) = validation {
            return Err(Error::Gpu(e.to_string()));
        }
        Ok(())
    }
}

impl GpuContext {
    /// Test hook: loses the device as a driver reset or an unplugged GPU would. It destroys the
    /// device (WebGPU's `GPUDevice.destroy()`) and polls once, so that wgpu reports the loss
    /// through the device-lost callback, as it does at once when the driver reports a real loss
    /// (`destroy` alone defers the report to the next poll). Every later call on this context, or
    /// on a model built on it, returns [`Error::DeviceLost`]; build a new [`GpuContext`] (and
    /// models on it) to carry on.
    #[doc(hidden)]
    pub fn simulate_device_loss(&self) {
        self.inner.device.destroy();
        let _ = self.inner.device.poll(wgpu::PollType::Poll);
    }
}
