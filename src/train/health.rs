//! Gradient health, the primer made visible: a [`Monitor`] watches every step of an epoch
//! ([`Trainer::step_monitored`](crate::train::Trainer::step_monitored), or
//! [`Monitor::observe_step`] after a step taken any other way) and reports, per Linear layer,
//! what the primer's lessons are about:
//!
//! - `grad`: the mean |gradient| of the weight over the epoch's steps (vanishing gradients:
//!   a deep sigmoid stack's first layer);
//! - `update`: the mean over the steps of ‖Δw‖ / ‖w‖ (Frobenius norms; ~1e-3 is the usual
//!   healthy order of magnitude);
//! - `dead`: for a layer followed by ReLU, LeakyReLU, ReLU6 or PReLU, the fraction of its
//!   units whose pre-activation was never > 0 on any sample of the epoch;
//! - `saturated`: for a layer followed by sigmoid or tanh, the fraction of (sample, unit)
//!   pre-activations with |x| > 4 (sigmoid' < 0.018, tanh' < 0.0014 there);
//! - `identical`: every unit (row of the weight, and its bias) equal to the first at the end of
//!   the epoch: the symmetry a constant init never breaks.
//!
//! Warnings: identical units, and a layer whose `grad` is under 1/1000 of the last layer's.
//! The activation counted is the first activation after the layer (a BatchNorm, Dropout or
//! LayerNorm between them is passed over).
//!
//! Where the statistics come from: on the CPU paths, the step's own forward and backward. A step
//! on the GPU reads nothing back but its loss, so there the monitor recomputes the step on the
//! f64 reference ([`Monitor::observe_step`]: the model before the step, its forward, loss and
//! backward on the batch, and the update from the parameters before and after): the statistics
//! `step_monitored` gives on [`Backend::CpuReference`](crate::train::Backend::CpuReference),
//! for the cost of one reference forward and backward (and, on the GPU, one read-back of the
//! parameters) per step. docs/TRAINING.md, "Gradient health".

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::model::{Mlp, Module, TensorKind};
use crate::rng::Generator;
use crate::train::backward::{self, Tape};
use crate::train::linear_grad::Precision;
use crate::train::loss::{Loss, Reduction, Target};
use crate::train::metrics::{Evaluation, Sums};

/// A pre-activation beyond this magnitude counts as saturated (sigmoid/tanh).
pub const SATURATION: f32 = 4.0;
/// A layer whose mean |gradient| is below the last layer's divided by this gets a warning.
pub const VANISHING_RATIO: f64 = 1000.0;

/// What follows a Linear layer, as far as health is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Follower {
    /// ReLU-family: units can die. The module index of the activation.
    Rectifier(usize),
    /// Sigmoid or tanh: units can saturate.
    Squashing(usize),
    None,
}

/// One Linear layer's running sums over an epoch.
#[derive(Clone, Debug)]
struct LayerSums {
    module: usize,
    units: usize,
    follower: Follower,
    grad: f64,
    update: f64,
    steps: u64,
    ever_active: Vec<bool>,
    saturated: u64,
    seen: u64,
}

/// One Linear layer's health over an epoch (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerHealth {
    /// The layer's position among the model's Linear layers (from 1).
    pub layer: usize,
    /// Its index in [`Mlp::modules`].
    pub module: usize,
    /// Its output units.
    pub units: usize,
    /// Mean |gradient| of the weight.
    pub grad: f64,
    /// Mean ‖Δw‖ / ‖w‖ per step.
    pub update: f64,
    /// Fraction of units never active, for a ReLU-family layer.
    pub dead: Option<f64>,
    /// Fraction of saturated pre-activations, for a sigmoid/tanh layer.
    pub saturated: Option<f64>,
    /// All units equal.
    pub identical: bool,
}

/// An epoch as a [`Monitor`] saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// The training loss and accuracy, from the train-mode outputs of the epoch's steps.
    pub train: Evaluation,
    /// Each Linear layer's health, in forward order.
    pub layers: Vec<LayerHealth>,
    /// Human-readable warnings (identical units, vanishing gradients).
    pub warnings: Vec<String>,
}

/// Watches the steps of an epoch; [`Monitor::finish_epoch`] reports and starts the next.
#[derive(Clone, Debug)]
pub struct Monitor {
    loss: Loss,
    layers: Vec<LayerSums>,
    sums: Sums,
    /// Dropout's masks for [`Monitor::observe_step`]'s own forward passes.
    dropout: Generator,
}

