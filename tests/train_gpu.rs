//! Training on the GPU (`Backend::Gpu`) against real PyTorch and against the CPU reference:
//! the fixture trajectories of `tests/data/train` whose modules the GPU trains (Linear and the
//! elementwise activations; every loss; SGD, Adam, AdamW), within the same tolerance as
//! `tests/train.rs` (2 × PyTorch's own float32-vs-float64 drift + a few ulps); every kernel of
//! the step (the three matrix products, column sums, each activation's forward and backward,
//! each loss, each optimizer) through the gradients and the updates it produces, against the
//! f64 reference at odd shapes, batch 1 and a large batch, extreme magnitudes; NaN stops the
//! run; a zero-initialised layer stays symmetric; two runs repeat bit for bit.
//!
//! Gradient tolerance: the GPU sums in f32 (one fma chain per output of a product, a fixed
//! tree for column sums and losses), the reference in f64 rounded once; the f32 sum of `k`
//! terms is within `k·ε` of the exact sum relative to the sum of the terms' magnitudes, so each
//! gradient is checked within `8·√k·ε·scale + tiny` where `scale` is the tensor's largest
//! reference gradient times the loss's condition (`√k` is the expected, not the worst, growth
//! of rounding errors, and 8 covers the activation derivatives' few ulps). Measured margins are
//! in docs/TRAINING.md.

mod common;

use common::train::{Case, cases, check_trajectory};
use wgpu_mlp::train::{Backend, Loss, Optimizer, Reduction, Target, Trainer};
use wgpu_mlp::{Activation, Matrix, Mlp};

fn gpu_trainer(model: Mlp, loss: Loss, reduction: Reduction, optim: Optimizer) -> Trainer {
    Trainer::on_gpu(model, loss, reduction, optim, common::ctx()).expect("a GPU trainer")
}

fn run_gpu(case: &Case) -> (Vec<f32>, Mlp) {
    let mut t = gpu_trainer(case.model.clone(), case.loss, case.reduction, case.optim);
    let mut order = case.order.clone();
    let mut losses = Vec::new();
    for _ in 0..case.epochs {
        losses.extend(t.epoch(&case.x, &case.y, &mut order).unwrap());
    }
    (losses, t.into_model())
}

/// The fixture cases the GPU trains: all of them (Dropout in train mode, which it refuses, is in
/// none).
fn gpu_cases() -> Vec<Case> {
    cases()
        .into_iter()
        .filter(|c| {
            !c.model
                .modules()
                .iter()
                .any(|m| matches!(m, wgpu_mlp::Module::Dropout(p) if *p > 0.0))
        })
        .collect()
}

#[test]
fn gpu_trajectories_match_pytorch() {
    let all = gpu_cases();
    assert_eq!(all.len(), 10, "the GPU cases");
    for case in &all {
        let (losses, model) = run_gpu(case);
        check_trajectory(case, &losses, &model, 2.0, "gpu");
    }
}

