//! `wgpu-mlp train`: PyTorch's trajectories through the command line (fixtures of
//! `tests/data/train`), the output's names and metadata, the step log, and every bad input as a
//! clean error with nothing written.

mod common;

use std::path::{Path, PathBuf};

use common::train::{case_json, int_npy, read_st, state, state_dict_file};
use common::{assert_fails, assert_ok, path_str, run_cli};
use wgpu_mlp::Matrix;

/// A case's files in a fresh folder: init.safetensors, x.npy, y.npy (int64 for class targets).
fn case_files(name: &str) -> (tempfile::TempDir, serde_json::Value) {
    let c = case_json(name);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("init.safetensors"),
        state_dict_file(&state(&c["init"])),
    )
    .unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let (n, n_in, n_out) = (
        c["n"].as_u64().unwrap() as usize,
        c["in"].as_u64().unwrap() as usize,
        c["out"].as_u64().unwrap() as usize,
    );
    let x = Matrix::new(n, n_in, floats(&c["x"])).unwrap();
    wgpu_mlp::io::npy::write(dir.path().join("x.npy"), &x).unwrap();
    if c["y"][0].is_i64() && (c["loss"]["name"] == "cross_entropy" || c["loss"]["name"] == "nll") {
        let y: Vec<i64> = serde_json::from_value(c["y"].clone()).unwrap();
        std::fs::write(dir.path().join("y.npy"), int_npy(&y)).unwrap();
    } else {
        let y = Matrix::new(n, n_out, floats(&c["y"])).unwrap();
        wgpu_mlp::io::npy::write(dir.path().join("y.npy"), &y).unwrap();
    }
    (dir, c)
}

fn p(dir: &Path, f: &str) -> PathBuf {
    dir.join(f)
}

/// Checks the output file against PyTorch's final float32 state: same keys, shapes and dtypes;
/// values within 2 × PyTorch's own float32-vs-float64 drift of each tensor (+ 8 ulps).
fn check_output(out: &Path, c: &serde_json::Value) {
    let (meta, got) = read_st(&std::fs::read(out).unwrap());
    assert_eq!(meta["format"], "pt");
    assert!(meta["wgpu_mlp.arch"].is_string());
    let want = state(&c["final"]);
    let want64 = state(&c["final64"]);
    assert_eq!(
        got.len(),
        want.len(),
        "keys {:?}",
        got.keys().collect::<Vec<_>>()
    );
    for ((name, t), (_, t64)) in want.iter().zip(&want64) {
        let (dtype, shape, values) = got.get(name).unwrap_or_else(|| panic!("missing {name}"));
        assert_eq!(shape, &t.shape, "{name}");
        if let Some(n) = t.count {
            assert_eq!(dtype, "I64");
            assert_eq!(values[0] as i64, n, "{name}");
            continue;
        }
        let drift = t
            .values
            .iter()
            .zip(&t64.values)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        for (i, (&o, &e)) in values.iter().zip(&t.values).enumerate() {
            let tol = 2.0 * drift + 8.0 * f64::from(f32::EPSILON) * e.abs().max(1e-3);
            assert!(
                (o - e).abs() <= tol,
                "{name}[{i}]: {o} vs PyTorch {e} (drift {drift:e})"
            );
        }
    }
}

#[test]
fn the_primer_model_trains_as_in_pytorch_and_keeps_its_names() {
    let (dir, c) = case_files("primer_mse_sgd");
    let d = dir.path();
    let (out, log) = (p(d, "out.safetensors"), p(d, "steps.jsonl"));
    let o = run_cli(&[
        "train",
        "--weights",
        path_str(&p(d, "init.safetensors")),
        "--arch",
        "linear,F.sigmoid,linear",
        "--input",
        path_str(&p(d, "x.npy")),
        "--target",
        path_str(&p(d, "y.npy")),
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
        "cpu-reference",
        "-o",
        path_str(&out),
        "--log",
        path_str(&log),
    ]);
    assert_ok(&o);
    check_output(&out, &c);
    let (meta, got) = read_st(&std::fs::read(&out).unwrap());
    assert!(got.contains_key("linear1.weight") && got.contains_key("linear2.bias"));
    assert_eq!(meta["wgpu_mlp.names"], "linear1,linear2");
    // The log: one line per step, PyTorch's losses within the float32/float64 drift (the
    // epoch summaries, without a "step" key, are tests/train_tool.rs's).
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("step").is_some())
        .collect();
    let (l32, l64) = (
        c["losses"].as_array().unwrap(),
        c["losses64"].as_array().unwrap(),
    );
    assert_eq!(lines.len(), l32.len());
    let mut drift: f64 = 0.0;
    for (s, line) in lines.iter().enumerate() {
        assert_eq!(line["step"], s + 1);
        let (a, b) = (l32[s].as_f64().unwrap(), l64[s].as_f64().unwrap());
        drift = drift.max((a - b).abs());
        let got = line["loss"].as_f64().unwrap();
        assert!(
            (got - a).abs() <= 4.0 * drift + 4.0 * f64::from(f32::EPSILON) * a.abs(),
            "step {s}: {got} vs {a}"
        );
    }
    // The output loads here with no flags (self-describing).
    wgpu_mlp::io::safetensors::load(&out, None, None).unwrap();
}

