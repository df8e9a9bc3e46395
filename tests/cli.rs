//! Command-line tests: run the built `wgpu-mlp` binary in temporary directories.

mod common;

use common::{assert_fails, assert_ok, data, files_in, mode_of, path_str as p, stderr, stdout};

use std::path::{Path, PathBuf};
use std::process::Output;

use wgpu_mlp::io::{csv, npy, safetensors as st};
use wgpu_mlp::{Activation, Layer, Linear, Mlp};

fn run(args: &[&str]) -> Output {
    common::run_cli(args)
}

/// `infer` on the seed_example fixture writing `out`, with the given extra arguments.
fn seed_example_cmd(out: &Path, extra: &[&str]) -> std::process::Command {
    let weights = data("seed_example.safetensors");
    let x = data("seed_example.x.npy");
    let mut args = vec![
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "sigmoid,identity",
        "--input",
        p(&x),
        "--output",
        p(out),
    ];
    args.extend_from_slice(extra);
    common::cli(&args)
}

/// [`seed_example_cmd`] run with `dir/out_name` as the output; returns the output and its path.
fn infer_seed_example(dir: &Path, out_name: &str, extra: &[&str]) -> (Output, PathBuf) {
    let out = dir.join(out_name);
    (seed_example_cmd(&out, extra).output().unwrap(), out)
}

fn assert_matches_y64(got: &[f32], tol: f64) {
    let want = npy::read_f64(data("seed_example.y64.npy")).unwrap();
    assert_eq!(got.len(), want.data.len());
    for (g, w) in got.iter().zip(&want.data) {
        assert!((f64::from(*g) - w).abs() <= tol, "got {g}, want {w}");
    }
}

// ---------------------------------------------------------------------------------------------
// infer

#[test]
fn infer_cpu_matches_pytorch_float64() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = infer_seed_example(dir.path(), "y.npy", &["--device", "cpu"]);
    assert_ok(&o);
    let y = npy::read(&out).unwrap();
    assert_eq!(y.shape(), [4, 2]);
    assert_matches_y64(y.as_slice(), 1e-6);
    assert_eq!(files_in(dir.path()), ["y.npy"]);
}

#[test]
fn infer_writes_csv_and_reads_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = infer_seed_example(dir.path(), "y.csv", &["--device", "cpu"]);
    assert_ok(&o);
    let y = wgpu_mlp::io::csv::read(&out).unwrap();
    assert_matches_y64(y.as_slice(), 1e-6);

    // The same input given as CSV.
    let x_csv = dir.path().join("x.csv");
    wgpu_mlp::io::write_matrix(&x_csv, &npy::read(data("seed_example.x.npy")).unwrap()).unwrap();
    let out2 = dir.path().join("y2.npy");
    let weights = data("seed_example.safetensors");
    let o = run(&[
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "sigmoid,identity",
        "-i",
        p(&x_csv),
        "-o",
        p(&out2),
        "--device",
        "cpu",
    ]);
    assert_ok(&o);
    assert_eq!(npy::read(&out2).unwrap(), y);
}

#[test]
fn infer_auto_device_works() {
    // `auto` uses the GPU when there is one and the CPU otherwise; either way the result is close.
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = infer_seed_example(dir.path(), "y.npy", &["--device", "auto"]);
    assert_ok(&o);
    assert_matches_y64(npy::read(&out).unwrap().as_slice(), 1e-5);
}

