//! The compiled WGSL kernels of one device: shader modules and bind-group layouts built once per
//! context, pipelines built once per (kernel, specialisation) and cached.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::activation::Activation;

const ACTIVATION_WGSL: &str = include_str!("../../shaders/activation.wgsl");
const LINEAR_COMMON_WGSL: &str = include_str!("../../shaders/linear_common.wgsl");
const LINEAR_WGSL: &str = include_str!("../../shaders/linear.wgsl");
const LINEAR_NO_SUBGROUP_WGSL: &str = include_str!("../../shaders/linear_no_subgroup.wgsl");
const LINEAR_SUBGROUP_WGSL: &str = include_str!("../../shaders/linear_subgroup.wgsl");
const LINEAR_WEIGHTS_F32_WGSL: &str = include_str!("../../shaders/linear_weights_f32.wgsl");
const LINEAR_WEIGHTS_F16_WGSL: &str = include_str!("../../shaders/linear_weights_f16.wgsl");
const LINEAR_WIDE_WGSL: &str = include_str!("../../shaders/linear_wide.wgsl");
const LINEAR_TILED_WGSL: &str = include_str!("../../shaders/linear_tiled.wgsl");
const LINEAR_GEMV_WGSL: &str = include_str!("../../shaders/linear_gemv.wgsl");
const ELEMENTWISE_WGSL: &str = include_str!("../../shaders/elementwise.wgsl");
const SOFTMAX_WGSL: &str = include_str!("../../shaders/softmax.wgsl");

/// Invocations per workgroup of linear.wgsl (a row of them, one per 4 output columns).
pub(crate) const LINEAR_WG: u32 = 64;

/// linear.wgsl's `WG` for a layer with `n4` vec4 columns: 64, or the smallest power of two of at
/// least 8 that covers them. A software adapter runs every invocation of a workgroup, useful or
/// not, so a 10-output layer (3 columns) in a 64-wide group would compute 61 clamped copies.
pub(crate) fn linear_wg(n4: usize) -> u32 {
    (n4.next_power_of_two() as u32).clamp(8, LINEAR_WG)
}
/// linear.wgsl's `WG` at which a row's outputs (at most 32) fit one subgroup (devices with
/// subgroups have at least 8 invocations per subgroup), so a softmax can be fused.
pub(crate) const LINEAR_SUBGROUP_WG: u32 = 8;
/// Rows and columns one linear.wgsl invocation computes; the workgroup shares the rows.
pub(crate) const LINEAR_BLOCK: (u32, u32) = (16, 4);
/// Smaller row blocks of linear.wgsl, for small batches (a GEMV needs one row, not 16 copies)
/// and for windows of fewer than 16 rows (inputs wider than 1,024 features).
pub(crate) const LINEAR_SMALL_ROWS: [u32; 3] = [1, 4, 8];
/// Bytes of x that linear.wgsl sees through its uniform window (`array<vec4<f32>, 4096>`).
pub(crate) const LINEAR_WINDOW_BYTES: u64 = 65536;
/// linear.wgsl's `HALF` when windows are not paired.
pub(crate) const NO_PAIR: u32 = u32::MAX;
/// Workgroup shape of linear_wide.wgsl: 8×8 invocations of 4 rows × 8 columns each.
pub(crate) const WIDE_WG: (u32, u32) = (8, 8);
/// Rows and columns one linear_wide.wgsl invocation computes.
pub(crate) const WIDE_BLOCK: (u32, u32) = (4, 8);
/// linear_tiled.wgsl's `TILE` values: a TILE × TILE workgroup computes an 8·TILE-square output
/// tile (64 or 128).
pub(crate) const TILED_SIDES: [u32; 2] = [8, 16];
/// linear_tiled.wgsl's `STAGES` for a `TILE`: the 64 tile double-buffers its slabs (8 KiB of
/// workgroup memory, inside WebGPU's default 16 KiB); the 128 tile does not (on an H100 its
/// 32 KiB double buffer ran gemm 4096 at 5.2 ms against 4.2 ms single-buffered).
pub(crate) fn tiled_stages(side: u32) -> u32 {
    if side <= 8 { 2 } else { 1 }
}
/// Rows (and columns) the packed weight of a buffer-weight layer is padded to, so every
/// linear_tiled.wgsl slab load is in bounds: k steps of at most 16, column tiles of at most 128.
pub(crate) const TILED_PAD: (usize, usize) = (16, 128);
/// linear_gemv.wgsl's shape: vec4 columns per workgroup, k slices per workgroup, rows per
/// workgroup.
pub(crate) const GEMV: (u32, u32, u32) = (8, 32, 4);
/// Invocations per workgroup of the elementwise kernels (fixed in elementwise.wgsl).
pub(crate) const ELEMENTWISE_WG: u32 = 64;

