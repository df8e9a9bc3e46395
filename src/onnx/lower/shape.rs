//! `Flatten` (axis 1) and `Reshape` to `[batch, F]`: no computation, a `Module::Flatten` row
//! when they came from an `nn.Flatten`.

use crate::model::Module;

use super::super::proto::NodeProto;
use super::super::scope::Scope;
use super::super::tensor::Data;
use super::{Lowerer, NodeAttrs};

impl<'m> Lowerer<'_, 'm> {
    /// The summary class of a structural node that has no module of its own (Flatten, Reshape):
    /// `Flatten` when it came from an `nn.Flatten`.
    fn is_flatten_module(&self, pos: usize) -> bool {
        match &self.scopes[pos] {
            Scope::Module { class: Some(c), .. } => c == "Flatten",
            Scope::Module { class: None, .. } | Scope::Unknown { .. } => {
                self.g.nodes[pos].1.op_type == "Flatten"
            }
            Scope::Root { .. } => false,
        }
    }

    pub(super) fn flatten(
        &mut self,
        pos: usize,
        node: &'m NodeProto,
        attrs: &NodeAttrs<'_>,
    ) -> Result<(), String> {
        let axis = attrs.int("axis", 1)?;
        self.take(node, "input")?;
        let rank = self.dims.len() as i64 + 1;
        let a = if axis < 0 { axis + rank } else { axis };
        if a != 1 {
            return Err(format!(
                "it flattens at axis {axis} of a rank-{rank} tensor, which merges the batch; only \
                 axis 1 keeps [batch, features]"
            ));
        }
        let f = self.width();
        if self.is_flatten_module(pos) {
            self.modules.push(Module::Flatten);
        }
        self.start(node, pos, vec![f], false)
    }

    pub(super) fn reshape(
        &mut self,
        pos: usize,
        node: &'m NodeProto,
        attrs: &NodeAttrs<'_>,
    ) -> Result<(), String> {
        let allow_zero = attrs.int("allowzero", 0)? != 0;
        let shape: Vec<i64> = match self.const_input(node, 1, "shape")? {
            Some(t) => match &t.data {
                Data::Int(v) => v.clone(),
                _ => return Err("its shape must be an integer tensor".into()),
            },
            None => attrs.ints("shape")?.ok_or("it has no shape")?,
        };
        self.take(node, "input")?;
        let total = self.width();
        let first = self.dims.first().copied().unwrap_or(total);
        let bad = || {
            format!(
                "it reshapes [batch, {}] to {shape:?}; only a reshape to [batch, {total}] (e.g. \
                 [-1, {total}] or [0, -1]) keeps the rows of an MLP",
                self.features()
            )
        };
        let [b, f] = shape[..] else {
            return Err(bad());
        };
        let batch_ok = b == -1
            || (b == 0 && !allow_zero)
            || self
                .g
                .input
                .fixed_batch
                .is_some_and(|n| usize::try_from(b).ok() == Some(n));
        let features = match f {
            -1 => b != -1,
            0 if !allow_zero => first == total,
            _ => usize::try_from(f).ok() == Some(total),
        };
        if !batch_ok || !features {
            return Err(bad());
        }
        if self.is_flatten_module(pos) {
            self.modules.push(Module::Flatten);
        }
        self.start(node, pos, vec![total], false)
    }
}
