//! ONNX import (`wgpu_mlp::onnx`), end to end through the public API: the PyTorch fixtures of
//! `tests/data/models` (13 models × the dynamo and legacy exporters) against PyTorch's float64
//! forward and torchsummary's tables, damaged and unsupported files, and a seeded
//! protobuf-aware mutation fuzz of the fixtures.
//!
//! `ONNX_FUZZ_ITERS` sets the number of mutants (default 20,000), `ONNX_FUZZ_SEED` the seed. A
//! failing input is printed as hex; add it to `FOUND` so it stays tested. `fuzz/` has the
//! cargo-fuzz target for longer runs by hand. The unit tests in `src/onnx/tests.rs` cover each
//! op's semantics on hand-built graphs.

#[path = "../src/onnx/mutate.rs"]
mod mutate;

use std::path::{Path, PathBuf};
use std::time::Instant;

use mutate::{Rng, Seeds};
use wgpu_mlp::io::{npy, safetensors};
use wgpu_mlp::summary::{self, Row};
use wgpu_mlp::{Activation, Arch, Error, Matrix, Mlp, Module, cpu, onnx};

const CASES: [&str; 13] = [
    "seq_bn",
    "seq_ln",
    "primer",
    "acts_a",
    "acts_b",
    "nobias_flatten",
    "nested_functional",
    "fc_natural",
    "bn_first",
    "ln_4096",
    "norm_variants",
    "functional_mix",
    "regression_1out",
];

const EXPORTERS: [&str; 2] = ["dynamo", "legacy"];

/// Inputs found by fuzzing that once failed, as hex.
const FOUND: &[&str] = &[];

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/models")
}

fn fixture(case: &str, exporter: &str) -> Mlp {
    onnx::load(models().join(format!("{case}.{exporter}.onnx")))
        .unwrap_or_else(|e| panic!("{case}.{exporter}.onnx: {e}"))
}

/// The largest `|a − e| / (atol + rtol·|e|)`; NaN never passes.
fn worst(actual: &[f32], expected: &[f64], rtol: f64, atol: f64) -> f64 {
    assert_eq!(actual.len(), expected.len());
    actual
        .iter()
        .zip(expected)
        .map(|(&a, &e)| {
            let a = f64::from(a);
            if a.is_nan() || e.is_nan() {
                f64::INFINITY
            } else {
                (a - e).abs() / (atol + rtol * e.abs())
            }
        })
        .fold(0.0, f64::max)
}

// ---------------------------------------------------------------------------------------------
// The fixtures.

#[test]
fn fixtures_match_pytorch_float64_on_the_cpu_reference() {
    for case in CASES {
        let x = npy::read(models().join(format!("{case}.x.npy"))).unwrap();
        let y64 = npy::read_f64(models().join(format!("{case}.y64.npy"))).unwrap();
        for exporter in EXPORTERS {
            if (case, exporter) == ("acts_a", "legacy") {
                continue; // The file's own semantics: see the next test.
            }
            let model = fixture(case, exporter);
            let y = cpu::forward(&model, &x).unwrap();
            assert_eq!(
                [y.rows(), y.cols()],
                [y64.rows, y64.cols],
                "{case}.{exporter}"
            );
            let w = worst(y.as_slice(), &y64.data, 1e-4, 1e-5);
            assert!(
                w <= 1.0,
                "{case}.{exporter}: {w} × the tolerance (rtol 1e-4, atol 1e-5)"
            );
        }
    }
}

/// The legacy exporter drops `Softplus`'s threshold (`Mul(β), Softplus, Div(β)`), so
/// `acts_a.legacy.onnx` computes `ln(1 + e^{βx})/β` everywhere; the importer keeps what the
/// file says. Checked against an independent computation of those semantics: the
/// state_dict with thresholds out of reach.
#[test]
fn legacy_softplus_without_threshold_is_imported_as_the_file_computes_it() {
    let x = npy::read(models().join("acts_a.x.npy")).unwrap();
    let arch: Arch = "linear,hardtanh,linear,hardtanh:-2:3,linear,relu6,linear,softplus:1:1e30,\
                      linear,softplus:2:1e30,linear,mish,linear,hardswish,linear,hardsigmoid,\
                      linear,selu,linear"
        .parse()
        .unwrap();
    let reference =
        safetensors::load(models().join("acts_a.safetensors"), Some(&arch), None).unwrap();
    let want = cpu::forward_f64(&reference, &x).unwrap();
    let got = cpu::forward(&fixture("acts_a", "legacy"), &x).unwrap();
    let w = worst(got.as_slice(), &want, 1e-5, 1e-6);
    assert!(w <= 1.0, "{w}");
}

