//! PyTorch `state_dict`s in the safetensors format, plain or self-describing.
//!
//! A state_dict holds tensors, not the architecture: which activations, norms and dropout run
//! between them, in which order. A **self-describing** file says it in its `__metadata__`
//! (`"wgpu_mlp.arch": "linear,relu,linear,softmax"`, see [`Arch`]; optionally
//! `"wgpu_mlp.names"`), which `safetensors.torch.load_file` ignores; every file this crate
//! writes has it. For a plain file the caller gives the [`Arch`] (`--arch`), or the activations
//! after each Linear layer (`--act`); without either, loading is refused rather than guessed.
//!
//! Tensors may be F32, F16, BF16 or F64 (converted to f32 as PyTorch's `.float()` does); any
//! other dtype, a shape that does not fit, a key that is not a module parameter or a damaged file
//! is an error naming the problem.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView, View};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::model::arch::{ARCH_KEY, Arch, NAMES_KEY};
use crate::model::{Linear, Mlp, Module};
use crate::model::{Tensors, natural_cmp};

use super::atomic::write_atomic;

/// Reads a model. `arch`: the architecture of a plain state_dict (`None`: the file's own
/// `wgpu_mlp.arch` metadata, an error if it has none). `names`: the module names of the modules
/// that own tensors, in forward order (`None`: the file's `wgpu_mlp.names`, else the natural
/// order of the names in the file).
pub fn load(path: impl AsRef<Path>, arch: Option<&Arch>, names: Option<&[String]>) -> Result<Mlp> {
    let path = path.as_ref();
    from_bytes(
        &super::read_file(path)?,
        &path.display().to_string(),
        arch,
        names,
    )
}

/// [`load`] on the bytes of a file; `source` names it in error messages.
pub fn from_bytes(
    bytes: &[u8],
    source: &str,
    arch: Option<&Arch>,
    names: Option<&[String]>,
) -> Result<Mlp> {
    let st = deserialize(bytes, source)?;
    let dict = StateDict::new(&st);
    dict.check_dtypes().map_err(|m| Error::format(source, m))?;
    let err = |e: Error| {
        Error::format(
            source,
            e.to_string().trim_start_matches("invalid argument: "),
        )
    };
    let (own_arch, own_names) = metadata(bytes, source)?;
    let arch = match (arch, &own_arch) {
        (Some(a), _) => a,
        (None, Some(a)) => a,
        (None, None) => return Err(Error::format(source, no_arch_message(&dict))),
    };
    let names = names.or(own_names.as_deref());
    arch.bind(&dict, names).map_err(err)
}

/// The architecture and module names a self-describing file carries, if any.
pub fn metadata(bytes: &[u8], source: &str) -> Result<(Option<Arch>, Option<Vec<String>>)> {
    let Ok((_, meta)) = SafeTensors::read_metadata(bytes) else {
        return Ok((None, None));
    };
    let Some(map) = meta.metadata() else {
        return Ok((None, None));
    };
    let arch = map
        .get(ARCH_KEY)
        .map(|s| {
            s.parse::<Arch>().map_err(|e| {
                Error::format(source, format!("its {ARCH_KEY} metadata is not valid: {e}"))
            })
        })
        .transpose()?;
    let names = map
        .get(NAMES_KEY)
        .map(|s| s.split(',').map(|n| n.trim().to_string()).collect());
    Ok((arch, names))
}

/// Why a plain state_dict cannot load on its own, and what to pass.
fn no_arch_message(dict: &StateDict<'_>) -> String {
    let mut keys = dict.keys();
    keys.sort_by(|a, b| natural_cmp(a, b));
    let shown: Vec<String> = keys
        .iter()
        .take(8)
        .map(|k| {
            format!(
                "{} {:?}",
                crate::error::escape(k),
                dict.shape(k).unwrap_or_default()
            )
        })
        .collect();
    format!(
        "this state_dict does not say its architecture (no {ARCH_KEY} metadata): which \
         activations, norms and dropout run between its tensors ({}{}) is not in the file. Pass \
         --arch with the modules in forward order (e.g. --arch linear,relu,linear,softmax; see \
         `wgpu-mlp infer --help`), or --act with one activation per Linear layer, or save the \
         file with metadata={{\"{ARCH_KEY}\": \"...\"}}",
        shown.join(", "),
        if keys.len() > 8 { ", …" } else { "" }
    )
}

