//! How a model's modules group into the steps the fast paths run: each Linear layer, row
//! operation (softmax, log-softmax, LayerNorm) or leading elementwise chain is one step, and
//! every elementwise module after it (activations, BatchNorm, PReLU, ONNX subgraphs) joins that
//! step's epilogue [`Expr`]. Dropout, Flatten and Identity vanish. Pure: the GPU plan
//! (`gpu::plan`) and the fast CPU path both start from here; the CPU reference does not (it runs
//! module by module, so it checks this grouping too).

use crate::activation::Activation;
use crate::model::Mlp;
use crate::model::expr::Expr;
use crate::model::linear::Linear;
use crate::model::module::Module;

/// An operation on whole rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum RowOp {
    /// Softmax over the row.
    Softmax,
    /// Log-softmax over the row.
    LogSoftmax,
    /// `(x − mean) / √(var + eps)` with the biased variance (LayerNorm before its affine part).
    Normalize { eps: f32 },
}

/// What a step computes before its epilogue.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum StepOp<'m> {
    /// `x·Wᵀ + b`.
    Linear(&'m Linear),
    /// A row operation.
    Row(RowOp),
    /// Nothing: the epilogue alone (elementwise modules before the first Linear or row op).
    Elementwise,
}

/// One step: its operation, then its epilogue, on rows of `n_in` → `n_out` features.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Step<'m> {
    pub(crate) op: StepOp<'m>,
    pub(crate) epilogue: Expr,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
}

/// The most expression nodes an epilogue takes by fusion; a longer chain of elementwise modules
/// continues in a step of its own. Real models fuse a handful; without a bound a file of
/// thousands of activations in a row made one epilogue of thousands of nodes, built in
/// quadratic time and compiled into one enormous shader (a 5 KB file took 39 s and 0.9 GB).
const MAX_FUSED: usize = 64;

/// The model's steps, in order.
pub(crate) fn steps(model: &Mlp) -> Vec<Step<'_>> {
    let mut out: Vec<Step<'_>> = Vec::new();
    let mut width = model.in_features();
    for m in model.modules() {
        let step = |op, n_out, epilogue| Step {
            op,
            epilogue,
            n_in: width,
            n_out,
        };
        match m {
            Module::Linear(l) => {
                out.push(step(StepOp::Linear(l), l.out_features(), Expr::identity()))
            }
            Module::LayerNorm(ln) => {
                let op = StepOp::Row(RowOp::Normalize { eps: ln.eps() });
                out.push(step(op, ln.features(), ln.affine()));
            }
            Module::Activation(a) | Module::Function(a) if a.is_row() => {
                let op = if *a == Activation::Softmax {
                    RowOp::Softmax
                } else {
                    RowOp::LogSoftmax
                };
                out.push(step(StepOp::Row(op), width, Expr::identity()));
            }
            other => {
                let Some(e) = other.elementwise() else {
                    continue; // Dropout, Flatten, Identity
                };
                match out.last_mut() {
                    Some(last)
                        if last.epilogue.nodes().len() + e.nodes().len() - 1 <= MAX_FUSED =>
                    {
                        last.epilogue = last.epilogue.then(&e)
                    }
                    _ => out.push(step(StepOp::Elementwise, width, e)),
                }
            }
        }
        width = out.last().map_or(width, |s| s.n_out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BatchNorm1d, LayerNorm};

    fn linear(i: usize, o: usize) -> Module {
        Module::Linear(Linear::new(i, o, vec![0.5; i * o], None).unwrap())
    }

    #[test]
    fn elementwise_modules_join_the_step_before_and_no_ops_vanish() {
        let m = Mlp::new(vec![
            Module::BatchNorm1d(BatchNorm1d::default_init(3)),
            Module::Dropout(0.5),
            linear(3, 5),
            Module::BatchNorm1d(BatchNorm1d::default_init(5)),
            Module::Activation(Activation::Relu),
            Module::Flatten,
            Module::LayerNorm(LayerNorm::default_init(5)),
            Module::Function(Activation::Gelu),
            linear(5, 2),
            Module::Activation(Activation::Softmax),
            Module::Identity,
        ])
        .unwrap();
        let s = steps(&m);
        let ops: Vec<_> = s.iter().map(|s| (s.op, s.n_in, s.n_out)).collect();
        assert!(matches!(ops[0], (StepOp::Elementwise, 3, 3)));
        assert!(matches!(ops[1], (StepOp::Linear(_), 3, 5)));
        assert!(matches!(
            ops[2],
            (StepOp::Row(RowOp::Normalize { .. }), 5, 5)
        ));
        assert!(matches!(ops[3], (StepOp::Linear(_), 5, 2)));
        assert!(matches!(ops[4], (StepOp::Row(RowOp::Softmax), 2, 2)));
        assert_eq!(s.len(), 5);
        // BatchNorm ((x − m)·s + t: 6 nodes after the input) then ReLU.
        assert_eq!(s[1].epilogue.nodes().len(), 8);
        // LayerNorm's affine part then GELU.
        assert_eq!(s[2].epilogue.nodes().len(), 6);
        assert!(s[3].epilogue.is_identity() && s[4].epilogue.is_identity());
    }

    #[test]
    fn long_elementwise_chains_continue_in_steps_of_their_own() {
        let mut modules = vec![linear(3, 4)];
        modules.extend((0..1000).map(|_| Module::Activation(Activation::Tanh)));
        modules.push(linear(4, 2));
        let m = Mlp::new(modules).unwrap();
        let s = steps(&m);
        // Each tanh adds one node: 63 to the Linear's epilogue, then 63 per elementwise step.
        assert!(s.iter().all(|s| s.epilogue.nodes().len() <= MAX_FUSED));
        let tanhs: usize = s.iter().map(|s| s.epilogue.nodes().len() - 1).sum();
        assert_eq!(tanhs, 1000);
        assert_eq!(s.len(), 2 + 1000usize.div_ceil(MAX_FUSED - 1) - 1);
        assert!(
            s[1..s.len() - 1]
                .iter()
                .all(|s| s.op == StepOp::Elementwise)
        );
    }
}