impl Monitor {
    /// A monitor for `model` trained with `loss`.
    pub fn new(model: &Mlp, loss: Loss) -> Self {
        let modules = model.modules();
        let mut layers = Vec::new();
        for (i, m) in modules.iter().enumerate() {
            let Module::Linear(l) = m else { continue };
            let mut follower = Follower::None;
            for (j, next) in modules.iter().enumerate().skip(i + 1) {
                follower = match next {
                    Module::Linear(_) => break,
                    Module::PRelu(_) => Follower::Rectifier(j),
                    Module::Activation(a) | Module::Function(a) => match a {
                        Activation::Relu | Activation::Relu6 | Activation::LeakyRelu(_) => {
                            Follower::Rectifier(j)
                        }
                        Activation::Sigmoid | Activation::Tanh => Follower::Squashing(j),
                        Activation::Identity => continue,
                        _ => Follower::None,
                    },
                    _ => continue,
                };
                break;
            }
            layers.push(LayerSums {
                module: i,
                units: l.out_features(),
                follower,
                grad: 0.0,
                update: 0.0,
                steps: 0,
                ever_active: vec![false; l.out_features()],
                saturated: 0,
                seen: 0,
            });
        }
        Monitor {
            loss,
            layers,
            sums: Sums::default(),
            dropout: Generator::new(0),
        }
    }

    /// Observes a step taken on any backend (the GPU's, whose step reads nothing back, or one
    /// made outside a [`Trainer`](crate::train::Trainer)): `before` and `after` are the model
    /// before and after the step (on the GPU, as [`Trainer::sync`](crate::train::Trainer::sync)
    /// reads it back), `x`, `y` the step's batch and `reduction` its loss's. Runs the train-mode
    /// forward, the loss and the backward of `before` on the f64 reference (the cost: one
    /// reference step without its update, on the CPU), and takes the update from
    /// `after − before`: the statistics [`Trainer::step_monitored`](crate::train::Trainer::step_monitored)
    /// gives on [`Backend::CpuReference`](crate::train::Backend::CpuReference). A model with
    /// Dropout is observed with the monitor's own masks (seeded 0), not the step's:
    /// `step_monitored` on the GPU passes the step's. Nothing is counted when this fails: `x`
    /// does not fit `before`, `before`, `after` and the monitor's model differ in architecture,
    /// or the loss is not finite.
    pub fn observe_step(
        &mut self,
        before: &Mlp,
        after: &Mlp,
        x: &Matrix,
        y: &Target,
        reduction: Reduction,
    ) -> Result<()> {
        let mut dropout = std::mem::replace(&mut self.dropout, Generator::new(0));
        let out = self.observe_step_with(before, after, x, y, reduction, &mut dropout);
        self.dropout = dropout;
        out
    }

    /// [`Monitor::observe_step`] with Dropout's masks drawn from `dropout` (a copy of the
    /// generator the step drew from, before it, gives the step's own masks).
    pub(crate) fn observe_step_with(
        &mut self,
        before: &Mlp,
        after: &Mlp,
        x: &Matrix,
        y: &Target,
        reduction: Reduction,
        dropout: &mut Generator,
    ) -> Result<()> {
        before.check_input(x.rows(), x.cols())?;
        if x.rows() == 0 || y.rows() != x.rows() {
            return Err(Error::shape(format!(
                "observe_step: a batch of {} input rows and {} targets (the same number, at \
                 least one, expected)",
                x.rows(),
                y.rows()
            )));
        }
        let shapes = |m: &Mlp| -> Vec<(usize, TensorKind, Vec<usize>)> {
            m.parameters()
                .into_iter()
                .map(|t| (t.module, t.kind, t.shape))
                .collect()
        };
        let watched = self.layers.iter().all(|l| {
            matches!(before.modules().get(l.module), Some(Module::Linear(lin))
                if lin.out_features() == l.units)
        });
        if shapes(before) != shapes(after) || !watched {
            return Err(Error::invalid(
                "observe_step: the models before and after the step have different parameters, \
                 or not those of the model the monitor was made for",
            ));
        }
        // A copy: the forward pass updates BatchNorm's running statistics.
        let mut model = before.clone();
        let p = Precision::Reference;
        let tape = backward::forward(&mut model, x.as_slice(), x.rows(), p, dropout)?;
        let out = Matrix::new(x.rows(), model.out_features(), tape.output().to_vec())?;
        let (loss, grad) = self.loss.evaluate(&out, y, reduction)?;
        if !loss.is_finite() {
            return Err(Error::invalid(format!(
                "observe_step: the loss of the model before the step is {loss}"
            )));
        }
        let grads = backward::backward(&model, &tape, grad, p)?;
        self.observe_forward(&model, &tape, y, loss, reduction);
        let weights = self.weights(before);
        self.observe_update(after, &grads, &weights);
        Ok(())
    }