#[test]
fn infer_bad_activation_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    let weights = data("seed_example.safetensors");
    let x = data("seed_example.x.npy");
    let o = run(&[
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "sigmoid,frobnicate",
        "--input",
        p(&x),
        "--output",
        p(&out),
        "--device",
        "cpu",
    ]);
    let err = assert_fails(&o);
    assert!(err.contains("frobnicate"), "{err}");
    assert!(!out.exists());
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn infer_wrong_activation_count() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    let weights = data("seed_example.safetensors");
    let x = data("seed_example.x.npy");
    let o = run(&[
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "relu,relu,softmax",
        "--input",
        p(&x),
        "--output",
        p(&out),
    ]);
    let err = assert_fails(&o);
    assert!(
        err.contains("3 activation") && err.contains("2 Linear"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn infer_wrong_input_width() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    // small_classifier expects 10 features; seed_example's input has 3.
    let weights = data("small_classifier.safetensors");
    let x = data("seed_example.x.npy");
    let o = run(&[
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "relu,tanh,softmax",
        "--input",
        p(&x),
        "--output",
        p(&out),
        "--device",
        "cpu",
    ]);
    let err = assert_fails(&o);
    assert!(err.contains("[4, 3]") && err.contains("10"), "{err}");
    assert!(!out.exists());
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn infer_truncated_weights() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(data("seed_example.safetensors")).unwrap();
    let weights = dir.path().join("w.safetensors");
    std::fs::write(&weights, &full[..full.len() / 2]).unwrap();
    let out = dir.path().join("y.npy");
    let x = data("seed_example.x.npy");
    let o = run(&[
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "sigmoid,identity",
        "--input",
        p(&x),
        "--output",
        p(&out),
        "--device",
        "cpu",
    ]);
    let err = assert_fails(&o);
    assert!(err.contains("w.safetensors"), "{err}");
    assert!(!out.exists());
    assert_eq!(files_in(dir.path()), ["w.safetensors"]);
}

#[test]
fn infer_bad_input_and_output_files() {
    let dir = tempfile::tempdir().unwrap();
    let weights = data("seed_example.safetensors");
    let x = data("seed_example.x.npy");
    // Unsupported output extension: refused before any work.
    let out = dir.path().join("y.txt");
    let o = run(&[
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "sigmoid,identity",
        "--input",
        p(&x),
        "--output",
        p(&out),
    ]);
    let err = assert_fails(&o);
    assert!(err.contains("y.txt"), "{err}");
    assert!(!out.exists());
    // Missing input file.
    let out = dir.path().join("y.npy");
    let missing = dir.path().join("nope.npy");
    let o = run(&[
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "sigmoid,identity",
        "--input",
        p(&missing),
        "--output",
        p(&out),
    ]);
    let err = assert_fails(&o);
    assert!(err.contains("nope.npy"), "{err}");
    // Corrupt input file.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "1,2,3\n4,5\n").unwrap();
    let o = run(&[
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "sigmoid,identity",
        "--input",
        p(&bad),
        "--output",
        p(&out),
    ]);
    let err = assert_fails(&o);
    assert!(err.contains("bad.csv") && err.contains("line 2"), "{err}");
    // Output directory that does not exist.
    let deep = dir.path().join("no/such/dir/y.npy");
    let o = run(&[
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "sigmoid,identity",
        "--input",
        p(&x),
        "--output",
        p(&deep),
    ]);
    assert_fails(&o);
    assert_eq!(files_in(dir.path()), ["bad.csv"]);
}

#[test]
fn infer_with_named_modules() {
    let dir = tempfile::tempdir().unwrap();
    // Rename seed_example's keys 0.* / 2.* to fc1.* / fc2.*.
    let original = std::fs::read(data("seed_example.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&original).unwrap();
    let renamed = safetensors::serialize(
        file.tensors().into_iter().map(|(k, v)| {
            let k = k.replacen("0.", "fc1.", 1).replacen("2.", "fc2.", 1);
            (k, v)
        }),
        None,
    )
    .unwrap();
    let weights = dir.path().join("named.safetensors");
    std::fs::write(&weights, renamed).unwrap();

    let x = data("seed_example.x.npy");
    let out = dir.path().join("y.npy");
    let base = [
        "infer",
        "--weights",
        p(&weights),
        "--act",
        "sigmoid,identity",
        "--input",
        p(&x),
        "--output",
        p(&out),
        "--device",
        "cpu",
    ];
    // The natural order of the names (fc1 before fc2) needs no list...
    assert_ok(&run(&base));
    assert_matches_y64(npy::read(&out).unwrap().as_slice(), 1e-6);
    // ... and an explicit one gives the same.
    let mut args = base.to_vec();
    args.extend_from_slice(&["--names", "fc1,fc2"]);
    assert_ok(&run(&args));
    assert_matches_y64(npy::read(&out).unwrap().as_slice(), 1e-6);
}

#[test]
fn infer_gpu_device_is_accepted_by_the_parser() {
    // Whether a GPU exists varies; the flag must parse, and any failure must be a clean error.
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = infer_seed_example(
        dir.path(),
        "y.npy",
        &["--device", "gpu", "--adapter", "no-such-adapter-name"],
    );
    if o.status.success() {
        assert_matches_y64(npy::read(&out).unwrap().as_slice(), 1e-5);
    } else {
        assert_fails(&o);
        assert!(!out.exists());
    }
    let (o, _) = infer_seed_example(dir.path(), "z.npy", &["--device", "tpu"]);
    assert_fails(&o);
}

// ---------------------------------------------------------------------------------------------
// summary

#[test]
fn summary_from_layers() {
    let o = run(&[
        "summary",
        "--layers",
        "784,128,64,10",
        "--act",
        "relu,relu,softmax",
        "--batch",
        "-1",
    ]);
    assert_ok(&o);
    let model = Mlp::builder(784)
        .layer(128, Activation::Relu)
        .layer(64, Activation::Relu)
        .layer(10, Activation::Softmax)
        .build()
        .unwrap();
    let text = wgpu_mlp::summary::summary(&model, -1);
    assert!(stdout(&o).starts_with(&text), "{}", stdout(&o));
}

#[test]
fn summary_from_weights() {
    let weights = data("small_classifier.safetensors");
    let o = run(&[
        "summary",
        "--weights",
        p(&weights),
        "--act",
        "relu,tanh,softmax",
        "--batch",
        "64",
    ]);
    assert_ok(&o);
    let model = st::load_model(
        &weights,
        &[Activation::Relu, Activation::Tanh, Activation::Softmax],
        None,
    )
    .unwrap();
    let text = wgpu_mlp::summary::summary(&model, 64);
    assert!(stdout(&o).starts_with(&text));
    // Negative batch sizes are values, not flags.
    let o = run(&[
        "summary",
        "--weights",
        p(&weights),
        "--act",
        "relu,tanh,softmax",
        "--batch",
        "-1",
    ]);
    assert_ok(&o);
}

#[test]
fn summary_warns_about_constant_weights() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("zeros.safetensors");
    let model = Mlp::from_layers(vec![Layer {
        linear: Linear::new(3, 4, vec![0.0; 12], None).unwrap(),
        activation: Activation::Identity,
    }])
    .unwrap();
    st::save_model(&w, &model).unwrap();
    let o = run(&["summary", "--weights", p(&w)]);
    assert_ok(&o);
    let err = stderr(&o);
    assert!(err.contains("warning:") && err.contains("layer 0"), "{err}");
}

#[test]
fn summary_usage_errors() {
    let weights = data("seed_example.safetensors");
    for args in [
        vec!["summary"],
        vec!["summary", "--layers", "3,4", "--weights", p(&weights)],
        vec!["summary", "--layers", "3"],
        vec!["summary", "--layers", "3,x,4"],
        vec!["summary", "--layers", "3,0,4"],
        vec!["summary", "--layers", "3,4,5", "--act", "relu"],
        vec!["summary", "--layers", "3,4", "--act", "nope"],
        vec!["summary", "--layers", "3,4", "--batch", "many"],
        vec!["bogus"],
    ] {
        let o = run(&args);
        assert_fails(&o);
    }
    // No subcommand runs the quick benchmark (the README's main job); its options parse.
    let o = run(&["bench", "--help"]);
    assert_ok(&o);
    let o = run(&[
        "bench",
        "--workload",
        "seed",
        "--paths",
        "cpu-reference,cpu-fast",
        "--runs",
        "1",
        "--warmup",
        "0",
    ]);
    assert_ok(&o);
    assert!(stdout(&o).contains("| seed |"), "{}", stdout(&o));
    let o = run(&["--help"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("infer"));
}

// ---------------------------------------------------------------------------------------------
// init (these need the init module: PyTorch's default Linear init)

#[test]
fn init_matches_pytorch_default_init() {
    let dir = tempfile::tempdir().unwrap();
    for (seed, inp, out, fixture) in [
        ("0", 3, 2, "init_linear_seed0_3x2.safetensors"),
        ("1", 4, 6, "init_linear_seed1_4x6.safetensors"),
    ] {
        let path = dir.path().join(format!("m{seed}.safetensors"));
        let layers = format!("{inp},{out}");
        let o = run(&[
            "init",
            "--layers",
            &layers,
            "--seed",
            seed,
            "--output",
            p(&path),
        ]);
        assert_ok(&o);
        let got = st::load_layers(&path, None).unwrap();
        let want = st::load_layers(data(fixture), None).unwrap();
        assert_eq!(got, want, "seed {seed}");
    }
}

#[test]
fn init_keys_and_round_trip_through_infer() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let o = run(&[
        "init",
        "--layers",
        "3,5,2",
        "--act",
        "relu,softmax",
        "--seed",
        "42",
        "--output",
        p(&model),
    ]);
    assert_ok(&o);
    let bytes = std::fs::read(&model).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight"]);

    let want = Mlp::builder(3)
        .layer(5, Activation::Relu)
        .layer(2, Activation::Softmax)
        .seed(42)
        .build()
        .unwrap();
    let loaded = st::load_model(&model, &[Activation::Relu, Activation::Softmax], None).unwrap();
    assert_eq!(loaded, want);

    let x = data("seed_example.x.npy");
    let out = dir.path().join("y.csv");
    let o = run(&[
        "infer",
        "--weights",
        p(&model),
        "--act",
        "relu,softmax",
        "--input",
        p(&x),
        "--output",
        p(&out),
        "--device",
        "cpu-reference",
    ]);
    assert_ok(&o);
    let y = wgpu_mlp::io::csv::read(&out).unwrap();
    let expect = wgpu_mlp::cpu::forward(&want, &npy::read(&x).unwrap()).unwrap();
    assert_eq!(y, expect);
}

#[test]
fn init_default_seed_and_no_act() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let o = run(&["init", "--layers", "4,3,3,2", "--output", p(&model)]);
    assert_ok(&o);
    let layers = st::load_layers(&model, None).unwrap();
    assert_eq!(layers.len(), 3);
    let bytes = std::fs::read(&model).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(
        file.tensor("2.weight").is_ok(),
        "identity layers take consecutive indices"
    );
}

#[test]
fn init_errors_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    for args in [
        vec!["init", "--layers", "3", "--output", p(&model)],
        vec!["init", "--layers", "3,0,2", "--output", p(&model)],
        vec![
            "init",
            "--layers",
            "3,2",
            "--act",
            "relu,relu",
            "--output",
            p(&model),
        ],
        vec![
            "init",
            "--layers",
            "3,2",
            "--act",
            "bogus",
            "--output",
            p(&model),
        ],
        vec![
            "init",
            "--layers",
            "3,2",
            "--seed",
            "-9223372036854775809",
            "--output",
            p(&model),
        ],
        vec![
            "init",
            "--layers",
            "3,2",
            "--seed",
            "18446744073709551616",
            "--output",
            p(&model),
        ],
        vec!["init", "--layers", "3,2"],
    ] {
        assert_fails(&run(&args));
        assert!(files_in(dir.path()).is_empty(), "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Outputs: checked before any work, written atomically, never at the expense of another file.

/// Whether a command's stderr shows that work began: `bench`'s progress lines (`bench: …`), or
/// `infer`'s line saying where it runs (`running on …`, `note: no GPU adapter …`).
fn started_work(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.starts_with("bench: ") || l.starts_with("running on ") || l.starts_with("note: no GPU")
    })
}

/// The quickest `bench` run (the seed model on the CPU reference, one run), plus `extra`, in
/// `dir`: the command, to be run with other limits.
fn quick_bench_cmd(dir: &Path, extra: &[&str]) -> std::process::Command {
    let mut args = vec![
        "bench",
        "--workload",
        "seed",
        "--paths",
        "cpu-reference",
        "--runs",
        "1",
        "--warmup",
        "0",
    ];
    args.extend_from_slice(extra);
    let mut cmd = common::cli(&args);
    cmd.current_dir(dir);
    cmd
}

/// Asserts that `json` holds a bench report and `svg` its plot.
fn assert_bench_outputs(json: &Path, svg: &Path) {
    let json = std::fs::read_to_string(json).unwrap();
    assert!(json.starts_with('{'), "{json}");
    assert!(std::fs::read_to_string(svg).unwrap().contains("<svg"));
}

/// [`quick_bench_cmd`], run.
fn quick_bench(dir: &Path, extra: &[&str]) -> Output {
    quick_bench_cmd(dir, extra).output().unwrap()
}

/// A GPU asked for and not there stops `bench` before any work, with no JSON written: a named
/// adapter (--adapter, WGPU_ADAPTER_NAME), a bad WGPU_BACKEND, or a GPU path in --paths. (They
/// used to run every CPU path and exit 0 with rows of errors.)
#[test]
fn bench_refuses_a_gpu_it_cannot_have_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "bench",
        "--workload",
        "seed",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--json",
        "b.json",
    ];
    for (extra, env) in [
        (&["--adapter", "nothing"][..], None),
        (
            &["--paths", "cpu-reference,gpu-e2e", "--adapter", "nothing"],
            None,
        ),
        (&[], Some(("WGPU_ADAPTER_NAME", "nothing"))),
        (&[], Some(("WGPU_BACKEND", "nonsense"))),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let mut cmd = common::cli(&args);
        cmd.current_dir(dir.path()).env_remove("WGPU_BACKEND");
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        let err = assert_fails(&o);
        assert!(
            err.contains("nothing") || err.contains("nonsense"),
            "{extra:?} {env:?}: {err}"
        );
        assert!(!started_work(&err), "{extra:?} {env:?}: {err}");
        assert_eq!(
            files_in(dir.path()),
            Vec::<String>::new(),
            "{extra:?} {env:?}"
        );
    }
}