#[test]
fn step_by_step_and_queued_steps_agree_bit_for_bit() {
    let case = gpu_cases().into_iter().next().unwrap();
    let batch = |i: usize| batch_of(&case, i);
    let mut a = gpu_trainer(case.model.clone(), case.loss, case.reduction, case.optim);
    let mut b = gpu_trainer(case.model.clone(), case.loss, case.reduction, case.optim);
    let mut c = gpu_trainer(case.model.clone(), case.loss, case.reduction, case.optim);
    let mut la = Vec::new();
    for i in 0..4 {
        let (x, y) = batch(i);
        la.push(a.step(&x, &y).unwrap());
        b.step_queued(&x, &y).unwrap();
    }
    let batches: Vec<_> = (0..4)
        .map(|i| {
            let (x, y) = batch(i);
            c.upload_batch(&x, &y).unwrap()
        })
        .collect();
    for gb in &batches {
        c.step_batch(gb).unwrap();
    }
    let lb = b.take_losses().unwrap();
    let lc = c.take_losses().unwrap();
    assert_eq!(la, lb);
    assert_eq!(la, lc);
    assert_eq!(c.steps(), 4);
    let (ma, mb, mc) = (a.into_model(), b.into_model(), c.into_model());
    assert_eq!(ma.tensors(), mb.tensors());
    assert_eq!(ma.tensors(), mc.tensors());
    assert_ne!(ma.tensors(), case.model.tensors(), "it trained");
    // A step that reads its loss after queued ones returns its own; the queued ones wait for
    // take_losses, and an epoch keeps them too.
    let mut d = gpu_trainer(case.model.clone(), case.loss, case.reduction, case.optim);
    for i in 0..3 {
        let (x, y) = batch(i);
        d.step_queued(&x, &y).unwrap();
    }
    let (x, y) = batch(3);
    assert_eq!(d.step(&x, &y).unwrap(), la[3]);
    let mut order = case.order.clone();
    let epoch = d.epoch(&case.x, &case.y, &mut order).unwrap();
    assert_eq!(epoch.len(), order.batches_per_epoch());
    assert_eq!(d.take_losses().unwrap(), la[..3]);
    assert_eq!(d.steps(), 4 + epoch.len() as u64);
}

/// Four batches of 4 rows of `case`'s data set.
fn batch_of(case: &Case, i: usize) -> (Matrix, Target) {
    let rows: Vec<usize> = (i * 4..i * 4 + 4).collect();
    let x = Matrix::new(
        4,
        case.x.cols(),
        rows.iter().flat_map(|&r| case.x.row(r).to_vec()).collect(),
    )
    .unwrap();
    (x, case.y.select(&rows).unwrap())
}

#[test]
fn awaited_steps_give_the_blocking_bits_and_a_dropped_one_does_not_wedge() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let case = gpu_cases().into_iter().next().unwrap();
    let mut a = gpu_trainer(case.model.clone(), case.loss, case.reduction, case.optim);
    let mut b = gpu_trainer(case.model.clone(), case.loss, case.reduction, case.optim);
    for i in 0..3 {
        let (x, y) = batch_of(&case, i);
        let blocking = a.step(&x, &y).unwrap();
        let awaited = pollster::block_on(b.step_async(&x, &y)).unwrap();
        assert_eq!(blocking.to_bits(), awaited.to_bits(), "step {}", i + 1);
    }
    let mut order_a = case.order.clone();
    let mut order_b = case.order.clone();
    let ea = a.epoch(&case.x, &case.y, &mut order_a).unwrap();
    let eb = pollster::block_on(b.epoch_async(&case.x, &case.y, &mut order_b)).unwrap();
    assert_eq!(ea, eb);
    assert_eq!(a.model().tensors(), b.model().tensors(), "the epochs' sync");
    // Queued steps read with take_losses_async.
    for i in 0..2 {
        let (x, y) = batch_of(&case, i);
        a.step_queued(&x, &y).unwrap();
        b.step_queued(&x, &y).unwrap();
    }
    assert_eq!(
        a.take_losses().unwrap(),
        pollster::block_on(b.take_losses_async()).unwrap()
    );
    // A step_async dropped after its first poll (submitted, its read in flight): the step was
    // taken, its loss comes with the next take_losses, and the trainer goes on.
    let (x, y) = batch_of(&case, 3);
    let handed = {
        let mut fut = std::pin::pin!(b.step_async(&x, &y));
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(loss) => vec![loss.unwrap()],
            Poll::Pending => Vec::new(),
        }
    };
    a.step_queued(&x, &y).unwrap();
    let mut late = handed;
    late.extend(pollster::block_on(b.take_losses_async()).unwrap());
    assert_eq!(a.take_losses().unwrap(), late);
    assert_eq!(a.steps(), b.steps());
    let (x, y) = batch_of(&case, 0);
    let blocking = a.step(&x, &y).unwrap();
    let awaited = pollster::block_on(b.step_async(&x, &y)).unwrap();
    assert_eq!(
        blocking.to_bits(),
        awaited.to_bits(),
        "after the dropped step"
    );
    let synced = pollster::block_on(b.sync_async()).unwrap().tensors();
    assert_eq!(a.sync().unwrap().tensors(), synced);
    assert_ne!(synced, case.model.tensors(), "it trained");
}

