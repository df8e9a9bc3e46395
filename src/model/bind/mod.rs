//! Binding a state_dict's tensors to an [`Arch`]: which module name's tensors each module that
//! owns tensors takes (by the names given, or in the natural order of the names in the file),
//! after stripping the `_orig_mod.` (torch.compile) and `module.` (DataParallel) prefixes that
//! wrap every key; every shape checked, every key used, each message naming the keys.

mod keys;
mod module;
mod search;

pub use keys::natural_cmp;

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result, escape};
use crate::model::Mlp;
use crate::model::arch::{Arch, Token};
use crate::model::module::{LayerNorm, Module};
use keys::{Group, describe, group_keys, params_of, quote, strip_wrappers};
use module::{bind_module, features};
use search::{Entry, MAX_STEPS, Mode, Sig, search};

/// The most fits of one order kept while looking for the one at its own indices.
const MAX_FITS: usize = 64;

/// The most candidate orders an error lists.
const MAX_LISTED: usize = 4;

/// The error with `suffix` added to its message.
fn with_suffix(e: Error, suffix: &str) -> Error {
    match e {
        Error::InvalidArgument(m) if !suffix.is_empty() => Error::invalid(format!("{m}{suffix}")),
        e => e,
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
    /// `key` as one int64 exactly (BatchNorm's `num_batches_tracked`); `None` where it is
    /// absent or not a single int64 (the default, for readers without integers).
    fn count(&self, key: &str) -> Option<i64> {
        let _ = key;
        None
    }
}

impl Arch {
    /// The model: this architecture with its tensors from `tensors`, each module that owns
    /// tensors taking those of one module name, by `names` or in the natural order of the names
    /// in the file. Every tensor must be used; `num_batches_tracked` is ignored. A `layernorm`
    /// without `elementwise_affine` owns no tensors: when the file has fewer names than modules
    /// with tensors, the choices of which LayerNorms are bare are searched and the one that fits
    /// is taken (an nn.Sequential's indices settle a tie; otherwise a tie is an error, and `-`
    /// in `names` marks a bare LayerNorm). Without `names`, when the natural order fits no way
    /// but exactly one order of the names fits the modules' kinds and shapes, that order is used
    /// and [`Mlp::diagnostics`] says so; when several do, the error lists them. The search is
    /// bounded (a few million shape comparisons; only the chosen model is built).
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
        // Which LayerNorms own no tensors (a PReLU's or a LayerNorm's 1-D weight of the same
        // width would otherwise be taken by the wrong module), found by a bounded search on
        // shapes; only the model chosen is built.
        let mut names_by_id: Vec<&String> = groups.keys().collect();
        names_by_id.sort_by(|a, b| natural_cmp(a, b));
        let ids: BTreeMap<&str, usize> = (names_by_id.iter().enumerate())
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let sigs: Vec<Sig> = (names_by_id.iter())
            .map(|n| Sig::of(&groups[n.as_str()], tensors))
            .collect();
        let kinds: Vec<Token> = self
            .tokens()
            .iter()
            .copied()
            .filter(|t| t.has_tensors())
            .collect();
        let fixed: Vec<Entry> = order
            .iter()
            .map(|n| match n {
                Named::Module(n) => Entry::Group(ids[n.as_str()]),
                Named::Bare => Entry::Bare,
            })
            .collect();
        // The positions (token indices) of the bare LayerNorms of a fit, and its order of names.
        let positions: Vec<usize> = (self.tokens().iter().enumerate())
            .filter(|(_, t)| t.has_tensors())
            .map(|(i, _)| i)
            .collect();
        let bare_of = |fit: &[Entry]| -> Vec<usize> {
            fit.iter()
                .zip(&positions)
                .filter(|(e, _)| **e == Entry::Bare)
                .map(|(_, &i)| i)
                .collect()
        };
        let order_of = |fit: &[Entry]| -> Vec<Named> {
            fit.iter()
                .filter_map(|e| match e {
                    Entry::Group(g) => Some(Named::Module(names_by_id[*g].clone())),
                    Entry::Bare => None,
                })
                .collect()
        };
        let by_name = if names.is_some() {
            String::new()
        } else {
            format!(
                " (the modules with tensors were taken in the natural order of their names: {}; \
                 if the forward order differs, give it with --names)",
                quote(order.iter().map(Named::as_str))
            )
        };
        let found = search(&kinds, &sigs, Mode::Fixed(&fixed), spare, MAX_FITS);
        // An nn.Sequential's keys say where each module is: module `k`'s tensors are `k.weight`
        // (or `net.k.weight`). Where several choices fit, the one that puts every numbered name
        // at its own position is the file's.
        let mut fits = found.fits;
        if fits.len() > 1 {
            let own: Vec<usize> = (0..fits.len())
                .filter(|&k| self.names_at_own_index(&order, &bare_of(&fits[k])))
                .collect();
            if let [k] = own[..] {
                fits = vec![fits.swap_remove(k)];
            }
        }
        match fits.len() {
            1 => {
                return self
                    .bind_with(tensors, &groups, &order, &bare_of(&fits[0]))
                    .map_err(|e| with_suffix(e, &by_name));
            }
            0 => {}
            _ => {
                let which = |b: &[usize]| {
                    b.iter()
                        .map(|i| format!("module {i}"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                };
                return Err(err(format!(
                    "ambiguous: the file's tensors fit '{self}' with {} without tensors \
                     (elementwise_affine=False) and also with {}; give --names with '-' for \
                     each LayerNorm that has no tensors (e.g. fc1,-,norm2,fc2)",
                    which(&bare_of(&fits[0])),
                    which(&bare_of(&fits[1]))
                )));
            }
        }
        // Nothing fits the order: the greedy choice of bare LayerNorms (one is bare unless the
        // next tensors look like its own) says why, and is taken should its real build succeed
        // where the shapes alone did not.
        let greedy = self.greedy_bare(tensors, &groups, &order, spare);
        let why = match self.bind_with(tensors, &groups, &order, &greedy) {
            Ok(m) => return Ok(m),
            Err(e) if found.exhausted => err(format!(
                "the file has too many ways to place its LayerNorms without tensors to try them \
                 all ({MAX_STEPS} steps); give --names with '-' for each LayerNorm that has no \
                 tensors (e.g. fc1,-,norm2,fc2). The first way tried fails: {}",
                e.to_string().trim_start_matches("invalid argument: ")
            )),
            Err(e) => with_suffix(e, &by_name),
        };
        if names.is_some() || found.exhausted {
            return Err(why);
        }
        // The natural order does not fit: is there exactly one order of the names whose kinds
        // and shapes fit?
        let free = search(&kinds, &sigs, Mode::Free, spare, MAX_LISTED + 1);
        let shown = |fit: &[Entry]| {
            let names: Vec<String> = fit
                .iter()
                .map(|e| match e {
                    Entry::Group(g) => escape(names_by_id[*g]).into_owned(),
                    Entry::Bare => BARE.to_string(),
                })
                .collect();
            format!("--names {}", names.join(","))
        };
        match (free.fits.len(), free.exhausted) {
            (0, false) => Err(why),
            (1, false) => {
                let fit = &free.fits[0];
                let mut m = self.bind_with(tensors, &groups, &order_of(fit), &bare_of(fit))?;
                m.add_diagnostic(format!(
                    "the module names in their natural order ({}) do not fit '{self}'; the one \
                     order whose tensors' kinds and shapes fit was used: {}",
                    quote(order.iter().map(Named::as_str)),
                    shown(fit)
                ));
                Ok(m)
            }
            (n, exhausted) => {
                let listed: Vec<String> = free
                    .fits
                    .iter()
                    .take(MAX_LISTED)
                    .map(|f| shown(f))
                    .collect();
                let more = if n > MAX_LISTED || exhausted {
                    " and maybe more"
                } else {
                    ""
                };
                Err(err(format!(
                    "the module names in their natural order ({}) do not fit '{self}', and \
                     {} orders fit the tensors' kinds and shapes: {}{more}; give the forward \
                     order with --names",
                    quote(order.iter().map(Named::as_str)),
                    if n > 1 { "several" } else { "possibly several" },
                    listed.join("; ")
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
    /// not a LayerNorm's of its width.
    fn greedy_bare(
        &self,
        tensors: &dyn Tensors,
        groups: &BTreeMap<String, Group>,
        order: &[Named],
        mut spare: usize,
    ) -> Vec<usize> {
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
        bare
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
