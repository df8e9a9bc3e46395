//! Nodes → modules: the graph, walked in topological order, must be a chain from the input to
//! the output.
//!
//! Every value is either a constant (initializers, `Constant` nodes, and elementwise ops on
//! constants, folded here) or computed from the input. The "structural" ops (`Gemm`, `MatMul`,
//! `BatchNormalization`, `LayerNormalization`, `Softmax`, `LogSoftmax`, `Flatten`, `Reshape`)
//! each become one module. Between two of them, every elementwise node (Add, Mul, Erf, Relu,
//! Where, …) joins a *region*: an SSA DAG over the last structural op's output, which may use
//! that value many times (SiLU is `x · sigmoid(x)`). When the next structural op (or the graph
//! output) reads a value of the region, the region becomes [`Expr`]s, one per PyTorch module
//! it came from ([`super::scope`]): consecutive nodes of one scope make one module, split
//! where exactly one value flows from the nodes before to the nodes after. A value used again
//! after a structural op (a skip connection) is not a chain and is refused.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use crate::activation::Activation;
use crate::model::expr::{Binary, Expr, Node};
use crate::model::{BatchNorm1d, LayerNorm, Linear, Mlp, Module, PRelu};

use super::elementwise::{self, Attrs, Op};
use super::graph::{Graph, describe, quote};
use super::proto::{AttributeProto, NodeProto, attr_type};
use super::scope::{Scope, fx_param_is_none, pattern_class};
use super::tensor::{self, Data, Origin, Tensor, element_count};
use super::{IMPORT_BUDGET, MAX_FOLD_ELEMENTS};

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

/// An operand of a region node.
#[derive(Clone, Debug)]
enum Arg {
    /// A region value.
    Val(usize),
    /// A scalar constant.
    Scalar(f32),
    /// A per-feature constant, one value per feature.
    Column(Arc<[f32]>),
}

/// An elementwise node of the current region.
#[derive(Debug)]
struct RNode {
    op: Op,
    args: Vec<Option<Arg>>,
    /// The graph node's position in topological order (its scope, op type).
    pos: usize,
    /// Part of the structural op before the region (a `Gemm`'s α/β): never a module of its own.
    tail: bool,
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
    l.values.insert(
        g.input.name,
        Val::Dyn {
            epoch: 0,
            idx: 0,
            boolean: false,
        },
    );
    for (pos, &(index, node)) in g.nodes.iter().enumerate() {
        l.node(pos, node)
            .map_err(|e| format!("{}: {e}", describe(node, index)))?;
    }
    l.finish()
}

