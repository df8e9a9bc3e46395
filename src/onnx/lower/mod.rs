//! Nodes → modules: the graph, walked in topological order, must be a chain from the input to
//! the output.
//!
//! Every value is either a constant (initializers, `Constant` nodes, and elementwise ops on
//! constants, folded here) or computed from the input. The "structural" ops (`Gemm`, `MatMul`,
//! `BatchNormalization`, `LayerNormalization`, `Softmax`, `LogSoftmax`, `Flatten`, `Reshape`)
//! each become one module. Between two of them, every elementwise node (Add, Mul, Erf, Relu,
//! Where, …) joins a *region*: an SSA DAG over the last structural op's output, which may use
//! that value many times (SiLU is `x · sigmoid(x)`). When the next structural op (or the graph
//! output) reads a value of the region, the region becomes [`Expr`](crate::Expr)s, one per
//! PyTorch module it came from ([`super::scope`]): consecutive nodes of one scope make one
//! module, split where exactly one value flows from the nodes before to the nodes after. A
//! value used again after a structural op (a skip connection) is not a chain and is refused.
//!
//! This file walks the graph and reads the inputs of structural ops; each kind of op lowers in
//! its own file: [`linear`] (`Gemm`, `MatMul` and its bias `Add`), [`norm`]
//! (`BatchNormalization`, `LayerNormalization`, `Softmax`), [`shape`] (`Flatten`, `Reshape`),
//! [`region`] (elementwise nodes, and regions becoming modules), [`constant`] (`Constant`
//! nodes, folding, broadcasting); [`attrs`] reads attributes.

mod attrs;
mod constant;
mod linear;
mod norm;
mod prune;
mod region;
mod shape;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::model::{Mlp, Module};

use super::IMPORT_BUDGET;
use super::elementwise;
use super::graph::{Graph, describe, quote};
use super::proto::NodeProto;
use super::scope::Scope;
use super::tensor::{self, Data, Origin, Tensor};

use attrs::{LegacyClip, NodeAttrs};
use region::RNode;

/// The structural ops, each one module (the elementwise ones are in [`elementwise::OPS`]).
const STRUCTURAL: &[&str] = &[
    "BatchNormalization",
    "Constant",
    "Flatten",
    "Gemm",
    "LayerNormalization",
    "LogSoftmax",
    "MatMul",
    "Reshape",
    "Softmax",
];

/// Every op the importer reads, sorted, for messages.
pub(crate) fn supported_ops() -> Vec<&'static str> {
    let mut ops: Vec<&str> = STRUCTURAL.iter().chain(elementwise::OPS).copied().collect();
    ops.sort_unstable_by_key(|o| o.to_ascii_lowercase());
    ops
}

/// "supported ops: …", for messages.
fn supported_message() -> String {
    format!("the importer supports: {}", supported_ops().join(", "))
}

/// A constant vector's values, and the tensor they came from.
type Vector = (Vec<f32>, Rc<Tensor>);

/// A value of the graph.
#[derive(Clone, Debug)]
enum Val {
    /// A constant.
    Const(Rc<Tensor>),
    /// Computed from the input: value `idx` of region `epoch` (0 is the region's input).
    Dyn {
        epoch: usize,
        idx: usize,
        boolean: bool,
    },
}

/// The structural module last made: its node's position, and for a `MatMul`, the output a
/// following `Add` may fold into its bias.
#[derive(Clone, Copy, Debug)]
struct Last<'m> {
    pos: usize,
    matmul: Option<&'m str>,
}

struct Lowerer<'g, 'm> {
    g: &'g Graph<'m>,
    scopes: Vec<Scope>,
    values: HashMap<&'m str, Val>,
    modules: Vec<Module>,
    epoch: usize,
    /// Dimensions (after the batch axis) of the region's values.
    dims: Vec<usize>,
    region: Vec<RNode>,
    last: Option<Last<'m>>,
    /// How many more values the importer may make (folded constants, per-feature columns
    /// broadcast from smaller constants): a few bytes of graph must not ask for gigabytes.
    budget: usize,
    /// The per-feature columns made from each constant, by tensor and width.
    columns: HashMap<(*const Tensor, usize), Arc<[f32]>>,
}

