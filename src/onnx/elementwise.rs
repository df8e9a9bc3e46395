//! The elementwise ONNX operators and the [`Expr`] nodes each becomes: one mechanism for every
//! elementwise subgraph between two matrix products (activations, their decompositions such as
//! the legacy exporter's erf GELU, BatchNorm-free affine maps, …), so the GPU fuses the whole
//! chain into one epilogue and the CPU reference evaluates the same nodes in f64.
//!
//! Semantics follow the ONNX operator specs. Where an op is exactly a PyTorch activation it
//! becomes that [`Activation`] (an [`Node::Act`]), so a lone `Relu` imports as `nn.ReLU`:
//!
//! - `Softplus` is `ln(1 + eˣ)` with no threshold. It becomes PyTorch's softplus with β = 1 and
//!   threshold 20: above 20, `ln(1 + eˣ) − x < 2.1e-9`, below half an f32 ulp of x (≥ 9.5e-7
//!   there), so both round to the same f32 for every input.
//! - `HardSigmoid` with α = 1/6 (as f32) and β = 0.5 is `nn.Hardsigmoid`; other values compute
//!   `max(0, min(1, α·x + β))` as written. `Selu` with the default α, γ (PyTorch's constants
//!   as f32) is `nn.SELU`; others compute the formula.
//! - `Clip` with constant scalar bounds `lo ≤ hi` is `nn.Hardtanh(lo, hi)` (`nn.ReLU6` for
//!   0, 6); otherwise `max` then `min` nodes (NaN propagates, as in PyTorch's `clamp`).

use crate::activation::{Activation, SELU_ALPHA, SELU_SCALE};
use crate::error::Result;
use crate::model::expr::{Binary, Expr, Node, Unary};

/// An elementwise operation, with its attributes resolved. Its operands (value indices) come
/// separately, in the ONNX input order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    /// `Identity`, or `Dropout` (inference: the identity) with its ratio.
    Alias {
        /// The dropout probability, for `Dropout`.
        dropout: Option<f32>,
    },
    /// One-operand math.
    Unary(Unary),
    /// Two-operand math (`Max`/`Min` with more operands chain).
    Binary(Binary),
    /// A PyTorch activation.
    Act(Activation),
    /// `Where(c, a, b)`.
    Where,
    /// `Clip(x, lo?, hi?)` in general: operands x, then lo if `lo`, then hi if `hi`.
    Clip {
        /// Whether a lower bound is given.
        lo: bool,
        /// Whether an upper bound is given.
        hi: bool,
    },
    /// `Clip` with bounds from attributes (opset < 11), either may be missing: `max` then `min`.
    ClipConst {
        /// The lower bound.
        lo: Option<f32>,
        /// The upper bound.
        hi: Option<f32>,
    },
    /// `HardSigmoid` with other than PyTorch's α, β.
    HardSigmoid {
        /// α.
        alpha: f32,
        /// β.
        beta: f32,
    },
    /// `Selu` with other than PyTorch's α, γ.
    Selu {
        /// α.
        alpha: f32,
        /// γ.
        gamma: f32,
    },
    /// `PRelu(x, slope)`.
    PRelu,
}

/// The ONNX elementwise ops this module reads (the rest of the supported list is in
/// `lower/mod.rs`).
pub(crate) const OPS: &[&str] = &[
    "Abs",
    "Add",
    "Celu",
    "Clip",
    "Div",
    "Dropout",
    "Elu",
    "Erf",
    "Exp",
    "Gelu",
    "Greater",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LeakyRelu",
    "Less",
    "Log",
    "Max",
    "Min",
    "Mish",
    "Mul",
    "Neg",
    "Pow",
    "PRelu",
    "Reciprocal",
    "Relu",
    "Selu",
    "Sigmoid",
    "Softplus",
    "Sqrt",
    "Sub",
    "Tanh",
    "Where",
];

/// Attribute values of the node being read.
pub(crate) trait Attrs {
    /// A float attribute, or `default`.
    fn float(&self, name: &str, default: f32) -> std::result::Result<f32, String>;
    /// A string attribute, or `default`.
    fn string(&self, name: &str, default: &str) -> std::result::Result<String, String>;
}