impl<'m> Lowerer<'_, 'm> {
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
        let attrs = NodeAttrs(node);
        match node.op_type.as_str() {
            "Constant" => {
                let t = constant(node)?;
                self.define(node, Val::Const(Rc::new(t)))
            }
            "Gemm" => self.gemm(pos, node, &attrs),
            "MatMul" => self.matmul(pos, node),
            "BatchNormalization" => self.batchnorm(pos, node, &attrs),
            "LayerNormalization" => self.layernorm(pos, node, &attrs),
            "Softmax" | "LogSoftmax" => self.softmax(pos, node, &attrs),
            "Flatten" => self.flatten(pos, node, &attrs),
            "Reshape" => self.reshape(pos, node, &attrs),
            op if !elementwise::OPS.contains(&op) => Err(format!(
                "unsupported op {}; {}",
                quote(&node.op_type),
                supported_message()
            )),
            op => {
                let vals = self.inputs(node)?;
                let scalar = |i: usize| match vals.get(i) {
                    Some(Some(Val::Const(t))) if t.len() == 1 => {
                        t.floats().and_then(|v| v.first().copied())
                    }
                    _ => None,
                };
                match elementwise::parse(op, node.input.len(), &attrs, &scalar) {
                    Some(parsed) => {
                        let (op, arity) = parsed?;
                        self.elementwise(pos, node, op, arity, vals)
                    }
                    None => Err(format!(
                        "unsupported op {}; {}",
                        quote(&node.op_type),
                        supported_message()
                    )),
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Elementwise nodes.

    fn elementwise(
        &mut self,
        pos: usize,
        node: &'m NodeProto,
        op: Op,
        arity: usize,
        mut vals: Vec<Option<Val>>,
    ) -> Result<(), String> {
        if let Op::Alias { dropout: Some(_) } = op {
            // Dropout(data, ratio, training_mode): inference only.
            if let Some(Some(Val::Const(t))) = vals.get(2) {
                let on = match &t.data {
                    Data::Bool(v) => v.iter().any(|&b| b),
                    Data::Int(v) => v.iter().any(|&b| b != 0),
                    Data::Float(v) => v.iter().any(|&b| b != 0.0),
                };
                if on {
                    return Err(
                        "Dropout in training mode (training_mode = true) is random; \
                                export the model in eval() mode"
                            .into(),
                    );
                }
            } else if let Some(Some(_)) = vals.get(2) {
                return Err("Dropout's training_mode must be a constant false".into());
            }
            self.only_first_output(node, "the dropout mask")?;
            vals.truncate(1);
        } else {
            // A Clip whose constant bounds became a Hardtanh has consumed them.
            let takes = if node.op_type == "Clip" { 3 } else { arity };
            if vals.len() > takes {
                return Err(format!(
                    "it has {} inputs; this op takes at most {takes}",
                    vals.len()
                ));
            }
        }
        vals.resize(arity, None);
        let required = match op {
            Op::Clip { .. } | Op::Alias { .. } | Op::Act(_) | Op::ClipConst { .. } => 1,
            _ => arity,
        };
        if let Some(i) = (0..required).find(|&i| vals[i].is_none()) {
            return Err(format!("input {i} is missing; this op needs {required}"));
        }
        if vals[0].is_none() {
            return Err("it has no input".into());
        }

        // All constant: fold.
        if vals.iter().flatten().all(|v| matches!(v, Val::Const(_))) {
            let consts: Vec<Option<Rc<Tensor>>> = vals
                .iter()
                .map(|v| match v {
                    Some(Val::Const(t)) => Some(t.clone()),
                    _ => None,
                })
                .collect();
            let t = fold(&op, &consts, &mut self.budget)?;
            return self.define(node, Val::Const(t));
        }

        if self.fold_bias(pos, node, &op, &vals)? {
            return Ok(());
        }

        let mut args = Vec::with_capacity(arity);
        for (i, v) in vals.iter().enumerate() {
            let is_cond = matches!(op, Op::Where) && i == 0;
            let name = node.input.get(i).map_or("", String::as_str);
            args.push(match v {
                None => None,
                Some(Val::Const(t)) => {
                    if is_cond != matches!(t.data, Data::Bool(_)) {
                        return Err(format!(
                            "input {} is a {} tensor; {} expected",
                            quote(name),
                            t.kind(),
                            if is_cond { "a boolean" } else { "a float" }
                        ));
                    }
                    Some(
                        self.const_arg(t)
                            .map_err(|e| format!("constant {} {e}", quote(name)))?,
                    )
                }
                Some(Val::Dyn {
                    epoch,
                    idx,
                    boolean,
                }) => {
                    self.current(*epoch, name)?;
                    if is_cond != *boolean {
                        return Err(format!(
                            "input {} is {}; {} expected",
                            quote(name),
                            if *boolean {
                                "a boolean (a comparison)"
                            } else {
                                "a float tensor"
                            },
                            if is_cond { "a boolean" } else { "a float" }
                        ));
                    }
                    Some(Arg::Val(*idx))
                }
            });
        }
        let boolean = elementwise::gives_bool(&op);
        self.region.push(RNode {
            op,
            args,
            pos,
            tail: false,
        });
        let v = Val::Dyn {
            epoch: self.epoch,
            idx: self.region.len(),
            boolean,
        };
        self.define(node, v)
    }

    /// `MatMul` then `Add` of a per-feature constant in the same scope: the Linear layer's
    /// bias (`x·W + b`, what PyTorch's `F.linear` computes), so the sum is rounded once.
    fn fold_bias(
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
        let v = Val::Dyn {
            epoch: self.epoch,
            idx: 0,
            boolean: false,
        };
        self.define(node, v)?;
        Ok(true)
    }

    /// A constant operand of an elementwise op on the region's `[batch, dims…]` data: a
    /// scalar, or a per-feature column (broadcast to every feature), as long as broadcasting
    /// does not change the data's shape.
    fn const_arg(&mut self, t: &Rc<Tensor>) -> Result<Arg, String> {
        let dims = self.dims.clone();
        let v = match t.floats() {
            Some(v) => v,
            None => return Err(format!("is an {} tensor; float expected", t.kind())),
        };
        let full: Vec<usize> = std::iter::once(1).chain(dims.iter().copied()).collect();
        let fits = t.dims.len() <= full.len()
            && t.dims
                .iter()
                .rev()
                .zip(full.iter().rev())
                .all(|(&c, &d)| c == 1 || c == d);
        if !fits {
            return Err(format!(
                "of shape {:?} does not broadcast over [batch, {}] without changing its shape \
                 (only scalars and per-feature values are supported)",
                t.dims,
                dims.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if v.len() == 1 {
            return Ok(Arg::Scalar(v[0]));
        }
        let width = self.width();
        let key = (Rc::as_ptr(t), width);
        if let Some(c) = self.columns.get(&key) {
            return Ok(Arg::Column(c.clone()));
        }
        self.spend(width)?;
        // Leading axes beyond the data's features are 1 (checked above).
        let own = &t.dims[t.dims.len().saturating_sub(dims.len())..];
        let column: Arc<[f32]> = expand(&v, own, &dims).into();
        self.columns.insert(key, column.clone());
        Ok(Arg::Column(column))
    }

    fn spend(&mut self, n: usize) -> Result<(), String> {
        self.budget = self.budget.checked_sub(n).ok_or_else(|| {
            "the graph makes more constant values (folded or broadcast) than its size can \
             justify"
                .to_string()
        })?;
        Ok(())
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
                self.dims
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
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
        self.define(
            node,
            Val::Dyn {
                epoch: self.epoch,
                idx: 0,
                boolean: false,
            },
        )
    }

    fn gemm(
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
                self.region.push(RNode {
                    op: Op::Binary(Binary::Mul),
                    args: vec![Some(Arg::Val(at)), Some(Arg::Scalar(alpha))],
                    pos,
                    tail: true,
                });
                at = self.region.len();
            }
            if let Some(bias) = bias {
                let scaled: Vec<f32> = bias
                    .iter()
                    .map(|&v| (f64::from(beta) * f64::from(v)) as f32)
                    .collect();
                self.region.push(RNode {
                    op: Op::Binary(Binary::Add),
                    args: vec![Some(Arg::Val(at)), Some(Arg::Column(scaled.into()))],
                    pos,
                    tail: true,
                });
                at = self.region.len();
            }
            let out = &node.output[0];
            self.values.insert(
                out,
                Val::Dyn {
                    epoch: self.epoch,
                    idx: at,
                    boolean: false,
                },
            );
        }
        Ok(())
    }

    fn matmul(&mut self, pos: usize, node: &'m NodeProto) -> Result<(), String> {
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

    /// Whether the affine input `i` of a norm node is a parameter of the module (torchsummary
    /// counts it) rather than a constant the exporter made up for `affine=False`: the legacy
    /// exporter writes those as `Constant` nodes, the dynamo exporter passes `None` in the FX
    /// node.
    fn is_param(&self, node: &NodeProto, i: usize, t: &Tensor) -> bool {
        t.origin == Origin::Initializer && !fx_param_is_none(node, i)
    }

    fn batchnorm(
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
        let (scale, scale_t) = get(1, "scale")?;
        let (bias, bias_t) = get(2, "bias (B)")?;
        let (mean, _) = get(3, "mean")?;
        let (var, _) = get(4, "var")?;
        let weight =
            (self.is_param(node, 1, &scale_t) || scale.iter().any(|&v| v != 1.0)).then_some(scale);
        let bias =
            (self.is_param(node, 2, &bias_t) || bias.iter().any(|&v| v != 0.0)).then_some(bias);
        let bn = BatchNorm1d::new(mean, var, weight, bias, eps).map_err(|e| e.to_string())?;
        self.modules.push(Module::BatchNorm1d(bn));
        self.start(node, pos, vec![c], false)
    }

    fn layernorm(
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
        let (scale, scale_t) = self
            .vector(node, 1, "scale", f)?
            .ok_or("its scale (input 1) is missing")?;
        let weight =
            (self.is_param(node, 1, &scale_t) || scale.iter().any(|&v| v != 1.0)).then_some(scale);
        let bias = match self.vector(node, 2, "bias (B)", f)? {
            Some((b, t)) => {
                (self.is_param(node, 2, &t) || b.iter().any(|&v| v != 0.0)).then_some(b)
            }
            None => None,
        };
        let ln = LayerNorm::new(f, weight, bias, eps).map_err(|e| e.to_string())?;
        self.modules.push(Module::LayerNorm(ln));
        self.start(node, pos, vec![f], false)
    }

    fn softmax(
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

    fn flatten(
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

    fn reshape(
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
                self.dims
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
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

    // ---------------------------------------------------------------------------------------
    // Regions → modules.

    /// Ends the current region at its value `result`: the nodes it needs become modules.
    fn flush(&mut self, result: usize) -> Result<(), String> {
        let region = std::mem::take(&mut self.region);
        if result == 0 {
            return Ok(());
        }
        let n = region.len();
        let vals = |v: usize| {
            region[v - 1].args.iter().flatten().filter_map(|a| match a {
                Arg::Val(u) => Some(*u),
                _ => None,
            })
        };
        let mut needed = vec![false; n + 1];
        needed[result] = true;
        for v in (1..=n).rev() {
            if needed[v] {
                for u in vals(v) {
                    needed[u] = true;
                }
            }
        }
        let order: Vec<usize> = (1..=n).filter(|&v| needed[v]).collect();
        let m = order.len();
        // Positions: the region's input is 0, order[j] is j + 1.
        let mut last_use = vec![0usize; n + 1];
        for (j, &v) in order.iter().enumerate() {
            for u in vals(v) {
                last_use[u] = last_use[u].max(j + 1);
            }
        }
        let mut dies_at: Vec<Vec<usize>> = vec![Vec::new(); m + 1];
        for v in std::iter::once(0).chain(order.iter().copied()) {
            if v != result {
                dies_at[last_use[v]].push(v);
            }
        }
        let same =
            |a: &RNode, b: &RNode| a.tail == b.tail && self.scopes[a.pos].same(&self.scopes[b.pos]);
        // Cuts: between nodes of different scopes where exactly one value flows across.
        let mut starts: Vec<(usize, usize)> = vec![(0, 0)];
        let mut live: BTreeSet<usize> = BTreeSet::from([0]);
        for j in 0..m {
            for u in &dies_at[j] {
                live.remove(u);
            }
            if j > 0
                && !same(&region[order[j - 1] - 1], &region[order[j] - 1])
                && live.len() == 1
                && let Some(&through) = live.first()
            {
                starts.push((j, through));
            }
            live.insert(order[j]);
        }
        for (g, &(from, input)) in starts.iter().enumerate() {
            let (to, output) = starts.get(g + 1).copied().unwrap_or((m, result));
            let group = &order[from..to];
            self.group_module(&region, group, input, output)?;
        }
        Ok(())
    }

    /// The module of one group of region nodes, from `input` to `output`.
    fn group_module(
        &mut self,
        region: &[RNode],
        group: &[usize],
        input: usize,
        output: usize,
    ) -> Result<(), String> {
        let internal = || "internal error: a region group reads a value from outside".to_string();
        let mut e = Expr::identity();
        let mut map: HashMap<usize, usize> = HashMap::from([(input, 0)]);
        for &v in group {
            let node = &region[v - 1];
            let mut args = Vec::with_capacity(node.args.len());
            for a in &node.args {
                args.push(match a {
                    None => None,
                    Some(Arg::Val(u)) => Some(*map.get(u).ok_or_else(internal)?),
                    Some(Arg::Scalar(s)) => {
                        Some(e.push(Node::Const(*s)).map_err(|e| e.to_string())?)
                    }
                    Some(Arg::Column(c)) => {
                        Some(e.push(Node::Column(c.clone())).map_err(|e| e.to_string())?)
                    }
                });
            }
            let out = elementwise::emit(&node.op, &args, &mut e).map_err(|e| e.to_string())?;
            map.insert(v, out);
        }
        let out = *map.get(&output).ok_or_else(internal)?;
        let expr = prune(&e, out).map_err(|e| e.to_string())?;

        // The class: the file's, else the op pattern's; none for functions and for the tail of
        // the structural module before.
        let nodes: Vec<&RNode> = group.iter().map(|&v| &region[v - 1]).collect();
        let first = &self.scopes[nodes[0].pos];
        let one_scope = nodes.iter().all(|n| self.scopes[n.pos].same(first));
        let tail = nodes.iter().any(|n| n.tail)
            || match (self.last, first) {
                (Some(last), Scope::Module { .. }) => self.scopes[last.pos].same(first),
                _ => false,
            };
        let root = nodes.iter().all(|n| self.scopes[n.pos].is_root());
        let ops: Vec<&str> = nodes
            .iter()
            .map(|n| self.g.nodes[n.pos].1.op_type.as_str())
            .collect();
        let class: Option<String> = if tail || root || !one_scope {
            None
        } else {
            first
                .class()
                .map(str::to_string)
                .or_else(|| pattern_class(&ops, &expr).map(str::to_string))
        };
        let no_row = tail || root;

        let module = if expr.is_identity() {
            let dropout = nodes.iter().find_map(|n| match n.op {
                Op::Alias { dropout } => dropout,
                _ => None,
            });
            match class.as_deref() {
                Some("Dropout") => Some(Module::Dropout(dropout.unwrap_or(0.5))),
                Some("Identity") => Some(Module::Identity),
                _ => None,
            }
        } else if let [Node::Input, Node::Act(act, 0)] = expr.nodes() {
            Some(match class {
                None if no_row || one_scope => Module::Function(*act),
                Some(c) if act.spec().class == Some(c.as_str()) => Module::Activation(*act),
                class => Module::Elementwise { expr, class },
            })
        } else if let ([node], Some("PReLU")) = (nodes.as_slice(), class.as_deref())
            && node.op == Op::PRelu
            && let Some(slope) = match node.args.get(1) {
                Some(Some(Arg::Scalar(s))) => Some(vec![*s]),
                Some(Some(Arg::Column(c))) => Some(c.to_vec()),
                _ => None,
            }
            // Mlp::new takes its input width from the first module with tensors: a one-weight
            // PReLU cannot be that module.
            && (slope.len() > 1 || self.modules.iter().any(Module::has_tensors))
        {
            Some(Module::PRelu(PRelu::new(slope).map_err(|e| e.to_string())?))
        } else {
            Some(Module::Elementwise { expr, class })
        };
        if let Some(m) = module {
            self.modules.push(m);
        }
        Ok(())
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

/// "supported ops: …", for messages.
fn supported_message() -> String {
    format!("the importer supports: {}", supported_ops().join(", "))
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

/// `v` (shape `from`) broadcast to shape `to` (numpy rules; `from` fits `to`), row-major.
fn expand(v: &[f32], from: &[usize], to: &[usize]) -> Vec<f32> {
    let n: usize = to.iter().product();
    if from.iter().product::<usize>() == n
        && from.iter().rev().zip(to.iter().rev()).all(|(a, b)| a == b)
    {
        return v.to_vec();
    }
    // Source strides aligned to `to`'s axes; 0 where `from` broadcasts.
    let mut strides = vec![0usize; to.len()];
    let mut s = 1;
    for (k, &d) in from.iter().enumerate().rev() {
        let axis = to.len() - (from.len() - k);
        strides[axis] = if d == 1 { 0 } else { s };
        s *= d;
    }
    let mut out = Vec::with_capacity(n);
    let mut index = vec![0usize; to.len()];
    for _ in 0..n {
        let src: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(v.get(src).copied().unwrap_or(0.0));
        for a in (0..to.len()).rev() {
            index[a] += 1;
            if index[a] < to[a] {
                break;
            }
            index[a] = 0;
        }
    }
    out
}

/// An elementwise op on constants, evaluated with the same [`Expr`] semantics as the model.
fn fold(op: &Op, args: &[Option<Rc<Tensor>>], budget: &mut usize) -> Result<Rc<Tensor>, String> {
    if let Op::Alias { .. } = op {
        return args
            .first()
            .cloned()
            .flatten()
            .ok_or_else(|| "it has no input".to_string());
    }
    let mut dims: Vec<usize> = Vec::new();
    for t in args.iter().flatten() {
        dims = broadcast(&dims, &t.dims).ok_or_else(|| {
            format!(
                "its constant inputs of shapes {:?} do not broadcast together",
                args.iter()
                    .flatten()
                    .map(|t| t.dims.clone())
                    .collect::<Vec<_>>()
            )
        })?;
    }
    let n = element_count(&dims).map_err(|e| format!("its result {e}"))?;
    if n == 0 {
        return Ok(Rc::new(Tensor {
            dims,
            data: Data::Float(Vec::new()),
            origin: Origin::Folded,
        }));
    }
    if n > MAX_FOLD_ELEMENTS {
        return Err(format!(
            "it computes {n} constant values; the importer folds at most {MAX_FOLD_ELEMENTS}"
        ));
    }
    *budget = budget.checked_sub(n).ok_or_else(|| {
        "the graph makes more constant values (folded or broadcast) than its size can justify"
            .to_string()
    })?;
    let mut e = Expr::identity();
    let mut nodes = Vec::with_capacity(args.len());
    for t in args {
        nodes.push(match t {
            None => None,
            Some(t) => {
                let v = t
                    .floats()
                    .ok_or_else(|| format!("integer arithmetic ({}) is not supported", t.kind()))?;
                let col: Arc<[f32]> = expand(&v, &t.dims, &dims).into();
                Some(e.push(Node::Column(col)).map_err(|e| e.to_string())?)
            }
        });
    }
    let out = elementwise::emit(op, &nodes, &mut e).map_err(|e| e.to_string())?;
    let e = prune(&e, out).map_err(|e| e.to_string())?;
    let values: Vec<f32> = (0..n).map(|i| e.eval(0.0, i)).collect();
    let data = if elementwise::gives_bool(op) {
        Data::Bool(values.iter().map(|&v| v != 0.0).collect())
    } else {
        Data::Float(values)
    };
    Ok(Rc::new(Tensor {
        dims,
        data,
        origin: Origin::Folded,
    }))
}

/// Numpy's broadcast of two shapes.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (k, o) in out.iter_mut().enumerate() {
        let da = if k + a.len() >= n {
            a[k + a.len() - n]
        } else {
            1
        };
        let db = if k + b.len() >= n {
            b[k + b.len() - n]
        } else {
            1
        };
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// The nodes of `e` that `out` needs, renumbered, with `out` last.
fn prune(e: &Expr, out: usize) -> crate::Result<Expr> {
    let nodes = e.nodes();
    let mut keep = vec![false; nodes.len()];
    keep[out] = true;
    for i in (1..=out).rev() {
        if keep[i] {
            for o in operands(&nodes[i]) {
                keep[o] = true;
            }
        }
    }
    let mut remap = vec![0usize; nodes.len()];
    let mut kept = vec![Node::Input];
    for i in 1..=out {
        if !keep[i] {
            continue;
        }
        let r = |j: usize| remap[j];
        let node = match &nodes[i] {
            Node::Input => Node::Input,
            Node::Const(c) => Node::Const(*c),
            Node::Column(c) => Node::Column(c.clone()),
            Node::Unary(u, a) => Node::Unary(*u, r(*a)),
            Node::Binary(b, x, y) => Node::Binary(*b, r(*x), r(*y)),
            Node::Where(c, a, b) => Node::Where(r(*c), r(*a), r(*b)),
            Node::Act(act, a) => Node::Act(*act, r(*a)),
        };
        remap[i] = kept.len();
        kept.push(node);
    }
    Expr::from_nodes(kept)
}

fn operands(n: &Node) -> Vec<usize> {
    match n {
        Node::Input | Node::Const(_) | Node::Column(_) => vec![],
        Node::Unary(_, a) | Node::Act(_, a) => vec![*a],
        Node::Binary(_, a, b) => vec![*a, *b],
        Node::Where(c, a, b) => vec![*c, *a, *b],
    }
}

/// A `Constant` node's value.
fn constant(node: &NodeProto) -> Result<Tensor, String> {
    let [a] = node.attribute.as_slice() else {
        return Err(format!(
            "a Constant node needs exactly one attribute (value, value_float, …); it has {}",
            node.attribute.len()
        ));
    };
    let scalar = |data| Tensor {
        dims: vec![],
        data,
        origin: Origin::ConstantNode,
    };
    let list = |data: Data, n: usize| Tensor {
        dims: vec![n],
        data,
        origin: Origin::ConstantNode,
    };
    let want = match a.name.as_str() {
        "value" => attr_type::TENSOR,
        "value_float" => attr_type::FLOAT,
        "value_int" => attr_type::INT,
        "value_floats" => attr_type::FLOATS,
        "value_ints" => attr_type::INTS,
        other => {
            return Err(format!(
                "a Constant with a {} attribute is not supported (value, value_float(s) and \
                 value_int(s) are)",
                quote(other)
            ));
        }
    };
    if a.r#type != want && a.r#type != 0 {
        return Err(format!(
            "its attribute {} has type {}, not {want}",
            quote(&a.name),
            a.r#type
        ));
    }
    match want {
        attr_type::TENSOR => {
            let t =
                a.t.as_deref()
                    .ok_or("its value attribute holds no tensor")?;
            tensor::read(t, Origin::ConstantNode).map_err(|e| format!("its value {e}"))
        }
        attr_type::FLOAT => Ok(scalar(Data::Float(vec![a.f]))),
        attr_type::INT => Ok(scalar(Data::Int(vec![a.i]))),
        attr_type::FLOATS => Ok(list(Data::Float(a.floats.clone()), a.floats.len())),
        _ => Ok(list(Data::Int(a.ints.clone()), a.ints.len())),
    }
}

/// A node's attributes.
pub(crate) struct NodeAttrs<'a>(pub &'a NodeProto);

impl NodeAttrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.attribute.iter().find(|a| a.name == name)
    }

    fn typed(&self, name: &str, want: i32, what: &str) -> Result<Option<&AttributeProto>, String> {
        match self.get(name) {
            Some(a) if a.r#type == want || a.r#type == 0 => Ok(Some(a)),
            Some(a) => Err(format!(
                "attribute {} has type {}; {what} expected",
                quote(name),
                a.r#type
            )),
            None => Ok(None),
        }
    }

    fn int(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self
            .typed(name, attr_type::INT, "an INT")?
            .map_or(default, |a| a.i))
    }

    fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        Ok(self
            .typed(name, attr_type::INTS, "INTS")?
            .map(|a| a.ints.clone()))
    }
}

impl Attrs for NodeAttrs<'_> {
    fn float(&self, name: &str, default: f32) -> Result<f32, String> {
        Ok(self
            .typed(name, attr_type::FLOAT, "a FLOAT")?
            .map_or(default, |a| a.f))
    }

    fn string(&self, name: &str, default: &str) -> Result<String, String> {
        match self.typed(name, attr_type::STRING, "a STRING")? {
            None => Ok(default.to_string()),
            Some(a) => String::from_utf8(a.s.to_vec())
                .map_err(|_| format!("attribute {} is not valid UTF-8", quote(name))),
        }
    }
}
