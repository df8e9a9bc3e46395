//! Gradient health (`train::Monitor`) on constructed cases where each statistic's value is known,
//! accuracy and eval-mode evaluation, and the library checkpoint (`Trainer::checkpoint` /
//! `resume`): bit for bit against an uninterrupted run, and refused on other settings.

mod common;

use std::collections::BTreeMap;

use wgpu_mlp::data::EpochOrder;
use wgpu_mlp::init::Init;
use wgpu_mlp::model::{LayerSpec, Module, TensorKind};
use wgpu_mlp::train::{Backend, Monitor, Optimizer, Reduction, Target, Trainer, evaluate};
use wgpu_mlp::{Activation, Matrix, Mlp};

/// 40 rows of 6 features in [-1, 1], 3 classes.
fn data() -> (Matrix, Target) {
    let x = common::input(40, 6, 7, 1.0);
    let y = (0..40).map(|i| (i * 7 % 3) as i64).collect();
    (x, Target::Classes(y))
}

fn trainer(model: Mlp, optim: Optimizer, backend: Backend) -> Trainer {
    Trainer::new(
        model,
        common::train::cross_entropy(),
        Reduction::Mean,
        optim,
        backend,
    )
    .unwrap()
}

/// One monitored epoch; its report.
fn one_epoch(model: Mlp, optim: Optimizer) -> wgpu_mlp::train::EpochReport {
    let (x, y) = data();
    let mut t = trainer(model, optim, Backend::CpuReference);
    let mut m = Monitor::new(t.model(), common::train::cross_entropy());
    let mut order = EpochOrder::new(x.rows(), 8, Some(0), false).unwrap();
    t.epoch_monitored(&x, &y, &mut order, &mut m, |_, _, _| {})
        .unwrap();
    m.finish_epoch(t.model())
}

#[test]
fn a_zero_initialised_layer_warns_of_identical_units() {
    let model = Mlp::builder(6)
        .layer_spec(
            LayerSpec::new(5, Activation::Tanh)
                .weight_init(Init::Zeros)
                .bias_init(Init::Zeros),
        )
        .layer_spec(
            LayerSpec::new(3, Activation::Identity)
                .weight_init(Init::Zeros)
                .bias_init(Init::Zeros),
        )
        .seed(0)
        .build()
        .unwrap();
    let r = one_epoch(model, Optimizer::sgd(0.5));
    // Every unit of the hidden layer gets the same gradient from a symmetric next layer, so
    // they stay equal; the output layer's units learn different classes.
    assert!(r.layers[0].identical, "{r:?}");
    assert!(!r.layers[1].identical);
    assert!(
        r.warnings[0].contains("layer 1") && r.warnings[0].contains("identical"),
        "{:?}",
        r.warnings
    );
    // A zero hidden layer under a random output layer: the output's rows differ, so do the
    // hidden units' gradients, and the symmetry breaks at the first step.
    let model = Mlp::builder(6)
        .layer_spec(LayerSpec::new(5, Activation::Tanh).weight_init(Init::Zeros))
        .layer(3, Activation::Identity)
        .seed(0)
        .build()
        .unwrap();
    assert!(!one_epoch(model, Optimizer::sgd(0.5)).layers[0].identical);
    // The same model with PyTorch's default init: no warning.
    let model = Mlp::builder(6)
        .layer(5, Activation::Tanh)
        .layer(3, Activation::Identity)
        .seed(0)
        .build()
        .unwrap();
    let r = one_epoch(model, Optimizer::sgd(0.5));
    assert!(r.warnings.is_empty() && !r.layers[0].identical, "{r:?}");
}

#[test]
fn a_big_negative_bias_kills_every_relu_unit() {
    let model = Mlp::builder(6)
        .layer_spec(LayerSpec::new(5, Activation::Relu).bias_init(Init::Constant(-100.0)))
        .layer(4, Activation::Relu)
        .layer(3, Activation::Identity)
        .seed(0)
        .build()
        .unwrap();
    let r = one_epoch(model, Optimizer::sgd(0.1));
    assert_eq!(r.layers[0].dead, Some(1.0));
    // Dead units pass no gradient to their weights.
    assert_eq!(r.layers[0].grad, 0.0);
    assert_eq!(r.layers[0].update, 0.0);
    // The next layer sees only its bias: its units are alive or dead as a whole, by sign.
    assert!(r.layers[1].dead.is_some());
    assert_eq!(r.layers[2].dead, None);
    assert_eq!(r.layers[2].saturated, None);
}

