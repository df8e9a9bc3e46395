//! `wgpu_mlp.Model`: a loaded model and the forms it runs in (GPU, fast CPU path), made on first
//! use and shared by every thread that calls it.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use wgpu_mlp::cpu::{self, CpuMlp};
use wgpu_mlp::gpu::GpuMlp;
use wgpu_mlp::{Arch, Error, Matrix, Mlp, io};

use crate::array;
use crate::device::{self, Device};
use crate::errors::{IntoPy, raise};
use crate::slot::Slot;

/// A multi-layer perceptron loaded by `wgpu_mlp.load` or `wgpu_mlp.from_torch`. Call it on a
/// batch: `model(x)`. Safe to share between threads; the GIL is released while it computes.
#[pyclass(module = "wgpu_mlp", frozen)]
pub struct Model {
    mlp: Arc<Mlp>,
    /// The GPU form and the generation of the context it was built on.
    gpu: Slot<(u64, GpuMlp)>,
    cpu: Slot<CpuMlp>,
}

impl Model {
    pub(crate) fn new(mlp: Mlp) -> Self {
        Model {
            mlp: Arc::new(mlp),
            gpu: Slot::new(),
            cpu: Slot::new(),
        }
    }

    /// Runs `input` (`batch` rows) into `out` on `device` (resolved); called without the GIL.
    fn run(
        &self,
        device: Device,
        input: &[f32],
        batch: usize,
        out: &mut [f32],
    ) -> wgpu_mlp::Result<()> {
        match device {
            Device::Gpu | Device::Auto => {
                // Built on the current context; rebuilt when a lost device was replaced since.
                let gpu = self.gpu.get_valid_or_try(
                    |(generation, _)| *generation == device::generation(),
                    || {
                        let (ctx, generation) = device::context()?;
                        Ok((generation, GpuMlp::new(&ctx, &self.mlp)?))
                    },
                )?;
                let done = gpu.1.forward_into(input, batch, out);
                if let Err(Error::DeviceLost(_)) = done {
                    // The next call, on any model, opens a new device instead of failing forever.
                    device::forget_context();
                }
                done
            }
            Device::Cpu => self
                .cpu
                .get_or_try(|| CpuMlp::new(&self.mlp))?
                .forward_into(input, batch, out),
            Device::Reference => {
                let x = Matrix::new(batch, self.mlp.in_features(), input.to_vec())?;
                let y = cpu::forward(&self.mlp, &x)?;
                out.copy_from_slice(y.as_slice());
                Ok(())
            }
        }
    }
}

#[pymethods]
impl Model {
    /// `model(x)` is `model.forward(x)`.
    #[pyo3(signature = (x, device = "auto"))]
    fn __call__<'py>(
        &self,
        x: &Bound<'py, PyAny>,
        device: &str,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        self.forward(x, device)
    }

    /// The model's output for `x`, `[batch, in_features]` (or one row, `[in_features]`), as a
    /// new float32 array `[batch, out_features]` (or `[out_features]`).
    ///
    /// `x`: a numpy array or anything with `__array__` (a CPU torch tensor); a C-contiguous
    /// float32 array is read in place, anything else is converted once. `device`: `"auto"` (a
    /// hardware GPU if there is one, else the fast CPU path), `"gpu"` (the adapter
    /// `WGPU_BACKEND` / `WGPU_ADAPTER_NAME` pick, software adapters included), `"cpu"` (the
    /// fast CPU path) or `"cpu-reference"` (the f64 reference, for checking). The GIL is
    /// released while the device works.
    #[pyo3(signature = (x, device = "auto"))]
    fn forward<'py>(
        &self,
        x: &Bound<'py, PyAny>,
        device: &str,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let py = x.py();
        let device = Device::parse(device)?;
        let x = array::input(x)?;
        let (batch, cols, one_row) = match x.shape() {
            [n] => (1, *n, true),
            [b, n] => (*b, *n, false),
            s => {
                return Err(raise(
                    "ShapeError",
                    format!(
                        "shape mismatch: input has shape {s:?}; give [batch, {}] or one row [{}]",
                        self.mlp.in_features(),
                        self.mlp.in_features()
                    ),
                ));
            }
        };
        self.mlp.check_input(batch, cols).py_err()?;
        let n_out = self.mlp.out_features();
        let shape: Vec<usize> = if one_row {
            vec![n_out]
        } else {
            vec![batch, n_out]
        };
        let y = array::output(py, &shape)?;
        {
            let x = x.try_readonly()?;
            let mut y_rw = y.try_readwrite()?;
            let input = x.as_slice()?;
            let out = y_rw.as_slice_mut()?;
            py.detach(|| self.run(device.resolve(), input, batch, out))
                .py_err()?;
        }
        Ok(y)
    }

    /// torchsummary's table for a batch of `batch` (`-1`: torchsummary's default).
    #[pyo3(signature = (batch = -1))]
    fn summary(&self, batch: i64) -> String {
        wgpu_mlp::summary::summary(&self.mlp, batch)
    }

    /// Writes the model as a self-describing safetensors file (the state_dict of the equivalent
    /// `nn.Sequential`, its architecture in the metadata), atomically.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| io::safetensors::save_model(&path, &self.mlp))
            .py_err()
    }

    /// The bytes `save` writes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = io::safetensors::model_to_bytes(&self.mlp).py_err()?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Pickling (Dask, multiprocessing) goes through `to_bytes`: the weights and architecture,
    /// no device state.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let load = py.import("wgpu_mlp")?.getattr("load_bytes")?;
        Ok((load, (self.to_bytes(py)?,)))
    }

    /// Input width.
    #[getter]
    fn in_features(&self) -> usize {
        self.mlp.in_features()
    }

    /// Output width.
    #[getter]
    fn out_features(&self) -> usize {
        self.mlp.out_features()
    }

    /// Number of parameters, as torchsummary counts them.
    #[getter]
    fn param_count(&self) -> usize {
        self.mlp.param_count()
    }

    /// The module sequence in `arch` notation (`linear,relu,linear`).
    #[getter]
    fn arch(&self) -> PyResult<String> {
        Ok(Arch::of(&self.mlp).py_err()?.to_string())
    }

    /// Warnings about the weights (a layer whose weights are all equal).
    #[getter]
    fn diagnostics(&self) -> Vec<String> {
        self.mlp.diagnostics().to_vec()
    }

    fn __repr__(&self) -> String {
        let arch = Arch::of(&self.mlp).map_or_else(|_| "?".to_string(), |a| a.to_string());
        format!(
            "Model(in_features={}, out_features={}, params={}, arch={arch:?})",
            self.mlp.in_features(),
            self.mlp.out_features(),
            self.mlp.param_count()
        )
    }
}
