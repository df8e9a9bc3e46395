//! A trained model as a PyTorch state_dict in safetensors: every tensor of [`Mlp::tensors`]
//! under its module's name (`fc1.weight`, `0.running_var`, …; `num_batches_tracked` as an I64
//! scalar, as PyTorch saves it), with `__metadata__` saying the format (`pt`), the architecture
//! and the module names, so the file loads with no flags here and with
//! `model.load_state_dict(safetensors.torch.load_file(path))` in PyTorch.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::model::arch::{ARCH_KEY, NAMES_KEY};
use crate::model::{Arch, Mlp, Module, TensorValues};

/// The bytes of the state_dict of `model`, the tensors of the `k`-th module that owns tensors
/// named `names[k].<kind>`. `names`: one per module with tensors, in forward order; `None`
/// names them by their index in the equivalent `nn.Sequential`. The header's keys are sorted
/// (the same model always gives the same bytes).
pub fn state_dict_bytes(model: &Mlp, names: Option<&[String]>) -> Result<Vec<u8>> {
    let owners: Vec<usize> = owners(model);
    let names: Vec<String> = match names {
        Some(n) if n.len() == owners.len() => n.to_vec(),
        Some(n) => {
            return Err(Error::invalid(format!(
                "{} module names for {} modules with tensors",
                n.len(),
                owners.len()
            )));
        }
        None => sequential_names(model, &owners),
    };
    let arch = Arch::of(model)?;
    let mut header = Map::new();
    let mut meta = Map::new();
    meta.insert("format".into(), json!("pt"));
    meta.insert(ARCH_KEY.into(), json!(arch.to_string()));
    meta.insert(NAMES_KEY.into(), json!(names.join(",")));
    header.insert("__metadata__".into(), Value::Object(meta));
    // Data in state_dict order; the header (a sorted map) points into it.
    let mut data: Vec<u8> = Vec::new();
    for t in model.tensors() {
        let k = owners
            .iter()
            .position(|&m| m == t.module)
            .expect("every tensor belongs to an owner");
        let start = data.len();
        let dtype = match t.values {
            TensorValues::F32(v) => {
                data.extend(v.iter().flat_map(|x| x.to_le_bytes()));
                "F32"
            }
            TensorValues::Count(n) => {
                data.extend(n.to_le_bytes());
                "I64"
            }
        };
        header.insert(
            format!("{}.{}", names[k], t.kind.name()),
            json!({"dtype": dtype, "shape": t.shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut text = serde_json::to_string(&Value::Object(header))
        .map_err(|e| Error::invalid(format!("cannot serialize the model: {e}")))?;
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + data.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&data);
    Ok(out)
}

/// The indices (in [`Mlp::modules`]) of the modules that own at least one tensor.
pub(crate) fn owners(model: &Mlp) -> Vec<usize> {
    let mut v: Vec<usize> = model.tensors().iter().map(|t| t.module).collect();
    v.dedup();
    v
}

/// Each owner's index in the equivalent `nn.Sequential` (functions take no index), as
/// [`crate::io::safetensors::save_model`] names them.
pub(crate) fn sequential_names(model: &Mlp, owners: &[usize]) -> Vec<String> {
    let mut index = 0;
    let mut seq = Vec::with_capacity(model.modules().len());
    for m in model.modules() {
        seq.push(index);
        if m.class().is_some() || matches!(m, Module::Activation(_)) {
            index += 1;
        }
    }
    owners.iter().map(|&i| seq[i].to_string()).collect()
}
