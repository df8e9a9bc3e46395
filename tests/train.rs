//! Training against real PyTorch (fixtures of `tests/data/train`, made by `make_train.py`):
//! trajectories (per-step losses, final state_dicts) on the reference and the fast CPU path,
//! the DataLoader's shuffled order, activation derivatives at the kinks; and the backward pass
//! against finite differences at odd shapes.
//!
//! Tolerances: PyTorch's own float32 run differs from its float64 run of the same trajectory
//! (rounding drift); our f32 result must be within `K ×` that drift of PyTorch's float32 result
//! (plus a few f32 ulps for steps where the drift happens to be ~0). K = 2 for both paths: the
//! largest error measured is 0.67× (reference) and 0.48× (fast path) of drift + ulps.

mod common;

use common::train::{Case, cases, fixture, run};
use wgpu_mlp::data::{EpochOrder, randperm};
use wgpu_mlp::model::{TensorKind, TensorValues};
use wgpu_mlp::train::{Backend, Loss, Optimizer, Reduction, Target, Trainer};
use wgpu_mlp::{Activation, Generator, Matrix, Mlp, Module};

fn check_trajectory(case: &Case, backend: Backend, k: f64) {
    let (losses, model) = run(case, backend);
    common::train::check_trajectory(case, &losses, &model, k, &backend.to_string());
}

#[test]
fn reference_trajectories_match_pytorch() {
    for case in cases() {
        check_trajectory(&case, Backend::CpuReference, 2.0);
    }
}

#[test]
fn fast_cpu_trajectories_match_pytorch() {
    for case in cases() {
        check_trajectory(&case, Backend::Cpu, 2.0);
    }
}

#[test]
fn a_zero_initialised_hidden_layer_stays_symmetric() {
    let case = cases()
        .into_iter()
        .find(|c| c.name.starts_with("zero_init"))
        .expect("the zero-init case");
    let (_, model) = run(&case, Backend::CpuReference);
    let first = model.linears().next().unwrap();
    let w = first.weight();
    let n_in = first.in_features();
    // Every hidden neuron has the same incoming weights and bias, still.
    for row in w.chunks_exact(n_in) {
        assert_eq!(row, &w[..n_in]);
    }
    let b = first.bias().unwrap();
    assert!(b.iter().all(|&v| v == b[0]));
    // And it did train (not stuck at zero).
    assert!(w.iter().any(|&v| v != 0.0) || b[0] != 0.0);
    assert!(model.diagnostics().iter().any(|d| d.contains("identical")));
}

#[test]
fn randperm_matches_torch() {
    let f = fixture("loader.json");
    for p in f["randperm"].as_array().unwrap() {
        let n = p["n"].as_u64().unwrap() as usize;
        let mut g = Generator::new(p["seed"].as_u64().unwrap());
        for want in p["perms"].as_array().unwrap() {
            let want: Vec<usize> = want
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(randperm(n, &mut g), want, "n = {n}");
        }
    }
}

#[test]
fn randperm_matches_torch_at_a_million() {
    check_big_randperms(&fixture("loader.json")["randperm_big"]);
}

#[test]
fn randperm_matches_torch_on_its_64_bit_path() {
    // PyTorch's inside-out variant with 64-bit draws, from n = 2³²/20 = 214,748,364 on, checked
    // at that n (randperm_wide.json, from make_randperm_wide.py): 1.7 GB for the permutation,
    // 47 s at load 9 on this 2-core machine.
    let wide = fixture("randperm_wide.json");
    assert_eq!(wide[0]["n"], 214_748_364, "the first n of the 64-bit path");
    check_big_randperms(&wide);
}

/// Each case's permutation against torch's first and last 16 values and checksum.
fn check_big_randperms(cases: &serde_json::Value) {
    for p in cases.as_array().unwrap() {
        let n = p["n"].as_u64().unwrap() as usize;
        let perm = randperm(n, &mut Generator::new(p["seed"].as_u64().unwrap()));
        let ints = |k: &str| -> Vec<usize> { serde_json::from_value(p[k].clone()).unwrap() };
        assert_eq!(perm[..16], ints("head")[..], "n = {n}");
        assert_eq!(perm[n - 16..], ints("tail")[..], "n = {n}");
        let m = (1u128 << 61) - 1;
        // Each term is below 2⁵⁶, so the sum of 2²⁸ of them fits u128: one remainder at the end.
        let check = perm
            .iter()
            .enumerate()
            .map(|(i, &v)| i as u128 * v as u128)
            .sum::<u128>()
            % m;
        assert_eq!(check as u64, p["check"].as_u64().unwrap(), "n = {n}");
    }
}