#[test]
fn bench_outputs_never_follow_or_delete_files_at_temporary_names() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A victim file, a symlink to it at the name the old writer used (`out.json.tmp`), and the
    // user's own file at the name it would have deleted (`notes.svg.tmp`).
    std::fs::write(d.join("victim.txt"), "precious").unwrap();
    symlink(d.join("victim.txt"), d.join("out.json.tmp")).unwrap();
    std::fs::write(d.join("notes.svg.tmp"), "my notes").unwrap();
    let o = quick_bench(d, &["--json", "out.json", "--plot", "notes.svg"]);
    assert_ok(&o);
    assert_eq!(
        std::fs::read_to_string(d.join("victim.txt")).unwrap(),
        "precious"
    );
    assert!(
        d.join("out.json.tmp")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(d.join("notes.svg.tmp")).unwrap(),
        "my notes"
    );
    assert_bench_outputs(&d.join("out.json"), &d.join("notes.svg"));
    assert_eq!(
        files_in(d),
        [
            "notes.svg",
            "notes.svg.tmp",
            "out.json",
            "out.json.tmp",
            "victim.txt"
        ]
    );
    // --json and --plot naming one file: refused before the run.
    let o = quick_bench(d, &["--json", "same.out", "--plot", "./same.out"]);
    let err = assert_fails(&o);
    assert!(err.contains("same file as --json"), "{err}");
    assert!(!started_work(&err), "refused only after the run: {err}");
}

