//! What `wgpu-mlp train` shows while it learns: the progress line on a terminal, each epoch's
//! line, its JSON summary in --log, the gradient-health table at the end and the --plot curves.

use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

use serde_json::{Value, json};
use wgpu_mlp::chart::{self, Chart, Series};
use wgpu_mlp::train::{EpochReport, Evaluation, LayerHealth};

/// One epoch's figures, as the curves and a resumed run's checkpoint keep them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EpochRecord {
    pub(crate) epoch: usize,
    pub(crate) loss: f64,
    pub(crate) accuracy: Option<f64>,
    pub(crate) val_loss: Option<f64>,
    pub(crate) val_accuracy: Option<f64>,
}

impl EpochRecord {
    pub(crate) fn new(epoch: usize, train: &Evaluation, val: Option<&Evaluation>) -> Self {
        EpochRecord {
            epoch,
            loss: train.loss,
            accuracy: train.accuracy,
            val_loss: val.map(|v| v.loss),
            val_accuracy: val.and_then(|v| v.accuracy),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "epoch": self.epoch,
            "loss": num(self.loss),
            "accuracy": self.accuracy.map(num),
            "val_loss": self.val_loss.map(num),
            "val_accuracy": self.val_accuracy.map(num),
        })
    }

    pub(crate) fn from_json(v: &Value) -> Option<Self> {
        let opt = |k: &str| v.get(k).and_then(Value::as_f64);
        Some(EpochRecord {
            epoch: v.get("epoch")?.as_u64()? as usize,
            loss: opt("loss").unwrap_or(f64::NAN),
            accuracy: opt("accuracy"),
            val_loss: opt("val_loss"),
            val_accuracy: opt("val_accuracy"),
        })
    }

    /// The line printed after the epoch.
    pub(crate) fn line(&self, epochs: usize, samples_per_s: f64) -> String {
        let mut s = format!("epoch {}/{epochs}  loss {:.6}", self.epoch, self.loss);
        if let Some(a) = self.accuracy {
            s += &format!("  acc {:.2}%", 100.0 * a);
        }
        if let Some(l) = self.val_loss {
            s += &format!("  val_loss {l:.6}");
        }
        if let Some(a) = self.val_accuracy {
            s += &format!("  val_acc {:.2}%", 100.0 * a);
        }
        s + &format!("  {samples_per_s:.0} samples/s")
    }
}

/// A finite number as JSON, else null.
fn num(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// The --log line of an epoch (no "step" key): its figures and its gradient health.
pub(crate) fn summary_json(r: &EpochRecord, report: &EpochReport) -> String {
    let mut v = r.to_json();
    v["health"] = Value::Array(report.layers.iter().map(layer_json).collect());
    v["warnings"] = json!(report.warnings);
    v.to_string()
}

fn layer_json(h: &LayerHealth) -> Value {
    json!({
        "layer": h.layer,
        "module": h.module,
        "units": h.units,
        "grad": num(h.grad),
        "update": num(h.update),
        "dead": h.dead.map(num),
        "saturated": h.saturated.map(num),
        "identical": h.identical,
    })
}

/// The gradient-health table printed at the end of a run.
pub(crate) fn health_table(epoch: usize, report: &EpochReport) -> String {
    let mut s = format!(
        "gradient health, epoch {epoch} (docs/TRAINING.md):\n\
         layer  module  units  mean|grad|  update/weight   dead  saturated  identical\n"
    );
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v));
    for h in &report.layers {
        s += &format!(
            "{:>5}  {:>6}  {:>5}  {:>10.3e}  {:>13.3e}  {:>5}  {:>9}  {:>9}\n",
            h.layer,
            h.module,
            h.units,
            h.grad,
            h.update,
            pct(h.dead),
            pct(h.saturated),
            if h.identical { "yes" } else { "no" }
        );
    }
    for w in &report.warnings {
        s += &format!("warning: {w}\n");
    }
    s
}

/// The --plot SVG: loss per epoch, and accuracy when the loss has one.
pub(crate) fn curves(history: &[EpochRecord]) -> String {
    let pts = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let mut loss =
        Chart::new("loss", "epoch", "loss").series(Series::new("train", pts(&|r| Some(r.loss))));
    let val = pts(&|r| r.val_loss);
    if !val.is_empty() {
        loss = loss.series(Series::new("validation", val).dashed());
    }
    let mut charts = vec![loss];
    let acc = pts(&|r| r.accuracy.map(|a| 100.0 * a));
    if !acc.is_empty() {
        let mut c =
            Chart::new("accuracy", "epoch", "accuracy (%)").series(Series::new("train", acc));
        let val = pts(&|r| r.val_accuracy.map(|a| 100.0 * a));
        if !val.is_empty() {
            c = c.series(Series::new("validation", val).dashed());
        }
        charts.push(c);
    }
    chart::svg(&charts)
}

/// The progress line on a terminal (nothing when stderr is not one).
pub(crate) struct Progress {
    tty: bool,
    start: Instant,
    last: Instant,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            start: Instant::now(),
            last: Instant::now(),
        }
    }

    /// Starts an epoch's clock.
    pub(crate) fn start(&mut self) {
        self.start = Instant::now();
    }

    /// Seconds since [`Progress::start`].
    pub(crate) fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// After a step: redraws the bar at most ten times a second.
    pub(crate) fn step(
        &mut self,
        epoch: usize,
        epochs: usize,
        done: usize,
        of: usize,
        rows: usize,
        loss: f32,
    ) {
        if !self.tty || (self.last.elapsed().as_millis() < 100 && done < of) {
            return;
        }
        self.last = Instant::now();
        let width = 24;
        let filled = width * done / of.max(1);
        let rate = rows as f64 / self.seconds().max(1e-9);
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[Kepoch {epoch}/{epochs} [{}{}] {done}/{of}  loss {loss:.6}  {rate:.0} samples/s",
            "#".repeat(filled),
            ".".repeat(width - filled)
        );
    }

    /// Clears the bar before a line is printed.
    pub(crate) fn clear(&self) {
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