    /// The train-mode forward pass of a step: its outputs and each activation's input.
    pub(crate) fn observe_forward(
        &mut self,
        model: &Mlp,
        tape: &Tape,
        y: &Target,
        loss: f32,
        reduction: Reduction,
    ) {
        let width = model.out_features();
        self.sums
            .add(self.loss, reduction, loss, tape.output(), width, y);
        for l in &mut self.layers {
            match l.follower {
                Follower::Rectifier(j) => {
                    for row in tape.values()[j].chunks_exact(l.units) {
                        for (a, &v) in l.ever_active.iter_mut().zip(row) {
                            *a |= v > 0.0;
                        }
                    }
                }
                Follower::Squashing(j) => {
                    let x = &tape.values()[j];
                    l.saturated += x.iter().filter(|v| v.abs() > SATURATION).count() as u64;
                    l.seen += x.len() as u64;
                }
                Follower::None => {}
            }
        }
        debug_assert_eq!(tape.batch(), y.rows());
    }

    /// Each Linear weight, copied (before an update).
    pub(crate) fn weights(&self, model: &Mlp) -> Vec<Vec<f32>> {
        self.layers
            .iter()
            .map(|l| weight(model, l.module).to_vec())
            .collect()
    }

    /// After an optimizer step: the gradients (in [`Mlp::parameters`] order) and the weights
    /// [`Monitor::weights`] copied before it.
    pub(crate) fn observe_update(&mut self, model: &Mlp, grads: &[Vec<f32>], before: &[Vec<f32>]) {
        let params = model.parameters();
        for (l, old) in self.layers.iter_mut().zip(before) {
            let k = params
                .iter()
                .position(|t| t.module == l.module && t.kind == TensorKind::Weight);
            let Some(g) = k.and_then(|k| grads.get(k)) else {
                continue;
            };
            l.grad += mean_abs(g);
            let new = weight(model, l.module);
            let delta: f64 = new
                .iter()
                .zip(old)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                .sum();
            let norm: f64 = old.iter().map(|v| f64::from(*v).powi(2)).sum();
            l.update += if norm > 0.0 {
                (delta / norm).sqrt()
            } else if delta > 0.0 {
                f64::INFINITY
            } else {
                0.0
            };
            l.steps += 1;
        }
    }

    /// The epoch's report (with `model` as it is at its end); the sums start again.
    pub fn finish_epoch(&mut self, model: &Mlp) -> EpochReport {
        let mut layers = Vec::with_capacity(self.layers.len());
        for (n, l) in self.layers.iter_mut().enumerate() {
            let steps = l.steps.max(1) as f64;
            layers.push(LayerHealth {
                layer: n + 1,
                module: l.module,
                units: l.units,
                grad: l.grad / steps,
                update: l.update / steps,
                dead: matches!(l.follower, Follower::Rectifier(_))
                    .then(|| l.ever_active.iter().filter(|a| !**a).count() as f64 / l.units as f64),
                saturated: matches!(l.follower, Follower::Squashing(_))
                    .then(|| l.saturated as f64 / l.seen.max(1) as f64),
                identical: identical_units(model, l.module),
            });
            l.grad = 0.0;
            l.update = 0.0;
            l.steps = 0;
            l.ever_active.iter_mut().for_each(|a| *a = false);
            l.saturated = 0;
            l.seen = 0;
        }
        let warnings = warnings(&layers);
        EpochReport {
            train: self.sums.finish(),
            layers,
            warnings,
        }
    }
}

/// The warnings of one epoch's layers.
fn warnings(layers: &[LayerHealth]) -> Vec<String> {
    let mut out = Vec::new();
    for h in layers {
        if h.identical {
            out.push(format!(
                "layer {} (module {}): all {} units are identical: a constant init never \
                 breaks this symmetry, use a random init",
                h.layer, h.module, h.units
            ));
        }
    }
    if let Some(last) = layers.last() {
        for h in &layers[..layers.len() - 1] {
            if last.grad > 0.0 && h.grad < last.grad / VANISHING_RATIO {
                out.push(format!(
                    "layer {} (module {}): mean |gradient| {:.3e} is over {}x smaller than the \
                     last layer's ({:.3e}): vanishing gradients",
                    h.layer, h.module, h.grad, VANISHING_RATIO, last.grad
                ));
            }
        }
    }
    out
}

/// The weight of the Linear module `module`.
fn weight(model: &Mlp, module: usize) -> &[f32] {
    match &model.modules()[module] {
        Module::Linear(l) => l.weight(),
        _ => &[],
    }
}

/// Whether every unit of the Linear module `module` (its weight row and bias) equals the first;
/// a layer of one unit has no symmetry to speak of.
fn identical_units(model: &Mlp, module: usize) -> bool {
    let Module::Linear(l) = &model.modules()[module] else {
        return false;
    };
    if l.out_features() < 2 {
        return false;
    }
    let rows: Vec<&[f32]> = l.weight().chunks_exact(l.in_features()).collect();
    let bias_same = l.bias().is_none_or(|b| b.iter().all(|v| *v == b[0]));
    bias_same && rows.iter().all(|r| *r == rows[0])
}

fn mean_abs(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(x.abs())).sum::<f64>() / v.len().max(1) as f64
}
