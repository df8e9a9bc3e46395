//! The training panel's session: the digits MLP trained from scratch in the page, one optimizer
//! step at a time, on the crate's [`Trainer`] (the CPU reference, in wasm), with the data order of
//! PyTorch's `DataLoader(shuffle=True, generator=manual_seed(S))` ([`EpochOrder`]).
//!
//! Pure Rust (no wasm-bindgen): `training_api.rs` exports it to JavaScript, and the unit tests run
//! natively and in the browser. The same settings give the same step losses as `wgpu-mlp train
//! --device cpu-reference` (web/e2e/fixtures/make_train_trajectory.sh makes that trajectory;
//! web/e2e/train.test.mjs compares the page's with it).
//!
//! By default the step runs on [`Backend::CpuReference`]: a step of this 64 → 64 → 32 → 10
//! model takes milliseconds in wasm. [`Session::on_gpu`] trains on WebGPU instead
//! ([`Backend::Gpu`]): its steps are awaited ([`Session::step_async`], the library's
//! [`Trainer::step_async`] then [`Trainer::sync_async`], so the host's model, which the scores
//! read, is the device's after every step).
//!
//! The gradient-health table is the library's [`Monitor`] over each whole epoch (the table
//! `wgpu-mlp train` prints): it watches every step, through [`Trainer::step_monitored`] on the
//! CPU and [`Monitor::observe_step`] on WebGPU (the model before the step and the synced one
//! after it, recomputed on the f64 reference: the GPU reads no gradients back).

use std::collections::VecDeque;

use wgpu_mlp::data::EpochOrder;
use wgpu_mlp::gpu::GpuContext;
use wgpu_mlp::train::{Backend, EpochReport, Loss, Monitor, Optimizer, Reduction, Target, Trainer};
use wgpu_mlp::{Activation, Init, LayerSpec, Matrix, Mlp, Module, cpu};

/// Bytes of one record of `web/model/digits.bin`: the label, then the 64 pixels (0..16).
pub const RECORD: usize = 65;
/// The held-out rows at the end of `digits.bin` (the split of web/model/train_digits.py).
pub const HELDOUT_ROWS: usize = 450;
/// Input features: the 8×8 image.
pub const PIXELS: usize = 64;
/// Classes: the digits 0..9.
pub const CLASSES: usize = 10;
/// The loss: cross-entropy on the logits.
const LOSS: Loss = Loss::CrossEntropy {
    label_smoothing: 0.0,
};
/// The loss's reduction: the mean over the batch, as `nn.CrossEntropyLoss()`.
const REDUCTION: Reduction = Reduction::Mean;

/// Rows of inputs (pixel / 16, as the digits model was trained) and their class labels.
#[derive(Clone, Debug)]
pub struct Digits {
    /// `[rows, 64]`.
    pub x: Matrix,
    /// One class index per row.
    pub labels: Vec<i64>,
}

/// The training and held-out parts of `digits.bin` (records of [`RECORD`] bytes; the last
/// [`HELDOUT_ROWS`] are held out).
pub fn parse_digits(bytes: &[u8]) -> Result<(Digits, Digits), String> {
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(format!(
            "digits.bin has {} bytes: not whole records of {RECORD} (a label and 64 pixels)",
            bytes.len()
        ));
    }
    let rows = bytes.len() / RECORD;
    if rows <= HELDOUT_ROWS {
        return Err(format!(
            "digits.bin has {rows} rows: fewer than the {HELDOUT_ROWS} held out plus one"
        ));
    }
    let part = |recs: &[u8]| -> Result<Digits, String> {
        let mut x = Vec::with_capacity(recs.len() / RECORD * PIXELS);
        let mut labels = Vec::with_capacity(recs.len() / RECORD);
        for (i, r) in recs.chunks_exact(RECORD).enumerate() {
            if usize::from(r[0]) >= CLASSES || r[1..].iter().any(|&p| p > 16) {
                return Err(format!(
                    "digits.bin, record {i}: a label 0..9 and pixels 0..16 expected"
                ));
            }
            labels.push(i64::from(r[0]));
            x.extend(r[1..].iter().map(|&p| f32::from(p) / 16.0));
        }
        let m = Matrix::new(labels.len(), PIXELS, x).map_err(|e| e.to_string())?;
        Ok(Digits { x: m, labels })
    };
    let split = (rows - HELDOUT_ROWS) * RECORD;
    Ok((part(&bytes[..split])?, part(&bytes[split..])?))
}

