//! Which PyTorch module a node came from, for the summary rows.
//!
//! - **dynamo** files say it in each node's `metadata_props`: `pkg.torch.onnx.name_scopes`
//!   (`['', 'net', 'net.0', 'linear']`: the root module, the submodules, then the aten op) and
//!   `pkg.torch.onnx.class_hierarchy` (the same positions' classes). A node whose only module is
//!   the root (`['', 'tanh']`) is code in the top `forward()`: a function, no module.
//! - **legacy** files name each node after its module path: `/net/net.0/Gemm`, `/head/Gemm`;
//!   a node at the top, `/Relu_3`, is a function. The class is not recorded, so it is inferred
//!   from the op pattern ([`pattern_class`]).
//! - Other files (no metadata, names not of that form) give no information: every node is its
//!   own scope and the class comes from the op pattern.

use std::collections::BTreeSet;

use crate::model::expr::{Expr, Node};

use super::proto::NodeProto;

/// Where a node came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Inside a module: its path (`net.0`; legacy: `net/net.0`) and its class (short name,
    /// `Linear`) when the file records it.
    Module {
        /// The module's path.
        path: String,
        /// Its class, from dynamo's `class_hierarchy`.
        class: Option<String>,
    },
    /// Code in the top module's `forward()`: a function, never a summary row. `call` tells calls
    /// apart where the file allows (dynamo: the aten node's name; legacy: empty).
    Root {
        /// The call.
        call: String,
    },
    /// No information: this node alone.
    Unknown {
        /// The node's index.
        node: usize,
    },
}

impl Scope {
    /// The scope of `node` (the graph's `index`-th node).
    pub(crate) fn of(node: &NodeProto, index: usize) -> Scope {
        if let Some(scopes) = metadata(node, "pkg.torch.onnx.name_scopes").and_then(py_str_list)
            && let Some((call, modules)) = scopes.split_last()
        {
            // modules[0] is the root module ('').
            let Some(path) = modules.get(1..).and_then(<[String]>::last) else {
                return Scope::Root { call: call.clone() };
            };
            let class = metadata(node, "pkg.torch.onnx.class_hierarchy")
                .and_then(py_str_list)
                .filter(|c| c.len() == scopes.len())
                .and_then(|c| c.get(modules.len() - 1).map(|s| short_class(s)));
            return Scope::Module {
                path: path.clone(),
                class,
            };
        }
        if let Some(rest) = node.name.strip_prefix('/') {
            let parts: Vec<&str> = rest.split('/').collect();
            return match parts.split_last() {
                Some((_, modules))
                    if !modules.is_empty() && modules.iter().all(|m| !m.is_empty()) =>
                {
                    Scope::Module {
                        path: modules.join("/"),
                        class: None,
                    }
                }
                _ => Scope::Root {
                    call: String::new(),
                },
            };
        }
        Scope::Unknown { node: index }
    }

    /// Whether nodes of this scope are functions (no summary row).
    pub(crate) fn is_root(&self) -> bool {
        matches!(self, Scope::Root { .. })
    }

    /// The class the file records for the module, if any.
    pub(crate) fn class(&self) -> Option<&str> {
        match self {
            Scope::Module { class, .. } => class.as_deref(),
            _ => None,
        }
    }

    /// Whether two nodes belong to the same module call (consecutive nodes of one scope make one
    /// module).
    pub(crate) fn same(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Module { path: a, .. }, Scope::Module { path: b, .. }) => a == b,
            (Scope::Root { call: a }, Scope::Root { call: b }) => a == b,
            (Scope::Unknown { node: a }, Scope::Unknown { node: b }) => a == b,
            _ => false,
        }
    }
}

/// A node's metadata value for `key`.
fn metadata<'a>(node: &'a NodeProto, key: &str) -> Option<&'a str> {
    node.metadata_props
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// `torch.nn.modules.activation.ReLU` → `ReLU`; `__main__.MyModel` → `MyModel`.
fn short_class(s: &str) -> String {
    s.rsplit('.').next().unwrap_or(s).to_string()
}

