//! PyTorch `.pth` / `.pt` files as `torch.save` writes them (the zip format, PyTorch ≥ 1.6):
//! a state_dict, or a dict holding one under `state_dict`, `model_state_dict` or `model` (a
//! training checkpoint; its other entries are ignored).
//!
//! The pickle inside is read by a reader of this crate's own (`src/io/pth/pickle.rs`) that
//! understands only what torch.save writes for tensors and refuses any other global by name, so
//! a file can never run code. A pickled whole module (`torch.save(model, …)`) and the legacy non-zip format are
//! refused with what to do instead. Tensors may be float32, float64, float16 or bfloat16
//! (converted to f32 as `.float()` does); integer tensors (BatchNorm's `num_batches_tracked`)
//! are read as such and never used as weights.
//!
//! Limits: the archive is read with the `zip` crate (stored entries only, as torch.save
//! writes them); `data.pkl` may be at most [`MAX_PICKLE_BYTES`], and every tensor must lie
//! inside its storage, whose entry must hold exactly the bytes the pickle declares.

mod allow;
mod archive;
mod pickle;

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result, escape};
use crate::model::Tensors;
use allow::Dtype;
use pickle::{Node, Pickle, TensorRef};

/// The largest `data.pkl` read (a state_dict's pickle takes about 100 bytes a tensor).
pub const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// Whether `bytes` start like a file `torch.save` writes: a zip archive, or a bare pickle (the
/// legacy format).
pub fn is_torch_save(bytes: &[u8]) -> bool {
    matches!(bytes, [b'P', b'K', 3, 4, ..] | [0x80, 2..=5, ..])
}

/// A state_dict read from a `.pth` file: its tensors by key, with their storages' bytes.
pub struct StateDict {
    tensors: HashMap<String, TensorRef>,
    storages: HashMap<String, Vec<u8>>,
}

impl std::fmt::Debug for StateDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.tensors.keys().collect();
        keys.sort();
        f.debug_struct("StateDict").field("keys", &keys).finish()
    }
}

impl StateDict {
    /// Reads the bytes of a `.pth` file; errors are [`Error::Format`] naming `source`.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self> {
        read(bytes).map_err(|m| Error::format(source, m))
    }

    /// Reads a `.pth` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_bytes(&super::read_file(path)?, &path.display().to_string())
    }

    /// The first tensor (by key) whose dtype is not a float one this crate reads, apart from
    /// integer `num_batches_tracked` counters.
    pub(crate) fn check_dtypes(&self) -> std::result::Result<(), String> {
        let mut keys: Vec<&String> = self.tensors.keys().collect();
        keys.sort();
        for k in keys {
            let t = &self.tensors[k];
            let float = matches!(t.dtype, Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16);
            if !float && !k.ends_with("num_batches_tracked") {
                return Err(format!(
                    "'{}' is a {} tensor; weights must be float32, float64, float16 or bfloat16",
                    escape(k),
                    t.dtype.name()
                ));
            }
        }
        Ok(())
    }
}

impl Tensors for StateDict {
    fn keys(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        let t = self.tensors.get(key)?;
        Some(t.size.iter().map(|&d| d as usize).collect())
    }

    fn count(&self, key: &str) -> Option<i64> {
        let t = self.tensors.get(key)?;
        if !matches!(t.dtype, Dtype::I64) || t.size.iter().product::<u64>() != 1 {
            return None;
        }
        let at = usize::try_from(t.offset).ok()?.checked_mul(8)?;
        let b = self.storages.get(&t.key)?.get(at..)?.get(..8)?;
        Some(i64::from_le_bytes(b.try_into().ok()?))
    }

    fn values(&self, key: &str) -> std::result::Result<Vec<f32>, String> {
        let t = self
            .tensors
            .get(key)
            .ok_or_else(|| format!("no tensor '{}'", escape(key)))?;
        let bytes = &self.storages[&t.key];
        let n: usize = t.size.iter().map(|&d| d as usize).product();
        let size = t.dtype.size();
        let mut out = Vec::with_capacity(n);
        let mut index = vec![0u64; t.size.len()];
        for _ in 0..n {
            let at = t.offset + index.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<u64>();
            let b = &bytes[at as usize * size..][..size];
            out.push(match t.dtype {
                Dtype::F32 => f32::from_le_bytes(b.try_into().expect("4 bytes")),
                Dtype::F64 => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
                Dtype::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
                Dtype::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
                other => {
                    return Err(format!(
                        "'{}' is a {} tensor, not float weights",
                        escape(key),
                        other.name()
                    ));
                }
            });
            // The next index, last axis fastest.
            for (i, &d) in index.iter_mut().zip(&t.size).rev() {
                *i += 1;
                if *i < d {
                    break;
                }
                *i = 0;
            }
        }
        Ok(out)
    }
}