/// The op of an elementwise node with `n` operands; `None` for an op that is not elementwise.
/// `scalar(i)` is operand `i`'s value when it is a constant scalar (the `Clip` bounds).
pub(crate) fn parse(
    op_type: &str,
    n: usize,
    attrs: &dyn Attrs,
    scalar: &dyn Fn(usize) -> Option<f32>,
) -> Option<std::result::Result<(Op, usize), String>> {
    use Activation as A;
    let act = |a: Activation| Ok((Op::Act(a), 1));
    let r = match op_type {
        "Identity" => Ok((Op::Alias { dropout: None }, 1)),
        "Dropout" => attrs.float("ratio", 0.5).map(|r| {
            (
                Op::Alias {
                    dropout: Some(scalar(1).unwrap_or(r)),
                },
                1,
            )
        }),
        "Abs" => Ok((Op::Unary(Unary::Abs), 1)),
        "Neg" => Ok((Op::Unary(Unary::Neg), 1)),
        "Sqrt" => Ok((Op::Unary(Unary::Sqrt), 1)),
        "Exp" => Ok((Op::Unary(Unary::Exp), 1)),
        "Log" => Ok((Op::Unary(Unary::Log), 1)),
        "Erf" => Ok((Op::Unary(Unary::Erf), 1)),
        "Reciprocal" => Ok((Op::Unary(Unary::Reciprocal), 1)),
        "Add" => Ok((Op::Binary(Binary::Add), 2)),
        "Sub" => Ok((Op::Binary(Binary::Sub), 2)),
        "Mul" => Ok((Op::Binary(Binary::Mul), 2)),
        "Div" => Ok((Op::Binary(Binary::Div), 2)),
        "Pow" => Ok((Op::Binary(Binary::Pow), 2)),
        "Greater" => Ok((Op::Binary(Binary::Greater), 2)),
        "Less" => Ok((Op::Binary(Binary::Less), 2)),
        // Variadic: at least one operand, chained.
        "Max" => Ok((Op::Binary(Binary::Max), n.max(1))),
        "Min" => Ok((Op::Binary(Binary::Min), n.max(1))),
        "Where" => Ok((Op::Where, 3)),
        "Relu" => act(A::Relu),
        "Sigmoid" => act(A::Sigmoid),
        "Tanh" => act(A::Tanh),
        "Mish" => act(A::Mish),
        "HardSwish" => act(A::Hardswish),
        "Softplus" => act(A::Softplus {
            beta: 1.0,
            threshold: 20.0,
        }),
        "LeakyRelu" => attrs
            .float("alpha", 0.01)
            .map(|a| (Op::Act(A::LeakyRelu(a)), 1)),
        "Elu" => attrs.float("alpha", 1.0).map(|a| (Op::Act(A::Elu(a)), 1)),
        "Celu" => attrs.float("alpha", 1.0).map(|a| (Op::Act(A::Celu(a)), 1)),
        "Gelu" => attrs
            .string("approximate", "none")
            .and_then(|s| match s.as_str() {
                "none" => Ok((Op::Act(A::Gelu), 1)),
                "tanh" => Ok((Op::Act(A::GeluTanh), 1)),
                other => Err(format!(
                    "approximate='{}' is not an ONNX Gelu mode (none or tanh)",
                    crate::error::escape(other)
                )),
            }),
        "HardSigmoid" => attrs.float("alpha", 0.2).and_then(|alpha| {
            let beta = attrs.float("beta", 0.5)?;
            if alpha.to_bits() == (1.0f32 / 6.0).to_bits() && beta == 0.5 {
                Ok((Op::Act(A::Hardsigmoid), 1))
            } else {
                Ok((Op::HardSigmoid { alpha, beta }, 1))
            }
        }),
        "Selu" => {
            let (da, dg) = (SELU_ALPHA as f32, SELU_SCALE as f32);
            attrs.float("alpha", da).and_then(|alpha| {
                let gamma = attrs.float("gamma", dg)?;
                if alpha.to_bits() == da.to_bits() && gamma.to_bits() == dg.to_bits() {
                    Ok((Op::Act(A::Selu), 1))
                } else {
                    Ok((Op::Selu { alpha, gamma }, 1))
                }
            })
        }
        "PRelu" => Ok((Op::PRelu, 2)),
        "Clip" => clip(n, attrs, scalar),
        _ => return None,
    };
    Some(r)
}

