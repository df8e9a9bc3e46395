//! wgpu-mlp in the browser: the JavaScript API of the page in `web/` (built by `web/build.sh`
//! with wasm-bindgen `--target web`).
//!
//! ```js
//! import init, { Gpu, Model, compare, digitPixels } from './pkg/wgpu_mlp_web.js';
//! await init();
//! const gpu = await Gpu.init();            // rejects with a message when there is no WebGPU
//! gpu.info();                              // adapter, backend, limits, subgroups
//! const model = Model.load(bytes, 'm.safetensors'); // self-describing safetensors (or .onnx)
//! model.summary();                         // torchsummary's table, as `wgpu-mlp summary`
//! model.upload(gpu);                       // weights to the device, kernels compiled
//! const x = model.randomInput(5, 0);       // torch.manual_seed(0); torch.randn(5, in)
//! const y = await model.forwardGpu(x, 5);  // WebGPU
//! const f = model.forwardCpuFast(x, 5);    // the fast CPU path (cpu::CpuMlp), in wasm
//! const r = model.forwardCpu(x, 5);        // the crate's CPU reference, in wasm
//! compare(y, r);                           // { agree, maxAbsDiff, mismatches, … }
//! ```
//!
//! Every failure is a rejected promise or a thrown `Error` with a message naming the problem;
//! nothing here panics on bad input. A panic would be a bug: the hook in [`panic`] writes its
//! message to the console and to `globalThis.wgpuMlpPanic` so the page can show it.

pub mod digits;
pub mod inputs;
pub mod panic;
pub mod training;
pub mod training_api;

// The unit tests of the pure modules run in the browser too (and natively as plain tests).
#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Float32Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use wgpu_mlp::cpu::CpuMlp;
use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions};
use wgpu_mlp::{Arch, Matrix, Mlp, cpu, summary, wgpu};

/// An error for JavaScript: an `Error` whose message is `msg`.
fn err(msg: impl std::fmt::Display) -> JsError {
    JsError::new(&msg.to_string())
}

/// Sets `obj[key] = value` on a plain object made here (cannot fail).
fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// Whether `navigator.gpu` exists (the browser has WebGPU at all).
fn navigator_has_gpu() -> bool {
    let global = js_sys::global();
    Reflect::get(&global, &JsValue::from_str("navigator"))
        .ok()
        .filter(|n| n.is_object())
        .and_then(|n| Reflect::get(&n, &JsValue::from_str("gpu")).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null())
}

/// The message shown when the browser has no WebGPU at all.
pub const NO_WEBGPU: &str = "This browser has no WebGPU (navigator.gpu is missing). Use a \
browser with WebGPU: Chrome or Edge 113+, Firefox 141+, Safari 26+; on Linux, Chrome needs \
chrome://flags/#enable-unsafe-webgpu (or --enable-unsafe-webgpu). WebGPU also needs a secure \
context: https, or http://localhost.";

/// The browser's WebGPU device, with the crate's kernels.
#[wasm_bindgen]
pub struct Gpu {
    ctx: GpuContext,
}

#[wasm_bindgen]
impl Gpu {
    /// Opens the WebGPU device (`await Gpu.init()`), with the adapter's own limits and the
    /// `subgroups` feature where the adapter has it. Rejects with a message a user can act on
    /// when the browser has no WebGPU or grants no adapter.
    pub async fn init() -> Result<Gpu, JsError> {
        panic::install();
        if !navigator_has_gpu() {
            return Err(err(NO_WEBGPU));
        }
        let opts = GpuOptions {
            backends: Some(wgpu::Backends::BROWSER_WEBGPU),
            ..GpuOptions::default()
        };
        let ctx = GpuContext::new_async(&opts).await.map_err(err)?;
        Ok(Gpu { ctx })
    }

