//! [`Arch`]: a model's architecture as the module sequence in forward order, the language of
//! `--arch` and of the `wgpu_mlp.arch` metadata of self-describing safetensors files:
//!
//! ```text
//! linear,batchnorm1d,relu,dropout:0.3,linear,layernorm,gelu,linear,softmax
//! ```
//!
//! Comma-separated lower-case PyTorch names, parameters after colons where they differ from
//! PyTorch's defaults: `linear`, `batchnorm1d[:eps]`, `layernorm[:eps]`, `dropout[:p]`,
//! `flatten`, `identity`, `prelu`, and every [`Activation`] (`relu`, `leaky_relu[:slope]`,
//! `softplus[:beta[:threshold]]`, …, `softmax`, `log_softmax`). A token prefixed `F.` (or
//! `torch.`) is a function called in `forward()`: the same computation, but no module, so no
//! torchsummary row (the primer's `MyModel` is `linear,F.sigmoid,linear`).
//!
//! [`Arch::bind`] gives the modules that own tensors (`linear`, `batchnorm1d`, `layernorm`,
//! `prelu`) their tensors from a state_dict: by the module names given, or else in the natural
//! order of the names in the file (`0` < `2` < `10`, `fc2` < `fc10`, `net.0` < `net.2` < `head`
//! only if so named), after stripping the `_orig_mod.` (torch.compile) and `module.`
//! (DataParallel) prefixes that wrap every key.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::activation::Activation;
use crate::error::{Error, Result, escape};
use crate::model::Mlp;
use crate::model::linear::Linear;
use crate::model::module::{BatchNorm1d, DEFAULT_EPS, LayerNorm, Module, PRelu};

/// Metadata key of the architecture in a self-describing safetensors file.
pub const ARCH_KEY: &str = "wgpu_mlp.arch";
/// Metadata key of the module names (optional): one per module that owns tensors, in order.
pub const NAMES_KEY: &str = "wgpu_mlp.names";

/// One module of an [`Arch`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Token {
    /// `linear`.
    Linear,
    /// `batchnorm1d[:eps]`.
    BatchNorm1d {
        /// eps.
        eps: f32,
    },
    /// `layernorm[:eps]`.
    LayerNorm {
        /// eps.
        eps: f32,
    },
    /// `dropout[:p]`.
    Dropout(f32),
    /// `flatten`.
    Flatten,
    /// `identity`.
    Identity,
    /// `prelu`.
    PRelu,
    /// An activation module.
    Activation(Activation),
    /// An activation function called in `forward()` (`F.relu`).
    Function(Activation),
}

impl Token {
    /// Whether this module owns tensors in a state_dict.
    pub fn has_tensors(self) -> bool {
        matches!(
            self,
            Token::Linear | Token::BatchNorm1d { .. } | Token::LayerNorm { .. } | Token::PRelu
        )
    }
}

/// A model's architecture: its modules in forward order, without the tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Arch {
    tokens: Vec<Token>,
}

/// Every token name, for messages.
const NAMES: &str = "linear, batchnorm1d[:eps], layernorm[:eps], dropout[:p], flatten, \
                     identity, prelu, an activation (relu, sigmoid, tanh, leaky_relu[:slope], \
                     elu[:alpha], selu, gelu, gelu_tanh, silu, mish, softplus[:beta[:threshold]], \
                     hardtanh[:min:max], relu6, hardsigmoid, hardswish, softmax, log_softmax), or \
                     F.<activation> for a function called in forward()";

