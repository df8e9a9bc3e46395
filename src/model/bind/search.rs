//! Which module names fit which modules, from their tensors' shapes alone: a depth-first
//! search over the modules that own tensors, in forward order, that tries for each one the
//! name in the order given (or any unused name) and, for a LayerNorm, owning no tensors at
//! all. Each name's shapes are read once into a [`Sig`], so a step costs a few comparisons.
//!
//! The search is bounded: it stops after [`MAX_STEPS`] steps or when it has found the number
//! of fits asked for, and it keeps only the current path (one frame per module) and the fits
//! found, never a model, so neither its time nor its memory grows with the number of
//! combinations a file can make.

use crate::model::arch::Token;

use super::Tensors;
use super::keys::Group;

/// The most steps one search takes (each a shape comparison): well under a second.
pub(super) const MAX_STEPS: usize = 2_000_000;

/// What a module name's tensors fit, from their shapes.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sig {
    /// A Linear's (in, out).
    linear: Option<(usize, usize)>,
    /// An affine LayerNorm's width.
    norm: Option<usize>,
    /// A PReLU's slope count.
    prelu: Option<usize>,
    /// A BatchNorm1d's width.
    batchnorm: Option<usize>,
}

impl Sig {
    /// The shapes of `group`'s tensors, and what each kind of module would make of them (as
    /// the module's own constructor checks them).
    pub(super) fn of(group: &Group, tensors: &dyn Tensors) -> Sig {
        let shape = |p: &str| group.get(p).and_then(|k| tensors.shape(k));
        let only = |allowed: &[&str]| group.keys().all(|p| allowed.contains(&p.as_str()));
        let vector = |p: &str| match shape(p).as_deref() {
            Some(&[c]) if c > 0 => Some(c),
            _ => None,
        };
        // An optional vector of width c: absent, or [c].
        let optional = |p: &str, c: usize| group.get(p).is_none() || vector(p) == Some(c);
        let plain = only(&["weight", "bias"]);
        let linear = match shape("weight").as_deref() {
            Some(&[out, inp]) if plain && optional("bias", out) => Some((inp, out)),
            _ => None,
        };
        let w = vector("weight");
        let norm = w.filter(|&c| plain && optional("bias", c));
        let prelu = w.filter(|_| plain);
        let batchnorm = vector("running_mean").filter(|&c| {
            only(&[
                "weight",
                "bias",
                "running_mean",
                "running_var",
                "num_batches_tracked",
            ]) && vector("running_var") == Some(c)
                && optional("weight", c)
                && optional("bias", c)
        });
        Sig {
            linear,
            norm,
            prelu,
            batchnorm,
        }
    }

    /// The width after a module of kind `t` built from these tensors, given the width before
    /// (`None`: nothing before fixed it); `None` if they do not fit.
    fn apply(&self, t: Token, width: Option<usize>) -> Option<Option<usize>> {
        let need = |c: usize| width.is_none_or(|w| w == c).then_some(Some(c));
        match t {
            Token::Linear => {
                let (inp, out) = self.linear?;
                width.is_none_or(|w| w == inp).then_some(Some(out))
            }
            Token::LayerNorm { .. } => need(self.norm?),
            Token::BatchNorm1d { .. } => need(self.batchnorm?),
            // One slope fits any width and fixes none.
            Token::PRelu => match self.prelu? {
                1 => Some(width),
                c => need(c),
            },
            _ => None,
        }
    }
}

/// What a module that owns tensors takes: a name's tensors, or none (a bare LayerNorm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Entry {
    /// The tensors of the name with this index.
    Group(usize),
    /// No tensors.
    Bare,
}

/// Where names come from.
pub(super) enum Mode<'a> {
    /// In this order (`Bare` entries mark LayerNorms without tensors, as `-` in `--names`).
    Fixed(&'a [Entry]),
    /// Any name not used yet.
    Free,
}

/// What a search found.
pub(super) struct Found {
    /// The fits, each one entry per module that owns tensors.
    pub fits: Vec<Vec<Entry>>,
    /// Whether the step budget ran out before the search was complete.
    pub exhausted: bool,
}

/// One module of the path: the width before it and the next option to try.
struct Frame {
    width: Option<usize>,
    cursor: usize,
    /// The position in the fixed order.
    k: usize,
    bare: usize,
    taken: Option<Entry>,
}

/// Searches the assignments of names to `kinds` (the modules that own tensors, in order) in
/// which exactly `spare` LayerNorms own no tensors and every module's shapes fit the width
/// before it; stops after `max_fits` fits or [`MAX_STEPS`] steps.
pub(super) fn search(
    kinds: &[Token],
    sigs: &[Sig],
    mode: Mode<'_>,
    spare: usize,
    max_fits: usize,
) -> Found {
    let mut found = Found {
        fits: Vec::new(),
        exhausted: false,
    };
    let mut used = vec![false; sigs.len()];
    let mut steps = 0usize;
    let mut path = vec![Frame {
        width: None,
        cursor: 0,
        k: 0,
        bare: 0,
        taken: None,
    }];
    let options = match mode {
        Mode::Fixed(_) => 2,
        Mode::Free => 1 + sigs.len(),
    };
    while let Some(d) = path.len().checked_sub(1) {
        if d == kinds.len() {
            if path[d].bare == spare {
                found
                    .fits
                    .push(path[..d].iter().filter_map(|f| f.taken).collect());
                if found.fits.len() >= max_fits {
                    break;
                }
            }
            path.pop();
            continue;
        }
        let f = &mut path[d];
        if let Some(Entry::Group(g)) = f.taken.take() {
            used[g] = false;
        }
        let mut next = None;
        while f.cursor < options {
            steps += 1;
            if steps > MAX_STEPS {
                found.exhausted = true;
                return found;
            }
            let c = f.cursor;
            f.cursor += 1;
            let at = match mode {
                Mode::Fixed(order) => order.get(f.k).copied(),
                Mode::Free => None,
            };
            if c == 0 {
                // No tensors: only a LayerNorm, and only after something that fixed the width.
                if matches!(kinds[d], Token::LayerNorm { .. })
                    && f.bare < spare
                    && f.width.is_some()
                {
                    let k = f.k + usize::from(at == Some(Entry::Bare));
                    next = Some((Entry::Bare, f.width, k));
                    break;
                }
                continue;
            }
            let g = match (&mode, at) {
                (Mode::Fixed(_), Some(Entry::Group(g))) => g,
                (Mode::Fixed(_), _) => continue,
                (Mode::Free, _) if used[c - 1] => continue,
                (Mode::Free, _) => c - 1,
            };
            if let Some(w) = sigs[g].apply(kinds[d], f.width) {
                next = Some((Entry::Group(g), w, f.k + 1));
                break;
            }
        }
        match next {
            None => {
                path.pop();
            }
            Some((e, width, k)) => {
                f.taken = Some(e);
                let bare = f.bare + usize::from(e == Entry::Bare);
                if let Entry::Group(g) = e {
                    used[g] = true;
                }
                path.push(Frame {
                    width,
                    cursor: 0,
                    k,
                    bare,
                    taken: None,
                });
            }
        }
    }
    found
}