#[test]
fn huge_weights_saturate_sigmoid_and_a_tiny_middle_layer_starves_the_first_one() {
    let model = Mlp::builder(6)
        .layer_spec(LayerSpec::new(5, Activation::Sigmoid).weight_init(Init::Constant(50.0)))
        .layer(3, Activation::Identity)
        .seed(0)
        .build()
        .unwrap();
    let r = one_epoch(model, Optimizer::sgd(0.0));
    // Every row's sum of 6 inputs in [-1, 1] times 50 (plus a bias under 1) exceeds 4 in
    // magnitude unless it is within 0.1 of 0: count them.
    let x = data().0;
    let sums: Vec<f32> = (0..40).map(|i| x.row(i).iter().sum::<f32>()).collect();
    let sat = sums.iter().filter(|s| (50.0 * *s).abs() > 5.0).count() as f64 / 40.0;
    let got = r.layers[0].saturated.unwrap();
    assert!(got >= sat, "{got} vs at least {sat}");
    assert!(got > 0.8, "{got}");
    // A middle layer with weights 1e-5 scales the gradient reaching the first by ~1e-5.
    let model = Mlp::builder(6)
        .layer(5, Activation::Tanh)
        .layer_spec(LayerSpec::new(5, Activation::Tanh).weight_init(Init::Constant(1e-5)))
        .layer(3, Activation::Identity)
        .seed(0)
        .build()
        .unwrap();
    let r = one_epoch(model, Optimizer::sgd(0.0));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("layer 1") && w.contains("vanishing")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn gradient_and_update_figures_are_the_step_s_own() {
    // One step of plain SGD: the update is lr·g exactly (up to f32 rounding of w − lr·g),
    // so ‖Δw‖/‖w‖ = lr·‖g‖/‖w‖, and the mean |gradient| is that of Trainer::gradients.
    let model = common::model(&[6, 5, 3], &[Activation::Relu, Activation::Identity], 3);
    let (x, y) = data();
    let mut t = trainer(model, Optimizer::sgd(0.01), Backend::CpuReference);
    let (_, grads) = t.gradients(&x, &y).unwrap();
    let w0: Vec<f32> = match &t.model().modules()[0] {
        Module::Linear(l) => l.weight().to_vec(),
        _ => unreachable!(),
    };
    let mut m = Monitor::new(t.model(), common::train::cross_entropy());
    t.step_monitored(&x, &y, &mut m).unwrap();
    let r = m.finish_epoch(t.model());
    let g = &grads[0];
    let mean_abs = g.iter().map(|v| f64::from(v.abs())).sum::<f64>() / g.len() as f64;
    assert_eq!(r.layers[0].grad, mean_abs);
    let norm = |v: &[f32]| v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
    let want = 0.01 * norm(g) / norm(&w0);
    assert!(
        (r.layers[0].update - want).abs() < 1e-4 * want,
        "{} vs {want}",
        r.layers[0].update
    );
    // Training accuracy and loss of the step: its own forward pass.
    let e = evaluate(
        &common::model(&[6, 5, 3], &[Activation::Relu, Activation::Identity], 3),
        common::train::cross_entropy(),
        Reduction::Mean,
        &x,
        &y,
        7,
    )
    .unwrap();
    assert_eq!(e.rows, 40);
    assert!(
        (r.train.loss - e.loss).abs() < 1e-6,
        "{} vs {}",
        r.train.loss,
        e.loss
    );
    assert_eq!(r.train.accuracy, e.accuracy);
}

/// A model with every kind of state: BatchNorm buffers, Dropout's generator.
fn stateful_model() -> Mlp {
    Mlp::builder(6)
        .layer(7, Activation::Identity)
        .batchnorm1d()
        .module(Module::Activation(Activation::Relu))
        .module(Module::Dropout(0.3))
        .layer(3, Activation::Identity)
        .seed(1)
        .build()
        .unwrap()
}

fn bits(m: &Mlp) -> Vec<(usize, TensorKind, Vec<u32>, i64)> {
    m.tensors()
        .iter()
        .map(|t| match t.f32() {
            Some(v) => (t.module, t.kind, v.iter().map(|x| x.to_bits()).collect(), 0),
            None => (
                t.module,
                t.kind,
                vec![],
                match t.values {
                    wgpu_mlp::model::TensorValues::Count(n) => n,
                    _ => 0,
                },
            ),
        })
        .collect()
}

#[test]
fn a_checkpoint_resumes_bit_for_bit() {
    let (x, y) = data();
    let optims = [
        Optimizer::Adam {
            lr: 0.01,
            betas: (0.9, 0.99),
            eps: 1e-8,
            weight_decay: 0.01,
            amsgrad: true,
            decoupled: true,
        },
        Optimizer::Sgd {
            lr: 0.05,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
            weight_decay: 1e-3,
        },
    ];
    for backend in [Backend::CpuReference, Backend::Cpu] {
        for optim in optims {
            let mut whole = trainer(stateful_model(), optim, backend);
            let mut order = EpochOrder::new(40, 6, Some(5), true).unwrap();
            let mut losses = Vec::new();
            for _ in 0..4 {
                losses.extend(whole.epoch(&x, &y, &mut order).unwrap());
            }
            let mut first = trainer(stateful_model(), optim, backend);
            let mut order = EpochOrder::new(40, 6, Some(5), true).unwrap();
            for _ in 0..2 {
                first.epoch(&x, &y, &mut order).unwrap();
            }
            let mut extra = BTreeMap::new();
            extra.insert("note".to_string(), "mine".to_string());
            let bytes = first.checkpoint(None, &extra).unwrap();
            assert_eq!(
                bytes,
                first.checkpoint(None, &extra).unwrap(),
                "deterministic"
            );
            // A fresh trainer (other weights) resumed from it, with the order replayed.
            let mut second = trainer(stateful_model(), optim, backend).dropout_seed(99);
            let meta = second.resume(&bytes, "ckpt", None).unwrap();
            assert_eq!(meta["note"], "mine");
            assert_eq!(second.steps(), first.steps());
            let mut order = EpochOrder::new(40, 6, Some(5), true).unwrap();
            order.next_epoch();
            order.next_epoch();
            let mut tail = Vec::new();
            for _ in 0..2 {
                tail.extend(second.epoch(&x, &y, &mut order).unwrap());
            }
            let tail_bits: Vec<u32> = tail.iter().map(|l| l.to_bits()).collect();
            let want: Vec<u32> = losses[losses.len() - tail.len()..]
                .iter()
                .map(|l| l.to_bits())
                .collect();
            assert_eq!(tail_bits, want, "{backend} {optim:?}");
            assert_eq!(
                bits(second.model()),
                bits(whole.model()),
                "{backend} {optim:?}"
            );
        }
    }
}

#[test]
fn a_checkpoint_refuses_other_settings_and_changes_nothing() {
    let (x, y) = data();
    let mut t = trainer(
        stateful_model(),
        Optimizer::adam(0.01),
        Backend::CpuReference,
    );
    t.step(&x, &y).unwrap();
    let bytes = t.checkpoint(None, &BTreeMap::new()).unwrap();
    let mut other = trainer(
        stateful_model(),
        Optimizer::adam(0.02),
        Backend::CpuReference,
    );
    let before = bits(other.model());
    let e = other.resume(&bytes, "ckpt", None).unwrap_err().to_string();
    assert!(e.contains("optimizer") && e.contains("lr: 0.01"), "{e}");
    assert_eq!(bits(other.model()), before);
    assert_eq!(other.steps(), 0);
    let e = other
        .resume(&bytes[..100], "ckpt", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ckpt"), "{e}");
    let reserved = BTreeMap::from([("steps".to_string(), "1".to_string())]);
    assert!(t.checkpoint(None, &reserved).is_err());
}

/// The rows `rows` of `x`.
fn rows_of(x: &Matrix, rows: &[usize]) -> Matrix {
    let data = rows.iter().flat_map(|&r| x.row(r).to_vec()).collect();
    Matrix::new(rows.len(), x.cols(), data).unwrap()
}

/// ReLU (dead units), BatchNorm between a Linear and its sigmoid (saturation), Adam.
fn health_model() -> Mlp {
    Mlp::builder(6)
        .layer(7, Activation::Relu)
        .layer(5, Activation::Identity)
        .batchnorm1d()
        .module(Module::Activation(Activation::Sigmoid))
        .layer(3, Activation::Identity)
        .seed(4)
        .build()
        .unwrap()
}

/// Two epochs of plain steps, each observed afterwards with `Monitor::observe_step`: the reports.
fn observed_epochs(backend: Backend, epochs: usize) -> (Vec<wgpu_mlp::train::EpochReport>, Mlp) {
    let (x, y) = data();
    let mut t = trainer(health_model(), Optimizer::adam(0.05), backend);
    let mut m = Monitor::new(t.model(), common::train::cross_entropy());
    let mut order = EpochOrder::new(x.rows(), 8, Some(1), false).unwrap();
    let mut reports = Vec::new();
    for _ in 0..epochs {
        for batch in order.next_epoch() {
            let (xb, yb) = (rows_of(&x, &batch), y.select(&batch).unwrap());
            let before = t.model().clone();
            t.step(&xb, &yb).unwrap();
            m.observe_step(&before, t.model(), &xb, &yb, Reduction::Mean)
                .unwrap();
        }
        reports.push(m.finish_epoch(t.model()));
    }
    (reports, t.into_model())
}

/// `observe_step` after a plain step recomputes on the reference what `step_monitored` saw: on
/// `Backend::CpuReference` the same forward, loss, backward and update, so the same reports to
/// the bit, epoch after epoch (the running sums restart at each `finish_epoch`).
#[test]
fn observing_a_step_afterwards_equals_monitoring_it() {
    let (x, y) = data();
    let mut t = trainer(health_model(), Optimizer::adam(0.05), Backend::CpuReference);
    let mut m = Monitor::new(t.model(), common::train::cross_entropy());
    let mut order = EpochOrder::new(x.rows(), 8, Some(1), false).unwrap();
    let mut want = Vec::new();
    for _ in 0..2 {
        t.epoch_monitored(&x, &y, &mut order, &mut m, |_, _, _| {})
            .unwrap();
        want.push(m.finish_epoch(t.model()));
    }
    let (got, model) = observed_epochs(Backend::CpuReference, 2);
    assert_eq!(got, want);
    assert_eq!(model.tensors(), t.model().tensors());
    // Each statistic is there to compare: a dead-unit count, a saturation, gradients, updates.
    let r = &got[1];
    assert!(r.layers[0].dead.is_some() && r.layers[1].saturated.unwrap() >= 0.0);
    assert!(
        r.layers.iter().all(|l| l.grad > 0.0 && l.update > 0.0),
        "{r:?}"
    );
    assert!(r.train.accuracy.is_some() && r.train.rows == 40);
    // On the fast CPU path the steps differ from the reference's in the last bits: the observed
    // figures are the reference's recomputation of those steps, close to the reference run's
    // (measured within 1.5e-7 relative after these 10 steps; checked within 1e-5).
    let (fast, _) = observed_epochs(Backend::Cpu, 2);
    for (a, b) in fast[1].layers.iter().zip(&want[1].layers) {
        assert!((a.grad - b.grad).abs() <= 1e-5 * b.grad, "{a:?} vs {b:?}");
        assert!(
            (a.update - b.update).abs() <= 1e-5 * b.update,
            "{a:?} vs {b:?}"
        );
    }
}

/// A batch that does not fit, models of two architectures, a loss that is not finite: errors,
/// and nothing counted (the report is that of the steps observed before).
#[test]
fn observe_step_refuses_what_it_cannot_observe() {
    let (x, y) = data();
    let model = health_model();
    let mut m = Monitor::new(&model, common::train::cross_entropy());
    let fresh = m.clone().finish_epoch(&model);
    let other = common::model(&[6, 7, 3], &[Activation::Relu, Activation::Identity], 0);
    let narrow = common::input(4, 5, 1, 1.0);
    let y4 = y.select(&[0, 1, 2, 3]).unwrap();
    let mut bad = x.as_slice().to_vec();
    bad[0] = f32::NAN;
    let nan = Matrix::new(40, 6, bad).unwrap();
    let errors = [
        m.observe_step(&model, &model, &narrow, &y4, Reduction::Mean),
        m.observe_step(&model, &model, &x, &y4, Reduction::Mean),
        m.observe_step(&model, &other, &x, &y, Reduction::Mean),
        m.observe_step(&model, &model, &nan, &y, Reduction::Mean),
        m.observe_step(&other, &other, &x, &y, Reduction::Mean),
    ];
    for e in &errors {
        assert!(e.is_err());
    }
    let text = |i: usize| errors[i].as_ref().unwrap_err().to_string();
    assert!(
        text(1).contains("40 input rows and 4 targets"),
        "{}",
        text(1)
    );
    assert!(text(2).contains("different parameters"), "{}", text(2));
    assert!(text(3).contains("NaN"), "{}", text(3));
    assert!(text(4).contains("the monitor was made for"), "{}", text(4));
    assert_eq!(m.finish_epoch(&model), fresh);
}