impl FromStr for Arch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let tokens = s
            .split(',')
            .map(|t| parse_token(t).map_err(|e| Error::invalid(format!("--arch: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        if !tokens.contains(&Token::Linear) {
            return Err(Error::invalid(format!(
                "--arch '{}' has no linear module; a network needs at least one",
                escape(s)
            )));
        }
        Ok(Arch { tokens })
    }
}

fn parse_token(raw: &str) -> std::result::Result<Token, String> {
    let t = raw.trim();
    let lower = t.to_ascii_lowercase();
    for prefix in ["f.", "torch.", "torch.nn.functional."] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            return match rest.parse::<Activation>() {
                Ok(a) if a != Activation::Identity => Ok(Token::Function(a)),
                _ => Err(format!(
                    "'{}' is not a function this crate knows; after F. comes an activation",
                    escape(t)
                )),
            };
        }
    }
    let (name, params) = lower.split_once(':').unwrap_or((lower.as_str(), ""));
    let one = |default: f32, what: &str, ok: fn(f32) -> bool| -> std::result::Result<f32, String> {
        if params.is_empty() {
            return Ok(default);
        }
        params
            .parse::<f32>()
            .ok()
            .filter(|v| ok(*v))
            .ok_or_else(|| format!("'{}': {what}", escape(t)))
    };
    let eps_ok = |v: f32| v.is_finite() && v >= 0.0;
    match name {
        "" => Err("an empty module name (two commas in a row?)".into()),
        "linear" if params.is_empty() => Ok(Token::Linear),
        "batchnorm1d" => one(DEFAULT_EPS, "eps must be a number ≥ 0", eps_ok)
            .map(|eps| Token::BatchNorm1d { eps }),
        "layernorm" => {
            one(DEFAULT_EPS, "eps must be a number ≥ 0", eps_ok).map(|eps| Token::LayerNorm { eps })
        }
        "dropout" => {
            one(0.5, "p must be in [0, 1]", |p| (0.0..=1.0).contains(&p)).map(Token::Dropout)
        }
        "flatten" if params.is_empty() => Ok(Token::Flatten),
        "identity" if params.is_empty() => Ok(Token::Identity),
        "prelu" if params.is_empty() => Ok(Token::PRelu),
        _ => match t.parse::<Activation>() {
            Ok(a) if a != Activation::Identity => Ok(Token::Activation(a)),
            Ok(_) => Ok(Token::Identity),
            Err(e) if Activation::ALL.iter().any(|a| a.spec().name == name) => Err(e
                .to_string()
                .trim_start_matches("invalid argument: ")
                .into()),
            Err(_) => Err(format!("unknown module '{}'; expected {NAMES}", escape(t))),
        },
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.tokens.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match t {
                Token::Linear => f.write_str("linear")?,
                Token::BatchNorm1d { eps } => write_param(f, "batchnorm1d", *eps, DEFAULT_EPS)?,
                Token::LayerNorm { eps } => write_param(f, "layernorm", *eps, DEFAULT_EPS)?,
                Token::Dropout(p) => write_param(f, "dropout", *p, 0.5)?,
                Token::Flatten => f.write_str("flatten")?,
                Token::Identity => f.write_str("identity")?,
                Token::PRelu => f.write_str("prelu")?,
                Token::Activation(a) => write!(f, "{a}")?,
                Token::Function(a) => write!(f, "F.{a}")?,
            }
        }
        Ok(())
    }
}

fn write_param(f: &mut fmt::Formatter<'_>, name: &str, v: f32, default: f32) -> fmt::Result {
    if v == default {
        f.write_str(name)
    } else {
        write!(f, "{name}:{v}")
    }
}

/// What [`Arch::bind`] reads tensors from (a safetensors state_dict).
pub trait Tensors {
    /// Every key.
    fn keys(&self) -> Vec<String>;
    /// The shape of `key`, if present.
    fn shape(&self, key: &str) -> Option<Vec<usize>>;
    /// The values of `key` converted to f32 (an error says why not, e.g. its dtype).
    fn values(&self, key: &str) -> std::result::Result<Vec<f32>, String>;
}