#[test]
fn library_writes_never_follow_links_at_the_temporary_names() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("victim"), "precious").unwrap();
    // Links at the writer's own next temporary names (this process's id, counters 0..64).
    let pid = std::process::id();
    for n in 0..64 {
        symlink(d.join("victim"), d.join(format!(".y.npy.tmp-{pid}-{n}"))).unwrap();
    }
    let m = wgpu_mlp::Matrix::new(1, 2, vec![1.0, 2.0]).unwrap();
    npy::write(d.join("y.npy"), &m).unwrap();
    assert_eq!(npy::read(d.join("y.npy")).unwrap(), m);
    assert_eq!(
        std::fs::read_to_string(d.join("victim")).unwrap(),
        "precious"
    );
    assert_eq!(files_in(d).len(), 66);
}

/// `infer` on the seed example with the given input, weights and output paths (`--device cpu`).
fn infer_paths(input: &Path, weights: &Path, output: &Path) -> Output {
    run(&[
        "infer",
        "--weights",
        p(weights),
        "--act",
        "sigmoid,identity",
        "--input",
        p(input),
        "--output",
        p(output),
        "--device",
        "cpu",
    ])
}

#[test]
fn an_output_that_is_an_input_is_refused_however_it_is_spelled() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    let x = d.join("x.npy");
    std::fs::copy(data("seed_example.x.npy"), &x).unwrap();
    // Weights saved under a matrix name, so that they can be named as an output.
    let w = d.join("w.npy");
    std::fs::copy(data("seed_example.safetensors"), &w).unwrap();
    symlink(&x, d.join("link.npy")).unwrap();
    std::fs::hard_link(&x, d.join("hard.npy")).unwrap();
    symlink(&w, d.join("wlink.npy")).unwrap();
    std::fs::hard_link(&w, d.join("whard.npy")).unwrap();
    let x_bytes = std::fs::read(&x).unwrap();
    let w_bytes = std::fs::read(&w).unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (x.clone(), "the input"),
        (d.join("sub/../x.npy"), "the input"),
        (d.join("./x.npy"), "the input"),
        (d.join("link.npy"), "the input"),
        (d.join("hard.npy"), "the input"),
        (w.clone(), "the weights"),
        (d.join("sub/../w.npy"), "the weights"),
        (d.join("wlink.npy"), "the weights"),
        (d.join("whard.npy"), "the weights"),
    ];
    for (out, what) in &cases {
        let err = assert_fails(&infer_paths(&x, &w, out));
        assert!(
            err.contains(&format!("same file as {what}")),
            "{out:?}: {err}"
        );
    }
    // Reading through a link to the output is the same file too.
    let err = assert_fails(&infer_paths(&d.join("link.npy"), &w, &x));
    assert!(err.contains("same file as the input"), "{err}");
    assert_eq!(std::fs::read(&x).unwrap(), x_bytes);
    assert_eq!(std::fs::read(&w).unwrap(), w_bytes);
    assert!(d.join("link.npy").symlink_metadata().unwrap().is_symlink());
    // A different file with the same name elsewhere is fine.
    assert_ok(&infer_paths(&x, &w, &d.join("sub/x.npy")));
}

#[test]
fn replacing_an_output_keeps_its_mode_and_write_protected_files_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = data("seed_example.x.npy");
    let w = data("seed_example.safetensors");
    // A private output stays private.
    let private = d.join("private.npy");
    std::fs::write(&private, "old").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_ok(&infer_paths(&x, &w, &private));
    assert_eq!(mode_of(&private), 0o600);
    assert_eq!(npy::read(&private).unwrap().shape(), [4, 2]);
    // So does an unusual one, through `init` too.
    let model = d.join("m.safetensors");
    std::fs::write(&model, "old").unwrap();
    std::fs::set_permissions(&model, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_ok(&run(&["init", "--layers", "3,2", "--output", p(&model)]));
    assert_eq!(mode_of(&model), 0o640);
    // A new file gets the mode any new file gets (the umask's).
    let fresh = d.join("fresh.npy");
    assert_ok(&infer_paths(&x, &w, &fresh));
    std::fs::write(d.join("reference"), "").unwrap();
    assert_eq!(mode_of(&fresh), mode_of(&d.join("reference")));
    // A write-protected output is not replaced, even by root; the run stops before any work.
    for mode in [0o444, 0o400, 0o000] {
        let locked = d.join(format!("locked{mode:o}.csv"));
        std::fs::write(&locked, "keep me").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(mode)).unwrap();
        let (o, _) = infer_seed_example(d, &format!("locked{mode:o}.csv"), &["--device", "auto"]);
        let err = assert_fails(&o);
        assert!(
            err.contains("write-protected") && err.contains("chmod"),
            "{err}"
        );
        assert!(!started_work(&err), "{err}");
        assert_eq!(mode_of(&locked), mode);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(std::fs::read_to_string(&locked).unwrap(), "keep me");
    }
    assert!(common::cli_args::temp_files_left(d).is_empty());
}

