//! The training panel's JavaScript API: [`Training`], a [`training::Session`] behind
//! wasm-bindgen.
//!
//! ```js
//! const data = new Uint8Array(await (await fetch('model/digits.bin')).arrayBuffer());
//! const t = new Training(data, 'pytorch', 'relu', 'adam', 0.01, 64, 0, 0); // init, act, optim, lr, batch, seed, shuffle seed
//! const loss = t.step();               // one optimizer step, synchronous (the CPU reference)
//! const g = Training.onWebGpu(await Gpu.init(), data, 'pytorch', 'relu', 'adam', 0.01, 64, 0, 0);
//! const l = await g.stepAsync();        // one step on WebGPU: a promise of its loss
//! t.score(true);                       // { loss, correct, total, accuracy } on the held-out rows
//! t.health();                          // the last epoch's: [{ name, layer, units, grad, update, dead, saturated, identical }]
//! t.healthWarnings();                  // its warnings: [string]
//! const m = t.toModel();               // a Model (with a softmax): upload(gpu), classifyDigit(…)
//! ```
//!
//! `step` is synchronous: on the CPU a step of this model takes milliseconds, and the page calls
//! it in chunks that yield to the event loop between them. On WebGPU (`Training.onWebGpu`) a
//! step is `stepAsync()`, a promise of the loss (as `Model.forwardGpu` is to `forwardCpu`; it
//! works on the CPU too); `step()` there throws, naming `stepAsync`. Await each `stepAsync`
//! before the next call: while one runs, the other calls throw that training is busy.

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

use js_sys::{Array, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use wgpu_mlp::train::Backend;

use crate::training::{self, Config, InitChoice, Score, Session};
use crate::{Gpu, Model, err, panic, set};

/// A digits MLP (64 → 64 → 32 → 10) being trained in the page.
#[wasm_bindgen]
pub struct Training {
    /// Shared with a `stepAsync` in flight (which holds it mutably until it ends).
    session: Rc<RefCell<Session>>,
}

/// What a call made while a `stepAsync` runs throws.
const BUSY: &str = "training is busy: await the last stepAsync() first";

impl Training {
    fn session(&self) -> Result<Ref<'_, Session>, JsError> {
        self.session.try_borrow().map_err(|_| err(BUSY))
    }

    fn session_mut(&self) -> Result<RefMut<'_, Session>, JsError> {
        self.session.try_borrow_mut().map_err(|_| err(BUSY))
    }

    /// The settings `new` and `onWebGpu` share, checked.
    #[allow(clippy::too_many_arguments)]
    fn config(
        init: &str,
        activation: &str,
        optimizer: &str,
        lr: f64,
        batch_size: usize,
        seed: f64,
        shuffle_seed: f64,
        backend: Backend,
    ) -> Result<Config, JsError> {
        let whole = |v: f64, what: &str| {
            if (0.0..=9_007_199_254_740_992.0).contains(&v) && v.fract() == 0.0 {
                Ok(v as u64)
            } else {
                Err(err(format!(
                    "{what} must be a whole number from 0 to 2^53, not {v}"
                )))
            }
        };
        if batch_size == 0 {
            return Err(err("the batch size must be at least 1"));
        }
        Ok(Config {
            hidden: vec![64, 32],
            activation: training::parse_activation(activation).map_err(err)?,
            init: InitChoice::parse(init).map_err(err)?,
            optimizer: training::parse_optimizer(optimizer, lr).map_err(err)?,
            batch_size,
            seed: whole(seed, "the seed")?,
            shuffle_seed: whole(shuffle_seed, "the shuffle seed")?,
            backend,
        })
    }

    fn wrap(session: Session) -> Training {
        Training {
            session: Rc::new(RefCell::new(session)),
        }
    }
}