/// torchsummary's rows, as (label, row).
fn parse_rows(text: &str) -> Vec<(String, Row)> {
    text.lines()
        .filter_map(|l| {
            let (label, rest) = l.trim().split_once(' ')?;
            let (class, _) = label.rsplit_once('-')?;
            let (width, params) = rest.trim().strip_prefix("[-1, ")?.split_once(']')?;
            Some((
                label.to_string(),
                Row {
                    class: class.to_string(),
                    width: width.trim().parse().ok()?,
                    params: params.trim().replace(',', "").parse().ok()?,
                },
            ))
        })
        .collect()
}

/// The rows each exporter erases: dynamo folds a BatchNorm that follows a Linear into its
/// weights and drops a Flatten of a 2-D input; both drop Dropout and Identity.
const ERASED: &[(&str, &str, &[&str])] = &[
    ("seq_bn", "dynamo", &["BatchNorm1d-2", "Dropout-4"]),
    ("seq_bn", "legacy", &["Dropout-4"]),
    ("nobias_flatten", "dynamo", &["Flatten-1", "Identity-4"]),
    ("nobias_flatten", "legacy", &["Identity-4"]),
    (
        "norm_variants",
        "dynamo",
        &["BatchNorm1d-2", "BatchNorm1d-11", "Dropout-12"],
    ),
    ("norm_variants", "legacy", &["Dropout-12"]),
];

#[test]
fn summaries_match_torchsummary_except_for_erased_modules() {
    let mut exact = 0;
    for case in CASES {
        let want = std::fs::read_to_string(models().join(format!("{case}.summary.txt"))).unwrap();
        for exporter in EXPORTERS {
            let model = fixture(case, exporter);
            match ERASED.iter().find(|e| (e.0, e.1) == (case, exporter)) {
                None => {
                    assert_eq!(summary::summary(&model, -1), want, "{case}.{exporter}");
                    exact += 1;
                }
                Some((_, _, erased)) => {
                    let kept: Vec<Row> = parse_rows(&want)
                        .into_iter()
                        .filter(|(label, _)| !erased.contains(&label.as_str()))
                        .map(|(_, r)| r)
                        .collect();
                    assert_eq!(summary::rows(&model), kept, "{case}.{exporter}");
                }
            }
        }
    }
    assert_eq!(exact, 20);
}

#[test]
fn modules_are_the_pytorch_modules() {
    let m = fixture("acts_b", "legacy");
    assert_eq!(
        m.modules()[3],
        Module::PRelu(wgpu_mlp::PRelu::new(m_prelu(&m)).unwrap())
    );
    assert!(
        m.modules()
            .contains(&Module::Activation(Activation::LeakyRelu(0.2)))
    );
    let m = fixture("functional_mix", "legacy");
    assert_eq!(m.modules()[1], Module::Function(Activation::Relu));
    assert!(matches!(
        &m.modules()[3],
        Module::Elementwise { class: None, .. }
    ));
}

