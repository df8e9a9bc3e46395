//! Collects a training plan's tensors and passes.

use crate::gpu::kernels::Kernel;
use crate::gpu::pack;
use crate::gpu::pass::{Pass, Phase};
use crate::gpu::tensor::{Extent, Role, Tensor, TensorId};

/// The tensors and passes of a plan in the making.
#[derive(Default)]
pub(crate) struct Builder {
    pub(crate) tensors: Vec<Tensor>,
    pub(crate) passes: Vec<Pass>,
}

impl Builder {
    pub(crate) fn tensor(&mut self, name: String, role: Role, extent: Extent) -> TensorId {
        self.tensors.push(Tensor { name, role, extent });
        TensorId(self.tensors.len() - 1)
    }

    /// Plain `[rows, width]` f32 rows (the extent counts vec4s: at least `width` values a row).
    pub(crate) fn rows(&mut self, name: String, role: Role, width: usize) -> TensorId {
        let vec4s = pack::vec4s(width.max(1));
        self.tensor(name, role, Extent::Rows { vec4s, slack: 0 })
    }

    pub(crate) fn values(&mut self, name: String, role: Role, values: Vec<f32>) -> TensorId {
        self.tensor(name, role, Extent::Values(values))
    }

    pub(crate) fn pass(
        &mut self,
        phase: Phase,
        kernel: impl Kernel + 'static,
        binds: Vec<(&'static str, TensorId)>,
    ) {
        self.passes.push(Pass::new(kernel, binds, phase));
    }
}
