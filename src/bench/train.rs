//! The `train` workload: one optimizer step (forward, cross-entropy loss, backward, SGD with
//! momentum) of the mnist-sized MLP, on each path, after a correctness gate: the first step of
//! each path from the same start is compared with the f64 reference's first step (the loss and
//! every parameter after the update) before any step is timed. docs/BENCHMARKING.md.

use crate::bench::check::Tolerance;
use crate::bench::options::BenchOptions;
use crate::bench::report::{BenchPath, Record};
use crate::bench::timing::{random_input, time_runs};
use crate::bench::{Case, stats::Stats};
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::matrix::Matrix;
use crate::model::Mlp;
use crate::rng::Generator;
use crate::train::{Backend, Loss, Optimizer, Reduction, Target, Trainer};

/// Seed of the benchmark's class targets.
pub const TARGET_SEED: u64 = 2;

/// The optimizer of the `train` workload: `SGD(lr=0.01, momentum=0.9)` (small enough that the
/// warm-up and timed steps stay finite on random data).
pub fn train_optimizer() -> Optimizer {
    Optimizer::Sgd {
        lr: 0.01,
        momentum: 0.9,
        dampening: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    }
}

/// The loss of the `train` workload: `CrossEntropyLoss()` on the logits, mean over the batch.
pub const TRAIN_LOSS: Loss = Loss::CrossEntropy {
    label_smoothing: 0.0,
};

/// FLOPs of one training step: `2 · batch · in · out` for each product actually computed, i.e.
/// every Linear layer's forward product and weight gradient (`dW = dYᵀ·X`), and the input
/// gradient (`dX = dY·W`) of every layer but the first (whose input needs none).
pub fn step_flops(widths: &[usize], batch: usize) -> u64 {
    widths
        .windows(2)
        .enumerate()
        .map(|(i, p)| {
            let one = crate::bench::linear_flops(batch, p[0], p[1]);
            if i == 0 { 2 * one } else { 3 * one }
        })
        .sum()
}

/// `batch` class indices in `0..classes`, from [`TARGET_SEED`].
pub fn random_classes(batch: usize, classes: usize) -> Target {
    let mut rng = Generator::new(TARGET_SEED);
    Target::Classes(
        rng.rand(batch)
            .into_iter()
            .map(|u| ((f64::from(u) * classes as f64) as i64).min(classes as i64 - 1))
            .collect(),
    )
}

/// A path's training steps: the timed step, and what the gate reads after the first one.
trait Stepper {
    /// One optimizer step on the benchmark batch; the loss where the path reads it back.
    fn step(&mut self) -> Result<Option<f32>>;
    /// The model as trained so far (untimed; the gate's).
    fn model(&mut self) -> Result<Mlp>;
}

/// A [`Trainer`] stepping on host-side batches: cpu-reference, cpu-fast, and gpu-e2e (the batch
/// uploaded and the loss read back every step).
struct HostSteps<'a> {
    trainer: Trainer,
    x: &'a Matrix,
    y: &'a Target,
}

impl Stepper for HostSteps<'_> {
    fn step(&mut self) -> Result<Option<f32>> {
        self.trainer.step(self.x, self.y).map(Some)
    }

    fn model(&mut self) -> Result<Mlp> {
        Ok(self.trainer.sync()?.clone())
    }
}

/// gpu-resident: the GPU trainer's step on a batch uploaded once (`Trainer::step_batch`); the
/// step's loss (four bytes) is read back so that the clock stops when the device has finished.
struct ResidentSteps {
    trainer: Trainer,
    batch: crate::gpu::GpuBatch,
}

impl Stepper for ResidentSteps {
    fn step(&mut self) -> Result<Option<f32>> {
        self.trainer.step_batch(&self.batch)?;
        Ok(self.trainer.take_losses()?.last().copied())
    }

    fn model(&mut self) -> Result<Mlp> {
        Ok(self.trainer.sync()?.clone())
    }
}

/// Runs `case` (the `train` workload) on `paths`; `template(path, flops)` makes each record.
pub(crate) fn run_case(
    opts: &BenchOptions,
    case: &Case,
    paths: &[BenchPath],
    gpu: Option<&std::result::Result<GpuContext, String>>,
    template: &dyn Fn(BenchPath, u64) -> Record,
    progress: &dyn Fn(&str, Option<&Record>),
) -> Result<Vec<Record>> {
    let model = case.model()?;
    let widths = case.workload.widths(0);
    let flops = step_flops(&widths, case.batch);
    let x = random_input(case.batch, model.in_features())?;
    let y = random_classes(case.batch, model.out_features());
    let trainer = |backend| {
        Trainer::new(
            model.clone(),
            TRAIN_LOSS,
            Reduction::Mean,
            train_optimizer(),
            backend,
        )
    };
    let gated = paths.iter().any(|p| *p != BenchPath::CpuReference);
    let expected = if gated {
        progress(
            &format!("train {}: the reference's first step", case.batch),
            None,
        );
        let mut t = trainer(Backend::CpuReference)?;
        let loss = t.step(&x, &y)?;
        Some((loss, t.into_model()))
    } else {
        None
    };
    let mut records = Vec::new();
    for &path in paths {
        progress(&format!("train {} {}", case.batch, path.name()), None);
        let rec = template(path, flops);
        let on_gpu = |ctx: &GpuContext| {
            Trainer::on_gpu(
                model.clone(),
                TRAIN_LOSS,
                Reduction::Mean,
                train_optimizer(),
                ctx,
            )
        };
        let host = |trainer: Trainer| {
            Box::new(HostSteps {
                trainer,
                x: &x,
                y: &y,
            }) as Box<dyn Stepper>
        };
        let stepper: Result<Box<dyn Stepper + '_>> = match (path, gpu) {
            (BenchPath::CpuReference, _) => trainer(Backend::CpuReference).map(host),
            (BenchPath::CpuFast, _) => trainer(Backend::Cpu).map(host),
            (BenchPath::GpuE2e, Some(Ok(ctx))) => on_gpu(ctx).map(host),
            (BenchPath::GpuResident, Some(Ok(ctx))) => on_gpu(ctx).and_then(|trainer| {
                let batch = trainer.upload_batch(&x, &y)?;
                Ok(Box::new(ResidentSteps { trainer, batch }) as Box<dyn Stepper>)
            }),
            (_, Some(Err(e))) => Err(Error::invalid(e.clone())),
            _ => Err(Error::invalid("no GPU context")),
        };
        let rec = match stepper {
            // --threads applies to the fast path's products and optimizer step, as to cpu-fast's.
            Ok(mut s) => crate::train::fast_linear::with_threads(opts.threads, || {
                measure_steps(opts, rec, s.as_mut(), expected.as_ref())
            }),
            Err(e) => rec.failed(
                e.to_string()
                    .trim_start_matches("invalid argument: ")
                    .to_string(),
            ),
        };
        progress("", Some(&rec));
        records.push(rec);
    }
    Ok(records)
}

