//! The windowed Linear kernel (`windowed.wgsl`, with `windowed_subgroup.wgsl` or
//! `windowed_no_subgroup.wgsl` prepended): the weight in a read-only storage texture in panels
//! ([`PanelLayout`]), rows of x shared across each subgroup by `subgroupBroadcast` where the device
//! has subgroups, else read through 64 KiB uniform windows of whole rows at dynamic offsets, one
//! dispatch per window. The fast kernel on software adapters; why, measured: docs/KERNELS.md.
//!
//! Everything the host must know about it is here: its bindings, its override constants
//! ([`WindowedSpec`]), the window geometry ([`Geometry`]), the weight texture and the grid.

use crate::gpu::kernels::epilogue::{EP_TYPE, Epilogue};
use crate::gpu::kernels::linear::{B, DIMS, LinearDims, LinearKernel, X, Y};
use crate::gpu::kernels::{
    Dispatch, Kernel, PipelineSpec, SUBGROUP_DIRECTIVE, Slot, SlotKind, WgslStruct, source,
};
use crate::gpu::options::WeightFormat;
use crate::gpu::pack::{self, PanelLayout};

const BODY: &str = shader!("linear/windowed.wgsl");
const X_SUBGROUP: &str = shader!("linear/windowed_subgroup.wgsl");
const X_NO_SUBGROUP: &str = shader!("linear/windowed_no_subgroup.wgsl");

/// Bytes of x one uniform window holds (`array<vec4<f32>, 4096>`).
pub(crate) const WINDOW_BYTES: u64 = 65536;
/// Invocations per workgroup at most (a row of them, one per 4 output columns).
const MAX_WG: u32 = 64;
/// The workgroup width at which a row's outputs (at most 32) fit one subgroup (devices with
/// subgroups have at least 8 invocations per subgroup), so a row softmax can be fused.
pub(crate) const SUBGROUP_WG: u32 = 8;
/// Rows one invocation computes at most; the workgroup shares them.
pub(crate) const BLOCK_ROWS: u32 = 16;
/// Smaller row blocks, for small batches (a GEMV needs one row, not 16 copies) and for windows
/// of fewer than 16 rows (inputs wider than 1,024 features).
pub(crate) const SMALL_ROWS: [u32; 3] = [1, 4, 8];
/// `HALF` when windows are not paired.
const NO_PAIR: u32 = u32::MAX;

/// The weight texture binding (number 2, as the storage-buffer kernels' `wt`).
const fn weights(format: wgpu::TextureFormat, ty: &'static str) -> Slot {
    Slot {
        binding: 2,
        name: "wt",
        ty,
        kind: SlotKind::Texture(format),
    }
}
const WT_F32: Slot = weights(
    wgpu::TextureFormat::Rgba32Float,
    "texture_storage_2d<rgba32float, read>",
);
const WT_F16: Slot = weights(
    wgpu::TextureFormat::Rgba16Float,
    "texture_storage_2d<rgba16float, read>",
);
/// x as a 64 KiB uniform window at a dynamic offset (devices without subgroups).
pub(crate) const X_WINDOW: Slot = x_window(1, "x");
/// The second window of a paired dispatch (inputs of 1,025 to 8,192 features).
pub(crate) const X_HI: Slot = x_window(6, "x_hi");

const fn x_window(binding: u32, name: &'static str) -> Slot {
    Slot {
        binding,
        name,
        ty: "array<vec4<f32>, 4096>",
        kind: SlotKind::Window(WINDOW_BYTES),
    }
}
const EP_SLOT: Slot = crate::gpu::kernels::linear::EP;

/// The bindings: [subgroups][f16].
const SLOTS: [[&[Slot]; 2]; 2] = [
    [
        &[DIMS, X_WINDOW, WT_F32, B, Y, EP_SLOT, X_HI],
        &[DIMS, X_WINDOW, WT_F16, B, Y, EP_SLOT, X_HI],
    ],
    [
        &[DIMS, X, WT_F32, B, Y, EP_SLOT],
        &[DIMS, X, WT_F16, B, Y, EP_SLOT],
    ],
];

/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: [&[Slot]; 4] = [SLOTS[0][0], SLOTS[0][1], SLOTS[1][0], SLOTS[1][1]];

/// The bindings for a device with or without subgroups and a weight format.
pub(crate) fn slots(subgroups: bool, format: WeightFormat) -> &'static [Slot] {
    SLOTS[usize::from(subgroups)][usize::from(format == WeightFormat::F16)]
}

