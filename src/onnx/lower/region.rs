//! Elementwise nodes join the current *region*, an SSA DAG over the last structural op's
//! output; when a structural op (or the graph output) reads one of its values, the region
//! becomes [`Expr`] modules, one per PyTorch module its nodes came from.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use crate::model::expr::{Binary, Expr, Node};
use crate::model::{Module, PRelu};

use super::super::elementwise::{self, Op};
use super::super::graph::quote;
use super::super::proto::NodeProto;
use super::super::scope::{Scope, pattern_class};
use super::super::tensor::{Data, Tensor};
use super::constant::{expand, fold, spend};
use super::prune::prune;
use super::{Lowerer, Val};

/// An operand of a region node.
#[derive(Clone, Debug)]
pub(super) enum Arg {
    /// A region value.
    Val(usize),
    /// A scalar constant.
    Scalar(f32),
    /// A per-feature constant, one value per feature.
    Column(Arc<[f32]>),
}

/// An elementwise node of the current region.
#[derive(Debug)]
pub(super) struct RNode {
    op: Op,
    args: Vec<Option<Arg>>,
    /// The graph node's position in topological order (its scope, op type).
    pos: usize,
    /// Part of the structural op before the region (a `Gemm`'s α/β): never a module of its own.
    tail: bool,
}

impl<'m> Lowerer<'_, 'm> {
    /// Appends `op(value at, operand)` to the region as part of the structural op before it (a
    /// `Gemm`'s α and β, never a module of its own); returns the new value's index.
    pub(super) fn push_tail(&mut self, pos: usize, op: Binary, at: usize, operand: Arg) -> usize {
        self.region.push(RNode {
            op: Op::Binary(op),
            args: vec![Some(Arg::Val(at)), Some(operand)],
            pos,
            tail: true,
        });
        self.region.len()
    }

    pub(super) fn elementwise(
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
                self.features()
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
        spend(&mut self.budget, width)?;
        // Leading axes beyond the data's features are 1 (checked above).
        let own = &t.dims[t.dims.len().saturating_sub(dims.len())..];
        let column: Arc<[f32]> = expand(&v, own, &dims).into();
        self.columns.insert(key, column.clone());
        Ok(Arg::Column(column))
    }

    /// Ends the current region at its value `result`: the nodes it needs become modules.
    pub(super) fn flush(&mut self, result: usize) -> Result<(), String> {
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
}