#[test]
fn outputs_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("folder.npy")).unwrap();
    std::fs::write(d.join("file"), "").unwrap();
    let long = "y".repeat(256) + ".npy";
    let bad: Vec<(String, &str)> = vec![
        ("folder.npy".into(), "is a folder"),
        ("missing/y.npy".into(), "does not exist"),
        ("file/y.npy".into(), "is not a folder"),
        (long.clone(), "at most 255"),
        ("fifo.npy".into(), "is a FIFO"),
    ];
    let fifo = std::ffi::CString::new(p(&d.join("fifo.npy"))).unwrap();
    // SAFETY: mkfifo on a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    // `--device auto` says which device it runs on before the forward pass: no such line means the
    // output was refused before any work.
    for (out, phrase) in &bad {
        let o = infer_paths_device(&d.join(out), "auto");
        let err = assert_fails(&o);
        assert!(err.contains(phrase), "{out}: {err}");
        assert!(!started_work(&err), "{out}: {err}");
    }
    // A folder this user cannot write into. Root may write anywhere permissions say no, so for
    // root the check uses /sys, where nobody may create files.
    let ro = d.join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    let unwritable = match std::fs::write(ro.join("probe"), "") {
        Ok(()) => {
            std::fs::remove_file(ro.join("probe")).unwrap();
            PathBuf::from("/sys")
        }
        Err(_) => ro.clone(),
    };
    let err = assert_fails(&infer_paths_device(&unwritable.join("y.npy"), "auto"));
    assert!(
        err.contains("cannot write into the folder") && !started_work(&err),
        "{err}"
    );
    let json = unwritable.join("out.json");
    let err = assert_fails(&quick_bench(d, &["--json", p(&json)]));
    assert!(
        err.contains("cannot write into the folder") && !started_work(&err),
        "{err}"
    );
    std::fs::remove_dir(&ro).unwrap();
    // `init` says the same thing as `infer` about a missing folder.
    let o = run(&[
        "init",
        "--layers",
        "3,2",
        "--output",
        p(&d.join("missing/m.safetensors")),
    ]);
    let err = assert_fails(&o);
    assert!(
        err.contains("the output folder") && err.contains("does not exist"),
        "{err}"
    );
    // bench: a folder given as --json is refused before the run, not after it.
    let o = quick_bench(d, &["--json", "folder.npy"]);
    let err = assert_fails(&o);
    assert!(err.contains("is a folder") && !started_work(&err), "{err}");
    let o = quick_bench(d, &["--plot", &format!("{long}.svg")]);
    let err = assert_fails(&o);
    assert!(err.contains("at most 255") && !started_work(&err), "{err}");
    assert_eq!(files_in(d), ["fifo.npy", "file", "folder.npy"]);
    // A name just under the limit works: the temporary name is shortened to fit.
    let name = "z".repeat(251) + ".csv";
    assert_ok(&infer_paths_device(&d.join(&name), "cpu"));
    assert_eq!(
        files_in(d),
        ["fifo.npy", "file", "folder.npy", name.as_str()]
    );
}

/// `infer` on the seed example writing `output`, on `device`.
fn infer_paths_device(output: &Path, device: &str) -> Output {
    seed_example_cmd(output, &["--device", device])
        .output()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Inputs: regular files only.

#[test]
fn inputs_that_are_not_regular_files_are_refused_without_reading() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("fifo.npy");
    let c = std::ffi::CString::new(p(&fifo)).unwrap();
    // SAFETY: mkfifo on a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    symlink("/dev/zero", d.join("zero.npy")).unwrap();
    symlink("/dev/zero", d.join("zero.safetensors")).unwrap();
    std::fs::create_dir(d.join("folder.csv")).unwrap();
    let weights = data("seed_example.safetensors");
    let x = data("seed_example.x.npy");
    let out = d.join("y.npy");
    let (zero_st, zero_npy, folder) = (
        d.join("zero.safetensors"),
        d.join("zero.npy"),
        d.join("folder.csv"),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["infer", "--weights", "/dev/zero", "-i", p(&x)],
            "character device",
        ),
        (
            vec!["infer", "--weights", p(&zero_st), "-i", p(&x)],
            "character device",
        ),
        (vec!["infer", "--weights", p(&fifo), "-i", p(&x)], "FIFO"),
        (vec!["infer", "--weights", p(d), "-i", p(&x)], "is a folder"),
        (
            vec!["infer", "--weights", p(&weights), "-i", p(&fifo)],
            "FIFO",
        ),
        (
            vec!["infer", "--weights", p(&weights), "-i", p(&zero_npy)],
            "character device",
        ),
        (
            vec!["infer", "--weights", p(&weights), "-i", p(&folder)],
            "is a folder",
        ),
        (
            vec!["summary", "--weights", "/dev/zero"],
            "character device",
        ),
        (vec!["summary", "--weights", p(&fifo)], "FIFO"),
    ];
    for (mut args, phrase) in cases {
        if args[0] == "infer" {
            args.extend_from_slice(&["-o", p(&out), "--device", "cpu"]);
        }
        // A read that never ends (the FIFO has no writer; /dev/zero has no end) is killed: the
        // watchdog only guards against a hang.
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (o, killed) = common::wait_or_kill(child, 60);
        assert!(!killed, "{args:?} hung");
        let err = assert_fails(&o);
        assert!(
            err.contains(phrase) && err.contains("not a regular file"),
            "{args:?}: {err}"
        );
    }
    // The library refuses them too.
    for path in [Path::new("/dev/zero"), &fifo] {
        let err = npy::read(path).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = st::load_layers(path, None).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
    assert!(!out.exists());
    // A symbolic link to a regular file is followed.
    symlink(&x, d.join("x_link.npy")).unwrap();
    symlink(&weights, d.join("w_link.safetensors")).unwrap();
    assert_ok(&infer_paths(
        &d.join("x_link.npy"),
        &d.join("w_link.safetensors"),
        &out,
    ));
}

