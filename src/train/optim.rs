//! Optimizers with PyTorch's single-tensor CPU op order (`_single_tensor_sgd`,
//! `_single_tensor_adam`), each op in f32 as PyTorch's CPU kernels do it: Python-side scalars
//! (`1 − dampening`, `lr / bias_correction1`, …) in f64 and rounded to f32 where a kernel takes
//! them, `add(alpha=)`, `lerp` and `addcmul` fused (ATen's kernels use `fmadd`), `addcdiv` as
//! `p + (v·m)/d`. Checked bit for bit against `torch.optim` on the CPU.

use crate::error::{Error, Result};
use crate::train::fused;

/// An optimizer and its hyperparameters (PyTorch's defaults from [`Optimizer::sgd`],
/// [`Optimizer::adam`], [`Optimizer::adamw`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// `torch.optim.SGD`.
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Momentum factor (0: none).
        momentum: f64,
        /// Dampening for momentum.
        dampening: f64,
        /// Nesterov momentum (needs momentum > 0 and dampening 0).
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// `torch.optim.Adam` (`decoupled: false`) or `torch.optim.AdamW` (`decoupled: true`).
    Adam {
        /// Learning rate.
        lr: f64,
        /// β₁, β₂.
        betas: (f64, f64),
        /// Added to the denominator.
        eps: f64,
        /// Weight decay: L2 in the gradient (Adam) or decoupled `p·(1 − lr·wd)` (AdamW).
        weight_decay: f64,
        /// The AMSGrad variant (the running maximum of the second moment).
        amsgrad: bool,
        /// AdamW.
        decoupled: bool,
    },
}

impl Optimizer {
    /// `SGD(lr=1e-3)` with no momentum.
    pub fn sgd(lr: f64) -> Self {
        Optimizer::Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// `Adam(lr)` with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn adam(lr: f64) -> Self {
        Optimizer::Adam {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
        }
    }

    /// `AdamW(lr)` with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
    pub fn adamw(lr: f64) -> Self {
        Optimizer::Adam {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
            amsgrad: false,
            decoupled: true,
        }
    }

    /// PyTorch's constructor checks, with its messages.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(m));
        match *self {
            Optimizer::Sgd {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            } => {
                if !non_negative(lr) {
                    return bad(format!("Invalid learning rate: {lr}"));
                }
                if !non_negative(momentum) {
                    return bad(format!("Invalid momentum value: {momentum}"));
                }
                if !non_negative(weight_decay) {
                    return bad(format!("Invalid weight_decay value: {weight_decay}"));
                }
                if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                    return bad("Nesterov momentum requires a momentum and zero dampening".into());
                }
                Ok(())
            }
            Optimizer::Adam {
                lr,
                betas: (b1, b2),
                eps,
                weight_decay,
                ..
            } => {
                if !non_negative(lr) {
                    return bad(format!("Invalid learning rate: {lr}"));
                }
                if !non_negative(eps) {
                    return bad(format!("Invalid epsilon value: {eps}"));
                }
                if !(0.0..1.0).contains(&b1) {
                    return bad(format!("Invalid beta parameter at index 0: {b1}"));
                }
                if !(0.0..1.0).contains(&b2) {
                    return bad(format!("Invalid beta parameter at index 1: {b2}"));
                }
                if !non_negative(weight_decay) {
                    return bad(format!("Invalid weight_decay value: {weight_decay}"));
                }
                Ok(())
            }
        }
    }
}

/// `v ≥ 0`, false for NaN (PyTorch's `not 0.0 <= v` checks).
fn non_negative(v: f64) -> bool {
    v >= 0.0
}

/// One parameter tensor's optimizer state.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Slot {
    /// SGD momentum buffer, or Adam's first moment.
    pub(crate) a: Option<Vec<f32>>,
    /// Adam's second moment.
    pub(crate) v: Vec<f32>,
    /// AMSGrad's running maximum of `v`.
    pub(crate) vmax: Vec<f32>,
    /// Steps taken (Adam's `step`).
    pub(crate) step: u64,
}

/// An optimizer with its per-parameter state.
#[derive(Clone, Debug)]
pub(crate) struct OptimState {
    config: Optimizer,
    slots: Vec<Slot>,
}

impl OptimState {
    pub(crate) fn new(config: Optimizer) -> Result<Self> {
        config.check()?;
        Ok(OptimState {
            config,
            slots: Vec::new(),
        })
    }

    /// The hyperparameters.
    pub(crate) fn config(&self) -> Optimizer {
        self.config
    }

