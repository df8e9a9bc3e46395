//! The normalizations: `BatchNormalization` (eval), `LayerNormalization` (last axis), and
//! `Softmax`/`LogSoftmax` over the features.

use crate::activation::Activation;
use crate::model::{BatchNorm1d, LayerNorm, Module};

use super::super::elementwise::Attrs;
use super::super::proto::NodeProto;
use super::super::scope::fx_param_is_none;
use super::super::tensor::Origin;
use super::{Lowerer, NodeAttrs, Vector};

impl<'m> Lowerer<'_, 'm> {
    /// The affine input `i` of a norm node (`identity`: 1 for a scale, 0 for a bias) as the
    /// module's parameter, or `None` where it is the identity and no parameter of the module
    /// (torchsummary counts parameters) but a constant the exporter made up for
    /// `affine=False`: the legacy exporter writes those as `Constant` nodes, the dynamo
    /// exporter passes `None` in the FX node.
    fn affine(
        &self,
        node: &NodeProto,
        i: usize,
        (v, t): Vector,
        identity: f32,
    ) -> Option<Vec<f32>> {
        let param = t.origin == Origin::Initializer && !fx_param_is_none(node, i);
        (param || v.iter().any(|&x| x != identity)).then_some(v)
    }

    pub(super) fn batchnorm(
        &mut self,
        pos: usize,
        node: &'m NodeProto,
        attrs: &NodeAttrs<'_>,
    ) -> Result<(), String> {
        if attrs.int("training_mode", 0)? != 0 {
            return Err(
                "BatchNormalization in training mode (training_mode = 1) uses the \
                        batch's statistics; export the model in eval() mode"
                    .into(),
            );
        }
        self.only_first_output(node, "a training statistic")?;
        let eps = attrs.float("epsilon", 1e-5)?;
        self.take(node, "input")?;
        let c = self.two_d("BatchNormalization")?;
        let mut get = |i: usize, what: &str| -> Result<Vector, String> {
            self.vector(node, i, what, c)?
                .ok_or_else(|| format!("its {what} (input {i}) is missing"))
        };
        let scale = get(1, "scale")?;
        let bias = get(2, "bias (B)")?;
        let (mean, _) = get(3, "mean")?;
        let (var, _) = get(4, "var")?;
        let weight = self.affine(node, 1, scale, 1.0);
        let bias = self.affine(node, 2, bias, 0.0);
        let bn = BatchNorm1d::new(mean, var, weight, bias, eps).map_err(|e| e.to_string())?;
        self.modules.push(Module::BatchNorm1d(bn));
        self.start(node, pos, vec![c], false)
    }

    pub(super) fn layernorm(
        &mut self,
        pos: usize,
        node: &'m NodeProto,
        attrs: &NodeAttrs<'_>,
    ) -> Result<(), String> {
        self.only_first_output(node, "the mean or inverse standard deviation")?;
        let axis = attrs.int("axis", -1)?;
        let eps = attrs.float("epsilon", 1e-5)?;
        self.take(node, "input")?;
        let f = self.two_d("LayerNormalization")?;
        if axis != -1 && axis != 1 {
            return Err(format!(
                "it normalizes from axis {axis}; on [batch, features] only the last axis (1 or \
                 -1) is a LayerNorm over the features"
            ));
        }
        let scale = self
            .vector(node, 1, "scale", f)?
            .ok_or("its scale (input 1) is missing")?;
        let weight = self.affine(node, 1, scale, 1.0);
        let bias = self
            .vector(node, 2, "bias (B)", f)?
            .and_then(|b| self.affine(node, 2, b, 0.0));
        let ln = LayerNorm::new(f, weight, bias, eps).map_err(|e| e.to_string())?;
        self.modules.push(Module::LayerNorm(ln));
        self.start(node, pos, vec![f], false)
    }

    pub(super) fn softmax(
        &mut self,
        pos: usize,
        node: &'m NodeProto,
        attrs: &NodeAttrs<'_>,
    ) -> Result<(), String> {
        let log = node.op_type == "LogSoftmax";
        let default_axis = if self.g.opset.is_some_and(|v| v < 13) {
            1
        } else {
            -1
        };
        let axis = attrs.int("axis", default_axis)?;
        self.take(node, "input")?;
        let f = self.two_d(&node.op_type)?;
        if axis != -1 && axis != 1 {
            return Err(format!(
                "it normalizes over axis {axis}; on [batch, features] only the feature axis (1 or \
                 -1) is supported"
            ));
        }
        let act = if log {
            Activation::LogSoftmax
        } else {
            Activation::Softmax
        };
        self.modules.push(if self.scopes[pos].is_root() {
            Module::Function(act)
        } else {
            Module::Activation(act)
        });
        self.start(node, pos, vec![f], false)
    }
}
