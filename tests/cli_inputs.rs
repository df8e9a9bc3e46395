//! `infer`'s inputs and outputs as PyTorch users hold and want them: standard input and output
//! (`-i -`, `-o -`), JSON, `--argmax` / `--top-k`, NumPy dtypes, N-D arrays into nn.Flatten,
//! `.npz`, `--batch-size` in constant memory, and options that do not apply never dropped
//! silently.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{assert_fails, assert_ok, cli, path_str, run_cli, stderr, stdout};
use wgpu_mlp::io;

/// A 4 → 5 → 3 classifier saved in `dir` (self-describing), and its path.
fn classifier(dir: &Path) -> String {
    let path = dir.join("m.safetensors");
    let o = run_cli(&[
        "init",
        "--layers",
        "4,5,3",
        "--act",
        "relu,softmax",
        "-o",
        path_str(&path),
    ]);
    assert_ok(&o);
    path.to_str().unwrap().to_string()
}

fn input(name: &str) -> String {
    path_str(&common::data("inputs").join(name)).to_string()
}

/// `infer` of `weights` on `x` into `out`, on the CPU, with `extra` options.
fn infer(weights: &str, x: &str, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "infer",
        "--weights",
        weights,
        "-i",
        x,
        "-o",
        out,
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    run_cli(&args)
}

fn csv_values(text: &str) -> Vec<Vec<f32>> {
    text.lines()
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect()
}

/// `-o -` writes the CSV of `-o y.csv` on stdout, and nothing else; the notes stay on stderr.
#[test]
fn output_to_stdout_is_the_csv_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let m = classifier(dir.path());
    let y = dir.path().join("y.csv");
    assert_ok(&infer(&m, &input("float64.npy"), path_str(&y), &[]));
    let o = infer(&m, &input("float64.npy"), "-", &[]);
    assert_ok(&o);
    assert_eq!(stdout(&o), std::fs::read_to_string(&y).unwrap());
    assert!(
        stderr(&o).contains("float64 values converted"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("-").exists());
}

/// `-i -` reads CSV or .npy from standard input, told apart by the first bytes.
#[test]
fn input_from_stdin_is_csv_or_npy() {
    let dir = tempfile::tempdir().unwrap();
    let m = classifier(dir.path());
    let want = infer(&m, &input("float64.f32.npy"), "-", &[]);
    assert_ok(&want);
    let csv = dir.path().join("x.csv");
    io::write_matrix(&csv, &io::read_matrix(input("float64.f32.npy")).unwrap()).unwrap();
    for file in [input("float64.f32.npy"), path_str(&csv).to_string()] {
        let o = cli(&[
            "infer",
            "--weights",
            &m,
            "-i",
            "-",
            "-o",
            "-",
            "--device",
            "cpu",
        ])
        .stdin(Stdio::from(std::fs::File::open(&file).unwrap()))
        .output()
        .unwrap();
        assert_ok(&o);
        assert_eq!(stdout(&o), stdout(&want), "{file}");
    }
}

