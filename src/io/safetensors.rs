//! PyTorch `state_dict`s in the safetensors format.
//!
//! An `nn.Sequential` of `Linear` layers and activation modules has keys `"<i>.weight"`
//! (`[out, in]`) and `"<i>.bias"` (`[out]`, absent for `bias=False`), where `<i>` is the module's
//! index in the Sequential; activation modules take indices too, so the Linear layers of
//! `Sequential(Linear, ReLU, Linear, ReLU, Linear, Softmax)` are 0, 2 and 4. Reading takes the
//! Linear layers in numeric order of `<i>` (so `10` comes after `2`); models with named modules
//! (`fc1.weight`, `fc2.weight`, …) load when the layer names are given in order. A file holding a
//! single `nn.Linear` (keys `weight` and `bias`) loads as one layer.
//!
//! Tensors may be F32, F16, BF16 or F64 (converted to f32 as PyTorch's `.float()` does); any
//! other dtype, a shape that does not fit, a key that is not a layer parameter or a damaged file
//! is an [`Error::Format`] naming the problem.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use ::safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView, View};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::layer::Linear;
use crate::model::{Layer, Mlp};

use super::atomic::write_atomic;

/// Reads the Linear layers of a state_dict file, in order.
///
/// `names` gives the module names of the layers, in order, for models with named modules
/// (`Some(&["fc1".into(), "fc2".into()])` reads `fc1.weight`, `fc1.bias`, `fc2.weight`, …); with
/// `None` the keys must be `"<i>.weight"` / `"<i>.bias"` and layers are taken in numeric order.
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
    let err = |msg: String| Error::format(source, msg);
    let st = deserialize(bytes, source)?;
    let tensors: HashMap<String, TensorView<'_>> = st.tensors().into_iter().collect();
    if tensors.is_empty() {
        return Err(err("the file holds no tensors".into()));
    }
    let keys = match names {
        Some(names) => keys_for_names(&tensors, names).map_err(err)?,
        None => keys_by_index(&tensors).map_err(err)?,
    };

    let mut layers: Vec<Linear> = Vec::with_capacity(keys.len());
    for (i, (wkey, bkey)) in keys.iter().enumerate() {
        let w = &tensors[wkey];
        let &[out, inp] = w.shape() else {
            return Err(err(format!(
                "'{wkey}' must be 2-D [out_features, in_features], got shape {:?}",
                w.shape()
            )));
        };
        if out == 0 || inp == 0 {
            return Err(err(format!(
                "'{wkey}' has shape {:?}; widths must be at least 1",
                w.shape()
            )));
        }
        let weight = to_f32(wkey, w).map_err(err)?;
        let bias = match bkey {
            Some(bkey) => {
                let b = &tensors[bkey];
                if b.shape() != [out] {
                    return Err(err(format!(
                        "'{bkey}' has shape {:?} but '{wkey}' has {out} outputs; the bias must be [{out}]",
                        b.shape()
                    )));
                }
                Some(to_f32(bkey, b).map_err(err)?)
            }
            None => None,
        };
        if let Some(prev) = layers.last()
            && prev.out_features() != inp
        {
            return Err(err(format!(
                "layer shapes do not chain: '{wkey}' is [{out}, {inp}] and expects {inp} inputs, \
                 but the previous layer '{}' produces {} outputs",
                keys[i - 1].0,
                prev.out_features()
            )));
        }
        layers.push(Linear::new(inp, out, weight, bias).map_err(|e| err(e.to_string()))?);
    }
    Ok(layers)
}

/// Reads a model: the Linear layers of a state_dict file (see [`load_layers`]), each followed by
/// the matching entry of `activations`. There must be exactly one activation per Linear layer.
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
    let layers = layers_from_bytes(bytes, source, names)?;
    if layers.len() != activations.len() {
        return Err(Error::invalid(format!(
            "{source}: {} activation(s) given for {} Linear layer(s); give one per layer \
             (identity for none)",
            activations.len(),
            layers.len()
        )));
    }
    Mlp::from_layers(
        layers
            .into_iter()
            .zip(activations)
            .map(|(linear, &activation)| Layer { linear, activation })
            .collect(),
    )
}

/// Writes `model` as the state_dict of the equivalent `nn.Sequential` (f32, little endian),
/// atomically. See [`module_indices`] for the key names.
pub fn save_model(path: impl AsRef<Path>, model: &Mlp) -> Result<()> {
    write_atomic(path.as_ref(), &model_to_bytes(model)?)
}

