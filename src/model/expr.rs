//! [`Expr`]: a chain of elementwise operations applied to every value of a layer's output, as
//! one expression. Activations, BatchNorm's affine map, PReLU and the elementwise subgraphs of
//! ONNX files (`Div`, `Erf`, `Add`, `Mul`, … between two matrix products) all become one, so the
//! GPU fuses the whole chain into the epilogue of the kernel before it, the fast CPU path applies
//! it while the block is in cache, and the CPU reference evaluates the very same operations.
//!
//! Semantics: each node's value is computed in f64 from its inputs and rounded to f32, as
//! PyTorch's float32 tensors round after every operation ([`Expr::eval`], the reference). Scalar
//! constants and per-feature vectors are f32, as a model's parameters are.

use std::fmt;
use std::sync::Arc;

use crate::activation::Activation;
use crate::error::{Error, Result};

/// An operation on one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    /// `−a`.
    Neg,
    /// `|a|`.
    Abs,
    /// `√a` (NaN below 0).
    Sqrt,
    /// `eᵃ`.
    Exp,
    /// `ln a` (−inf at 0, NaN below).
    Log,
    /// The error function.
    Erf,
    /// `tanh a`.
    Tanh,
    /// `1 / (1 + e⁻ᵃ)`.
    Sigmoid,
    /// `1 / a`.
    Reciprocal,
}

/// An operation on two values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// `aᵇ`: C99's `pow` (Annex F's special values: `pow(1, NaN) = 1`, `pow(−1, ±inf) = 1`,
    /// `pow(−inf, 1.5) = inf`, NaN for a finite negative base and a non-integer exponent), except
    /// that a constant exponent ([`Node::Const`]) of 0.5 or −0.5 is `√a` or `1/√a`, as
    /// `torch.pow(tensor, 0.5)` computes it (`(−inf) ** 0.5` is NaN and `(−0) ** 0.5` is −0 there,
    /// where C's `pow` gives +inf and +0).
    Pow,
    /// The larger; NaN if either is NaN (as `torch.maximum`).
    Max,
    /// The smaller; NaN if either is NaN (as `torch.minimum`).
    Min,
    /// `1` if `a > b`, else `0` (false for NaN).
    Greater,
    /// `1` if `a < b`, else `0` (false for NaN).
    Less,
}

/// One node of an [`Expr`]; operands are indices of earlier nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// The value the expression is applied to (always node 0).
    Input,
    /// A scalar constant.
    Const(f32),
    /// A per-feature constant: the value of the element's column (one value per output feature,
    /// or a single value broadcast to all).
    Column(Arc<[f32]>),
    /// An operation on one value.
    Unary(Unary, usize),
    /// An operation on two values.
    Binary(Binary, usize, usize),
    /// `if c ≠ 0 { a } else { b }` (NaN counts as true).
    Where(usize, usize, usize),
    /// An elementwise activation (never a row activation).
    Act(Activation, usize),
}

/// An elementwise expression of one input value and its column: a list of nodes, each using only
/// earlier ones; the last is the result. The identity is the single node [`Node::Input`].
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    nodes: Vec<Node>,
}

impl Default for Expr {
    fn default() -> Self {
        Expr::identity()
    }
}

impl Expr {
    /// `x ↦ x`.
    pub fn identity() -> Self {
        Expr {
            nodes: vec![Node::Input],
        }
    }

    /// `x ↦ act(x)` for an elementwise activation (identity gives the identity expression).
    pub fn activation(act: Activation) -> Result<Self> {
        let mut e = Expr::identity();
        if act != Activation::Identity {
            e.push(Node::Act(act, 0))?;
        }
        Ok(e)
    }

    /// `x ↦ x · scale[c] + shift[c]`: LayerNorm's affine map.
    pub fn affine(scale: Option<Vec<f32>>, shift: Option<Vec<f32>>) -> Self {
        let mut e = Expr::identity();
        let mut at = 0;
        if let Some(s) = scale {
            let c = e.push_unchecked(Node::Column(s.into()));
            at = e.push_unchecked(Node::Binary(Binary::Mul, at, c));
        }
        if let Some(b) = shift {
            let c = e.push_unchecked(Node::Column(b.into()));
            e.push_unchecked(Node::Binary(Binary::Add, at, c));
        }
        e
    }

    /// `x ↦ (x − center[c]) · scale[c] + offset[c]`: BatchNorm's map.
    pub fn centered_affine(center: Vec<f32>, scale: Vec<f32>, offset: Vec<f32>) -> Self {
        let mut e = Expr::identity();
        let m = e.push_unchecked(Node::Column(center.into()));
        let d = e.push_unchecked(Node::Binary(Binary::Sub, 0, m));
        let s = e.push_unchecked(Node::Column(scale.into()));
        let p = e.push_unchecked(Node::Binary(Binary::Mul, d, s));
        let o = e.push_unchecked(Node::Column(offset.into()));
        e.push_unchecked(Node::Binary(Binary::Add, p, o));
        e
    }

