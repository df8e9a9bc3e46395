//! The Adam / AdamW update (`shaders/adam.wgsl`): PyTorch's `torch.optim.Adam` and `AdamW`
//! step on one parameter tensor (betas, eps, weight decay coupled or decoupled, amsgrad), with
//! its moments beside it on the device. The per-step scalars (bias corrections) come from the
//! step-state buffer ([`step_state`](super::step_state)); the formula, op for op, is the
//! shader's header and the CPU's `train/optim.rs`.

use crate::gpu::kernels::{
    Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, Slot, update_walk, wgsl_struct,
};

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
        let body = update_walk::wgsl(shader!("adam.wgsl"));
        vec![PipelineSpec::checked::<AdamDims>(
            "adam",
            "adam",
            SLOTS,
            NO_EPILOGUE,
            &body,
        )]
    }

    fn dispatches(&self, _rows: usize, max_groups: u32) -> Vec<Dispatch> {
        let grid = update_walk::grid(self.len, max_groups);
        let h = &self.hyper;
        let weight_decay = match (h.weight_decay, h.decoupled) {
            (0.0, _) => 0.0,
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

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::gpu::kernels::step_state;
    use crate::gpu::ops::run_kernel;
    use crate::gpu::{GpuContext, GpuOptions};
    use crate::train::Optimizer;
    use crate::train::optim::OptimState;

    /// Values over 30 decades, both signs.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut g = crate::Generator::new(seed);
        (0..n)
            .map(|_| {
                let sign = if g.uniform_f64(0.0, 1.0) < 0.5 { -1.0 } else { 1.0 };
                (sign * 10f64.powf(g.uniform_f64(-15.0, 15.0))) as f32
            })
            .collect()
    }

    /// Three steps of every Adam configuration against the CPU's optimizer (bit for bit
    /// `torch.optim`): within 8 ulps of the parameter's magnitude plus the step's (the device's
    /// sqrt and division may round differently from the CPU's correctly rounded ones).
    #[test]
    fn adam_matches_the_cpu_optimizer_on_odd_sizes() {
        let ctx = GpuContext::new(&GpuOptions::default()).expect("a GPU adapter");
        let configs = [
            (false, 0.0, false),
            (false, 0.1, false),
            (true, 0.0, false),
            (false, 0.01, true),
            (true, 0.05, true),
        ];
        for n in [1, 3, 7, 31, 33, 257, 70_000] {
            for (c, &(amsgrad, weight_decay, decoupled)) in configs.iter().enumerate() {
                let hyper = AdamHyper {
                    lr: 1e-2,
                    betas: (0.9, 0.999),
                    eps: 1e-8,
                    weight_decay,
                    amsgrad,
                    decoupled,
                };
                let optimizer = Optimizer::Adam {
                    lr: hyper.lr,
                    betas: hyper.betas,
                    eps: hyper.eps,
                    weight_decay,
                    amsgrad,
                    decoupled,
                };
                let mut cpu = OptimState::new(optimizer).unwrap();
                let mut p = values(n, 1 + c as u64);
                let mut p_cpu = p.clone();
                let mut state = vec![0.0f32; n * hyper.state_per_value()];
                let kernel = Adam { len: n, hyper };
                for t in 1..=3u64 {
                    let mut g = values(n, 100 * t + n as u64);
                    if n >= 3 {
                        g[1] = f32::NAN;
                    }
                    let mut step = vec![0.0f32; step_state::LEN];
                    let (neg, bc2) = hyper.step_scalars(t);
                    step[step_state::NEG_STEP_SIZE] = neg as f32;
                    step[step_state::BC2_SQRT] = bc2 as f32;
                    let out = run_kernel(
                        &ctx,
                        &kernel,
                        1,
                        &[("p", &p), ("g", &g), ("state", &state), ("step", &step)],
                    )
                    .expect("the Adam kernel runs");
                    let got = |name: &str| out.iter().find(|o| o.0 == name).unwrap().1.clone();
                    let before = p_cpu.clone();
                    cpu.update(0, &mut p_cpu, &g);
                    let gp = got("p");
                    for i in 0..n {
                        let (a, b) = (gp[i], p_cpu[i]);
                        let what = format!("n {n} config {c} step {t} [{i}]");
                        if b.is_nan() {
                            assert!(a.is_nan(), "{what}: gpu {a}, cpu NaN");
                            continue;
                        }
                        let scale = before[i].abs() + (b - before[i]).abs() + 1.2 * hyper.lr as f32;
                        assert!(
                            (a - b).abs() <= 8.0 * f32::EPSILON * scale,
                            "{what}: gpu {a:e}, cpu {b:e}"
                        );
                    }
                    p = gp;
                    state = got("state");
                }
            }
        }
    }

    #[test]
    fn a_skipped_step_changes_nothing() {
        let ctx = GpuContext::new(&GpuOptions::default()).expect("a GPU adapter");
        let hyper = AdamHyper {
            lr: 0.1,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: true,
            decoupled: false,
        };
        let (p, g, state) = (vec![1.0f32; 5], vec![0.5f32; 5], vec![0.25f32; 15]);
        for flag in [step_state::STOP, step_state::NO_UPDATE] {
            let mut step = vec![0.0f32; step_state::LEN];
            step[step_state::NEG_STEP_SIZE] = -1.0;
            step[step_state::BC2_SQRT] = 1.0;
            step[flag] = 1.0;
            let kernel = Adam { len: 5, hyper };
            let values = [("p", &p[..]), ("g", &g), ("state", &state), ("step", &step)];
            let out = run_kernel(&ctx, &kernel, 1, &values).unwrap();
            assert_eq!(out[0], ("p", p.clone()));
            assert_eq!(out[1], ("state", state.clone()));
        }
    }
}