#[test]
fn shuffled_epochs_match_torch_dataloader() {
    let f = fixture("loader.json");
    for l in f["loader"].as_array().unwrap() {
        let (n, bs) = (
            l["n"].as_u64().unwrap() as usize,
            l["batch_size"].as_u64().unwrap() as usize,
        );
        let mut order = EpochOrder::new(
            n,
            bs,
            Some(l["seed"].as_u64().unwrap()),
            l["drop_last"].as_bool().unwrap(),
        )
        .unwrap();
        for (e, want) in l["epochs"].as_array().unwrap().iter().enumerate() {
            let want: Vec<Vec<usize>> = serde_json::from_value(want.clone()).unwrap();
            assert_eq!(order.next_epoch(), want, "n={n} bs={bs} epoch {e}");
        }
    }
    // Without a seed the order is the rows' order; drop_last drops the short batch.
    let mut plain = EpochOrder::new(5, 2, None, true).unwrap();
    assert_eq!(plain.next_epoch(), vec![vec![0, 1], vec![2, 3]]);
    assert!(EpochOrder::new(5, 0, None, false).is_err());
}

#[test]
fn activation_derivatives_match_autograd_at_kinks_and_random_points() {
    let f = fixture("activations.json");
    for c in f["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let a: Activation = name.parse().unwrap();
        let xs: Vec<f32> = serde_json::from_value::<Vec<f64>>(c["x"].clone())
            .unwrap()
            .iter()
            .map(|&v| v as f32)
            .collect();
        let want: Vec<f64> = serde_json::from_value(c["grad"].clone()).unwrap();
        let cols = c.get("cols").and_then(|v| v.as_u64()).unwrap_or(1) as usize;
        let up: Vec<f32> = match c.get("up") {
            Some(u) => serde_json::from_value::<Vec<f64>>(u.clone())
                .unwrap()
                .iter()
                .map(|&v| v as f32)
                .collect(),
            None => vec![1.0; xs.len()],
        };
        let got = wgpu_mlp::train::activation_vjp(a, &xs, &up, cols);
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            // f64 formulas rounded once vs PyTorch's f32 kernels, whose intermediates (of size
            // up to 1 + |x|) round too and may cancel (gelu_tanh's 1 − tanh² near ±3): 4 ulps
            // of the result plus 4 ulps of 1 + |x|.
            let x = f64::from(xs[i]);
            let tol = 4.0 * f64::from(f32::EPSILON) * (w.abs() + 1.0 + x.abs());
            assert!(
                (f64::from(g) - w).abs() <= tol,
                "{name} at x = {}: {g} vs autograd {w}",
                xs[i]
            );
        }
    }
}

/// Central differences of the loss (f32 forward: the loss's rounding noise, ~1e-7·L, divided by
/// h sets the floor) against the backward's gradient, for every trainable tensor.
fn check_gradients(model: Mlp, x: &Matrix, y: &Target, loss: Loss, what: &str) {
    let grads = |m: Mlp| {
        let mut t = Trainer::new(
            m,
            loss,
            Reduction::Sum,
            Optimizer::sgd(0.0),
            Backend::CpuReference,
        )
        .unwrap();
        t.gradients(x, y).unwrap()
    };
    let (l0, g) = grads(model.clone());
    let params: Vec<(usize, TensorKind, Vec<f32>)> = model
        .parameters()
        .iter()
        .map(|t| (t.module, t.kind, t.f32().unwrap().to_vec()))
        .collect();
    let scale = g
        .iter()
        .flatten()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1e-3);
    for (k, (module, kind, values)) in params.iter().enumerate() {
        for i in (0..values.len()).step_by(values.len().div_ceil(12)) {
            let h = 1e-2 * values[i].abs().max(0.1);
            let at = |d: f32| {
                let mut m = model.clone();
                let mut v = values.clone();
                v[i] += d;
                m.set_tensor(*module, *kind, &v).unwrap();
                f64::from(grads(m).0)
            };
            let fd = (at(h) - at(-h)) / f64::from(2.0 * h);
            let an = f64::from(g[k][i]);
            let tol = 2e-2 * f64::from(scale) + 3e-6 * f64::from(l0.abs()) / f64::from(h);
            assert!(
                (fd - an).abs() <= tol,
                "{what}: module {module} {kind}[{i}]: backward {an} vs finite difference {fd} (tol {tol:e})"
            );
        }
    }
}