    /// Builds an expression from nodes, checking that node 0 is the input, that operands refer
    /// to earlier nodes, and that activations are elementwise.
    pub fn from_nodes(nodes: Vec<Node>) -> Result<Self> {
        if nodes.first() != Some(&Node::Input) {
            return Err(Error::invalid("an expression starts with its input node"));
        }
        let mut e = Expr::identity();
        for n in nodes.into_iter().skip(1) {
            e.push(n)?;
        }
        Ok(e)
    }

    /// Appends a node and returns its index.
    pub fn push(&mut self, node: Node) -> Result<usize> {
        let len = self.nodes.len();
        let ok = |i: &usize| *i < len;
        let valid = match &node {
            Node::Input => false,
            Node::Const(_) => true,
            Node::Column(v) => !v.is_empty(),
            Node::Unary(_, a) => ok(a),
            Node::Binary(_, a, b) => ok(a) && ok(b),
            Node::Where(c, a, b) => ok(c) && ok(a) && ok(b),
            Node::Act(act, a) => ok(a) && !act.is_row(),
        };
        if !valid {
            return Err(Error::invalid(format!(
                "invalid expression node {node:?} at position {len}"
            )));
        }
        Ok(self.push_unchecked(node))
    }

    fn push_unchecked(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The nodes, input first, result last.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Whether this is `x ↦ x`.
    pub fn is_identity(&self) -> bool {
        self.nodes.len() == 1
    }

    /// `self` followed by `next`: `x ↦ next(self(x))`.
    pub fn then(&self, next: &Expr) -> Expr {
        let mut nodes = self.nodes.clone();
        let result = nodes.len() - 1;
        // next's node i (i ≥ 1) lands at offset + i; its input is our result.
        let offset = nodes.len() - 1;
        let map = |i: usize| if i == 0 { result } else { offset + i };
        for n in &next.nodes[1..] {
            nodes.push(match n {
                Node::Input => unreachable!("only node 0 is the input"),
                Node::Const(c) => Node::Const(*c),
                Node::Column(v) => Node::Column(v.clone()),
                Node::Unary(op, a) => Node::Unary(*op, map(*a)),
                Node::Binary(op, a, b) => Node::Binary(*op, map(*a), map(*b)),
                Node::Where(c, a, b) => Node::Where(map(*c), map(*a), map(*b)),
                Node::Act(act, a) => Node::Act(*act, map(*a)),
            });
        }
        Expr { nodes }
    }

    /// For `Pow(a, b)`: `Some(false)` when `b` is the constant 0.5 (a square root), `Some(true)`
    /// when it is −0.5 (one over the square root), `None` for C's `pow` ([`Binary::Pow`]).
    pub(crate) fn pow_root(&self, b: usize) -> Option<bool> {
        match self.nodes.get(b) {
            Some(Node::Const(e)) if *e == 0.5 => Some(false),
            Some(Node::Const(e)) if *e == -0.5 => Some(true),
            _ => None,
        }
    }

    /// Checks that every per-feature constant has `width` values (or one, broadcast).
    pub fn check_width(&self, width: usize) -> Result<()> {
        for n in &self.nodes {
            if let Node::Column(v) = n
                && v.len() != width
                && v.len() != 1
            {
                return Err(Error::shape(format!(
                    "a per-feature constant has {} values but the layer has {width} features",
                    v.len()
                )));
            }
        }
        Ok(())
    }

    /// The reference value at input `x` in column `col`: each node computed in f64 and rounded
    /// to f32, as PyTorch's float32 arithmetic rounds after every operation.
    pub fn eval(&self, x: f32, col: usize) -> f32 {
        let mut v: Vec<f32> = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let value = match n {
                Node::Input => x,
                Node::Const(c) => *c,
                Node::Column(vals) => column(vals, col),
                Node::Unary(op, a) => unary_f64(*op, f64::from(v[*a])) as f32,
                Node::Binary(Binary::Pow, a, b) if self.pow_root(*b).is_some() => {
                    root_f64(f64::from(v[*a]), self.pow_root(*b) == Some(true)) as f32
                }
                Node::Binary(op, a, b) => {
                    binary_f64(*op, f64::from(v[*a]), f64::from(v[*b])) as f32
                }
                Node::Where(c, a, b) => {
                    if v[*c] != 0.0 {
                        v[*a]
                    } else {
                        v[*b]
                    }
                }
                Node::Act(act, a) => act.apply_f64(f64::from(v[*a])) as f32,
            };
            v.push(value);
        }
        v[v.len() - 1]
    }

    /// Applies the expression in f32 to a block of rows `width` wide, in place (the fast CPU
    /// path). Node by node over the whole block, so each step is a simple loop the compiler
    /// vectorises; `scratch` is reused across calls.
    pub fn apply_rows_f32(&self, data: &mut [f32], width: usize, scratch: &mut Vec<f32>) {
        match self.nodes.as_slice() {
            [Node::Input] => {}
            [Node::Input, Node::Act(act, 0)] => {
                let act = *act;
                match act {
                    Activation::Relu => {
                        for x in data.iter_mut() {
                            // A select, not a branch (random signs mispredict); NaN propagates.
                            *x = if *x > 0.0 || x.is_nan() { *x } else { 0.0 };
                        }
                    }
                    _ => data.iter_mut().for_each(|x| *x = act.apply_f32(*x)),
                }
            }
            _ => self.apply_general_f32(data, width, scratch),
        }
    }

