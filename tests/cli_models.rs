//! The command line with real PyTorch models: self-describing files and ONNX need no other flag,
//! bare state_dicts take `--arch` (or are refused with a message saying what to pass), `init`
//! writes self-describing files, `summary` of widths allocates nothing; and where `infer` runs:
//! `--device auto|gpu|cpu|cpu-reference`, `--adapter` by name, backend or driver, bad backends.

mod common;

use std::path::{Path, PathBuf};

use common::{
    assert_fails, assert_ok, path_str as p, run_cli as run, run_cli_all_backends as run_all,
    stderr, stdout,
};
use wgpu_mlp::io::npy;

fn models(name: &str) -> PathBuf {
    common::data(&format!("models/{name}"))
}

/// `infer` of a fixture into `dir`, returning the output values.
fn infer(dir: &Path, weights: &Path, case: &str, extra: &[&str]) -> Vec<f32> {
    let x = models(&format!("{case}.x.npy"));
    let y = dir.join(format!("{case}.y.npy"));
    let mut args = vec!["infer", "--weights", p(weights), "-i", p(&x), "-o", p(&y)];
    args.extend_from_slice(extra);
    assert_ok(&run(&args));
    npy::read(&y).unwrap().as_slice().to_vec()
}

fn y64(case: &str) -> Vec<f64> {
    npy::read_f64(models(&format!("{case}.y64.npy")))
        .unwrap()
        .data
}

#[test]
fn self_describing_and_onnx_files_need_no_flags() {
    let dir = tempfile::tempdir().unwrap();
    for case in ["seq_bn", "seq_ln", "primer", "acts_b"] {
        let summary = std::fs::read_to_string(models(&format!("{case}.summary.txt"))).unwrap();
        for file in [
            format!("{case}.meta.safetensors"),
            format!("{case}.legacy.onnx"),
        ] {
            let w = models(&file);
            let o = run(&["summary", "--weights", p(&w)]);
            assert_ok(&o);
            if !(case == "seq_bn" && file.ends_with(".onnx")) {
                // (The exporter drops seq_bn's Dropout module: tests/onnx.rs.)
                assert_eq!(stdout(&o), summary, "{file}");
            }
            for device in ["cpu", "cpu-reference", "gpu"] {
                let y = infer(dir.path(), &w, case, &["--device", device]);
                common::assert_close(&y, &y64(case), 1e-4, 1e-5, &format!("{file} {device}"));
            }
        }
    }
}

#[test]
fn bare_state_dicts_take_arch_and_are_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    let w = models("seq_bn.safetensors");
    let x = models("seq_bn.x.npy");
    let y = dir.path().join("y.npy");
    let o = run(&["infer", "--weights", p(&w), "-i", p(&x), "-o", p(&y)]);
    let err = assert_fails(&o);
    assert!(err.contains("--arch") && err.contains("--act"), "{err}");
    assert!(!y.exists(), "nothing written");
    let arch = "linear,batchnorm1d,relu,dropout:0.3,linear,softmax";
    let got = infer(
        dir.path(),
        &w,
        "seq_bn",
        &["--arch", arch, "--device", "cpu"],
    );
    common::assert_close(&got, &y64("seq_bn"), 1e-4, 1e-5, "seq_bn --arch");
    // Module names where their natural order is not the forward order.
    let w = models("nested_functional.safetensors");
    let arch = "linear,relu,linear,F.tanh,linear";
    let got = infer(
        dir.path(),
        &w,
        "nested_functional",
        &[
            "--arch",
            arch,
            "--names",
            "net.0,net.2,head",
            "--device",
            "cpu",
        ],
    );
    common::assert_close(&got, &y64("nested_functional"), 1e-4, 1e-5, "--names");
    // --arch and --act together, and either with an ONNX file, are refused.
    let o = run(&[
        "summary",
        "--weights",
        p(&w),
        "--arch",
        arch,
        "--act",
        "relu",
    ]);
    assert_fails(&o);
    let onnx = models("primer.dynamo.onnx");
    let err = assert_fails(&run(&[
        "summary",
        "--weights",
        p(&onnx),
        "--act",
        "sigmoid",
    ]));
    assert!(
        err.contains("ONNX") && err.contains("its own architecture"),
        "{err}"
    );
}