fn score_object(s: Score) -> JsValue {
    let o = Object::new();
    set(&o, "loss", s.loss);
    set(&o, "correct", s.correct as f64);
    set(&o, "total", s.total as f64);
    set(&o, "accuracy", s.correct as f64 / s.total.max(1) as f64);
    o.into()
}

#[wasm_bindgen]
impl Training {
    /// A new model on `digits.bin`'s bytes (web/model/): `init` is `zeros`, `pytorch`,
    /// `xavier` or `kaiming`; `activation` `relu`, `leaky_relu`, `tanh`, `sigmoid` or `gelu`;
    /// `optimizer` `sgd`, `momentum` (SGD, 0.9), `adam` or `adamw`. `seed` is
    /// `torch.manual_seed` before the layers; `shuffleSeed` the DataLoader's generator's.
    /// Throws on a setting it does not know, naming the choices.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        data: &[u8],
        init: &str,
        activation: &str,
        optimizer: &str,
        lr: f64,
        batch_size: usize,
        seed: f64,
        shuffle_seed: f64,
    ) -> Result<Training, JsError> {
        panic::install();
        let config = Self::config(
            init,
            activation,
            optimizer,
            lr,
            batch_size,
            seed,
            shuffle_seed,
            Backend::CpuReference,
        )?;
        let (train, heldout) = training::parse_digits(data).map_err(err)?;
        let session = Session::new(&config, train, heldout).map_err(err)?;
        Ok(Self::wrap(session))
    }

    /// The same model trained on WebGPU (`gpu` from `await Gpu.init()`): the same settings as
    /// `new`; step with `stepAsync()`.
    #[wasm_bindgen(js_name = onWebGpu)]
    #[allow(clippy::too_many_arguments)]
    pub fn on_webgpu(
        gpu: &Gpu,
        data: &[u8],
        init: &str,
        activation: &str,
        optimizer: &str,
        lr: f64,
        batch_size: usize,
        seed: f64,
        shuffle_seed: f64,
    ) -> Result<Training, JsError> {
        panic::install();
        let config = Self::config(
            init,
            activation,
            optimizer,
            lr,
            batch_size,
            seed,
            shuffle_seed,
            Backend::Gpu,
        )?;
        let (train, heldout) = training::parse_digits(data).map_err(err)?;
        let session = Session::on_gpu(&config, train, heldout, &gpu.ctx).map_err(err)?;
        Ok(Self::wrap(session))
    }

    /// One optimizer step on the next batch, awaited: a promise of its loss (`loss.item()`).
    /// On WebGPU the step and the read-back of its loss and parameters never block the page;
    /// on the CPU it is `step`.
    #[wasm_bindgen(js_name = stepAsync)]
    pub fn step_async(&self) -> Promise {
        let session = Rc::clone(&self.session);
        future_to_promise(async move {
            let mut s = session.try_borrow_mut().map_err(|_| err(BUSY))?;
            let loss = s.step_async().await.map_err(err)?;
            Ok(JsValue::from(loss))
        })
    }

    /// One optimizer step on the next batch: its loss (`loss.item()`). Synchronous.
    pub fn step(&mut self) -> Result<f32, JsError> {
        self.session_mut()?.step().map_err(err)
    }

    /// Optimizer steps taken.
    #[wasm_bindgen(getter)]
    pub fn steps(&self) -> f64 {
        self.session.borrow().steps() as f64
    }

    /// Whole epochs done.
    #[wasm_bindgen(getter, js_name = epochsDone)]
    pub fn epochs_done(&self) -> usize {
        self.session.borrow().epochs_done()
    }

    /// Steps per epoch (`ceil(rows / batch)`).
    #[wasm_bindgen(getter, js_name = stepsPerEpoch)]
    pub fn steps_per_epoch(&self) -> usize {
        self.session.borrow().steps_per_epoch()
    }

    /// Where the steps run: `cpu-reference` (wasm) or `gpu` (WebGPU).
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.session.borrow().backend().to_string()
    }

    /// `{ loss, correct, total, accuracy }` on the held-out rows (`heldout = true`) or the
    /// training rows.
    pub fn score(&self, heldout: bool) -> Result<JsValue, JsError> {
        Ok(score_object(self.session()?.score(heldout).map_err(err)?))
    }

    /// Each Linear layer's gradient health over the last whole epoch (the library's
    /// `train::Monitor`, the table `wgpu-mlp train` prints): `[{ name, layer, units, grad,
    /// update, dead, saturated, identical }]` (`dead` and `saturated` null where they do not
    /// apply); empty before the first epoch ends. docs/TRAINING.md, "Gradient health".
    pub fn health(&self) -> Result<Array, JsError> {
        let s = self.session()?;
        let rows = Array::new();
        for h in s.health().map_or(&[][..], |r| r.layers.as_slice()) {
            let o = Object::new();
            set(&o, "name", s.layer_name(h.module).as_str());
            set(&o, "layer", h.layer);
            set(&o, "units", h.units);
            set(&o, "grad", h.grad);
            set(&o, "update", h.update);
            set(&o, "dead", h.dead.map_or(JsValue::NULL, JsValue::from));
            set(
                &o,
                "saturated",
                h.saturated.map_or(JsValue::NULL, JsValue::from),
            );
            set(&o, "identical", h.identical);
            rows.push(&o);
        }
        Ok(rows)
    }

    /// The warnings of the last whole epoch's gradient health (identical units, vanishing
    /// gradients), as sentences; empty before the first epoch ends.
    #[wasm_bindgen(js_name = healthWarnings)]
    pub fn health_warnings(&self) -> Result<Array, JsError> {
        let s = self.session()?;
        let warnings = s.health().map_or(&[][..], |r| r.warnings.as_slice());
        Ok(warnings.iter().map(|w| JsValue::from(w.as_str())).collect())
    }

    /// The model trained so far, with a softmax after its logits, as a [`Model`] the digits
    /// panel can draw with (`upload(gpu)`, then `classifyDigit`).
    #[wasm_bindgen(js_name = toModel)]
    pub fn to_model(&self) -> Result<Model, JsError> {
        let mlp = self.session()?.classifier().map_err(err)?;
        Model::from_mlp(mlp, "trained in this page", "trained").map_err(err)
    }

    /// The trained state_dict (logits, without the softmax) as safetensors bytes, the file
    /// `wgpu-mlp train -o` writes.
    #[wasm_bindgen(js_name = stateDict)]
    pub fn state_dict(&self) -> Result<Vec<u8>, JsError> {
        wgpu_mlp::train::state_dict_bytes(self.session()?.model(), None).map_err(err)
    }
}

