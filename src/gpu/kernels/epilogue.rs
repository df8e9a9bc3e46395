//! An [`Expr`] as WGSL: the function `ep_value(x, c)` every kernel's store step calls (through
//! `common/epilogue.wgsl`), and the contents of its parameter buffer `ep`.
//!
//! Constants are never written into the source: every scalar and per-feature value is read from
//! `ep` at run time, so the generated code depends only on the expression's shape (two layers
//! with ReLU share one module) and the compiler cannot fold `x * 0` into 0, which would turn NaN
//! and −inf into 0.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::gpu::pack;
use crate::model::expr::{Binary, Expr, Node, Unary};

/// A compiled epilogue: the WGSL of `ep_value` and the values of `ep`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Epilogue {
    /// `fn ep_value(x: f32, c: u32) -> f32 { … }`.
    pub(crate) code: Arc<str>,
    /// The parameter buffer: scalars, then each per-feature vector padded to whole vec4s of the
    /// width (so padding columns read zeros, in bounds).
    pub(crate) params: Vec<f32>,
}

/// The most statements (inlined, per lane: [`Epilogue::statements`]) an epilogue may have to be
/// fused into a Linear or row pass. Those kernels inline their epilogue at every store (up to
/// 64 times per pipeline, in 4 pipelines for the windowed kernel), so a longer one runs as an
/// elementwise pass of its own, which inlines it 4 times: a Linear layer followed by 64 Mish
/// modules took 98 s to compile on lavapipe fused and 5 s apart (docs/LOG.md, 2026-12-07).
/// Real models' epilogues (BatchNorm then an activation, LayerNorm's affine part then GELU)
/// stay well under it.
pub(crate) const MAX_FUSED_STATEMENTS: u64 = 64;

impl Epilogue {
    /// The statements of `ep_value` with every helper it calls inlined (see
    /// [`compile_cost`](super::compile_cost)).
    pub(crate) fn statements(&self) -> u64 {
        let helpers = [super::MATH_WGSL, super::ACTIVATION_WGSL, &self.code].concat();
        super::compile_cost::inlined_statements(&helpers, "ep_value")
    }

    /// Whether it is cheap enough to compile into a Linear or row pass.
    pub(crate) fn fusable(&self) -> bool {
        self.statements() <= MAX_FUSED_STATEMENTS
    }
}

/// The `ep` binding's WGSL type.
pub(crate) const EP_TYPE: &str = "array<f32>";

