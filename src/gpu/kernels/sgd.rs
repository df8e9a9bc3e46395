//! The SGD update (`shaders/sgd.wgsl`): PyTorch's `torch.optim.SGD` step on one parameter
//! tensor (learning rate, momentum, dampening, Nesterov, weight decay), with its momentum buffer
//! beside it on the device. The formula, op for op: the shader's header and
//! PyTorch's `_single_tensor_sgd` (torch/optim/sgd.py). The training plan runs it as an update
//! pass; whether this is the first step (the momentum buffer is not set yet) comes from the
//! step-state buffer ([`step_state`](super::step_state)), so one replay serves every step.

use crate::gpu::kernels::{
    Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, Slot, update_walk, wgsl_struct,
};

wgsl_struct! {
    /// The uniform block: the tensor's length, the folded grid and the hyper-parameters.
    pub(crate) struct SgdDims {
        n: u32,
        /// Workgroups along x of the folded grid.
        groups_x: u32,
        nesterov: u32,
        pad0: u32,
        /// `−lr`, rounded from f64 (`add_(grad, alpha=-lr)`).
        neg_lr: f32,
        momentum: f32,
        /// `1 − dampening`, rounded from f64 as PyTorch rounds its scalar.
        one_minus_dampening: f32,
        weight_decay: f32,
    }
}

const DIMS: Slot = Slot::dims("SgdDims");
/// The parameter, updated in place.
pub(crate) const P: Slot = Slot::storage(1, "p", "array<f32>", false);
/// Its gradient.
pub(crate) const G: Slot = Slot::storage(2, "g", "array<f32>", true);
/// Its momentum buffer (read and written only when momentum ≠ 0).
pub(crate) const BUF: Slot = Slot::storage(3, "buf", "array<f32>", false);
/// The step-state buffer.
pub(crate) const STEP: Slot = Slot::storage(4, "step", "array<f32>", true);
/// The bindings.
pub(crate) const SLOTS: &[Slot] = &[DIMS, P, G, BUF, STEP];
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[SLOTS];

/// `torch.optim.SGD`'s hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SgdHyper {
    pub(crate) lr: f64,
    pub(crate) momentum: f64,
    pub(crate) dampening: f64,
    pub(crate) nesterov: bool,
    pub(crate) weight_decay: f64,
}

/// One SGD step over a parameter of `len` values.
#[derive(Debug)]
pub(crate) struct Sgd {
    pub(crate) len: usize,
    pub(crate) hyper: SgdHyper,
}

