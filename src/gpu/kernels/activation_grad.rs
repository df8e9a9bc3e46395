//! The training plan's activations (`shaders/activation_grad.wgsl`): an elementwise activation
//! forward into a tensor of its own (its input, the pre-activation, stays for backward), and its
//! backward `gx = gy·f'(x)` with autograd's formulas and kinks. The forward calls the same
//! `act_<name>` functions as inference (`shaders/common/activation.wgsl`); each activation gets
//! a pipeline of its own that calls only its functions. (A switch on a uniform `kind` served them
//! all from one pipeline, but llvmpipe, which cannot prove a uniform equal in every lane, ran
//! every case for every value: 35 ns per value, a sixth of a batch-1024 step; `docs/LOG.md`,
//! 2026-12-07 05:20.)

use crate::activation::Activation;
use crate::gpu::kernels::{Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, Slot, fold, wgsl_struct};

/// Invocations per workgroup (`WG` in the WGSL).
const WG: u64 = 64;

wgsl_struct! {
    /// The uniform block.
    pub(crate) struct ActDims {
        /// Values: rows × width.
        n: u32,
        groups_x: u32,
        pad0: u32,
        pad3: u32,
        /// Its parameters, as inference passes them (`Spec::values`).
        p0: f32,
        p1: f32,
        pad1: u32,
        pad2: u32,
    }
}

const DIMS: Slot = Slot::dims("ActDims");
/// The pre-activation (read).
pub(crate) const X: Slot = Slot::storage(1, "x", "array<f32>", true);
/// The activation: written by the forward.
pub(crate) const Y: Slot = Slot::storage(2, "y", "array<f32>", false);
/// The activation, read by the backward (sigmoid and tanh differentiate from it).
pub(crate) const Y_READ: Slot = Slot::storage(2, "y", "array<f32>", true);
/// The gradient of the activation (read).
pub(crate) const GY: Slot = Slot::storage(3, "gy", "array<f32>", true);
/// The gradient of the pre-activation (written).
pub(crate) const GX: Slot = Slot::storage(4, "gx", "array<f32>", false);
/// The forward's bindings.
pub(crate) const FORWARD_SLOTS: &[Slot] = &[DIMS, X, Y];
/// The backward's bindings.
pub(crate) const BACKWARD_SLOTS: &[Slot] = &[DIMS, X, Y_READ, GY, GX];
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[FORWARD_SLOTS, BACKWARD_SLOTS];

/// `act_any` and `dact_any`, the entry points' calls, bound to `act`'s functions.
fn dispatch_wgsl(act: Activation) -> String {
    let name = act.spec().name;
    format!(
        "fn act_any(x: f32, p0: f32, p1: f32) -> f32 {{\n    return act_{name}(x, p0, p1);\n}}\n\
         fn dact_any(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {{\n    \
         return dact_{name}(x, y, g, p0, p1);\n}}\n"
    )
}

/// Which way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Forward,
    Backward,
}

/// An activation over a batch of rows of `width` values.
#[derive(Debug)]
pub(crate) struct ActivationPass {
    pub(crate) act: Activation,
    pub(crate) width: usize,
    pub(crate) dir: Direction,
}

impl ActivationPass {
    fn slots_of(dir: Direction) -> &'static [Slot] {
        match dir {
            Direction::Forward => FORWARD_SLOTS,
            Direction::Backward => BACKWARD_SLOTS,
        }
    }
}

impl Kernel for ActivationPass {
    fn slots(&self) -> &'static [Slot] {
        Self::slots_of(self.dir)
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        // The functions, then this direction's entry point only (the other one names bindings
        // this pipeline does not have).
        let wgsl = shader!("activation_grad.wgsl");
        let (common, entries) = wgsl.split_once("// ENTRY POINTS\n").expect("the marker");
        let mut parts = entries.split("@compute").filter(|e| !e.trim().is_empty());
        let (fwd, bwd) = (parts.next().expect("act_forward"), parts.next().expect("act_backward"));
        let entry_text = match self.dir {
            Direction::Forward => fwd,
            Direction::Backward => bwd,
        };
        let body = [common, &dispatch_wgsl(self.act), "@compute", entry_text].concat();
        let entry = match self.dir {
            Direction::Forward => "act_forward",
            Direction::Backward => "act_backward",
        };
        vec![PipelineSpec::checked::<ActDims>(
            "activation",
            entry,
            self.slots(),
            NO_EPILOGUE,
            &body,
        )]
    }

    fn dispatches(&self, rows: usize, max_groups: u32) -> Vec<Dispatch> {
        let n = rows * self.width;
        let grid = fold((n as u64).div_ceil(WG), max_groups);
        debug_assert!(!self.act.is_row(), "an elementwise activation");
        let [p0, p1] = self.act.spec().values;
        let dims = ActDims {
            n: n as u32,
            groups_x: grid.0,
            p0,
            p1,
            ..ActDims::default()
        };
        vec![Dispatch::new(0, &dims, grid)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_elementwise_activation_has_its_derivative() {
        let wgsl = shader!("activation_grad.wgsl");
        // The row activations (softmax, log-softmax) are row_grad's.
        for a in Activation::ALL.into_iter().filter(|a| !a.is_row()) {
            let decl = format!(
                "fn dact_{}(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32",
                a.spec().name
            );
            assert!(wgsl.contains(&decl), "activation_grad.wgsl lacks `{decl}`");
        }
    }
}