#[test]
fn cross_entropy_adam_batchnorm_shuffled_with_drop_last() {
    let (dir, c) = case_files("bn_relu_ce_adam_shuffle_droplast");
    let d = dir.path();
    let out = p(d, "out.safetensors");
    let o = run_cli(&[
        "train",
        "--weights",
        path_str(&p(d, "init.safetensors")),
        "--arch",
        "linear,batchnorm1d,relu,linear",
        "--input",
        path_str(&p(d, "x.npy")),
        "--target",
        path_str(&p(d, "y.npy")),
        "--loss",
        "cross_entropy:0.1",
        "--optim",
        "adam",
        "--lr",
        "0.01",
        "--epochs",
        "3",
        "--batch-size",
        "6",
        "--shuffle-seed",
        "3",
        "--drop-last",
        "--device",
        "cpu",
        "-o",
        path_str(&out),
    ]);
    assert_ok(&o);
    check_output(&out, &c);
}

#[test]
fn adamw_amsgrad_with_betas_eps_and_sum_reduction() {
    let (dir, c) = case_files("ln_gelu_bcelogits_sum_adamw_amsgrad");
    let d = dir.path();
    let out = p(d, "out.safetensors");
    let o = run_cli(&[
        "train",
        "--weights",
        path_str(&p(d, "init.safetensors")),
        "--arch",
        "linear,layernorm,gelu,linear",
        "--input",
        path_str(&p(d, "x.npy")),
        "--target",
        path_str(&p(d, "y.npy")),
        "--loss",
        "bce_with_logits",
        "--reduction",
        "sum",
        "--optim",
        "adamw",
        "--lr",
        "0.005",
        "--betas",
        "0.8,0.99",
        "--eps",
        "1e-6",
        "--weight-decay",
        "0.05",
        "--amsgrad",
        "--epochs",
        "2",
        "--batch-size",
        "7",
        "--shuffle-seed",
        "5",
        "-o",
        path_str(&out),
    ]);
    assert_ok(&o);
    check_output(&out, &c);
}

#[test]
fn a_new_model_from_layers_and_seed_trains_and_loads() {
    let (dir, _) = case_files("primer_mse_sgd");
    let d = dir.path();
    let out = p(d, "new.safetensors");
    let o = run_cli(&[
        "train",
        "--layers",
        "4,5,3",
        "--act",
        "relu,identity",
        "--seed",
        "1",
        "--input",
        path_str(&p(d, "x.npy")),
        "--target",
        path_str(&p(d, "y.npy")),
        "--loss",
        "huber:0.5",
        "--optim",
        "sgd",
        "--lr",
        "0.05",
        "--momentum",
        "0.9",
        "--nesterov",
        "--epochs",
        "2",
        "--batch-size",
        "3",
        "-o",
        path_str(&out),
    ]);
    assert_ok(&o);
    let m = wgpu_mlp::io::safetensors::load(&out, None, None).unwrap();
    assert_eq!(m.param_count(), 5 * 4 + 5 + 3 * 5 + 3);
    let (_, got) = read_st(&std::fs::read(&out).unwrap());
    assert!(
        got.contains_key("0.weight") && got.contains_key("2.bias"),
        "{:?}",
        got.keys()
    );
}