fn seq(mods: Vec<Module>) -> Mlp {
    Mlp::new(mods).unwrap()
}

fn linear(n_in: usize, n_out: usize, seed: u64) -> Module {
    let w = common::random_vec(n_in * n_out, seed, -0.8, 0.8);
    let b = common::random_vec(n_out, seed + 1, -0.3, 0.3);
    Module::Linear(wgpu_mlp::Linear::new(n_in, n_out, w, Some(b)).unwrap())
}

#[test]
fn backward_matches_finite_differences_for_every_module() {
    let acts = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Elu(1.0),
        Activation::Selu,
        Activation::Celu(0.7),
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Silu,
        Activation::Mish,
        Activation::Softplus {
            beta: 1.0,
            threshold: 20.0,
        },
        Activation::Hardtanh {
            min: -1.0,
            max: 1.0,
        },
        Activation::Relu6,
        Activation::Hardsigmoid,
        Activation::Hardswish,
        Activation::Softmax,
        Activation::LogSoftmax,
    ];
    for (batch, n_in, hidden) in [(1, 3, 7), (7, 31, 3), (33, 1, 33), (257, 7, 3)] {
        let x = common::input(batch, n_in, 9, 2.0);
        let y = Target::Values(common::input(batch, 2, 10, 1.0));
        for (j, a) in acts.iter().enumerate() {
            let m = seq(vec![
                linear(n_in, hidden, j as u64),
                Module::Activation(*a),
                linear(hidden, 2, 50),
            ]);
            check_gradients(m, &x, &y, Loss::Mse, &format!("{a} batch {batch}"));
        }
        let prelu = wgpu_mlp::PRelu::new(common::random_vec(hidden, 3, 0.0, 0.5)).unwrap();
        let ln = wgpu_mlp::LayerNorm::new(
            hidden,
            Some(common::random_vec(hidden, 4, 0.5, 1.5)),
            Some(common::random_vec(hidden, 5, -0.5, 0.5)),
            1e-5,
        )
        .unwrap();
        let m = seq(vec![
            linear(n_in, hidden, 1),
            Module::PRelu(prelu),
            Module::LayerNorm(ln),
            linear(hidden, 2, 2),
        ]);
        check_gradients(
            m,
            &x,
            &y,
            Loss::Mse,
            &format!("prelu+layernorm batch {batch}"),
        );
        let single = wgpu_mlp::PRelu::new(vec![0.25]).unwrap();
        let m = seq(vec![
            linear(n_in, hidden, 6),
            Module::PRelu(single),
            linear(hidden, 2, 7),
        ]);
        check_gradients(m, &x, &y, Loss::Mse, &format!("prelu(1) batch {batch}"));
        if batch > 1 {
            let bn = wgpu_mlp::BatchNorm1d::new(
                vec![0.0; hidden],
                vec![1.0; hidden],
                Some(common::random_vec(hidden, 7, 0.5, 1.5)),
                Some(common::random_vec(hidden, 8, -0.5, 0.5)),
                1e-5,
            )
            .unwrap();
            let m = seq(vec![
                linear(n_in, hidden, 8),
                Module::BatchNorm1d(bn),
                Module::Activation(Activation::Tanh),
                linear(hidden, 2, 9),
            ]);
            check_gradients(m, &x, &y, Loss::Mse, &format!("batchnorm batch {batch}"));
        }
    }
}

