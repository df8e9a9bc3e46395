//! BatchNorm1d in a training plan: its forward passes (batch statistics, normalisation, the
//! affine step), its backward passes and its running statistics' update (an update pass, so a
//! step whose loss is not finite leaves them as they were, as on the CPU). The kernels:
//! `kernels/batchnorm.rs`.

use crate::gpu::kernels::batchnorm::{BatchNorm, Entry};
use crate::gpu::pass::Phase;
use crate::gpu::tensor::{Role, TensorId};
use crate::gpu::train::builder::Builder;
use crate::model::{BatchNorm1d, TensorKind};
use crate::train::norm_grad::BN_MOMENTUM;

/// What the backward and the update of one BatchNorm1d need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BnNode {
    module: usize,
    /// Per column: mean, `1/√(var + eps)`, unbiased variance.
    st: TensorId,
    xhat: TensorId,
    /// γ, β and their gradients.
    affine: Option<[TensorId; 4]>,
    running: [TensorId; 2],
    width: usize,
    eps: f32,
    /// Whether anything before it needs the gradient of its input.
    pub(crate) x_grad: bool,
}

impl BnNode {
    fn kernel(&self, entry: Entry) -> BatchNorm {
        BatchNorm {
            entry,
            cols: self.width,
            affine: self.affine.is_some(),
            eps: self.eps,
            momentum: BN_MOMENTUM as f32,
        }
    }

    /// Plans the forward of module `module` on `x`; returns the node and the output tensor.
    /// `params` gets γ and β (with their gradients) in state_dict order.
    pub(crate) fn forward(
        b: &mut Builder,
        module: usize,
        bn: &BatchNorm1d,
        x: TensorId,
        x_grad: bool,
        params: &mut Vec<(TensorId, TensorId, usize)>,
    ) -> (BnNode, TensorId) {
        let width = bn.features();
        let mut param = |b: &mut Builder, kind: TensorKind, v: &[f32]| {
            let p = b.values(
                format!("{module}.{kind}"),
                Role::Parameter { module, kind },
                v.to_vec(),
            );
            let g = b.values(
                format!("{module}.{kind}.grad"),
                Role::Gradient,
                vec![0.0; v.len()],
            );
            params.push((p, g, v.len()));
            (p, g)
        };
        let affine = match (bn.weight(), bn.bias()) {
            (Some(w), Some(bias)) => {
                let (w, gw) = param(b, TensorKind::Weight, w);
                let (bb, gb) = param(b, TensorKind::Bias, bias);
                Some([w, bb, gw, gb])
            }
            _ => None,
        };
        let running = [
            (TensorKind::RunningMean, bn.running_mean()),
            (TensorKind::RunningVar, bn.running_var()),
        ]
        .map(|(kind, v)| {
            b.values(
                format!("{module}.{kind}"),
                Role::Parameter { module, kind },
                v.to_vec(),
            )
        });
        let st = b.values(
            format!("{module}.batch_stats"),
            Role::Activation,
            vec![0.0; 3 * width],
        );
        let xhat = b.rows(format!("{module}.xhat"), Role::PreActivation, width);
        let node = BnNode {
            module,
            st,
            xhat,
            affine,
            running,
            width,
            eps: bn.eps(),
            x_grad,
        };
        b.pass(
            Phase::Forward,
            node.kernel(Entry::Stats),
            vec![("x", x), ("st", st)],
        );
        let binds = vec![("x", x), ("st", st), ("xhat", xhat)];
        b.pass(Phase::Forward, node.kernel(Entry::Normalize), binds);
        let y = match affine {
            Some([w, bb, ..]) => {
                let y = b.rows(format!("{module}.out"), Role::Activation, width);
                let binds = vec![("xhat", xhat), ("gamma", w), ("beta", bb), ("y", y)];
                b.pass(Phase::Forward, node.kernel(Entry::Affine), binds);
                y
            }
            None => xhat,
        };
        (node, y)
    }

    /// Plans the backward from `g` (the output's gradient): the parameters' gradients, and the
    /// input's gradient (returned) when something before needs it.
    pub(crate) fn backward(
        &self,
        b: &mut Builder,
        g: TensorId,
        none: TensorId,
    ) -> Option<TensorId> {
        let (m, width) = (self.module, self.width);
        let sum = b.values(
            format!("{m}.grad_sums"),
            Role::Gradient,
            vec![0.0; 2 * width],
        );
        let binds = vec![("xhat", self.xhat), ("g", g), ("sum", sum)];
        b.pass(Phase::Backward, self.kernel(Entry::Sums), binds);
        if let Some([_, _, gw, gb]) = self.affine {
            let binds = vec![("sum", sum), ("ggamma", gw), ("gbeta", gb)];
            b.pass(Phase::Backward, self.kernel(Entry::ParamGrads), binds);
        }
        if !self.x_grad {
            return None;
        }
        let k = b.values(
            format!("{m}.grad_coef"),
            Role::Gradient,
            vec![0.0; 3 * width],
        );
        let gamma = self.affine.map_or(none, |t| t[0]);
        let binds = vec![("st", self.st), ("gamma", gamma), ("sum", sum), ("k", k)];
        b.pass(Phase::Backward, self.kernel(Entry::Coef), binds);
        let gx = b.rows(format!("{m}.in.grad"), Role::Gradient, width);
        let binds = vec![("xhat", self.xhat), ("g", g), ("k", k), ("gx", gx)];
        b.pass(Phase::Backward, self.kernel(Entry::Dx), binds);
        Some(gx)
    }

    /// Plans the running statistics' update.
    pub(crate) fn update(&self, b: &mut Builder, step: TensorId) {
        let [rmean, rvar] = self.running;
        let binds = vec![
            ("st", self.st),
            ("rmean", rmean),
            ("rvar", rvar),
            ("step", step),
        ];
        b.pass(Phase::Update, self.kernel(Entry::Running), binds);
    }
}
