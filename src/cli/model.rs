//! The model a command works on, from its arguments: a file (ONNX, or safetensors with its own
//! architecture, `--arch` or `--act`), or layer widths with an architecture. Nothing is guessed:
//! a state_dict that does not say its architecture, and was given none, is refused by the
//! library with a message saying what to pass.

use std::path::Path;

use wgpu_mlp::io;
use wgpu_mlp::summary::Row;
use wgpu_mlp::{Activation, Arch, Error, Mlp, Result, escape, onnx};

use crate::cli::args::ArchArgs;

/// What `--arch` / `--act` say, if anything.
pub(crate) enum Given {
    Nothing,
    Arch(Arch),
    /// One activation per Linear layer.
    Acts(Vec<Activation>),
}

impl Given {
    pub(crate) fn parse(args: &ArchArgs) -> Result<Self> {
        Ok(match (&args.arch, &args.act) {
            (Some(a), _) => Given::Arch(a.parse().map_err(|e: Error| {
                Error::InvalidArgument(format!(
                    "--arch: {}",
                    e.to_string().trim_start_matches("invalid argument: ")
                ))
            })?),
            (None, Some(a)) => Given::Acts(wgpu_mlp::activation::parse_list(a)?),
            (None, None) => Given::Nothing,
        })
    }

    /// The architecture for `linears` Linear layers built from widths (`--act` missing:
    /// identity everywhere, a stack of plain Linear layers).
    fn for_widths(self, linears: usize) -> Result<Arch> {
        match self {
            Given::Arch(a) => Ok(a),
            Given::Acts(acts) if acts.len() != linears => Err(Error::InvalidArgument(format!(
                "--act lists {} activation(s) but --layers has {linears} Linear layer(s); give \
                 one per layer (identity for none)",
                acts.len()
            ))),
            Given::Acts(acts) => Ok(Arch::from_activations(&acts)),
            Given::Nothing => Ok(Arch::from_activations(&vec![Activation::Identity; linears])),
        }
    }
}

/// Reads a model file: `.onnx` (which holds its own architecture, so `--arch`, `--act` and
/// `--names` are refused), else a safetensors state_dict.
pub(crate) fn load(path: &Path, given: Given, names: Option<&[String]>) -> Result<Mlp> {
    if onnx::is_onnx_path(path) {
        if !matches!(given, Given::Nothing) || names.is_some() {
            return Err(Error::InvalidArgument(format!(
                "{} is an ONNX file: it holds its own architecture and module order; drop \
                 --arch, --act and --names",
                escape(&path.display().to_string())
            )));
        }
        return onnx::load(path);
    }
    match &given {
        Given::Acts(acts) => {
            crate::cli::overrides::note_replaced(path, &Arch::from_activations(acts), "--act")
        }
        Given::Arch(arch) => crate::cli::overrides::note_replaced(path, arch, "--arch"),
        Given::Nothing => {}
    }
    match given {
        Given::Acts(acts) => io::safetensors::load_model(path, &acts, names),
        Given::Arch(arch) => io::safetensors::load(path, Some(&arch), names),
        Given::Nothing => io::safetensors::load(path, None, names),
    }
}

/// A new model: Linear layers of these widths (input first) in the given architecture, with
/// PyTorch's initialisation from `seed`.
pub(crate) fn build(widths: &[usize], given: Given, seed: u64) -> Result<Mlp> {
    given.for_widths(widths.len() - 1)?.build(widths, seed)
}

/// The summary rows of Linear layers of these widths in the given architecture, without
/// creating the weights (a table of billions of parameters allocates nothing).
pub(crate) fn rows(widths: &[usize], given: Given) -> Result<Vec<Row>> {
    given.for_widths(widths.len() - 1)?.summary_rows(widths)
}

/// Parses `784,128,10`: at least two widths (input and one layer), each at least 1.
pub(crate) fn parse_widths(s: &str) -> Result<Vec<usize>> {
    let widths = s
        .split(',')
        .map(|w| {
            let w = w.trim();
            match w.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Error::InvalidArgument(format!(
                    "--layers: '{}' is not a positive integer width",
                    escape(w)
                ))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    if widths.len() < 2 {
        return Err(Error::InvalidArgument(format!(
            "--layers '{}': give the input width and at least one layer width, e.g. 784,128,10",
            escape(s)
        )));
    }
    Ok(widths)
}

/// Parses `fc1,fc2` into module names.
pub(crate) fn parse_names(s: Option<&str>) -> Result<Option<Vec<String>>> {
    let Some(s) = s else { return Ok(None) };
    let names: Vec<String> = s.split(',').map(|n| n.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err(Error::InvalidArgument(format!(
            "--names '{}': empty module name",
            escape(s)
        )));
    }
    Ok(Some(names))
}