#[test]
fn an_awaited_epoch_longer_than_the_loss_ring_reads_it_as_it_fills() {
    // 1030 steps of one row: the device keeps 1024 unread losses, so epoch_async awaits a
    // read of the ring mid-epoch (epoch reads it blocking): the same bits.
    let model = Mlp::builder(2)
        .layer(1, Activation::Identity)
        .seed(0)
        .build()
        .unwrap();
    let rows = 1030;
    let x = Matrix::new(
        rows,
        2,
        (0..rows * 2).map(|i| (i % 7) as f32 / 7.0).collect(),
    )
    .unwrap();
    let y =
        Target::Values(Matrix::new(rows, 1, (0..rows).map(|i| (i % 3) as f32).collect()).unwrap());
    let order = wgpu_mlp::data::EpochOrder::new(rows, 1, None, false).unwrap();
    let optim = Optimizer::sgd(0.01);
    let mut a = gpu_trainer(model.clone(), Loss::Mse, Reduction::Mean, optim);
    let mut b = gpu_trainer(model, Loss::Mse, Reduction::Mean, optim);
    let la = a.epoch(&x, &y, &mut order.clone()).unwrap();
    let lb = pollster::block_on(b.epoch_async(&x, &y, &mut order.clone())).unwrap();
    assert_eq!(la.len(), rows);
    assert_eq!(la, lb);
    assert_eq!(a.model().tensors(), b.model().tensors());
    assert_eq!(b.steps(), rows as u64);
}

/// The loss and gradients of one batch on the GPU and on the f64 reference, compared: the loss
/// within `tol·|loss| + ulps`, each gradient tensor within `tol` of its largest reference
/// value. Returns the worst error as a fraction of the tolerance.
fn compare_gradients(
    model: &Mlp,
    x: &Matrix,
    y: &Target,
    loss: Loss,
    red: Reduction,
    what: &str,
) -> f64 {
    let grads = |t: &mut Trainer| t.gradients(x, y).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut gpu = gpu_trainer(model.clone(), loss, red, Optimizer::sgd(0.1));
    let mut cpu = Trainer::new(
        model.clone(),
        loss,
        red,
        Optimizer::sgd(0.1),
        Backend::CpuReference,
    )
    .unwrap();
    let ((lg, gg), (lc, gc)) = (grads(&mut gpu), grads(&mut cpu));
    // f32 sums of k terms: errors grow as √k·ε on average; the deepest sum here is over the
    // batch (dW, db) or the widest layer (dX, the loss). 32 ε·√k of the tensor's scale.
    let k = (x.rows().max(x.cols()).max(model.out_features()).max(
        model
            .linears()
            .map(|l| l.in_features().max(l.out_features()))
            .max()
            .unwrap_or(1),
    )) as f64;
    let rel = 32.0 * f64::from(f32::EPSILON) * k.sqrt();
    let mut worst: f64 = 0.0;
    let ltol = rel * f64::from(lc.abs()) + 1e-30;
    assert!(!lg.is_nan(), "{what}: loss NaN");
    let lerr = (f64::from(lg) - f64::from(lc)).abs();
    assert!(
        lerr <= ltol,
        "{what}: loss gpu {lg} vs reference {lc} (tol {ltol:e})"
    );
    worst = worst.max(lerr / ltol);
    assert_eq!(gg.len(), gc.len(), "{what}: tensors");
    for (t, (a, b)) in gg.iter().zip(&gc).enumerate() {
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let tol = rel * f64::from(scale) + f64::from(f32::MIN_POSITIVE);
        for (i, (&u, &v)) in a.iter().zip(b).enumerate() {
            assert!(!u.is_nan(), "{what}: tensor {t}[{i}] is NaN");
            let err = (f64::from(u) - f64::from(v)).abs();
            assert!(
                err <= tol,
                "{what}: tensor {t}[{i}]: gpu {u:e} vs reference {v:e} (tol {tol:e})"
            );
            worst = worst.max(err / tol);
        }
    }
    worst
}

