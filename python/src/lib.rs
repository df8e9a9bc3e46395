//! `wgpu_mlp._native`: the Rust half of the `wgpu_mlp` Python package (PyO3). The package's
//! Python half (pysrc/wgpu_mlp) re-exports these and adds `from_torch`, the error classes and the
//! Dask helpers. Every entry point returns a Python exception on bad input, never panics.

mod array;
mod device;
mod errors;
mod load;
mod model;
mod slot;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::Model>()?;
    m.add_function(wrap_pyfunction!(load::load, m)?)?;
    m.add_function(wrap_pyfunction!(load::load_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(load::adapters, m)?)?;
    m.add_function(wrap_pyfunction!(device::_simulate_device_loss, m)?)?;
    Ok(())
}
