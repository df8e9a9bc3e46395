//! The WGSL kernels, one Rust file beside each kernel family's WGSL. Each file owns the facts the
//! host and its shader share: the uniform struct (declared once, in Rust, with [`wgsl_struct!`];
//! its WGSL text is generated), the bindings ([`Slot`]s with explicit numbers; the WGSL
//! declarations are generated from them, and bind groups are built by slot, never by position),
//! the override constants and the grid. The WGSL itself is under `shaders/` at the crate's top,
//! mirroring these files (`shaders/linear/windowed.wgsl` beside `kernels/linear/windowed.rs`);
//! the shared WGSL is in `shaders/common/`.
//!
//! Shader modules are compiled once per (source, epilogue) and pipelines once per
//! specialisation, both cached in [`Kernels`] for the context's lifetime. Why kernels are shaped
//! as they are, with the measurements behind each choice: `docs/KERNELS.md`.

/// The text of a WGSL file under `shaders/` (by its path there), compiled into the crate.
macro_rules! shader {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $path))
    };
}

/// Declares the kernel files and registers each: its module, and its bindings in [`all_slots`]
/// (what a device must allow). Each must define `SLOT_SETS`, every set of bindings it may use.
macro_rules! kernels {
    ($($name:ident),* $(,)?) => {
        $(pub(crate) mod $name;)*
        /// Every set of bindings any registered kernel may use.
        fn all_slots() -> impl Iterator<Item = &'static [Slot]> {
            [$($name::SLOT_SETS),*].into_iter().flatten().copied()
        }
    };
}

// The registration line: adding a kernel is its file, its WGSL and its name here.
#[rustfmt::skip]
kernels!(activation_grad, adam, batchnorm, colsum, copy, elementwise, linear, loss, matmul, row, row_grad, sgd);

pub(crate) mod compile_cost;
pub(crate) mod epilogue;
pub(crate) mod kernel;
pub(crate) mod step_state;
pub(crate) mod update_walk;

pub(crate) use kernel::{Dispatch, Kernel};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The math helpers every kernel may use (NaN tests, expm1, log1p, tanh, erf, …).
pub(crate) const MATH_WGSL: &str = shader!("common/math.wgsl");
/// `act_<name>` for each elementwise [`Activation`](crate::Activation).
pub(crate) const ACTIVATION_WGSL: &str = shader!("common/activation.wgsl");
/// `epilogue(v, col4, n_out)`: the generated `ep_value` per lane, padding lanes set to 0.
const EPILOGUE_WGSL: &str = shader!("common/epilogue.wgsl");

/// Declares a uniform struct once: the `#[repr(C)]` Rust struct the host writes, and the WGSL
/// declaration the shader reads (`WgslStruct::WGSL`), with a compile-time check that the size is
/// a multiple of 16 bytes (WGSL's uniform struct alignment). Fields are `u32` or `f32`.
macro_rules! wgsl_struct {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ident),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name { $($(#[$fm])* pub(crate) $field: $ty),* }

        impl $crate::gpu::kernels::WgslStruct for $name {
            const WGSL: &'static str = concat!(
                "struct ", stringify!($name), " {\n",
                $("    ", stringify!($field), ": ", stringify!($ty), ",\n",)*
                "}\n"
            );
        }

        const _: () = assert!(std::mem::size_of::<$name>() % 16 == 0, "pad to 16 bytes");
        const _: () = assert!(
            std::mem::size_of::<$name>() as u64 <= $crate::gpu::kernels::DIMS_BYTES,
            "a uniform block fits the workspace's arena block"
        );
    };
}
pub(crate) use wgsl_struct;

/// A uniform struct declared with [`wgsl_struct!`].
pub(crate) trait WgslStruct: bytemuck::Pod {
    /// Its WGSL declaration.
    const WGSL: &'static str;
}

/// Bytes of one uniform block in the workspace's arena: every kernel's uniform struct fits
/// (checked by [`wgsl_struct!`]), and its `dims` slot binds a window of this size.
pub(crate) const DIMS_BYTES: u64 = 32;

