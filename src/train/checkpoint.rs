//! A training checkpoint: everything a [`Trainer`] needs to go on exactly as an uninterrupted
//! run would, in one self-describing safetensors file.
//!
//! | key | what |
//! | --- | --- |
//! | `<module>.<tensor>` | the model's state_dict, named as the trained output is (so PyTorch's `load_state_dict(strict=False)` takes it) |
//! | `optimizer.<k>.momentum_buffer` / `exp_avg` | SGD's momentum buffer or Adam's first moment of the `k`-th parameter (in `Mlp::parameters` order) |
//! | `optimizer.<k>.exp_avg_sq`, `.max_exp_avg_sq` | Adam's second moment, AMSGrad's maximum |
//! | `optimizer.<k>.step` | Adam's step count (I64) |
//! | `generator.dropout` | the Dropout masks' generator (U32: seed, position, cached normal, 624 MT19937 words) |
//!
//! `__metadata__` holds `format` (`wgpu-mlp.checkpoint`), `version`, `wgpu_mlp.arch`, the
//! module names, the loss, the reduction, the optimizer and its hyperparameters, the step count,
//! and whatever the caller adds (the command line adds the epoch, the data order and the
//! curves so far). Restoring checks the model, loss, reduction and optimizer against the
//! trainer's, so a resumed run cannot silently change them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::model::{Arch, Mlp, TensorKind, TensorValues};
use crate::rng::Generator;
use crate::train::optim::Slot;
use crate::train::state_dict::{owners, sequential_names};
use crate::train::trainer::{Backend, Trainer};

/// The `format` value of a checkpoint's metadata.
pub const CHECKPOINT_FORMAT: &str = "wgpu-mlp.checkpoint";
const VERSION: &str = "1";
/// Metadata keys the checkpoint itself sets (a caller's extras may not use them).
const RESERVED: [&str; 8] = [
    "format",
    "version",
    "wgpu_mlp.arch",
    "wgpu_mlp.names",
    "loss",
    "reduction",
    "optimizer",
    "steps",
];

