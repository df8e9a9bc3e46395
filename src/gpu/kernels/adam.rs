//! The Adam / AdamW update (`shaders/adam.wgsl`): PyTorch's `torch.optim.Adam` and `AdamW`
//! step on one parameter tensor (betas, eps, weight decay coupled or decoupled, amsgrad), with
//! its moments beside it on the device. The per-step scalars (bias corrections) come from the
//! step-state buffer ([`step_state`](super::step_state)); the formula, op for op, is the
//! shader's header and the CPU's `train/optim.rs`.

use crate::gpu::kernels::{
    Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, Slot, fold, step_state, wgsl_struct,
};

/// Invocations per workgroup (`WG` in the WGSL).
const WG: u64 = 64;

wgsl_struct! {
    /// The uniform block: the tensor's length, the folded grid and the fixed hyper-parameters.
    pub(crate) struct AdamDims {
        n: u32,
        groups_x: u32,
        /// Bit 0: amsgrad; bit 1: decoupled (AdamW: `weight_decay` holds `1 − lr·wd`).
        flags: u32,
        one_minus_beta1: f32,
        beta2: f32,
        one_minus_beta2: f32,
        eps: f32,
        /// `wd` (Adam) or `1 − lr·wd` (AdamW), rounded from f64; 0 when there is none.
        weight_decay: f32,
    }
}

const DIMS: Slot = Slot::dims("AdamDims");
/// The parameter, updated in place.
pub(crate) const P: Slot = Slot::storage(1, "p", "array<f32>", false);
/// Its gradient.
pub(crate) const G: Slot = Slot::storage(2, "g", "array<f32>", true);
/// Its state: `exp_avg`, `exp_avg_sq` and (amsgrad) `max_exp_avg_sq`, `n` values each.
pub(crate) const STATE: Slot = Slot::storage(3, "state", "array<f32>", false);
/// The step-state buffer.
pub(crate) const STEP: Slot = Slot::storage(4, "step", "array<f32>", true);
/// The bindings.
pub(crate) const SLOTS: &[Slot] = &[DIMS, P, G, STATE, STEP];
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[SLOTS];

/// `torch.optim.Adam(W)`'s hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AdamHyper {
    pub(crate) lr: f64,
    pub(crate) betas: (f64, f64),
    pub(crate) eps: f64,
    pub(crate) weight_decay: f64,
    pub(crate) amsgrad: bool,
    pub(crate) decoupled: bool,
}

impl AdamHyper {
    /// Values of state per parameter value.
    pub(crate) fn state_per_value(&self) -> usize {
        if self.amsgrad { 3 } else { 2 }
    }

    /// The step-dependent scalars of step `t` (from 1): `−lr/(1 − β1^t)` and `√(1 − β2^t)`,
    /// in f64 as PyTorch's Python computes them.
    pub(crate) fn step_scalars(&self, t: u64) -> (f64, f64) {
        let t = t as f64;
        let bc1 = 1.0 - self.betas.0.powf(t);
        let bc2 = 1.0 - self.betas.1.powf(t);
        (-(self.lr / bc1), bc2.sqrt())
    }
}

/// One Adam step over a parameter of `len` values.
#[derive(Debug)]
pub(crate) struct Adam {
    pub(crate) len: usize,
    pub(crate) hyper: AdamHyper,
}

impl Kernel for Adam {
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        let body = [&step_state::wgsl(), shader!("adam.wgsl")].concat();
        vec![PipelineSpec::checked::<AdamDims>(
            "adam",
            "adam",
            SLOTS,
            NO_EPILOGUE,
            &body,
        )]
    }

    fn dispatches(&self, _rows: usize, max_groups: u32) -> Vec<Dispatch> {
        let grid = fold((self.len as u64).div_ceil(WG), max_groups);
        let h = &self.hyper;
        let weight_decay = match (h.weight_decay, h.decoupled) {
            (wd, _) if wd == 0.0 => 0.0,
            (wd, true) => (1.0 - h.lr * wd) as f32,
            (wd, false) => wd as f32,
        };
        let dims = AdamDims {
            n: self.len as u32,
            groups_x: grid.0,
            flags: u32::from(h.amsgrad) | (u32::from(h.decoupled) << 1),
            one_minus_beta1: (1.0 - h.betas.0) as f32,
            beta2: h.betas.1 as f32,
            one_minus_beta2: (1.0 - h.betas.1) as f32,
            eps: h.eps as f32,
            weight_decay,
        };
        vec![Dispatch::new(0, &dims, grid)]
    }
}