/// Which Linear kernel, with its shape constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Variant {
    /// linear.wgsl: `rows` is its `ROWS` (rows per invocation), `half` its `HALF` (rows per
    /// window when two windows are paired, else `NO_PAIR`), `wg` its `WG` (see [`linear_wg`]);
    /// `f16`: the weight texture is rgba16float (else rgba32float); `softmax`: the row softmax
    /// is applied in the store step (`SOFTMAX`; only with subgroups and `wg` =
    /// [`LINEAR_SUBGROUP_WG`]).
    Window {
        rows: u32,
        half: u32,
        wg: u32,
        f16: bool,
        softmax: bool,
    },
    /// linear_wide.wgsl (4×8 register blocks, storage buffers, no workgroup memory).
    Blocked,
    /// linear_tiled.wgsl with this `TILE`.
    Tiled(u32),
    /// linear_gemv.wgsl.
    Gemv,
}

impl Variant {
    /// Whether the weight lives in a storage buffer (else in a texture).
    pub(crate) fn buffer_weight(self) -> bool {
        !matches!(self, Variant::Window { .. })
    }

    /// Workgroup size (x, y) and bytes of workgroup memory the kernel needs (WebGPU's default
    /// limits, 256 invocations and 16 KiB, cover all of them; downlevel devices may not).
    pub(crate) fn needs(self) -> (u32, u32, u32) {
        match self {
            Variant::Window { wg, .. } => (wg, 1, 0),
            Variant::Blocked => (WIDE_WG.0, WIDE_WG.1, 0),
            Variant::Tiled(side) => (side, side, tiled_stages(side) * 2 * 2 * side * side * 16),
            Variant::Gemv => (GEMV.0 * GEMV.1, 1, GEMV.0 * GEMV.1 * 16),
        }
    }

    /// Output rows and vec4 columns one workgroup of a storage-buffer kernel covers.
    pub(crate) fn group_block(self) -> (u32, u32) {
        match self {
            Variant::Window { rows, wg, .. } => (rows, wg),
            Variant::Blocked => (WIDE_WG.1 * WIDE_BLOCK.0, WIDE_WG.0 * WIDE_BLOCK.1 / 4),
            Variant::Tiled(side) => (8 * side, 2 * side),
            Variant::Gemv => (GEMV.2, GEMV.0),
        }
    }

    /// The workgroup grid (x over vec4 columns, y over rows) for `rows` × `n4` outputs.
    pub(crate) fn grid(self, rows: u64, n4: u64) -> (u32, u32) {
        let (r, c) = self.group_block();
        (
            n4.div_ceil(u64::from(c)) as u32,
            rows.div_ceil(u64::from(r)) as u32,
        )
    }

    /// Whether a device with these limits can run the kernel.
    pub(crate) fn fits(self, limits: &wgpu::Limits) -> bool {
        let (x, y, bytes) = self.needs();
        x <= limits.max_compute_workgroup_size_x
            && y <= limits.max_compute_workgroup_size_y
            && x * y <= limits.max_compute_invocations_per_workgroup
            && bytes <= limits.max_compute_workgroup_storage_size
    }
}

/// A pipeline specialisation: which entry point, and the values of its override constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PipelineKey {
    /// A Linear kernel with the activation code, its parameter's bits, and whether the bias is
    /// added.
    Linear {
        act: u32,
        alpha: u32,
        bias: bool,
        variant: Variant,
    },
    /// elementwise.wgsl `bias_add`.
    BiasAdd,
    /// elementwise.wgsl `activation`.
    Activation { act: u32, alpha: u32 },
    /// softmax.wgsl.
    Softmax,
}

/// The shader's `ACT` code and `ALPHA` for an elementwise activation (softmax and identity: 0).
pub(crate) fn act_code(act: Activation) -> (u32, f32) {
    match act {
        Activation::Identity | Activation::Softmax => (0, 0.0),
        Activation::Sigmoid => (1, 0.0),
        Activation::Tanh => (2, 0.0),
        Activation::Relu => (3, 0.0),
        Activation::LeakyRelu(s) => (4, s),
        Activation::Gelu => (5, 0.0),
        Activation::GeluTanh => (6, 0.0),
        Activation::Silu => (7, 0.0),
        Activation::Elu(a) => (8, a),
    }
}