/// Reads the Linear layers of a state_dict whose modules are all Linear layers, in order
/// (`names`, or the natural order of the module names).
pub fn load_layers(path: impl AsRef<Path>, names: Option<&[String]>) -> Result<Vec<Linear>> {
    let path = path.as_ref();
    layers_from_bytes(&super::read_file(path)?, &path.display().to_string(), names)
}

/// [`load_layers`] on the bytes of a file; `source` names it in error messages.
pub fn layers_from_bytes(
    bytes: &[u8],
    source: &str,
    names: Option<&[String]>,
) -> Result<Vec<Linear>> {
    let st = deserialize(bytes, source)?;
    let dict = StateDict::new(&st);
    let modules = names
        .map_or_else(|| module_count(&dict), <[String]>::len)
        .max(1);
    let arch = Arch::from_activations(&vec![Activation::Identity; modules]);
    let model = arch.bind(&dict, names).map_err(|e| {
        Error::format(
            source,
            e.to_string().trim_start_matches("invalid argument: "),
        )
    })?;
    Ok(model.linears().cloned().collect())
}

/// How many module names the file's keys have.
fn module_count(dict: &StateDict<'_>) -> usize {
    let mut names: Vec<String> = dict
        .keys()
        .iter()
        .map(|k| k.rsplit_once('.').map_or("", |p| p.0).to_string())
        .collect();
    names.sort();
    names.dedup();
    names.len()
}

/// Reads a model: a plain state_dict's Linear layers, each followed by the matching entry of
/// `activations` (the `--act` shorthand). There must be exactly one activation per Linear layer.
pub fn load_model(
    path: impl AsRef<Path>,
    activations: &[Activation],
    names: Option<&[String]>,
) -> Result<Mlp> {
    let path = path.as_ref();
    model_from_bytes(
        &super::read_file(path)?,
        &path.display().to_string(),
        activations,
        names,
    )
}

/// [`load_model`] on the bytes of a file; `source` names it in error messages.
pub fn model_from_bytes(
    bytes: &[u8],
    source: &str,
    activations: &[Activation],
    names: Option<&[String]>,
) -> Result<Mlp> {
    let st = deserialize(bytes, source)?;
    let dict = StateDict::new(&st);
    // What is wrong with the file itself comes before what does not fit the arguments.
    dict.check_dtypes().map_err(|m| Error::format(source, m))?;
    if let Some(names) = names
        && names.len() != activations.len()
    {
        return Err(Error::invalid(format!(
            "{source}: {} module name(s) given ({}) for {} activation(s); give one name per \
             Linear layer",
            names.len(),
            crate::escape(&names.join(",")),
            activations.len()
        )));
    }
    let layers = module_count(&dict);
    if names.is_none() && layers != activations.len() {
        return Err(Error::invalid(format!(
            "{source}: {} activation(s) given for {layers} Linear layer(s); give one per layer \
             (identity for none)",
            activations.len()
        )));
    }
    let arch = Arch::from_activations(activations);
    from_bytes(bytes, source, Some(&arch), names)
}

/// Writes `model` as the state_dict of the equivalent `nn.Sequential` (f32, little endian), with
/// its architecture in the metadata, atomically. See [`model_to_bytes`].
pub fn save_model(path: impl AsRef<Path>, model: &Mlp) -> Result<()> {
    write_atomic(path.as_ref(), &model_to_bytes(model)?)
}

/// The bytes [`save_model`] writes: each module's tensors under its index in the equivalent
/// `nn.Sequential` (functions take no index), and `__metadata__` with `"format": "pt"` and the
/// architecture (`wgpu_mlp.arch`), so the file loads with no flags here and with
/// `safetensors.torch.load_file` in Python.
pub fn model_to_bytes(model: &Mlp) -> Result<Vec<u8>> {
    let arch = Arch::of(model)?;
    let mut tensors: Vec<(String, F32Tensor)> = Vec::new();
    let mut index = 0;
    for m in model.modules() {
        let mut put = |param: &str, values: &[f32], shape: Vec<usize>| {
            tensors.push((format!("{index}.{param}"), F32Tensor::new(shape, values)));
        };
        match m {
            Module::Linear(lin) => {
                put(
                    "weight",
                    lin.weight(),
                    vec![lin.out_features(), lin.in_features()],
                );
                if let Some(b) = lin.bias() {
                    put("bias", b, vec![lin.out_features()]);
                }
            }
            Module::BatchNorm1d(bn) => {
                let c = vec![bn.features()];
                if let Some(w) = bn.weight() {
                    put("weight", w, c.clone());
                }
                if let Some(b) = bn.bias() {
                    put("bias", b, c.clone());
                }
                put("running_mean", bn.running_mean(), c.clone());
                put("running_var", bn.running_var(), c);
            }
            Module::LayerNorm(ln) => {
                let c = vec![ln.features()];
                if let Some(w) = ln.weight() {
                    put("weight", w, c.clone());
                }
                if let Some(b) = ln.bias() {
                    put("bias", b, c);
                }
            }
            Module::PRelu(p) => put("weight", p.weight(), vec![p.weight().len()]),
            _ => {}
        }
        if m.class().is_some() || matches!(m, Module::Activation(_)) {
            index += 1;
        }
    }
    let plain = ::safetensors::serialize(tensors, None)
        .map_err(|e| Error::invalid(format!("cannot serialize the model: {e}")))?;
    with_metadata(&plain, &[("format", "pt"), (ARCH_KEY, &arch.to_string())])
}