    /// The adapter and the limits that decide the kernels: `{ name, nameHidden, backend,
    /// deviceType, fallback, driver, subgroupMinSize, subgroupMaxSize, subgroupFeature,
    /// subgroupsUsed, limits: { … } }`.
    pub fn info(&self) -> JsValue {
        let ctx = &self.ctx;
        let info = ctx.adapter_info();
        let o = Object::new();
        set(&o, "name", info.name.as_str());
        set(&o, "nameHidden", info.name.is_empty());
        set(&o, "backend", format!("{:?}", info.backend));
        set(&o, "deviceType", format!("{:?}", info.device_type));
        set(&o, "fallback", ctx.is_software());
        set(&o, "driver", ctx.adapter().driver);
        set(&o, "subgroupMinSize", info.subgroup_min_size);
        set(&o, "subgroupMaxSize", info.subgroup_max_size);
        set(
            &o,
            "subgroupFeature",
            ctx.device().features().contains(wgpu::Features::SUBGROUP),
        );
        set(&o, "subgroupsUsed", ctx.uses_subgroups());
        let l = ctx.limits();
        let limits = Object::new();
        for (k, v) in [
            (
                "maxStorageBufferBindingSize",
                l.max_storage_buffer_binding_size as f64,
            ),
            ("maxBufferSize", l.max_buffer_size as f64),
            (
                "maxUniformBufferBindingSize",
                l.max_uniform_buffer_binding_size as f64,
            ),
            (
                "maxComputeInvocationsPerWorkgroup",
                f64::from(l.max_compute_invocations_per_workgroup),
            ),
            (
                "maxComputeWorkgroupSizeX",
                f64::from(l.max_compute_workgroup_size_x),
            ),
            (
                "maxComputeWorkgroupSizeY",
                f64::from(l.max_compute_workgroup_size_y),
            ),
            (
                "maxComputeWorkgroupStorageSize",
                f64::from(l.max_compute_workgroup_storage_size),
            ),
            (
                "maxComputeWorkgroupsPerDimension",
                f64::from(l.max_compute_workgroups_per_dimension),
            ),
            (
                "maxTextureDimension2D",
                f64::from(l.max_texture_dimension_2d),
            ),
            (
                "maxStorageBuffersPerShaderStage",
                f64::from(l.max_storage_buffers_per_shader_stage),
            ),
        ] {
            set(&limits, k, v);
        }
        set(&o, "limits", limits);
        o.into()
    }
}

/// A model loaded from a file, on the CPU and (after [`upload`](Model::upload)) on the GPU.
#[wasm_bindgen]
pub struct Model {
    inner: Rc<Inner>,
}

struct Inner {
    mlp: Mlp,
    /// The fast CPU path, on the calling thread (a page has no threads to spare).
    fast: CpuMlp,
    name: String,
    format: &'static str,
    gpu: RefCell<Option<Rc<GpuMlp>>>,
}

/// Reads a model file: a self-describing safetensors state_dict (`wgpu_mlp.arch` metadata), or
/// an ONNX file (see [`load_onnx`]). `name` names it in messages and decides nothing else but
/// the `.onnx` extension.
pub fn load_model(bytes: &[u8], name: &str) -> Result<(Mlp, &'static str), String> {
    load_model_with_data(bytes, name, &[])
}

/// [`load_model`] with the other files the user picked with it: an ONNX file's external data
/// (`model.onnx.data`), by file name. A safetensors file takes no other file.
pub fn load_model_with_data(
    bytes: &[u8],
    name: &str,
    data: &[(&str, &[u8])],
) -> Result<(Mlp, &'static str), String> {
    if looks_like_onnx(bytes, name) {
        return load_onnx(bytes, name, data).map(|m| (m, "onnx"));
    }
    if let Some((other, _)) = data.first() {
        return Err(format!(
            "{name} is a safetensors file, which keeps all its tensors inside: pick it alone, \
             without {other}"
        ));
    }
    wgpu_mlp::io::safetensors::from_bytes(bytes, name, None, None)
        .map(|m| (m, "safetensors"))
        .map_err(|e| e.to_string())
}

/// A `.onnx` name, or bytes that are not safetensors (8-byte header length, then `{`) but start
/// as an ONNX `ModelProto` does (field 1, `ir_version`, a varint: byte 0x08).
fn looks_like_onnx(bytes: &[u8], name: &str) -> bool {
    let safetensors = bytes.len() > 8 && bytes[8] == b'{';
    name.to_ascii_lowercase().ends_with(".onnx") || (!safetensors && bytes.first() == Some(&0x08))
}