/// Runs `train` on the primer case's files with `args` replacing/adding flags; asserts a clean
/// failure whose message contains `want`, and that nothing was written.
fn refused(extra: &[&str], want: &str) {
    let (dir, _) = case_files("primer_mse_sgd");
    let d = dir.path();
    let (init, x, y, out) = (
        p(d, "init.safetensors"),
        p(d, "x.npy"),
        p(d, "y.npy"),
        p(d, "out.safetensors"),
    );
    let mut args: Vec<String> = [
        "train",
        "--weights",
        path_str(&init),
        "--arch",
        "linear,F.sigmoid,linear",
        "--input",
        path_str(&x),
        "--target",
        path_str(&y),
        "--loss",
        "mse",
        "--optim",
        "sgd",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "-o",
        path_str(&out),
        "--log",
        path_str(&p(d, "log.jsonl")),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut i = 0;
    while i < extra.len() {
        let flag = extra[i];
        let takes_value = i + 1 < extra.len() && !extra[i + 1].starts_with("--");
        if let Some(pos) = args.iter().position(|a| a == flag) {
            if takes_value {
                args[pos + 1] = extra[i + 1].replace("$D", path_str(d));
            }
        } else {
            args.push(flag.to_string());
            if takes_value {
                args.push(extra[i + 1].replace("$D", path_str(d)));
            }
        }
        i += if takes_value { 2 } else { 1 };
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = assert_fails(&run_cli(&refs));
    assert!(err.contains(want), "{extra:?}: wanted '{want}' in: {err}");
    assert!(
        !out.exists() && !p(d, "log.jsonl").exists(),
        "{extra:?}: something was written"
    );
}

#[test]
fn bad_inputs_are_clear_errors_and_write_nothing() {
    // Numbers and flags.
    refused(&["--epochs", "0"], "--epochs must be at least 1");
    refused(&["--batch-size", "0"], "--batch-size must be at least 1");
    refused(&["--batch-size", "40", "--drop-last"], "leaves no batch");
    refused(&["--lr", "-1"], "Invalid learning rate");
    refused(&["--nesterov"], "Nesterov momentum requires");
    refused(&["--optim", "adam", "--betas", "0.9"], "give two numbers");
    refused(
        &["--optim", "adam", "--betas", "1.5,0.9"],
        "Invalid beta parameter at index 0",
    );
    refused(
        &["--optim", "adam", "--momentum", "0.9"],
        "--momentum does not apply to --optim adam",
    );
    refused(
        &["--betas", "0.9,0.99"],
        "--betas does not apply to --optim sgd",
    );
    refused(&["--loss", "hinge"], "unknown --loss 'hinge'");
    refused(&["--loss", "smooth_l1:-1"], "beta must be");
    refused(
        &["--loss", "cross_entropy:2"],
        "label_smoothing must be in [0, 1]",
    );
    // Files and shapes.
    refused(&["--target", "$D/missing.npy"], "missing.npy");
    refused(&["--target", "$D/x.npy"], "needs [20, 3]");
    refused(&["--loss", "cross_entropy"], "must be integers");
    refused(&["-o", "$D/x.npy"], "x.npy");
}

#[test]
fn class_targets_out_of_range_and_nan_inputs_are_refused() {
    let (dir, _) = case_files("bn_relu_ce_adam_shuffle_droplast");
    let d = dir.path();
    let mut bad: Vec<i64> = vec![0; 33];
    bad[5] = 3;
    std::fs::write(p(d, "bad.npy"), int_npy(&bad)).unwrap();
    let base = |target: &Path, input: &Path, batch: &str| {
        run_cli(&[
            "train",
            "--weights",
            path_str(&p(d, "init.safetensors")),
            "--arch",
            "linear,batchnorm1d,relu,linear",
            "--input",
            path_str(input),
            "--target",
            path_str(target),
            "--loss",
            "cross_entropy",
            "--optim",
            "adam",
            "--epochs",
            "1",
            "--batch-size",
            batch,
            "-o",
            path_str(&p(d, "out.safetensors")),
        ])
    };
    let err = assert_fails(&base(&p(d, "bad.npy"), &p(d, "x.npy"), "6"));
    assert!(
        err.contains("class target 3 at row 5 is out of range"),
        "{err}"
    );
    // NaN in the input.
    let mut x = wgpu_mlp::io::read_matrix(p(d, "x.npy")).unwrap();
    x.as_mut_slice()[7] = f32::NAN;
    wgpu_mlp::io::npy::write(p(d, "nan.npy"), &x).unwrap();
    let err = assert_fails(&base(&p(d, "y.npy"), &p(d, "nan.npy"), "6"));
    assert!(err.contains("NaN at row 1, column 2"), "{err}");
    // BatchNorm with a last batch of one row (33 = 4·8 + 1): PyTorch's error, naming it.
    let err = assert_fails(&base(&p(d, "y.npy"), &p(d, "x.npy"), "8"));
    assert!(
        err.contains("at step 5") && err.contains("more than 1 value per channel"),
        "{err}"
    );
    assert!(!p(d, "out.safetensors").exists());
}

#[test]
fn a_loss_that_becomes_nan_stops_the_run_naming_the_step() {
    let (dir, _) = case_files("primer_mse_sgd");
    let d = dir.path();
    let out = p(d, "out.safetensors");
    let o = run_cli(&[
        "train",
        "--weights",
        path_str(&p(d, "init.safetensors")),
        "--arch",
        "linear,F.sigmoid,linear",
        "--input",
        path_str(&p(d, "x.npy")),
        "--target",
        path_str(&p(d, "y.npy")),
        "--loss",
        "mse",
        "--optim",
        "sgd",
        "--lr",
        "1e30",
        "--epochs",
        "3",
        "--batch-size",
        "4",
        "-o",
        path_str(&out),
    ]);
    let err = assert_fails(&o);
    assert!(err.contains("at step "), "{err}");
    assert!(!out.exists());
}

#[test]
fn class_targets_read_from_a_csv_of_integers() {
    let (dir, c) = case_files("softmax_ce_sum_sgd");
    let d = dir.path();
    let y: Vec<i64> = serde_json::from_value(c["y"].clone()).unwrap();
    let text: String = y.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(p(d, "y.csv"), text).unwrap();
    let out = p(d, "out.safetensors");
    let o = run_cli(&[
        "train",
        "--weights",
        path_str(&p(d, "init.safetensors")),
        "--arch",
        "linear,tanh,linear",
        "--input",
        path_str(&p(d, "x.npy")),
        "--target",
        path_str(&p(d, "y.csv")),
        "--loss",
        "cross_entropy",
        "--reduction",
        "sum",
        "--optim",
        "sgd",
        "--lr",
        "0.05",
        "--epochs",
        "2",
        "--batch-size",
        "5",
        "-o",
        path_str(&out),
    ]);
    assert_ok(&o);
    check_output(&out, &c);
    // A fraction is not a class.
    std::fs::write(p(d, "bad.csv"), "0\n1.5\n").unwrap();
    let o = run_cli(&[
        "train",
        "--weights",
        path_str(&p(d, "init.safetensors")),
        "--arch",
        "linear,tanh,linear",
        "--input",
        path_str(&p(d, "x.npy")),
        "--target",
        path_str(&p(d, "bad.csv")),
        "--loss",
        "nll",
        "--optim",
        "sgd",
        "--epochs",
        "1",
        "--batch-size",
        "5",
        "-o",
        path_str(&out),
    ]);
    let err = assert_fails(&o);
    assert!(
        err.contains("class target 1 is 1.5, not a whole number"),
        "{err}"
    );
}

#[test]
fn a_new_model_from_layers_and_seed_is_pytorchs_and_trains_as_pytorch_does() {
    // The fixture's model is torch.manual_seed(6) then Sequential(Linear(3, 5), SiLU(),
    // Linear(5, 2)): exactly what --layers 3,5,2 --act silu,identity --seed 6 builds.
    let (dir, c) = case_files("silu_l1_sgd_wd");
    let d = dir.path();
    let out = p(d, "out.safetensors");
    let o = run_cli(&[
        "train",
        "--layers",
        "3,5,2",
        "--act",
        "silu,identity",
        "--seed",
        "6",
        "--input",
        path_str(&p(d, "x.npy")),
        "--target",
        path_str(&p(d, "y.npy")),
        "--loss",
        "l1",
        "--optim",
        "sgd",
        "--lr",
        "0.05",
        "--momentum",
        "0.9",
        "--weight-decay",
        "0.01",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--shuffle-seed",
        "7",
        "-o",
        path_str(&out),
    ]);
    assert_ok(&o);
    check_output(&out, &c);
}

#[test]
fn num_batches_tracked_counts_on_from_the_input_file() {
    // PyTorch's state_dict with num_batches_tracked = 5: after 3 epochs of 5 batches, 20.
    let (dir, c) = case_files("bn_relu_ce_adam_shuffle_droplast");
    let d = dir.path();
    let mut init = state(&c["init"]);
    for (name, t) in init.iter_mut() {
        if name.ends_with("num_batches_tracked") {
            t.count = Some(5);
        }
    }
    std::fs::write(p(d, "init5.safetensors"), state_dict_file(&init)).unwrap();
    let out = p(d, "out.safetensors");
    let o = run_cli(&[
        "train",
        "--weights",
        path_str(&p(d, "init5.safetensors")),
        "--arch",
        "linear,batchnorm1d,relu,linear",
        "--input",
        path_str(&p(d, "x.npy")),
        "--target",
        path_str(&p(d, "y.npy")),
        "--loss",
        "cross_entropy:0.1",
        "--optim",
        "adam",
        "--lr",
        "0.01",
        "--epochs",
        "3",
        "--batch-size",
        "6",
        "--shuffle-seed",
        "3",
        "--drop-last",
        "-o",
        path_str(&out),
    ]);
    assert_ok(&o);
    let (_, got) = read_st(&std::fs::read(&out).unwrap());
    assert_eq!(got["1.num_batches_tracked"].2, [20.0]);
}