// ---------------------------------------------------------------------------------------------
// Messages: untrusted text is escaped.

#[test]
fn control_characters_in_arguments_and_files_are_escaped_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = data("seed_example.x.npy");
    let w = data("seed_example.safetensors");
    let act = "sigmoid,identity";
    let evil = "a\x1b[2J\x07\r\nerror: forged\u{202e}b";
    // A CSV field and a safetensors key holding control characters.
    let csv = d.join("x.csv");
    // (A raw CR would end the line: CSV reads a lone CR as a line end.)
    std::fs::write(&csv, "1,2,3\n4,a\x1b[2J\x07b\u{202e},6\n").unwrap();
    let st_file = d.join("evil.safetensors");
    let header = r#"{"\u001b[31mkey\n":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0; 4]);
    std::fs::write(&st_file, bytes).unwrap();
    let missing = d.join(format!("{evil}.npy"));
    let out = d.join("y.npy");
    let runs: Vec<Vec<String>> = vec![
        vec!["infer", "--weights", p(&w), "--act", act, "-i", p(&csv)],
        vec![
            "infer",
            "--weights",
            p(&st_file),
            "--act",
            "identity",
            "-i",
            p(&x),
        ],
        vec!["infer", "--weights", p(&w), "--act", act, "-i", p(&missing)],
        vec!["infer", "--weights", p(&w), "-i", p(&x), "--act", evil],
        vec![
            "infer",
            "--weights",
            p(&w),
            "--act",
            act,
            "-i",
            p(&x),
            "--names",
            evil,
        ],
        vec![
            "infer",
            "--weights",
            p(&w),
            "--act",
            act,
            "-i",
            p(&x),
            "--device",
            evil,
        ],
        vec!["summary", "--layers", evil],
        vec!["summary", "--layers", "3,4", "--batch", evil],
        vec!["init", "--layers", "3,4", "--seed", evil, "-o", p(&out)],
        vec!["bench", "--workload", evil],
        vec!["bench", "--runs", evil],
        vec!["bench", &format!("--{evil}")],
        vec![evil],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    for mut args in runs {
        if args[0] == "infer" {
            args.extend(["-o".into(), p(&out).into(), "--device".into(), "cpu".into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&args);
        let err = assert_fails(&o);
        common::assert_no_raw_controls(&err, &format!("{args:?}"));
        assert!(
            !err.lines().any(|l| l.starts_with("error: forged")),
            "{args:?}: a forged line: {err}"
        );
        assert!(
            err.contains("\\x1b") || err.contains("\\u{1b}"),
            "{args:?}: {err}"
        );
    }
    // The library's errors are escaped the same way.
    let e = csv::from_bytes("1,2\n3,\x1b[2J\n".as_bytes(), evil).unwrap_err();
    common::assert_no_raw_controls(&e.to_string(), "csv");
    assert_eq!(
        wgpu_mlp::escape("tab\there\x1b\u{9b}\u{202e}"),
        "tab\\there\\x1b\\u{9b}\\u{202e}"
    );
    assert!(matches!(
        wgpu_mlp::escape("plain ü"),
        std::borrow::Cow::Borrowed(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// Numeric arguments: ranges, not panics.

#[test]
fn negative_seeds_are_torch_seeds_and_out_of_range_seeds_say_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // torch.manual_seed(-1) is torch.manual_seed(2**64 - 1) (torch.initial_seed() says so; the
    // weights were compared with torch 2 by hand); `--seed -1` as a separate argument is a value.
    for (neg, pos) in [
        ("-1", "18446744073709551615"),
        ("-9223372036854775808", "9223372036854775808"),
    ] {
        let a = d.join("neg.safetensors");
        let b = d.join("pos.safetensors");
        assert_ok(&run(&[
            "init",
            "--layers",
            "3,2",
            "--seed",
            neg,
            "-o",
            p(&a),
        ]));
        assert_ok(&run(&[
            "init",
            "--layers",
            "3,2",
            &format!("--seed={pos}"),
            "-o",
            p(&b),
        ]));
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{neg}"
        );
    }
    for bad in [
        "-9223372036854775809",
        "18446744073709551616",
        "1.5",
        "x",
        "",
    ] {
        let err = assert_fails(&run(&[
            "init", "--layers", "3,2", "--seed", bad, "-o", "m.st",
        ]));
        assert!(
            err.contains("-9223372036854775808 to 18446744073709551615"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn numeric_bench_arguments_out_of_range_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (args, phrase) in [
        (vec!["--budget", "2e19"], "from 0 (no limit) to"),
        (vec!["--budget", "1e300"], "from 0 (no limit) to"),
        (vec!["--budget", "inf"], "from 0 (no limit) to"),
        (vec!["--budget", "nan"], "from 0 (no limit) to"),
        (vec!["--budget", "-1"], "from 0 (no limit) to"),
        (vec!["--budget", "-0.5"], "from 0 (no limit) to"),
        (vec!["--runs", "-1"], "whole number from 0 to"),
        (vec!["--runs", "0"], "at least 1"),
        (vec!["--warmup", "-3"], "whole number from 0 to"),
        (vec!["--batch", "-1"], "whole number from 0 to"),
        (
            vec!["--batch", "18446744073709551616"],
            "whole number from 0 to",
        ),
        (
            vec!["--batch", "18446744073709551615"],
            "this process can have",
        ),
        (
            vec!["--sizes", "4294967296", "--workload", "gemm"],
            "over the limit",
        ),
        (
            vec!["--sizes", "46341", "--workload", "gemm"],
            "over the limit",
        ),
    ] {
        let mut all = vec!["bench"];
        all.extend_from_slice(&args);
        let err = assert_fails(&run(&all));
        assert!(err.contains(phrase), "{args:?}: {err}");
        assert!(!started_work(&err), "{args:?}: refused after work: {err}");
    }
    // The largest budget the message offers is taken.
    let dir = tempfile::tempdir().unwrap();
    assert_ok(&quick_bench(
        dir.path(),
        &["--budget", "18446744073709551615"],
    ));
    // Huge counts are fine when the budget ends the runs: no capacity overflow.
    let o = run(&[
        "bench",
        "--workload",
        "seed",
        "--paths",
        "cpu-reference",
        "--warmup",
        "18446744073709551615",
        "--runs",
        "18446744073709551615",
        "--budget",
        "0.001",
    ]);
    assert_ok(&o);
    assert!(files_in(d).is_empty());
}

// ---------------------------------------------------------------------------------------------
// CSV inputs: no line dropped silently, what was read said, empty batches round-trip.

#[test]
fn infer_never_drops_a_csv_line_and_says_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = data("seed_example.safetensors");
    for (text, rows, phrase) in [
        (
            "NA,NA,NA\n1,2,3\n4,5,6\n",
            3,
            "3 rows of 3 values, comma-separated; no header line",
        ),
        ("nan,inf,-inf\n1,2,3\n", 2, "no header line"),
        ("\"1\",\"2\",\"3\"\n", 1, "1 row of 3 values"),
        (
            "x0,x1,x2\n1,2,3\n",
            1,
            "line 1 is a header, not data (x0, x1, x2)",
        ),
        (
            "1.000000000000000000e+00 2.000000000000000000e+00 3.000000000000000000e+00\n",
            1,
            "separated by spaces or tabs",
        ),
        ("1\t2\t3\n4\t5\t6\n", 2, "2 rows of 3 values"),
        // Classic Mac OS line ends (a lone CR) end lines too.
        ("1,2,3\r4,5,6\r", 2, "2 rows of 3 values"),
        ("1 2 3\r4 5 6\r7 8 9", 3, "3 rows of 3 values"),
    ] {
        let x = d.join("x.csv");
        std::fs::write(&x, text).unwrap();
        let y = d.join("y.csv");
        let o = infer_paths(&x, &w, &y);
        assert_ok(&o);
        let err = stderr(&o);
        assert!(
            err.contains(&format!("note: {}: ", p(&x))) && err.contains(phrase),
            "{text:?}: {err}"
        );
        assert_eq!(csv::read(&y).unwrap().rows(), rows, "{text:?}");
    }
    // A first line with a damaged value is an error naming it, never a header that drops a row.
    for (text, field) in [
        ("1e,2,3\n4,5,6\n", "'1e'"),
        ("1,2.5f,3\n4,5,6\n", "'2.5f'"),
        ("1,2\t3,4\n4,5,6\n", "'2\\t3'"),
        ("1,2,3\u{0}\n4,5,6\n", "'3\\x00'"),
        ("-.5x,2,3\n4,5,6\n", "'-.5x'"),
        ("\u{ff11},2,3\n4,5,6\n", "'\u{ff11}'"),
        // Numbers and names mixed: a typo'd row, not a header (it used to give an empty output).
        ("1,two,3\n", "'two'"),
        ("id,2019,2020\n1,2,3\n", "'2019'"),
    ] {
        let x = d.join("x.csv");
        std::fs::write(&x, text).unwrap();
        let y = d.join("not-written.csv");
        let err = assert_fails(&infer_paths(&x, &w, &y));
        assert!(
            err.contains("line 1") && err.contains(field),
            "{text:?}: {err}"
        );
        assert!(!y.exists(), "{text:?}");
    }
}

#[test]
fn an_empty_batch_written_as_csv_reads_back_through_infer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = d.join("x.csv");
    std::fs::write(&x, "a,b,c\n").unwrap();
    let y = d.join("y.csv");
    assert_ok(&infer_paths(&x, &data("seed_example.safetensors"), &y));
    assert_eq!(std::fs::read_to_string(&y).unwrap(), "c0,c1\n");
    // The output is an input the tool takes: [0, 2] into a 2 → 3 model gives [0, 3].
    let m = d.join("m.safetensors");
    assert_ok(&run(&["init", "--layers", "2,3", "--output", p(&m)]));
    let z = d.join("z.csv");
    let o = run(&[
        "infer",
        "--weights",
        p(&m),
        "-i",
        p(&y),
        "-o",
        p(&z),
        "--device",
        "cpu",
    ]);
    assert_ok(&o);
    assert!(stderr(&o).contains("0 rows of 2 values"), "{}", stderr(&o));
    assert_eq!(csv::read(&z).unwrap().shape(), [0, 3]);
    // And as .npy.
    let zn = d.join("z.npy");
    let o = run(&[
        "infer",
        "--weights",
        p(&m),
        "-i",
        p(&y),
        "-o",
        p(&zn),
        "--device",
        "cpu",
    ]);
    assert_ok(&o);
    assert_eq!(npy::read(&zn).unwrap().shape(), [0, 3]);
}

/// The write end of a pipe whose read end is already closed: writing to it fails with EPIPE.
fn closed_pipe() -> std::fs::File {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe(2) into a two-element array; the read end is closed at once and the write
    // end is owned by the returned File.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        libc::close(fds[0]);
        std::fs::File::from_raw_fd(fds[1])
    }
}

fn dev_full() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap()
}

#[test]
fn a_closed_or_full_stdout_or_stderr_is_never_a_panic() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    // stderr only carries diagnostics: the command still does its work and succeeds.
    for (i, sink) in [closed_pipe(), dev_full()].into_iter().enumerate() {
        let out = dir.path().join(format!("y{i}.npy"));
        let o = seed_example_cmd(&out, &[])
            .stderr(Stdio::from(sink))
            .output()
            .unwrap();
        assert!(o.status.success(), "stderr sink {i}: {:?}", o.status);
        assert_matches_y64(npy::read(&out).unwrap().as_slice(), 1e-6);
    }
    // stdout carries the result: a full one is an error (exit 1, said on stderr), a closed one
    // (`| head`) ends the command quietly.
    for args in [
        &["adapters"][..],
        &["summary", "--layers", "3,4,2"],
        &["--help"],
        &["summary", "--help"],
    ] {
        let o = common::cli(args)
            .stdout(Stdio::from(dev_full()))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with("error:") && stderr(&o).contains("No space left"),
            "{args:?}: {}",
            stderr(&o)
        );
        let o = common::cli(args)
            .stdout(Stdio::from(closed_pipe()))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

/// A negative or too-large number for any numeric option is refused with that option's own range,
/// never clap's "unexpected argument '-1'" or "number too large to fit in target type".
#[test]
fn numbers_out_of_range_get_their_range_from_every_option() {
    for (args, phrase) in [
        (
            &["bench", "--threads", "-1"][..],
            "whole number from 0 (one per core) to 16383",
        ),
        (
            &[
                "infer",
                "--threads",
                "-1",
                "--weights",
                "w",
                "-i",
                "x",
                "-o",
                "y",
            ],
            "whole number from 0 (one per core) to 16383",
        ),
        (
            &["summary", "--layers", "-1,2"],
            "'-1' is not a positive integer width",
        ),
        (&["init", "--layers", "3,-2", "-o", "m.safetensors"], "'-2'"),
        (
            &[
                "summary",
                "--layers",
                "3,2",
                "--batch",
                "18446744073709551615",
            ],
            "whole number from -9223372036854775808 to 9223372036854775807",
        ),
    ] {
        let err = assert_fails(&run(args));
        assert!(err.contains(phrase), "{args:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
}

/// Sets (or clears, with 0) a file's Linux attribute flags (`chattr`): FS_IOC_SETFLAGS.
fn set_file_attributes(path: &Path, flags: libc::c_long) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path)?;
    // SAFETY: FS_IOC_SETFLAGS reads the flags from a live variable.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &raw const flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// An append-only or immutable output (`chattr +a`, `+i`) is refused before any work, naming
/// the attribute (the final rename over it fails even for root: it used to fail after the forward
/// pass, and +i was told to `chmod u+w`). Needs root and a file system with attributes (ext4), as
/// CI has.
#[test]
fn outputs_with_unreplaceable_attributes_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kept.npy");
    for (flag, name) in [
        (0x20, "append-only (chattr +a)"),
        (0x10, "immutable (chattr +i)"),
    ] {
        std::fs::write(&out, "old").unwrap();
        set_file_attributes(&out, flag).unwrap_or_else(|e| {
            panic!(
                "chattr on {}: {e}: this test needs root on ext4 or similar",
                out.display()
            )
        });
        let o = infer_paths(
            &data("seed_example.x.npy"),
            &data("seed_example.safetensors"),
            &out,
        );
        // Cleared before asserting, so that the folder can be removed whatever happens.
        set_file_attributes(&out, 0).unwrap();
        let err = assert_fails(&o);
        assert!(err.contains(name) && !started_work(&err), "{err}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
    }
}

/// `bench --json A --plot B` replaces both or neither: with a file-size limit that the JSON fits
/// and the plot does not (`ulimit -f`, SIGXFSZ ignored so the write fails with EFBIG), the run
/// fails and the earlier JSON is kept (it used to be replaced before the plot failed).
#[test]
fn bench_replaces_its_json_and_plot_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("keep.json"), "old json").unwrap();
    std::fs::write(d.join("keep.svg"), "old svg").unwrap();
    let outputs = ["--json", "keep.json", "--plot", "keep.svg"];
    let mut cmd = quick_bench_cmd(d, &outputs);
    // The JSON of this run is about 1.2 KB, the plot about 2.6 KB.
    common::with_limits(&mut cmd, &[(libc::RLIMIT_FSIZE, 1900)], true);
    let o = cmd.output().unwrap();
    let err = assert_fails(&o);
    assert!(err.contains("keep.svg"), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.join("keep.json")).unwrap(),
        "old json"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("keep.svg")).unwrap(),
        "old svg"
    );
    assert_eq!(files_in(d), ["keep.json", "keep.svg"]);
    // Without the limit both are replaced.
    let o = quick_bench(d, &outputs);
    assert_ok(&o);
    assert_bench_outputs(&d.join("keep.json"), &d.join("keep.svg"));
}