/// Every ONNX file goes through here: the crate's importer (`wgpu_mlp::onnx`, this crate's
/// default feature `onnx`), with the external data files picked with it (PyTorch's default
/// `torch.onnx.export(…, dynamo=True)` writes the weights to `model.onnx.data`). A model whose
/// data file was not picked gets a message saying to pick both.
#[cfg(feature = "onnx")]
pub fn load_onnx(bytes: &[u8], name: &str, data: &[(&str, &[u8])]) -> Result<Mlp, String> {
    wgpu_mlp::onnx::from_bytes_with_data(bytes, name, data).map_err(|e| {
        let e = e.to_string();
        let hint = |file: &str| {
            format!(
                "pick both files together (select {name} and {file} in the file dialog, \
                 Ctrl- or ⌘-click)"
            )
        };
        match external_file(&e) {
            // Nothing picked with it: say so plainly, rather than "not among the files given ()".
            Some((prefix, file)) if data.is_empty() => format!(
                "{prefix}keeps its weights in a separate file, '{file}', which was not picked: {}",
                hint(file)
            ),
            Some((_, file)) if !data.iter().any(|(n, _)| *n == file) => {
                format!("{e}; {}", hint(file))
            }
            _ => e,
        }
    })
}

/// Where an importer error says a data file is missing (`PREFIX stores its data in 'FILE',
/// which …`): the text before "stores", and the file.
#[cfg(feature = "onnx")]
fn external_file(msg: &str) -> Option<(&str, &str)> {
    const KEY: &str = "stores its data in '";
    let at = msg.find(KEY)?;
    let rest = &msg[at + KEY.len()..];
    Some((&msg[..at], &rest[..rest.find('\'')?]))
}

/// Without the `onnx` feature: a message saying so.
#[cfg(not(feature = "onnx"))]
pub fn load_onnx(_bytes: &[u8], name: &str, _data: &[(&str, &[u8])]) -> Result<Mlp, String> {
    Err(format!(
        "{name}: ONNX files need a build of this page with the `onnx` feature (wgpu-mlp's ONNX \
         importer). Save the model as a self-describing .safetensors instead (`wgpu-mlp init`, \
         or safetensors.torch.save_file(model.state_dict(), path, \
         metadata={{\"wgpu_mlp.arch\": \"linear,relu,linear\"}}))"
    ))
}

/// `data` as a `[batch, width]` matrix, or an error saying why it is not one.
fn matrix(data: Vec<f32>, batch: usize, width: usize) -> Result<Matrix, String> {
    if batch == 0 {
        return Err("the batch size must be at least 1".into());
    }
    if batch.checked_mul(width) != Some(data.len()) {
        return Err(format!(
            "{} values are not {batch} rows of the model's {width} input features",
            data.len()
        ));
    }
    Matrix::new(batch, width, data).map_err(|e| e.to_string())
}

impl Model {
    /// A model made here (the training panel's): `format` names where it came from.
    pub(crate) fn from_mlp(mlp: Mlp, name: &str, format: &'static str) -> Result<Model, String> {
        let fast = CpuMlp::with_threads(&mlp, 1).map_err(|e| e.to_string())?;
        Ok(Model {
            inner: Rc::new(Inner {
                fast,
                mlp,
                name: name.to_string(),
                format,
                gpu: RefCell::new(None),
            }),
        })
    }
}

#[wasm_bindgen]
impl Model {
    /// Reads a model file's bytes (`Model.load(new Uint8Array(await file.arrayBuffer()),
    /// file.name)`). Throws on a damaged or unsupported file.
    pub fn load(bytes: &[u8], name: &str) -> Result<Model, JsError> {
        panic::install();
        let (mlp, format) = load_model(bytes, name).map_err(err)?;
        Model::from_mlp(mlp, name, format).map_err(err)
    }

    /// A model file with the files picked with it: `others` is an array of `[name, bytes]`
    /// pairs (`[['model.onnx.data', Uint8Array]]`), an ONNX file's external data. Throws when
    /// a data file the model names is missing, saying to pick both.
    #[wasm_bindgen(js_name = loadWithData)]
    pub fn load_with_data(bytes: &[u8], name: &str, others: Array) -> Result<Model, JsError> {
        panic::install();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for pair in others.iter() {
            let pair = Array::from(&pair);
            let file = pair
                .get(0)
                .as_string()
                .ok_or_else(|| err("loadWithData: each other file is a [name, Uint8Array] pair"))?;
            let data = pair.get(1).dyn_into::<Uint8Array>().map_err(|_| {
                err(format!(
                    "loadWithData: {file}: the bytes must be a Uint8Array"
                ))
            })?;
            files.push((file, data.to_vec()));
        }
        let data: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let (mlp, format) = load_model_with_data(bytes, name, &data).map_err(err)?;
        Model::from_mlp(mlp, name, format).map_err(err)
    }