/// Compiles `expr` for rows of `width` features.
pub(crate) fn compile(expr: &Expr, width: usize) -> Epilogue {
    let padded = pack::vec4s(width) * 4;
    let mut params: Vec<f32> = Vec::new();
    let mut code = String::from("fn ep_value(x: f32, c: u32) -> f32 {\n");
    let name = |i: usize| {
        if i == 0 {
            "x".to_string()
        } else {
            format!("v{i}")
        }
    };
    let param = |params: &mut Vec<f32>, values: &[f32]| {
        let at = params.len();
        params.extend_from_slice(values);
        at
    };
    // The index of a 0.0 in `ep`, added when a binary operation first needs it.
    let mut zero: Option<usize> = None;
    for (i, n) in expr.nodes().iter().enumerate().skip(1) {
        let rhs = match n {
            Node::Input => "x".to_string(),
            Node::Const(v) => format!("ep[{}u]", param(&mut params, &[*v])),
            Node::Column(v) if v.len() == 1 => format!("ep[{}u]", param(&mut params, v)),
            Node::Column(v) => {
                let mut padded_v = v.to_vec();
                padded_v.resize(padded, 0.0);
                format!("ep[{}u + c]", param(&mut params, &padded_v))
            }
            Node::Unary(op, a) => {
                let a = name(*a);
                match op {
                    Unary::Neg => format!("-{a}"),
                    Unary::Abs => format!("abs({a})"),
                    Unary::Sqrt => format!("wm_sqrt({a})"),
                    Unary::Exp => format!("exp({a})"),
                    Unary::Log => format!("wm_log({a})"),
                    Unary::Erf => format!("wm_erf({a})"),
                    Unary::Tanh => format!("wm_tanh({a})"),
                    Unary::Sigmoid => format!("wm_sigmoid({a})"),
                    Unary::Reciprocal => format!("1.0 / {a}"),
                }
            }
            Node::Binary(Binary::Pow, a, b) if expr.pow_root(*b).is_some() => {
                let root = format!("wm_sqrt({})", name(*a));
                if expr.pow_root(*b) == Some(true) {
                    format!("1.0 / {root}")
                } else {
                    root
                }
            }
            Node::Binary(op, a, b) => {
                // The second operand through `wm_keep` with a run-time zero: the two operands are
                // never one value to the compiler, so no identity that IEEE values break (a − a =
                // 0, a / a = 1, a + (−a) = 0, even after it merges two equal subexpressions)
                // can be applied. Mesa folds such patterns unless a shader asks to preserve
                // NaN and infinities, which WGSL cannot.
                let z = *zero.get_or_insert_with(|| param(&mut params, &[0.0]));
                let (a, b) = (name(*a), format!("wm_keep({}, ep[{z}u])", name(*b)));
                match op {
                    Binary::Add => format!("{a} + {b}"),
                    Binary::Sub => format!("{a} - {b}"),
                    Binary::Mul => format!("{a} * {b}"),
                    Binary::Div => format!("{a} / {b}"),
                    Binary::Pow => format!("wm_pow({a}, {b})"),
                    Binary::Max => format!("wm_max({a}, {b})"),
                    Binary::Min => format!("wm_min({a}, {b})"),
                    Binary::Greater => format!("select(0.0, 1.0, {a} > {b})"),
                    Binary::Less => format!("select(0.0, 1.0, {a} < {b})"),
                }
            }
            // NaN ≠ 0 is true, as in the reference.
            Node::Where(c, a, b) => {
                format!("select({}, {}, {} != 0.0)", name(*b), name(*a), name(*c))
            }
            Node::Act(act, a) => {
                let spec = act.spec();
                let at = param(&mut params, &spec.values);
                format!(
                    "act_{}({}, ep[{at}u], ep[{}u])",
                    spec.name,
                    name(*a),
                    at + 1
                )
            }
        };
        let _ = writeln!(code, "    let {} = {rhs};", name(i));
    }
    let _ = writeln!(code, "    return {};\n}}", name(expr.nodes().len() - 1));
    if params.is_empty() {
        // A binding needs at least one value (and 16 bytes); nothing reads it.
        params.push(0.0);
    }
    Epilogue {
        code: code.into(),
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;

    #[test]
    fn every_single_activation_and_norm_epilogue_is_fusable_but_long_chains_are_not() {
        for a in Activation::ALL.iter().filter(|a| !a.is_row()) {
            let e = compile(&Expr::activation(*a).unwrap(), 5);
            assert!(e.fusable(), "{a:?}: {} statements", e.statements());
        }
        // BatchNorm ((x − mean)·scale + bias) then GELU, as real models fuse.
        let bn = Expr::centered_affine(vec![1.0; 5], vec![2.0; 5], vec![0.5; 5]);
        let e = compile(&bn.then(&Expr::activation(Activation::Gelu).unwrap()), 5);
        assert!(e.fusable(), "{} statements", e.statements());
        // Four Mish in a row are not.
        let mish = Expr::activation(Activation::Mish).unwrap();
        let e = compile(&mish.then(&mish).then(&mish).then(&mish), 5);
        assert!(!e.fusable(), "{} statements", e.statements());
    }

    #[test]
    fn identity_is_a_plain_return() {
        let e = compile(&Expr::identity(), 5);
        assert_eq!(
            &*e.code,
            "fn ep_value(x: f32, c: u32) -> f32 {\n    return x;\n}\n"
        );
        assert_eq!(e.params, [0.0]);
    }

    #[test]
    fn constants_live_in_the_parameter_buffer_not_the_code() {
        let a = compile(&Expr::activation(Activation::LeakyRelu(0.0)).unwrap(), 3);
        let b = compile(&Expr::activation(Activation::LeakyRelu(0.2)).unwrap(), 3);
        assert_eq!(a.code, b.code, "the same shape compiles to the same code");
        assert!(
            a.code.contains("act_leaky_relu(x, ep[0u], ep[1u])"),
            "{}",
            a.code
        );
        assert_eq!((a.params[0], b.params[0]), (0.0, 0.2));
        // A per-feature vector is padded to whole vec4s.
        let e = Expr::affine(Some(vec![2.0; 5]), Some(vec![1.0; 5]));
        // Then the zero `wm_keep` reads, at the first binary operation.
        let c = compile(&e, 5);
        assert_eq!(c.params.len(), 17);
        assert_eq!(c.params[8], 0.0);
        assert!(
            c.code.contains("ep[0u + c]") && c.code.contains("ep[9u + c]"),
            "{}",
            c.code
        );
    }

    #[test]
    fn no_two_operands_of_a_binary_operation_are_one_value_to_the_compiler() {
        // x − x, x / x and max(x, x) would be folded (to 0, 1, x) by a compiler that assumes no
        // NaN or inf: the second operand is hidden behind the run-time zero.
        use crate::model::expr::{Binary, Node};
        for op in [
            Binary::Sub,
            Binary::Div,
            Binary::Max,
            Binary::Add,
            Binary::Less,
        ] {
            let e = Expr::from_nodes(vec![Node::Input, Node::Binary(op, 0, 0)]).unwrap();
            let c = compile(&e, 4);
            assert_eq!(c.params, [0.0]);
            assert!(c.code.contains("wm_keep(x, ep[0u])"), "{}", c.code);
        }
        // A constant exponent of ±0.5 is a square root, as torch.pow(tensor, 0.5) computes.
        let e = Expr::from_nodes(vec![
            Node::Input,
            Node::Const(-0.5),
            Node::Binary(Binary::Pow, 0, 1),
        ])
        .unwrap();
        assert!(compile(&e, 4).code.contains("1.0 / wm_sqrt(x)"));
    }
}