#[derive(Debug)]
pub(crate) struct Kernels {
    /// linear.wgsl with an rgba32float and an rgba16float weight texture (index: `f16`).
    linear_modules: [wgpu::ShaderModule; 2],
    linear_wide_module: wgpu::ShaderModule,
    linear_tiled_module: wgpu::ShaderModule,
    linear_gemv_module: wgpu::ShaderModule,
    elementwise_module: wgpu::ShaderModule,
    softmax_module: wgpu::ShaderModule,
    linear_layouts: [wgpu::BindGroupLayout; 2],
    pub(crate) linear_wide_layout: wgpu::BindGroupLayout,
    pub(crate) elementwise_layout: wgpu::BindGroupLayout,
    pub(crate) softmax_layout: wgpu::BindGroupLayout,
    linear_pls: [wgpu::PipelineLayout; 2],
    linear_wide_pl: wgpu::PipelineLayout,
    elementwise_pl: wgpu::PipelineLayout,
    softmax_pl: wgpu::PipelineLayout,
    cache: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    storage_at(binding, read_only, false)
}

/// A storage binding; `dynamic`: its offset is given per dispatch.
fn storage_at(binding: u32, read_only: bool, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: dynamic,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform(binding: u32) -> wgpu::BindGroupLayoutEntry {
    uniform_at(binding, false)
}

/// A uniform binding; `dynamic`: its offset is given per dispatch (`set_bind_group` offsets).
fn uniform_at(binding: u32, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: dynamic,
            min_binding_size: None,
        },
        count: None,
    }
}

fn module(device: &wgpu::Device, label: &str, parts: &[&str]) -> wgpu::ShaderModule {
    let source = parts.concat();
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

/// Environment variable that, when set to 1, builds every module with wgpu's runtime bounds
/// checks (a debugging aid, and the baseline for measuring what the checks cost).
pub(crate) const RUNTIME_CHECKS_ENV: &str = "WGPU_MLP_RUNTIME_CHECKS";

/// A module built without wgpu's runtime checks (bounds clamping on every buffer and array index,
/// and loop-bound counters), unless [`RUNTIME_CHECKS_ENV`] is `1`. Only for kernels that guard
/// every index themselves; each such shader states why its indexing is in bounds.
fn trusted_module(device: &wgpu::Device, label: &str, parts: &[&str]) -> wgpu::ShaderModule {
    if std::env::var(RUNTIME_CHECKS_ENV).is_ok_and(|v| v == "1") {
        return module(device, label, parts);
    }
    let source = parts.concat();
    // SAFETY: the shader's header argues that every access is in bounds given the dimensions
    // and buffer sizes the host sets up (GpuMlp pads the weight and sizes the buffers), and its
    // loops are bounded by uniform counts.
    unsafe {
        device.create_shader_module_trusted(
            wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            },
            wgpu::ShaderRuntimeChecks::unchecked(),
        )
    }
}

fn layout(
    device: &wgpu::Device,
    label: &str,
    entries: &[wgpu::BindGroupLayoutEntry],
) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
    let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries,
    });
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(&bgl)],
        immediate_size: 0,
    });
    (bgl, pl)
}

