//! The training plan's activations (`shaders/activation_grad.wgsl`): an elementwise activation
//! forward into a tensor of its own (its input, the pre-activation, stays for backward), and its
//! backward `gx = gy·f'(x)` with autograd's formulas and kinks. The forward calls the same
//! `act_<name>` functions as inference (`shaders/common/activation.wgsl`); which one is a
//! uniform (`kind`, the activation's place in [`kinds`]), so one pipeline serves them all.

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
        /// The activation's index in [`kinds`].
        kind: u32,
        pad0: u32,
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

/// The elementwise activations, in the order `kind` numbers them.
pub(crate) fn kinds() -> impl Iterator<Item = Activation> {
    Activation::ALL.into_iter().filter(|a| !a.is_row())
}

/// `act_any` and `dact_any`: a switch over [`kinds`].
fn dispatch_wgsl() -> String {
    let mut fwd = String::from("fn act_any(kind: u32, x: f32, p0: f32, p1: f32) -> f32 {\n    switch kind {\n");
    let mut bwd = String::from(
        "fn dact_any(kind: u32, x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32 {\n    switch kind {\n",
    );
    for (i, a) in kinds().enumerate() {
        let name = a.spec().name;
        fwd += &format!("        case {i}u: {{ return act_{name}(x, p0, p1); }}\n");
        bwd += &format!("        case {i}u: {{ return dact_{name}(x, y, g, p0, p1); }}\n");
    }
    fwd += "        default: { return x; }\n    }\n}\n";
    bwd += "        default: { return g; }\n    }\n}\n";
    fwd + &bwd
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
        let body = [common, &dispatch_wgsl(), "@compute", entry_text].concat();
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
        let kind = kinds()
            .position(|a| a.spec().name == self.act.spec().name)
            .expect("an elementwise activation") as u32;
        let [p0, p1] = self.act.spec().values;
        let dims = ActDims {
            n: n as u32,
            groups_x: grid.0,
            kind,
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
        for a in kinds() {
            let decl = format!(
                "fn dact_{}(x: f32, y: f32, g: f32, p0: f32, p1: f32) -> f32",
                a.spec().name
            );
            assert!(wgsl.contains(&decl), "activation_grad.wgsl lacks `{decl}`");
        }
    }
}
