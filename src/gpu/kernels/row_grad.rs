//! The training plan's row-wise modules (`shaders/row_grad.wgsl`): softmax and log-softmax
//! (forward, backward), LayerNorm (forward, the input's gradient, and `gy·x̂` whose column sums
//! are `dγ`), PReLU (forward, the input's gradient, and the per-element products whose sums are
//! the slope's gradient), and an elementwise product (Dropout's mask). One file, one shader of sections, one entry point per pass: each
//! pipeline's module declares only its own entry's bindings (at most four storage buffers).

use crate::gpu::kernels::{Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, Slot, fold, wgsl_struct};

/// Invocations per workgroup (`WG` in the WGSL).
const WG: u64 = 64;

wgsl_struct! {
    /// The uniform block.
    pub(crate) struct RowGradDims {
        rows: u32,
        width: u32,
        groups_x: u32,
        /// softmax: 1 for log-softmax; LayerNorm: 1 with affine parameters; PReLU: 1 with a
        /// slope per feature.
        op: u32,
        /// LayerNorm's eps.
        eps: f32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

const DIMS: Slot = Slot::dims("RowGradDims");
const fn ro(binding: u32, name: &'static str) -> Slot {
    Slot::storage(binding, name, "array<f32>", true)
}
const fn rw(binding: u32, name: &'static str) -> Slot {
    Slot::storage(binding, name, "array<f32>", false)
}
const SOFTMAX_FORWARD: &[Slot] = &[DIMS, ro(1, "x"), rw(2, "y")];
const SOFTMAX_BACKWARD: &[Slot] = &[DIMS, ro(1, "y"), ro(2, "gy"), rw(3, "gx")];
const LAYERNORM_FORWARD: &[Slot] = &[DIMS, ro(1, "x"), ro(2, "gamma"), ro(3, "beta"), rw(4, "y")];
const LAYERNORM_BACKWARD: &[Slot] = &[DIMS, ro(1, "x"), ro(2, "gamma"), ro(3, "gy"), rw(4, "gx")];
const PRODUCT: &[Slot] = &[DIMS, ro(1, "x"), ro(2, "gy"), rw(3, "t")];
const PRELU_FORWARD: &[Slot] = &[DIMS, ro(1, "x"), ro(2, "a"), rw(3, "y")];
const PRELU_BACKWARD: &[Slot] = &[DIMS, ro(1, "x"), ro(2, "a"), ro(3, "gy"), rw(4, "gx")];
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[
    SOFTMAX_FORWARD,
    SOFTMAX_BACKWARD,
    LAYERNORM_FORWARD,
    LAYERNORM_BACKWARD,
    PRODUCT,
    PRELU_FORWARD,
    PRELU_BACKWARD,
];

/// Which pass (each is an entry point of the shader).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `x` → `y` (`op`: 1 for log-softmax).
    SoftmaxForward,
    /// `y`, `gy` → `gx`.
    SoftmaxBackward,
    /// `x`, `gamma`, `beta` → `y`.
    LayerNormForward,
    /// `x`, `gamma`, `gy` → `gx`.
    LayerNormBackward,
    /// `x`, `gy` → `t = gy·x̂`.
    LayerNormGxhat,
    /// `x`, `a` → `y`.
    PReluForward,
    /// `x`, `a`, `gy` → `gx`.
    PReluBackward,
    /// `x`, `gy` → `t = x > 0 ? 0 : x·gy`.
    PReluGslope,
    /// `x`, `gy` → `t = x·gy` (Dropout: a value or gradient times the scaled mask).
    Mul,
}

impl Entry {
    fn name(self) -> &'static str {
        match self {
            Entry::SoftmaxForward => "softmax_forward",
            Entry::SoftmaxBackward => "softmax_backward",
            Entry::LayerNormForward => "layernorm_forward",
            Entry::LayerNormBackward => "layernorm_backward",
            Entry::LayerNormGxhat => "layernorm_gxhat",
            Entry::PReluForward => "prelu_forward",
            Entry::PReluBackward => "prelu_backward",
            Entry::PReluGslope => "prelu_gslope",
            Entry::Mul => "mul",
        }
    }

    /// Its bindings.
    pub(crate) fn slots(self) -> &'static [Slot] {
        match self {
            Entry::SoftmaxForward => SOFTMAX_FORWARD,
            Entry::SoftmaxBackward => SOFTMAX_BACKWARD,
            Entry::LayerNormForward => LAYERNORM_FORWARD,
            Entry::LayerNormBackward => LAYERNORM_BACKWARD,
            Entry::LayerNormGxhat | Entry::PReluGslope | Entry::Mul => PRODUCT,
            Entry::PReluForward => PRELU_FORWARD,
            Entry::PReluBackward => PRELU_BACKWARD,
        }
    }

    /// One invocation per row (else per element).
    fn per_row(self) -> bool {
        !matches!(
            self,
            Entry::PReluForward | Entry::PReluBackward | Entry::PReluGslope | Entry::Mul
        )
    }
}

/// One pass over rows of `width` values.
#[derive(Debug)]
pub(crate) struct RowGrad {
    pub(crate) entry: Entry,
    pub(crate) width: usize,
    pub(crate) op: u32,
    pub(crate) eps: f32,
}

/// The shader's common part, then the sections `names` (by their `// ENTRY` markers).
fn source(names: &[&str]) -> String {
    let wgsl = shader!("row_grad.wgsl");
    let mut parts = wgsl.split("// ENTRY ");
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        let name = part.split([' ', '\n']).next().unwrap_or_default();
        if names.contains(&name) {
            out += part.split_once('\n').map_or("", |(_, body)| body);
        }
    }
    out
}

impl Kernel for RowGrad {
    fn slots(&self) -> &'static [Slot] {
        self.entry.slots()
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        let name = self.entry.name();
        let body = if name.starts_with("layernorm") {
            source(&["layernorm_stats", name])
        } else {
            source(&[name])
        };
        vec![PipelineSpec::checked::<RowGradDims>(
            "row_grad",
            name,
            self.slots(),
            NO_EPILOGUE,
            &body,
        )]
    }

    fn dispatches(&self, rows: usize, max_groups: u32) -> Vec<Dispatch> {
        let n = if self.entry.per_row() {
            rows
        } else {
            rows * self.width
        };
        let grid = fold((n as u64).div_ceil(WG), max_groups);
        let dims = RowGradDims {
            rows: rows as u32,
            width: self.width as u32,
            groups_x: grid.0,
            op: self.op,
            eps: self.eps,
            ..RowGradDims::default()
        };
        vec![Dispatch::new(0, &dims, grid)]
    }
}
