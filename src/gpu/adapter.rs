//! Choosing the adapter: [`GpuOptions`], the backends and name filters, the ranking of
//! adapters (hardware first), what a user without one is told, and what is found
//! ([`AdapterSummary`], [`list_adapters`]).

use std::time::Duration;

use crate::error::{Error, Result, escape};

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
    pub(crate) fn from_info(info: &wgpu::AdapterInfo) -> Self {
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

/// The backends to consider: the options', else `WGPU_BACKEND` (an unknown name there is an
/// error naming it), else all.
pub(crate) fn backends_from(opts: &GpuOptions) -> Result<wgpu::Backends> {
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

pub(crate) fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
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

/// The adapter [`GpuOptions`] asks for: of the backends it names (or `WGPU_BACKEND`), the one
/// whose name matches (or `WGPU_ADAPTER_NAME`), else the best by [`rank`].
pub(crate) async fn pick_adapter(opts: &GpuOptions) -> Result<wgpu::Adapter> {
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
    Ok(adapters.swap_remove(0))
}

/// Subgroup operations are used where the device has them with subgroups of at least 8 lanes
/// (the windowed kernel shares x across 8 lanes; lavapipe at 128 bits has subgroups of 4).
pub(crate) fn subgroups_usable(features: wgpu::Features, info: &wgpu::AdapterInfo) -> bool {
    features.contains(wgpu::Features::SUBGROUP) && info.subgroup_min_size >= 8
}