#[test]
fn batchnorm_train_mode_updates_running_stats_like_pytorch() {
    // PyTorch: running = 0.9·running + 0.1·stat, the variance unbiased; count + 1.
    let bn = wgpu_mlp::BatchNorm1d::default_init(1);
    let m = Mlp::new(vec![
        Module::Linear(wgpu_mlp::Linear::new(1, 1, vec![1.0], Some(vec![0.0])).unwrap()),
        Module::BatchNorm1d(bn),
    ])
    .unwrap();
    let mut t = Trainer::new(
        m,
        Loss::Mse,
        Reduction::Mean,
        Optimizer::sgd(0.0),
        Backend::CpuReference,
    )
    .unwrap();
    let x = Matrix::new(4, 1, vec![1.0, 2.0, 3.0, 6.0]).unwrap();
    let y = Target::Values(Matrix::new(4, 1, vec![0.0; 4]).unwrap());
    t.step(&x, &y).unwrap();
    let ts = t.model().tensors();
    let get = |k: TensorKind| {
        ts.iter()
            .find(|t| t.kind == k && t.module == 1)
            .unwrap()
            .values
    };
    // mean 3, unbiased var (4 + 1 + 0 + 9)/3 = 14/3.
    assert_eq!(get(TensorKind::RunningMean), TensorValues::F32(&[0.3]));
    assert_eq!(
        get(TensorKind::RunningVar),
        TensorValues::F32(&[(0.9 + 0.1 * 14.0 / 3.0) as f32])
    );
    assert_eq!(get(TensorKind::NumBatchesTracked), TensorValues::Count(1));
    // A batch of one is PyTorch's error, and changes nothing.
    let one = Matrix::new(1, 1, vec![1.0]).unwrap();
    let e = t
        .step(&one, &Target::Values(Matrix::new(1, 1, vec![0.0]).unwrap()))
        .unwrap_err();
    assert!(
        e.to_string().contains("more than 1 value per channel"),
        "{e}"
    );
    let count = t
        .model()
        .tensors()
        .into_iter()
        .find(|t| t.kind == TensorKind::NumBatchesTracked);
    assert_eq!(count.unwrap().values, TensorValues::Count(1));
}

#[test]
fn dropout_keeps_one_minus_p_and_scales_by_its_inverse() {
    // Linear(1→n) with weight 1, bias 0, then Dropout(0.3): with loss = sum of outputs (MSE
    // against y − ½ has gradient 2(o − y)), the bias gradient counts kept units × 1/(1 − p).
    let n = 4000;
    let lin = wgpu_mlp::Linear::new(1, n, vec![1.0; n], Some(vec![0.0; n])).unwrap();
    let m = Mlp::new(vec![Module::Linear(lin), Module::Dropout(0.3)]).unwrap();
    let mut t = Trainer::new(
        m,
        Loss::L1,
        Reduction::Sum,
        Optimizer::sgd(0.0),
        Backend::CpuReference,
    )
    .unwrap()
    .dropout_seed(7);
    let x = Matrix::new(1, 1, vec![1.0]).unwrap();
    let y = Target::Values(Matrix::new(1, n, vec![-1.0; n]).unwrap());
    let (_, g) = t.gradients(&x, &y).unwrap();
    let db = &g[1];
    let scale = (1.0f64 / 0.7) as f32;
    assert!(db.iter().all(|&v| v == 0.0 || v == scale), "{:?}", &db[..8]);
    let kept = db.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
    // Binomial(4000, 0.7): σ ≈ 0.0072; 5σ.
    assert!((kept - 0.7).abs() < 0.036, "kept {kept}");
    // p = 1 drops everything (PyTorch returns zeros), p = 0 keeps everything unscaled.
    for (p, want) in [(1.0, 0.0), (0.0, 1.0)] {
        let lin = wgpu_mlp::Linear::new(1, 5, vec![1.0; 5], Some(vec![0.0; 5])).unwrap();
        let m = Mlp::new(vec![Module::Linear(lin), Module::Dropout(p)]).unwrap();
        let mut t = Trainer::new(
            m,
            Loss::L1,
            Reduction::Sum,
            Optimizer::sgd(0.0),
            Backend::Cpu,
        )
        .unwrap();
        let y = Target::Values(Matrix::new(1, 5, vec![-1.0; 5]).unwrap());
        let (_, g) = t.gradients(&x, &y).unwrap();
        assert!(g[1].iter().all(|&v| v == want), "p = {p}: {:?}", g[1]);
    }
}