/// The gate (the first step against the reference's), then the clock.
fn measure_steps(
    opts: &BenchOptions,
    mut rec: Record,
    s: &mut dyn Stepper,
    expected: Option<&(f32, Mlp)>,
) -> Record {
    rec.runs_requested = opts.runs;
    if rec.path != BenchPath::CpuReference
        && let Some((loss, model)) = expected
    {
        let checked = s
            .step()
            .and_then(|l| Ok((l, s.model()?)))
            .map_err(|e| e.to_string())
            .and_then(|(l, m)| compare_step(l, &m, *loss, model, opts.tolerance));
        match checked {
            Ok(err) => {
                rec.checked_rows = Some(rec.batch);
                rec.max_abs_err = Some(err);
            }
            Err(e) => return rec.failed(e),
        }
    }
    match time_runs(opts, || s.step().map(drop)) {
        Ok(samples) => rec.stats = Stats::from_durations(&samples),
        Err(e) => rec.error = Some(e.to_string()),
    }
    rec
}

/// The first step's loss (where read back) and every parameter after it against the
/// reference's: the largest |a − e|, or which value is out of tolerance.
fn compare_step(
    loss: Option<f32>,
    model: &Mlp,
    want_loss: f32,
    want: &Mlp,
    tol: Tolerance,
) -> std::result::Result<f64, String> {
    let ok = |a: f32, e: f32| {
        let (a, e) = (f64::from(a), f64::from(e));
        (a - e).abs() <= tol.abs + tol.rel * e.abs()
    };
    let mut worst = 0.0f64;
    if let Some(l) = loss {
        if !ok(l, want_loss) {
            return Err(format!(
                "wrong result: the first step's loss is {l}, the reference's {want_loss} ({})",
                tol.describe()
            ));
        }
        worst = f64::from((l - want_loss).abs());
    }
    for (got, exp) in model.parameters().iter().zip(want.parameters()) {
        let (got_v, exp_v) = (got.f32().unwrap_or_default(), exp.f32().unwrap_or_default());
        for (i, (&a, &e)) in got_v.iter().zip(exp_v).enumerate() {
            if !ok(a, e) {
                return Err(format!(
                    "wrong result after the first step: module {} {:?}[{i}] is {a}, the \
                     reference's {e} ({})",
                    got.module,
                    got.kind,
                    tol.describe()
                ));
            }
            worst = worst.max(f64::from((a - e).abs()));
        }
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_flops_count_the_products_computed() {
        // 784→512→512→10 at batch 1: forward and dW everywhere, dX from the second layer on.
        let f = |i: u64, o: u64| 2 * i * o;
        let want = 2 * f(784, 512) + 3 * f(512, 512) + 3 * f(512, 10);
        assert_eq!(step_flops(&[784, 512, 512, 10], 1), want);
        assert_eq!(step_flops(&[784, 512, 512, 10], 64), 64 * want);
    }

    #[test]
    fn random_classes_are_in_range_and_not_constant() {
        let Target::Classes(c) = random_classes(1000, 10) else {
            panic!("classes expected");
        };
        assert!(c.iter().all(|&k| (0..10).contains(&k)));
        assert!((0..10).all(|k| c.contains(&k)));
    }

    #[test]
    fn the_gate_rejects_a_wrong_parameter_and_a_wrong_loss() {
        let m = Mlp::builder(3)
            .layer(2, crate::Activation::Identity)
            .seed(0)
            .build()
            .unwrap();
        let tol = Tolerance::default();
        assert_eq!(compare_step(Some(1.0), &m, 1.0, &m, tol), Ok(0.0));
        assert!(compare_step(Some(1.1), &m, 1.0, &m, tol).is_err());
        let mut off = m.clone();
        let w = off.tensor_mut(0, crate::model::TensorKind::Weight).unwrap();
        w[1] += 0.01;
        let e = compare_step(None, &off, 1.0, &m, tol).unwrap_err();
        assert!(e.contains("[1]"), "{e}");
        let mut nan = m.clone();
        nan.tensor_mut(0, crate::model::TensorKind::Weight).unwrap()[0] = f32::NAN;
        assert!(compare_step(None, &nan, 1.0, &m, tol).is_err());
    }
}
