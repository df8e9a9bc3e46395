//! The GPU compile budget (issue 24, item 8): tiny files whose shaders would take minutes to
//! compile are refused before anything is compiled, with an error naming the budget and how to
//! raise it; long elementwise chains after a Linear or row operation run as passes of their own
//! (cheaper to compile) and still give the reference's numbers. The files are made by
//! tests/data/compile/make_compile.py.

mod common;

use common::{assert_close, ctx, data, input, path_str};
use wgpu_mlp::gpu::GpuMlp;
use wgpu_mlp::{Activation, LayerNorm, Linear, Mlp, Module, cpu, onnx};

/// Elementwise modules only: the GPU computes transcendental functions within 1e-5 relative
/// (docs/GUARANTEES.md); four softplus in a row keep that order of error.
const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-5;

fn softplus4() -> Vec<Module> {
    // 4 × 20 inlined statements: over the 64 a Linear or row pass may fuse.
    let sp = Activation::Softplus {
        beta: 1.0,
        threshold: 20.0,
    };
    vec![Module::Activation(sp); 4]
}

fn linear(i: usize, o: usize, seed: u64) -> Module {
    let w = common::random_vec(i * o, seed, -1.0, 1.0);
    let b = common::random_vec(o, seed + 1, -1.0, 1.0);
    Module::Linear(Linear::new(i, o, w, Some(b)).unwrap())
}

#[test]
fn long_epilogues_run_apart_with_the_references_numbers() {
    // After a Linear layer (every kernel), after a LayerNorm (a row pass), before a softmax that
    // would otherwise fuse into the Linear: odd widths, batch 1 and 33.
    let mut modules = vec![linear(7, 5, 1)];
    modules.extend(softplus4());
    modules.push(Module::LayerNorm(LayerNorm::default_init(5)));
    modules.extend(softplus4());
    modules.push(linear(5, 3, 3));
    modules.extend(softplus4());
    modules.push(Module::Activation(Activation::Softmax));
    let m = Mlp::new(modules).unwrap();
    for rows in [1, 33] {
        let x = input(rows, 7, rows as u64, 3.0);
        let expected = cpu::forward_f64(&m, &x).unwrap();
        for (mode, kernel) in common::kernel_runs() {
            let y = common::forward_with(&m, &x, mode, kernel);
            let what = format!("{mode:?} {kernel} rows {rows}");
            assert_close(y.as_slice(), &expected, RTOL, ATOL, &what);
        }
    }
}

#[test]
fn a_linear_then_64_mish_compiles_within_the_budget_and_matches_the_reference() {
    // The red team's file (98 s and 1.3 GB on lavapipe before: the 64 Mish were inlined at every
    // store of four Linear pipelines).
    let m = onnx::load(data("compile/mish64.onnx")).unwrap();
    let x = input(3, 4, 7, 2.0);
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    let expected = cpu::forward_f64(&m, &x).unwrap();
    assert_close(
        gpu.forward(&x).unwrap().as_slice(),
        &expected,
        1e-3,
        1e-5,
        "mish64",
    );
}

#[test]
fn files_over_the_budget_are_refused_naming_it_in_library_and_cli() {
    // 16 different chains of 64 elementwise modules (99.5 s on lavapipe before): refused before
    // anything is compiled, in every mode and with every kernel.
    let m = onnx::load(data("compile/distinct16.onnx")).unwrap();
    for (mode, kernel) in common::kernel_runs() {
        let options = wgpu_mlp::gpu::GpuMlpOptions {
            mode,
            kernel,
            ..Default::default()
        };
        let e = GpuMlp::with_options(ctx(), &m, options)
            .unwrap_err()
            .to_string();
        for phrase in [
            "too long to compile",
            "budget is 120000",
            "WGPU_MLP_COMPILE_BUDGET",
        ] {
            assert!(e.contains(phrase), "{mode:?} {kernel}: {e}");
        }
    }
    let out = std::env::temp_dir().join(format!("compile_budget_{}.csv", std::process::id()));
    let args = |weights: &str, x: &str| {
        [
            "infer",
            "--device",
            "gpu",
            "--weights",
            weights,
            "-i",
            x,
            "-o",
            path_str(&out),
        ]
        .map(String::from)
    };
    let (distinct, x) = (data("compile/distinct16.onnx"), data("compile/x.csv"));
    let o = common::cli(
        &args(path_str(&distinct), path_str(&x))
            .each_ref()
            .map(String::as_str),
    )
    .output()
    .unwrap();
    let e = common::assert_fails(&o);
    assert!(e.contains("WGPU_MLP_COMPILE_BUDGET"), "{e}");
    // The variable sets the budget: a small model under a tiny budget is refused, naming it;
    // a value that is not a number is an error, not the default.
    let (small, x) = (
        data("models/primer.dynamo.onnx"),
        data("models/primer.x.npy"),
    );
    let small_args = args(path_str(&small), path_str(&x));
    let small_args = small_args.each_ref().map(String::as_str);
    let o = common::cli(&small_args)
        .env("WGPU_MLP_COMPILE_BUDGET", "1000")
        .output()
        .unwrap();
    let e = common::assert_fails(&o);
    assert!(e.contains("budget is 1000"), "{e}");
    let o = common::cli(&small_args)
        .env("WGPU_MLP_COMPILE_BUDGET", "lots")
        .output()
        .unwrap();
    let e = common::assert_fails(&o);
    assert!(e.contains("WGPU_MLP_COMPILE_BUDGET=\"lots\""), "{e}");
    let o = common::cli(&small_args).output().unwrap();
    common::assert_ok(&o);
    let _ = std::fs::remove_file(&out);
}
