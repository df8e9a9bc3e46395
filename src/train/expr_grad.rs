//! The derivative of an elementwise [`Expr`] (an ONNX subgraph) with respect to its input, node
//! by node (forward mode): each node's value as the reference computes it (f64, rounded to f32),
//! its derivative in f64 with autograd's rules (`abs'(0) = 0`, `maximum`/`minimum` split the
//! gradient in half on ties, `pow`'s gradient is 0 where the exponent is 0, comparisons have none).
//!
//! Per-feature constants ([`Node::Column`]) are what an exporter folds parameters into (a PReLU
//! slope, a norm's affine map): PyTorch would train them, this cannot, so such an expression is
//! refused rather than trained with those values frozen.

use crate::model::expr::{Binary, Expr, Node, Unary, binary_f64, column, unary_f64};
use crate::train::activation_grad;

/// Whether `expr` can be differentiated here: it has no per-feature constants.
pub(crate) fn trainable(expr: &Expr) -> bool {
    !expr.nodes().iter().any(|n| matches!(n, Node::Column(_)))
}

/// `d expr / dx` at input `x` in column `col`.
pub(crate) fn derivative(expr: &Expr, x: f32, col: usize) -> f64 {
    let nodes = expr.nodes();
    let mut v: Vec<f32> = Vec::with_capacity(nodes.len());
    let mut d: Vec<f64> = Vec::with_capacity(nodes.len());
    for n in nodes {
        let (value, grad) = match n {
            Node::Input => (x, 1.0),
            Node::Const(c) => (*c, 0.0),
            Node::Column(vals) => (column(vals, col), 0.0),
            Node::Unary(op, a) => {
                let (av, da) = (f64::from(v[*a]), d[*a]);
                let y = unary_f64(*op, av) as f32;
                let yv = f64::from(y);
                let local = match op {
                    Unary::Neg => -1.0,
                    Unary::Abs => sign(av),
                    Unary::Sqrt => 0.5 / yv,
                    Unary::Exp => yv,
                    Unary::Log => 1.0 / av,
                    Unary::Erf => std::f64::consts::FRAC_2_SQRT_PI * (-av * av).exp(),
                    Unary::Tanh => 1.0 - yv * yv,
                    Unary::Sigmoid => yv * (1.0 - yv),
                    Unary::Reciprocal => -(yv * yv),
                };
                (y, chain(local, da))
            }
            Node::Binary(op, a, b) => {
                let (av, bv) = (f64::from(v[*a]), f64::from(v[*b]));
                let (da, db) = (d[*a], d[*b]);
                let y = binary_f64(*op, av, bv) as f32;
                let grad = match op {
                    Binary::Add => da + db,
                    Binary::Sub => da - db,
                    Binary::Mul => chain(bv, da) + chain(av, db),
                    Binary::Div => chain(1.0 / bv, da) - chain(av / (bv * bv), db),
                    Binary::Pow => {
                        let base = if bv == 0.0 {
                            0.0
                        } else {
                            bv * av.powf(bv - 1.0)
                        };
                        let exp = if av > 0.0 {
                            f64::from(y) * av.ln()
                        } else {
                            0.0
                        };
                        chain(base, da) + chain(exp, db)
                    }
                    Binary::Max | Binary::Min => {
                        let a_wins = if *op == Binary::Max { av > bv } else { av < bv };
                        if av == bv {
                            0.5 * (da + db)
                        } else if a_wins {
                            da
                        } else {
                            db
                        }
                    }
                    Binary::Greater | Binary::Less => 0.0,
                };
                (y, grad)
            }
            Node::Where(c, a, b) => {
                if v[*c] != 0.0 {
                    (v[*a], d[*a])
                } else {
                    (v[*b], d[*b])
                }
            }
            Node::Act(act, a) => {
                let av = f64::from(v[*a]);
                let y = act.apply_f64(av) as f32;
                (
                    y,
                    chain(activation_grad::derivative(*act, av, f64::from(y)), d[*a]),
                )
            }
        };
        v.push(value);
        d.push(grad);
    }
    d[d.len() - 1]
}

/// `local · upstream`, 0 when the upstream derivative is 0 (a constant branch contributes
/// nothing even where its local derivative is infinite, as autograd never visits it).
fn chain(local: f64, upstream: f64) -> f64 {
    if upstream == 0.0 {
        0.0
    } else {
        local * upstream
    }
}

/// `sign(a)` with `sign(0) = 0`.
fn sign(a: f64) -> f64 {
    if a > 0.0 {
        1.0
    } else if a < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Activation;

    /// GELU as the ONNX exporter writes it, `x·½·(1 + erf(x/√2))`, and a few other graphs: the
    /// forward-mode derivative against central differences of the f64 graph (1e-6 relative).
    #[test]
    fn derivatives_match_finite_differences() {
        let gelu = Expr::from_nodes(vec![
            Node::Input,
            Node::Const(std::f32::consts::FRAC_1_SQRT_2),
            Node::Binary(Binary::Mul, 0, 1),
            Node::Unary(Unary::Erf, 2),
            Node::Const(1.0),
            Node::Binary(Binary::Add, 3, 4),
            Node::Binary(Binary::Mul, 0, 5),
            Node::Const(0.5),
            Node::Binary(Binary::Mul, 6, 7),
        ])
        .unwrap();
        let mix = Expr::from_nodes(vec![
            Node::Input,
            Node::Unary(Unary::Tanh, 0),
            Node::Unary(Unary::Exp, 0),
            Node::Binary(Binary::Div, 1, 2),
            Node::Const(2.0),
            Node::Binary(Binary::Pow, 0, 4),
            Node::Binary(Binary::Max, 3, 5),
            Node::Act(Activation::Silu, 6),
            Node::Unary(Unary::Sigmoid, 7),
            Node::Unary(Unary::Reciprocal, 8),
            Node::Const(0.0),
            Node::Binary(Binary::Greater, 0, 10),
            Node::Unary(Unary::Neg, 9),
            Node::Where(11, 9, 12),
        ])
        .unwrap();
        let f64_of = |e: &Expr, x: f64| -> f64 {
            // The graph in f64 without rounding, for the difference quotient.
            let mut v: Vec<f64> = Vec::new();
            for n in e.nodes() {
                let y = match n {
                    Node::Input => x,
                    Node::Const(c) => f64::from(*c),
                    Node::Column(_) => unreachable!(),
                    Node::Unary(op, a) => unary_f64(*op, v[*a]),
                    Node::Binary(op, a, b) => binary_f64(*op, v[*a], v[*b]),
                    Node::Where(c, a, b) => {
                        if v[*c] != 0.0 {
                            v[*a]
                        } else {
                            v[*b]
                        }
                    }
                    Node::Act(act, a) => act.apply_f64(v[*a]),
                };
                v.push(y);
            }
            v[v.len() - 1]
        };
        let mut g = crate::Generator::new(11);
        for e in [&gelu, &mix] {
            assert!(trainable(e));
            for _ in 0..300 {
                let x = g.uniform_f64(-4.0, 4.0) as f32;
                let xv = f64::from(x);
                let h = 1e-5;
                let fd = (f64_of(e, xv + h) - f64_of(e, xv - h)) / (2.0 * h);
                let an = derivative(e, x, 0);
                // Values are rounded to f32 before each local derivative: 1e-5 relative.
                assert!(
                    (fd - an).abs() <= 1e-5 * (1.0 + fd.abs()),
                    "{e} at {x}: {an} vs {fd}"
                );
            }
        }
        let folded = Expr::affine(Some(vec![2.0, 3.0]), None);
        assert!(!trainable(&folded));
    }
}
