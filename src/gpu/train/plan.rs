//! The training plan: one [`Plan`] of forward, backward and update passes over named tensors,
//! made once per (model, loss, optimizer) and replayed every step (each workspace per batch
//! size). Nothing is overwritten in place: each module's output is a tensor of its own
//! (`Role::PreActivation` for a Linear's, `Role::Activation` for an activation's), so the
//! backward finds every value it needs; gradients of rows and of parameters are
//! `Role::Gradient` tensors, the optimizer's moments `Role::OptimizerState`, and the
//! parameters themselves `Role::Parameter` tensors in PyTorch's layout, updated in place and
//! read back into an [`Mlp`] by role. The map: docs/KERNELS.md, "The GPU layer in five minutes".
//!
//! ```text
//! forward   Linear: Z = X·Wᵀ + b (matmul)          activation: Y = f(Z) (activation_grad)
//! loss      value → the step's slot of the losses ring, dOut (loss)
//! backward  activation: dZ = dY·f'(Z)              Linear: dW = dZᵀ·X, db = Σ dZ (colsum),
//!                                                          dX = dZ·W (only where needed)
//! update    SGD or Adam per parameter, in state_dict order (sgd, adam)
//! ```

use crate::error::{Error, Result};
use crate::gpu::kernels::activation_grad::{self as act, ActivationPass, Direction};
use crate::gpu::kernels::adam::{self, Adam, AdamHyper};
use crate::gpu::kernels::colsum::{self, Colsum};
use crate::gpu::kernels::loss::{self, LossPass};
use crate::gpu::kernels::matmul::{self, Matmul, Variant};
use crate::gpu::kernels::sgd::{self, Sgd, SgdHyper};
use crate::gpu::kernels::step_state;
use crate::gpu::pack;
use crate::gpu::pass::{Pass, Phase};
use crate::gpu::plan::Plan;
use crate::gpu::tensor::{Extent, Role, Tensor, TensorId};
use crate::model::{Mlp, Module, TensorKind};
use crate::train::{Loss, Optimizer, Reduction};

/// A training plan and the tensors its driver reaches by name.
#[derive(Debug)]
pub(crate) struct TrainPlan {
    pub(crate) plan: Plan,
    /// The targets of a batch (values, or class indices as f32).
    pub(crate) target: TensorId,
    /// The step-state buffer.
    pub(crate) step: TensorId,
    /// Every parameter, in state_dict order: (tensor, its gradient, its length).
    pub(crate) params: Vec<(TensorId, TensorId, usize)>,
}

/// A module's place in the backward walk.
enum Node {
    Linear {
        module: usize,
        x: TensorId,
        w: TensorId,
        gw: TensorId,
        gb: Option<TensorId>,
        n_in: usize,
        n_out: usize,
        /// Whether anything before it needs the gradient of its input.
        x_grad: bool,
    },
    Act {
        module: usize,
        kind: crate::Activation,
        x: TensorId,
        y: TensorId,
        width: usize,
        x_grad: bool,
    },
}

#[derive(Default)]
struct Builder {
    tensors: Vec<Tensor>,
    passes: Vec<Pass>,
}

impl Builder {
    fn tensor(&mut self, name: String, role: Role, extent: Extent) -> TensorId {
        self.tensors.push(Tensor { name, role, extent });
        TensorId(self.tensors.len() - 1)
    }

    /// Plain `[rows, width]` f32 rows (the extent counts vec4s: at least `width` values a row).
    fn rows(&mut self, name: String, role: Role, width: usize) -> TensorId {
        let vec4s = pack::vec4s(width.max(1));
        self.tensor(name, role, Extent::Rows { vec4s, slack: 0 })
    }

    fn values(&mut self, name: String, role: Role, values: Vec<f32>) -> TensorId {
        self.tensor(name, role, Extent::Values(values))
    }

