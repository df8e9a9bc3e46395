//! Binding a state_dict's tensors to an [`Arch`]: which module name's tensors each module that
//! owns tensors takes (by the names given, or in the natural order of the names in the file),
//! after stripping the `_orig_mod.` (torch.compile) and `module.` (DataParallel) prefixes that
//! wrap every key; every shape checked, every key used, each message naming the keys.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result, escape};
use crate::model::Mlp;
use crate::model::arch::{Arch, Token};
use crate::model::linear::Linear;
use crate::model::module::{BatchNorm1d, LayerNorm, Module, PRelu};

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
    /// The model: this architecture with its tensors from `tensors`, each module that owns
    /// tensors taking those of one module name, by `names` or in the natural order of the names
    /// in the file. Every tensor must be used; `num_batches_tracked` is ignored. A `layernorm`
    /// without `elementwise_affine` owns no tensors: when the file has fewer names than modules
    /// with tensors, every choice of which LayerNorms are bare is tried and the one that fits is
    /// taken (an nn.Sequential's indices settle a tie; otherwise a tie is an error, and `-` in
    /// `names` marks a bare LayerNorm).
    pub fn bind(&self, tensors: &dyn Tensors, names: Option<&[String]>) -> Result<Mlp> {
        let err = |m: String| Error::invalid(m);
        let groups = group_keys(tensors)?;
        // Keys no module of this architecture has.
        let allowed: BTreeSet<&str> = self
            .tokens()
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
        let order: Vec<Named> = match names {
            Some(names) => {
                let strip = |n: &String| strip_wrappers(n, &groups).to_string();
                let names: Vec<String> = names.iter().map(strip).collect();
                let mut seen = BTreeSet::new();
                for n in names.iter().filter(|n| *n != BARE) {
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
                    .into_iter()
                    .map(|n| match n.as_str() {
                        BARE => Named::Bare,
                        _ => Named::Module(n),
                    })
                    .collect()
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
                all.into_iter().map(Named::Module).collect()
            }
        };
        let wanted = self.tensor_modules();
        let named = order
            .iter()
            .filter(|n| matches!(n, Named::Module(_)))
            .count();
        // LayerNorms that own no tensors make up the difference.
        let spare = wanted.saturating_sub(named);
        let optional = self
            .tokens()
            .iter()
            .filter(|t| matches!(t, Token::LayerNorm { .. }))
            .count();
        if named > wanted || spare > optional {
            return Err(err(format!(
                "the architecture '{self}' has {wanted} module(s) with tensors but the file has \
                 {}: {}",
                named,
                describe(&groups)
            )));
        }
        // Which LayerNorms own no tensors: every choice of `spare` of them is tried, and exactly
        // one may fit (a PReLU's or a LayerNorm's 1-D weight of the same width would otherwise
        // be taken by the wrong module). The first choice tried is the old greedy one (a
        // LayerNorm is bare unless the next tensors look like its own), whose error is the one
        // reported when no choice fits.
        let norms: Vec<usize> = (self.tokens().iter().enumerate())
            .filter(|(_, t)| matches!(t, Token::LayerNorm { .. }))
            .map(|(i, _)| i)
            .collect();
        let mut choices = choose(&norms, spare);
        if let Some(g) = self.greedy_bare(tensors, &groups, &order, spare) {
            choices.retain(|c| *c != g);
            choices.insert(0, g);
        }
        // Beyond this many choices (dozens of LayerNorms) only the greedy one is tried.
        const MAX_CHOICES: usize = 256;
        choices.truncate(MAX_CHOICES);
        let mut fits: Vec<(Vec<usize>, Mlp)> = Vec::new();
        let mut first_err = None;
        for bare in choices {
            match self.bind_with(tensors, &groups, &order, &bare) {
                Ok(m) => fits.push((bare, m)),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        // An nn.Sequential's keys say where each module is: module `k`'s tensors are `k.weight`
        // (or `net.k.weight`). Where several choices fit, the one that puts every numbered name at
        // its own position is the file's.
        if fits.len() > 1 {
            let at_own_index: Vec<bool> = fits
                .iter()
                .map(|(bare, _)| self.names_at_own_index(&order, bare))
                .collect();
            if at_own_index.iter().filter(|&&b| b).count() == 1 {
                let k = at_own_index.iter().position(|&b| b).expect("one");
                fits = vec![fits.swap_remove(k)];
            }
        }
        let by_name = if names.is_some() {
            String::new()
        } else {
            format!(
                " (the modules with tensors were taken in the natural order of their names: {}; \
                 if the forward order differs, give it with --names)",
                quote(order.iter().map(Named::as_str))
            )
        };
        match fits.len() {
            1 => Ok(fits.pop().map(|(_, m)| m).expect("one fit")),
            0 => Err(match first_err.expect("at least one choice") {
                Error::InvalidArgument(m) if !by_name.is_empty() => err(format!("{m}{by_name}")),
                e => e,
            }),
            _ => {
                let which = |b: &[usize]| {
                    b.iter()
                        .map(|i| format!("module {i}"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                };
                Err(err(format!(
                    "ambiguous: the file's tensors fit '{self}' with {} without tensors \
                     (elementwise_affine=False) and also with {}; give --names with '-' for \
                     each LayerNorm that has no tensors (e.g. fc1,-,norm2,fc2)",
                    which(&fits[0].0),
                    which(&fits[1].0)
                )))
            }
        }
    }

    /// Whether, with the LayerNorms at `bare` owning no tensors, every module name ends in the
    /// index of the module that takes it (`3` or `net.3` for module 3).
    fn names_at_own_index(&self, order: &[Named], bare: &[usize]) -> bool {
        let positions = (self.tokens().iter().enumerate())
            .filter(|(i, t)| !params_of(**t).is_empty() && !bare.contains(i))
            .map(|(i, _)| i);
        let names = order.iter().filter_map(|n| match n {
            Named::Module(n) => Some(n),
            Named::Bare => None,
        });
        positions.zip(names).all(|(i, n)| {
            n.rsplit('.')
                .next()
                .and_then(|last| last.parse::<usize>().ok())
                == Some(i)
        })
    }

    /// The LayerNorms the greedy rule leaves bare: one is bare when the next name's tensors are
    /// not a LayerNorm's of its width; `None` if the rule cannot be followed to the end.
    fn greedy_bare(
        &self,
        tensors: &dyn Tensors,
        groups: &BTreeMap<String, Group>,
        order: &[Named],
        mut spare: usize,
    ) -> Option<Vec<usize>> {
        let mut bare = Vec::new();
        let mut next = order.iter().peekable();
        let mut width: Option<usize> = None;
        for (i, t) in self.tokens().iter().enumerate() {
            match t {
                Token::LayerNorm { .. }
                    if spare > 0
                        && !next.peek().is_some_and(|n| match n {
                            Named::Bare => false,
                            Named::Module(n) => {
                                is_layernorm_of(&groups[n.as_str()], tensors, width)
                            }
                        }) =>
                {
                    spare -= 1;
                    bare.push(i);
                }
                _ if !params_of(*t).is_empty() => {
                    if let Some(Named::Module(n)) = next.next() {
                        let g = &groups[n.as_str()];
                        let shape = |p: &str| g.get(p).and_then(|k| tensors.shape(k));
                        width = match (t, shape("weight"), shape("running_mean")) {
                            (Token::Linear, Some(s), _) if s.len() == 2 => Some(s[0]),
                            (_, _, Some(s)) | (_, Some(s), _) if s.len() == 1 && s[0] > 1 => {
                                Some(s[0])
                            }
                            _ => width,
                        };
                    }
                }
                _ => {}
            }
        }
        Some(bare)
    }

    /// The model with the LayerNorms at `bare` owning no tensors and every other module that owns
    /// tensors taking the next name of `order`.
    fn bind_with(
        &self,
        tensors: &dyn Tensors,
        groups: &BTreeMap<String, Group>,
        order: &[Named],
        bare: &[usize],
    ) -> Result<Mlp> {
        let err = |m: String| Error::invalid(m);
        let mut modules = Vec::with_capacity(self.tokens().len());
        let mut next = order.iter().peekable();
        // (width, the key that made it) of the module before.
        let mut width: Option<(usize, String)> = None;
        for (i, t) in self.tokens().iter().enumerate() {
            // The key a module with tensors was bound from (for messages about widths).
            let mut bound: Option<String> = None;
            let m = match t {
                Token::Dropout(p) => Module::Dropout(*p),
                Token::Flatten => Module::Flatten,
                Token::Identity => Module::Identity,
                Token::Activation(a) => Module::Activation(*a),
                Token::Function(a) => Module::Function(*a),
                Token::LayerNorm { eps } if bare.contains(&i) => {
                    // A '-' in --names stands for exactly this.
                    if let Some(Named::Bare) = next.peek() {
                        next.next();
                    }
                    let Some((w, _)) = &width else {
                        return Err(err(format!(
                            "module {i} (layernorm) has no tensors and nothing before it says \
                             its width"
                        )));
                    };
                    Module::LayerNorm(LayerNorm::new(*w, None, None, *eps)?)
                }
                _ => {
                    let name = match next.next() {
                        Some(Named::Module(name)) => name,
                        Some(Named::Bare) => {
                            return Err(err(format!(
                                "--names gives '-' (no tensors) for module {i}, which needs \
                                 tensors: '-' is only for a LayerNorm without \
                                 elementwise_affine"
                            )));
                        }
                        None => {
                            return Err(err(format!(
                                "the architecture '{self}' has more modules with tensors than \
                                 the file: {}",
                                describe(groups)
                            )));
                        }
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

/// What `--names` writes for a LayerNorm without tensors (`elementwise_affine=False`).
const BARE: &str = "-";

/// One entry of the order in which modules with tensors take them.
#[derive(Debug, Clone, PartialEq)]
enum Named {
    /// The tensors of this module name.
    Module(String),
    /// `-` in `--names`: a LayerNorm with no tensors.
    Bare,
}

impl Named {
    fn as_str(&self) -> &str {
        match self {
            Named::Module(n) => n,
            Named::Bare => BARE,
        }
    }
}

/// Every choice of `k` items of `items`, in lexicographic order.
fn choose(items: &[usize], k: usize) -> Vec<Vec<usize>> {
    if k == 0 {
        return vec![Vec::new()];
    }
    let mut all = Vec::new();
    for (i, &first) in items.iter().enumerate() {
        if items.len() - i < k {
            break;
        }
        for mut rest in choose(&items[i + 1..], k - 1) {
            rest.insert(0, first);
            all.push(rest);
        }
    }
    all
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
fn is_layernorm_of(group: &Group, tensors: &dyn Tensors, width: Option<usize>) -> bool {
    let Some(w) = group.get("weight") else {
        return false;
    };
    let one_d = tensors
        .shape(w)
        .is_some_and(|s| s.len() == 1 && width.is_none_or(|n| s[0] == n));
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
}