/// What kind of resource a binding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SlotKind {
    /// A window of this many bytes of a uniform buffer, at an offset given per dispatch.
    Window(u64),
    /// A storage buffer.
    Storage { read_only: bool },
    /// A read-only 2-D storage texture of this format.
    Texture(wgpu::TextureFormat),
}

/// One binding of a kernel's bind group 0: the number, the name and WGSL type the shader uses,
/// and its kind. The WGSL declaration is generated from it (see [`declarations`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Slot {
    pub(crate) binding: u32,
    pub(crate) name: &'static str,
    /// The WGSL type, e.g. `array<vec4<f32>>` or `LinearDims`.
    pub(crate) ty: &'static str,
    pub(crate) kind: SlotKind,
}

/// Storage buffers a set of bindings uses (a device must allow as many per shader stage).
fn storage_buffers(slots: &[Slot]) -> u32 {
    slots
        .iter()
        .filter(|s| matches!(s.kind, SlotKind::Storage { .. }))
        .count() as u32
}

/// The most storage buffers any kernel binds: a device with fewer per shader stage cannot run
/// them (`wgpu::Limits::downlevel_defaults` allows 4).
pub(crate) fn storage_buffers_needed() -> u32 {
    all_slots().map(storage_buffers).max().unwrap_or(0)
}

impl Slot {
    /// The uniform block `dims` of type `ty` at binding 0, at a dynamic offset (every kernel
    /// reads its dimensions from the workspace's arena of uniform blocks).
    pub(crate) const fn dims(ty: &'static str) -> Slot {
        Slot {
            binding: 0,
            name: DIMS,
            ty,
            kind: SlotKind::Window(DIMS_BYTES),
        }
    }

    /// A storage buffer binding.
    pub(crate) const fn storage(
        binding: u32,
        name: &'static str,
        ty: &'static str,
        read_only: bool,
    ) -> Slot {
        Slot {
            binding,
            name,
            ty,
            kind: SlotKind::Storage { read_only },
        }
    }

    /// The epilogue's parameter buffer `ep` at `binding`.
    pub(crate) const fn epilogue(binding: u32) -> Slot {
        Slot::storage(binding, "ep", epilogue::EP_TYPE, true)
    }

    fn layout_entry(&self) -> wgpu::BindGroupLayoutEntry {
        let ty = match self.kind {
            SlotKind::Window(_) => wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            SlotKind::Storage { read_only } => wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            SlotKind::Texture(format) => wgpu::BindingType::StorageTexture {
                access: wgpu::StorageTextureAccess::ReadOnly,
                format,
                view_dimension: wgpu::TextureViewDimension::D2,
            },
        };
        wgpu::BindGroupLayoutEntry {
            binding: self.binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty,
            count: None,
        }
    }

    /// `@group(0) @binding(N) var<space> name: type;`
    fn declaration(&self) -> String {
        let space = match self.kind {
            SlotKind::Window(_) => "<uniform>",
            SlotKind::Storage { read_only: true } => "<storage, read>",
            SlotKind::Storage { .. } => "<storage, read_write>",
            SlotKind::Texture(_) => "",
        };
        format!(
            "@group(0) @binding({}) var{space} {}: {};\n",
            self.binding, self.name, self.ty
        )
    }
}

/// The WGSL declarations of `slots`.
pub(crate) fn declarations(slots: &[Slot]) -> String {
    slots.iter().map(Slot::declaration).collect()
}