#[test]
fn onnx_elementwise_modules_train_unless_they_hold_per_feature_constants() {
    // GELU as an exporter writes it, x·½·(1 + erf(x/√2)), trains like the GELU module.
    use wgpu_mlp::model::expr::{Binary, Node, Unary};
    let gelu = wgpu_mlp::Expr::from_nodes(vec![
        Node::Input,
        Node::Const(std::f32::consts::FRAC_1_SQRT_2),
        Node::Binary(Binary::Mul, 0, 1),
        Node::Unary(Unary::Erf, 2),
        Node::Const(1.0),
        Node::Binary(Binary::Add, 3, 4),
        Node::Binary(Binary::Mul, 0, 5),
        Node::Const(0.5),
        Node::Binary(Binary::Mul, 6, 7),
    ])
    .unwrap();
    let x = common::input(9, 3, 1, 2.0);
    let y = Target::Values(common::input(9, 2, 2, 1.0));
    let with = |m: Module| seq(vec![linear(3, 7, 1), m, linear(7, 2, 2)]);
    let onnx = with(Module::Elementwise {
        expr: gelu,
        class: Some("GELU".into()),
    });
    check_gradients(onnx.clone(), &x, &y, Loss::Mse, "ONNX GELU");
    let grads = |m: Mlp| {
        let mut t = Trainer::new(
            m,
            Loss::Mse,
            Reduction::Mean,
            Optimizer::sgd(0.1),
            Backend::CpuReference,
        )
        .unwrap();
        t.gradients(&x, &y).unwrap().1
    };
    // The graph rounds after each of its nodes, the module once: 1e-5 of the largest gradient.
    let (ga, gb) = (
        grads(onnx),
        grads(with(Module::Activation(Activation::Gelu))),
    );
    let scale = ga.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
    for (a, b) in ga.iter().flatten().zip(gb.iter().flatten()) {
        assert!((a - b).abs() <= 1e-5 * scale, "{a} vs {b}");
    }
    // A folded per-feature affine map (a PReLU slope, a norm) would be trained by PyTorch.
    let folded = wgpu_mlp::Expr::affine(Some(vec![2.0; 7]), None);
    let m = with(Module::Elementwise {
        expr: folded,
        class: Some("BatchNorm1d".into()),
    });
    let e = Trainer::new(
        m,
        Loss::Mse,
        Reduction::Mean,
        Optimizer::sgd(0.1),
        Backend::Cpu,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot train module 1 (BatchNorm1d)"),
        "{e}"
    );
}

#[test]
fn a_nan_loss_stops_naming_the_step() {
    let m = common::model(&[2, 3, 1], &[Activation::Relu, Activation::Identity], 0);
    let mut t = Trainer::new(
        m.clone(),
        Loss::Mse,
        Reduction::Mean,
        Optimizer::sgd(0.1),
        Backend::Cpu,
    )
    .unwrap();
    let x = Matrix::new(1, 2, vec![1.0, 2.0]).unwrap();
    t.step(&x, &Target::Values(Matrix::new(1, 1, vec![0.0]).unwrap()))
        .unwrap();
    let e = t
        .step(
            &x,
            &Target::Values(Matrix::new(1, 1, vec![f32::NAN]).unwrap()),
        )
        .unwrap_err();
    assert!(e.to_string().contains("at step 2"), "{e}");
}

#[test]
fn fast_path_matches_reference_at_odd_shapes_and_a_large_batch() {
    // The fast path's f32 accumulation differs from the reference's f64 by a few ulps per dot
    // product; after 5 Adam steps the losses agree to 1e-5 and the parameters to 1e-4, relative
    // to their scale.
    for (batch, widths) in [
        (257, [33, 64, 5]),
        (1, [1, 3, 1]),
        (7, [31, 33, 7]),
        (64, [3, 257, 2]),
    ] {
        let m = common::model(&widths, &[Activation::Gelu, Activation::Identity], 3);
        let x = common::input(batch, widths[0], 4, 1.0);
        let y = Target::Values(common::input(batch, widths[2], 5, 1.0));
        let mut out = Vec::new();
        for b in [Backend::CpuReference, Backend::Cpu] {
            let mut t = Trainer::new(
                m.clone(),
                Loss::Mse,
                Reduction::Mean,
                Optimizer::adam(1e-3),
                b,
            )
            .unwrap();
            let losses: Vec<f32> = (0..5).map(|_| t.step(&x, &y).unwrap()).collect();
            out.push((losses, t.into_model()));
        }
        for (a, b) in out[0].0.iter().zip(&out[1].0) {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs(),
                "{widths:?} b{batch}: {a} vs {b}"
            );
        }
        for (a, b) in out[0].1.tensors().iter().zip(out[1].1.tensors()) {
            for (x, y) in a.f32().unwrap().iter().zip(b.f32().unwrap()) {
                assert!(
                    (x - y).abs() <= 1e-4 * x.abs().max(0.1),
                    "{widths:?} b{batch}: {x} vs {y}"
                );
            }
        }
    }
}
