//! The losses (`shaders/loss.wgsl`): every [`Loss`], its value and its gradient with respect to
//! the model's output, in one workgroup so the sum is taken in a fixed order (a run repeats bit
//! for bit). The value goes to the step's slot of the losses ring in the step-state buffer
//! ([`step_state`](super::step_state)), where the host reads it only when asked.

use crate::gpu::kernels::{Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, Slot, step_state, wgsl_struct};
use crate::train::{Loss, Reduction};

wgsl_struct! {
    /// The uniform block.
    pub(crate) struct LossDims {
        rows: u32,
        /// The model's outputs per row.
        cols: u32,
        pad0: u32,
        pad3: u32,
        /// 1/count for a mean, 1 for a sum.
        norm: f32,
        /// smooth_l1's beta, huber's delta or cross-entropy's label smoothing.
        param: f32,
        pad1: u32,
        pad2: u32,
    }
}

const DIMS: Slot = Slot::dims("LossDims");
/// The model's output.
pub(crate) const OUT: Slot = Slot::storage(1, "out", "array<f32>", true);
/// The targets: values shaped as the output, or one class index per row.
pub(crate) const TARGET: Slot = Slot::storage(2, "want", "array<f32>", true);
/// The gradient of the loss with respect to the output.
pub(crate) const GRAD: Slot = Slot::storage(3, "grad", "array<f32>", false);
/// The step-state buffer.
pub(crate) const STEP: Slot = Slot::storage(4, "step", "array<f32>", false);
/// The bindings.
pub(crate) const SLOTS: &[Slot] = &[DIMS, OUT, TARGET, GRAD, STEP];
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[SLOTS];

/// A loss over a batch of rows of `cols` outputs.
#[derive(Debug)]
pub(crate) struct LossPass {
    pub(crate) loss: Loss,
    pub(crate) reduction: Reduction,
    pub(crate) cols: usize,
}

impl LossPass {
    /// The shader's number for the loss, and its parameter.
    fn kind(&self) -> (u32, f64) {
        match self.loss {
            Loss::Mse => (0, 0.0),
            Loss::L1 => (1, 0.0),
            // beta = 0 is L1 (PyTorch's smooth_l1 with beta 0).
            Loss::SmoothL1 { beta: 0.0 } => (1, 0.0),
            Loss::SmoothL1 { beta } => (2, beta),
            Loss::Huber { delta } => (3, delta),
            Loss::Bce => (4, 0.0),
            Loss::BceWithLogits => (5, 0.0),
            Loss::CrossEntropy { label_smoothing } => (6, label_smoothing),
            Loss::Nll => (7, 0.0),
        }
    }
}

impl Kernel for LossPass {
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        let body = [&step_state::wgsl(), shader!("loss.wgsl")].concat();
        // Which loss is a pipeline constant, not a uniform: llvmpipe cannot prove a uniform
        // equal in every lane and would run every case of the switch for every value.
        let (kind, _) = self.kind();
        vec![
            PipelineSpec::checked::<LossDims>("loss", "loss", SLOTS, NO_EPILOGUE, &body)
                .with_constants(vec![("KIND", f64::from(kind))]),
        ]
    }

    fn dispatches(&self, rows: usize, _max_groups: u32) -> Vec<Dispatch> {
        let (_, param) = self.kind();
        let count = if self.loss.wants_classes() {
            rows
        } else {
            rows * self.cols
        };
        let norm = match self.reduction {
            Reduction::Mean => 1.0 / count as f64,
            Reduction::Sum => 1.0,
        };
        let dims = LossDims {
            rows: rows as u32,
            cols: self.cols as u32,
            norm: norm as f32,
            param: param as f32,
            ..LossDims::default()
        };
        vec![Dispatch::new(0, &dims, (1, 1))]
    }
}