/// A pipeline's override constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct WindowedSpec {
    /// `ROWS`: rows per invocation (16, or 1, 4, 8 for small batches and narrow windows).
    pub(crate) rows: u32,
    /// `HALF`: rows per window when two windows are paired in one dispatch.
    pub(crate) half: Option<u32>,
    /// `WG`: invocations per workgroup ([`wg_for`]).
    pub(crate) wg: u32,
    /// `ROW_OP`: 0, or a fused softmax (1) / log-softmax (2).
    pub(crate) row_op: u32,
}

/// Which kernel a pipeline is for (beyond its constants): the device's x source and the weight
/// format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Variant {
    pub(crate) subgroups: bool,
    pub(crate) format: WeightFormat,
}

impl Variant {
    /// The pipeline for these constants and this epilogue.
    pub(crate) fn pipeline_spec(
        self,
        spec: WindowedSpec,
        ep: &Epilogue,
        bias: bool,
    ) -> PipelineSpec {
        let (directive, x) = if self.subgroups {
            (SUBGROUP_DIRECTIVE, X_SUBGROUP)
        } else {
            ("", X_NO_SUBGROUP)
        };
        let slots = slots(self.subgroups, self.format);
        debug_assert_eq!(EP_SLOT.ty, EP_TYPE);
        PipelineSpec {
            label: "windowed",
            source: source(
                &[directive, LinearDims::WGSL].concat(),
                slots,
                &ep.code,
                &[x, BODY].concat(),
            ),
            trusted: false,
            entry: "windowed",
            constants: vec![
                ("USE_BIAS", f64::from(u8::from(bias))),
                ("ROW_OP", f64::from(spec.row_op)),
                ("WG", f64::from(spec.wg)),
                ("ROWS", f64::from(spec.rows)),
                ("HALF", f64::from(spec.half.unwrap_or(NO_PAIR))),
            ],
            slots,
        }
    }
}

/// The workgroup width for a layer with `n4` vec4 columns: 64, or the smallest power of two of
/// at least 8 that covers them. A software adapter runs every invocation of a workgroup, useful
/// or not, so a 10-output layer (3 columns) in a 64-wide group would compute 61 clamped copies.
pub(crate) fn wg_for(n4: usize) -> u32 {
    (n4.next_power_of_two() as u32).clamp(SUBGROUP_WG, MAX_WG)
}

/// The grid of one dispatch: x over vec4 columns, y over `rows` in blocks of `block` rows.
pub(crate) fn grid(wg: u32, n4: usize, rows: usize, block: u32) -> (u32, u32) {
    (
        (n4 as u64).div_ceil(u64::from(wg)) as u32,
        (rows as u64).div_ceil(u64::from(block)) as u32,
    )
}

/// How a layer's rows are split into dispatches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Rows of x one window holds.
    pub(crate) window_rows: usize,
    /// Rows one dispatch covers: the window, or two windows when a window holds fewer than 16
    /// rows (then `x` and `x_hi` are bound to consecutive windows).
    pub(crate) dispatch_rows: usize,
}

impl Geometry {
    /// The geometry for Linear(`n_in`, `n_out`), or `None` when the windowed kernel cannot run
    /// it (input too wide for a window, weight texture over the device's texture size, or
    /// uniform bindings too small): it then runs [`LinearKernel::Blocked`](super::LinearKernel).
    ///
    /// With subgroups x is the whole activation buffer, one window of as many 16-row blocks as
    /// one dispatch's grid holds (each lane loads its own rows, and each window was a dispatch
    /// of its own; docs/KERNELS.md). The same layers are admitted either way.
    pub(crate) fn new(
        n_in: usize,
        n_out: usize,
        limits: &wgpu::Limits,
        subgroups: bool,
    ) -> Option<Self> {
        let window = uniform_window_rows(n_in, n_out, limits)?;
        if subgroups {
            let whole = limits.max_compute_workgroups_per_dimension as usize * BLOCK_ROWS as usize;
            return Some(Geometry {
                window_rows: whole,
                dispatch_rows: whole,
            });
        }
        let paired = window < BLOCK_ROWS as usize;
        Some(Geometry {
            window_rows: window,
            dispatch_rows: if paired { 2 * window } else { window },
        })
    }