impl Kernel for Sgd {
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        let body = update_walk::wgsl(shader!("sgd.wgsl"));
        vec![PipelineSpec::checked::<SgdDims>(
            "sgd",
            "sgd",
            SLOTS,
            NO_EPILOGUE,
            &body,
        )]
    }

    fn dispatches(&self, _rows: usize, max_groups: u32) -> Vec<Dispatch> {
        let grid = update_walk::grid(self.len, max_groups);
        let h = &self.hyper;
        let dims = SgdDims {
            n: self.len as u32,
            groups_x: grid.0,
            nesterov: u32::from(h.nesterov),
            pad0: 0,
            neg_lr: (-h.lr) as f32,
            momentum: h.momentum as f32,
            one_minus_dampening: (1.0 - h.dampening) as f32,
            weight_decay: h.weight_decay as f32,
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

    /// The same step on the CPU in f32, op for op as PyTorch's single-tensor path.
    struct Cpu {
        p: Vec<f32>,
        buf: Vec<f32>,
        /// Per value, the magnitudes a fused multiply-add on the device may round differently.
        p_scale: Vec<f32>,
        buf_scale: Vec<f32>,
    }

    fn cpu_step(s: &Sgd, first: bool, p: &[f32], g: &[f32], buf: &[f32]) -> Cpu {
        let h = &s.hyper;
        let (lr, mom, damp, wd) = (
            h.lr as f32,
            h.momentum as f32,
            (1.0 - h.dampening) as f32,
            h.weight_decay as f32,
        );
        let mut out = Cpu {
            p: Vec::new(),
            buf: buf.to_vec(),
            p_scale: Vec::new(),
            buf_scale: vec![0.0; p.len()],
        };
        for i in 0..p.len() {
            let w = p[i];
            let mut d = g[i];
            let mut scale = g[i].abs();
            if wd != 0.0 {
                d += wd * w;
                scale += (wd * w).abs();
            }
            if mom != 0.0 {
                let b = if first { d } else { mom * buf[i] + damp * d };
                out.buf_scale[i] = (mom * buf[i]).abs() + scale;
                scale += out.buf_scale[i] * (1.0 + mom);
                out.buf[i] = b;
                d = if h.nesterov { d + mom * b } else { b };
            }
            out.p.push(w - lr * d);
            out.p_scale.push(w.abs() + lr * scale);
        }
        out
    }

    /// Random values over 40 decades, both signs, and a NaN and an infinity where there is room.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let sign = if next() < 0.5 { -1.0 } else { 1.0 };
                (sign * 10f64.powf(next() * 40.0 - 20.0) * next()) as f32
            })
            .collect()
    }

    fn check(what: &str, gpu: &[f32], cpu: &[f32], scale: &[f32]) {
        for (i, ((&a, &b), &s)) in gpu.iter().zip(cpu).zip(scale).enumerate() {
            let ok = if b.is_finite() {
                (a - b).abs() <= 4.0 * f32::EPSILON * s
            } else {
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
            };
            assert!(ok, "{what}[{i}]: gpu {a:e}, cpu {b:e} (scale {s:e})");
        }
    }

    #[test]
    fn sgd_matches_pytorchs_formula_on_odd_sizes() {
        let ctx = GpuContext::new(&GpuOptions::default()).expect("a GPU adapter");
        let hypers = [
            (0.1, 0.0, 0.0, false, 0.0),
            (0.01, 0.9, 0.0, false, 0.0),
            (0.05, 0.9, 0.25, false, 1e-2),
            (0.3, 0.5, 0.0, true, 1e-4),
        ];
        // 4,200,000 values need a folded grid (over 65,535 workgroups of 64).
        for n in [1, 3, 7, 31, 33, 257, 4_200_000] {
            for (k, &(lr, momentum, dampening, nesterov, weight_decay)) in hypers.iter().enumerate()
            {
                if n > 65_535 * 64 && k != 3 {
                    continue;
                }
                let hyper = SgdHyper {
                    lr,
                    momentum,
                    dampening,
                    nesterov,
                    weight_decay,
                };
                let mut p = values(n, 1 + k as u64);
                let mut buf = vec![0.0f32; n];
                if n >= 3 {
                    p[n - 1] = f32::INFINITY;
                }
                // Three steps: the first sets the momentum buffer, the next two update it.
                for step in 0..3 {
                    let mut g = values(n, 100 * n as u64 + step);
                    if n >= 3 {
                        g[1] = f32::NAN;
                    }
                    let s = Sgd { len: n, hyper };
                    let cpu = cpu_step(&s, step == 0, &p, &g, &buf);
                    let mut state = vec![0.0f32; step_state::LEN];
                    state[step_state::FIRST] = f32::from(u8::from(step == 0));
                    let values = [("p", &p[..]), ("g", &g), ("buf", &buf), ("step", &state)];
                    let out = run_kernel(&ctx, &s, 1, &values).expect("the SGD kernel runs");
                    let got = |name: &str| {
                        out.iter().find(|(n, _)| *n == name).expect("read back").1.clone()
                    };
                    let what = format!("n {n}, hyper {k}, step {step}");
                    check(&format!("{what}: p"), &got("p"), &cpu.p, &cpu.p_scale);
                    if momentum != 0.0 {
                        check(&format!("{what}: buf"), &got("buf"), &cpu.buf, &cpu.buf_scale);
                    }
                    if n >= 3 {
                        assert!(got("p")[1].is_nan(), "{what}: a NaN gradient gives NaN");
                    }
                    p = got("p");
                    buf = got("buf");
                }
            }
        }
    }
}