    fn apply_general_f32(&self, data: &mut [f32], width: usize, scratch: &mut Vec<f32>) {
        let len = data.len();
        scratch.clear();
        scratch.resize(len * self.nodes.len(), 0.0);
        let (head, _) = scratch.split_at_mut(len * self.nodes.len());
        head[..len].copy_from_slice(data);
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            let (done, rest) = head.split_at_mut(i * len);
            let out = &mut rest[..len];
            let val = |j: usize| &done[j * len..(j + 1) * len];
            match n {
                Node::Input => unreachable!("only node 0 is the input"),
                Node::Const(c) => out.fill(*c),
                Node::Column(vals) => {
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = column(vals, k % width);
                    }
                }
                Node::Unary(op, a) => {
                    for (o, &x) in out.iter_mut().zip(val(*a)) {
                        *o = unary_f64(*op, f64::from(x)) as f32;
                    }
                }
                Node::Binary(Binary::Pow, a, b) if self.pow_root(*b).is_some() => {
                    let reciprocal = self.pow_root(*b) == Some(true);
                    for (o, &x) in out.iter_mut().zip(val(*a)) {
                        *o = root_f64(f64::from(x), reciprocal) as f32;
                    }
                }
                Node::Binary(op, a, b) => {
                    let op = *op;
                    for ((o, &x), &y) in out.iter_mut().zip(val(*a)).zip(val(*b)) {
                        *o = match op {
                            Binary::Add => x + y,
                            Binary::Sub => x - y,
                            Binary::Mul => x * y,
                            Binary::Div => x / y,
                            _ => binary_f64(op, f64::from(x), f64::from(y)) as f32,
                        };
                    }
                }
                Node::Where(c, a, b) => {
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = if val(*c)[k] != 0.0 {
                            val(*a)[k]
                        } else {
                            val(*b)[k]
                        };
                    }
                }
                Node::Act(act, a) => {
                    for (o, &x) in out.iter_mut().zip(val(*a)) {
                        *o = act.apply_f32(x);
                    }
                }
            }
        }
        let last = self.nodes.len() - 1;
        data.copy_from_slice(&head[last * len..(last + 1) * len]);
    }
}

/// The value of a per-feature constant in column `col` (a single value broadcasts).
pub(crate) fn column(vals: &[f32], col: usize) -> f32 {
    if vals.len() == 1 { vals[0] } else { vals[col] }
}

/// A unary operation in f64.
pub(crate) fn unary_f64(op: Unary, a: f64) -> f64 {
    match op {
        Unary::Neg => -a,
        Unary::Abs => a.abs(),
        Unary::Sqrt => a.sqrt(),
        Unary::Exp => a.exp(),
        Unary::Log => a.ln(),
        Unary::Erf => crate::activation::erf(a),
        Unary::Tanh => a.tanh(),
        Unary::Sigmoid => 1.0 / (1.0 + (-a).exp()),
        Unary::Reciprocal => 1.0 / a,
    }
}

/// `√a`, or `1/√a`: PyTorch's `pow` by the number 0.5 or −0.5 ([`Binary::Pow`]).
fn root_f64(a: f64, reciprocal: bool) -> f64 {
    if reciprocal { 1.0 / a.sqrt() } else { a.sqrt() }
}

/// A binary operation in f64.
pub(crate) fn binary_f64(op: Binary, a: f64, b: f64) -> f64 {
    let bool = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        Binary::Add => a + b,
        Binary::Sub => a - b,
        Binary::Mul => a * b,
        Binary::Div => a / b,
        Binary::Pow => a.powf(b),
        Binary::Max if a.is_nan() || b.is_nan() => f64::NAN,
        Binary::Min if a.is_nan() || b.is_nan() => f64::NAN,
        Binary::Max => a.max(b),
        Binary::Min => a.min(b),
        Binary::Greater => bool(a > b),
        Binary::Less => bool(a < b),
    }
}

impl fmt::Display for Expr {
    /// A readable form, one operation per node: `v1 = relu(x); v2 = v1 * col[31]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |i: usize| {
            if i == 0 {
                "x".to_string()
            } else {
                format!("v{i}")
            }
        };
        if self.is_identity() {
            return f.write_str("x");
        }
        let mut first = true;
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            let rhs = match n {
                Node::Input => "x".to_string(),
                Node::Const(c) => format!("{c}"),
                Node::Column(v) => format!("col[{}]", v.len()),
                Node::Unary(op, a) => format!("{op:?}({})", name(*a)).to_lowercase(),
                Node::Binary(op, a, b) => {
                    format!("{op:?}({}, {})", name(*a), name(*b)).to_lowercase()
                }
                Node::Where(c, a, b) => format!("where({}, {}, {})", name(*c), name(*a), name(*b)),
                Node::Act(act, a) => format!("{act}({})", name(*a)),
            };
            write!(f, "{} = {rhs}", name(i))?;
        }
        Ok(())
    }
}