/// JSON rows equal the CSV values; --argmax is each row's first largest index; --top-k gives
/// the K largest, largest first, with their indices, in CSV and JSON.
#[test]
fn json_argmax_and_top_k_agree_with_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let m = classifier(dir.path());
    let x = input("float64.npy");
    let values = csv_values(&stdout(&infer(&m, &x, "-", &[])));
    let json = dir.path().join("y.json");
    assert_ok(&infer(&m, &x, path_str(&json), &[]));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for (r, row) in values.iter().enumerate() {
        for (c, want) in row.iter().enumerate() {
            assert_eq!(v[r][c].as_f64().unwrap() as f32, *want);
        }
    }
    let order = |row: &[f32]| {
        let mut idx: Vec<usize> = (0..row.len()).collect();
        idx.sort_by(|&a, &b| row[b].partial_cmp(&row[a]).unwrap().then(a.cmp(&b)));
        idx
    };
    let argmax = stdout(&infer(&m, &x, "-", &["--argmax"]));
    let got: Vec<usize> = argmax.lines().map(|l| l.parse().unwrap()).collect();
    let want: Vec<usize> = values.iter().map(|r| order(r)[0]).collect();
    assert_eq!(got, want);
    // --argmax to .npy: int64 indices, as torch.argmax(y, dim=1).
    let npy = dir.path().join("c.npy");
    assert_ok(&infer(&m, &x, path_str(&npy), &["--argmax"]));
    let a = io::npy::read_array(&npy).unwrap();
    assert_eq!(a.dtype, "int64");
    assert_eq!(a.data, want.iter().map(|&i| i as f32).collect::<Vec<_>>());
    let top = csv_values(&stdout(&infer(&m, &x, "-", &["--top-k", "2"])));
    let topj = dir.path().join("t.json");
    assert_ok(&infer(&m, &x, path_str(&topj), &["--top-k", "2"]));
    let tj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&topj).unwrap()).unwrap();
    for (r, row) in values.iter().enumerate() {
        let idx = &order(row)[..2];
        assert_eq!(
            top[r],
            [idx[0] as f32, idx[1] as f32, row[idx[0]], row[idx[1]]]
        );
        assert_eq!(tj[r]["indices"][1].as_u64().unwrap() as usize, idx[1]);
        assert_eq!(tj[r]["values"][0].as_f64().unwrap() as f32, row[idx[0]]);
    }
    let err = assert_fails(&infer(&m, &x, "-", &["--top-k", "4"]));
    assert!(err.contains("only 3 outputs"), "{err}");
    let err = assert_fails(&infer(&m, &x, path_str(&npy), &["--top-k", "2"]));
    assert!(err.contains(".csv, .json"), "{err}");
}

/// float64, float16, integer, bool, big-endian and Fortran-order arrays give what their float32
/// conversion gives, with a note for every conversion; an .npz gives its array.
#[test]
fn numpy_dtypes_and_npz_run_as_their_float32_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let m = classifier(dir.path());
    for name in [
        "float64",
        "float16",
        "int64",
        "uint8",
        "int16_be",
        "bool",
        "fortran64",
    ] {
        let want = infer(&m, &input(&format!("{name}.f32.npy")), "-", &[]);
        let o = infer(&m, &input(&format!("{name}.npy")), "-", &[]);
        assert_ok(&o);
        assert_eq!(stdout(&o), stdout(&want), "{name}");
        assert!(
            stderr(&o).contains("converted to float32"),
            "{name}: {}",
            stderr(&o)
        );
    }
    let want = infer(&m, &input("float64.f32.npy"), "-", &[]);
    let two = format!("{}:x", input("two.npz"));
    for x in [input("one.npz"), two] {
        let o = infer(&m, &x, "-", &[]);
        assert_ok(&o);
        assert_eq!(stdout(&o), stdout(&want), "{x}");
    }
    let err = assert_fails(&infer(&m, &input("two.npz"), "-", &[]));
    assert!(err.contains("FILE.npz:NAME"), "{err}");
}

/// An N-D array goes into a model that starts with nn.Flatten flattened from dimension 1, as
/// the module does; into any other model it is an error that says how to reshape.
#[test]
fn images_flatten_into_a_model_that_starts_with_flatten() {
    let dir = tempfile::tempdir().unwrap();
    let flat = dir.path().join("f.safetensors");
    assert_ok(&run_cli(&[
        "init",
        "--layers",
        "4,3",
        "--arch",
        "flatten,linear,relu",
        "-o",
        path_str(&flat),
    ]));
    let images = input("images.npy");
    let want = infer(path_str(&flat), &input("images.f32.npy"), "-", &[]);
    for extra in [&[][..], &["--batch-size", "2"]] {
        let o = infer(path_str(&flat), &images, "-", extra);
        assert_ok(&o);
        assert_eq!(stdout(&o), stdout(&want));
        assert_eq!(stdout(&o).lines().count(), 3);
    }
    let plain = classifier(dir.path());
    for extra in [&[][..], &["--batch-size", "2"]] {
        let err = assert_fails(&infer(&plain, &images, "-", extra));
        assert!(
            err.contains("nn.Flatten") && err.contains("[3, 1, 2, 2]"),
            "{err}"
        );
    }
}