impl Arch {
    /// The tokens, in forward order.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// The `--act` shorthand: each Linear layer followed by its activation module (identity:
    /// none).
    pub fn from_activations(acts: &[Activation]) -> Self {
        let mut tokens = Vec::with_capacity(acts.len() * 2);
        for &a in acts {
            tokens.push(Token::Linear);
            if a != Activation::Identity {
                tokens.push(Token::Activation(a));
            }
        }
        Arch { tokens }
    }

    /// The architecture of a model, or an error for modules the language cannot write
    /// (elementwise subgraphs from ONNX files).
    pub fn of(model: &Mlp) -> Result<Self> {
        let tokens = model
            .modules()
            .iter()
            .map(|m| {
                Ok(match m {
                    Module::Linear(_) => Token::Linear,
                    Module::BatchNorm1d(b) => Token::BatchNorm1d { eps: b.eps() },
                    Module::LayerNorm(l) => Token::LayerNorm { eps: l.eps() },
                    Module::Activation(Activation::Identity) => Token::Identity,
                    Module::Activation(a) => Token::Activation(*a),
                    Module::Function(a) => Token::Function(*a),
                    Module::PRelu(_) => Token::PRelu,
                    Module::Dropout(p) => Token::Dropout(*p),
                    Module::Flatten => Token::Flatten,
                    Module::Identity => Token::Identity,
                    Module::Elementwise { .. } => {
                        return Err(Error::invalid(
                            "the model holds an elementwise expression (from an ONNX file), \
                             which an architecture string cannot describe",
                        ));
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arch { tokens })
    }

    /// The modules that own tensors, in order.
    pub fn tensor_modules(&self) -> usize {
        self.tokens.iter().filter(|t| t.has_tensors()).count()
    }

    /// The summary rows of this architecture with the given Linear widths (input first, then
    /// each Linear's output), without any weights: a table of a billion parameters allocates
    /// nothing. Errors if the widths do not match the Linear layers or the architecture holds a
    /// PReLU (whose parameter count depends on its weight).
    pub fn summary_rows(&self, widths: &[usize]) -> Result<Vec<crate::summary::Row>> {
        let linears = self.tokens.iter().filter(|t| **t == Token::Linear).count();
        if widths.len() != linears + 1 {
            return Err(Error::invalid(format!(
                "--layers gives {} width(s) after the input but the architecture has {linears} \
                 linear module(s)",
                widths.len().saturating_sub(1)
            )));
        }
        let mut w = widths[0] as u64;
        let mut next = widths[1..].iter();
        let mut rows = Vec::new();
        for t in &self.tokens {
            let (class, params) = match t {
                Token::Linear => {
                    let out = *next.next().expect("counted above") as u64;
                    let params = (w + 1).saturating_mul(out);
                    w = out;
                    ("Linear".to_string(), params)
                }
                Token::BatchNorm1d { .. } => ("BatchNorm1d".into(), 2 * w),
                Token::LayerNorm { .. } => ("LayerNorm".into(), 2 * w),
                Token::PRelu => {
                    return Err(Error::invalid(
                        "a prelu has 1 or C parameters: give --weights to count them",
                    ));
                }
                Token::Dropout(_) => ("Dropout".into(), 0),
                Token::Flatten => ("Flatten".into(), 0),
                Token::Identity => ("Identity".into(), 0),
                Token::Activation(a) => match a.module_name() {
                    Some(c) => (c.to_string(), 0),
                    None => continue,
                },
                Token::Function(_) => continue,
            };
            rows.push(crate::summary::Row {
                class,
                width: w,
                params,
            });
        }
        Ok(rows)
    }

    /// The model: this architecture with its tensors from `tensors`, each module that owns
    /// tensors taking those of one module name, by `names` or in the natural order of the names
    /// in the file. Every tensor must be used; `num_batches_tracked` is ignored. A `layernorm`
    /// without `elementwise_affine` owns no tensors: it takes none where the next name's tensors
    /// are not a LayerNorm's of the current width and the file has fewer names than modules.
    pub fn bind(&self, tensors: &dyn Tensors, names: Option<&[String]>) -> Result<Mlp> {
        let err = |m: String| Error::invalid(m);
        let groups = group_keys(tensors)?;
        // Keys no module of this architecture has.
        let allowed: BTreeSet<&str> = self
            .tokens
            .iter()
            .flat_map(|t| params_of(*t).iter().copied())
            .collect();
        let unexpected: Vec<&str> = groups
            .values()
            .flat_map(|g| g.iter())
            .filter(|(p, _)| !allowed.contains(p.as_str()))
            .map(|(_, k)| k.as_str())
            .collect();
        if !unexpected.is_empty() {
            return Err(err(format!(
                "unexpected key(s) {}: the architecture '{self}' has modules with tensors {}",
                quote(unexpected.into_iter()),
                quote(allowed.iter().copied())
            )));
        }
        let order: Vec<String> = match names {
            Some(names) => {
                let strip = |n: &String| strip_wrappers(n, &groups).to_string();
                let names: Vec<String> = names.iter().map(strip).collect();
                let mut seen = BTreeSet::new();
                for n in &names {
                    if !seen.insert(n.as_str()) {
                        return Err(err(format!("module name '{}' is given twice", escape(n))));
                    }
                    if !groups.contains_key(n.as_str()) {
                        return Err(err(format!(
                            "missing '{}.weight': the file has no module '{}'; it has {}",
                            escape(n),
                            escape(n),
                            describe(&groups)
                        )));
                    }
                }
                let extra: Vec<&str> = groups
                    .iter()
                    .filter(|(g, _)| !seen.contains(g.as_str()))
                    .flat_map(|(_, params)| params.values().map(String::as_str))
                    .collect();
                if !extra.is_empty() {
                    return Err(err(format!(
                        "unexpected key(s) {}: their modules are not among the names given",
                        quote(extra.into_iter())
                    )));
                }
                names
            }
            None => {
                let mut all: Vec<String> = groups.keys().cloned().collect();
                all.sort_by(|a, b| natural_cmp(a, b));
                if let Some(w) = all.windows(2).find(|w| natural_cmp(&w[0], &w[1]).is_eq()) {
                    let key = |n: &str| groups[n].values().next().cloned().unwrap_or_default();
                    return Err(err(format!(
                        "module names '{}' and '{}' are the same index: keys '{}' and '{}' name \
                         the same parameter",
                        escape(&w[0]),
                        escape(&w[1]),
                        escape(&key(&w[0])),
                        escape(&key(&w[1]))
                    )));
                }
                all
            }
        };
        let wanted = self.tensor_modules();
        // LayerNorms that may own no tensors make up the difference.
        let mut spare = wanted.saturating_sub(order.len());
        let optional = self
            .tokens
            .iter()
            .filter(|t| matches!(t, Token::LayerNorm { .. }))
            .count();
        if order.len() > wanted || spare > optional {
            return Err(err(format!(
                "the architecture '{self}' has {wanted} module(s) with tensors but the file has \
                 {}: {}",
                order.len(),
                describe(&groups)
            )));
        }
        let mut modules = Vec::with_capacity(self.tokens.len());
        let mut next = order.iter().peekable();
        // (width, the key that made it) of the module before.
        let mut width: Option<(usize, String)> = None;
        for (i, t) in self.tokens.iter().enumerate() {
            // The key a module with tensors was bound from (for messages about widths).
            let mut bound: Option<String> = None;
            let m = match t {
                Token::Dropout(p) => Module::Dropout(*p),
                Token::Flatten => Module::Flatten,
                Token::Identity => Module::Identity,
                Token::Activation(a) => Module::Activation(*a),
                Token::Function(a) => Module::Function(*a),
                Token::LayerNorm { eps }
                    if spare > 0
                        && !next.peek().is_some_and(|n| {
                            is_layernorm_of(&groups[n.as_str()], tensors, width.as_ref())
                        }) =>
                {
                    spare -= 1;
                    let Some((w, _)) = &width else {
                        return Err(err(format!(
                            "module {i} (layernorm) has no tensors and nothing before it says \
                             its width"
                        )));
                    };
                    Module::LayerNorm(LayerNorm::new(*w, None, None, *eps)?)
                }
                _ => {
                    let Some(name) = next.next() else {
                        return Err(err(format!(
                            "the architecture '{self}' has more modules with tensors than the \
                             file: {}",
                            describe(&groups)
                        )));
                    };
                    let group = &groups[name.as_str()];
                    let m = bind_module(*t, name, group, tensors)
                        .map_err(|m| err(format!("module '{}': {m}", escape(name))))?;
                    let key = group.get("weight").cloned().unwrap_or_else(|| name.clone());
                    if let (Some((w, prev)), Module::Linear(l)) = (&width, &m)
                        && l.in_features() != *w
                    {
                        return Err(err(format!(
                            "layer shapes do not chain: '{}' is [{}, {}] and expects {} input \
                             features, but the module before it ('{}') produces {w}",
                            escape(&key),
                            l.out_features(),
                            l.in_features(),
                            l.in_features(),
                            escape(prev)
                        )));
                    }
                    bound = Some(key);
                    m
                }
            };
            width = match (&width, &m) {
                (Some((w, prev)), _) => {
                    let out = m.out_width(*w).map_err(|e| {
                        err(format!(
                            "module {i} ({}): {}",
                            m.class().unwrap_or("function"),
                            e.to_string().trim_start_matches("shape mismatch: ")
                        ))
                    })?;
                    Some((out, bound.unwrap_or_else(|| prev.clone())))
                }
                (None, Module::Linear(l)) => Some((l.out_features(), bound.unwrap_or_default())),
                (None, m) => features(m).map(|c| (c, bound.unwrap_or_default())),
            };
            modules.push(m);
        }
        Mlp::new(modules)
    }
}

/// The width a module with tensors fixes (its features), if any.
fn features(m: &Module) -> Option<usize> {
    match m {
        Module::BatchNorm1d(b) => Some(b.features()),
        Module::LayerNorm(l) => Some(l.features()),
        Module::PRelu(p) if p.weight().len() > 1 => Some(p.weight().len()),
        _ => None,
    }
}

/// The tensors a module of this kind may own.
fn params_of(t: Token) -> &'static [&'static str] {
    match t {
        Token::Linear | Token::LayerNorm { .. } | Token::PRelu => &["weight", "bias"],
        Token::BatchNorm1d { .. } => &[
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked",
        ],
        _ => &[],
    }
}

/// Whether a group's tensors are a LayerNorm's (1-D weight, optional bias) of `width`.
fn is_layernorm_of(group: &Group, tensors: &dyn Tensors, width: Option<&(usize, String)>) -> bool {
    let Some(w) = group.get("weight") else {
        return false;
    };
    let one_d = tensors
        .shape(w)
        .is_some_and(|s| s.len() == 1 && width.is_none_or(|(n, _)| s[0] == *n));
    one_d && group.keys().all(|p| p == "weight" || p == "bias")
}

/// A module name as given, less a `_orig_mod.` / `module.` wrapper prefix the file's keys do
/// not have after stripping (names copied from the wrapped model's keys).
fn strip_wrappers<'a>(name: &'a str, groups: &BTreeMap<String, Group>) -> &'a str {
    let mut n = name;
    while !groups.contains_key(n) {
        match n
            .strip_prefix("_orig_mod.")
            .or_else(|| n.strip_prefix("module."))
        {
            Some(rest) => n = rest,
            None => return name,
        }
    }
    n
}

/// A tensor's shape and values.
type ShapedValues = (Vec<usize>, Vec<f32>);

/// The parameters of one module name: parameter name → full key.
type Group = BTreeMap<String, String>;

/// Keys grouped by module name (everything before the last `.`), after removing the
/// `_orig_mod.` / `module.` prefixes that wrap every key.
fn group_keys(tensors: &dyn Tensors) -> Result<BTreeMap<String, Group>> {
    let keys = tensors.keys();
    if keys.is_empty() {
        return Err(Error::invalid("the file holds no tensors"));
    }
    let mut strip = 0;
    'outer: loop {
        for prefix in ["_orig_mod.", "module."] {
            if keys.iter().all(|k| k[strip..].starts_with(prefix)) {
                strip += prefix.len();
                continue 'outer;
            }
        }
        break;
    }
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for k in &keys {
        let short = &k[strip..];
        let (module, param) = short.rsplit_once('.').unwrap_or(("", short));
        groups
            .entry(module.to_string())
            .or_default()
            .insert(param.to_string(), k.clone());
    }
    Ok(groups)
}

