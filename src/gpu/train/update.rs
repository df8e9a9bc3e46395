//! The update passes of a training plan: one per parameter, in state_dict order, with the
//! optimizer's state tensors (SGD's momentum buffer, Adam's moments) beside it.

use crate::gpu::kernels::adam::{self, Adam, AdamHyper};
use crate::gpu::kernels::sgd::{self, Sgd, SgdHyper};
use crate::gpu::pass::Phase;
use crate::gpu::tensor::{Role, TensorId};
use crate::gpu::train::builder::Builder;
use crate::train::Optimizer;

/// One update pass per parameter, with its optimizer state.
pub(crate) fn updates(
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