    /// `HALF` for the pipeline: the window's rows when windows are paired.
    pub(crate) fn half(&self) -> Option<u32> {
        (self.dispatch_rows > self.window_rows).then_some(self.window_rows as u32)
    }

    /// Dispatches for `rows`.
    pub(crate) fn dispatches(&self, rows: usize) -> usize {
        rows.div_ceil(self.dispatch_rows).max(1)
    }
}

/// Rows of x one 64 KiB uniform window holds for an input of `n_in` features: as many whole rows
/// as fit, rounded so every window starts at an offset the device accepts.
fn uniform_window_rows(n_in: usize, n_out: usize, limits: &wgpu::Limits) -> Option<usize> {
    let tex = limits.max_texture_dimension_2d as usize;
    if limits.max_uniform_buffer_binding_size < WINDOW_BYTES
        || PanelLayout::new(n_in, n_out, tex).is_none()
    {
        return None;
    }
    let row_bytes = pack::f32_bytes(pack::vec4s(n_in) * 4);
    let align = u64::from(limits.min_uniform_buffer_offset_alignment).max(1);
    let fit = WINDOW_BYTES / row_bytes;
    // Offsets are multiples of row_bytes; they must also be multiples of align (a power of two
    // of at most 256, so `step` divides 16). Windows of whole 16-row blocks waste no invocation.
    let step = align / gcd(row_bytes, align);
    if fit >= u64::from(BLOCK_ROWS) {
        let unit = u64::from(BLOCK_ROWS).max(step);
        return Some(((fit / unit) * unit) as usize);
    }
    // Fewer than 16 rows fit: windows of 8, 4 or 2 rows, paired two to a dispatch.
    [8u64, 4, 2]
        .into_iter()
        .find(|&r| r <= fit && r % step == 0)
        .map(|r| r as usize)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Refuses a weight that f16 cannot hold, for [`WeightFormat::F16`]: a finite weight of
/// magnitude 65520 or more rounds to ±inf, and the model would return ±inf or NaN from finite
/// inputs. `layer` counts the model's Linear layers from 0; the position is `[out, in]`, as in
/// PyTorch's `weight`.
pub(crate) fn check_f16(linear: &crate::model::Linear, layer: usize) -> crate::error::Result<()> {
    let w = linear.weight();
    let overflows = |v: f32| v.is_finite() && half::f16::from_f32(v).is_infinite();
    match w.iter().position(|&v| overflows(v)) {
        None => Ok(()),
        Some(i) => Err(crate::error::Error::invalid(format!(
            "f16 weights: Linear layer {layer}'s weight[{}, {}] = {} is beyond f16's range \
             (largest 65504) and would become {}inf; keep f32 weights (WeightFormat::F32, \
             --weight-format f32)",
            i / linear.in_features(),
            i % linear.in_features(),
            w[i],
            if w[i] < 0.0 { "-" } else { "" }
        ))),
    }
}

/// The weight of `linear` as a texture in panels: rgba32float, or rgba16float for
/// [`WeightFormat::F16`] (texel loads convert to f32, so the shader is the same). The caller
/// checked that the layout fits ([`Geometry::new`]).
pub(crate) fn weight_texture(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    packed: &[f32],
    layout: &PanelLayout,
    format: WeightFormat,
) -> wgpu::TextureView {
    let size = wgpu::Extent3d {
        width: layout.width() as u32,
        height: layout.height() as u32,
        depth_or_array_layers: 1,
    };
    let (texture_format, bytes): (_, Vec<u8>) = match format {
        WeightFormat::F32 => (
            wgpu::TextureFormat::Rgba32Float,
            bytemuck::cast_slice(packed).to_vec(),
        ),
        WeightFormat::F16 => {
            let halves: Vec<half::f16> = packed.iter().map(|&w| half::f16::from_f32(w)).collect();
            (
                wgpu::TextureFormat::Rgba16Float,
                bytemuck::cast_slice(&halves).to_vec(),
            )
        }
    };
    let texel_bytes = texture_format.block_copy_size(None).unwrap_or(16);
    let tex = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("weight texture"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: texture_format,
        usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    queue.write_texture(
        tex.as_image_copy(),
        &bytes,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(size.width * texel_bytes),
            rows_per_image: Some(size.height),
        },
        size,
    );
    tex.create_view(&Default::default())
}

/// The row blocks of the pipelines, smallest first: a dispatch takes the first that covers its
/// rows.
fn blocks() -> impl Iterator<Item = u32> {
    SMALL_ROWS.into_iter().chain([BLOCK_ROWS])
}

/// A Linear pass of the windowed kernel: `epilogue(x·Wᵀ + b)`, then the fused row operation.
#[derive(Debug)]
pub(crate) struct Windowed {
    pub(crate) geometry: Geometry,
    /// Invocations per workgroup ([`wg_for`]).
    pub(crate) wg: u32,
    /// `ROW_OP`: 0, or a fused softmax (1) / log-softmax (2).
    pub(crate) row_op: u32,
    pub(crate) variant: Variant,
    /// Whether the bias is added here.
    pub(crate) bias: bool,
    pub(crate) ep: Epilogue,
    pub(crate) layout: PanelLayout,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
}

impl Kernel for Windowed {
    fn slots(&self) -> &'static [Slot] {
        slots(self.variant.subgroups, self.variant.format)
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        blocks()
            .map(|rows| {
                let spec = WindowedSpec {
                    rows,
                    half: self.geometry.half(),
                    wg: self.wg,
                    row_op: self.row_op,
                };
                self.variant.pipeline_spec(spec, &self.ep, self.bias)
            })
            .collect()
    }

    fn dispatches(&self, rows: usize, _max_groups: u32) -> Vec<Dispatch> {
        let g = &self.geometry;
        let r = g.dispatch_rows;
        let n4 = pack::vec4s(self.n_out);
        let x_row_bytes = pack::f32_bytes(pack::vec4s(self.n_in) * 4);
        let last = blocks().count() - 1;
        (0..g.dispatches(rows))
            .map(|w| {
                let valid = (rows - w * r).min(r);
                let pipeline = blocks().position(|b| valid <= b as usize).unwrap_or(last);
                let block = blocks().nth(pipeline).unwrap_or(BLOCK_ROWS);
                let dims = LinearDims {
                    rows: valid as u32,
                    row_base: (w * r) as u32,
                    k4: pack::vec4s(self.n_in) as u32,
                    n4: n4 as u32,
                    n_out: self.n_out as u32,
                    wt_n4: (pack::weight_cols(self.n_out) / 4) as u32,
                    tex_w: self.layout.width() as u32,
                    panel_rows: self.layout.panel_rows as u32,
                };
                let mut d = Dispatch::new(pipeline, &dims, grid(self.wg, n4, valid, block));
                if !self.variant.subgroups {
                    // x and x_hi: this dispatch's window, and the one after it when paired.
                    let x = w as u64 * r as u64 * x_row_bytes;
                    let hi = g.half().map_or(0, |h| u64::from(h) * x_row_bytes);
                    d.windows = vec![x as u32, (x + hi) as u32];
                }
                d
            })
            .collect()
    }

    fn linear_kernel(&self, _rows: usize) -> Option<LinearKernel> {
        Some(LinearKernel::Windowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_hold_whole_rows_at_aligned_offsets() {
        let limits = wgpu::Limits::default();
        // 784 features: 3,136 bytes a row, 20 rows fit; whole 16-row blocks.
        let g = Geometry::new(784, 512, &limits, false).unwrap();
        assert_eq!((g.window_rows, g.dispatch_rows, g.half()), (16, 16, None));
        // 2,048 features: 8 rows fit, paired: one dispatch of 16 rows, HALF 8.
        let g = Geometry::new(2048, 2048, &limits, false).unwrap();
        assert_eq!((g.window_rows, g.dispatch_rows, g.half()), (8, 16, Some(8)));
        assert_eq!(g.dispatches(17), 2);
        // Over 8,192 features nothing fits: the blocked kernel runs it.
        assert_eq!(Geometry::new(8193, 4, &limits, false), None);
        assert_eq!(Geometry::new(8193, 4, &limits, true), None);
        // With subgroups one window is a whole grid of 16-row blocks.
        let g = Geometry::new(784, 512, &limits, true).unwrap();
        assert_eq!(g.window_rows, 65535 * 16);
        assert_eq!(g.dispatches(1000), 1);
    }

    #[test]
    fn workgroups_shrink_for_narrow_layers() {
        assert_eq!(wg_for(1), 8);
        assert_eq!(wg_for(3), 8);
        assert_eq!(wg_for(9), 16);
        assert_eq!(wg_for(128), 64);
        assert_eq!(grid(8, 3, 17, 16), (1, 2));
    }
}