fn regression_target(rows: usize, cols: usize, seed: u64) -> Target {
    Target::Values(common::input(rows, cols, seed, 1.0))
}

/// Every elementwise activation (and non-default parameters) between two Linear layers: the
/// forward, the derivative, the three products and the column sums.
#[test]
fn gradients_of_every_activation_match_the_reference() {
    let mut acts: Vec<Activation> = Activation::ALL
        .into_iter()
        .filter(|a| !a.is_row())
        .collect();
    acts.extend([
        Activation::LeakyRelu(0.2),
        Activation::Elu(0.5),
        Activation::Celu(1.5),
        Activation::Softplus {
            beta: 2.0,
            threshold: 1.0,
        },
        Activation::Hardtanh {
            min: -2.0,
            max: 0.5,
        },
    ]);
    let mut worst: f64 = 0.0;
    for (k, a) in acts.into_iter().enumerate() {
        let m = common::model(&[7, 33, 3], &[a, Activation::Identity], k as u64);
        // Inputs to ±4: every activation's kinks and tails (±3 of hardswish) are crossed.
        let x = common::input(31, 7, 100 + k as u64, 4.0);
        let y = regression_target(31, 3, 200 + k as u64);
        worst = worst.max(compare_gradients(
            &m,
            &x,
            &y,
            Loss::Mse,
            Reduction::Mean,
            &format!("{a}"),
        ));
    }
    eprintln!("activations: worst error {worst:.3} of the tolerance");
}

/// Shapes that are no multiple of any tile (16 for the products, 64 for the reductions), batch 1
/// and a large batch, and inputs from 1e-3 to 1e3. At 1e3 the hidden activation is ReLU: tanh
/// saturates there, and its derivative from the f32 output (`1 − y²`, as PyTorch computes it)
/// cancels to a few bits, which the f64 reference does not; that difference is PyTorch's own
/// float32 rounding, not the kernels', and the activation test covers tanh where it is
/// well-conditioned.
#[test]
fn gradients_at_odd_shapes_and_magnitudes_match_the_reference() {
    let shapes = [
        (1, 1, 1, 1),
        (3, 7, 1, 1),
        (7, 31, 3, 33),
        (33, 3, 7, 257),
        (257, 33, 31, 7),
        (31, 257, 3, 3),
        (5, 17, 3, 2049),
    ];
    let mut worst: f64 = 0.0;
    for (k, &(n_in, h, n_out, batch)) in shapes.iter().enumerate() {
        for scale in [1e-3f32, 1.0, 1e3] {
            let act = if scale > 1.0 {
                Activation::Relu
            } else {
                Activation::Tanh
            };
            let m = common::model(&[n_in, h, n_out], &[act, Activation::Identity], k as u64);
            let x = common::input(batch, n_in, 300 + k as u64, scale);
            let y = regression_target(batch, n_out, 400 + k as u64);
            let what = format!("[{n_in}, {h}, {n_out}] batch {batch} scale {scale}");
            worst = worst.max(compare_gradients(
                &m,
                &x,
                &y,
                Loss::Mse,
                Reduction::Sum,
                &what,
            ));
        }
    }
    eprintln!("shapes: worst error {worst:.3} of the tolerance");
}