/// A bind group with each resource bound at its slot's number.
pub(crate) fn bind_group(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    entries: &[(Slot, wgpu::BindingResource<'_>)],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = entries
        .iter()
        .map(|(slot, resource)| wgpu::BindGroupEntry {
            binding: slot.binding,
            resource: resource.clone(),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

/// A binding of `size` bytes of `buffer` from offset 0 (a dynamic-offset binding's window).
pub(crate) fn window(buffer: &wgpu::Buffer, size: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: 0,
        size: std::num::NonZeroU64::new(size),
    })
}

/// Everything needed to compile one pipeline: the module source (and whether it guards every
/// index itself, so it may be built without runtime checks), the entry point, the override
/// constants and the bindings.
#[derive(Clone, Debug)]
pub(crate) struct PipelineSpec {
    pub(crate) label: &'static str,
    pub(crate) source: Arc<str>,
    pub(crate) trusted: bool,
    pub(crate) entry: &'static str,
    pub(crate) constants: Vec<(&'static str, f64)>,
    pub(crate) slots: &'static [Slot],
}

impl PipelineSpec {
    /// A kernel whose module keeps wgpu's runtime checks and has no override constants: the
    /// uniform struct `U`, the bindings, the epilogue's `ep_value` and the body under `shaders/`.
    pub(crate) fn checked<U: WgslStruct>(
        label: &'static str,
        entry: &'static str,
        slots: &'static [Slot],
        ep_value: &str,
        body: &str,
    ) -> PipelineSpec {
        PipelineSpec {
            label,
            source: source(U::WGSL, slots, ep_value, body),
            trusted: false,
            entry,
            constants: Vec::new(),
            slots,
        }
    }

    /// These override constants.
    pub(crate) fn with_constants(mut self, constants: Vec<(&'static str, f64)>) -> Self {
        self.constants = constants;
        self
    }
}

/// WebGPU (a browser) wants subgroup operations enabled by a directive at the top of the module;
/// naga, which compiles the WGSL on native targets, does not implement that directive yet.
#[cfg(target_arch = "wasm32")]
pub(crate) const SUBGROUP_DIRECTIVE: &str = "enable subgroups;\n";
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const SUBGROUP_DIRECTIVE: &str = "";

/// The `ep_value` of a kernel without an epilogue (the common WGSL calls it).
pub(crate) const NO_EPILOGUE: &str = "fn ep_value(x: f32, c: u32) -> f32 { return x; }\n";

/// The name of every kernel's uniform-block binding.
pub(crate) const DIMS: &str = "dims";

/// The full WGSL of a kernel: the uniform struct, the binding declarations, the common
/// helpers, the epilogue (generated `ep_value`, then the per-lane wrapper) and the body.
pub(crate) fn source(uniform: &str, slots: &[Slot], ep_value: &str, body: &str) -> Arc<str> {
    [
        uniform,
        &declarations(slots),
        MATH_WGSL,
        ACTIVATION_WGSL,
        ep_value,
        EPILOGUE_WGSL,
        body,
    ]
    .concat()
    .into()
}

/// The compiled kernels of one device: modules, layouts and pipelines, built on first use and
/// cached for the context's lifetime.
#[derive(Debug, Default)]
pub(crate) struct Kernels {
    modules: Mutex<HashMap<(Arc<str>, bool), wgpu::ShaderModule>>,
    layouts: Mutex<HashMap<&'static [Slot], (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

/// What makes two pipelines the same: the source, the entry point and the constants' values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    source: Arc<str>,
    entry: &'static str,
    constants: Vec<(&'static str, u64)>,
}

/// Environment variable that, when set to 1, builds every module with wgpu's runtime bounds
/// checks (a debugging aid, and the baseline for measuring what the checks cost).
pub(crate) const RUNTIME_CHECKS_ENV: &str = "WGPU_MLP_RUNTIME_CHECKS";

impl Kernels {
    /// The bind group layout of a kernel with these slots.
    pub(crate) fn layout(
        &self,
        device: &wgpu::Device,
        slots: &'static [Slot],
    ) -> wgpu::BindGroupLayout {
        self.layouts(device, slots).0
    }

    fn layouts(
        &self,
        device: &wgpu::Device,
        slots: &'static [Slot],
    ) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        let mut cache = self.layouts.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(slots)
            .or_insert_with(|| {
                let entries: Vec<_> = slots.iter().map(Slot::layout_entry).collect();
                let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: None,
                    entries: &entries,
                });
                let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: None,
                    bind_group_layouts: &[Some(&bgl)],
                    immediate_size: 0,
                });
                (bgl, pl)
            })
            .clone()
    }

    fn module(&self, device: &wgpu::Device, spec: &PipelineSpec) -> wgpu::ShaderModule {
        let trusted = spec.trusted && !std::env::var(RUNTIME_CHECKS_ENV).is_ok_and(|v| v == "1");
        let mut cache = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry((spec.source.clone(), trusted))
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(spec.label),
                    source: wgpu::ShaderSource::Wgsl(spec.source.to_string().into()),
                };
                if trusted {
                    // SAFETY: only kernels whose WGSL guards every index themselves are marked
                    // trusted; each such shader's header argues why its accesses stay in bounds
                    // given the dimensions and buffer sizes the host sets up, and its loops are
                    // bounded by uniform counts.
                    unsafe {
                        device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                } else {
                    device.create_shader_module(desc)
                }
            })
            .clone()
    }

    /// The pipeline for `spec`, compiled on first use.
    pub(crate) fn pipeline(
        &self,
        device: &wgpu::Device,
        spec: &PipelineSpec,
    ) -> wgpu::ComputePipeline {
        let key = PipelineKey {
            source: spec.source.clone(),
            entry: spec.entry,
            constants: spec
                .constants
                .iter()
                .map(|(k, v)| (*k, v.to_bits()))
                .collect(),
        };
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return p.clone();
        }
        let module = self.module(device, spec);
        let (_, layout) = self.layouts(device, spec.slots);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(spec.label),
            layout: Some(&layout),
            module: &module,
            entry_point: Some(spec.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &spec.constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        self.pipelines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, pipeline.clone());
        pipeline
    }
}

