//! Binding a bare state_dict whose module names do not sort in forward order
//! (`tests/data/binding`, made by `make_order.py` with PyTorch 2.15): the one order whose kinds
//! and shapes fit is used, with a note; several fitting orders are an error listing them. Also
//! the bounded search over bare LayerNorms (issue 24 item 7) and a single-slope PReLU first
//! (item 10).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{assert_close, assert_fails, assert_ok, path_str, raw_st, run_cli};
use serde_json::Value;
use wgpu_mlp::io::{npy, safetensors as st};
use wgpu_mlp::{Arch, Error, Mlp, cpu};

fn binding(name: &str) -> PathBuf {
    common::data("binding").join(name)
}

fn check_outputs(name: &str, m: &Mlp) {
    let x = npy::read(binding(&format!("{name}.x.npy"))).unwrap();
    let y64 = npy::read_f64(binding(&format!("{name}.y64.npy"))).unwrap();
    let y = cpu::forward(m, &x).unwrap();
    assert_close(y.as_slice(), &y64.data, 1e-4, 1e-5, name);
}

fn case(name: &str) -> (Arch, Vec<String>) {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(binding("order_manifest.json")).unwrap())
            .unwrap();
    let c = manifest
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap();
    let names = c["names"].as_str().unwrap();
    (
        c["arch"].as_str().unwrap().parse().unwrap(),
        names
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    )
}

#[test]
fn names_out_of_forward_order_bind_by_shape_with_a_note() {
    for name in ["features_classifier", "fc_names"] {
        let (arch, names) = case(name);
        for ext in ["safetensors", "pth"] {
            let file = binding(&format!("{name}.{ext}"));
            let m = st::load(&file, Some(&arch), None).unwrap();
            check_outputs(name, &m);
            let note = m.diagnostics().join("\n");
            assert!(
                note.contains("natural order")
                    && note.contains(&format!("--names {}", names.join(","))),
                "{name}: {note}"
            );
            // The same model as with the names given, which gives no note.
            let given = st::load(&file, Some(&arch), Some(&names)).unwrap();
            assert!(given.diagnostics().is_empty());
            assert_eq!(given.modules(), m.modules());
        }
    }
    // The 13-model fixtures' nested_functional (`net.0`, `net.2`, `head`) needed --names before.
    let models = common::data("models");
    let arch: Arch = "linear,relu,linear,F.tanh,linear".parse().unwrap();
    let m = st::load(
        models.join("nested_functional.safetensors"),
        Some(&arch),
        None,
    )
    .unwrap();
    assert!(
        m.diagnostics()
            .join("\n")
            .contains("--names net.0,net.2,head"),
        "{:?}",
        m.diagnostics()
    );
    let x = npy::read(models.join("nested_functional.x.npy")).unwrap();
    let y64 = npy::read_f64(models.join("nested_functional.y64.npy")).unwrap();
    assert_close(
        cpu::forward(&m, &x).unwrap().as_slice(),
        &y64.data,
        1e-4,
        1e-5,
        "nested_functional",
    );
    // The CLI says it on stderr and runs.
    let (arch, _) = case("features_classifier");
    let o = run_cli(&[
        "summary",
        "--weights",
        path_str(&binding("features_classifier.safetensors")),
        "--arch",
        &arch.to_string(),
    ]);
    assert_ok(&o);
    let err = common::stderr(&o);
    assert!(
        err.contains("--names features.0,features.2,classifier"),
        "{err}"
    );
}

#[test]
fn several_fitting_orders_are_an_error_listing_them() {
    let (arch, names) = case("two_same");
    let file = binding("two_same.safetensors");
    let msg = match st::load(&file, Some(&arch), None) {
        Err(Error::Format { msg, .. }) => msg,
        other => panic!("{other:?}"),
    };
    assert!(
        msg.contains("--names c,a,b")
            && msg.contains("--names c,b,a")
            && msg.contains("give the forward order"),
        "{msg}"
    );
    check_outputs(
        "two_same",
        &st::load(&file, Some(&arch), Some(&names)).unwrap(),
    );
    let err = assert_fails(&run_cli(&[
        "summary",
        "--weights",
        path_str(&file),
        "--arch",
        &arch.to_string(),
    ]));
    assert!(err.contains("--names c,a,b"), "{err}");
    // Nothing fits at all: the natural order's own error, as before.
    let wrong: Arch = "linear,relu,linear".parse().unwrap();
    let msg = st::load(&file, Some(&wrong), None).unwrap_err().to_string();
    assert!(
        msg.contains("3 module(s) with tensors") || msg.contains("2 module(s)"),
        "{msg}"
    );
}

#[test]
fn a_single_slope_prelu_first_takes_its_width_from_what_follows() {
    for name in ["prelu_first", "prelu_dropout_first"] {
        let m = st::load(binding(&format!("{name}.safetensors")), None, None).unwrap();
        check_outputs(name, &m);
    }
    let m = st::load(binding("prelu_first.safetensors"), None, None).unwrap();
    assert_eq!(m.in_features(), 4);
}

/// A self-describing file of `linears` Linear layers of width 4 between which `norms`
/// LayerNorms stand, `affine` of them with tensors (named so that no index settles which), and
/// a last Linear whose input is `last_in` wide.
fn layernorm_bomb(norms: usize, affine: usize, last_in: usize) -> Vec<u8> {
    let mut arch = vec!["linear"];
    arch.extend(std::iter::repeat_n("layernorm", norms));
    arch.push("linear");
    let mut entries = Vec::new();
    let mut data = Vec::new();
    let mut put = |name: String, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        let start = data.len();
        data.extend(std::iter::repeat_n(0u8, 4 * n));
        entries.push(format!(
            "\"{name}\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[{start},{}]}}",
            data.len()
        ));
    };
    put("a.weight".into(), vec![4, 4]);
    for k in 0..affine {
        put(format!("n{k:03}x.weight"), vec![4]);
    }
    put("z.weight".into(), vec![2, last_in]);
    let header = format!(
        "{{\"__metadata__\":{{\"wgpu_mlp.arch\":\"{}\"}},{}}}",
        arch.join(","),
        entries.join(",")
    );
    raw_st(&header, &data)
}

#[test]
fn the_bare_layernorm_search_is_bounded_in_time_and_memory() {
    // C(60, 30) ≈ 1.2e17 ways to place 30 bare LayerNorms among 60. Every way fits (refused
    // quickly as ambiguous), or none does (refused once the step budget is spent).
    for (last_in, needle) in [(4, "ambiguous"), (5, "too many ways")] {
        let bytes = layernorm_bomb(60, 30, last_in);
        assert!(bytes.len() < 4096);
        let t = Instant::now();
        let msg = st::from_bytes(&bytes, "bomb", None, None)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(needle), "{msg}");
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
        // The CLI under a 1 GiB address-space limit answers the same.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        let mut cmd = common::cli(&["summary", "--weights", path_str(&path)]);
        common::with_limits(&mut cmd, &[(libc::RLIMIT_AS, 1 << 30)], false);
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (o, killed) = common::wait_or_kill(child, 60);
        assert!(!killed, "the CLI took more than 60 s");
        let err = assert_fails(&o);
        assert!(err.contains(needle), "{err}");
    }
    // A small one is answered the same way, and the error says what to pass.
    let msg = st::from_bytes(&layernorm_bomb(8, 4, 4), "small", None, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("ambiguous") && msg.contains("'-'"), "{msg}");
}