/// `--threads` above what the CPU path's pool runs is refused with the range (it was announced as
/// "running on the CPU (4294967297 threads)"), and many threads under `ulimit -v` are counted in
/// the memory check (200 threads under 1.5 GB aborted on a refused allocation).
#[test]
fn threads_are_bounded_and_counted_in_the_memory_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    let o = seed_example_cmd(&out, &["--device", "cpu", "--threads", "4294967297"])
        .output()
        .unwrap();
    let err = assert_fails(&o);
    assert!(err.contains("to 16383"), "{err}");
    let mut cmd = seed_example_cmd(&out, &["--device", "cpu", "--threads", "2000"]);
    common::with_limits(&mut cmd, &[(libc::RLIMIT_AS, 1500 << 20)], false);
    let err = assert_fails(&cmd.output().unwrap());
    assert!(
        err.contains("ulimit -v") && err.contains("--threads"),
        "{err}"
    );
    assert!(!out.exists());
}

/// Text from a file is bounded in messages: a 1 MB `wgpu_mlp.arch` string is cut at 4 KiB with
/// the count of bytes left out (it was printed whole), escaped as before.
#[test]
fn huge_file_text_is_cut_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let arch = format!("\x1b{}", "x".repeat(1 << 20));
    let header = format!(
        r#"{{"__metadata__":{{"wgpu_mlp.arch":"{}"}},"0.weight":{{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}}}"#,
        arch.replace('\x1b', "\\u001b")
    );
    let w = dir.path().join("w.safetensors");
    std::fs::write(&w, common::raw_st(&header, &[0; 4])).unwrap();
    let err = assert_fails(&run(&["summary", "--weights", p(&w)]));
    assert!(err.len() < 10_000, "{} bytes", err.len());
    assert!(
        err.contains("more bytes)") && err.contains("\\x1b"),
        "{err}"
    );
    common::assert_no_raw_controls(&err, "huge metadata");
}