/// `Clip`: bounds are operands 1 and 2 (opset ≥ 11, either may be omitted) or the attributes
/// `min`, `max` (older opsets; the lowering gives a missing one as ±FLT_MAX, Clip-6's default).
fn clip(
    n: usize,
    attrs: &dyn Attrs,
    scalar: &dyn Fn(usize) -> Option<f32>,
) -> std::result::Result<(Op, usize), String> {
    let hardtanh = |lo: f32, hi: f32| {
        let act = if lo == 0.0 && hi == 6.0 {
            Activation::Relu6
        } else {
            Activation::Hardtanh { min: lo, max: hi }
        };
        (Op::Act(act), 1)
    };
    let lo_attr = attrs.float("min", f32::NAN)?;
    let hi_attr = attrs.float("max", f32::NAN)?;
    if n <= 1 && (!lo_attr.is_nan() || !hi_attr.is_nan()) {
        let lo = Some(lo_attr).filter(|v| !v.is_nan());
        let hi = Some(hi_attr).filter(|v| !v.is_nan());
        return Ok(match (lo, hi) {
            (Some(lo), Some(hi)) if lo <= hi && lo.is_finite() && hi.is_finite() => {
                hardtanh(lo, hi)
            }
            _ => (Op::ClipConst { lo, hi }, 1),
        });
    }
    match (scalar(1), scalar(2)) {
        (Some(lo), Some(hi)) if lo <= hi && lo.is_finite() && hi.is_finite() => {
            Ok(hardtanh(lo, hi))
        }
        _ => Ok((
            Op::Clip {
                lo: n >= 2,
                hi: n >= 3,
            },
            n.clamp(1, 3),
        )),
    }
}

/// Appends the nodes of `op` applied to the expression nodes `args` (as many as [`parse`]
/// said, an omitted optional operand given as `None`) and returns the result's node.
pub(crate) fn emit(op: &Op, args: &[Option<usize>], e: &mut Expr) -> Result<usize> {
    let arg = |i: usize| -> Result<usize> {
        args.get(i)
            .copied()
            .flatten()
            .ok_or_else(|| crate::Error::invalid(format!("operand {i} of {op:?} is missing")))
    };
    let x = arg(0)?;
    Ok(match op {
        Op::Alias { .. } => x,
        Op::Unary(u) => e.push(Node::Unary(*u, x))?,
        Op::Binary(b) => {
            let mut acc = x;
            for i in 1..args.len() {
                acc = e.push(Node::Binary(*b, acc, arg(i)?))?;
            }
            acc
        }
        Op::Act(a) => e.push(Node::Act(*a, x))?,
        Op::Where => e.push(Node::Where(x, arg(1)?, arg(2)?))?,
        Op::Clip { lo, hi } => {
            let mut v = x;
            if *lo && let Some(l) = args.get(1).copied().flatten() {
                v = e.push(Node::Binary(Binary::Max, v, l))?;
            }
            if *hi && let Some(h) = args.get(2).copied().flatten() {
                v = e.push(Node::Binary(Binary::Min, v, h))?;
            }
            v
        }
        Op::ClipConst { lo, hi } => {
            let mut v = x;
            if let Some(l) = lo {
                let c = e.push(Node::Const(*l))?;
                v = e.push(Node::Binary(Binary::Max, v, c))?;
            }
            if let Some(h) = hi {
                let c = e.push(Node::Const(*h))?;
                v = e.push(Node::Binary(Binary::Min, v, c))?;
            }
            v
        }
        Op::HardSigmoid { alpha, beta } => {
            // max(0, min(1, α·x + β))
            let a = e.push(Node::Const(*alpha))?;
            let ax = e.push(Node::Binary(Binary::Mul, x, a))?;
            let b = e.push(Node::Const(*beta))?;
            let y = e.push(Node::Binary(Binary::Add, ax, b))?;
            let one = e.push(Node::Const(1.0))?;
            let y = e.push(Node::Binary(Binary::Min, y, one))?;
            let zero = e.push(Node::Const(0.0))?;
            e.push(Node::Binary(Binary::Max, y, zero))?
        }
        Op::Selu { alpha, gamma } => {
            // x > 0 ? γ·x : γ·(α·eˣ − α)
            let zero = e.push(Node::Const(0.0))?;
            let positive = e.push(Node::Binary(Binary::Greater, x, zero))?;
            let g = e.push(Node::Const(*gamma))?;
            let gx = e.push(Node::Binary(Binary::Mul, x, g))?;
            let ex = e.push(Node::Unary(Unary::Exp, x))?;
            let a = e.push(Node::Const(*alpha))?;
            let aex = e.push(Node::Binary(Binary::Mul, ex, a))?;
            let d = e.push(Node::Binary(Binary::Sub, aex, a))?;
            let neg = e.push(Node::Binary(Binary::Mul, d, g))?;
            e.push(Node::Where(positive, gx, neg))?
        }
        Op::PRelu => {
            // x > 0 ? x : slope · x, as nn.PReLU.
            let zero = e.push(Node::Const(0.0))?;
            let positive = e.push(Node::Binary(Binary::Greater, x, zero))?;
            let sx = e.push(Node::Binary(Binary::Mul, x, arg(1)?))?;
            e.push(Node::Where(positive, x, sx))?
        }
    })
}

/// Whether the op gives a boolean (a comparison).
pub(crate) fn gives_bool(op: &Op) -> bool {
    matches!(op, Op::Binary(Binary::Greater | Binary::Less))
}