fn m_prelu(m: &Mlp) -> Vec<f32> {
    match &m.modules()[3] {
        Module::PRelu(p) => {
            assert_eq!(p.weight().len(), 17);
            p.weight().to_vec()
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-built files: a minimal protobuf writer for the messages the tests need.

#[derive(Default, Clone)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint_raw(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn int(mut self, tag: u64, v: u64) -> Self {
        self.varint_raw(tag << 3);
        self.varint_raw(v);
        self
    }
    fn bytes(mut self, tag: u64, b: &[u8]) -> Self {
        self.varint_raw((tag << 3) | 2);
        self.varint_raw(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, tag: u64, s: &str) -> Self {
        self.bytes(tag, s.as_bytes())
    }
    fn msg(self, tag: u64, m: Pb) -> Self {
        self.bytes(tag, &m.0)
    }
}

/// `TensorProto` of f32 values in raw_data.
fn tensor(name: &str, dims: &[u64], values: &[f32]) -> Pb {
    let mut t = Pb::default();
    for &d in dims {
        t = t.int(1, d);
    }
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.int(2, 1).str(8, name).bytes(9, &raw)
}

/// `NodeProto`.
fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> Pb {
    let mut n = Pb::default();
    for i in inputs {
        n = n.str(1, i);
    }
    for o in outputs {
        n = n.str(2, o);
    }
    n.str(3, name).str(4, op)
}

/// `ValueInfoProto` of a float `[batch, width]`.
fn value(name: &str, width: u64) -> Pb {
    let shape = Pb::default()
        .msg(1, Pb::default().str(2, "batch"))
        .msg(1, Pb::default().int(1, width));
    let tensor_type = Pb::default().int(1, 1).msg(2, shape);
    Pb::default()
        .str(1, name)
        .msg(2, Pb::default().msg(1, tensor_type))
}

/// `ModelProto` (opset 17).
fn model(nodes: Vec<Pb>, inits: Vec<Pb>, inputs: Vec<Pb>, outputs: Vec<Pb>) -> Vec<u8> {
    let mut g = Pb::default();
    for n in nodes {
        g = g.msg(1, n);
    }
    g = g.str(2, "g");
    for t in inits {
        g = g.msg(5, t);
    }
    for i in inputs {
        g = g.msg(11, i);
    }
    for o in outputs {
        g = g.msg(12, o);
    }
    Pb::default()
        .int(1, 8)
        .msg(7, g)
        .msg(8, Pb::default().int(2, 17))
        .0
}

fn refused(bytes: &[u8]) -> String {
    match onnx::from_bytes(bytes, "test.onnx") {
        Err(Error::Format { path, msg }) => {
            assert_eq!(path, "test.onnx");
            msg
        }
        Err(e) => panic!("not a Format error: {e:?}"),
        Ok(m) => panic!("accepted: {:?}", m.modules()),
    }
}

#[test]
fn a_hand_built_file_loads() {
    let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let bytes = model(
        vec![
            node("Gemm", "/fc/Gemm", &["x", "W", "b"], &["h"])
                .msg(5, Pb::default().str(1, "transB").int(3, 1).int(20, 2)),
            node("Relu", "/act/Relu", &["h"], &["y"]),
        ],
        vec![
            tensor("W", &[3, 2], &w),
            tensor("b", &[3], &[0.5, -100.0, 0.0]),
        ],
        vec![value("x", 2)],
        vec![value("y", 3)],
    );
    let m = onnx::from_bytes(&bytes, "test.onnx").unwrap();
    let y = cpu::forward(&m, &Matrix::from_rows(&[vec![1.0, 1.0]]).unwrap()).unwrap();
    assert_eq!(y.as_slice(), [3.5, 0.0, 11.0]);
    assert_eq!(m.modules()[1], Module::Activation(Activation::Relu));
}

#[test]
fn damaged_and_unsupported_files_give_clean_errors() {
    let good = std::fs::read(models().join("seq_ln.legacy.onnx")).unwrap();
    // Damaged: empty, not protobuf, other formats, truncated anywhere.
    let mut damaged: Vec<Vec<u8>> = vec![
        vec![],
        b"not a model".to_vec(),
        std::fs::read(models().join("seq_ln.x.npy")).unwrap(),
        std::fs::read(models().join("seq_ln.safetensors")).unwrap(),
    ];
    for k in 1..20 {
        damaged.push(good[..good.len() * k / 20].to_vec());
    }
    for bytes in &damaged {
        refused(bytes);
    }

    let w = tensor("W", &[2, 2], &[1.0, 0.0, 0.0, 1.0]);
    // An unsupported op: the message names the op, the node, and the supported ops.
    let msg = refused(&model(
        vec![node("Conv", "/features/conv1/Conv", &["x", "W"], &["y"])],
        vec![w.clone()],
        vec![value("x", 2)],
        vec![value("y", 2)],
    ));
    assert!(
        msg.contains("'Conv'") && msg.contains("/features/conv1/Conv"),
        "{msg}"
    );
    for op in onnx::supported_ops() {
        assert!(msg.contains(op), "{op} missing from: {msg}");
    }
    // Two inputs.
    let gemm = node("Gemm", "/fc/Gemm", &["x", "W"], &["y"]);
    let msg = refused(&model(
        vec![gemm.clone()],
        vec![w.clone()],
        vec![value("x", 2), value("x2", 2)],
        vec![value("y", 2)],
    ));
    assert!(msg.contains("2 inputs"), "{msg}");
    // Weights in external data.
    let external = Pb::default()
        .int(1, 2)
        .int(1, 2)
        .int(2, 1)
        .str(8, "W")
        .msg(13, Pb::default().str(1, "location").str(2, "w.bin"))
        .int(14, 1);
    let msg = refused(&model(
        vec![gemm.clone()],
        vec![external],
        vec![value("x", 2)],
        vec![value("y", 2)],
    ));
    assert!(msg.contains("external_data=False"), "{msg}");
    // A missing initializer.
    let msg = refused(&model(
        vec![gemm],
        vec![],
        vec![value("x", 2)],
        vec![value("y", 2)],
    ));
    assert!(
        msg.contains("'W'") && msg.contains("missing initializer"),
        "{msg}"
    );
    // A residual connection is not a chain.
    let msg = refused(&model(
        vec![
            node("Gemm", "/a/Gemm", &["x", "W"], &["h"]),
            node("Gemm", "/b/Gemm", &["h", "W"], &["h2"]),
            node("Add", "/Add", &["h2", "h"], &["y"]),
        ],
        vec![w],
        vec![value("x", 2)],
        vec![value("y", 2)],
    ));
    assert!(msg.contains("not a chain"), "{msg}");
    // A missing file is an I/O error with its path.
    assert!(matches!(
        onnx::load(models().join("missing.onnx")),
        Err(Error::Io { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Fuzzing.

fn seed_files() -> Vec<Vec<u8>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(models())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// `Ok(true)`: a model whose CPU forward pass and summary ran; `Ok(false)`: a Format error
/// naming the source; `Err`: a panic or another error.
fn check(bytes: &[u8]) -> Result<bool, String> {
    let run = std::panic::catch_unwind(|| match onnx::from_bytes(bytes, "fuzz") {
        Ok(m) => {
            let n = m.in_features();
            let x = Matrix::new(2, n, (0..2 * n).map(|i| (i % 7) as f32 - 3.0).collect())
                .map_err(|e| e.to_string())?;
            let y = cpu::forward(&m, &x).map_err(|e| format!("forward: {e}"))?;
            if y.cols() != m.out_features() {
                return Err("output width is not out_features".into());
            }
            summary::summary(&m, -1);
            Ok(true)
        }
        Err(Error::Format { path, msg }) if path == "fuzz" && !msg.is_empty() => Ok(false),
        Err(e) => Err(format!("not a Format error naming the source: {e:?}")),
    });
    run.unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panicked: {msg}"))
    })
}

#[test]
fn found_inputs_stay_fixed() {
    for h in FOUND {
        let bytes: Vec<u8> = (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        if let Err(why) = check(&bytes) {
            panic!("{h}: {why}");
        }
    }
}

#[test]
fn fuzz_onnx() {
    let iters: usize = std::env::var("ONNX_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("ONNX_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0a0a_0002);
    let seeds = Seeds::new(seed_files());
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    for s in seeds.files() {
        assert_eq!(check(s), Ok(true), "a seed must load");
    }
    let (mut ok, mut err) = (0usize, 0usize);
    let mut failures = Vec::new();
    for _ in 0..iters {
        let bytes = seeds.mutant(&mut rng);
        match check(&bytes) {
            Ok(true) => ok += 1,
            Ok(false) => err += 1,
            Err(why) if failures.len() < 5 => failures.push((bytes, why)),
            Err(_) => {}
        }
    }
    println!(
        "fuzz onnx: {iters} mutants of {} seeds (seed {seed:#x}) in {:.2?}: {ok} loaded and ran, \
         {err} refused with a Format error, {} failures",
        seeds.files().len(),
        start.elapsed(),
        failures.len()
    );
    for (bytes, why) in &failures {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!("{why}\n{hex}");
    }
    assert!(failures.is_empty());
    assert!(ok > 0 && err > 0, "the mutations must reach both outcomes");
}
