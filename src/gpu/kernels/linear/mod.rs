//! The Linear kernels: `y = epilogue(x·Wᵀ + b)` for a chunk of rows, each kernel in its own file
//! beside its WGSL. What they share is here: [`LinearKernel`] (the choice), the uniform struct
//! [`LinearDims`], the bindings, and the rule [`LinearKernel::Auto`] follows on hardware GPUs.
//!
//! - [`windowed`]: the weight in a storage texture in panels, x shared across a subgroup (or
//!   through uniform windows): software adapters.
//! - [`blocked`]: 4×8 register blocks from storage buffers.
//! - [`gemv`]: k split across a workgroup, for a few rows on hardware GPUs.
//! - [`tiled`]: slabs staged in workgroup memory, for more rows on hardware GPUs.

pub(crate) mod blocked;
pub(crate) mod gemv;
pub(crate) mod tiled;
pub(crate) mod windowed;

use crate::error::{Error, Result};
pub(crate) use crate::gpu::options::LinearKernel;
use crate::gpu::kernels::epilogue::Epilogue;
use crate::gpu::kernels::{Dispatch, Kernel, PipelineSpec, Slot, WgslStruct, source, wgsl_struct};
use crate::gpu::pack;

/// The storage-buffer kernel's description of a choice (`None` for Auto and Windowed).
pub(crate) fn buffer_kernel(k: LinearKernel) -> Option<&'static BufferKernel> {
    match k {
        LinearKernel::Blocked => Some(&blocked::KERNEL),
        LinearKernel::Gemv => Some(&gemv::KERNEL),
        LinearKernel::Tiled64 => Some(&tiled::TILE64),
        LinearKernel::Tiled128 => Some(&tiled::TILE128),
        LinearKernel::Auto | LinearKernel::Windowed => None,
    }
}

wgsl_struct! {
    /// The uniform block of every Linear kernel, one per dispatch (a window of rows for the
    /// windowed kernel without subgroups, the whole chunk otherwise).
    pub(crate) struct LinearDims {
        /// Valid rows in this dispatch.
        rows: u32,
        /// First row of the dispatch in y (windows), else 0.
        row_base: u32,
        /// vec4s per row of x.
        k4: u32,
        /// vec4s per row of y.
        n4: u32,
        /// Real output width (lanes at or past it are padding).
        n_out: u32,
        /// vec4s per row of the packed weight.
        wt_n4: u32,
        /// Windowed: texels per row of the weight texture (32 · steps per row).
        tex_w: u32,
        /// Windowed: texture rows per panel of 8 output texels.
        panel_rows: u32,
    }
}

/// The bindings every Linear kernel has; the storage-buffer kernels have exactly these.
pub(crate) const DIMS: Slot = Slot::dims("LinearDims");
/// The input activations (the windowed kernel may bind a window instead).
pub(crate) const X: Slot = Slot::storage(1, "x", "array<vec4<f32>>", true);
/// The packed weight (a storage buffer; the windowed kernel binds a texture here).
pub(crate) const WT: Slot = Slot::storage(2, "wt", "array<vec4<f32>>", true);
/// The bias, padded (zeros without one).
pub(crate) const B: Slot = Slot::storage(3, "b", "array<vec4<f32>>", true);
/// The output activations.
pub(crate) const Y: Slot = Slot::storage(4, "y", "array<vec4<f32>>", false);
/// The epilogue's parameters.
pub(crate) const EP: Slot = Slot::epilogue(5);
/// The bindings of the storage-buffer kernels.
pub(crate) const BUFFER_SLOTS: &[Slot] = &[DIMS, X, WT, B, Y, EP];

/// Every set of bindings the Linear kernels use.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[
    BUFFER_SLOTS,
    windowed::SLOT_SETS[0],
    windowed::SLOT_SETS[1],
    windowed::SLOT_SETS[2],
    windowed::SLOT_SETS[3],
];

/// Rows (and columns) the packed weight of a storage-buffer kernel is padded to, so every
/// tiled.wgsl slab load is in bounds: k steps of at most 16, column tiles of at most 128.
pub(crate) const BUFFER_WEIGHT_PAD: (usize, usize) = (16, 128);

/// A storage-buffer Linear kernel: its WGSL, entry point, constants, workgroup and the block of
/// outputs one workgroup covers.
#[derive(Debug)]
pub(crate) struct BufferKernel {
    pub(crate) label: &'static str,
    pub(crate) entry: &'static str,
    pub(crate) wgsl: &'static str,
    /// The module guards every index itself and is built without runtime checks.
    pub(crate) trusted: bool,
    pub(crate) constants: &'static [(&'static str, f64)],
    /// Workgroup size (x, y).
    pub(crate) workgroup: (u32, u32),
    /// Bytes of workgroup memory.
    pub(crate) shared_bytes: u32,
    /// Output rows and vec4 columns one workgroup covers.
    pub(crate) block: (u32, u32),
}

