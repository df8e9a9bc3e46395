//! `.pth` / `.pt` files as PyTorch 2.15's torch.save writes them (`tests/data/pth`, made by
//! `make_pth.py`): a state_dict, one wrapped in a checkpoint dict, float64/float16/bfloat16
//! weights and views into larger storages load through the library and the CLI and match
//! PyTorch's float64 forward; a pickled whole module, the legacy format and a pickle that would
//! run `os.system` are refused by name, and nothing in them runs.

mod common;

use std::path::PathBuf;

use common::{assert_close, assert_fails, assert_ok, path_str, run_cli};
use serde_json::Value;
use wgpu_mlp::io::pth::StateDict;
use wgpu_mlp::io::{npy, safetensors as st};
use wgpu_mlp::model::Tensors;
use wgpu_mlp::{Arch, Error, cpu};

fn pth(name: &str) -> PathBuf {
    common::data("pth").join(name)
}

fn format_error<T: std::fmt::Debug>(r: wgpu_mlp::Result<T>) -> String {
    match r {
        Err(Error::Format { msg, .. }) => msg,
        other => panic!("expected a Format error, got {other:?}"),
    }
}

#[test]
fn torch_save_files_load_and_match_pytorch() {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(pth("manifest.json")).unwrap()).unwrap();
    let cases = manifest.as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let arch: Arch = c["arch"].as_str().unwrap().parse().unwrap();
        let m = st::load(pth(&format!("{name}.pth")), Some(&arch), None).unwrap();
        let x = npy::read(pth(&format!("{name}.x.npy"))).unwrap();
        let y64 = npy::read_f64(pth(&format!("{name}.y64.npy"))).unwrap();
        let y = cpu::forward(&m, &x).unwrap();
        assert_close(y.as_slice(), &y64.data, 1e-4, 1e-5, name);
        // Every key the file holds is read, in the file's dtype.
        let dict = StateDict::load(pth(&format!("{name}.pth"))).unwrap();
        let mut keys = dict.keys();
        keys.sort();
        let mut want: Vec<String> = (c["keys"].as_array().unwrap().iter())
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        want.sort();
        assert_eq!(keys, want, "{name}");
    }
    // A view: the values are the slice, not the start of the storage.
    let dict = StateDict::load(pth("views.pth")).unwrap();
    assert_eq!(dict.shape("0.weight"), Some(vec![3, 5]));
    assert_eq!(dict.values("0.bias").unwrap().len(), 3);
}

#[test]
fn the_cli_takes_a_pth_wherever_it_takes_a_state_dict() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    let arch = "linear,batchnorm1d,relu,dropout,linear";
    let o = run_cli(&[
        "infer",
        "--weights",
        path_str(&pth("wrapped_state_dict.pth")),
        "--arch",
        arch,
        "-i",
        path_str(&pth("wrapped_state_dict.x.npy")),
        "-o",
        path_str(&out),
        "--device",
        "cpu",
    ]);
    assert_ok(&o);
    let y = npy::read(&out).unwrap();
    let y64 = npy::read_f64(pth("wrapped_state_dict.y64.npy")).unwrap();
    assert_close(y.as_slice(), &y64.data, 1e-4, 1e-5, "infer on a .pth");
    let o = run_cli(&[
        "summary",
        "--weights",
        path_str(&pth("state_dict.pth")),
        "--arch",
        arch,
    ]);
    assert_ok(&o);
    assert!(
        common::stdout(&o).contains("BatchNorm1d"),
        "{}",
        common::stdout(&o)
    );
    // Without an architecture: what to pass, as for a bare safetensors state_dict.
    let err = assert_fails(&run_cli(&[
        "summary",
        "--weights",
        path_str(&pth("state_dict.pth")),
    ]));
    assert!(
        err.contains(".pth state_dict") && err.contains("--arch"),
        "{err}"
    );
}

#[test]
fn whole_modules_legacy_files_and_hostile_pickles_are_refused() {
    let arch: Arch = "linear,batchnorm1d,relu,dropout,linear".parse().unwrap();
    let msg = format_error(st::load(pth("whole_module.pth"), Some(&arch), None));
    assert!(
        msg.contains("whole pickled model")
            && msg.contains("torch.nn.modules.container.Sequential")
            && msg.contains("torch.save(model.state_dict()"),
        "{msg}"
    );
    let msg = format_error(st::load(pth("legacy.pth"), Some(&arch), None));
    assert!(
        msg.contains("legacy") && msg.contains("torch.save("),
        "{msg}"
    );
    // The hostile file would run `echo pwned > /tmp/wgpu_mlp_pwned` under pickle.load.
    let marker = std::path::Path::new("/tmp/wgpu_mlp_pwned");
    let _ = std::fs::remove_file(marker);
    let msg = format_error(StateDict::load(pth("hostile.pth")));
    assert!(
        msg.contains("'posix.system'") && msg.contains("nothing in the file is ever run"),
        "{msg}"
    );
    assert!(!marker.exists());
    let err = assert_fails(&run_cli(&[
        "summary",
        "--weights",
        path_str(&pth("hostile.pth")),
        "--arch",
        "linear",
    ]));
    assert!(err.contains("'posix.system'"), "{err}");
    assert!(!marker.exists());
}

