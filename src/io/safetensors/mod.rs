//! PyTorch `state_dict`s in the safetensors format, plain or self-describing.
//!
//! A state_dict holds tensors, not the architecture: which activations, norms and dropout run
//! between them, in which order. A **self-describing** file says it in its `__metadata__`
//! (`"wgpu_mlp.arch": "linear,relu,linear,softmax"`, see [`Arch`]; optionally
//! `"wgpu_mlp.names"`), which `safetensors.torch.load_file` ignores; every file this crate
//! writes has it. For a plain file the caller gives the [`Arch`] (`--arch`), or the activations
//! after each Linear layer (`--act`); without either, loading is refused rather than guessed.
//!
//! Every reader here also takes a `.pth` / `.pt` file as `torch.save` writes it (with the `pth`
//! feature, on by default; see `io::pth`), told apart by its first bytes: it holds no architecture, so it
//! needs `arch` (or `--act`) like a plain safetensors state_dict.
//!
//! Tensors may be F32, F16, BF16 or F64 (converted to f32 as PyTorch's `.float()` does); any
//! other dtype, a shape that does not fit, a key that is not a module parameter or a damaged file
//! is an error naming the problem.

mod json_keys;
mod read;
mod write;

pub use write::{model_to_bytes, module_indices, save_model};

use std::path::Path;

use ::safetensors::tensor::SafeTensors;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::model::arch::{ARCH_KEY, Arch, NAMES_KEY};
use crate::model::{Linear, Mlp};
use crate::model::{Tensors, natural_cmp};
use read::Parsed;

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
    let dict = read::parse(bytes, source)?;
    dict.check_dtypes().map_err(|m| Error::format(source, m))?;
    let err = |e: Error| {
        Error::format(
            source,
            e.to_string().trim_start_matches("invalid argument: "),
        )
    };
    // A .pth carries no metadata: the architecture comes from the caller.
    let (own_arch, own_names) = match dict {
        #[cfg(feature = "pth")]
        Parsed::Pth(_) => (None, None),
        Parsed::Safetensors(_) => metadata(bytes, source)?,
    };
    // The file's own architecture is parsed only when the caller gives none.
    let parsed;
    let arch = match (arch, &own_arch) {
        (Some(a), _) => a,
        (None, Some(own)) => {
            parsed = parse_own_arch(own, source)?;
            &parsed
        }
        (None, None) => return Err(Error::format(source, no_arch_message(&dict))),
    };
    let names = names.or(own_names.as_deref());
    arch.bind(&dict, names).map_err(err)
}

/// The architecture (as written: [`parse_own_arch`] parses it) and module names a
/// self-describing file carries, if any.
pub fn metadata(bytes: &[u8], _source: &str) -> Result<(Option<String>, Option<Vec<String>>)> {
    let Ok((_, meta)) = SafeTensors::read_metadata(bytes) else {
        return Ok((None, None));
    };
    let Some(map) = meta.metadata() else {
        return Ok((None, None));
    };
    let arch = map.get(ARCH_KEY).cloned();
    let names = map
        .get(NAMES_KEY)
        .map(|s| s.split(',').map(|n| n.trim().to_string()).collect());
    Ok((arch, names))
}

/// A file's own `wgpu_mlp.arch` metadata as an [`Arch`]; an error names the file's metadata.
pub fn parse_own_arch(own: &str, source: &str) -> Result<Arch> {
    own.parse::<Arch>().map_err(|e| {
        let e = e.to_string();
        let e = e.trim_start_matches("invalid argument: ");
        Error::format(source, format!("its {ARCH_KEY} metadata is not valid: {e}"))
    })
}

/// Why a plain state_dict cannot load on its own, and what to pass.
fn no_arch_message(dict: &Parsed<'_>) -> String {
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
    let (what, save) = match dict {
        #[cfg(feature = "pth")]
        Parsed::Pth(_) => (".pth state_dict does not say its architecture", ""),
        Parsed::Safetensors(_) => (
            "state_dict does not say its architecture (no wgpu_mlp.arch metadata)",
            ", or save the file with metadata={\"wgpu_mlp.arch\": \"...\"}",
        ),
    };
    format!(
        "this {what}: which activations, norms and dropout run between its tensors ({}{}) is \
         not in the file. Pass --arch with the modules in forward order (e.g. --arch \
         linear,relu,linear,softmax; see `wgpu-mlp infer --help`), or --act with one activation \
         per Linear layer{save}",
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
    let dict = read::parse(bytes, source)?;
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
fn module_count(dict: &Parsed<'_>) -> usize {
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
    let dict = read::parse(bytes, source)?;
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