/// Folds `groups` workgroups into a 2-D grid no wider than `max` per dimension; the shaders rebuild
/// the linear index as `y · groups_x + x`.
pub(crate) fn fold(groups: u64, max: u32) -> (u32, u32) {
    let groups = groups.max(1);
    let x = groups.min(u64::from(max));
    (x as u32, groups.div_ceil(x) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;

    #[test]
    fn every_elementwise_activation_has_its_wgsl_function() {
        for a in Activation::ALL.iter().filter(|a| !a.is_row()) {
            let decl = format!("fn act_{}(x: f32, p0: f32, p1: f32) -> f32", a.spec().name);
            assert!(
                ACTIVATION_WGSL.contains(&decl),
                "activation.wgsl lacks `{decl}`"
            );
        }
        // ... and nothing else: every act_ function there is one of ours.
        let names: Vec<&str> = Activation::ALL.iter().map(|a| a.spec().name).collect();
        for line in ACTIVATION_WGSL.lines().filter(|l| l.starts_with("fn act_")) {
            let name = &line["fn act_".len()..line.find('(').unwrap()];
            assert!(names.contains(&name), "act_{name} has no Activation");
        }
    }

    wgsl_struct! {
        struct Probe { a: u32, b: f32, c: u32, d: u32 }
    }

    #[test]
    fn uniform_structs_declare_the_same_fields_in_wgsl() {
        assert_eq!(
            Probe::WGSL,
            "struct Probe {\n    a: u32,\n    b: f32,\n    c: u32,\n    d: u32,\n}\n"
        );
        let slot = Slot {
            binding: 3,
            name: "y",
            ty: "array<vec4<f32>>",
            kind: SlotKind::Storage { read_only: false },
        };
        assert_eq!(
            declarations(&[slot]),
            "@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;\n"
        );
    }

    #[test]
    fn folded_grids_cover_every_group() {
        assert_eq!(fold(0, 65535), (1, 1));
        assert_eq!(fold(70_000, 65535), (65535, 2));
        assert_eq!(fold(10, 4), (4, 3));
    }
}
