//! The training panel's JavaScript API: [`Training`], a [`training::Session`] behind
//! wasm-bindgen.
//!
//! ```js
//! const data = new Uint8Array(await (await fetch('model/digits.bin')).arrayBuffer());
//! const t = new Training(data, 'pytorch', 'relu', 'adam', 0.01, 64, 0, 0); // init, act, optim, lr, batch, seed, shuffle seed
//! const loss = t.step();               // one optimizer step, synchronous (the CPU reference)
//! t.score(true);                       // { loss, correct, total, accuracy } on the held-out rows
//! t.health();                          // [{ name, gradWeight, gradBias, weight, updateRatio, dead, saturated, identicalUnits }]
//! const m = t.toModel();               // a Model (with a softmax): upload(gpu), classifyDigit(…)
//! ```
//!
//! `step` is synchronous: on the CPU a step of this model takes milliseconds, and the page calls
//! it in chunks that yield to the event loop between them. The GPU trainer, when the library has
//! one, will come as an asynchronous `stepGpu()` returning a promise of the loss (as
//! `Model.forwardGpu` is to `forwardCpu`): the page's loop already awaits between chunks.

use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;
use wgpu_mlp::train::Backend;

use crate::training::{self, Config, InitChoice, Score, Session};
use crate::{Model, err, panic, set};

/// A digits MLP (64 → 64 → 32 → 10) being trained in the page.
#[wasm_bindgen]
pub struct Training {
    session: Session,
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
        let config = Config {
            hidden: vec![64, 32],
            activation: training::parse_activation(activation).map_err(err)?,
            init: InitChoice::parse(init).map_err(err)?,
            optimizer: training::parse_optimizer(optimizer, lr).map_err(err)?,
            batch_size,
            seed: whole(seed, "the seed")?,
            shuffle_seed: whole(shuffle_seed, "the shuffle seed")?,
            backend: Backend::CpuReference,
        };
        let (train, heldout) = training::parse_digits(data).map_err(err)?;
        let session = Session::new(&config, train, heldout).map_err(err)?;
        Ok(Training { session })
    }

    /// One optimizer step on the next batch: its loss (`loss.item()`). Synchronous.
    pub fn step(&mut self) -> Result<f32, JsError> {
        self.session.step().map_err(err)
    }

    /// Optimizer steps taken.
    #[wasm_bindgen(getter)]
    pub fn steps(&self) -> f64 {
        self.session.steps() as f64
    }

    /// Whole epochs done.
    #[wasm_bindgen(getter, js_name = epochsDone)]
    pub fn epochs_done(&self) -> usize {
        self.session.epochs_done()
    }

    /// Steps per epoch (`ceil(rows / batch)`).
    #[wasm_bindgen(getter, js_name = stepsPerEpoch)]
    pub fn steps_per_epoch(&self) -> usize {
        self.session.steps_per_epoch()
    }

    /// Where the steps run: `cpu-reference` (wasm).
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        Backend::CpuReference.to_string()
    }

    /// `{ loss, correct, total, accuracy }` on the held-out rows (`heldout = true`) or the
    /// training rows.
    pub fn score(&self, heldout: bool) -> Result<JsValue, JsError> {
        Ok(score_object(self.session.score(heldout).map_err(err)?))
    }

    /// Each Linear layer's gradient health: `[{ name, gradWeight, gradBias, weight,
    /// updateRatio, dead, saturated, identicalUnits }]` (`dead` and `saturated` null where they
    /// do not apply). See `training::LayerHealth`.
    pub fn health(&mut self) -> Result<Array, JsError> {
        let rows = Array::new();
        for h in self.session.health().map_err(err)? {
            let o = Object::new();
            set(&o, "name", h.name.as_str());
            set(&o, "gradWeight", h.grad_weight);
            set(&o, "gradBias", h.grad_bias);
            set(&o, "weight", h.weight);
            set(&o, "updateRatio", h.update_ratio);
            set(&o, "dead", h.dead.map_or(JsValue::NULL, JsValue::from));
            set(
                &o,
                "saturated",
                h.saturated.map_or(JsValue::NULL, JsValue::from),
            );
            set(&o, "identicalUnits", h.identical_units);
            rows.push(&o);
        }
        Ok(rows)
    }

    /// The model trained so far, with a softmax after its logits, as a [`Model`] the digits
    /// panel can draw with (`upload(gpu)`, then `classifyDigit`).
    #[wasm_bindgen(js_name = toModel)]
    pub fn to_model(&self) -> Result<Model, JsError> {
        let mlp = self.session.classifier().map_err(err)?;
        Model::from_mlp(mlp, "trained in this page", "trained").map_err(err)
    }

    /// The trained state_dict (logits, without the softmax) as safetensors bytes, the file
    /// `wgpu-mlp train -o` writes.
    #[wasm_bindgen(js_name = stateDict)]
    pub fn state_dict(&self) -> Result<Vec<u8>, JsError> {
        wgpu_mlp::train::state_dict_bytes(self.session.model(), None).map_err(err)
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

    /// The fixture's `"losses": [...]` (written by Python's json: one number a line).
    fn native_losses() -> Vec<f32> {
        let start = FIXTURE.find("\"losses\": [").expect("losses") + "\"losses\": [".len();
        let end = start + FIXTURE[start..].find(']').expect("]");
        FIXTURE[start..end]
            .split(',')
            .map(|v| v.trim().parse::<f32>().expect("a number"))
            .collect()
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
