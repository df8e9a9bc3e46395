//! The compiled WGSL kernels of one device: shader modules and bind-group layouts built once per
//! context, pipelines built once per (kernel, specialisation) and cached.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::activation::Activation;

const ACTIVATION_WGSL: &str = include_str!("../../shaders/activation.wgsl");
const LINEAR_COMMON_WGSL: &str = include_str!("../../shaders/linear_common.wgsl");
const LINEAR_WGSL: &str = include_str!("../../shaders/linear.wgsl");
const LINEAR_WIDE_WGSL: &str = include_str!("../../shaders/linear_wide.wgsl");
const ELEMENTWISE_WGSL: &str = include_str!("../../shaders/elementwise.wgsl");
const SOFTMAX_WGSL: &str = include_str!("../../shaders/softmax.wgsl");

/// Invocations per workgroup of linear.wgsl (a row of them, one per 4 output columns).
pub(crate) const LINEAR_WG: u32 = 64;
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
/// Invocations per workgroup of the elementwise kernels (fixed in elementwise.wgsl).
pub(crate) const ELEMENTWISE_WG: u32 = 64;

/// A pipeline specialisation: which entry point, and the values of its override constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PipelineKey {
    /// linear.wgsl (or linear_wide.wgsl when `wide`) with the activation code, its parameter's
    /// bits, and whether the bias is added.
    Linear {
        act: u32,
        alpha: u32,
        bias: bool,
        wide: bool,
        /// linear.wgsl's `ROWS` (rows per invocation); 0 for linear_wide.wgsl.
        rows: u32,
        /// linear.wgsl's `HALF`: rows per window when two windows are paired, else `NO_PAIR`.
        half: u32,
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
    linear_module: wgpu::ShaderModule,
    linear_wide_module: wgpu::ShaderModule,
    elementwise_module: wgpu::ShaderModule,
    softmax_module: wgpu::ShaderModule,
    pub(crate) linear_layout: wgpu::BindGroupLayout,
    pub(crate) linear_wide_layout: wgpu::BindGroupLayout,
    pub(crate) elementwise_layout: wgpu::BindGroupLayout,
    pub(crate) softmax_layout: wgpu::BindGroupLayout,
    linear_pl: wgpu::PipelineLayout,
    linear_wide_pl: wgpu::PipelineLayout,
    elementwise_pl: wgpu::PipelineLayout,
    softmax_pl: wgpu::PipelineLayout,
    cache: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
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
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let linear_module = module(
            device,
            "linear.wgsl",
            &[ACTIVATION_WGSL, LINEAR_COMMON_WGSL, LINEAR_WGSL],
        );
        let linear_wide_module = module(
            device,
            "linear_wide.wgsl",
            &[ACTIVATION_WGSL, LINEAR_COMMON_WGSL, LINEAR_WIDE_WGSL],
        );
        let elementwise_module = module(
            device,
            "elementwise.wgsl",
            &[ACTIVATION_WGSL, ELEMENTWISE_WGSL],
        );
        let softmax_module = module(device, "softmax.wgsl", &[SOFTMAX_WGSL]);
        let (linear_layout, linear_pl) = layout(
            device,
            "linear",
            &[
                uniform_at(0, true),
                uniform_at(1, true),
                uniform_at(5, true),
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                storage(3, true),
                storage(4, false),
            ],
        );
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
            linear_module,
            linear_wide_module,
            elementwise_module,
            softmax_module,
            linear_layout,
            linear_wide_layout,
            elementwise_layout,
            softmax_layout,
            linear_pl,
            linear_wide_pl,
            elementwise_pl,
            softmax_pl,
            cache: Mutex::new(HashMap::new()),
        }
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
                wide,
                rows,
                half,
            } => {
                let mut c = vec![
                    ("ACT", f64::from(act)),
                    ("ALPHA", f64::from(f32::from_bits(alpha))),
                    ("USE_BIAS", if bias { 1.0 } else { 0.0 }),
                ];
                if wide {
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
                } else {
                    c.push(("WG", f64::from(LINEAR_WG)));
                    c.push(("ROWS", f64::from(rows)));
                    c.push(("HALF", f64::from(half)));
                    (&self.linear_module, &self.linear_pl, "linear", c)
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
