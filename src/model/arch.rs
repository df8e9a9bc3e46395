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
//! [`Arch::bind`] (`bind.rs`) gives the modules that own tensors (`linear`, `batchnorm1d`, `layernorm`,
//! `prelu`) their tensors from a state_dict: by the module names given, or else in the natural
//! order of the names in the file (`0` < `2` < `10`, `fc2` < `fc10`, `net.0` < `net.2` < `head`
//! only if so named), after stripping the `_orig_mod.` (torch.compile) and `module.`
//! (DataParallel) prefixes that wrap every key.

use std::fmt;
use std::str::FromStr;

use crate::activation::Activation;
use crate::error::{Error, Result, escape};
use crate::model::Mlp;
use crate::model::module::{DEFAULT_EPS, Module};

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

/// Every token, for messages.
fn token_names() -> String {
    format!(
        "linear, batchnorm1d[:eps], layernorm[:eps], dropout[:p], flatten, identity, prelu, an \
         activation ({}), or F.<activation> for a function called in forward()",
        crate::activation::names()
    )
}

impl FromStr for Arch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let tokens = s
            .split(',')
            .map(|t| parse_token(t).map_err(Error::invalid))
            .collect::<Result<Vec<_>>>()?;
        if !tokens.contains(&Token::Linear) {
            return Err(Error::invalid(format!(
                "'{}' has no linear module; a network needs at least one",
                escape(s)
            )));
        }
        Ok(Arch { tokens })
    }
}

fn parse_token(raw: &str) -> std::result::Result<Token, String> {
    let t = raw.trim();
    let lower = t.to_ascii_lowercase();
    // Longest first: `torch.` alone would leave `nn.functional.relu` for the name.
    for prefix in ["torch.nn.functional.", "f.", "torch."] {
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
            Err(_) => Err(format!(
                "unknown module '{}'; expected {}",
                escape(t),
                token_names()
            )),
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

    /// A new model of this architecture with PyTorch's initialisation: Linear layers of the given
    /// widths (input first, then each Linear's output) drawn as `torch.manual_seed(seed)` then
    /// the same constructors would, norms at PyTorch's initial state (no random draws), PReLU's
    /// one weight 0.25.
    pub fn build(&self, widths: &[usize], seed: u64) -> Result<Mlp> {
        self.check_widths(widths)?;
        let mut out = widths[1..].iter();
        let mut b = Mlp::builder(widths[0]).seed(seed);
        for t in &self.tokens {
            b = match *t {
                Token::Linear => b.layer(*out.next().expect("counted above"), Activation::Identity),
                Token::BatchNorm1d { eps } => b.batchnorm1d_eps(eps),
                Token::LayerNorm { eps } => b.layernorm_eps(eps),
                Token::Dropout(p) => b.module(Module::Dropout(p)),
                Token::Flatten => b.module(Module::Flatten),
                Token::Identity => b.module(Module::Identity),
                Token::PRelu => b.module(Module::PRelu(crate::model::PRelu::new(vec![0.25])?)),
                Token::Activation(a) => b.module(Module::Activation(a)),
                Token::Function(a) => b.module(Module::Function(a)),
            };
        }
        b.build()
    }

    /// Checks that `widths` gives the input and one output width per Linear module.
    fn check_widths(&self, widths: &[usize]) -> Result<()> {
        let linears = self.tokens.iter().filter(|t| **t == Token::Linear).count();
        if widths.len() != linears + 1 {
            return Err(Error::invalid(format!(
                "--layers gives {} width(s) after the input but the architecture has {linears} \
                 linear module(s)",
                widths.len().saturating_sub(1)
            )));
        }
        Ok(())
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
        self.check_widths(widths)?;
        let mut w = widths[0] as u64;
        let mut next = widths[1..].iter();
        let mut rows = Vec::new();
        // Counts are exact or refused: a layer of more than u64::MAX parameters is not a model.
        let too_many = |i: usize| {
            Error::invalid(format!(
                "module {} would have more than {} parameters",
                i + 1,
                u64::MAX
            ))
        };
        for (i, t) in self.tokens.iter().enumerate() {
            let (class, params) = match t {
                Token::Linear => {
                    let out = *next.next().expect("counted above") as u64;
                    let params = (w.checked_add(1))
                        .and_then(|w1| w1.checked_mul(out))
                        .ok_or_else(|| too_many(i))?;
                    w = out;
                    ("Linear".to_string(), params)
                }
                Token::BatchNorm1d { .. } => (
                    "BatchNorm1d".into(),
                    w.checked_mul(2).ok_or_else(|| too_many(i))?,
                ),
                Token::LayerNorm { .. } => (
                    "LayerNorm".into(),
                    w.checked_mul(2).ok_or_else(|| too_many(i))?,
                ),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_are_exact_or_refused() {
        let arch: Arch = "linear,layernorm,linear".parse().unwrap();
        // (2³² − 1 + 1) · 2³¹ = 2⁶³ fits; the LayerNorm's 2 · 2³¹ and the last Linear's too.
        let rows = arch.summary_rows(&[(1 << 32) - 1, 1 << 31, 3]).unwrap();
        assert_eq!(rows[0].params, 1 << 63);
        // u64::MAX + 1 inputs would wrap to 0 parameters, 2⁶⁴ to u64::MAX: refused instead.
        for widths in [
            [usize::MAX, 2, 3],
            [1 << 32, 1 << 32, 3],
            [1, usize::MAX, 3],
        ] {
            let e = arch.summary_rows(&widths).unwrap_err().to_string();
            assert!(e.contains("would have more than"), "{widths:?}: {e}");
        }
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
