//! The keys of a state_dict grouped by module name, and how names are compared, quoted and
//! described in messages.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::error::{Error, Result, escape};
use crate::model::arch::Token;

use super::Tensors;

/// The tensors a module of this kind may own.
pub(super) fn params_of(t: Token) -> &'static [&'static str] {
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

/// A module name as given, less a `_orig_mod.` / `module.` wrapper prefix the file's keys do
/// not have after stripping (names copied from the wrapped model's keys).
pub(super) fn strip_wrappers<'a>(name: &'a str, groups: &BTreeMap<String, Group>) -> &'a str {
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

/// The parameters of one module name: parameter name → full key.
pub(super) type Group = BTreeMap<String, String>;

/// Keys grouped by module name (everything before the last `.`), after removing the
/// `_orig_mod.` / `module.` prefixes that wrap every key.
pub(super) fn group_keys(tensors: &dyn Tensors) -> Result<BTreeMap<String, Group>> {
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

/// `'0' (weight [31, 13], bias [31]), '1' (…)`: the file's modules, for messages.
pub(super) fn describe(groups: &BTreeMap<String, Group>) -> String {
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
}
