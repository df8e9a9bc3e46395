//! Gradient health of steps taken on the GPU (`Trainer::step_monitored` on `Backend::Gpu`, which
//! reads the parameters back and recomputes each step on the f64 reference with
//! `Monitor::observe_step`) against the same epochs monitored on `Backend::CpuReference`, and
//! `wgpu-mlp train --device gpu --health`.
//!
//! Tolerance: the GPU's steps differ from the reference's in the last bits of every sum (f32
//! there, f64 here; tests/train_gpu.rs), and the differences grow over the steps by the
//! optimizer's own amplification; over these 15 steps of Adam the mean |gradient| and update
//! ratios agree within 1.4e-7 relative (measured on lavapipe and llvmpipe alike), checked
//! within 1e-5. The counts (dead units, identical units, the rows right) are equal: no
//! pre-activation of this data is within the drift of zero; the saturated fraction within one
//! (sample, unit) pair of an epoch's 185.

mod common;

use wgpu_mlp::data::EpochOrder;
use wgpu_mlp::train::{Backend, EpochReport, Monitor, Optimizer, Reduction, Target, Trainer};
use wgpu_mlp::{Activation, Matrix, Mlp, Module};

/// 37 rows (batches of 8 and a short one) of 6 features, 3 classes.
fn data() -> (Matrix, Target) {
    let x = common::input(37, 6, 11, 1.0);
    let y = (0..37).map(|i| (i * 5 % 3) as i64).collect();
    (x, Target::Classes(y))
}

/// ReLU then Dropout (the GPU's masks are the trainer's generator's, as the CPU's), a Linear
/// through BatchNorm into a sigmoid, logits.
fn model() -> Mlp {
    Mlp::builder(6)
        .layer(9, Activation::Relu)
        .module(Module::Dropout(0.25))
        .layer(5, Activation::Identity)
        .batchnorm1d()
        .module(Module::Activation(Activation::Sigmoid))
        .layer(3, Activation::Identity)
        .seed(2)
        .build()
        .unwrap()
}

/// An unmonitored epoch, then two monitored ones (the first monitored step must read back what
/// the unmonitored steps did): the monitored epochs' reports.
fn reports(mut t: Trainer) -> Vec<EpochReport> {
    let (x, y) = data();
    let mut order = EpochOrder::new(x.rows(), 8, Some(5), false).unwrap();
    let mut m = Monitor::new(t.model(), common::train::cross_entropy());
    t.epoch(&x, &y, &mut order).unwrap();
    (0..2)
        .map(|_| {
            t.epoch_monitored(&x, &y, &mut order, &mut m, |_, _, _| {})
                .unwrap();
            m.finish_epoch(t.model())
        })
        .collect()
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        a.is_finite() && (a - b).abs() <= 1e-5 * b.abs(),
        "{what}: GPU {a} vs reference {b}"
    );
}

#[test]
fn health_of_gpu_steps_matches_the_reference_s() {
    let optim = Optimizer::adam(0.02);
    let gpu = Trainer::on_gpu(
        model(),
        common::train::cross_entropy(),
        Reduction::Mean,
        optim,
        common::ctx(),
    )
    .unwrap();
    let cpu = Trainer::new(
        model(),
        common::train::cross_entropy(),
        Reduction::Mean,
        optim,
        Backend::CpuReference,
    )
    .unwrap();
    let (got, want) = (reports(gpu), reports(cpu));
    for (g, w) in got.iter().zip(&want) {
        close(g.train.loss, w.train.loss, "loss");
        assert_eq!(g.train.accuracy, w.train.accuracy);
        assert_eq!(g.train.rows, 37);
        assert_eq!(g.warnings, w.warnings);
        for (a, b) in g.layers.iter().zip(&w.layers) {
            close(a.grad, b.grad, &format!("layer {} grad", a.layer));
            close(a.update, b.update, &format!("layer {} update", a.layer));
            assert_eq!(
                (a.dead, a.identical),
                (b.dead, b.identical),
                "{a:?} vs {b:?}"
            );
            match (a.saturated, b.saturated) {
                (Some(x), Some(y)) => assert!((x - y).abs() <= 1.0 / 185.0 + 1e-12, "{x} vs {y}"),
                (x, y) => assert_eq!(x, y),
            }
        }
    }
    // Every statistic is exercised: some dead units, some saturation, gradients everywhere.
    let last = &got[1];
    assert!(
        last.layers.iter().all(|l| l.grad > 0.0 && l.update > 0.0),
        "{last:?}"
    );
    assert!(last.layers[0].dead.is_some() && last.layers[1].saturated.is_some());
}

/// `wgpu-mlp train --device gpu --health`: the epoch lines get the training accuracy, --log its
/// per-layer health and the end the table, as on the CPU paths; without --health none of them,
/// and a note naming the flag.
#[test]
fn the_cli_measures_health_on_the_gpu_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (x, y) = data();
    let Target::Classes(labels) = &y else {
        unreachable!()
    };
    wgpu_mlp::io::npy::write(d.join("x.npy"), &x).unwrap();
    let csv: String = labels.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("y.csv"), csv).unwrap();
    let run = |device: &str, extra: &[&str]| {
        let (xp, yp, o, log) = (
            d.join("x.npy"),
            d.join("y.csv"),
            d.join(format!("{device}.safetensors")),
            d.join(format!("{device}.jsonl")),
        );
        let mut args = vec![
            "train",
            "--layers",
            "6,9,3",
            "--act",
            "relu,identity",
            "--seed",
            "1",
            "--input",
            common::path_str(&xp),
            "--target",
            common::path_str(&yp),
            "--loss",
            "cross_entropy",
            "--optim",
            "adam",
            "--lr",
            "0.02",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--device",
            device,
            "-o",
            common::path_str(&o),
            "--log",
            common::path_str(&log),
        ];
        args.extend(extra);
        let out = common::run_cli(&args);
        common::assert_ok(&out);
        let log = std::fs::read_to_string(&log).unwrap();
        let summaries: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("step").is_none())
            .collect();
        (common::stderr(&out), summaries)
    };
    let (note, plain) = run("gpu", &[]);
    assert!(
        note.contains("--health") && !note.contains("gradient health, epoch"),
        "{note}"
    );
    assert!(plain[1]["health"].as_array().unwrap().is_empty());
    let (note, gpu) = run("gpu", &["--health"]);
    let (cpu_note, cpu) = run("cpu-reference", &[]);
    for n in [&note, &cpu_note] {
        assert!(
            n.contains("gradient health, epoch 2") && n.contains("acc"),
            "{n}"
        );
    }
    for (g, c) in gpu.iter().zip(&cpu) {
        assert_eq!(g["accuracy"], c["accuracy"], "{g} vs {c}");
        let (hg, hc) = (
            g["health"].as_array().unwrap(),
            c["health"].as_array().unwrap(),
        );
        assert_eq!(hg.len(), 2);
        for (a, b) in hg.iter().zip(hc) {
            assert_eq!(a["dead"], b["dead"]);
            close(
                a["grad"].as_f64().unwrap(),
                b["grad"].as_f64().unwrap(),
                "grad",
            );
            close(
                a["update"].as_f64().unwrap(),
                b["update"].as_f64().unwrap(),
                "update",
            );
        }
    }
}
