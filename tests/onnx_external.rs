//! ONNX files with external data: `tests/data/external` holds what PyTorch 2.15's default call
//! `torch.onnx.export(model, (x,), "m.onnx", dynamo=True)` writes (`m.onnx` + `m.onnx.data`,
//! made by `make_external.py`). They load by path (library and CLI) and from bytes with the data
//! given; every location outside the `.onnx` file's folder and every range past its data file is
//! refused with an error naming the initializer.

mod common;
#[path = "common/onnx/mod.rs"]
mod helpers;

use std::path::{Path, PathBuf};

use common::{assert_close, assert_fails, assert_ok, path_str, run_cli};
use helpers::build::{TensorProto, dtype, file, node};
use wgpu_mlp::io::npy;
use wgpu_mlp::{Error, Mlp, cpu, onnx};

const CASES: [&str; 2] = ["regression", "digits"];

fn external(name: &str) -> PathBuf {
    common::data("external").join(name)
}

/// The model's CPU forward on its input against PyTorch's float64 output.
fn check_outputs(case: &str, model: &Mlp) {
    let x = npy::read(external(&format!("{case}.x.npy"))).unwrap();
    let y64 = npy::read_f64(external(&format!("{case}.y64.npy"))).unwrap();
    let y = cpu::forward(model, &x).unwrap();
    assert_eq!([y.rows(), y.cols()], [y64.rows, y64.cols], "{case}");
    assert_close(y.as_slice(), &y64.data, 1e-4, 1e-5, case);
}

/// The case's two files copied into a new folder (which the test may then damage).
fn copy(case: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join(format!("{case}.onnx"));
    let data = dir.path().join(format!("{case}.onnx.data"));
    std::fs::copy(external(&format!("{case}.onnx")), &onnx).unwrap();
    std::fs::copy(external(&format!("{case}.onnx.data")), &data).unwrap();
    (dir, onnx, data)
}

/// `bytes` with `from` replaced by `to`, which has the same length (so the protobuf stays valid).
fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("'{from}' not in the file"));
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to.as_bytes());
    out
}

fn format_error(r: wgpu_mlp::Result<Mlp>) -> String {
    match r {
        Err(Error::Format { msg, .. }) => msg,
        other => panic!("expected a Format error, got {other:?}"),
    }
}

#[test]
fn pytorch_default_export_loads_by_path_and_from_bytes() {
    for case in CASES {
        // The default call really did write external data.
        assert!(external(&format!("{case}.onnx.data")).exists());
        check_outputs(
            case,
            &onnx::load(external(&format!("{case}.onnx"))).unwrap(),
        );
        let bytes = std::fs::read(external(&format!("{case}.onnx"))).unwrap();
        let data = std::fs::read(external(&format!("{case}.onnx.data"))).unwrap();
        let location = format!("{case}.onnx.data");
        let m = onnx::from_bytes_with_data(&bytes, case, &[(&location, &data)]).unwrap();
        check_outputs(case, &m);
        // Without a folder or the data, the error says how to load it.
        let msg = format_error(onnx::from_bytes(&bytes, case));
        assert!(
            msg.contains("initializer '")
                && msg.contains(&location)
                && msg.contains("onnx::load")
                && msg.contains("from_bytes_with_data"),
            "{msg}"
        );
        // A data file given under another name is not used.
        let msg = format_error(onnx::from_bytes_with_data(
            &bytes,
            case,
            &[("other.data", &data)],
        ));
        assert!(
            msg.contains("not among the data files given") && msg.contains("'other.data'"),
            "{msg}"
        );
    }
}

#[test]
fn the_cli_runs_an_export_with_external_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    let o = run_cli(&[
        "infer",
        "--weights",
        path_str(&external("digits.onnx")),
        "-i",
        path_str(&external("digits.x.npy")),
        "-o",
        path_str(&out),
        "--device",
        "cpu",
    ]);
    assert_ok(&o);
    let y = npy::read(&out).unwrap();
    let y64 = npy::read_f64(external("digits.y64.npy")).unwrap();
    assert_close(y.as_slice(), &y64.data, 1e-4, 1e-5, "digits via the CLI");
    // A model loaded from another working directory finds its data beside it.
    let o = common::cli(&["summary", "--weights", "regression.onnx"])
        .current_dir(external(""))
        .output()
        .unwrap();
    assert_ok(&o);
}

/// Loads the damaged copy and checks the error names the initializer and each needle.
fn refused_by_path(onnx_path: &Path, needles: &[&str]) {
    let msg = format_error(onnx::load(onnx_path));
    assert!(msg.contains("initializer '0.weight'"), "{msg}");
    for n in needles {
        assert!(msg.contains(n), "expected '{n}' in: {msg}");
    }
}