/// Builds one module from its group of tensors, checking names and shapes.
fn bind_module(
    t: Token,
    name: &str,
    group: &Group,
    tensors: &dyn Tensors,
) -> std::result::Result<Module, String> {
    let allowed: &[&str] = match t {
        Token::Linear => &["weight", "bias"],
        Token::BatchNorm1d { .. } => &[
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked",
        ],
        Token::LayerNorm { .. } | Token::PRelu => &["weight", "bias"],
        _ => &[],
    };
    let unknown: Vec<&str> = group
        .keys()
        .map(String::as_str)
        .filter(|p| !allowed.contains(p))
        .collect();
    let class = match t {
        Token::Linear => "Linear",
        Token::BatchNorm1d { .. } => "BatchNorm1d",
        Token::LayerNorm { .. } => "LayerNorm",
        _ => "PReLU",
    };
    if !unknown.is_empty() {
        return Err(format!(
            "a {class} has no tensor(s) {}; its tensors are {} (is the architecture right? the \
             module's tensors are {})",
            quote(unknown.iter().copied()),
            quote(allowed.iter().copied()),
            quote(group.keys().map(String::as_str))
        ));
    }
    let get = |p: &str| -> std::result::Result<Option<ShapedValues>, String> {
        let Some(key) = group.get(p) else {
            return Ok(None);
        };
        let shape = tensors.shape(key).unwrap_or_default();
        Ok(Some((shape, tensors.values(key)?)))
    };
    let vector = |p: &str, c: Option<usize>| -> std::result::Result<Option<Vec<f32>>, String> {
        match get(p)? {
            None => Ok(None),
            Some((shape, v)) => match (shape.as_slice(), c) {
                ([n], Some(c)) if *n == c => Ok(Some(v)),
                ([n], None) if *n > 0 => Ok(Some(v)),
                _ => Err(format!(
                    "'{}' has shape {shape:?}; expected [{}]",
                    escape(&group[p]),
                    c.map_or("C".into(), |c| c.to_string())
                )),
            },
        }
    };
    let missing = |p: &str| {
        let key = if name.is_empty() {
            p.to_string()
        } else {
            format!("{name}.{p}")
        };
        format!("missing '{}' (a {class} needs it)", escape(&key))
    };
    match t {
        Token::Linear => {
            let (shape, w) = get("weight")?.ok_or_else(|| missing("weight"))?;
            let &[out, inp] = shape.as_slice() else {
                return Err(format!(
                    "'{}' must be 2-D [out_features, in_features], got shape {shape:?}",
                    escape(&group["weight"])
                ));
            };
            let bias = vector("bias", Some(out))?;
            Linear::new(inp, out, w, bias)
                .map(Module::Linear)
                .map_err(|e| e.to_string())
        }
        Token::BatchNorm1d { eps } => {
            let mean = vector("running_mean", None)?.ok_or_else(|| {
                format!(
                    "a BatchNorm1d needs its running statistics ('{name}.running_mean'); without \
                     them (track_running_stats=False) it normalises each batch by its own \
                     statistics even in eval mode, which this crate does not run"
                )
            })?;
            let c = Some(mean.len());
            let var = vector("running_var", c)?.ok_or_else(|| missing("running_var"))?;
            BatchNorm1d::new(mean, var, vector("weight", c)?, vector("bias", c)?, eps)
                .map(Module::BatchNorm1d)
                .map_err(|e| e.to_string())
        }
        Token::LayerNorm { eps } => {
            let w = vector("weight", None)?.ok_or_else(|| missing("weight"))?;
            let c = w.len();
            LayerNorm::new(c, Some(w), vector("bias", Some(c))?, eps)
                .map(Module::LayerNorm)
                .map_err(|e| e.to_string())
        }
        _ => {
            let w = vector("weight", None)?.ok_or_else(|| missing("weight"))?;
            PRelu::new(w).map(Module::PRelu).map_err(|e| e.to_string())
        }
    }
}