/// A torch.save-style archive (`archive/data.pkl`, `archive/data/<key>`) of these entries,
/// stored uncompressed, for crafted pickles.
fn archive(pickle: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("archive/data.pkl", stored).unwrap();
    w.write_all(pickle).unwrap();
    for (key, bytes) in storages {
        w.start_file(format!("archive/data/{key}"), stored).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A protocol-2 pickle of `{'w': tensor}` with this storage tuple body and view.
fn one_tensor(storage: &str, numel: u8, offset: u8, size: u8, stride: u8) -> Vec<u8> {
    let mut p = b"\x80\x02}q\x00X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
    p.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\n");
    p.extend_from_slice(storage.as_bytes());
    p.extend_from_slice(b"\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK");
    p.push(numel);
    p.extend_from_slice(b"tQK");
    p.push(offset);
    p.push(b'K');
    p.push(size);
    p.extend_from_slice(b"\x85K");
    p.push(stride);
    p.extend_from_slice(b"\x85\x89}tRs.");
    p
}

#[test]
fn crafted_pickles_are_read_exactly_or_refused_by_name() {
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    // The hand-made pickle reads (a strided view of 3 of 6 values).
    let data = f32s(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let ok = archive(&one_tensor("FloatStorage", 6, 1, 3, 2), &[("0", &data)]);
    let dict = StateDict::from_bytes(&ok, "ok").unwrap();
    assert_eq!(dict.values("w").unwrap(), [1.0, 3.0, 5.0]);
    // A view past its storage, a storage shorter than declared, a dtype that is not read.
    let past = archive(&one_tensor("FloatStorage", 6, 2, 3, 2), &[("0", &data)]);
    let msg = format_error(StateDict::from_bytes(&past, "past"));
    assert!(
        msg.contains("'w'") && msg.contains("past the end of its storage"),
        "{msg}"
    );
    let short = archive(
        &one_tensor("FloatStorage", 6, 0, 3, 1),
        &[("0", &data[..20])],
    );
    let msg = format_error(StateDict::from_bytes(&short, "short"));
    assert!(
        msg.contains("'w'") && msg.contains("24 bytes") && msg.contains("20 bytes"),
        "{msg}"
    );
    let bytes = archive(&one_tensor("ByteStorage", 6, 0, 3, 1), &[("0", &[0; 6])]);
    let arch: Arch = "linear".parse().unwrap();
    let msg = format_error(st::from_bytes(&bytes, "u8", Some(&arch), None));
    assert!(msg.contains("'w'") && msg.contains("ByteStorage"), "{msg}");
    // Globals that would run code, by GLOBAL and STACK_GLOBAL, and a class of the file's own.
    for (pickle, name) in [
        (
            &b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R."[..],
            "'posix.system'",
        ),
        (
            b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.",
            "'builtins.eval'",
        ),
        (
            b"\x80\x04\x8c\x08builtins\x8c\x04exec\x93X\x01\x00\x00\x001\x85R.",
            "'builtins.exec'",
        ),
        (b"\x80\x02c__main__\nNet\n)R.", "whole pickled model"),
        (
            b"\x80\x02cmymodels.mlp\nNet\n)R.",
            "'mymodels.mlp.Net' (a whole pickled model?",
        ),
    ] {
        let msg = format_error(StateDict::from_bytes(&archive(pickle, &[]), "evil"));
        assert!(msg.contains(name), "{msg}");
    }
    // A million nested lists (no recursion anywhere: reading and dropping them is flat), a
    // MARK bomb, and a pickle that is only a list.
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 1_000_000));
    deep.extend(std::iter::repeat_n(b'a', 999_999));
    deep.push(b'.');
    let msg = format_error(StateDict::from_bytes(&archive(&deep, &[]), "deep"));
    assert!(msg.contains("a list, not a state_dict"), "{msg}");
    let marks = [b"\x80\x02".to_vec(), vec![b'('; 5000], b".".to_vec()].concat();
    let msg = format_error(StateDict::from_bytes(&archive(&marks, &[]), "marks"));
    assert!(msg.contains("nested MARKs"), "{msg}");
    // Not a zip at all, a zip without data.pkl, truncated archives.
    let good = std::fs::read(pth("state_dict.pth")).unwrap();
    for k in 1..20 {
        format_error(StateDict::from_bytes(&good[..good.len() * k / 20], "cut"));
    }
    let msg = format_error(StateDict::from_bytes(&archive(b".", &[]), "x"));
    assert!(msg.contains("pickle"), "{msg}");
}

#[test]
fn batchnorm_keeps_the_files_num_batches_tracked() {
    // PyTorch saved 7 (make_pth.py trains 7 steps) in the .pth files and 1000 in the
    // safetensors fixtures; the library loaders started every BatchNorm at 0.
    let tracked = |m: &wgpu_mlp::Mlp| -> Vec<i64> {
        m.modules()
            .iter()
            .filter_map(|m| match m {
                wgpu_mlp::Module::BatchNorm1d(b) => Some(b.num_batches_tracked()),
                _ => None,
            })
            .collect()
    };
    let arch: Arch = "linear,batchnorm1d,relu,dropout,linear".parse().unwrap();
    for name in ["state_dict", "f64", "f16", "bf16"] {
        let dict = StateDict::load(pth(&format!("{name}.pth"))).unwrap();
        assert_eq!(tracked(&arch.bind(&dict, None).unwrap()), [7], "{name}.pth");
    }
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/models");
    for (name, want) in [
        ("seq_bn", vec![1000]),
        ("bn_first", vec![1000]),
        ("norm_variants", vec![1000, 1000]),
    ] {
        let m = st::load(models.join(format!("{name}.meta.safetensors")), None, None).unwrap();
        assert_eq!(tracked(&m), want, "{name}");
    }
}
