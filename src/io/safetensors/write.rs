//! Writing a model as a self-describing safetensors state_dict.

use std::borrow::Cow;

use ::safetensors::tensor::{Dtype, View};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use crate::model::arch::{ARCH_KEY, Arch};
use crate::model::{Mlp, Module};
use std::path::Path;

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
                // As PyTorch saves it: an int64 scalar.
                let n = bn.num_batches_tracked();
                tensors.push((format!("{index}.num_batches_tracked"), F32Tensor::count(n)));
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

/// A little-endian f32 tensor (or BatchNorm's int64 counter) for `safetensors::serialize`.
struct F32Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl F32Tensor {
    fn new(shape: Vec<usize>, values: &[f32]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        F32Tensor {
            dtype: Dtype::F32,
            shape,
            bytes,
        }
    }

    /// An int64 scalar (shape `[]`).
    fn count(n: i64) -> Self {
        F32Tensor {
            dtype: Dtype::I64,
            shape: Vec::new(),
            bytes: n.to_le_bytes().to_vec(),
        }
    }
}

impl View for F32Tensor {
    fn dtype(&self) -> Dtype {
        self.dtype
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