/// `'0' (weight [31, 13], bias [31]), '1' (…)`: the file's modules, for messages.
fn describe(groups: &BTreeMap<String, Group>) -> String {
    let mut names: Vec<&String> = groups.keys().collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    let shown: Vec<String> = names
        .iter()
        .take(12)
        .map(|n| {
            let params: Vec<&str> = groups[n.as_str()].keys().map(String::as_str).collect();
            format!("'{}' ({})", escape(n), params.join(", "))
        })
        .collect();
    let mut s = shown.join(", ");
    if names.len() > 12 {
        s.push_str(&format!(" and {} more", names.len() - 12));
    }
    s
}

/// `'a', 'b'` (at most 10 shown), escaped.
pub(crate) fn quote<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    let mut s = items
        .iter()
        .take(10)
        .map(|k| format!("'{}'", escape(k)))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        s.push_str(&format!(" and {} more", items.len() - 10));
    }
    s
}

/// Natural order of module names: dot-separated segments compared one by one, runs of digits
/// by value (`fc2` < `fc10`, `net.2` < `net.10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let mut x = a.as_bytes();
    let mut y = b.as_bytes();
    loop {
        match (x.first(), y.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let n = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let m = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (trim_zeros(&x[..n]), trim_zeros(&y[..m]));
                let ord = dx.len().cmp(&dy.len()).then_with(|| dx.cmp(dy));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    // '.' ends a segment: it sorts before any other character.
                    let rank = |c: u8| if c == b'.' { 0u16 } else { u16::from(c) + 1 };
                    return rank(*c).cmp(&rank(*d));
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|&&c| c == b'0').count();
    &d[z.min(d.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut v = vec![
            "fc10", "fc2", "fc1", "net.10", "net.2", "0", "10", "2", "head",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "0", "2", "10", "fc1", "fc2", "fc10", "head", "net.2", "net.10"
            ]
        );
    }

    #[test]
    fn arch_strings_round_trip() {
        for s in [
            "linear,batchnorm1d,relu,dropout:0.3,linear,softmax",
            "linear,F.sigmoid,linear",
            "linear,layernorm:0.001,gelu_tanh,linear,log_softmax",
            "flatten,linear,prelu,identity,linear,softplus:2:5,hardtanh:-2:3",
        ] {
            let a: Arch = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
        assert_eq!(
            "Linear, ReLU ,torch.tanh,linear"
                .parse::<Arch>()
                .unwrap()
                .to_string(),
            "linear,relu,F.tanh,linear"
        );
    }

    #[test]
    fn bad_arch_strings_say_what_is_wrong() {
        for (s, want) in [
            ("linear,,relu", "empty"),
            ("linear,relux", "unknown module 'relux'"),
            ("relu", "no linear"),
            ("linear,dropout:2", "p must be"),
            ("linear,leaky_relu:x", "finite number"),
            ("linear,F.linear", "not a function"),
        ] {
            let e = s.parse::<Arch>().unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
    }
}