/// `--batch-size` gives what one batch gives, from a file or stdin, CSV (with a header) or
/// .npy; a later line of names is an error, not a second header.
#[test]
fn batches_give_what_one_batch_gives() {
    let dir = tempfile::tempdir().unwrap();
    let m = classifier(dir.path());
    let x = io::read_matrix(input("float64.f32.npy")).unwrap();
    let csv = dir.path().join("x.csv");
    let mut text = String::from("# made by a test\na,b,c,d\n");
    text.push_str(&String::from_utf8(io::csv::to_bytes(&x)).unwrap());
    std::fs::write(&csv, &text).unwrap();
    let want = stdout(&infer(&m, &input("float64.f32.npy"), "-", &[]));
    for n in ["1", "2", "5", "100"] {
        for file in [input("float64.f32.npy"), path_str(&csv).to_string()] {
            let o = infer(&m, &file, "-", &["--batch-size", n]);
            assert_ok(&o);
            assert_eq!(stdout(&o), want, "{file} --batch-size {n}");
            let o = cli(&[
                "infer",
                "--weights",
                &m,
                "-i",
                "-",
                "-o",
                "-",
                "--batch-size",
                n,
            ])
            .args(["--device", "cpu"])
            .stdin(Stdio::from(std::fs::File::open(&file).unwrap()))
            .output()
            .unwrap();
            assert_ok(&o);
            assert_eq!(stdout(&o), want, "stdin {file} --batch-size {n}");
        }
    }
    let o = infer(&m, path_str(&csv), "-", &["--batch-size", "2"]);
    assert!(stderr(&o).contains("5 rows of 4 values") && stderr(&o).contains("header"));
    std::fs::write(&csv, format!("{text}e,f,g,h\n")).unwrap();
    let out = dir.path().join("y.csv");
    // Names starting a later batch are not a second header; inside a batch, not numbers.
    let args = |n| ["--batch-size", n];
    let err = assert_fails(&infer(&m, path_str(&csv), path_str(&out), &args("5")));
    assert!(err.contains("only the first line may be a header"), "{err}");
    let err = assert_fails(&infer(&m, path_str(&csv), path_str(&out), &args("2")));
    assert!(err.contains("'e' is not a number"), "{err}");
    assert!(!out.exists());
    let err = assert_fails(&infer(&m, path_str(&csv), "y.npy", &["--batch-size", "2"]));
    assert!(err.contains("cannot write .npy"), "{err}");
}

/// A 120 MB input runs with `--batch-size` under a 100 MiB address-space limit, from a file and
/// from stdin, so memory stays constant whatever the input's size; without it, the run is
/// refused before any work, with advice.
#[test]
fn batch_size_streams_an_input_larger_than_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.safetensors");
    assert_ok(&run_cli(&[
        "init",
        "--layers",
        "784,16,10",
        "--act",
        "relu,identity",
        "-o",
        path_str(&m),
    ]));
    let rows = 40_000;
    let x = wgpu_mlp::Matrix::new(rows, 784, common::random_vec(rows * 784, 5, -1.0, 1.0)).unwrap();
    let big = dir.path().join("big.npy");
    std::fs::write(&big, io::npy::to_bytes(&x)).unwrap();
    drop(x);
    let limit = [(libc::RLIMIT_AS, 100u64 << 20)];
    let out = dir.path().join("y.csv");
    let base = [
        "infer",
        "--weights",
        path_str(&m),
        "--device",
        "cpu",
        "--threads",
        "1",
    ];
    let mut c = cli(&base);
    c.args([
        "-i",
        path_str(&big),
        "-o",
        path_str(&out),
        "--batch-size",
        "1000",
    ]);
    common::with_limits(&mut c, &limit, false);
    assert_ok(&c.output().unwrap());
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), rows);
    let mut c = cli(&base);
    c.args(["-i", "-", "-o", "-", "--batch-size", "1000", "--argmax"]);
    c.stdin(Stdio::from(std::fs::File::open(&big).unwrap()));
    common::with_limits(&mut c, &limit, false);
    let o = c.output().unwrap();
    assert_ok(&o);
    assert_eq!(stdout(&o).lines().count(), rows);
    let mut c = cli(&base);
    c.args(["-i", path_str(&big), "-o", path_str(&out)]);
    common::with_limits(&mut c, &limit, false);
    let err = assert_fails(&c.output().unwrap());
    assert!(err.contains("--batch-size"), "{err}");
}