/// How every Linear layer's weight and bias start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitChoice {
    /// `nn.init.zeros_` on weights and biases: every unit of a layer the same, forever.
    Zeros,
    /// `nn.Linear`'s own `reset_parameters()`.
    Pytorch,
    /// `nn.init.xavier_uniform_(weight)`, `zeros_(bias)`.
    Xavier,
    /// `nn.init.kaiming_uniform_(weight, nonlinearity='relu')`, `zeros_(bias)`.
    Kaiming,
}

impl InitChoice {
    /// `zeros`, `pytorch`, `xavier` or `kaiming`.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "zeros" => InitChoice::Zeros,
            "pytorch" => InitChoice::Pytorch,
            "xavier" => InitChoice::Xavier,
            "kaiming" => InitChoice::Kaiming,
            _ => {
                return Err(format!(
                    "unknown init '{s}': zeros, pytorch, xavier or kaiming"
                ));
            }
        })
    }

    fn weight_and_bias(self) -> (Init, Init) {
        match self {
            InitChoice::Zeros => (Init::Zeros, Init::Zeros),
            InitChoice::Pytorch => (Init::PytorchDefault, Init::PytorchDefault),
            InitChoice::Xavier => (Init::xavier_uniform(), Init::Zeros),
            // kaiming_uniform_'s defaults (a = 0, fan_in, leaky_relu) are relu's gain √2.
            InitChoice::Kaiming => (Init::kaiming_uniform(), Init::Zeros),
        }
    }
}

/// The hidden layers' activation: `relu`, `leaky_relu` (slope 0.01), `tanh`, `sigmoid`, `gelu`.
pub fn parse_activation(s: &str) -> Result<Activation, String> {
    Ok(match s {
        "relu" => Activation::Relu,
        "leaky_relu" => Activation::LeakyRelu(0.01),
        "tanh" => Activation::Tanh,
        "sigmoid" => Activation::Sigmoid,
        "gelu" => Activation::Gelu,
        _ => {
            return Err(format!(
                "unknown activation '{s}': relu, leaky_relu, tanh, sigmoid or gelu"
            ));
        }
    })
}

/// The optimizer by name (`sgd`, `momentum` (SGD with momentum 0.9), `adam`, `adamw`), with
/// PyTorch's defaults otherwise.
pub fn parse_optimizer(s: &str, lr: f64) -> Result<Optimizer, String> {
    if !(lr.is_finite() && lr > 0.0) {
        return Err(format!(
            "the learning rate must be a positive number, not {lr}"
        ));
    }
    Ok(match s {
        "sgd" => Optimizer::sgd(lr),
        "momentum" => Optimizer::Sgd {
            lr,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        },
        "adam" => Optimizer::adam(lr),
        "adamw" => Optimizer::adamw(lr),
        _ => {
            return Err(format!(
                "unknown optimizer '{s}': sgd, momentum, adam or adamw"
            ));
        }
    })
}

/// What to train and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// Hidden layer widths (the page's: 64, 32).
    pub hidden: Vec<usize>,
    /// The hidden layers' activation.
    pub activation: Activation,
    /// The init of every Linear layer.
    pub init: InitChoice,
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Rows per step.
    pub batch_size: usize,
    /// `torch.manual_seed(seed)` before the layers are made.
    pub seed: u64,
    /// The DataLoader's generator seed.
    pub shuffle_seed: u64,
    /// Where a step runs: [`Backend::CpuReference`] ([`Session::new`]) or [`Backend::Gpu`]
    /// ([`Session::on_gpu`]).
    pub backend: Backend,
}

