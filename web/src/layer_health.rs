//! Gradient health per Linear layer, as issue 22 lists it, for the training panel's table:
//! computed in the web crate from the model, one batch's gradients and the training rows (the
//! library's own per-epoch statistics are to replace this when they land).

use wgpu_mlp::{Activation, Matrix, Mlp, Module, cpu};

/// A pre-activation beyond this magnitude counts as saturated for sigmoid and tanh (issue 22's
/// threshold: their slope there is under 0.018 and 0.0014).
pub const SATURATED: f32 = 4.0;

/// One Linear layer's health, as issue 22 lists it (computed here from the model and a batch's
/// gradients; the library's own statistics are to replace this when they land).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerHealth {
    /// `Linear(in, out)` and the activation after it.
    pub name: String,
    /// Mean |∂loss/∂weight| on the last batch.
    pub grad_weight: f32,
    /// Mean |∂loss/∂bias| on the last batch.
    pub grad_bias: f32,
    /// Mean |weight|.
    pub weight: f32,
    /// mean |Δweight| / mean |weight| of the last step (0 before the first).
    pub update_ratio: f32,
    /// For ReLU-family activations: the fraction of units never positive over the training
    /// rows (dead). `None` for others.
    pub dead: Option<f32>,
    /// For sigmoid and tanh: the fraction of (row, unit) pre-activations beyond ±[`SATURATED`].
    pub saturated: Option<f32>,
    /// Whether every unit (row of the weight, and its bias) is the same: the symmetry that
    /// training never breaks.
    pub identical_units: bool,
}

/// Each Linear layer's health: `grads` are the trainable tensors' gradients in
/// [`Mlp::parameters`] order; `train_x` the rows the dead and saturated units are counted over;
/// `update_ratios` the last step's mean |ΔW| / mean |W| per Linear layer.
pub fn layer_health(
    model: &Mlp,
    grads: &[Vec<f32>],
    train_x: &Matrix,
    update_ratios: &[f32],
) -> Result<Vec<LayerHealth>, String> {
    let modules = model.modules();
    let mut out = Vec::new();
    let mut k = 0; // index into grads (parameters order: weight, bias per Linear)
    for (i, m) in modules.iter().enumerate() {
        let Module::Linear(l) = m else { continue };
        let act = match modules.get(i + 1) {
            Some(Module::Activation(a) | Module::Function(a)) => Some(*a),
            _ => None,
        };
        let gw = mean_abs(&grads[k]);
        let gb = if l.bias().is_some() {
            mean_abs(&grads[k + 1])
        } else {
            0.0
        };
        k += 1 + usize::from(l.bias().is_some());
        // The layer's pre-activations over the training rows: the model up to this Linear.
        let needs_pre = matches!(
            act,
            Some(
                Activation::Relu
                    | Activation::LeakyRelu(_)
                    | Activation::Sigmoid
                    | Activation::Tanh
            )
        );
        let pre = if needs_pre {
            let prefix = Mlp::new(modules[..=i].to_vec()).map_err(|e| e.to_string())?;
            Some(cpu::forward(&prefix, &train_x).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let width = l.out_features();
        let dead = match (act, &pre) {
            (Some(Activation::Relu | Activation::LeakyRelu(_)), Some(p)) => {
                let mut alive = vec![false; width];
                for row in p.as_slice().chunks_exact(width) {
                    for (a, v) in alive.iter_mut().zip(row) {
                        *a |= *v > 0.0;
                    }
                }
                Some(alive.iter().filter(|a| !**a).count() as f32 / width as f32)
            }
            _ => None,
        };
        let saturated = match (act, &pre) {
            (Some(Activation::Sigmoid | Activation::Tanh), Some(p)) => {
                let s = p.as_slice();
                Some(s.iter().filter(|v| v.abs() > SATURATED).count() as f32 / s.len() as f32)
            }
            _ => None,
        };
        let name = match act {
            Some(a) => format!("Linear({}, {}) → {}", l.in_features(), width, act_name(a)),
            None => format!("Linear({}, {}) (logits)", l.in_features(), width),
        };
        out.push(LayerHealth {
            name,
            grad_weight: gw,
            grad_bias: gb,
            weight: mean_abs(l.weight()),
            update_ratio: update_ratios.get(out.len()).copied().unwrap_or(0.0),
            dead,
            saturated,
            identical_units: width > 1 && identical_rows(l.weight(), l.in_features(), l.bias()),
        });
    }
    Ok(out)
}

fn act_name(a: Activation) -> &'static str {
    match a {
        Activation::Relu => "ReLU",
        Activation::LeakyRelu(_) => "LeakyReLU",
        Activation::Tanh => "Tanh",
        Activation::Sigmoid => "Sigmoid",
        Activation::Gelu => "GELU",
        _ => "activation",
    }
}

pub(crate) fn mean_abs(v: &[f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    (v.iter().map(|x| f64::from(x.abs())).sum::<f64>() / v.len() as f64) as f32
}

/// Whether every row of `w` (`[out, cols]`) and every bias equals the first's.
fn identical_rows(w: &[f32], cols: usize, bias: Option<&[f32]>) -> bool {
    let first = &w[..cols];
    w.chunks_exact(cols).all(|r| r == first) && bias.is_none_or(|b| b.iter().all(|v| *v == b[0]))
}
