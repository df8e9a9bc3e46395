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
use crate::gpu::kernels::colsum::{self, Colsum};
use crate::gpu::kernels::loss::{self, LossPass};
use crate::gpu::kernels::matmul::{self, Matmul, Variant};
use crate::gpu::kernels::row_grad::{Entry, RowGrad};
use crate::gpu::kernels::step_state;
use crate::gpu::pass::Phase;
use crate::gpu::plan::{DeviceCaps, Plan};
use crate::gpu::tensor::{Role, TensorId};
use crate::gpu::train::batchnorm::BnNode;
use crate::gpu::train::builder::Builder;
use crate::gpu::train::update;
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
    /// Each Dropout's mask (rows written by the host each step), its rate and its width, in
    /// module order (the order the CPU draws them).
    pub(crate) masks: Vec<(TensorId, f32, usize)>,
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
    /// Softmax (`log`: log-softmax) over each row.
    Row {
        module: usize,
        log: bool,
        y: TensorId,
        width: usize,
        x_grad: bool,
    },
    /// LayerNorm: `affine`: its weight's and bias's tensors and gradients.
    LayerNorm {
        module: usize,
        x: TensorId,
        affine: Option<[TensorId; 4]>,
        width: usize,
        eps: f32,
        x_grad: bool,
    },
    /// PReLU: its slope and the slope's gradient.
    PRelu {
        module: usize,
        x: TensorId,
        a: TensorId,
        ga: TensorId,
        slopes: usize,
        width: usize,
        x_grad: bool,
    },
    BatchNorm(BnNode),
    Dropout {
        mask: TensorId,
        width: usize,
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

/// Why a module cannot train on the GPU yet, or `None` when it can.
fn unsupported(m: &Module) -> Option<String> {
    match m {
        Module::Linear(_) | Module::Identity | Module::Flatten => None,
        Module::Activation(_) | Module::Function(_) => None,
        Module::LayerNorm(_) | Module::PRelu(_) => None,
        Module::BatchNorm1d(_) | Module::Dropout(_) => None,
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
    caps: &DeviceCaps,
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
    let mut masks = Vec::new();
    let (mut cur, mut width, mut needs_grad) = (input, n_in, false);
    for (i, m) in model.modules().iter().enumerate() {
        match m {
            Module::Linear(l) => {
                let (fi, fo) = (l.in_features(), l.out_features());
                let w = param(&mut b, i, TensorKind::Weight, l.weight());
                params.push(w);
                let bias = l.bias().map(|v| param(&mut b, i, TensorKind::Bias, v));
                params.extend(bias);
                let z = b.rows(format!("{i}.out"), Role::PreActivation, fo);
                let kernel = Matmul {
                    variant: Variant::Forward,
                    n_in: fi,
                    n_out: fo,
                    bias: bias.is_some(),
                    subgroups: caps.subgroups,
                    software: caps.software,
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
            Module::Activation(a) | Module::Function(a) if a.is_row() => {
                let log = *a == crate::Activation::LogSoftmax;
                let y = b.rows(format!("{i}.out"), Role::Activation, width);
                let kernel = row(Entry::SoftmaxForward, width, u32::from(log), 0.0);
                b.pass(Phase::Forward, kernel, vec![("x", cur), ("y", y)]);
                let x_grad = needs_grad;
                nodes.push(Node::Row {
                    module: i,
                    log,
                    y,
                    width,
                    x_grad,
                });
                cur = y;
            }
            Module::LayerNorm(ln) => {
                let affine = match (ln.weight(), ln.bias()) {
                    (Some(w), Some(bias)) => {
                        let (w, gw, _) = param(&mut b, i, TensorKind::Weight, w);
                        let (bb, gb, _) = param(&mut b, i, TensorKind::Bias, bias);
                        params.extend([(w, gw, width), (bb, gb, width)]);
                        Some([w, bb, gw, gb])
                    }
                    _ => None,
                };
                let y = b.rows(format!("{i}.out"), Role::Activation, width);
                let op = u32::from(affine.is_some());
                let kernel = row(Entry::LayerNormForward, width, op, ln.eps());
                let (g_t, b_t) = affine.map_or((none, none), |t| (t[0], t[1]));
                let binds = vec![("x", cur), ("gamma", g_t), ("beta", b_t), ("y", y)];
                b.pass(Phase::Forward, kernel, binds);
                let (x, eps, x_grad) = (cur, ln.eps(), needs_grad);
                nodes.push(Node::LayerNorm {
                    module: i,
                    x,
                    affine,
                    width,
                    eps,
                    x_grad,
                });
                (cur, needs_grad) = (y, needs_grad || affine.is_some());
            }
            Module::Dropout(p) => {
                let mask = b.rows(format!("{i}.mask"), Role::Input, width);
                let y = b.rows(format!("{i}.out"), Role::Activation, width);
                let kernel = row(Entry::Mul, width, 0, 0.0);
                b.pass(
                    Phase::Forward,
                    kernel,
                    vec![("x", cur), ("gy", mask), ("t", y)],
                );
                masks.push((mask, *p, width));
                nodes.push(Node::Dropout {
                    mask,
                    width,
                    x_grad: needs_grad,
                });
                cur = y;
            }
            Module::BatchNorm1d(bn) => {
                let (node, y) = BnNode::forward(&mut b, i, bn, cur, needs_grad, &mut params);
                nodes.push(Node::BatchNorm(node));
                (cur, needs_grad) = (y, needs_grad || bn.weight().is_some());
            }
            Module::PRelu(pr) => {
                let (a, ga, slopes) = param(&mut b, i, TensorKind::Weight, pr.weight());
                params.push((a, ga, slopes));
                let y = b.rows(format!("{i}.out"), Role::Activation, width);
                let op = u32::from(slopes > 1);
                let kernel = row(Entry::PReluForward, width, op, 0.0);
                b.pass(Phase::Forward, kernel, vec![("x", cur), ("a", a), ("y", y)]);
                let (x, x_grad) = (cur, needs_grad);
                nodes.push(Node::PRelu {
                    module: i,
                    x,
                    a,
                    ga,
                    slopes,
                    width,
                    x_grad,
                });
                (cur, needs_grad) = (y, true);
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
            // Identity, Flatten: the identity in training too.
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
            Node::Row {
                module,
                log,
                y,
                width,
                x_grad,
            } => {
                if !x_grad {
                    break;
                }
                let gx = b.rows(format!("{module}.in.grad"), Role::Gradient, width);
                let kernel = row(Entry::SoftmaxBackward, width, u32::from(log), 0.0);
                b.pass(
                    Phase::Backward,
                    kernel,
                    vec![("y", y), ("gy", g), ("gx", gx)],
                );
                g = gx;
            }
            Node::LayerNorm {
                module,
                x,
                affine,
                width,
                eps,
                x_grad,
            } => {
                if let Some([_, _, gw, gb]) = affine {
                    let t = b.rows(format!("{module}.gy_xhat"), Role::Gradient, width);
                    let kernel = row(Entry::LayerNormGxhat, width, 1, eps);
                    b.pass(Phase::Backward, kernel, vec![("x", x), ("gy", g), ("t", t)]);
                    for (src, dst) in [(t, gw), (g, gb)] {
                        col_sums(&mut b, src, dst, width, 1);
                    }
                }
                if !x_grad {
                    break;
                }
                let gx = b.rows(format!("{module}.in.grad"), Role::Gradient, width);
                let op = u32::from(affine.is_some());
                let kernel = row(Entry::LayerNormBackward, width, op, eps);
                let gamma = affine.map_or(none, |t| t[0]);
                let binds = vec![("x", x), ("gamma", gamma), ("gy", g), ("gx", gx)];
                b.pass(Phase::Backward, kernel, binds);
                g = gx;
            }
            Node::Dropout {
                mask,
                width,
                x_grad,
            } => {
                if !x_grad {
                    break;
                }
                let gx = b.rows(
                    format!("{}.grad", b.tensors[mask.0].name),
                    Role::Gradient,
                    width,
                );
                let kernel = row(Entry::Mul, width, 0, 0.0);
                b.pass(
                    Phase::Backward,
                    kernel,
                    vec![("x", g), ("gy", mask), ("t", gx)],
                );
                g = gx;
            }
            Node::BatchNorm(ref bn) => match bn.backward(&mut b, g, none) {
                Some(gx) => g = gx,
                None => break,
            },
            Node::PRelu {
                module,
                x,
                a,
                ga,
                slopes,
                width,
                x_grad,
            } => {
                let t = b.rows(format!("{module}.x_gy"), Role::Gradient, width);
                let kernel = row(Entry::PReluGslope, width, 0, 0.0);
                b.pass(Phase::Backward, kernel, vec![("x", x), ("gy", g), ("t", t)]);
                // One slope: the sum of every value (width values per row, one column).
                let (cols, rows_per_row) = if slopes > 1 { (width, 1) } else { (1, width) };
                col_sums(&mut b, t, ga, cols, rows_per_row);
                if !x_grad {
                    break;
                }
                let gx = b.rows(format!("{module}.in.grad"), Role::Gradient, width);
                let kernel = row(Entry::PReluBackward, width, u32::from(slopes > 1), 0.0);
                let binds = vec![("x", x), ("a", a), ("gy", g), ("gx", gx)];
                b.pass(Phase::Backward, kernel, binds);
                g = gx;
            }
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
                    subgroups: caps.subgroups,
                    software: caps.software,
                };
                let binds = vec![
                    (matmul::A.name, g),
                    (matmul::B.name, x),
                    (matmul::BIAS.name, none),
                    (matmul::C.name, gw),
                ];
                b.pass(Phase::Backward, mm(Variant::WeightGrad), binds);
                if let Some(gb) = gb {
                    col_sums(&mut b, g, gb, n_out, 1);
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
    for node in &nodes {
        if let Node::BatchNorm(bn) = node {
            bn.update(&mut b, step);
        }
    }
    update::updates(&mut b, &params, optimizer, step);
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
        masks,
    })
}

/// A parameter of module `module` and its gradient: (tensor, gradient, length).
fn param(
    b: &mut Builder,
    module: usize,
    kind: TensorKind,
    v: &[f32],
) -> (TensorId, TensorId, usize) {
    let role = Role::Parameter { module, kind };
    let p = b.values(format!("{module}.{kind}"), role, v.to_vec());
    let g = b.values(
        format!("{module}.{kind}.grad"),
        Role::Gradient,
        vec![0.0; v.len()],
    );
    (p, g, v.len())
}

/// A backward pass summing `src`'s columns into `dst` (`cols` columns; `rows_per_row` rows of
/// `src` per row of the batch, so one column can take every value).
fn col_sums(b: &mut Builder, src: TensorId, dst: TensorId, cols: usize, rows_per_row: usize) {
    let sum = Colsum { cols, rows_per_row };
    let binds = vec![(colsum::X.name, src), (colsum::OUT.name, dst)];
    b.pass(Phase::Backward, sum, binds);
}

fn row(entry: Entry, width: usize, op: u32, eps: f32) -> RowGrad {
    RowGrad {
        entry,
        width,
        op,
        eps,
    }
}

fn phase_order(p: Phase) -> u8 {
    match p {
        Phase::Forward => 0,
        Phase::Backward => 1,
        Phase::Update => 2,
    }
}
