//! The buffers a plan names. Every pass binds tensors, never raw buffers: the plan declares
//! each tensor once (its name, its role and its size), the model uploads the fixed ones (weights,
//! biases, epilogue parameters, optimizer state) and each workspace allocates the per-row ones
//! (the input, activations, and in a training plan pre-activations and their gradients) for its
//! number of rows. A kernel's bindings are matched to tensors by name (see
//! [`Pass::binds`](super::pass::Pass::binds)).

use crate::gpu::options::WeightFormat;
use crate::gpu::pack::PanelLayout;
use crate::model::TensorKind;

/// A tensor of a plan: its index in [`Plan::tensors`](super::plan::Plan::tensors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TensorId(pub(crate) usize);

/// What a tensor holds: which pass writes it, and what survives a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The uploaded input rows.
    Input,
    /// Activation rows a pass writes and the next reads (ping-ponged in inference).
    Activation,
    /// Pre-activation rows a training plan keeps for backward.
    PreActivation,
    /// Gradient rows (of activations) or of a parameter.
    Gradient,
    /// A learnable parameter or running statistic of module `module`, in PyTorch's layout.
    Parameter { module: usize, kind: TensorKind },
    /// An optimizer's state for one parameter (SGD's momentum buffer, Adam's moments).
    OptimizerState,
    /// The step-state buffer of a training plan: the scalars the host writes before each step,
    /// the stop flag and the ring of per-step losses (`kernels/step_state.rs`).
    StepState,
    /// Values the kernels only read, laid out for them: packed weights, padded biases, the
    /// epilogues' parameters.
    Constant,
}

/// How a tensor is sized and stored.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Extent {
    /// `vec4s` per batch row, plus `slack` bytes after the last row: each workspace allocates it
    /// for its rows.
    Rows { vec4s: usize, slack: u64 },
    /// A storage buffer of fixed values, written at upload (then emptied: the device has them).
    Values(Vec<f32>),
    /// A weight texture in panels, written at upload from these packed texels.
    Panels {
        layout: PanelLayout,
        format: WeightFormat,
        texels: Vec<f32>,
    },
}

/// A tensor a plan names.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tensor {
    /// A name unique in its plan: `input`, `act0`, `2.weight`, `pass3.ep`, …
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) extent: Extent,
}