    /// torchsummary's table, exactly as `wgpu-mlp summary --weights FILE` prints it.
    pub fn summary(&self) -> String {
        summary::summary(&self.inner.mlp, -1)
    }

    /// The file name it was loaded from.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.name.clone()
    }

    /// `safetensors`, `onnx`, or `trained` (made by the training panel).
    #[wasm_bindgen(getter)]
    pub fn format(&self) -> String {
        self.inner.format.to_string()
    }

    /// The architecture in the `--arch` grammar (`linear,relu,linear,softmax`).
    #[wasm_bindgen(getter)]
    pub fn arch(&self) -> String {
        Arch::of(&self.inner.mlp)
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    /// Input features.
    #[wasm_bindgen(getter, js_name = inFeatures)]
    pub fn in_features(&self) -> usize {
        self.inner.mlp.in_features()
    }

    /// Output features.
    #[wasm_bindgen(getter, js_name = outFeatures)]
    pub fn out_features(&self) -> usize {
        self.inner.mlp.out_features()
    }

    /// Parameters.
    #[wasm_bindgen(getter, js_name = paramCount)]
    pub fn param_count(&self) -> usize {
        self.inner.mlp.param_count()
    }

    /// Warnings about the weights (e.g. a constant weight matrix), as the CLI prints them.
    pub fn diagnostics(&self) -> Vec<String> {
        self.inner.mlp.diagnostics().to_vec()
    }

    /// Uploads the weights to `gpu` and compiles the kernels the browser's limits allow.
    pub fn upload(&self, gpu: &Gpu) -> Result<(), JsError> {
        let g = GpuMlp::new(&gpu.ctx, &self.inner.mlp).map_err(err)?;
        *self.inner.gpu.borrow_mut() = Some(Rc::new(g));
        Ok(())
    }

    /// The kernel each Linear layer runs for a batch of `batch` rows, comma separated (after
    /// [`upload`](Self::upload)).
    #[wasm_bindgen(js_name = linearKernels)]
    pub fn linear_kernels(&self, batch: usize) -> Result<String, JsError> {
        let g = self.gpu().map_err(err)?;
        let names: Vec<String> = g
            .linear_kernels(batch)
            .iter()
            .map(|k| k.to_string())
            .collect();
        Ok(names.join(","))
    }

    fn gpu(&self) -> Result<Rc<GpuMlp>, String> {
        self.inner
            .gpu
            .borrow()
            .clone()
            .ok_or_else(|| "the model is not on the GPU: call upload(gpu) first".to_string())
    }

    /// The forward pass on WebGPU of `batch` rows (`input` row-major, `batch × inFeatures`
    /// values): a promise of the `batch × outFeatures` outputs (`Float32Array`).
    #[wasm_bindgen(js_name = forwardGpu)]
    pub fn forward_gpu(&self, input: Vec<f32>, batch: usize) -> Promise {
        let inner = Rc::clone(&self.inner);
        let gpu = self.gpu();
        future_to_promise(async move {
            let gpu = gpu.map_err(err)?;
            let x = matrix(input, batch, inner.mlp.in_features()).map_err(err)?;
            let y = gpu.forward_async(&x).await.map_err(err)?;
            Ok(Float32Array::from(y.as_slice()).into())
        })
    }

    /// The same on the crate's CPU reference (f64 accumulation), in wasm.
    #[wasm_bindgen(js_name = forwardCpu)]
    pub fn forward_cpu(&self, input: Vec<f32>, batch: usize) -> Result<Vec<f32>, JsError> {
        let x = matrix(input, batch, self.inner.mlp.in_features()).map_err(err)?;
        Ok(cpu::forward(&self.inner.mlp, &x).map_err(err)?.into_vec())
    }

    /// The same on the crate's fast CPU path (`cpu::CpuMlp`: packed weights, f32 tiles, one
    /// thread here), in wasm.
    #[wasm_bindgen(js_name = forwardCpuFast)]
    pub fn forward_cpu_fast(&self, input: Vec<f32>, batch: usize) -> Result<Vec<f32>, JsError> {
        let x = matrix(input, batch, self.inner.mlp.in_features()).map_err(err)?;
        Ok(self.inner.fast.forward(&x).map_err(err)?.into_vec())
    }

    /// `torch.manual_seed(seed); torch.randn(batch, inFeatures)`, row-major. `seed` is a
    /// whole number from 0 to 2⁵³.
    #[wasm_bindgen(js_name = randomInput)]
    pub fn random_input(&self, batch: usize, seed: f64) -> Result<Vec<f32>, JsError> {
        if !((0.0..=9_007_199_254_740_992.0).contains(&seed) && seed.fract() == 0.0) {
            return Err(err(format!(
                "the seed must be a whole number from 0 to 2^53, not {seed}"
            )));
        }
        inputs::random(batch, self.in_features(), seed as u64).map_err(err)
    }

    /// Numbers pasted by the user (commas, spaces, newlines or brackets between them) as
    /// whole rows of the model's inputs; the batch is their count / `inFeatures`.
    #[wasm_bindgen(js_name = parseInput)]
    pub fn parse_input(&self, text: &str) -> Result<Vec<f32>, JsError> {
        inputs::parse(text, self.in_features()).map_err(err)
    }

    /// The digits demo: the ten class probabilities of an 8×8 image (64 values 0..16, as
    /// [`digitPixels`](digit_pixels) gives), on WebGPU. The model must map 64 inputs to 10
    /// outputs; its input is the image / 16, as it was trained (web/model/README.md).
    #[wasm_bindgen(js_name = classifyDigit)]
    pub fn classify_digit(&self, pixels: Vec<f32>) -> Promise {
        let checked = if self.in_features() != 64 || self.out_features() != 10 {
            Err(format!(
                "a digits model maps 64 inputs to 10 classes; this one maps {} to {}",
                self.in_features(),
                self.out_features()
            ))
        } else if pixels.len() != 64 {
            Err(format!("an 8×8 image has 64 values, not {}", pixels.len()))
        } else if let Some(v) = pixels.iter().find(|v| !(0.0..=16.0).contains(*v)) {
            Err(format!("pixel values run from 0 to 16, not {v}"))
        } else {
            Ok(pixels.iter().map(|v| v / 16.0).collect::<Vec<f32>>())
        };
        match checked {
            Ok(x) => self.forward_gpu(x, 1),
            Err(e) => Promise::reject(&err(e).into()),
        }
    }
}

