//! `Gemm` and `MatMul` (with a following `Add` of a per-feature constant as its bias) become
//! [`Linear`] layers.

use crate::model::expr::Binary;
use crate::model::{Linear, Module};

use super::super::elementwise::{Attrs, Op};
use super::super::proto::NodeProto;
use super::super::scope::Scope;
use super::super::tensor::{Data, Tensor};
use super::region::Arg;
use super::{Last, Lowerer, NodeAttrs, Val};

impl<'m> Lowerer<'_, 'm> {
    /// `MatMul` then `Add` of a per-feature constant in the same scope: the Linear layer's
    /// bias (`x·W + b`, what PyTorch's `F.linear` computes), so the sum is rounded once.
    pub(super) fn fold_bias(
        &mut self,
        pos: usize,
        node: &'m NodeProto,
        op: &Op,
        vals: &[Option<Val>],
    ) -> Result<bool, String> {
        let Some(last) = self.last else {
            return Ok(false);
        };
        let Some(product) = last.matmul else {
            return Ok(false);
        };
        if *op != Op::Binary(Binary::Add) || !self.region.is_empty() {
            return Ok(false);
        }
        let same_scope = self.scopes[pos].same(&self.scopes[last.pos])
            || matches!(
                (&self.scopes[pos], &self.scopes[last.pos]),
                (Scope::Unknown { .. }, Scope::Unknown { .. })
            );
        let reads_product = node.input.iter().any(|n| n == product);
        if !same_scope || !reads_product || self.g.uses.get(product).copied() != Some(1) {
            return Ok(false);
        }
        let bias = vals.iter().flatten().find_map(|v| match v {
            Val::Const(t) => Some(t.clone()),
            Val::Dyn { .. } => None,
        });
        let Some(bias) = bias else {
            return Ok(false);
        };
        let Some(Module::Linear(lin)) = self.modules.last() else {
            return Ok(false);
        };
        let Some(b) = per_output(&bias, lin.out_features()) else {
            return Ok(false);
        };
        let with_bias = Linear::new(
            lin.in_features(),
            lin.out_features(),
            lin.weight().to_vec(),
            Some(b),
        )
        .map_err(|e| e.to_string())?;
        if let Some(m) = self.modules.last_mut() {
            *m = Module::Linear(with_bias);
        }
        self.last = Some(Last { pos, matmul: None });
        self.define(node, self.current_value(0))?;
        Ok(true)
    }

    pub(super) fn gemm(
        &mut self,
        pos: usize,
        node: &'m NodeProto,
        attrs: &NodeAttrs<'_>,
    ) -> Result<(), String> {
        let alpha = attrs.float("alpha", 1.0)?;
        let beta = attrs.float("beta", 1.0)?;
        if attrs.int("transA", 0)? != 0 {
            return Err(
                "transA = 1 transposes the batch into the features; only transA = 0 is \
                        a layer of an MLP"
                    .into(),
            );
        }
        let trans_b = attrs.int("transB", 0)? != 0;
        let b = self
            .const_input(node, 1, "weight (B)")?
            .ok_or("it has no weight input (B)")?;
        let c = if beta == 0.0 {
            None // β = 0: C does not count.
        } else {
            self.const_input(node, 2, "bias (C)")?
        };
        self.take(node, "input (A)")?;
        let k = self.two_d("Gemm")?;
        let w = match (&b.data, b.dims.as_slice()) {
            (Data::Float(w), &[r, c]) => (w, r, c),
            _ => {
                return Err(format!(
                    "its weight (B) must be a 2-D float tensor; it is a {} tensor of shape {:?}",
                    b.kind(),
                    b.dims
                ));
            }
        };
        let (n, k_b) = if trans_b { (w.1, w.2) } else { (w.2, w.1) };
        if k_b != k {
            return Err(format!(
                "its weight (B) has shape {:?}{}: {k_b} inputs, but the data has {k} features",
                b.dims,
                if trans_b { " with transB" } else { "" }
            ));
        }
        let weight = if trans_b {
            w.0.clone()
        } else {
            transpose(w.0, k, n)
        };
        let bias = match &c {
            None => None,
            Some(t) => Some(per_output(t, n).ok_or_else(|| {
                format!(
                    "its bias (C) of shape {:?} is not one value per output ({n}) or a scalar",
                    t.dims
                )
            })?),
        };
        let exact = alpha == 1.0 && (bias.is_none() || beta == 1.0);
        let linear_bias = if exact { bias.clone() } else { None };
        let linear = Linear::new(k, n, weight, linear_bias).map_err(|e| e.to_string())?;
        self.modules.push(Module::Linear(linear));
        self.start(node, pos, vec![n], false)?;
        if !exact {
            // α·(x·W) + β·C in the epilogue, as the spec writes it: α scaling the weights would
            // round every weight.
            let mut at = 0;
            if alpha != 1.0 {
                at = self.push_tail(pos, Binary::Mul, at, Arg::Scalar(alpha));
            }
            if let Some(bias) = bias {
                let scaled: Vec<f32> = bias
                    .iter()
                    .map(|&v| (f64::from(beta) * f64::from(v)) as f32)
                    .collect();
                at = self.push_tail(pos, Binary::Add, at, Arg::Column(scaled.into()));
            }
            let v = self.current_value(at);
            self.values.insert(&node.output[0], v);
        }
        Ok(())
    }

    pub(super) fn matmul(&mut self, pos: usize, node: &'m NodeProto) -> Result<(), String> {
        if node.input.len() != 2 {
            return Err(format!(
                "it has {} inputs; MatMul takes 2",
                node.input.len()
            ));
        }
        let b = self
            .const_input(node, 1, "weight (second operand)")?
            .ok_or("it has no weight")?;
        self.take(node, "input (first operand)")?;
        let k = self.two_d("MatMul")?;
        let (w, rows, n) = match (&b.data, b.dims.as_slice()) {
            (Data::Float(w), &[r, c]) => (w, r, c),
            _ => {
                return Err(format!(
                    "its weight must be a 2-D float tensor [in, out]; it is a {} tensor of shape \
                     {:?}",
                    b.kind(),
                    b.dims
                ));
            }
        };
        if rows != k {
            return Err(format!(
                "its weight has shape {:?}: {rows} inputs, but the data has {k} features",
                b.dims
            ));
        }
        let linear = Linear::new(k, n, transpose(w, k, n), None).map_err(|e| e.to_string())?;
        self.modules.push(Module::Linear(linear));
        self.start(node, pos, vec![n], true)
    }
}

/// `w` (`[rows, cols]` row-major) transposed.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.len());
    for c in 0..cols {
        for r in 0..rows {
            out.push(w[r * cols + c]);
        }
    }
    out
}

/// A bias: one value per output (shape `[n]` or `[1, n]`) or a scalar, as `n` values.
fn per_output(t: &Tensor, n: usize) -> Option<Vec<f32>> {
    let v = match &t.data {
        Data::Float(v) => v,
        _ => return None,
    };
    let per_feature = t.dims.iter().rev().skip(1).all(|&d| d == 1) && t.dims.len() <= 2;
    if v.len() == 1 && t.dims.len() <= 2 {
        Some(vec![v[0]; n])
    } else if v.len() == n && per_feature {
        Some(v.clone())
    } else {
        None
    }
}