#[test]
fn locations_outside_the_folder_are_refused() {
    let (dir, onnx_path, _) = copy("regression");
    let bytes = std::fs::read(&onnx_path).unwrap();
    let loc = "regression.onnx.data";
    // A secret beside the folder, which no refusal may read.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), vec![7u8; 320]).unwrap();
    for (to, needle) in [
        ("../regression.onnx.d", "'..'"),
        ("./../egression.onnx.", "'..'"),
        ("/etc/regression.data", "absolute path"),
        ("C:\\regression.o.data", "'\\' or ':'"),
        ("regression.onnx.dat\0", "NUL"),
    ] {
        std::fs::write(&onnx_path, replace(&bytes, loc, to)).unwrap();
        refused_by_path(&onnx_path, &[needle, "folder"]);
        // The same checks hold for data in memory.
        let damaged = std::fs::read(&onnx_path).unwrap();
        let msg = format_error(onnx::from_bytes_with_data(
            &damaged,
            "m",
            &[(to, &[0; 320])],
        ));
        assert!(msg.contains(needle), "{msg}");
    }
    // A symbolic link in the folder that leaves it.
    std::fs::write(&onnx_path, &bytes).unwrap();
    let link = dir.path().join(loc);
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), &link).unwrap();
    refused_by_path(&onnx_path, &["outside the .onnx file's folder"]);
    // A link whose target stays inside the folder is fine.
    std::fs::remove_file(&link).unwrap();
    std::fs::copy(
        external("regression.onnx.data"),
        dir.path().join("real.data"),
    )
    .unwrap();
    std::os::unix::fs::symlink("real.data", &link).unwrap();
    check_outputs("regression", &onnx::load(&onnx_path).unwrap());
    // A subfolder is inside too.
    std::fs::create_dir(dir.path().join("w")).unwrap();
    std::fs::copy(
        external("regression.onnx.data"),
        dir.path().join("w/regression.onnx.da"),
    )
    .unwrap();
    std::fs::write(&onnx_path, replace(&bytes, loc, "w/regression.onnx.da")).unwrap();
    check_outputs("regression", &onnx::load(&onnx_path).unwrap());
}

#[test]
fn ranges_past_the_data_file_and_odd_files_are_refused() {
    let (_dir, onnx_path, data) = copy("regression");
    let bytes = std::fs::read(&onnx_path).unwrap();
    // Truncated data: the range ends past the file.
    std::fs::write(&data, vec![0u8; 100]).unwrap();
    refused_by_path(&onnx_path, &["past the end", "100-byte file"]);
    // An offset that moves the range past the end.
    std::fs::copy(external("regression.onnx.data"), &data).unwrap();
    let moved = replace(&bytes, "offset\x12\x010", "offset\x12\x019");
    std::fs::write(&onnx_path, moved).unwrap();
    refused_by_path(&onnx_path, &["past the end", "bytes 9 to 329"]);
    // A length that does not match the shape.
    let longer = replace(&bytes, "length\x12\x03320", "length\x12\x03321");
    std::fs::write(&onnx_path, longer).unwrap();
    refused_by_path(&onnx_path, &["[16, 5]", "321 bytes"]);
    let not_a_number = replace(&bytes, "length\x12\x03320", "length\x12\x03-32");
    std::fs::write(&onnx_path, not_a_number).unwrap();
    refused_by_path(&onnx_path, &["'-32', not a byte count"]);
    // A missing data file, and one that is a folder or a FIFO (which must not block).
    std::fs::write(&onnx_path, &bytes).unwrap();
    std::fs::remove_file(&data).unwrap();
    refused_by_path(&onnx_path, &["cannot open", "regression.onnx.data"]);
    std::fs::create_dir(&data).unwrap();
    refused_by_path(&onnx_path, &["not a regular file"]);
    std::fs::remove_dir(&data).unwrap();
    let fifo = std::ffi::CString::new(path_str(&data)).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    refused_by_path(&onnx_path, &["not a regular file"]);
}

#[test]
fn aliased_ranges_cannot_read_more_than_the_data() {
    // Two 2 × 2 weights both pointing at the same 16 bytes: 32 bytes read from 16.
    let w = |name: &str| TensorProto {
        dims: vec![2, 2],
        data_type: dtype::FLOAT,
        name: name.into(),
        external_data: vec![
            ("location".into(), "w.bin".into()),
            ("offset".into(), "0".into()),
            ("length".into(), "16".into()),
        ],
        data_location: 1,
        ..Default::default()
    };
    let gemm =
        |w: &str, i: &str, o: &str| node("Gemm", &format!("/{w}/Gemm"), &[i, w], &[o], vec![]);
    let bytes = file(
        vec![gemm("W1", "x", "h"), gemm("W2", "h", "y")],
        vec![w("W1"), w("W2")],
        &[2],
        2,
    );
    let data = [1.0f32, 0.0, 0.0, 1.0].map(f32::to_le_bytes).concat();
    let msg = format_error(onnx::from_bytes_with_data(&bytes, "m", &[("w.bin", &data)]));
    assert!(
        msg.contains("initializer 'W2'") && msg.contains("overlap"),
        "{msg}"
    );
    // One of them alone loads.
    let one = file(vec![gemm("W1", "x", "y")], vec![w("W1")], &[2], 2);
    let m = onnx::from_bytes_with_data(&one, "m", &[("w.bin", &data)]).unwrap();
    assert_eq!(m.in_features(), 2);
}

#[test]
fn the_cli_refuses_a_location_outside_the_folder() {
    let (_dir, onnx_path, _) = copy("regression");
    let bytes = std::fs::read(&onnx_path).unwrap();
    std::fs::write(
        &onnx_path,
        replace(&bytes, "regression.onnx.data", "../regression.onnx.d"),
    )
    .unwrap();
    let err = assert_fails(&run_cli(&["summary", "--weights", path_str(&onnx_path)]));
    assert!(
        err.contains("initializer '0.weight'") && err.contains("'..'"),
        "{err}"
    );
}