/// The bytes [`save_model`] writes.
pub fn model_to_bytes(model: &Mlp) -> Result<Vec<u8>> {
    let acts: Vec<Activation> = model.layers().iter().map(|l| l.activation).collect();
    let mut tensors: Vec<(String, F32Tensor)> = Vec::new();
    for (layer, index) in model.layers().iter().zip(module_indices(&acts)) {
        let lin = &layer.linear;
        tensors.push((
            format!("{index}.weight"),
            F32Tensor::new(vec![lin.out_features(), lin.in_features()], lin.weight()),
        ));
        if let Some(b) = lin.bias() {
            tensors.push((
                format!("{index}.bias"),
                F32Tensor::new(vec![lin.out_features()], b),
            ));
        }
    }
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    ::safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| Error::invalid(format!("cannot serialize the model: {e}")))
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

/// `(weight key, bias key)` for each layer, in order.
type LayerKeys = Vec<(String, Option<String>)>;

/// Layers of an `nn.Sequential` (`<i>.weight`), in numeric order; or a lone `nn.Linear`.
fn keys_by_index(tensors: &HashMap<String, TensorView<'_>>) -> Result<LayerKeys, String> {
    if tensors.keys().all(|k| k == "weight" || k == "bias") {
        if !tensors.contains_key("weight") {
            return Err("missing 'weight' (found only 'bias')".into());
        }
        let bias = tensors.contains_key("bias").then(|| "bias".to_string());
        return Ok(vec![("weight".into(), bias)]);
    }
    // index -> (weight key, bias key)
    let mut by_index: BTreeMap<u64, (Option<String>, Option<String>)> = BTreeMap::new();
    let mut unknown: Vec<&str> = Vec::new();
    let mut sorted: Vec<&String> = tensors.keys().collect();
    sorted.sort();
    for key in sorted {
        let parsed = key.split_once('.').and_then(|(idx, param)| {
            let idx = (!idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()))
                .then(|| idx.parse::<u64>().ok())
                .flatten()?;
            matches!(param, "weight" | "bias").then_some((idx, param == "weight"))
        });
        let Some((idx, is_weight)) = parsed else {
            unknown.push(key);
            continue;
        };
        let entry = by_index.entry(idx).or_default();
        let slot = if is_weight {
            &mut entry.0
        } else {
            &mut entry.1
        };
        if let Some(prev) = slot.replace(key.clone()) {
            return Err(format!("keys '{prev}' and '{key}' name the same parameter"));
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unexpected key(s) {}: expected '<i>.weight' and '<i>.bias' of an nn.Sequential of \
             Linear layers (for named modules, give the layer names)",
            quote_list(&unknown)
        ));
    }
    by_index
        .into_iter()
        .map(|(idx, (w, b))| match w {
            Some(w) => Ok((w, b)),
            None => Err(format!(
                "missing '{idx}.weight' (found '{}')",
                b.unwrap_or_default()
            )),
        })
        .collect()
}

/// Layers named by the caller, in the caller's order.
fn keys_for_names(
    tensors: &HashMap<String, TensorView<'_>>,
    names: &[String],
) -> Result<LayerKeys, String> {
    if names.is_empty() {
        return Err("the list of layer names is empty".into());
    }
    let key = |name: &str, param: &str| {
        if name.is_empty() {
            param.to_string()
        } else {
            format!("{name}.{param}")
        }
    };
    let mut seen = HashSet::new();
    let mut used = HashSet::new();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(format!("layer name '{name}' is given twice"));
        }
        let w = key(name, "weight");
        if !tensors.contains_key(&w) {
            return Err(format!("missing '{w}' (layer '{name}')"));
        }
        let b = key(name, "bias");
        let b = tensors.contains_key(&b).then_some(b);
        used.insert(w.clone());
        if let Some(b) = &b {
            used.insert(b.clone());
        }
        out.push((w, b));
    }
    let mut extra: Vec<&str> = tensors
        .keys()
        .filter(|k| !used.contains(*k))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        return Err(format!(
            "unexpected key(s) {} not in the given layers {}",
            quote_list(&extra),
            quote_list(&names.iter().map(String::as_str).collect::<Vec<_>>())
        ));
    }
    Ok(out)
}

/// `'a', 'b', 'c'` (at most 10 shown).
fn quote_list(items: &[&str]) -> String {
    let mut s = items
        .iter()
        .take(10)
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        s.push_str(&format!(" and {} more", items.len() - 10));
    }
    s
}