impl Trainer {
    /// The checkpoint's bytes (see the module doc): the model's tensors under `names` (one per
    /// module with tensors; `None`: `nn.Sequential` indices), the optimizer state, the Dropout
    /// generator, the step count, and `extra` in the metadata. The same state gives the same
    /// bytes.
    pub fn checkpoint(
        &self,
        names: Option<&[String]>,
        extra: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>> {
        if self.backend() == Backend::Gpu {
            return Err(Error::invalid(
                "checkpoints are taken on the CPU paths only (the GPU's optimizer state is not \
                 read back yet): train with --device cpu or cpu-reference",
            ));
        }
        let (loss, reduction, optim, dropout) = self.parts();
        let model = self.model();
        let names = module_names(model, names)?;
        let mut tensors: Vec<(String, &str, Vec<usize>, Vec<u8>)> = Vec::new();
        for (t, name) in model_tensors(model, &names) {
            let (dtype, bytes) = match t.values {
                TensorValues::F32(v) => ("F32", f32_bytes(v)),
                TensorValues::Count(n) => ("I64", n.to_le_bytes().to_vec()),
            };
            tensors.push((name, dtype, t.shape.clone(), bytes));
        }
        let adam = matches!(optim.config(), crate::train::Optimizer::Adam { .. });
        for (k, s) in optim.slots().iter().enumerate() {
            let first = if adam { "exp_avg" } else { "momentum_buffer" };
            let mut put = |what: &str, v: &[f32]| {
                tensors.push((
                    format!("optimizer.{k}.{what}"),
                    "F32",
                    vec![v.len()],
                    f32_bytes(v),
                ));
            };
            if let Some(a) = &s.a {
                put(first, a);
            }
            if !s.v.is_empty() {
                put("exp_avg_sq", &s.v);
            }
            if !s.vmax.is_empty() {
                put("max_exp_avg_sq", &s.vmax);
            }
            tensors.push((
                format!("optimizer.{k}.step"),
                "I64",
                vec![],
                (s.step as i64).to_le_bytes().to_vec(),
            ));
        }
        let words = dropout.to_words();
        tensors.push((
            "generator.dropout".into(),
            "U32",
            vec![words.len()],
            words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        ));
        let mut meta = Map::new();
        for (k, v) in extra {
            if RESERVED.contains(&k.as_str()) {
                return Err(Error::invalid(format!(
                    "checkpoint metadata key '{k}' is reserved"
                )));
            }
            meta.insert(k.clone(), json!(v));
        }
        meta.insert("format".into(), json!(CHECKPOINT_FORMAT));
        meta.insert("version".into(), json!(VERSION));
        meta.insert("wgpu_mlp.arch".into(), json!(Arch::of(model)?.to_string()));
        meta.insert("wgpu_mlp.names".into(), json!(names.join(",")));
        meta.insert("loss".into(), json!(loss.to_string()));
        meta.insert("reduction".into(), json!(reduction_name(reduction)));
        meta.insert("optimizer".into(), json!(format!("{:?}", optim.config())));
        meta.insert("steps".into(), json!(self.steps().to_string()));
        encode(meta, tensors)
    }

    /// Restores a checkpoint `bytes` (from `source`, for errors) made by
    /// [`Trainer::checkpoint`] with the same `names`, into a trainer built with the same
    /// model architecture, loss, reduction and optimizer (each checked): the model's tensors,
    /// the optimizer state, the Dropout generator and the step count. Returns the metadata
    /// (with the caller's extras). Nothing changes when it fails.
    pub fn resume(
        &mut self,
        bytes: &[u8],
        source: &str,
        names: Option<&[String]>,
    ) -> Result<BTreeMap<String, String>> {
        if self.backend() == Backend::Gpu {
            return Err(Error::invalid(
                "checkpoints are taken on the CPU paths only (the GPU's optimizer state is not \
                 read back yet): train with --device cpu or cpu-reference",
            ));
        }
        let bad = |msg: String| Error::Format {
            path: source.to_string(),
            msg,
        };
        let (meta, tensors) = decode(bytes).map_err(bad)?;
        let get = |k: &str| meta.get(k).map(String::as_str).unwrap_or("");
        if get("format") != CHECKPOINT_FORMAT {
            return Err(bad(format!(
                "not a training checkpoint (its metadata has no format \"{CHECKPOINT_FORMAT}\")"
            )));
        }
        if get("version") != VERSION {
            return Err(bad(format!(
                "checkpoint version {} (this build reads {VERSION})",
                get("version")
            )));
        }
        let (loss, reduction, optim, _) = self.parts();
        let model = self.model();
        let mine = [
            ("the model", Arch::of(model)?.to_string(), "wgpu_mlp.arch"),
            ("the loss", loss.to_string(), "loss"),
            (
                "the reduction",
                reduction_name(reduction).into(),
                "reduction",
            ),
            (
                "the optimizer",
                format!("{:?}", optim.config()),
                "optimizer",
            ),
        ];
        for (what, here, key) in mine {
            if get(key) != here {
                return Err(Error::invalid(format!(
                    "{source}: the checkpoint was made with {what} {}, this run has {here}: \
                     resume with the same settings",
                    get(key)
                )));
            }
        }
        let names = module_names(model, names)?;
        let steps: u64 = get("steps")
            .parse()
            .map_err(|_| bad("no step count in the metadata".into()))?;
        // Read everything first, then write: a failure leaves the trainer as it was.
        let mut writes: Vec<(usize, TensorKind, Result<Vec<f32>, i64>)> = Vec::new();
        for (t, name) in model_tensors(model, &names) {
            let (dtype, shape, raw) = tensors
                .get(&name)
                .ok_or_else(|| bad(format!("no tensor {name}")))?;
            if *shape != t.shape {
                return Err(bad(format!(
                    "{name} has shape {shape:?}, the model's is {:?}",
                    t.shape
                )));
            }
            let v = match (&t.values, dtype.as_str()) {
                (TensorValues::F32(_), "F32") => Ok(read_f32(raw)),
                (TensorValues::Count(_), "I64") => Err(read_i64(raw)),
                _ => return Err(bad(format!("{name} has dtype {dtype}"))),
            };
            writes.push((t.module, t.kind, v));
        }
        let n_params = model.parameters().len();
        let adam = matches!(optim.config(), crate::train::Optimizer::Adam { .. });
        let mut slots = Vec::new();
        for k in 0..n_params {
            let f = |what: &str| -> Option<Vec<f32>> {
                tensors
                    .get(&format!("optimizer.{k}.{what}"))
                    .filter(|(d, _, _)| d == "F32")
                    .map(|(_, _, raw)| read_f32(raw))
            };
            let Some((_, _, step)) = tensors.get(&format!("optimizer.{k}.step")) else {
                break; // no step taken yet: the optimizer has no state
            };
            slots.push(Slot {
                a: f(if adam { "exp_avg" } else { "momentum_buffer" }),
                v: f("exp_avg_sq").unwrap_or_default(),
                vmax: f("max_exp_avg_sq").unwrap_or_default(),
                step: read_i64(step) as u64,
            });
        }
        let words: Vec<u32> = tensors
            .get("generator.dropout")
            .map(|(_, _, raw)| {
                raw.chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            })
            .unwrap_or_default();
        let generator = Generator::from_words(&words)
            .ok_or_else(|| bad("no valid generator.dropout".into()))?;
        let (model, optim, dropout, count) = self.parts_mut();
        for (module, kind, v) in writes {
            match v {
                Ok(values) => model.set_tensor(module, kind, &values)?,
                Err(n) => model.set_num_batches_tracked(module, n)?,
            }
        }
        *optim.slots_mut() = slots;
        *dropout = generator;
        *count = steps;
        Ok(meta)
    }
}

fn reduction_name(r: crate::train::Reduction) -> &'static str {
    match r {
        crate::train::Reduction::Mean => "mean",
        crate::train::Reduction::Sum => "sum",
    }
}