impl Config {
    /// The model, as `torch.manual_seed(seed)` then `nn.Sequential(Linear, act, …, Linear)`
    /// with the init applied layer by layer.
    pub fn model(&self) -> Result<Mlp, String> {
        let (w, b) = self.init.weight_and_bias();
        let mut builder = Mlp::builder(PIXELS).seed(self.seed);
        let widths = self.hidden.iter().map(|&n| (n, self.activation));
        for (n, act) in widths.chain([(CLASSES, Activation::Identity)]) {
            let spec = LayerSpec::new(n, act)
                .weight_init(w.clone())
                .bias_init(b.clone());
            builder = builder.layer_spec(spec);
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// Loss and accuracy on one part of the data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Rows whose argmax is the label.
    pub correct: usize,
    /// Rows.
    pub total: usize,
}

/// A model being trained: the trainer, the data order, the batches left in this epoch and the
/// gradient health of the epoch so far and of the last whole one.
pub struct Session {
    trainer: Trainer,
    order: EpochOrder,
    pending: VecDeque<Vec<usize>>,
    epochs_done: usize,
    train: Digits,
    heldout: Digits,
    monitor: Monitor,
    health: Option<EpochReport>,
}

/// A batch taken for a step: its rows, inputs and targets.
type Taken = (Vec<usize>, Matrix, Target);

impl Session {
    /// A new model from `config`, to be trained on `train` and scored on `heldout`.
    pub fn new(config: &Config, train: Digits, heldout: Digits) -> Result<Self, String> {
        let model = config.model()?;
        let trainer = Trainer::new(model, LOSS, REDUCTION, config.optimizer, config.backend);
        Self::with_trainer(config, trainer, train, heldout)
    }

    /// [`Session::new`] on the GPU of `ctx` (WebGPU in the page; `config.backend` is not
    /// read): step with [`step_async`](Self::step_async).
    pub fn on_gpu(
        config: &Config,
        train: Digits,
        heldout: Digits,
        ctx: &GpuContext,
    ) -> Result<Self, String> {
        let model = config.model()?;
        let trainer = Trainer::on_gpu(model, LOSS, REDUCTION, config.optimizer, ctx);
        Self::with_trainer(config, trainer, train, heldout)
    }

    fn with_trainer(
        config: &Config,
        trainer: wgpu_mlp::Result<Trainer>,
        train: Digits,
        heldout: Digits,
    ) -> Result<Self, String> {
        let trainer = trainer.map_err(|e| e.to_string())?;
        let order = EpochOrder::new(
            train.x.rows(),
            config.batch_size,
            Some(config.shuffle_seed),
            false,
        )
        .map_err(|e| e.to_string())?;
        Ok(Session {
            monitor: Monitor::new(trainer.model(), LOSS),
            trainer,
            order,
            pending: VecDeque::new(),
            epochs_done: 0,
            train,
            heldout,
            health: None,
        })
    }

    /// One optimizer step on the next batch (a new epoch's order is drawn when the last one is
    /// used up), watched by the health monitor: the loss as `loss.item()` gives it. In a
    /// browser on the CPU paths only (on the GPU the library refuses the blocking read-back:
    /// await [`step_async`](Self::step_async)).
    pub fn step(&mut self) -> Result<f32, String> {
        let (batch, x, y) = self.take_batch()?;
        let loss = self.trainer.step_monitored(&x, &y, &mut self.monitor);
        self.stepped(batch, loss)
    }

    /// [`step`](Self::step) as a future that never blocks (any backend); on the GPU it also
    /// reads the trained parameters back, so the model the panel reads is current, and the
    /// health monitor observes the step from the parameters before and after it.
    pub async fn step_async(&mut self) -> Result<f32, String> {
        if self.trainer.backend() != Backend::Gpu {
            return self.step();
        }
        let (batch, x, y) = self.take_batch()?;
        // The host's model is the device's: every step here ends with a read-back.
        let before = self.trainer.model().clone();
        let loss = self.trainer.step_async(&x, &y).await;
        let synced = self.trainer.sync_async().await.map(|_| ());
        let loss = synced.and(loss);
        // Only a step that was taken is observed (a refused one, or one whose loss is not
        // finite, left the model as it was).
        let observed = match loss {
            Ok(_) => self
                .monitor
                .observe_step(&before, self.trainer.model(), &x, &y, REDUCTION),
            Err(_) => Ok(()),
        };
        let loss = self.stepped(batch, loss)?;
        observed.map_err(|e| e.to_string())?;
        Ok(loss)
    }

    /// The next batch (drawing a new epoch's order when the last is used up).
    fn take_batch(&mut self) -> Result<Taken, String> {
        if self.pending.is_empty() {
            self.pending = self.order.next_epoch().into();
        }
        let batch = self.pending.pop_front().expect("an epoch has a batch");
        let (x, y) = self.rows(&batch)?;
        Ok((batch, x, y))
    }

    /// After a step on `batch`: the epoch count, and the health report when the epoch is
    /// whole; a step that failed (refused, or a loss that is not finite: the model is as
    /// before it) gives its batch back, so the next step takes it again.
    fn stepped(&mut self, batch: Vec<usize>, loss: wgpu_mlp::Result<f32>) -> Result<f32, String> {
        let loss = match loss {
            Ok(l) => l,
            Err(e) => {
                self.pending.push_front(batch);
                return Err(e.to_string());
            }
        };
        if self.pending.is_empty() {
            self.epochs_done += 1;
            self.health = Some(self.monitor.finish_epoch(self.trainer.model()));
        }
        Ok(loss)
    }

    /// Where the steps run.
    pub fn backend(&self) -> Backend {
        self.trainer.backend()
    }

    fn rows(&self, batch: &[usize]) -> Result<(Matrix, Target), String> {
        let mut x = Vec::with_capacity(batch.len() * PIXELS);
        let data = self.train.x.as_slice();
        for &r in batch {
            x.extend_from_slice(&data[r * PIXELS..(r + 1) * PIXELS]);
        }
        let x = Matrix::new(batch.len(), PIXELS, x).map_err(|e| e.to_string())?;
        let y = Target::Classes(batch.iter().map(|&r| self.train.labels[r]).collect());
        Ok((x, y))
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.trainer.steps()
    }

    /// Whole epochs done.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Steps in an epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.order.batches_per_epoch()
    }

    /// Loss and accuracy on the training rows (`heldout == false`) or the held-out ones, on the
    /// CPU reference.
    pub fn score(&self, heldout: bool) -> Result<Score, String> {
        let d = if heldout { &self.heldout } else { &self.train };
        let out = cpu::forward(self.trainer.model(), &d.x).map_err(|e| e.to_string())?;
        let (loss, _) = LOSS
            .evaluate(&out, &Target::Classes(d.labels.clone()), REDUCTION)
            .map_err(|e| e.to_string())?;
        let correct = out
            .as_slice()
            .chunks_exact(CLASSES)
            .zip(&d.labels)
            .filter(|(row, label)| argmax(row) == **label as usize)
            .count();
        Ok(Score {
            loss,
            correct,
            total: d.labels.len(),
        })
    }

    /// The gradient health of the last whole epoch (the library's [`EpochReport`]: per Linear
    /// layer and its warnings); `None` before the first epoch ends.
    pub fn health(&self) -> Option<&EpochReport> {
        self.health.as_ref()
    }

    /// The table's name of the Linear layer at `module`: `Linear(64, 64) → ReLU`, or
    /// `Linear(32, 10) (logits)` for the last.
    pub fn layer_name(&self, module: usize) -> String {
        let modules = self.trainer.model().modules();
        let Some(Module::Linear(l)) = modules.get(module) else {
            return format!("module {module}");
        };
        let (i, o) = (l.in_features(), l.out_features());
        match modules.get(module + 1) {
            Some(Module::Activation(a) | Module::Function(a)) => {
                format!("Linear({i}, {o}) → {}", activation_name(*a))
            }
            _ => format!("Linear({i}, {o}) (logits)"),
        }
    }

    /// The model trained so far, with a softmax after the logits: the digits panel's input
    /// (class probabilities).
    pub fn classifier(&self) -> Result<Mlp, String> {
        let mut modules = self.trainer.model().modules().to_vec();
        modules.push(Module::Activation(Activation::Softmax));
        Mlp::new(modules).map_err(|e| e.to_string())
    }

    /// The model trained so far (logits), e.g. to save.
    pub fn model(&self) -> &Mlp {
        self.trainer.model()
    }
}

/// An activation as the panel's select names it (PyTorch's class name).
fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Relu => "ReLU",
        Activation::LeakyRelu(_) => "LeakyReLU",
        Activation::Tanh => "Tanh",
        Activation::Sigmoid => "Sigmoid",
        Activation::Gelu => "GELU",
        _ => "activation",
    }
}