/// `bytes` (a safetensors file without metadata) with `__metadata__` added to its header, keys
/// in sorted order: the same model always gives the same bytes (the safetensors crate writes
/// metadata in a hash map's order).
fn with_metadata(bytes: &[u8], metadata: &[(&str, &str)]) -> Result<Vec<u8>> {
    let bad = |e: String| Error::invalid(format!("cannot serialize the model: {e}"));
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
        .ok_or_else(|| bad("no header".into()))?;
    let header = bytes
        .get(8..8 + n)
        .ok_or_else(|| bad("short header".into()))?;
    let mut json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| bad(e.to_string()))?;
    let meta: serde_json::Map<String, serde_json::Value> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    // Sorted keys, the metadata first.
    let mut keys: Vec<String> = json.keys().cloned().collect();
    keys.sort();
    let mut sorted = serde_json::Map::new();
    sorted.insert("__metadata__".into(), serde_json::Value::Object(meta));
    for k in keys {
        if let Some(v) = json.remove(&k) {
            sorted.insert(k, v);
        }
    }
    let mut text = serde_json::to_string(&serde_json::Value::Object(sorted))
        .map_err(|e| bad(e.to_string()))?;
    // The data section starts 8-byte aligned, as the safetensors crate pads it.
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// The index of each Linear layer inside the equivalent `nn.Sequential`, given the activation after
/// each layer: a Linear and its activation module take consecutive indices, identity takes none.
/// `[Relu, Relu, Softmax]` gives `[0, 2, 4]`; `[Identity, Identity]` gives `[0, 1]`.
pub fn module_indices(activations: &[Activation]) -> Vec<usize> {
    let mut next = 0;
    activations
        .iter()
        .map(|a| {
            let index = next;
            next += 1 + usize::from(a.module_name().is_some());
            index
        })
        .collect()
}

/// A parsed file's tensors, for [`Arch::bind`].
struct StateDict<'a> {
    tensors: HashMap<String, TensorView<'a>>,
}

impl<'a> StateDict<'a> {
    fn new(st: &SafeTensors<'a>) -> Self {
        StateDict {
            tensors: st.tensors().into_iter().collect(),
        }
    }
}

impl StateDict<'_> {
    /// The first tensor of a dtype this crate does not read, if any. BatchNorm's
    /// `num_batches_tracked` (an I64 counter used only in training) is ignored.
    fn check_dtypes(&self) -> std::result::Result<(), String> {
        let mut keys: Vec<&String> = self
            .tensors
            .keys()
            .filter(|k| !k.ends_with("num_batches_tracked"))
            .collect();
        keys.sort();
        for k in keys {
            let t = &self.tensors[k];
            if !matches!(
                t.dtype(),
                Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64
            ) {
                return Err(format!(
                    "'{}' has dtype {}; supported dtypes are F32, F16, BF16 and F64",
                    crate::escape(k),
                    t.dtype()
                ));
            }
        }
        Ok(())
    }
}

impl Tensors for StateDict<'_> {
    fn keys(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.tensors.get(key).map(|t| t.shape().to_vec())
    }

    fn values(&self, key: &str) -> std::result::Result<Vec<f32>, String> {
        match self.tensors.get(key) {
            Some(t) => to_f32(key, t),
            None => Err(format!("no tensor '{key}'")),
        }
    }
}

