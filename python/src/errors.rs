//! The crate's errors as Python exceptions of the `wgpu_mlp.errors` hierarchy, with the crate's
//! messages. The classes live in Python (pysrc/wgpu_mlp/errors.py) because several of them have
//! two bases (`ShapeError` is also a `ValueError`), which a class made in Rust cannot have.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use wgpu_mlp::Error;

/// The Python exception for `e`: its class chosen by the variant, its message the crate's.
pub(crate) fn to_py(e: Error) -> PyErr {
    let class = match &e {
        Error::InvalidArgument(_) => "InvalidArgumentError",
        Error::Shape(_) => "ShapeError",
        Error::Format { .. } => "FormatError",
        Error::Io { .. } => "FileError",
        Error::NoAdapter(_) => "NoAdapterError",
        Error::OutOfMemory(_) => "OutOfMemoryError",
        Error::DeviceLost(_) => "DeviceLostError",
        Error::Timeout(_) => "GpuTimeoutError",
        Error::Gpu(_) => "GpuError",
        // `Error` is non-exhaustive: a variant added later is still a `wgpu_mlp.Error`.
        _ => "Error",
    };
    raise(class, e.to_string())
}

/// An exception of class `class` (a name in `wgpu_mlp.errors`) with `message`.
pub(crate) fn raise(class: &str, message: String) -> PyErr {
    Python::attach(|py| {
        let made = py
            .import("wgpu_mlp.errors")
            .and_then(|m| m.getattr(class))
            .and_then(|c| c.call1((message.clone(),)));
        match made {
            Ok(exc) => PyErr::from_value(exc),
            // Only when the package's Python half is missing (the extension imported alone).
            Err(_) => PyRuntimeError::new_err(message),
        }
    })
}

/// `Result` of the crate into `PyResult`.
pub(crate) trait IntoPy<T> {
    /// The value, or the error as its Python exception.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for wgpu_mlp::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