/// The 8×8 image (64 values 0..16, row-major) of a drawing: `ImageData.data` of a
/// `width × height` canvas whose alpha is the ink (see [`digits`]).
#[wasm_bindgen(js_name = digitPixels)]
pub fn digit_pixels(rgba: &[u8], width: usize, height: usize) -> Result<Vec<f32>, JsError> {
    digits::digit_pixels(rgba, width, height)
        .map(|p| p.to_vec())
        .map_err(err)
}

/// How the GPU's output compares with the CPU's: `{ agree, maxAbsDiff, mismatches,
/// firstMismatch, len, rtol, atol }` (agreement: `|gpu − cpu| ≤ atol + rtol·|cpu|` everywhere).
#[wasm_bindgen]
pub fn compare(gpu: &[f32], cpu: &[f32]) -> Result<JsValue, JsError> {
    let a = inputs::compare(gpu, cpu).map_err(err)?;
    let o = Object::new();
    set(&o, "agree", a.agree());
    set(&o, "maxAbsDiff", a.max_abs_diff);
    set(&o, "mismatches", a.mismatches as f64);
    set(
        &o,
        "firstMismatch",
        a.first_mismatch
            .map_or(JsValue::NULL, |i| (i as f64).into()),
    );
    set(&o, "len", a.len as f64);
    set(&o, "rtol", inputs::RTOL);
    set(&o, "atol", inputs::ATOL);
    Ok(o.into())
}

/// The crate's version, for the page's footer.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