/// Parses a Python list of string literals, `['', 'net', "a'b"]`; `None` if it is not one.
fn py_str_list(s: &str) -> Option<Vec<String>> {
    let body = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(q) = chars.next() else {
            return Some(out);
        };
        if q != '\'' && q != '"' {
            return None;
        }
        let mut item = String::new();
        loop {
            match chars.next()? {
                '\\' => item.push(chars.next()?),
                c if c == q => break,
                c => item.push(c),
            }
        }
        out.push(item);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(out),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// Whether the dynamo exporter's FX node passed `None` for the parameter behind ONNX input
/// `input` of a `LayerNormalization` or `BatchNormalization` node: then that input is a
/// constant the exporter made up (`elementwise_affine=False`), not a module parameter.
/// `false` when the file does not say.
pub(crate) fn fx_param_is_none(node: &NodeProto, input: usize) -> bool {
    let Some(fx) = metadata(node, "pkg.torch.onnx.fx_node") else {
        return false;
    };
    // aten.layer_norm(input, normalized_shape, weight, bias, …),
    // aten._native_batch_norm_legit_no_training(input, weight, bias, mean, var, …).
    let position = if fx.contains("layer_norm") {
        input + 1
    } else if fx.contains("batch_norm") {
        input
    } else {
        return false;
    };
    fx_args(fx).is_some_and(|args| args.get(position).is_some_and(|a| a.trim() == "None"))
}

/// The top-level arguments in an FX node's `args = (a, b, …)`.
fn fx_args(fx: &str) -> Option<Vec<&str>> {
    let start = fx.find("args = (")? + "args = (".len();
    let text = &fx[start..];
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut from = 0;
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' if depth == 0 => {
                args.push(&text[from..i]);
                return Some(args);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                args.push(&text[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// The PyTorch class a group of nodes computes, judged from its ONNX op types (`Constant`
/// left out) and the expression they make: what the legacy exporter's files, which do not
/// record classes, need for summary rows. `None` when the pattern is not a known module.
pub(crate) fn pattern_class(ops: &[&str], expr: &Expr) -> Option<&'static str> {
    if let [Node::Input, Node::Act(act, 0)] = expr.nodes() {
        return act.spec().class;
    }
    let set: BTreeSet<&str> = ops.iter().copied().filter(|o| *o != "Constant").collect();
    let is = |names: &[&str]| set.len() == names.len() && names.iter().all(|n| set.contains(n));
    let patterns: [(&[&str], &str); 26] = [
        (&["Gemm"], "Linear"),
        (&["MatMul"], "Linear"),
        (&["MatMul", "Add"], "Linear"),
        (&["BatchNormalization"], "BatchNorm1d"),
        (&["LayerNormalization"], "LayerNorm"),
        (&["Flatten"], "Flatten"),
        (&["Dropout"], "Dropout"),
        (&["Identity"], "Identity"),
        (&["Softmax"], "Softmax"),
        (&["LogSoftmax"], "LogSoftmax"),
        (&["PRelu"], "PReLU"),
        (&["Clip"], "Hardtanh"),
        (&["HardSigmoid"], "Hardsigmoid"),
        (&["Selu"], "SELU"),
        (&["Elu"], "ELU"),
        (&["Celu"], "CELU"),
        (&["LeakyRelu"], "LeakyReLU"),
        // SiLU: x · sigmoid(x).
        (&["Sigmoid", "Mul"], "SiLU"),
        // GELU: x · ½ · (1 + erf(x / √2)).
        (&["Div", "Erf", "Add", "Mul"], "GELU"),
        // GELU(tanh): ½x · (1 + tanh(√(2/π) · (x + 0.044715 x³))), x³ as Mul or Pow.
        (&["Mul", "Add", "Tanh"], "GELU"),
        (&["Mul", "Add", "Tanh", "Pow"], "GELU"),
        // Mish: x · tanh(softplus(x)).
        (&["Softplus", "Tanh", "Mul"], "Mish"),
        // Softplus(β) (legacy: no threshold), and with dynamo's threshold.
        (&["Mul", "Softplus", "Div"], "Softplus"),
        (&["Softplus", "Greater", "Where"], "Softplus"),
        (&["Mul", "Softplus", "Div", "Greater", "Where"], "Softplus"),
        (&["Softplus"], "Softplus"),
    ];
    patterns
        .iter()
        .find(|(names, _)| is(names))
        .map(|(_, class)| *class)
}