// In the browser only (JavaScript values): the API the page calls, on the shipped data.
#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const DIGITS: &[u8] = include_bytes!("../model/digits.bin");
    const FIXTURE: &str = include_str!("../e2e/fixtures/train_trajectory.json");
    const ONNX: &[u8] = include_bytes!("../../tests/data/external/digits.onnx");
    const ONNX_DATA: &[u8] = include_bytes!("../../tests/data/external/digits.onnx.data");

    /// PyTorch's float32-vs-float64 drift on the first epoch (make_train_drift.py).
    const DRIFT: &str = include_str!("../e2e/fixtures/train_drift.json");

    /// A JSON file's `"key": [...]` of numbers (written by Python's json: one a line).
    fn numbers(json: &str, key: &str) -> Vec<f64> {
        let open = format!("\"{key}\": [");
        let start = json.find(&open).expect(key) + open.len();
        let end = start + json[start..].find(']').expect("]");
        json[start..end]
            .split(',')
            .map(|v| v.trim().parse::<f64>().expect("a number"))
            .collect()
    }

    /// The fixture's `"losses": [...]`.
    fn native_losses() -> Vec<f32> {
        numbers(FIXTURE, "losses")
            .into_iter()
            .map(|v| v as f32)
            .collect()
    }

    #[test]
    async fn steps_on_webgpu_follow_the_cpu_reference_within_issue_21s_tolerance() {
        use wasm_bindgen_futures::JsFuture;
        let gpu = Gpu::init().await.map_err(JsValue::from).unwrap();
        let settings = ("pytorch", "relu", "adam", 0.01, 64, 0.0, 0.0);
        let (i, a, o, lr, b, s, sh) = settings;
        let g = Training::on_webgpu(&gpu, DIGITS, i, a, o, lr, b, s, sh)
            .map_err(JsValue::from)
            .unwrap();
        assert_eq!(g.backend(), "gpu");
        let mut c = Training::new(DIGITS, i, a, o, lr, b, s, sh)
            .map_err(JsValue::from)
            .unwrap();
        // The blocking step is refused on WebGPU, naming the call to await; nothing stepped.
        let mut g = g;
        let refused = g.step().map_err(JsValue::from).unwrap_err();
        let refused = js_sys::Error::from(refused).message().as_string().unwrap();
        assert!(refused.contains("step_async"), "{refused}");
        assert_eq!(g.steps(), 0.0);
        // Issue 21's budget (docs/TRAINING.md, "Tolerances"): 2 x PyTorch's own float32-vs-
        // float64 loss drift so far + 4 f32 ulps of the reference's loss.
        let drift = numbers(DRIFT, "drift");
        let mut worst_drift = 0.0f64;
        let mut worst = 0.0f64;
        for (k, d) in drift.iter().enumerate() {
            let got = JsFuture::from(g.step_async()).await.unwrap();
            let got = got.as_f64().expect("a number") as f32;
            let want = c.step().map_err(JsValue::from).unwrap();
            worst_drift = worst_drift.max(*d);
            let ulp = f64::from(want.abs() * f32::EPSILON);
            let budget = 2.0 * worst_drift + 4.0 * ulp;
            let err = f64::from((got - want).abs());
            assert!(
                got.is_finite() && err <= budget,
                "step {}: WebGPU {got} vs the CPU reference {want}: off by {err:e}, budget {budget:e}",
                k + 1
            );
            worst = worst.max(err / budget);
        }
        web_sys_log(&format!(
            "WebGPU vs CPU reference, 22 steps: worst {worst:.3} of the budget"
        ));
        assert_eq!((g.steps(), g.epochs_done()), (22.0, 1));
        // The host's model is the device's after each step: the scores agree with the CPU's.
        let (sg, sc) = (g.score(true).unwrap(), c.score(true).unwrap());
        let correct = |o: &JsValue| js_sys::Reflect::get(o, &"correct".into()).unwrap();
        assert_eq!(correct(&sg).as_f64(), correct(&sc).as_f64());
        assert_eq!(g.health().map_err(JsValue::from).unwrap().length(), 3);
        // The health table: WebGPU's steps observed on the reference (Monitor::observe_step with
        // the synced model) against the CPU session's own monitored steps; the steps differ in
        // their last bits, so within 1e-5 relative (tests/train_gpu_health.rs), counts equal.
        let sg = g.session().map_err(JsValue::from).unwrap();
        let sc = c.session().map_err(JsValue::from).unwrap();
        let (rg, rc) = (sg.health().unwrap(), sc.health().unwrap());
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
        let mut worst = rel(rg.train.loss, rc.train.loss);
        for (a, b) in rg.layers.iter().zip(&rc.layers) {
            worst = worst.max(rel(a.grad, b.grad)).max(rel(a.update, b.update));
            let counts = |h: &wgpu_mlp::train::LayerHealth| (h.dead, h.saturated, h.identical);
            assert_eq!(counts(a), counts(b), "layer {}", a.layer);
        }
        assert!(rg.layers.len() == 3 && worst <= 1e-5, "{worst:e}");
        assert_eq!(
            (&rg.warnings, rg.train.accuracy),
            (&rc.warnings, rc.train.accuracy)
        );
        web_sys_log(&format!(
            "WebGPU vs CPU reference, gradient health of the epoch: worst {worst:.1e} relative"
        ));
    }

    /// A line in the test runner's output.
    fn web_sys_log(line: &str) {
        wasm_bindgen_test::console_log!("{line}");
    }

    #[test]
    fn the_first_epoch_equals_wgpu_mlp_train_on_the_cpu_reference() {
        // The fixture's settings (make_train_trajectory.sh): PyTorch's init, ReLU, Adam 0.01.
        let mut t = Training::new(DIGITS, "pytorch", "relu", "adam", 0.01, 64, 0.0, 0.0)
            .map_err(JsValue::from)
            .unwrap();
        assert_eq!(t.steps_per_epoch(), 22);
        let want = native_losses();
        for (i, w) in want.iter().take(22).enumerate() {
            let got = t.step().map_err(JsValue::from).unwrap();
            // Within 4 f32 ulps (web/e2e/train.test.mjs says why); measured: bit for bit.
            let ulps = (got.to_bits() as i64 - w.to_bits() as i64).abs();
            assert!(
                ulps <= 4,
                "step {}: {got} vs native {w} ({ulps} ulps)",
                i + 1
            );
        }
        assert_eq!(t.epochs_done(), 1);
        let model = t.to_model().map_err(JsValue::from).unwrap();
        assert_eq!((model.in_features(), model.out_features()), (64, 10));
        assert!(t.state_dict().map_err(JsValue::from).unwrap().len() > 64 * 64 * 4);
    }

    #[test]
    fn bad_settings_are_messages() {
        for (init, act, opt, lr, seed) in [
            ("he", "relu", "adam", 0.01, 0.0),
            ("zeros", "swish", "adam", 0.01, 0.0),
            ("zeros", "relu", "lbfgs", 0.01, 0.0),
            ("zeros", "relu", "sgd", f64::NAN, 0.0),
            ("zeros", "relu", "sgd", 0.1, -1.0),
        ] {
            assert!(Training::new(DIGITS, init, act, opt, lr, 64, seed, 0.0).is_err());
        }
        assert!(Training::new(&DIGITS[..100], "zeros", "relu", "sgd", 0.1, 64, 0.0, 0.0).is_err());
        assert!(Training::new(DIGITS, "zeros", "relu", "sgd", 0.1, 0, 0.0, 0.0).is_err());
    }

    #[test]
    fn onnx_with_external_data_loads_from_two_picked_files() {
        let pair = Array::new();
        pair.push(&JsValue::from_str("digits.onnx.data"));
        pair.push(&js_sys::Uint8Array::from(ONNX_DATA).into());
        let others = Array::new();
        others.push(&pair);
        let m = Model::load_with_data(ONNX, "digits.onnx", others)
            .map_err(JsValue::from)
            .unwrap();
        assert_eq!((m.in_features(), m.out_features()), (64, 10));
        let alone = crate::load_model(ONNX, "digits.onnx").unwrap_err();
        assert!(
            alone.contains("'digits.onnx.data', which was not picked")
                && alone.contains("pick both"),
            "{alone}"
        );
        let cut = crate::load_model_with_data(
            ONNX,
            "digits.onnx",
            &[("digits.onnx.data", &ONNX_DATA[..10])],
        );
        assert!(cut.unwrap_err().contains("digits.onnx.data"));
        let renamed =
            crate::load_model_with_data(ONNX, "digits.onnx", &[("other.data", ONNX_DATA)]);
        assert!(renamed.unwrap_err().contains("pick both"));
        let st = crate::load_model_with_data(
            b"\x10\0\0\0\0\0\0\0{}",
            "m.safetensors",
            &[("x.data", &[])],
        );
        assert!(st.unwrap_err().contains("pick it alone"));
    }
}
