//! One module built from its group of tensors, every name and shape checked.

use crate::error::escape;
use crate::model::arch::Token;
use crate::model::linear::Linear;
use crate::model::module::{BatchNorm1d, LayerNorm, Module, PRelu};

use super::Tensors;
use super::keys::{Group, params_of, quote};

/// A tensor's shape and values.
type ShapedValues = (Vec<usize>, Vec<f32>);

/// Builds one module from its group of tensors, checking names and shapes.
pub(super) fn bind_module(
    t: Token,
    name: &str,
    group: &Group,
    tensors: &dyn Tensors,
) -> std::result::Result<Module, String> {
    let allowed = params_of(t);
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
            let mut bn = BatchNorm1d::new(mean, var, vector("weight", c)?, vector("bias", c)?, eps)
                .map_err(|e| e.to_string())?;
            // Training steps taken so far, where the file keeps them (PyTorch saves them).
            if let Some(n) = group
                .get("num_batches_tracked")
                .and_then(|k| tensors.count(k))
            {
                bn.set_num_batches_tracked(n);
            }
            Ok(Module::BatchNorm1d(bn))
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

/// The width a module with tensors fixes (its features), if any.
pub(super) fn features(m: &Module) -> Option<usize> {
    match m {
        Module::BatchNorm1d(b) => Some(b.features()),
        Module::LayerNorm(l) => Some(l.features()),
        Module::PRelu(p) if p.weight().len() > 1 => Some(p.weight().len()),
        _ => None,
    }
}