/// Every loss, both reductions, widths 1 to 33, batch 1 to 257.
#[test]
fn gradients_of_every_loss_match_the_reference() {
    let losses = [
        Loss::Mse,
        Loss::L1,
        Loss::SmoothL1 { beta: 0.5 },
        Loss::SmoothL1 { beta: 0.0 },
        Loss::Huber { delta: 0.7 },
        Loss::CrossEntropy {
            label_smoothing: 0.0,
        },
        Loss::CrossEntropy {
            label_smoothing: 0.2,
        },
        Loss::Nll,
        Loss::Bce,
        Loss::BceWithLogits,
    ];
    let mut worst: f64 = 0.0;
    for (k, loss) in losses.into_iter().enumerate() {
        for (n_out, batch) in [(1, 1), (3, 33), (7, 257), (33, 3)] {
            if loss.wants_classes() && n_out < 2 {
                continue;
            }
            let last = match loss {
                Loss::Bce => Activation::Sigmoid,
                _ => Activation::Identity,
            };
            let m = common::model(&[5, 7, n_out], &[Activation::Relu, last], k as u64);
            let x = common::input(batch, 5, 500 + k as u64, 2.0);
            let y = if loss.wants_classes() {
                Target::Classes((0..batch).map(|b| ((b * 7 + k) % n_out) as i64).collect())
            } else if matches!(loss, Loss::Bce | Loss::BceWithLogits) {
                Target::Values(
                    Matrix::new(
                        batch,
                        n_out,
                        common::random_vec(batch * n_out, 600, 0.0, 1.0),
                    )
                    .unwrap(),
                )
            } else {
                regression_target(batch, n_out, 700 + k as u64)
            };
            for red in [Reduction::Mean, Reduction::Sum] {
                let what = format!("{loss} {red:?} width {n_out} batch {batch}");
                worst = worst.max(compare_gradients(&m, &x, &y, loss, red, &what));
            }
        }
    }
    eprintln!("losses: worst error {worst:.3} of the tolerance");
}

#[test]
fn two_identical_runs_give_identical_bits() {
    let case = gpu_cases()
        .into_iter()
        .find(|c| matches!(c.optim, Optimizer::Adam { .. }))
        .unwrap();
    let (la, ma) = run_gpu(&case);
    let (lb, mb) = run_gpu(&case);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&la), bits(&lb));
    assert_eq!(ma.tensors(), mb.tensors());
}

#[test]
fn a_zero_initialised_hidden_layer_stays_symmetric_on_the_gpu() {
    let case = gpu_cases()
        .into_iter()
        .find(|c| c.name.starts_with("zero_init"))
        .expect("the zero-init case");
    let (_, model) = run_gpu(&case);
    let first = model.linears().next().unwrap();
    let w = first.weight();
    let n_in = first.in_features();
    for row in w.chunks_exact(n_in) {
        assert_eq!(row, &w[..n_in]);
    }
    let b = first.bias().unwrap();
    assert!(b.iter().all(|&v| v == b[0]));
    assert!(w.iter().any(|&v| v != 0.0) || b[0] != 0.0, "it trained");
}

#[test]
fn a_nan_loss_stops_naming_the_step_and_keeps_the_parameters() {
    let m = common::model(&[2, 3, 1], &[Activation::Relu, Activation::Identity], 0);
    let x = Matrix::new(1, 2, vec![1.0, 2.0]).unwrap();
    let good = Target::Values(Matrix::new(1, 1, vec![0.0]).unwrap());
    let bad = Target::Values(Matrix::new(1, 1, vec![f32::NAN]).unwrap());
    for optim in [Optimizer::sgd(0.1), Optimizer::adam(0.1)] {
        let mut t = gpu_trainer(m.clone(), Loss::Mse, Reduction::Mean, optim);
        t.step(&x, &good).unwrap();
        let after_one = t.sync().unwrap().clone();
        let e = t.step(&x, &bad).unwrap_err();
        assert!(e.to_string().contains("at step 2"), "{e}");
        assert_eq!(t.steps(), 1);
        assert_eq!(
            t.sync().unwrap().tensors(),
            after_one.tensors(),
            "left as before the step"
        );
        // Queued: the error comes with the losses, and no later step changed anything.
        t.step_queued(&x, &good).unwrap();
        t.step_queued(&x, &bad).unwrap();
        t.step_queued(&x, &good).unwrap();
        let e = t.take_losses().unwrap_err();
        assert!(e.to_string().contains("at step 3"), "{e}");
        assert_eq!(t.steps(), 2);
        let after_two = t.sync().unwrap().clone();
        assert_ne!(after_two.tensors(), after_one.tensors());
        // Training goes on from there, as on the CPU.
        let l = t.step(&x, &good).unwrap();
        assert!(l.is_finite());
        assert_eq!(t.steps(), 3);
    }
}

