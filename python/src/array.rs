//! numpy arrays in and out: the input as a C-contiguous float32 array (the caller's own when it
//! already is one: no copy), the output as a new float32 array the forward pass writes into.

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::raise;

/// `x` as a C-contiguous float32 array: `x` itself when it is one, else numpy's conversion of it
/// (anything with `__array__`, a CPU torch tensor included; other dtypes are converted, the one
/// copy that cannot be avoided). What numpy cannot convert is an `InvalidArgumentError` whose
/// cause is numpy's own exception.
pub(crate) fn input<'py>(x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    if let Ok(a) = x.cast::<PyArrayDyn<f32>>()
        && a.is_c_contiguous()
    {
        return aligned(a.clone());
    }
    let py = x.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", "float32")?;
    // `asarray`, not `ascontiguousarray`: the latter turns a scalar (or None) into one row.
    kwargs.set_item("order", "C")?;
    let converted = py
        .import("numpy")?
        .call_method("asarray", (x,), Some(&kwargs));
    match converted {
        Ok(a) => aligned(a.cast_into::<PyArrayDyn<f32>>()?),
        Err(cause) => {
            let hint = if x.hasattr("detach").unwrap_or(false) {
                " (a torch tensor must be on the CPU and not require grad: pass \
                 x.detach().cpu())"
            } else {
                ""
            };
            let err = raise(
                "InvalidArgumentError",
                format!(
                    "invalid argument: the input cannot be read as a float32 array: {}{hint}",
                    cause.value(py)
                ),
            );
            err.set_cause(py, Some(cause));
            Err(err)
        }
    }
}

/// `a`, or an aligned copy of it when its data does not start on a 4-byte boundary: arrays
/// unpickled from a byte stream (Dask ships blocks so) can be misaligned, and neither numpy's
/// `asarray` nor a C-contiguous flag says so; a `&[f32]` must be aligned.
fn aligned(a: Bound<'_, PyArrayDyn<f32>>) -> PyResult<Bound<'_, PyArrayDyn<f32>>> {
    if (a.data() as usize).is_multiple_of(std::mem::align_of::<f32>()) {
        return Ok(a);
    }
    Ok(a.call_method0("copy")?.cast_into::<PyArrayDyn<f32>>()?)
}

/// A new float32 array of `shape` for the output. Every element is written by the forward pass
/// before the array is returned, so it starts uninitialised. Up to 1 MiB it is made through
/// numpy's C API (a Python-level call costs a few microseconds, a tenth of a batch-1 pass on the
/// CPU path); larger ones through `numpy.empty`, so that a size the process cannot allocate is
/// numpy's `MemoryError` (rust-numpy's constructor panics on a failed allocation).
pub(crate) fn output<'py>(
    py: Python<'py>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let elements = shape.iter().product::<usize>();
    if elements <= (1 << 20) / std::mem::size_of::<f32>() {
        // SAFETY: the caller writes every element before any Python code sees the array.
        return Ok(unsafe { PyArrayDyn::<f32>::new(py, shape.to_vec(), false) });
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", "float32")?;
    Ok(py
        .import("numpy")?
        .call_method("empty", (shape.to_vec(),), Some(&kwargs))?
        .cast_into::<PyArrayDyn<f32>>()?)
}