/// Lowers a checked graph, read from a file of `file_len` bytes, to a model.
pub(crate) fn lower(g: &Graph<'_>, file_len: usize) -> Result<Mlp, String> {
    // Widths change only through Linear layers and every model has one, so the first Linear
    // holds at least one weight (one byte or more in the file) per input feature.
    let width: usize = g.input.dims.iter().product();
    if width > file_len {
        return Err(format!(
            "the graph input {} has {width} features, more than the file ({file_len} bytes) \
             could hold the weights of a first layer for",
            quote(g.input.name)
        ));
    }
    let mut l = Lowerer {
        g,
        scopes: g.nodes.iter().map(|&(i, n)| Scope::of(n, i)).collect(),
        values: HashMap::new(),
        modules: Vec::new(),
        epoch: 0,
        dims: g.input.dims.clone(),
        region: Vec::new(),
        last: None,
        budget: file_len.saturating_mul(2).saturating_add(IMPORT_BUDGET),
        columns: HashMap::new(),
    };
    l.values.insert(g.input.name, l.current_value(0));
    for (pos, &(index, node)) in g.nodes.iter().enumerate() {
        l.node(pos, node)
            .map_err(|e| format!("{}: {e}", describe(node, index)))?;
    }
    l.finish()
}

impl<'m> Lowerer<'_, 'm> {
    /// Value `idx` of the current region, a float (0 is the region's input).
    fn current_value(&self, idx: usize) -> Val {
        Val::Dyn {
            epoch: self.epoch,
            idx,
            boolean: false,
        }
    }

    /// The data's dimensions after the batch axis, for messages: `2, 3` for `[batch, 2, 3]`.
    fn features(&self) -> String {
        self.dims
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn width(&self) -> usize {
        self.dims.iter().product()
    }

    /// The value `name` (an initializer is read on first use).
    fn value(&mut self, name: &'m str) -> Result<Val, String> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        let t = self
            .g
            .initializers
            .get(name)
            .ok_or_else(|| format!("{} is used before it is computed", quote(name)))?;
        let t = tensor::read(t, Origin::Initializer)
            .map_err(|e| format!("initializer {} {e}", quote(name)))?;
        let v = Val::Const(Rc::new(t));
        self.values.insert(name, v.clone());
        Ok(v)
    }

    /// The node's inputs, `None` for omitted ones.
    fn inputs(&mut self, node: &'m NodeProto) -> Result<Vec<Option<Val>>, String> {
        node.input
            .iter()
            .map(|n| {
                if n.is_empty() {
                    Ok(None)
                } else {
                    self.value(n).map(Some)
                }
            })
            .collect()
    }

    fn define(&mut self, node: &'m NodeProto, v: Val) -> Result<(), String> {
        let out = node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .ok_or("it has no output")?;
        self.values.insert(out, v);
        Ok(())
    }

    /// Refuses uses of the node's outputs after the first (training outputs, masks).
    fn only_first_output(&self, node: &NodeProto, what: &str) -> Result<(), String> {
        for o in node.output.iter().skip(1).filter(|o| !o.is_empty()) {
            if self.g.uses.get(o.as_str()).copied().unwrap_or(0) > 0 {
                return Err(format!(
                    "its output {} ({what}) is used; only the first output of this op is \
                     supported",
                    quote(o)
                ));
            }
        }
        Ok(())
    }

    fn node(&mut self, pos: usize, node: &'m NodeProto) -> Result<(), String> {
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(format!(
                "op {} of domain {} is not a standard ONNX op; {}",
                quote(&node.op_type),
                quote(&node.domain),
                supported_message()
            ));
        }
        let unsupported = || {
            format!(
                "unsupported op {}; {}",
                quote(&node.op_type),
                supported_message()
            )
        };
        let attrs = NodeAttrs(node);
        attrs.check_unique()?;
        match node.op_type.as_str() {
            "Constant" => {
                let t = constant::constant(node)?;
                self.define(node, Val::Const(Rc::new(t)))
            }
            "Gemm" => self.gemm(pos, node, &attrs),
            "MatMul" => self.matmul(pos, node),
            "BatchNormalization" => self.batchnorm(pos, node, &attrs),
            "LayerNormalization" => self.layernorm(pos, node, &attrs),
            "Softmax" | "LogSoftmax" => self.softmax(pos, node, &attrs),
            "Flatten" => self.flatten(pos, node, &attrs),
            "Reshape" => self.reshape(pos, node, &attrs),
            op if !elementwise::OPS.contains(&op) => Err(unsupported()),
            op => {
                let vals = self.inputs(node)?;
                let scalar = |i: usize| match vals.get(i) {
                    Some(Some(Val::Const(t))) if t.len() == 1 => {
                        t.floats().and_then(|v| v.first().copied())
                    }
                    _ => None,
                };
                self.legacy_broadcast(node, &vals)?;
                let legacy_clip = LegacyClip(&attrs);
                let attrs: &dyn elementwise::Attrs = if op == "Clip" && self.opset_below(11) {
                    &legacy_clip
                } else {
                    &attrs
                };
                match elementwise::parse(op, node.input.len(), attrs, &scalar) {
                    Some(parsed) => {
                        let (op, arity) = parsed?;
                        self.elementwise(pos, node, op, arity, vals)
                    }
                    None => Err(unsupported()),
                }
            }
        }
    }

    /// Whether the file's default opset is older than `v` (a file that names none is taken as
    /// current).
    fn opset_below(&self, v: i64) -> bool {
        self.g.opset.is_some_and(|o| o < v)
    }

    /// Before opset 7, `Add`, `Sub`, `Mul`, `Div`, `Pow`, … broadcast only with `broadcast = 1`,
    /// and then B's dims line up with A's from `axis` on (`axis = 0` with a B of one value per
    /// row adds per row). The importer computes numpy's broadcasting (trailing dims), which is
    /// the same only when B ends where A ends or holds one value: any other axis is refused by
    /// name rather than computed wrong.
    fn legacy_broadcast(&self, node: &NodeProto, vals: &[Option<Val>]) -> Result<(), String> {
        let attrs = NodeAttrs(node);
        if !self.opset_below(7) || attrs.int("broadcast", 0)? == 0 {
            return Ok(());
        }
        let axis = attrs.int("axis", i64::MIN)?;
        if axis == i64::MIN {
            return Ok(());
        }
        // Values computed from the input are [batch, features].
        let dims = |v: Option<&Option<Val>>| match v {
            Some(Some(Val::Const(t))) => t.dims.clone(),
            _ => vec![0, 0],
        };
        let (a, b) = (dims(vals.first()), dims(vals.get(1)));
        let (ra, rb) = (a.len() as i64, b.len() as i64);
        let at = if axis < 0 { axis + ra } else { axis };
        if at + rb == ra || b.iter().all(|&d| d == 1) {
            return Ok(());
        }
        Err(format!(
            "it uses opset {}'s legacy broadcast (broadcast=1, axis={axis}): B {b:?} lines up \
             with A from axis {at}, not with A's last axes as numpy-style broadcasting (opset 7 \
             and later) does, and the importer computes only the latter; export with a newer \
             opset",
            self.g.opset.unwrap_or(0)
        ))
    }

    /// Refuses a value of an earlier region: the graph is not a chain.
    fn current(&self, epoch: usize, name: &str) -> Result<(), String> {
        if epoch == self.epoch {
            return Ok(());
        }
        Err(format!(
            "it reads {}, which was computed before {} (module {}); the graph is not a chain \
             (a skip or residual connection?), which an MLP cannot express",
            quote(name),
            self.modules
                .last()
                .and_then(Module::class)
                .unwrap_or("a structural op"),
            self.modules.len()
        ))
    }

    // ---------------------------------------------------------------------------------------
    // Structural nodes.

    /// The data input of a structural node: the region ends there and becomes modules.
    fn take(&mut self, node: &'m NodeProto, what: &str) -> Result<(), String> {
        let name = node
            .input
            .first()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("it has no {what}"))?;
        match self.value(name)? {
            Val::Const(_) => Err(format!(
                "its {what} {} is a constant, not computed from the graph input; the importer \
                 reads graphs where data flows from the one input through each op",
                quote(name)
            )),
            Val::Dyn {
                epoch,
                idx,
                boolean,
            } => {
                self.current(epoch, name)?;
                if boolean {
                    return Err(format!("its {what} {} is a boolean", quote(name)));
                }
                self.flush(idx)
            }
        }
    }

    /// Requires the data to be `[batch, features]`.
    fn two_d(&self, op: &str) -> Result<usize, String> {
        if self.dims.len() == 1 {
            Ok(self.dims[0])
        } else {
            Err(format!(
                "{op} needs a [batch, features] input; this one is [batch, {}] (flatten it first)",
                self.features()
            ))
        }
    }

    /// A constant input of a structural node.
    fn const_input(
        &mut self,
        node: &'m NodeProto,
        i: usize,
        what: &str,
    ) -> Result<Option<Rc<Tensor>>, String> {
        let Some(name) = node.input.get(i).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        match self.value(name)? {
            Val::Const(t) => Ok(Some(t)),
            Val::Dyn { .. } => Err(format!(
                "its {what} {} is computed from the graph input; the importer needs it constant \
                 (an initializer or a Constant node)",
                quote(name)
            )),
        }
    }

    /// A constant float input of `n` values (any shape with that many elements).
    fn vector(
        &mut self,
        node: &'m NodeProto,
        i: usize,
        what: &str,
        n: usize,
    ) -> Result<Option<Vector>, String> {
        let Some(t) = self.const_input(node, i, what)? else {
            return Ok(None);
        };
        let name = quote(node.input.get(i).map_or("", String::as_str));
        let v = match &t.data {
            Data::Float(v) => v.clone(),
            _ => {
                return Err(format!(
                    "its {what} {name} is a {} tensor; float expected",
                    t.kind()
                ));
            }
        };
        if v.len() != n {
            return Err(format!(
                "its {what} {name} has {} values (shape {:?}); {n} expected, one per feature",
                v.len(),
                t.dims
            ));
        }
        Ok(Some((v, t)))
    }

    /// Starts a new region on the output of the structural module just made.
    fn start(
        &mut self,
        node: &'m NodeProto,
        pos: usize,
        dims: Vec<usize>,
        matmul: bool,
    ) -> Result<(), String> {
        self.epoch += 1;
        self.dims = dims;
        self.region.clear();
        let out = node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .ok_or("it has no output")?;
        let single_use = self.g.uses.get(out.as_str()).copied() == Some(1);
        self.last = Some(Last {
            pos,
            matmul: (matmul && single_use).then_some(out.as_str()),
        });
        self.define(node, self.current_value(0))
    }

    /// The graph output ends the last region.
    fn finish(mut self) -> Result<Mlp, String> {
        let name = self.g.output.name;
        match self.value(name)? {
            Val::Const(_) => {
                return Err(format!(
                    "the graph output {} is a constant: it does not depend on the input",
                    quote(name)
                ));
            }
            Val::Dyn {
                epoch,
                idx,
                boolean,
            } => {
                self.current(epoch, name)
                    .map_err(|e| format!("the graph output: {e}"))?;
                if boolean {
                    return Err(format!("the graph output {} is a boolean", quote(name)));
                }
                self.flush(idx)?;
            }
        }
        let model = Mlp::new(self.modules).map_err(|e| {
            format!(
                "the graph does not make an MLP: {}",
                e.to_string()
                    .trim_start_matches("shape mismatch: ")
                    .trim_start_matches("invalid argument: ")
            )
        })?;
        if let Some(w) = self.g.output.width
            && w != model.out_features()
        {
            return Err(format!(
                "the graph output {} is declared [batch, {w}] but the graph computes {} features",
                quote(name),
                model.out_features()
            ));
        }
        Ok(model)
    }
}