/// A little-endian f32 tensor for `safetensors::serialize`.
struct F32Tensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl F32Tensor {
    fn new(shape: Vec<usize>, values: &[f32]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        F32Tensor { shape, bytes }
    }
}

impl View for F32Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Parses and validates the file (header, offsets) with the safetensors crate, with messages that
/// say what is wrong.
fn deserialize<'a>(bytes: &'a [u8], source: &str) -> Result<SafeTensors<'a>> {
    let err = |msg: String| Error::format(source, msg);
    let Some(len_bytes) = bytes.get(..8) else {
        return Err(err(format!(
            "truncated safetensors file: {} bytes, too short for the 8-byte header length",
            bytes.len()
        )));
    };
    let mut n = [0u8; 8];
    n.copy_from_slice(len_bytes);
    let n = u64::from_le_bytes(n);
    let available = (bytes.len() - 8) as u64;
    if let Some(kind) =
        torch_checkpoint(bytes).filter(|_| n > available || bytes.get(8) != Some(&b'{'))
    {
        return Err(err(format!(
            "this is a PyTorch checkpoint ({kind}, as torch.save writes), not a safetensors \
             file; convert it with: python -c \"import torch; from safetensors.torch import \
             save_file; sd = torch.load('{source}', map_location='cpu'); save_file(sd, \
             'model.safetensors')\" (if the checkpoint holds a whole module rather than a \
             state_dict, save sd.state_dict(); if it wraps one in a dict, save the dict's \
             state_dict entry; load with weights_only=False only if you trust the file)",
        )));
    }
    // The safetensors crate (through serde_json) silently keeps the last of two entries with the
    // same name, so a file could hold two different tensors under one key and we would load
    // whichever came last. Refuse it, before the crate parses the header: with different offsets
    // it would report the offsets of the entry it kept rather than the real problem. (The scan
    // needs no valid JSON; the crate checks that next.)
    if let Some(header) = usize::try_from(n)
        .ok()
        .filter(|&n| n as u64 <= available)
        .and_then(|n| bytes.get(8..8 + n))
        .and_then(|h| std::str::from_utf8(h).ok())
    {
        json_keys::check_unique(header).map_err(err)?;
    }
    if n > available {
        return Err(err(format!(
            "header length {n} runs past the end of the file ({} bytes); the file is truncated \
             or not a safetensors file",
            bytes.len()
        )));
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        err(match e {
            SafeTensorError::InvalidHeader(_) => "the header is not valid UTF-8".into(),
            SafeTensorError::InvalidHeaderDeserialization(e) | SafeTensorError::JsonError(e) => {
                format!("invalid header: {e}")
            }
            SafeTensorError::HeaderTooLarge => format!("header length {n} is too large"),
            SafeTensorError::HeaderTooSmall | SafeTensorError::InvalidHeaderLength => {
                format!("invalid header length {n}")
            }
            SafeTensorError::InvalidOffset(name) => format!(
                "tensor '{name}' has invalid data_offsets (they must be in order, contiguous, \
                 start at 0 and lie inside the file)"
            ),
            SafeTensorError::TensorInvalidInfo => {
                "a tensor's data_offsets do not match its shape and dtype".into()
            }
            SafeTensorError::MetadataIncompleteBuffer => format!(
                "the tensors' data_offsets do not cover the data section ({} bytes) exactly: \
                 offsets past the end of the file, or trailing bytes",
                available - n
            ),
            SafeTensorError::ValidationOverflow => "a tensor's shape overflows".into(),
            other => format!("invalid safetensors file: {other}"),
        })
    })?;
    Ok(st)
}

/// `Some(description)` when `bytes` look like a file `torch.save` writes: a zip archive (the
/// format since PyTorch 1.6) or a bare pickle (protocol 2 to 5, the legacy format).
fn torch_checkpoint(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [b'P', b'K', 3, 4, ..] => Some("a zip archive"),
        [0x80, 2..=5, ..] => Some("a pickle"),
        _ => None,
    }
}

/// Finds duplicate keys in (valid) JSON: serde_json, like most JSON readers, keeps the last value
/// of a repeated key without a word.
mod json_keys {
    use std::collections::HashSet;

    /// serde_json refuses deeper nesting (128); this is only a backstop.
    const MAX_DEPTH: usize = 256;

    /// `Err` naming the first key that appears twice in one object, at any depth.
    pub(super) fn check_unique(json: &str) -> Result<(), String> {
        let mut s = Scanner {
            s: json.as_bytes(),
            i: 0,
        };
        s.value(None, 0)
    }