#[test]
fn bad_batches_and_unsupported_modules_are_refused_clearly() {
    let m = common::model(&[2, 3], &[Activation::Identity], 0);
    let mut t = gpu_trainer(
        m.clone(),
        Loss::CrossEntropy {
            label_smoothing: 0.0,
        },
        Reduction::Mean,
        Optimizer::sgd(0.1),
    );
    let x = Matrix::new(2, 2, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let e = t
        .step(&x, &Target::Classes(vec![0, 3]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("target 3 at row 1 is out of bounds"), "{e}");
    let e = t
        .step(&x, &Target::Values(x.clone()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("class indices"), "{e}");
    let e = t
        .step(&x, &Target::Classes(vec![0]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("targets"), "{e}");
    assert_eq!(t.steps(), 0);
    // An ONNX elementwise subgraph: the CPU paths train it, the GPU does not yet.
    let mut mods = m.modules().to_vec();
    mods.push(wgpu_mlp::Module::Elementwise {
        expr: wgpu_mlp::Expr::activation(Activation::Relu).unwrap(),
        class: Some("MyRelu".into()),
    });
    let model = Mlp::new(mods).unwrap();
    let e = Trainer::on_gpu(
        model,
        Loss::Mse,
        Reduction::Mean,
        Optimizer::sgd(0.1),
        common::ctx(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("MyRelu") && e.contains("--device cpu") && e.contains("module 1"),
        "{e}"
    );
}

/// `wgpu-mlp train --device gpu` writes what the library's GPU trainer trains, bit for bit (and
/// that is PyTorch's trajectory, `gpu_trajectories_match_pytorch`); `--device auto` on a
/// machine with software adapters only trains on the CPU and says why.
#[test]
fn the_command_trains_on_the_gpu() {
    use common::train::{case_json, read_st, state, state_dict_file};
    let case = gpu_cases()
        .into_iter()
        .find(|c| c.name == "primer_mse_sgd")
        .unwrap();
    let c = case_json("primer_mse_sgd");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("init.safetensors"),
        state_dict_file(&state(&c["init"])),
    )
    .unwrap();
    wgpu_mlp::io::npy::write(d.join("x.npy"), &case.x).unwrap();
    let Target::Values(y) = &case.y else {
        unreachable!("mse")
    };
    wgpu_mlp::io::npy::write(d.join("y.npy"), y).unwrap();
    let run_with = |device: &str, out: &str, extra: &[&str]| {
        let (init, x, y, o, log) = (
            d.join("init.safetensors"),
            d.join("x.npy"),
            d.join("y.npy"),
            d.join(out),
            d.join(format!("{out}.jsonl")),
        );
        let args = [
            "train",
            "--weights",
            common::path_str(&init),
            "--arch",
            "linear,F.sigmoid,linear",
            "--input",
            common::path_str(&x),
            "--target",
            common::path_str(&y),
            "--loss",
            "mse",
            "--optim",
            "sgd",
            "--lr",
            "0.1",
            "--epochs",
            "3",
            "--batch-size",
            "4",
            "--device",
            device,
            "-o",
            common::path_str(&o),
            "--log",
            common::path_str(&log),
        ];
        let args: Vec<&str> = args.iter().chain(extra).copied().collect();
        (common::run_cli(&args), o, log)
    };
    let run = |device: &str, out: &str| {
        let (output, o, log) = run_with(device, out, &[]);
        common::assert_ok(&output);
        (
            common::stderr(&output),
            read_st(&std::fs::read(&o).unwrap()).1,
            std::fs::read_to_string(&log).unwrap(),
        )
    };
    let (note, got, log) = run("gpu", "gpu.safetensors");
    assert!(note.contains("training on"), "{note}");
    // The tool's epoch lines (mean loss; no accuracy or layer health without --health:
    // tests/train_gpu_health.rs).
    assert!(note.contains("epoch 3/3"), "{note}");
    assert!(
        note.contains("gradient health: not measured on the GPU unless asked (--health"),
        "{note}"
    );
    // Checkpoints need the optimizer state, which the device keeps: refused, nothing written.
    let (refused, o, log_path) = run_with("gpu", "ckpt.safetensors", &["--checkpoint-every", "1"]);
    assert!(!refused.status.success());
    let why = common::stderr(&refused);
    assert!(
        why.contains("--checkpoint-every") && why.contains("--device cpu"),
        "{why}"
    );
    assert!(!o.exists() && !log_path.exists());
    let (losses, model) = run_gpu(&case);
    for t in model.tensors() {
        let name = format!("linear{}.{}", if t.module == 0 { 1 } else { 2 }, t.kind);
        let (_, _, values) = &got[&name];
        let want: Vec<f64> = t.f32().unwrap().iter().map(|&v| f64::from(v)).collect();
        assert_eq!(values, &want, "{name}");
    }
    let logged: Vec<f32> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("step").is_some())
        .map(|v| v["loss"].as_f64().unwrap() as f32)
        .collect();
    assert_eq!(logged, losses);
    if common::ctx().is_software() {
        let (note, _, _) = run("auto", "auto.safetensors");
        assert!(
            note.contains("training on the CPU") && note.contains("software"),
            "{note}"
        );
    }
}

/// LayerNorm and BatchNorm1d in train mode (with and without affine), PReLU (one slope, one per
/// feature), softmax and log-softmax, Dropout (the GPU draws its masks from the trainer's
/// generator as the CPU does), between Linear layers at odd widths and batches.
#[test]
fn gradients_of_the_row_modules_match_the_reference() {
    use wgpu_mlp::{BatchNorm1d, LayerNorm, Linear, Module, PRelu};
    let bn = |c: usize, affine: bool, seed: u64| {
        let (w, b) = if affine {
            (
                Some(common::random_vec(c, seed + 8, 0.5, 1.5)),
                Some(common::random_vec(c, seed + 9, -0.5, 0.5)),
            )
        } else {
            (None, None)
        };
        let mean = common::random_vec(c, seed + 10, -1.0, 1.0);
        let var = common::random_vec(c, seed + 11, 0.5, 2.0);
        BatchNorm1d::new(mean, var, w, b, 1e-5).unwrap()
    };
    let linear = |i: usize, o: usize, seed: u64| {
        let w = common::random_vec(i * o, seed, -0.5, 0.5);
        Module::Linear(
            Linear::new(i, o, w, Some(common::random_vec(o, seed + 1, -0.5, 0.5))).unwrap(),
        )
    };
    let mut worst: f64 = 0.0;
    for (k, &(width, batch)) in [(1, 1), (3, 7), (7, 33), (33, 3), (31, 257), (257, 2)]
        .iter()
        .enumerate()
    {
        let seed = 10 * k as u64;
        let slopes = common::random_vec(width, seed + 5, 0.0, 0.5);
        let gamma = common::random_vec(width, seed + 6, 0.5, 1.5);
        let beta = common::random_vec(width, seed + 7, -0.5, 0.5);
        let middles = [
            (
                "layernorm affine",
                Module::LayerNorm(LayerNorm::new(width, Some(gamma), Some(beta), 1e-5).unwrap()),
            ),
            (
                "layernorm plain",
                Module::LayerNorm(LayerNorm::new(width, None, None, 1e-5).unwrap()),
            ),
            ("prelu one", Module::PRelu(PRelu::new(vec![0.25]).unwrap())),
            (
                "prelu per feature",
                Module::PRelu(PRelu::new(slopes).unwrap()),
            ),
            ("softmax", Module::Activation(Activation::Softmax)),
            ("log_softmax", Module::Activation(Activation::LogSoftmax)),
            (
                "batchnorm affine",
                Module::BatchNorm1d(bn(width, true, seed)),
            ),
            (
                "batchnorm plain",
                Module::BatchNorm1d(bn(width, false, seed)),
            ),
            // The trainers' dropout generators start alike (seed 0): the same masks.
            ("dropout", Module::Dropout(0.3)),
            ("dropout all", Module::Dropout(1.0)),
        ];
        for (name, middle) in middles {
            if (name.starts_with("layernorm") && width < 2)
                || (name.starts_with("batchnorm") && batch < 2)
            {
                continue;
            }
            // A Linear bias before a train-mode BatchNorm has a zero true gradient and rounding
            // noise for one (docs/TRAINING.md): no bias there, as in the fixtures.
            let first = if name.starts_with("batchnorm") {
                let w = common::random_vec(5 * width, seed, -0.5, 0.5);
                Module::Linear(Linear::new(5, width, w, None).unwrap())
            } else {
                linear(5, width, seed)
            };
            let m = Mlp::new(vec![first, middle, linear(width, 3, seed + 2)]).unwrap();
            let x = common::input(batch, 5, seed + 3, 2.0);
            let y = regression_target(batch, 3, seed + 4);
            let what = format!("{name} width {width} batch {batch}");
            worst = worst.max(compare_gradients(
                &m,
                &x,
                &y,
                Loss::Mse,
                Reduction::Sum,
                &what,
            ));
        }
    }
    eprintln!("row modules: worst error {worst:.3} of the tolerance");
}

/// BatchNorm1d's running statistics and `num_batches_tracked` after steps on the GPU are the
/// reference's; a batch of one row is PyTorch's error; a gradients-only step leaves them.
#[test]
fn batchnorm_running_statistics_follow_the_reference() {
    use wgpu_mlp::model::{TensorKind, TensorValues};
    // No bias before the BatchNorm (its gradient is rounding noise there: docs/TRAINING.md).
    let mut m = common::model(&[4, 6, 2], &[Activation::Relu, Activation::Identity], 3);
    let mut mods = m.modules().to_vec();
    let w = common::random_vec(24, 9, -0.5, 0.5);
    mods[0] = wgpu_mlp::Module::Linear(wgpu_mlp::Linear::new(4, 6, w, None).unwrap());
    mods.insert(
        1,
        wgpu_mlp::Module::BatchNorm1d(wgpu_mlp::BatchNorm1d::default_init(6)),
    );
    m = Mlp::new(mods).unwrap();
    let x = common::input(9, 4, 5, 1.5);
    let y = regression_target(9, 2, 6);
    let mut gpu = gpu_trainer(m.clone(), Loss::Mse, Reduction::Mean, Optimizer::adam(0.01));
    let mut cpu = Trainer::new(
        m,
        Loss::Mse,
        Reduction::Mean,
        Optimizer::adam(0.01),
        Backend::CpuReference,
    )
    .unwrap();
    gpu.gradients(&x, &y).unwrap();
    for _ in 0..3 {
        gpu.step(&x, &y).unwrap();
        cpu.step(&x, &y).unwrap();
    }
    let one = Matrix::new(1, 4, vec![0.5; 4]).unwrap();
    let e = gpu
        .step(&one, &regression_target(1, 2, 7))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("at step 4") && e.contains("more than 1 value per channel"),
        "{e}"
    );
    let (g, c) = (gpu.sync().unwrap().tensors(), cpu.model().tensors());
    for (a, b) in g.iter().zip(&c) {
        match (a.values, b.values) {
            (TensorValues::Count(p), TensorValues::Count(q)) => assert_eq!((p, q), (3, 3)),
            (TensorValues::F32(p), TensorValues::F32(q)) => {
                for (u, v) in p.iter().zip(q) {
                    let tol = 1e-5 * (1.0 + v.abs());
                    assert!(
                        (u - v).abs() <= tol,
                        "{:?} {}: gpu {u} vs reference {v}",
                        a.kind,
                        a.module
                    );
                }
            }
            _ => panic!("kinds"),
        }
        if a.kind == TensorKind::RunningVar {
            assert!(
                matches!(a.values, TensorValues::F32(v) if v.iter().any(|&r| r != 1.0)),
                "updated"
            );
        }
    }
}