#[test]
fn init_writes_self_describing_files_and_summary_of_widths_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    let arch = "linear,batchnorm1d,relu,dropout:0.3,linear,layernorm,F.gelu,linear,log_softmax";
    let layers = "13,31,17,5";
    assert_ok(&run(&[
        "init",
        "--layers",
        layers,
        "--arch",
        arch,
        "-o",
        p(&out),
    ]));
    let from_file = run(&["summary", "--weights", p(&out)]);
    assert_ok(&from_file);
    let from_widths = run(&["summary", "--layers", layers, "--arch", arch]);
    assert_ok(&from_widths);
    assert_eq!(stdout(&from_file), stdout(&from_widths));
    assert!(
        stdout(&from_file).contains("BatchNorm1d-2") && stdout(&from_file).contains("LayerNorm-6")
    );
    // A table of 6 billion parameters: counted, not built (the process would need 26 GB).
    let o = run(&[
        "summary",
        "--layers",
        "46340,46340,46340,46340",
        "--act",
        "relu,relu,softmax",
    ]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("Total params: 6,442,325,820"),
        "{}",
        stdout(&o)
    );
}

/// `infer` of `w` on `x` into `y` with every backend visible, plus `extra` flags.
fn infer_all(w: &Path, x: &Path, y: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["infer", "--weights", p(w), "-i", p(x), "-o", p(y)];
    args.extend_from_slice(extra);
    run_all(&args)
}

#[test]
fn auto_runs_on_the_cpu_without_a_hardware_gpu_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let w = models("primer.meta.safetensors");
    let x = models("primer.x.npy");
    let y = dir.path().join("y.npy");
    // This machine class has only software adapters (lavapipe, llvmpipe).
    let o = infer_all(&w, &x, &y, &[]);
    assert_ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("running on the CPU") && err.contains("software adapters"),
        "{err}"
    );
    // Asked for, the GPU runs on a software adapter, named.
    let o = infer_all(&w, &x, &y, &["--device", "gpu"]);
    assert_ok(&o);
    assert!(stderr(&o).contains("running on llvmpipe"), "{}", stderr(&o));
    // lavapipe and llvmpipe share a name; the backend tells them apart.
    for (needle, backend) in [("vulkan", "Vulkan"), ("gl", "Gl")] {
        let o = infer_all(&w, &x, &y, &["--adapter", needle]);
        assert_ok(&o);
        assert!(
            stderr(&o).contains(&format!("({backend}, Cpu)")),
            "{}",
            stderr(&o)
        );
    }
    // An adapter that does not exist is an error, under --device auto too, whether --adapter or
    // WGPU_ADAPTER_NAME names it; an empty name is refused.
    let o = infer_all(&w, &x, &y, &["--adapter", "nothing"]);
    let err = assert_fails(&o);
    assert!(err.contains("'nothing'"), "{err}");
    let o = common::cli(&["infer", "--weights", p(&w), "-i", p(&x), "-o", p(&y)])
        .env_remove("WGPU_BACKEND")
        .env("WGPU_ADAPTER_NAME", "nothing")
        .output()
        .unwrap();
    let err = assert_fails(&o);
    assert!(err.contains("'nothing'"), "{err}");
    let o = infer_all(&w, &x, &y, &["--adapter", ""]);
    assert_fails(&o);
    // Named in WGPU_ADAPTER_NAME, a software adapter is what runs.
    let o = common::cli(&["infer", "--weights", p(&w), "-i", p(&x), "-o", p(&y)])
        .env_remove("WGPU_BACKEND")
        .env("WGPU_ADAPTER_NAME", "vulkan")
        .output()
        .unwrap();
    assert_ok(&o);
    assert!(stderr(&o).contains("(Vulkan, Cpu)"), "{}", stderr(&o));
}

#[test]
fn an_unknown_backend_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = models("primer.meta.safetensors");
    let x = models("primer.x.npy");
    let y = dir.path().join("y.npy");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"))
        .args(["infer", "--weights", p(&w), "-i", p(&x), "-o", p(&y)])
        .env("WGPU_BACKEND", "nonsense")
        .output()
        .unwrap();
    let err = assert_fails(&o);
    assert!(err.contains("nonsense") && err.contains("vulkan"), "{err}");
    assert!(!y.exists());
}

#[test]
fn without_a_runtime_dir_mesa_stays_quiet() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"))
        .arg("adapters")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WGPU_BACKEND")
        .output()
        .unwrap();
    assert_ok(&o);
    let err = stderr(&o);
    assert!(!err.contains("error"), "Mesa's complaints leak: {err}");
    assert!(stdout(&o).contains("backend Gl"), "{}", stdout(&o));
}