fn read(bytes: &[u8]) -> std::result::Result<StateDict, String> {
    if let [0x80, 2..=5, ..] = bytes {
        return Err(
            "this is PyTorch's legacy (pre-1.6, non-zip) torch.save format, which is not read; \
             re-save it in a current PyTorch: torch.save(torch.load(path, weights_only=True), \
             'model.pth')"
                .into(),
        );
    }
    let mut zip = archive::Archive::open(bytes)?;
    let pkl = zip.read_entry(&format!("{}data.pkl", zip.prefix), MAX_PICKLE_BYTES)?;
    let Pickle { nodes, top } = pickle::read(&pkl).map_err(|e| format!("data.pkl: {e}"))?;
    let dict = state_dict(&nodes, top)?;
    let mut tensors = HashMap::new();
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for (key, t) in dict {
        if !storages.contains_key(&t.key) {
            let want = t.numel.checked_mul(t.dtype.size() as u64).ok_or_else(|| {
                format!(
                    "'{}': its storage of {} elements overflows",
                    escape(&key),
                    t.numel
                )
            })?;
            let name = format!("{}data/{}", zip.prefix, t.key);
            let b = zip.read_entry(&name, want)?;
            if b.len() as u64 != want {
                return Err(format!(
                    "'{}': its storage '{}' should hold {} {} values ({want} bytes) but has {} \
                     bytes",
                    escape(&key),
                    escape(&name),
                    t.numel,
                    t.dtype.name(),
                    b.len()
                ));
            }
            storages.insert(t.key.clone(), b);
        }
        let bytes = &storages[&t.key];
        check_view(&key, &t, bytes.len() as u64)?;
        // A pickled dict keeps the last of two equal keys; two tensors under one name are refused.
        if tensors.contains_key(&key) {
            return Err(format!("the state_dict holds '{}' twice", escape(&key)));
        }
        tensors.insert(key, t);
    }
    Ok(StateDict { tensors, storages })
}

/// Every element of the view lies inside its storage.
fn check_view(key: &str, t: &TensorRef, storage_bytes: u64) -> std::result::Result<(), String> {
    let numel = storage_bytes / t.dtype.size() as u64;
    let elements = t.size.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    if elements.is_none_or(|n| n > crate::model::Mlp::MAX_TENSOR_ELEMENTS as u64) {
        return Err(format!(
            "'{}' has shape {:?}, more than {} elements",
            escape(key),
            t.size,
            crate::model::Mlp::MAX_TENSOR_ELEMENTS
        ));
    }
    if elements == Some(0) {
        return Ok(());
    }
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |a, (&d, &s)| {
            (d - 1).checked_mul(s).and_then(|x| a.checked_add(x))
        });
    match last {
        Some(last) if last < numel => Ok(()),
        _ => Err(format!(
            "'{}' (shape {:?}, stride {:?}, offset {}) reaches past the end of its storage of {numel} \
             elements",
            escape(key),
            t.size,
            t.stride,
            t.offset
        )),
    }
}

/// The keys the tensors of a training checkpoint's model are kept under, in order of preference.
const WRAPPER_KEYS: [&str; 3] = ["state_dict", "model_state_dict", "model"];

/// The state_dict in the top value: it, or the entry of a checkpoint dict that holds it.
fn state_dict(nodes: &[Node], top: usize) -> std::result::Result<Vec<(String, TensorRef)>, String> {
    let Node::Dict(items) = &nodes[top] else {
        return Err(format!(
            "the file holds {}, not a state_dict (a dict of tensors)",
            kind(&nodes[top])
        ));
    };
    let key = |k: usize| match &nodes[k] {
        Node::Str(s) => Some(s.as_str()),
        _ => None,
    };
    if let Some(sd) = tensors_of(nodes, items) {
        return Ok(sd);
    }
    for wrapper in WRAPPER_KEYS {
        if let Some(&(_, v)) = items.iter().find(|(k, _)| key(*k) == Some(wrapper)) {
            return match &nodes[v] {
                Node::Dict(inner) => tensors_of(nodes, inner).ok_or_else(|| {
                    format!(
                        "its '{wrapper}' entry is a dict that holds something other than tensors \
                         under string keys"
                    )
                }),
                other => Err(format!(
                    "its '{wrapper}' entry is {}, not a state_dict",
                    kind(other)
                )),
            };
        }
    }
    let keys: Vec<String> = items
        .iter()
        .take(10)
        .map(|(k, _)| key(*k).map_or("a non-string key".into(), |s| format!("'{}'", escape(s))))
        .collect();
    Err(format!(
        "the file holds a dict that is not a state_dict (its values are not all tensors) and has \
         no 'state_dict', 'model_state_dict' or 'model' entry; its keys: {}",
        keys.join(", ")
    ))
}

/// `Some` when every key is a string and every value a tensor.
fn tensors_of(nodes: &[Node], items: &[(usize, usize)]) -> Option<Vec<(String, TensorRef)>> {
    if items.is_empty() {
        return None;
    }
    items
        .iter()
        .map(|&(k, v)| match (&nodes[k], &nodes[v]) {
            (Node::Str(k), Node::Tensor(t)) => Some((k.clone(), t.clone())),
            _ => None,
        })
        .collect()
}

/// What a value is, for messages.
fn kind(n: &Node) -> &'static str {
    match n {
        Node::None => "None",
        Node::Bool(_) => "a boolean",
        Node::Int(_) | Node::Float(_) => "a number",
        Node::Str(_) => "a string",
        Node::Bytes => "bytes",
        Node::Tuple(_) => "a tuple",
        Node::List(_) => "a list",
        Node::Dict(_) => "a dict",
        Node::Global(_) => "a class",
        Node::Storage(..) => "a storage",
        Node::Tensor(_) => "a single tensor",
    }
}