impl Kernels {
    /// `subgroups`: the device has subgroup operations (subgroups of at least 8), so linear.wgsl
    /// reads x through linear_subgroup.wgsl.
    pub(crate) fn new(device: &wgpu::Device, subgroups: bool) -> Self {
        // Each Linear kernel is prepended with the activations and the shared epilogue.
        let linear = |label: &str, body: &str, trusted: bool| {
            let parts = [ACTIVATION_WGSL, LINEAR_COMMON_WGSL, body];
            if trusted {
                trusted_module(device, label, &parts)
            } else {
                module(device, label, &parts)
            }
        };
        let x_source = if subgroups {
            LINEAR_SUBGROUP_WGSL
        } else {
            LINEAR_NO_SUBGROUP_WGSL
        };
        let [linear_f32, linear_f16] =
            [LINEAR_WEIGHTS_F32_WGSL, LINEAR_WEIGHTS_F16_WGSL].map(|weights| {
                linear(
                    "linear.wgsl",
                    &[x_source, weights, LINEAR_WGSL].concat(),
                    false,
                )
            });
        let linear_wide_module = linear("linear_wide.wgsl", LINEAR_WIDE_WGSL, false);
        let linear_tiled_module = linear("linear_tiled.wgsl", LINEAR_TILED_WGSL, true);
        let linear_gemv_module = linear("linear_gemv.wgsl", LINEAR_GEMV_WGSL, true);
        let elementwise_module = module(
            device,
            "elementwise.wgsl",
            &[ACTIVATION_WGSL, ELEMENTWISE_WGSL],
        );
        let softmax_module = module(device, "softmax.wgsl", &[SOFTMAX_WGSL]);
        let [(layout_f32, pl_f32), (layout_f16, pl_f16)] = [
            wgpu::TextureFormat::Rgba32Float,
            wgpu::TextureFormat::Rgba16Float,
        ]
        .map(|format| {
            let weights = wgpu::BindGroupLayoutEntry {
                binding: 2,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::StorageTexture {
                    access: wgpu::StorageTextureAccess::ReadOnly,
                    format,
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
                count: None,
            };
            // x and x_hi: uniform windows, or with subgroups the whole activation buffer.
            let x = |binding| {
                if subgroups {
                    storage_at(binding, true, true)
                } else {
                    uniform_at(binding, true)
                }
            };
            let entries = [
                uniform_at(0, true),
                x(1),
                x(5),
                weights,
                storage(3, true),
                storage(4, false),
            ];
            layout(device, "linear", &entries)
        });
        let (linear_wide_layout, linear_wide_pl) = layout(
            device,
            "linear_wide",
            &[
                uniform_at(0, true),
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, false),
            ],
        );
        let (elementwise_layout, elementwise_pl) = layout(
            device,
            "elementwise",
            &[uniform(0), storage(1, true), storage(2, false)],
        );
        let (softmax_layout, softmax_pl) =
            layout(device, "softmax", &[uniform(0), storage(1, false)]);
        Kernels {
            linear_modules: [linear_f32, linear_f16],
            linear_wide_module,
            linear_tiled_module,
            linear_gemv_module,
            elementwise_module,
            softmax_module,
            linear_layouts: [layout_f32, layout_f16],
            linear_wide_layout,
            elementwise_layout,
            softmax_layout,
            linear_pls: [pl_f32, pl_f16],
            linear_wide_pl,
            elementwise_pl,
            softmax_pl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// linear.wgsl's bind group layout for an rgba16float (`f16`) or rgba32float weight texture.
    pub(crate) fn linear_layout(&self, f16: bool) -> &wgpu::BindGroupLayout {
        &self.linear_layouts[usize::from(f16)]
    }

    /// The pipeline for `key`, compiled on first use and cached for the context's lifetime.
    pub(crate) fn pipeline(
        &self,
        device: &wgpu::Device,
        key: PipelineKey,
    ) -> wgpu::ComputePipeline {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| self.build(device, key))
            .clone()
    }

    fn build(&self, device: &wgpu::Device, key: PipelineKey) -> wgpu::ComputePipeline {
        let (module, layout, entry, constants): (_, _, _, Vec<(&str, f64)>) = match key {
            PipelineKey::Linear {
                act,
                alpha,
                bias,
                variant,
            } => {
                let mut c = vec![
                    ("ACT", f64::from(act)),
                    ("ALPHA", f64::from(f32::from_bits(alpha))),
                    ("USE_BIAS", if bias { 1.0 } else { 0.0 }),
                ];
                match variant {
                    Variant::Window {
                        rows,
                        half,
                        wg,
                        f16,
                        softmax,
                    } => {
                        c.push(("SOFTMAX", if softmax { 1.0 } else { 0.0 }));
                        c.push(("WG", f64::from(wg)));
                        c.push(("ROWS", f64::from(rows)));
                        c.push(("HALF", f64::from(half)));
                        let i = usize::from(f16);
                        (&self.linear_modules[i], &self.linear_pls[i], "linear", c)
                    }
                    Variant::Blocked => {
                        c.extend([
                            ("WG_X", f64::from(WIDE_WG.0)),
                            ("WG_Y", f64::from(WIDE_WG.1)),
                        ]);
                        (
                            &self.linear_wide_module,
                            &self.linear_wide_pl,
                            "linear_wide",
                            c,
                        )
                    }
                    Variant::Tiled(side) => {
                        c.push(("TILE", f64::from(side)));
                        c.push(("STAGES", f64::from(tiled_stages(side))));
                        // Same bindings as linear_wide.wgsl.
                        (
                            &self.linear_tiled_module,
                            &self.linear_wide_pl,
                            "linear_tiled",
                            c,
                        )
                    }
                    Variant::Gemv => {
                        c.push(("COLS4", f64::from(GEMV.0)));
                        c.push(("SLICES", f64::from(GEMV.1)));
                        (
                            &self.linear_gemv_module,
                            &self.linear_wide_pl,
                            "linear_gemv",
                            c,
                        )
                    }
                }
            }
            PipelineKey::BiasAdd => (
                &self.elementwise_module,
                &self.elementwise_pl,
                "bias_add",
                vec![],
            ),
            PipelineKey::Activation { act, alpha } => (
                &self.elementwise_module,
                &self.elementwise_pl,
                "activation",
                vec![
                    ("ACT", f64::from(act)),
                    ("ALPHA", f64::from(f32::from_bits(alpha))),
                ],
            ),
            PipelineKey::Softmax => (&self.softmax_module, &self.softmax_pl, "softmax", vec![]),
        };
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(layout),
            module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        })
    }
}