    struct Scanner<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Scanner<'_> {
        fn skip_ws(&mut self) {
            while self
                .s
                .get(self.i)
                .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            {
                self.i += 1;
            }
        }

        /// Skips one value; for objects, checks the keys. `parent` is the key holding this value.
        fn value(&mut self, parent: Option<&str>, depth: usize) -> Result<(), String> {
            if depth > MAX_DEPTH {
                return Ok(());
            }
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut seen = HashSet::new();
                    loop {
                        self.skip_ws();
                        match self.s.get(self.i) {
                            Some(b'}') | None => {
                                self.i += 1;
                                return Ok(());
                            }
                            Some(b',') => self.i += 1,
                            Some(b'"') => {
                                let key = self.string();
                                if !seen.insert(key.clone()) {
                                    let key: String = key.chars().take(80).collect();
                                    return Err(match parent {
                                        None => format!(
                                            "the header names tensor '{key}' twice; every key \
                                             must be unique"
                                        ),
                                        Some(p) => format!(
                                            "the header repeats key '{key}' inside '{}'; every \
                                             key must be unique",
                                            p.chars().take(80).collect::<String>()
                                        ),
                                    });
                                }
                                self.skip_ws();
                                if self.s.get(self.i) == Some(&b':') {
                                    self.i += 1;
                                }
                                self.value(Some(&key), depth + 1)?;
                            }
                            // Not valid JSON: the caller already parsed it, so this cannot happen.
                            Some(_) => return Ok(()),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    loop {
                        self.skip_ws();
                        match self.s.get(self.i) {
                            Some(b']') | None => {
                                self.i += 1;
                                return Ok(());
                            }
                            Some(b',') => self.i += 1,
                            Some(_) => {
                                let before = self.i;
                                self.value(parent, depth + 1)?;
                                if self.i == before {
                                    return Ok(());
                                }
                            }
                        }
                    }
                }
                Some(b'"') => {
                    self.string();
                    Ok(())
                }
                Some(_) => {
                    // A number or a literal: up to the next delimiter.
                    while self.s.get(self.i).is_some_and(|c| {
                        !matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                    }) {
                        self.i += 1;
                    }
                    Ok(())
                }
                None => Ok(()),
            }
        }

        /// Reads a string starting at the opening quote and returns it decoded, so that keys
        /// spelled with different escapes compare equal (as they do for serde_json).
        fn string(&mut self) -> String {
            self.i += 1;
            let mut out: Vec<u16> = Vec::new();
            let mut raw = String::new();
            let flush = |out: &mut Vec<u16>, raw: &mut String| {
                raw.push_str(&String::from_utf16_lossy(out));
                out.clear();
            };
            while let Some(&c) = self.s.get(self.i) {
                match c {
                    b'"' => {
                        self.i += 1;
                        break;
                    }
                    b'\\' => {
                        let e = self.s.get(self.i + 1).copied().unwrap_or(b'\\');
                        self.i += 2;
                        let unit = match e {
                            b'b' => 0x08,
                            b'f' => 0x0c,
                            b'n' => 0x0a,
                            b'r' => 0x0d,
                            b't' => 0x09,
                            b'u' => {
                                let hex = self.s.get(self.i..self.i + 4).unwrap_or(b"fffd");
                                self.i += 4;
                                std::str::from_utf8(hex)
                                    .ok()
                                    .and_then(|h| u16::from_str_radix(h, 16).ok())
                                    .unwrap_or(0xfffd)
                            }
                            other => u16::from(other),
                        };
                        out.push(unit);
                    }
                    _ => {
                        // Copy a run of plain bytes (valid UTF-8: the input is a &str).
                        flush(&mut out, &mut raw);
                        let start = self.i;
                        while self.s.get(self.i).is_some_and(|&b| b != b'"' && b != b'\\') {
                            self.i += 1;
                        }
                        raw.push_str(&String::from_utf8_lossy(&self.s[start..self.i]));
                    }
                }
            }
            flush(&mut out, &mut raw);
            raw
        }
    }
}

/// Converts a tensor of a supported float dtype to f32 values.
fn to_f32(key: &str, t: &TensorView<'_>) -> Result<Vec<f32>, String> {
    let d = t.data();
    Ok(match t.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b) as f32
            })
            .collect(),
        other => {
            return Err(format!(
                "'{key}' has dtype {other}; supported dtypes are F32, F16, BF16 and F64"
            ));
        }
    })
}