impl BufferKernel {
    /// The workgroup grid (x over vec4 columns, y over rows) for `rows` × `n4` outputs.
    pub(crate) fn grid(&self, rows: u64, n4: u64) -> (u32, u32) {
        (
            n4.div_ceil(u64::from(self.block.1)) as u32,
            rows.div_ceil(u64::from(self.block.0)) as u32,
        )
    }

    /// The pipeline for this kernel with the given epilogue.
    pub(crate) fn pipeline_spec(&self, ep: &Epilogue, bias: bool) -> PipelineSpec {
        let mut constants = vec![("USE_BIAS", f64::from(u8::from(bias)))];
        constants.extend_from_slice(self.constants);
        PipelineSpec {
            label: self.label,
            source: source(LinearDims::WGSL, BUFFER_SLOTS, &ep.code, self.wgsl),
            trusted: self.trusted,
            entry: self.entry,
            constants,
            slots: BUFFER_SLOTS,
        }
    }
}

/// A Linear pass of a storage-buffer kernel, picked per batch among `candidates` ([`pick`]);
/// its weight packed by [`pack::weight_transposed_padded`] with [`BUFFER_WEIGHT_PAD`].
#[derive(Debug)]
pub(crate) struct BufferLinear {
    pub(crate) candidates: Vec<LinearKernel>,
    /// Whether the bias is added here.
    pub(crate) bias: bool,
    pub(crate) ep: Epilogue,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
}

impl Kernel for BufferLinear {
    fn slots(&self) -> &'static [Slot] {
        BUFFER_SLOTS
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        self.candidates
            .iter()
            .filter_map(|k| buffer_kernel(*k))
            .map(|b| b.pipeline_spec(&self.ep, self.bias))
            .collect()
    }

    fn dispatches(&self, rows: usize, _max_groups: u32) -> Vec<Dispatch> {
        let chosen = pick(&self.candidates, rows, self.n_out);
        let pipeline = self.candidates.iter().position(|k| *k == chosen);
        let b = buffer_kernel(chosen).expect("a storage-buffer kernel");
        let n4 = pack::vec4s(self.n_out);
        let dims = LinearDims {
            rows: rows as u32,
            k4: pack::vec4s(self.n_in) as u32,
            n4: n4 as u32,
            n_out: self.n_out as u32,
            wt_n4: (self.n_out.next_multiple_of(BUFFER_WEIGHT_PAD.1) / 4) as u32,
            ..LinearDims::default()
        };
        let grid = b.grid(rows as u64, n4 as u64);
        vec![Dispatch::new(pipeline.unwrap_or(0), &dims, grid)]
    }

    fn linear_kernel(&self, rows: usize) -> Option<LinearKernel> {
        Some(pick(&self.candidates, rows, self.n_out))
    }
}

/// Whether a device with these limits can run a workgroup of `x × y` invocations using `bytes`
/// of workgroup memory; the error says what it needs and what the device has.
pub(crate) fn check_fits(
    what: &str,
    (x, y): (u32, u32),
    bytes: u32,
    limits: &wgpu::Limits,
) -> Result<()> {
    if x <= limits.max_compute_workgroup_size_x
        && y <= limits.max_compute_workgroup_size_y
        && x * y <= limits.max_compute_invocations_per_workgroup
        && bytes <= limits.max_compute_workgroup_storage_size
    {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "the {what} kernel needs {x}×{y} invocations and {bytes} bytes of workgroup memory per \
         workgroup; this device allows {}×{} ({} in all) and {} bytes",
        limits.max_compute_workgroup_size_x,
        limits.max_compute_workgroup_size_y,
        limits.max_compute_invocations_per_workgroup,
        limits.max_compute_workgroup_storage_size
    )))
}

/// The storage-buffer kernels a layer may run when it does not run the windowed kernel: the
/// named one, or for [`LinearKernel::Auto`] on hardware GPUs every kernel of the auto rule the
/// device's limits allow (plus the blocked fallback). A named kernel that does not fit is an
/// error.
pub(crate) fn buffer_candidates(
    choice: LinearKernel,
    software: bool,
    limits: &wgpu::Limits,
) -> Result<Vec<LinearKernel>> {
    let fits = |k: LinearKernel| {
        let b = buffer_kernel(k).expect("a storage-buffer kernel");
        check_fits(&k.to_string(), b.workgroup, b.shared_bytes, limits)
    };
    match choice {
        LinearKernel::Auto if !software => {
            let mut fit: Vec<LinearKernel> = [
                LinearKernel::Gemv,
                LinearKernel::Tiled64,
                LinearKernel::Tiled128,
            ]
            .into_iter()
            .filter(|k| fits(*k).is_ok())
            .collect();
            fit.push(LinearKernel::Blocked);
            Ok(fit)
        }
        LinearKernel::Auto | LinearKernel::Windowed | LinearKernel::Blocked => {
            fits(LinearKernel::Blocked)?;
            Ok(vec![LinearKernel::Blocked])
        }
        named => {
            fits(named)?;
            Ok(vec![named])
        }
    }
}