    /// Each parameter's state (a checkpoint reads and writes it).
    pub(crate) fn slots_mut(&mut self) -> &mut Vec<Slot> {
        &mut self.slots
    }

    /// Each parameter's state, in [`Mlp::parameters`](crate::Mlp::parameters) order.
    pub(crate) fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Updates parameter `index` (`p`) with its gradient `grad`.
    pub(crate) fn update(&mut self, index: usize, p: &mut [f32], grad: &[f32]) {
        if self.slots.len() <= index {
            self.slots.resize_with(index + 1, Slot::default);
        }
        let slot = &mut self.slots[index];
        match self.config {
            Optimizer::Sgd {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            } => sgd(
                p,
                grad,
                slot,
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            ),
            Optimizer::Adam {
                lr,
                betas,
                eps,
                weight_decay,
                amsgrad,
                decoupled,
            } => adam(
                p,
                grad,
                slot,
                lr,
                betas,
                eps,
                weight_decay,
                amsgrad,
                decoupled,
            ),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn sgd(
    p: &mut [f32],
    grad: &[f32],
    slot: &mut Slot,
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    wd: f64,
) {
    let neg_lr = (-lr) as f32;
    // The common case in one pass, no copy of the gradient (the same ops and bits as below).
    if wd == 0.0 && momentum != 0.0 && !nesterov {
        match &mut slot.a {
            Some(buf) => {
                let (m, keep) = (momentum as f32, (1.0 - dampening) as f32);
                fused::threaded_momentum_step(p, buf, grad, keep, m, neg_lr);
            }
            None => {
                slot.a = Some(grad.to_vec());
                fused::axpy(p, grad, neg_lr);
            }
        }
        return;
    }
    // grad = grad.add(param, alpha=weight_decay)
    let mut g: Vec<f32> = if wd != 0.0 {
        let wd = wd as f32;
        grad.iter()
            .zip(p.iter())
            .map(|(&g, &p)| p.mul_add(wd, g))
            .collect()
    } else {
        grad.to_vec()
    };
    if momentum != 0.0 {
        match &mut slot.a {
            // buf.mul_(momentum).add_(grad, alpha=1 − dampening)
            Some(buf) => {
                let (m, keep) = (momentum as f32, (1.0 - dampening) as f32);
                for (b, &gv) in buf.iter_mut().zip(&g) {
                    *b = gv.mul_add(keep, *b * m);
                }
            }
            // First step: buf = clone(grad).
            None => slot.a = Some(g.clone()),
        }
        let buf = slot.a.as_deref().unwrap_or_default();
        if nesterov {
            let m = momentum as f32;
            for (gv, &b) in g.iter_mut().zip(buf) {
                *gv = b.mul_add(m, *gv);
            }
        } else {
            g.copy_from_slice(buf);
        }
    }
    // param.add_(grad, alpha=-lr)
    fused::axpy(p, &g, neg_lr);
}

#[allow(clippy::too_many_arguments)]
fn adam(
    p: &mut [f32],
    grad: &[f32],
    slot: &mut Slot,
    lr: f64,
    (beta1, beta2): (f64, f64),
    eps: f64,
    wd: f64,
    amsgrad: bool,
    decoupled: bool,
) {
    let n = p.len();
    if slot.a.is_none() {
        slot.a = Some(vec![0.0; n]);
        slot.v = vec![0.0; n];
        if amsgrad {
            slot.vmax = vec![0.0; n];
        }
    }
    slot.step += 1;
    let mut g = grad.to_vec();
    if wd != 0.0 {
        if decoupled {
            // param.mul_(1 − lr·wd)
            let f = (1.0 - lr * wd) as f32;
            p.iter_mut().for_each(|v| *v *= f);
        } else {
            let w = wd as f32;
            for (gv, &pv) in g.iter_mut().zip(p.iter()) {
                *gv = pv.mul_add(w, *gv);
            }
        }
    }
    let m = slot.a.as_mut().expect("initialised above");
    // exp_avg.lerp_(grad, 1 − β1): small weights use start + w·(end − start), others
    // end − (end − start)·(1 − w), both fused.
    let w = (1.0 - beta1) as f32;
    for (mv, &gv) in m.iter_mut().zip(&g) {
        let d = gv - *mv;
        *mv = if w.abs() < 0.5 {
            w.mul_add(d, *mv)
        } else {
            (w - 1.0).mul_add(d, gv)
        };
    }
    // exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=1 − β2)
    let (b2, c2) = (beta2 as f32, (1.0 - beta2) as f32);
    for (vv, &gv) in slot.v.iter_mut().zip(&g) {
        *vv *= b2;
        *vv = (c2 * gv).mul_add(gv, *vv);
    }
    let t = slot.step as f64;
    let bc1 = 1.0 - beta1.powf(t);
    let bc2 = 1.0 - beta2.powf(t);
    let step_size = lr / bc1;
    let bc2_sqrt = bc2.sqrt() as f32;
    let second: &[f32] = if amsgrad {
        for (mx, &vv) in slot.vmax.iter_mut().zip(&slot.v) {
            *mx = mx.max(vv);
        }
        &slot.vmax
    } else {
        &slot.v
    };
    let (neg_step, eps) = ((-step_size) as f32, eps as f32);
    for ((pv, &mv), &vv) in p.iter_mut().zip(m.iter()).zip(second) {
        // denom = (v.sqrt() / bc2_sqrt).add_(eps); param.addcdiv_(m, denom, value=-step_size)
        let denom = vv.sqrt() / bc2_sqrt + eps;
        *pv += neg_step * mv / denom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_momentum_follows_pytorch_by_hand() {
        // SGD(lr=0.1, momentum=0.9): step 1 buf = g; step 2 buf = 0.9·buf + g.
        let mut s = OptimState::new(Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        })
        .unwrap();
        let mut p = [1.0f32];
        s.update(0, &mut p, &[1.0]);
        assert_eq!(p[0], 0.9);
        s.update(0, &mut p, &[1.0]);
        assert!((p[0] - (0.9 - 0.1 * 1.9)).abs() < 1e-7);
    }

    #[test]
    fn adam_first_step_is_lr_times_sign() {
        // After one step m̂ = g and v̂ = g², so the update is lr·g/(|g| + eps) ≈ lr·sign(g).
        let mut s = OptimState::new(Optimizer::adam(0.01)).unwrap();
        let mut p = [0.5f32, -0.5];
        s.update(0, &mut p, &[3.0, -0.25]);
        assert!(
            (p[0] - 0.49).abs() < 1e-6 && (p[1] + 0.49).abs() < 1e-6,
            "{p:?}"
        );
    }

    /// Six updates of a 37-element tensor with given gradients, against torch.optim on the CPU
    /// (`tests/data/train/optim.json`): bit for bit, every element of every step.
    #[test]
    fn updates_are_bit_exact_with_torch() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/train/optim.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let f32s = |v: &serde_json::Value| -> Vec<f32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        };
        for c in v["cases"].as_array().unwrap() {
            let o = &c["optim"];
            let num = |k: &str, d: f64| o.get(k).and_then(|x| x.as_f64()).unwrap_or(d);
            let name = o["name"].as_str().unwrap();
            let config = if name == "sgd" {
                Optimizer::Sgd {
                    lr: num("lr", 0.0),
                    momentum: num("momentum", 0.0),
                    dampening: num("dampening", 0.0),
                    nesterov: o.get("nesterov").is_some_and(|x| x == true),
                    weight_decay: num("weight_decay", 0.0),
                }
            } else {
                let b = o["betas"].as_array().unwrap();
                Optimizer::Adam {
                    lr: num("lr", 0.0),
                    betas: (b[0].as_f64().unwrap(), b[1].as_f64().unwrap()),
                    eps: num("eps", 1e-8),
                    weight_decay: num("weight_decay", if name == "adamw" { 0.01 } else { 0.0 }),
                    amsgrad: o.get("amsgrad").is_some_and(|x| x == true),
                    decoupled: name == "adamw",
                }
            };
            let mut s = OptimState::new(config).unwrap();
            let mut p = f32s(&c["p0"]);
            for (step, (g, want)) in c["grads"]
                .as_array()
                .unwrap()
                .iter()
                .zip(c["after"].as_array().unwrap())
                .enumerate()
            {
                s.update(0, &mut p, &f32s(g));
                let want = f32s(want);
                for (i, (a, b)) in p.iter().zip(&want).enumerate() {
                    assert_eq!(
                        a.to_bits(),
                        b.to_bits(),
                        "{o} step {step} [{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_hyperparameters_are_refused() {
        let bad = [
            Optimizer::sgd(-1.0),
            Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.0,
                dampening: 0.0,
                nesterov: true,
                weight_decay: 0.0,
            },
            Optimizer::Adam {
                lr: 0.1,
                betas: (1.0, 0.9),
                eps: 1e-8,
                weight_decay: 0.0,
                amsgrad: false,
                decoupled: false,
            },
            Optimizer::adam(f64::NAN),
        ];
        for o in bad {
            assert!(OptimState::new(o).is_err(), "{o:?}");
        }
    }
}
