//! Loading models: files as the CLI loads them (`--weights`, `--arch`, `--names`), safetensors
//! bytes (pickling, `from_torch`), and the adapters wgpu finds.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use wgpu_mlp::gpu::list_adapters;
use wgpu_mlp::{Arch, Mlp, escape, io, onnx};

use crate::errors::{IntoPy, raise};
use crate::model::Model;

/// Loads a model file: `.onnx` (architecture and weights in one file), or a safetensors
/// state_dict, self-describing or with `arch`.
///
/// `arch`: the modules in forward order as `--arch` takes them (`"linear,relu,linear"` or a list
/// of tokens); `names`: the modules that own tensors in forward order (`"fc1,fc2"` or a list;
/// `-` marks a LayerNorm without tensors). Both are refused for ONNX files, which carry their own.
#[pyfunction]
#[pyo3(signature = (path, arch = None, names = None))]
pub(crate) fn load(
    py: Python<'_>,
    path: PathBuf,
    arch: Option<&Bound<'_, PyAny>>,
    names: Option<&Bound<'_, PyAny>>,
) -> PyResult<Model> {
    let arch = parse_arch(arch)?;
    let names = parse_names(names)?;
    if onnx::is_onnx_path(&path) && (arch.is_some() || names.is_some()) {
        return Err(raise(
            "InvalidArgumentError",
            format!(
                "invalid argument: {} is an ONNX file: it holds its own architecture and module \
                 order; drop arch and names",
                escape(&path.display().to_string())
            ),
        ));
    }
    let mlp: Mlp = py
        .detach(|| {
            if onnx::is_onnx_path(&path) {
                onnx::load(&path)
            } else {
                io::safetensors::load(&path, arch.as_ref(), names.as_deref())
            }
        })
        .py_err()?;
    Ok(Model::new(mlp))
}

/// A model from the bytes of a safetensors file (what `Model.to_bytes` returns), with `arch`
/// and `names` as in `load`.
#[pyfunction]
#[pyo3(signature = (data, arch = None, names = None))]
pub(crate) fn load_bytes(
    py: Python<'_>,
    data: &[u8],
    arch: Option<&Bound<'_, PyAny>>,
    names: Option<&Bound<'_, PyAny>>,
) -> PyResult<Model> {
    let arch = parse_arch(arch)?;
    let names = parse_names(names)?;
    let mlp = py
        .detach(|| {
            io::safetensors::from_bytes(data, "safetensors bytes", arch.as_ref(), names.as_deref())
        })
        .py_err()?;
    Ok(Model::new(mlp))
}

/// The adapters wgpu finds (for `WGPU_BACKEND`'s backends, else all), best first as `"auto"`
/// ranks them: each a dict with `name`, `backend`, `device_type` and `driver`.
#[pyfunction]
pub(crate) fn adapters(py: Python<'_>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let found = py.detach(|| list_adapters(None)).py_err()?;
    found
        .into_iter()
        .map(|a| {
            let d = PyDict::new(py);
            d.set_item("name", a.name)?;
            d.set_item("backend", a.backend)?;
            d.set_item("device_type", a.device_type)?;
            d.set_item("driver", a.driver)?;
            Ok(d)
        })
        .collect()
}

/// A comma-separated string or a sequence of strings, as the list of its items.
fn items(what: &str, v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(s
            .to_cow()?
            .split(',')
            .map(|t| t.trim().to_string())
            .collect());
    }
    let list: Result<Vec<String>, _> = v.extract();
    list.map_err(|_| {
        raise(
            "InvalidArgumentError",
            format!(
                "invalid argument: {what} must be a comma-separated string or a list of strings, \
                 not {}",
                v.get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ),
        )
    })
}

fn parse_arch(arch: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Arch>> {
    let Some(arch) = arch else { return Ok(None) };
    let tokens = items("arch", arch)?;
    Ok(Some(tokens.join(",").parse::<Arch>().py_err()?))
}

fn parse_names(names: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<String>>> {
    let Some(names) = names else { return Ok(None) };
    let names = items("names", names)?;
    if names.iter().any(String::is_empty) {
        return Err(raise(
            "InvalidArgumentError",
            format!(
                "invalid argument: names {:?}: empty module name",
                escape(&names.join(","))
            ),
        ));
    }
    Ok(Some(names))
}