/// Options the chosen device does not use are errors (an explicit device) or notes (auto), and
/// `--arch`/`--act` replacing a file's own architecture is said; `--names` with `--layers` is
/// refused; `torch.nn.functional.` names a function as `F.` does.
#[test]
fn options_are_never_dropped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let m = classifier(dir.path());
    let x = input("float64.f32.npy");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "infer",
            "--weights",
            m.as_str(),
            "-i",
            x.as_str(),
            "-o",
            "-",
        ];
        args.extend_from_slice(extra);
        run_cli(&args)
    };
    let cases: [(&[&str], &str); 6] = [
        (&["--device", "cpu", "--adapter", "nvidia"], "--adapter"),
        (
            &["--device", "cpu-reference", "--adapter", "x"],
            "--adapter",
        ),
        (&["--device", "cpu", "--kernel", "tiled64"], "--kernel"),
        (
            &["--device", "cpu", "--weight-format", "f16"],
            "--weight-format",
        ),
        (&["--device", "gpu", "--threads", "2"], "--threads"),
        (
            &["--device", "cpu-reference", "--threads", "2"],
            "--threads",
        ),
    ];
    for (extra, option) in cases {
        let err = assert_fails(&run(extra));
        assert!(
            err.contains(option) && err.contains("drop one"),
            "{extra:?}: {err}"
        );
    }
    let o = run(&["--act", "relu,identity", "--device", "cpu"]);
    assert_ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("--act replaces the architecture") && err.contains("softmax"),
        "{err}"
    );
    let o = run(&["--act", "relu,softmax", "--device", "cpu"]);
    assert!(!stderr(&o).contains("replaces"), "{}", stderr(&o));
    let err = assert_fails(&run_cli(&["summary", "--layers", "4,3", "--names", "fc"]));
    assert!(err.contains("--names"), "{err}");
    let o = run_cli(&[
        "summary",
        "--layers",
        "4,3",
        "--arch",
        "linear,torch.nn.functional.relu",
    ]);
    assert_ok(&o);
}

/// `infer --kernel` and `--weight-format` reach the GPU as in `bench`: every choice gives the
/// CPU's numbers (f16 weights within their rounding), and a kernel that does not exist is an
/// error naming it.
#[test]
fn infer_takes_the_gpu_kernel_and_weight_format() {
    let dir = tempfile::tempdir().unwrap();
    let m = classifier(dir.path());
    let x = input("float64.f32.npy");
    let cpu = csv_values(&stdout(&infer(&m, &x, "-", &[])));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "infer",
            "--weights",
            m.as_str(),
            "-i",
            x.as_str(),
            "-o",
            "-",
        ];
        args.extend_from_slice(&["--device", "gpu"]);
        args.extend_from_slice(extra);
        run_cli(&args)
    };
    for (extra, tol) in [
        (&["--kernel", "tiled64"][..], 1e-6),
        (&["--kernel", "gemv"], 1e-6),
        (&["--weight-format", "f16", "--kernel", "windowed"], 2e-3),
    ] {
        let o = run(extra);
        assert_ok(&o);
        let gpu = csv_values(&stdout(&o));
        for (g, c) in gpu.iter().flatten().zip(cpu.iter().flatten()) {
            assert!((g - c).abs() <= tol, "{extra:?}: {g} against {c}");
        }
    }
    let err = assert_fails(&run(&["--kernel", "nope"]));
    assert!(err.contains("nope"), "{err}");
}