/// The kernel for a storage-buffer layer's Linear pass on a batch of `rows`: the only candidate,
/// or, when [`LinearKernel::Auto`] left several (hardware GPUs), by shape. What decides is
/// whether a kernel has enough workgroups to fill a large GPU: the GEMV kernel makes one per 4
/// rows × 32 columns, the tiled kernels one per 64 × 64 or 128 × 128 outputs. The thresholds are
/// H100 measurements (docs/KERNELS.md, "Kernel choice on a hardware GPU").
pub(crate) fn pick(candidates: &[LinearKernel], rows: usize, n_out: usize) -> LinearKernel {
    let tiles64 = rows.div_ceil(64) * n_out.div_ceil(64);
    let tiles128 = rows.div_ceil(128) * n_out.div_ceil(128);
    let want = if rows <= AUTO_GEMV_MAX_ROWS
        || (rows <= AUTO_GEMV_MAX_ROWS_FEW_TILES && tiles64 < AUTO_FEW_TILES)
    {
        LinearKernel::Gemv
    } else if (AUTO_TILED128_TILES.0..AUTO_TILED128_TILES.1).contains(&tiles128) {
        LinearKernel::Tiled128
    } else {
        LinearKernel::Tiled64
    };
    // A kernel the device's limits ruled out falls back to the 64 tile, then the blocked kernel.
    [want, LinearKernel::Tiled64, LinearKernel::Blocked]
        .into_iter()
        .find(|k| candidates.contains(k))
        .unwrap_or(candidates[0])
}

/// Up to this many rows, [`LinearKernel::Auto`] runs the GEMV kernel on hardware GPUs. The
/// thresholds here are H100 measurements: docs/KERNELS.md, "Kernel choice on a hardware GPU".
const AUTO_GEMV_MAX_ROWS: usize = 64;
/// ... and up to this many when the 64 tile would have fewer than [`AUTO_FEW_TILES`] tiles.
const AUTO_GEMV_MAX_ROWS_FEW_TILES: usize = 1024;
const AUTO_FEW_TILES: usize = 256;
/// [`LinearKernel::Auto`] takes the 128 tile with this many 128 tiles (at least, below): about
/// one or two waves on a large GPU; with more, the double-buffered 64 tile wins.
const AUTO_TILED128_TILES: (usize, usize) = (256, 1024);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_parse_and_print() {
        for k in LinearKernel::ALL {
            assert_eq!(k.to_string().parse::<LinearKernel>().unwrap(), k);
        }
        assert!("tiled".parse::<LinearKernel>().is_err());
    }

    #[test]
    fn auto_rule_by_rows_and_tiles() {
        let all = [
            LinearKernel::Gemv,
            LinearKernel::Tiled64,
            LinearKernel::Tiled128,
            LinearKernel::Blocked,
        ];
        assert_eq!(pick(&all, 1, 512), LinearKernel::Gemv);
        assert_eq!(pick(&all, 64, 4096), LinearKernel::Gemv);
        assert_eq!(pick(&all, 1024, 512), LinearKernel::Gemv); // 128 tiles of 64
        assert_eq!(pick(&all, 2048, 2048), LinearKernel::Tiled128); // 256 tiles of 128
        assert_eq!(pick(&all, 4096, 4096), LinearKernel::Tiled64); // 1,024 tiles of 128
        // Ruled out by the device: the 64 tile, then the blocked kernel.
        assert_eq!(pick(&[LinearKernel::Blocked], 1, 8), LinearKernel::Blocked);
        let no_gemv = [LinearKernel::Tiled64, LinearKernel::Blocked];
        assert_eq!(pick(&no_gemv, 1, 8), LinearKernel::Tiled64);
    }

    #[test]
    fn downlevel_limits_leave_out_what_does_not_fit() {
        let mut limits = wgpu::Limits::default();
        let all = buffer_candidates(LinearKernel::Auto, false, &limits).unwrap();
        assert_eq!(all.len(), 4);
        limits.max_compute_invocations_per_workgroup = 64;
        limits.max_compute_workgroup_size_x = 64;
        limits.max_compute_workgroup_size_y = 64;
        let some = buffer_candidates(LinearKernel::Auto, false, &limits).unwrap();
        assert_eq!(some, [LinearKernel::Tiled64, LinearKernel::Blocked]);
        let e = buffer_candidates(LinearKernel::Gemv, false, &limits).unwrap_err();
        assert!(e.to_string().contains("256×1 invocations"), "{e}");
        // Software adapters and the windowed choice fall back to the blocked kernel.
        assert_eq!(
            buffer_candidates(LinearKernel::Auto, true, &limits).unwrap(),
            [LinearKernel::Blocked]
        );
    }
}
