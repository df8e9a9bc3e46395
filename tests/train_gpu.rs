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

/// The fixture cases the GPU trains (the others need BatchNorm, LayerNorm, PReLU or
/// log_softmax: refused, see `unsupported_modules_are_refused_naming_them`).
fn gpu_cases() -> Vec<Case> {
    cases()
        .into_iter()
        .filter(|c| {
            c.model.modules().iter().all(|m| match m {
                wgpu_mlp::Module::Linear(_) => true,
                wgpu_mlp::Module::Activation(a) | wgpu_mlp::Module::Function(a) => !a.is_row(),
                _ => false,
            })
        })
        .collect()
}

#[test]
fn gpu_trajectories_match_pytorch() {
    let all = gpu_cases();
    assert!(all.len() >= 6, "{} GPU cases", all.len());
    for case in &all {
        let (losses, model) = run_gpu(case);
        check_trajectory(case, &losses, &model, 2.0, "gpu");
    }
}

#[test]
fn step_by_step_and_queued_steps_agree_bit_for_bit() {
    let case = gpu_cases().into_iter().next().unwrap();
    let batch = |i: usize| {
        let rows: Vec<usize> = (i * 4..i * 4 + 4).collect();
        let x = Matrix::new(4, case.x.cols(), rows.iter().flat_map(|&r| case.x.row(r).to_vec()).collect()).unwrap();
        (x, case.y.select(&rows).unwrap())
    };
    let mut a = gpu_trainer(case.model.clone(), case.loss, case.reduction, case.optim);
    let mut b = gpu_trainer(case.model.clone(), case.loss, case.reduction, case.optim);
    let mut c = gpu_trainer(case.model.clone(), case.loss, case.reduction, case.optim);
    let mut la = Vec::new();
    for i in 0..4 {
        let (x, y) = batch(i);
        la.push(a.step(&x, &y).unwrap());
        b.step_queued(&x, &y).unwrap();
    }
    let batches: Vec<_> = (0..4).map(|i| { let (x, y) = batch(i); c.upload_batch(&x, &y).unwrap() }).collect();
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
}
