//! BatchNorm1d in train mode (`shaders/batchnorm.wgsl`): batch statistics, normalisation, the
//! affine step, the running statistics' update, and the backward (column sums of `g` and
//! `g·x̂`, which are `dβ` and `dγ`, then the input's gradient). One shader of sections, an
//! entry point per pass, each with its own bindings (at most four storage buffers); the
//! formulas are the shader's header.

use crate::gpu::kernels::{
    Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, Slot, fold, step_state, wgsl_struct,
};

/// Invocations per workgroup (`WG` in the WGSL).
const WG: u64 = 64;

wgsl_struct! {
    /// The uniform block.
    pub(crate) struct BatchNormDims {
        rows: u32,
        /// Features.
        cols: u32,
        groups_x: u32,
        /// 1 with γ and β.
        affine: u32,
        eps: f32,
        /// The running statistics' momentum (PyTorch's default 0.1).
        momentum: f32,
        pad0: u32,
        pad1: u32,
    }
}

const DIMS: Slot = Slot::dims("BatchNormDims");
const fn ro(binding: u32, name: &'static str) -> Slot {
    Slot::storage(binding, name, "array<f32>", true)
}
const fn rw(binding: u32, name: &'static str) -> Slot {
    Slot::storage(binding, name, "array<f32>", false)
}
const STATS: &[Slot] = &[DIMS, ro(1, "x"), rw(2, "st")];
const NORMALIZE: &[Slot] = &[DIMS, ro(1, "x"), ro(2, "st"), rw(3, "xhat")];
const AFFINE: &[Slot] = &[DIMS, ro(1, "xhat"), ro(2, "gamma"), ro(3, "beta"), rw(4, "y")];
const SUMS: &[Slot] = &[DIMS, ro(1, "xhat"), ro(2, "g"), rw(3, "sum")];
const PARAM_GRADS: &[Slot] = &[DIMS, ro(1, "sum"), rw(2, "ggamma"), rw(3, "gbeta")];
const COEF: &[Slot] = &[DIMS, ro(1, "st"), ro(2, "gamma"), ro(3, "sum"), rw(4, "k")];
const DX: &[Slot] = &[DIMS, ro(1, "xhat"), ro(2, "g"), ro(3, "k"), rw(4, "gx")];
const RUNNING: &[Slot] = &[DIMS, ro(1, "st"), rw(2, "rmean"), rw(3, "rvar"), ro(4, "step")];
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[
    STATS,
    NORMALIZE,
    AFFINE,
    SUMS,
    PARAM_GRADS,
    COEF,
    DX,
    RUNNING,
];

/// Which pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `x` → `st`: per column the mean, `r` and the unbiased variance (`[3, cols]`).
    Stats,
    /// `x`, `st` → `xhat`.
    Normalize,
    /// `xhat`, `gamma`, `beta` → `y`.
    Affine,
    /// `xhat`, `g` → `sum`: per column `Σ g` and `Σ g·x̂` (`[2, cols]`).
    Sums,
    /// `sum` → `ggamma`, `gbeta`.
    ParamGrads,
    /// `st`, `gamma`, `sum` → `k`: per column `r·γ`, `Σg/n`, `Σg·x̂/n` (`[3, cols]`).
    Coef,
    /// `xhat`, `g`, `k` → `gx`.
    Dx,
    /// `st`, `step` → `rmean`, `rvar` (an update pass: skipped when the step's is).
    Running,
}

impl Entry {
    fn name(self) -> &'static str {
        match self {
            Entry::Stats => "stats",
            Entry::Normalize => "normalize",
            Entry::Affine => "affine",
            Entry::Sums => "sums",
            Entry::ParamGrads => "param_grads",
            Entry::Coef => "coef",
            Entry::Dx => "dx",
            Entry::Running => "running",
        }
    }

    fn slots(self) -> &'static [Slot] {
        match self {
            Entry::Stats => STATS,
            Entry::Normalize => NORMALIZE,
            Entry::Affine => AFFINE,
            Entry::Sums => SUMS,
            Entry::ParamGrads => PARAM_GRADS,
            Entry::Coef => COEF,
            Entry::Dx => DX,
            Entry::Running => RUNNING,
        }
    }
}

/// One BatchNorm1d pass over a batch of rows of `cols` features.
#[derive(Debug)]
pub(crate) struct BatchNorm {
    pub(crate) entry: Entry,
    pub(crate) cols: usize,
    pub(crate) affine: bool,
    pub(crate) eps: f32,
    pub(crate) momentum: f32,
}

impl Kernel for BatchNorm {
    fn slots(&self) -> &'static [Slot] {
        self.entry.slots()
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        let name = self.entry.name();
        let wgsl = shader!("batchnorm.wgsl");
        let mut parts = wgsl.split("// ENTRY ");
        let mut body = parts.next().unwrap_or_default().to_string();
        for part in parts {
            if let Some((head, text)) = part.split_once('\n')
                && head.trim() == name
            {
                body += text;
            }
        }
        if self.entry == Entry::Running {
            body = step_state::wgsl() + &body;
        }
        vec![PipelineSpec::checked::<BatchNormDims>(
            "batchnorm",
            name,
            self.slots(),
            NO_EPILOGUE,
            &body,
        )]
    }

    fn dispatches(&self, rows: usize, max_groups: u32) -> Vec<Dispatch> {
        let groups = match self.entry {
            // One workgroup per column.
            Entry::Stats | Entry::Sums => self.cols as u64,
            Entry::ParamGrads | Entry::Coef | Entry::Running => (self.cols as u64).div_ceil(WG),
            Entry::Normalize | Entry::Affine | Entry::Dx => {
                (rows as u64 * self.cols as u64).div_ceil(WG)
            }
        };
        let grid = fold(groups, max_groups);
        let dims = BatchNormDims {
            rows: rows as u32,
            cols: self.cols as u32,
            groups_x: grid.0,
            affine: u32::from(self.affine),
            eps: self.eps,
            momentum: self.momentum,
            ..BatchNormDims::default()
        };
        vec![Dispatch::new(0, &dims, grid)]
    }
}
