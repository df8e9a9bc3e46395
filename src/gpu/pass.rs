//! [`Pass`]: one kernel run of a plan, the same value from the plan to the replay. It holds the
//! kernel (a [`Kernel`], which declares its bindings, pipelines and grid) and the tensor bound at
//! each of the kernel's bindings, by the binding's name.

use crate::gpu::kernels::Kernel;
use crate::gpu::tensor::TensorId;

/// Which part of a step a pass belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The forward pass (in a training plan, keeping what backward needs).
    Forward,
    /// Gradients, from the loss back to the parameters.
    Backward,
    /// The optimizer's update of the parameters.
    Update,
}

/// One kernel run: the kernel, its tensors by binding name, and its phase.
#[derive(Debug)]
pub(crate) struct Pass {
    pub(crate) kernel: Box<dyn Kernel>,
    /// The tensor at each of the kernel's bindings but `dims`, by the binding's name.
    pub(crate) binds: Vec<(&'static str, TensorId)>,
    pub(crate) phase: Phase,
}

impl Pass {
    /// A forward pass of `kernel` with these bindings.
    pub(crate) fn forward(
        kernel: impl Kernel + 'static,
        binds: Vec<(&'static str, TensorId)>,
    ) -> Self {
        Self::new(kernel, binds, Phase::Forward)
    }

    /// A pass of `kernel` in `phase` with these bindings.
    pub(crate) fn new(
        kernel: impl Kernel + 'static,
        binds: Vec<(&'static str, TensorId)>,
        phase: Phase,
    ) -> Self {
        Pass {
            kernel: Box::new(kernel),
            binds,
            phase,
        }
    }

    /// The tensor bound at the binding `name`.
    pub(crate) fn tensor(&self, name: &str) -> Option<TensorId> {
        self.binds.iter().find(|(n, _)| *n == name).map(|b| b.1)
    }
}