/// The first of the largest (as `torch.argmax`).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// `rows` records in digits.bin's layout: a made-up pattern, class = row % 10.
    fn data(rows: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for r in 0..rows {
            let label = (r % CLASSES) as u8;
            b.push(label);
            b.extend((0..PIXELS).map(|p| ((p * 7 + usize::from(label) * 13 + r) % 17) as u8));
        }
        b
    }

    fn config(init: InitChoice, act: Activation) -> Config {
        Config {
            hidden: vec![8, 6],
            activation: act,
            init,
            optimizer: Optimizer::adam(0.01),
            batch_size: 16,
            seed: 0,
            shuffle_seed: 0,
            backend: Backend::CpuReference,
        }
    }

    #[test]
    fn parses_the_layout_and_refuses_bad_bytes() {
        let (tr, ho) = parse_digits(&data(HELDOUT_ROWS + 30)).unwrap();
        assert_eq!((tr.x.rows(), ho.x.rows()), (30, HELDOUT_ROWS));
        assert_eq!(tr.labels[3], 3);
        assert!(
            parse_digits(&[0; RECORD * 3 + 1])
                .unwrap_err()
                .contains("whole records")
        );
        assert!(
            parse_digits(&data(HELDOUT_ROWS))
                .unwrap_err()
                .contains("fewer")
        );
        let mut bad = data(HELDOUT_ROWS + 2);
        bad[RECORD + 5] = 17;
        assert!(parse_digits(&bad).unwrap_err().contains("record 1"));
        assert!(InitChoice::parse("he").is_err());
        assert!(parse_activation("swish").is_err());
        assert!(parse_optimizer("adam", 0.0).is_err());
        assert!(parse_optimizer("lbfgs", 0.1).is_err());
    }

    #[test]
    fn steps_follow_the_epoch_order_and_learn() {
        let (tr, ho) = parse_digits(&data(HELDOUT_ROWS + 40)).unwrap();
        let mut s = Session::new(&config(InitChoice::Pytorch, Activation::Relu), tr, ho).unwrap();
        assert_eq!(s.steps_per_epoch(), 3); // 40 rows, batch 16
        let first = s.score(false).unwrap().loss;
        for _ in 0..3 {
            assert!(s.step().unwrap().is_finite());
        }
        assert_eq!((s.steps(), s.epochs_done()), (3, 1));
        for _ in 0..60 {
            s.step().unwrap();
        }
        assert_eq!(s.epochs_done(), 21);
        assert!(s.score(false).unwrap().loss < first);
        let h = &s.health().unwrap().layers;
        assert_eq!(h.len(), 3);
        assert!(
            h.iter()
                .all(|l| l.grad > 0.0 && l.update > 0.0 && !l.identical)
        );
        assert!(h[0].dead.is_some() && h[2].dead.is_none() && h[0].saturated.is_none());
        assert_eq!(s.layer_name(h[0].module), "Linear(64, 8) → ReLU");
        assert_eq!(s.layer_name(h[2].module), "Linear(6, 10) (logits)");
        let c = s.classifier().unwrap();
        assert_eq!((c.in_features(), c.out_features()), (PIXELS, CLASSES));
    }

    #[test]
    fn zeros_keep_units_identical_and_sigmoid_reports_saturation() {
        let (tr, ho) = parse_digits(&data(HELDOUT_ROWS + 40)).unwrap();
        let mut s = Session::new(&config(InitChoice::Zeros, Activation::Sigmoid), tr, ho).unwrap();
        for _ in 0..2 {
            s.step().unwrap();
        }
        assert!(s.health().is_none(), "no whole epoch yet");
        for _ in 0..3 {
            s.step().unwrap();
        }
        let r = s.health().unwrap();
        let h = &r.layers;
        assert!(h[0].identical && h[1].identical, "{h:?}");
        assert!(h[0].saturated.is_some() && h[0].dead.is_none());
        assert!(r.warnings[0].contains("identical"), "{:?}", r.warnings);
        // The same rows stay the same: the weight of the first layer is one row repeated.
        let w = s.model().linears().next().unwrap().weight();
        assert!(w.chunks_exact(PIXELS).all(|r| r == &w[..PIXELS]));
    }

    /// The panel's table is the library's: the report of the same epoch trained with
    /// `Trainer::epoch_monitored` on the same rows, order and settings.
    #[test]
    fn the_health_table_is_the_library_s_epoch_report() {
        let (tr, ho) = parse_digits(&data(HELDOUT_ROWS + 40)).unwrap();
        let cfg = config(InitChoice::Xavier, Activation::Tanh);
        let mut s = Session::new(&cfg, tr.clone(), ho).unwrap();
        let mut t = Trainer::new(
            cfg.model().unwrap(),
            LOSS,
            REDUCTION,
            cfg.optimizer,
            Backend::CpuReference,
        )
        .unwrap();
        let mut order = EpochOrder::new(40, cfg.batch_size, Some(cfg.shuffle_seed), false).unwrap();
        let mut m = Monitor::new(t.model(), LOSS);
        let y = Target::Classes(tr.labels.clone());
        for _ in 0..2 {
            for _ in 0..s.steps_per_epoch() {
                s.step().unwrap();
            }
            t.epoch_monitored(&tr.x, &y, &mut order, &mut m, |_, _, _| {})
                .unwrap();
            assert_eq!(s.health(), Some(&m.finish_epoch(t.model())));
        }
    }

    #[test]
    fn the_same_settings_give_the_same_steps() {
        let (tr, ho) = parse_digits(&data(HELDOUT_ROWS + 40)).unwrap();
        let cfg = config(InitChoice::Kaiming, Activation::Tanh);
        let mut a = Session::new(&cfg, tr.clone(), ho.clone()).unwrap();
        let mut b = Session::new(&cfg, tr, ho).unwrap();
        for _ in 0..7 {
            assert_eq!(a.step().unwrap().to_bits(), b.step().unwrap().to_bits());
        }
    }
}