/// The names of the modules with tensors: `names`, checked, or `nn.Sequential` indices.
fn module_names(model: &Mlp, names: Option<&[String]>) -> Result<Vec<String>> {
    let own = owners(model);
    match names {
        Some(n) if n.len() == own.len() => Ok(n.to_vec()),
        Some(n) => Err(Error::invalid(format!(
            "{} module names for {} modules with tensors",
            n.len(),
            own.len()
        ))),
        None => Ok(sequential_names(model, &own)),
    }
}

/// Each model tensor with its state_dict name.
fn model_tensors<'a>(
    model: &'a Mlp,
    names: &[String],
) -> Vec<(crate::model::TensorRef<'a>, String)> {
    let own = owners(model);
    model
        .tensors()
        .into_iter()
        .map(|t| {
            let k = own.iter().position(|&m| m == t.module).unwrap_or(0);
            let name = format!("{}.{}", names[k], t.kind.name());
            (t, name)
        })
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn read_f32(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn read_i64(raw: &[u8]) -> i64 {
    raw.try_into().map_or(0, i64::from_le_bytes)
}

/// safetensors bytes: the sorted header, the data in the order given.
fn encode(
    meta: Map<String, Value>,
    tensors: Vec<(String, &str, Vec<usize>, Vec<u8>)>,
) -> Result<Vec<u8>> {
    let mut header = Map::new();
    header.insert("__metadata__".into(), Value::Object(meta));
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(&bytes);
        header.insert(
            name,
            json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut text = serde_json::to_string(&Value::Object(header))
        .map_err(|e| Error::invalid(format!("cannot serialize the checkpoint: {e}")))?;
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + data.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&data);
    Ok(out)
}

/// Tensor name → (dtype, shape, bytes).
type Tensors<'a> = BTreeMap<String, (String, Vec<usize>, &'a [u8])>;

/// The metadata and the tensors of safetensors bytes, every offset checked.
fn decode(bytes: &[u8]) -> std::result::Result<(BTreeMap<String, String>, Tensors<'_>), String> {
    let n = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or("shorter than a safetensors header")?;
    let end = 8usize
        .checked_add(usize::try_from(n).map_err(|_| "header size out of range")?)
        .filter(|&e| e <= bytes.len())
        .ok_or("the header runs past the end of the file")?;
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes[8..end]).map_err(|e| format!("unreadable header: {e}"))?;
    let data = &bytes[end..];
    let mut meta = BTreeMap::new();
    let mut tensors = BTreeMap::new();
    for (k, v) in header {
        if k == "__metadata__" {
            for (mk, mv) in v.as_object().into_iter().flatten() {
                meta.insert(mk.clone(), mv.as_str().unwrap_or_default().to_string());
            }
            continue;
        }
        let dtype = v["dtype"].as_str().ok_or(format!("{k}: no dtype"))?;
        let shape: Vec<usize> = v["shape"]
            .as_array()
            .ok_or(format!("{k}: no shape"))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or(format!("{k}: bad shape"))?;
        let off = v["data_offsets"].as_array();
        let (a, b) = off
            .and_then(|o| Some((o.first()?.as_u64()? as usize, o.get(1)?.as_u64()? as usize)))
            .ok_or(format!("{k}: bad data_offsets"))?;
        let raw = data
            .get(a..b)
            .ok_or(format!("{k}: data_offsets past the end of the file"))?;
        let size = match dtype {
            "F32" | "U32" => 4,
            "I64" => 8,
            _ => return Err(format!("{k}: dtype {dtype} is not one a checkpoint has")),
        };
        if raw.len() != shape.iter().product::<usize>() * size {
            return Err(format!("{k}: {} bytes for shape {shape:?}", raw.len()));
        }
        tensors.insert(k, (dtype.to_string(), shape, raw));
    }
    Ok((meta, tensors))
}
