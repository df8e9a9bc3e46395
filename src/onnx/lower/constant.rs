//! Constants made at import: `Constant` nodes, elementwise ops on constants folded with the
//! model's own [`Expr`] semantics, and numpy broadcasting.

use std::rc::Rc;
use std::sync::Arc;

use crate::model::expr::{Expr, Node};

use super::super::MAX_FOLD_ELEMENTS;
use super::super::elementwise::{self, Op};
use super::super::graph::quote;
use super::super::proto::{NodeProto, attr_type};
use super::super::tensor::{self, Data, Origin, Tensor, element_count};
use super::prune::prune;

/// A `Constant` node's value.
pub(super) fn constant(node: &NodeProto) -> Result<Tensor, String> {
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

/// An elementwise op on constants, evaluated with the same [`Expr`] semantics as the model.
pub(super) fn fold(
    op: &Op,
    args: &[Option<Rc<Tensor>>],
    budget: &mut usize,
) -> Result<Rc<Tensor>, String> {
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
    spend(budget, n)?;
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

/// `v` (shape `from`) broadcast to shape `to` (numpy rules; `from` fits `to`), row-major.
pub(super) fn expand(v: &[f32], from: &[usize], to: &[usize]) -> Vec<f32> {
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

/// Takes `n` values from the budget of values the importer may make.
pub(super) fn spend(budget: &mut usize, n: usize) -> Result<(), String> {
    *budget = budget.checked_sub(n).ok_or_else(|| {
        "the graph makes more constant values (folded or broadcast) than its size can justify"
            .to_string()
    })?;
    Ok(())
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