    fn pass(
        &mut self,
        phase: Phase,
        kernel: impl crate::gpu::kernels::Kernel + 'static,
        binds: Vec<(&'static str, TensorId)>,
    ) {
        self.passes.push(Pass::new(kernel, binds, phase));
    }
}

/// Why a module cannot train on the GPU yet, or `None` when it can.
fn unsupported(m: &Module) -> Option<String> {
    match m {
        Module::Linear(_) | Module::Identity | Module::Flatten => None,
        Module::Activation(a) | Module::Function(a) if !a.is_row() => None,
        Module::Dropout(p) if *p == 0.0 => None,
        Module::Activation(a) | Module::Function(a) => Some(a.to_string()),
        Module::Dropout(_) => Some("Dropout in train mode".into()),
        Module::BatchNorm1d(_) => Some("BatchNorm1d".into()),
        Module::LayerNorm(_) => Some("LayerNorm".into()),
        Module::PRelu(_) => Some("PReLU".into()),
        Module::Elementwise { class, .. } => Some(
            class
                .clone()
                .unwrap_or_else(|| "an ONNX elementwise expression".into()),
        ),
    }
}

/// Refuses what the GPU cannot train yet, naming the module and the way out.
pub(crate) fn check_supported(model: &Mlp) -> Result<()> {
    for (i, m) in model.modules().iter().enumerate() {
        if let Some(what) = unsupported(m) {
            return Err(Error::invalid(format!(
                "training on the GPU does not support module {i} ({what}) yet: use --device cpu \
                 (Backend::Cpu), which trains it (docs/TRAINING.md lists what the GPU trains)"
            )));
        }
    }
    Ok(())
}

/// Plans training `model` with `loss` and `optimizer` (see the module docs).
pub(crate) fn plan(
    model: &Mlp,
    loss: Loss,
    reduction: Reduction,
    optimizer: Optimizer,
) -> Result<TrainPlan> {
    check_supported(model)?;
    let mut b = Builder::default();
    let (n_in, n_out) = (model.in_features(), model.out_features());
    let input = b.rows("input".into(), Role::Input, n_in);
    let target_width = if loss.wants_classes() { 1 } else { n_out };
    let target = b.rows("target".into(), Role::Input, target_width);
    let step = b.values("step".into(), Role::StepState, vec![0.0; step_state::LEN]);
    let none = b.values("none".into(), Role::Constant, vec![0.0]);
    let mut nodes = Vec::new();
    let mut params = Vec::new();
    let (mut cur, mut width, mut needs_grad) = (input, n_in, false);
    for (i, m) in model.modules().iter().enumerate() {
        match m {
            Module::Linear(l) => {
                let (fi, fo) = (l.in_features(), l.out_features());
                let param = |b: &mut Builder, kind: TensorKind, v: &[f32]| {
                    let role = Role::Parameter { module: i, kind };
                    let p = b.values(format!("{i}.{kind}"), role, v.to_vec());
                    let g = b.values(
                        format!("{i}.{kind}.grad"),
                        Role::Gradient,
                        vec![0.0; v.len()],
                    );
                    (p, g, v.len())
                };
                let w = param(&mut b, TensorKind::Weight, l.weight());
                params.push(w);
                let bias = l.bias().map(|v| param(&mut b, TensorKind::Bias, v));
                params.extend(bias);
                let z = b.rows(format!("{i}.out"), Role::PreActivation, fo);
                let kernel = Matmul {
                    variant: Variant::Forward,
                    n_in: fi,
                    n_out: fo,
                    bias: bias.is_some(),
                };
                let binds = vec![
                    (matmul::A.name, cur),
                    (matmul::B.name, w.0),
                    (matmul::BIAS.name, bias.map_or(none, |t| t.0)),
                    (matmul::C.name, z),
                ];
                b.pass(Phase::Forward, kernel, binds);
                nodes.push(Node::Linear {
                    module: i,
                    x: cur,
                    w: w.0,
                    gw: w.1,
                    gb: bias.map(|t| t.1),
                    n_in: fi,
                    n_out: fo,
                    x_grad: needs_grad,
                });
                (cur, width, needs_grad) = (z, fo, true);
            }
            Module::Activation(a) | Module::Function(a) => {
                let y = b.rows(format!("{i}.out"), Role::Activation, width);
                let kernel = ActivationPass {
                    act: *a,
                    width,
                    dir: Direction::Forward,
                };
                b.pass(
                    Phase::Forward,
                    kernel,
                    vec![(act::X.name, cur), (act::Y.name, y)],
                );
                nodes.push(Node::Act {
                    module: i,
                    kind: *a,
                    x: cur,
                    y,
                    width,
                    x_grad: needs_grad,
                });
                cur = y;
            }
            // The identity in training too (Dropout only with p = 0: check_supported).
            _ => {}
        }
    }
    let output = cur;
    let mut g = b.rows("output.grad".into(), Role::Gradient, n_out);
    let kernel = LossPass {
        loss,
        reduction,
        cols: n_out,
    };
    let binds = vec![
        (loss::OUT.name, output),
        (loss::TARGET.name, target),
        (loss::GRAD.name, g),
        (loss::STEP.name, step),
    ];
    b.pass(Phase::Backward, kernel, binds);
    for node in nodes.iter().rev() {
        match *node {
            Node::Act {
                module,
                kind,
                x,
                y,
                width,
                x_grad,
            } => {
                if !x_grad {
                    break;
                }
                let gx = b.rows(format!("{module}.in.grad"), Role::Gradient, width);
                let kernel = ActivationPass {
                    act: kind,
                    width,
                    dir: Direction::Backward,
                };
                let binds = vec![
                    (act::X.name, x),
                    (act::Y_READ.name, y),
                    (act::GY.name, g),
                    (act::GX.name, gx),
                ];
                b.pass(Phase::Backward, kernel, binds);
                g = gx;
            }
            Node::Linear {
                module,
                x,
                w,
                gw,
                gb,
                n_in,
                n_out,
                x_grad,
            } => {
                let mm = |variant| Matmul {
                    variant,
                    n_in,
                    n_out,
                    bias: false,
                };
                let binds = vec![
                    (matmul::A.name, g),
                    (matmul::B.name, x),
                    (matmul::BIAS.name, none),
                    (matmul::C.name, gw),
                ];
                b.pass(Phase::Backward, mm(Variant::WeightGrad), binds);
                if let Some(gb) = gb {
                    let binds = vec![(colsum::X.name, g), (colsum::OUT.name, gb)];
                    b.pass(Phase::Backward, Colsum { cols: n_out }, binds);
                }
                if !x_grad {
                    break;
                }
                let gx = b.rows(format!("{module}.in.grad"), Role::Gradient, n_in);
                let binds = vec![
                    (matmul::A.name, g),
                    (matmul::B.name, w),
                    (matmul::BIAS.name, none),
                    (matmul::C.name, gx),
                ];
                b.pass(Phase::Backward, mm(Variant::InputGrad), binds);
                g = gx;
            }
        }
    }
    updates(&mut b, &params, optimizer, step);
    debug_assert!(
        b.passes
            .windows(2)
            .all(|w| phase_order(w[0].phase) <= phase_order(w[1].phase)),
        "forward, then backward, then update"
    );
    Ok(TrainPlan {
        plan: Plan {
            tensors: b.tensors,
            passes: b.passes,
            input,
            copy_input: None,
            output,
            chunk_rows: usize::MAX,
            n_in,
            n_out,
        },
        target,
        step,
        params,
    })
}

fn phase_order(p: Phase) -> u8 {
    match p {
        Phase::Forward => 0,
        Phase::Backward => 1,
        Phase::Update => 2,
    }
}

/// One update pass per parameter, with its optimizer state.
fn updates(
    b: &mut Builder,
    params: &[(TensorId, TensorId, usize)],
    optimizer: Optimizer,
    step: TensorId,
) {
    // SGD without momentum touches no buffer: one placeholder serves every pass.
    let mut unused = None;
    for (k, &(p, g, len)) in params.iter().enumerate() {
        match optimizer {
            Optimizer::Sgd {
                lr,
                momentum,
                dampening,
                nesterov,
                weight_decay,
            } => {
                let buf = if momentum != 0.0 {
                    b.values(
                        format!("param{k}.momentum_buffer"),
                        Role::OptimizerState,
                        vec![0.0; len],
                    )
                } else {
                    *unused.get_or_insert_with(|| {
                        b.values("sgd.unused".into(), Role::OptimizerState, vec![0.0])
                    })
                };
                let hyper = SgdHyper {
                    lr,
                    momentum,
                    dampening,
                    nesterov,
                    weight_decay,
                };
                let binds = vec![
                    (sgd::P.name, p),
                    (sgd::G.name, g),
                    (sgd::BUF.name, buf),
                    (sgd::STEP.name, step),
                ];
                b.pass(Phase::Update, Sgd { len, hyper }, binds);
            }
            Optimizer::Adam {
                lr,
                betas,
                eps,
                weight_decay,
                amsgrad,
                decoupled,
            } => {
                let hyper = AdamHyper {
                    lr,
                    betas,
                    eps,
                    weight_decay,
                    amsgrad,
                    decoupled,
                };
                let zeros = vec![0.0; len * hyper.state_per_value()];
                let state = b.values(format!("param{k}.adam_state"), Role::OptimizerState, zeros);
                let binds = vec![
                    (adam::P.name, p),
                    (adam::G.name, g),
                    (adam::STATE.name, state),
                    (adam::STEP.name, step),
                ];
                b.pass(Phase::Update, Adam { len, hyper }, binds);
            }
        }
    }
}
