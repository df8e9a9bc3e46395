//! ONNX import (`wgpu_mlp::onnx`), end to end through the public API: the PyTorch fixtures of
//! `tests/data/models` (13 models × the dynamo and legacy exporters) against PyTorch's float64
//! forward, torchsummary's tables and the PyTorch modules, and a seeded protobuf-aware mutation
//! fuzz of the fixtures. `tests/onnx_ops.rs` covers each op's semantics on hand-built graphs,
//! `tests/onnx_errors.rs` every class of damaged or unsupported file.
//!
//! `ONNX_FUZZ_ITERS` sets the number of mutants of each fuzz test (defaults 20,000 and 3,000),
//! `ONNX_FUZZ_SEED` the seed, `ONNX_FUZZ_VERBOSE` lists the kinds of error message. A failing
//! input is printed as hex; add it to `FOUND` so it stays tested. `fuzz/` has the cargo-fuzz
//! target for longer runs by hand.

#[path = "common/onnx/mod.rs"]
mod helpers;

use std::collections::HashMap;
use std::time::Instant;

use helpers::fixtures::{CASES, EXPORTERS, fixture, models, seed_files};
use helpers::mutate::{Rng, Seeds};
use wgpu_mlp::io::{npy, safetensors};
use wgpu_mlp::summary::{self, Row};
use wgpu_mlp::{Activation, Arch, Error, Matrix, Mlp, Module, cpu, onnx};

/// Inputs found by fuzzing that once failed, as hex.
const FOUND: &[&str] = &[];

// ---------------------------------------------------------------------------------------------
// Outputs against PyTorch.

/// The largest `|a − e| / (atol + rtol·|e|)`; NaN in either never passes.
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

fn max_abs(actual: &[f32], expected: &[f64]) -> f64 {
    actual
        .iter()
        .zip(expected)
        .map(|(&a, &e)| (f64::from(a) - e).abs())
        .fold(0.0, f64::max)
}

/// Every fixture's CPU forward pass on its input against PyTorch's float64 output (the shapes
/// must match): `(case, exporter, max |y − y64|, error/tolerance at rtol 1e-4, atol 1e-5)`.
fn fixture_errors() -> Vec<(&'static str, &'static str, f64, f64)> {
    let mut out = Vec::new();
    for case in CASES {
        let x = npy::read(models().join(format!("{case}.x.npy"))).unwrap();
        let y64 = npy::read_f64(models().join(format!("{case}.y64.npy"))).unwrap();
        for exporter in EXPORTERS {
            let y = cpu::forward(&fixture(case, exporter), &x).unwrap();
            assert_eq!(
                [y.rows(), y.cols()],
                [y64.rows, y64.cols],
                "{case}.{exporter}"
            );
            let w = worst(y.as_slice(), &y64.data, 1e-4, 1e-5);
            out.push((case, exporter, max_abs(y.as_slice(), &y64.data), w));
        }
    }
    out
}

#[test]
fn fixtures_match_pytorch_float64_on_the_cpu_reference() {
    for (case, exporter, _, w) in fixture_errors() {
        if (case, exporter) == ("acts_a", "legacy") {
            continue; // The file's own semantics: see the next test.
        }
        assert!(
            w <= 1.0,
            "{case}.{exporter}: {w} × the tolerance (rtol 1e-4, atol 1e-5)"
        );
    }
}

#[test]
fn every_fixture_matches_pytorch_float64() {
    let mut report = String::new();
    for (case, exporter, max, w) in fixture_errors() {
        report +=
            &format!("{case}.{exporter}: max |y − y64| = {max:.2e}, error/tolerance {w:.3}\n");
        if (case, exporter) == ("acts_a", "legacy") {
            continue; // Judged against the file's own semantics below.
        }
        assert!(
            w <= 1.0,
            "{case}.{exporter}: outside rtol 1e-4, atol 1e-5 of PyTorch's float64 output \
             ({w} × the tolerance)"
        );
    }
    println!("{report}");
}

/// `acts_a.legacy.onnx` against an independent computation of what the file computes, as
/// error/tolerance at rtol 1e-5, atol 1e-6, and the model. The legacy exporter drops
/// `Softplus`'s threshold (`Mul(β), Softplus, Div(β)`), so the file computes
/// `ln(1 + e^{βx})/β` everywhere; the independent computation is the state_dict with an arch
/// whose softplus thresholds are out of reach.
fn legacy_softplus_without_threshold() -> (Mlp, f64) {
    let x = npy::read(models().join("acts_a.x.npy")).unwrap();
    let arch: Arch = "linear,hardtanh,linear,hardtanh:-2:3,linear,relu6,linear,softplus:1:1e30,\
                      linear,softplus:2:1e30,linear,mish,linear,hardswish,linear,hardsigmoid,\
                      linear,selu,linear"
        .parse()
        .unwrap();
    let reference =
        safetensors::load(models().join("acts_a.safetensors"), Some(&arch), None).unwrap();
    let want = cpu::forward_f64(&reference, &x).unwrap();
    let model = fixture("acts_a", "legacy");
    let got = cpu::forward(&model, &x).unwrap();
    let w = worst(got.as_slice(), &want, 1e-5, 1e-6);
    (model, w)
}

/// The importer keeps what the file says, not what PyTorch computed.
#[test]
fn legacy_softplus_without_threshold_is_imported_as_the_file_computes_it() {
    let (_, w) = legacy_softplus_without_threshold();
    assert!(w <= 1.0, "{w}");
}

/// `acts_a.legacy.onnx` computes `Softplus(beta=2, threshold=5)` without the threshold, so for
/// 2x > 5 the file gives `ln(1 + e^{2x})/2`, not x: the importer must reproduce the file.
#[test]
fn acts_a_legacy_keeps_the_files_softplus_without_threshold() {
    let (model, w) = legacy_softplus_without_threshold();
    assert!(w <= 1.0, "legacy acts_a vs softplus without threshold: {w}");

    // The module itself: at x = 3 (2x = 6 > 5) the file's softplus is ln(1 + e⁶)/2, the
    // dynamo file's (and PyTorch's) is 3.
    let softplus_2 = |m: &Mlp| match &m.modules()[9] {
        Module::Elementwise { expr, class } => {
            assert_eq!(class.as_deref(), Some("Softplus"));
            expr.eval(3.0, 0)
        }
        other => panic!("module 9 is {other:?}"),
    };
    let file = softplus_2(&model);
    assert!(
        (f64::from(file) - (1.0 + 6f64.exp()).ln() / 2.0).abs() < 1e-6,
        "{file}"
    );
    assert_eq!(softplus_2(&fixture("acts_a", "dynamo")), 3.0);
}

// ---------------------------------------------------------------------------------------------
// Summaries.

/// The rows of a torchsummary table, as (label, row).
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

/// The torchsummary rows each exporter erases, and why: dynamo folds a BatchNorm that follows
/// a Linear into its weights and drops a Flatten of a 2-D input; both drop Dropout and
/// Identity.
const ERASED: &[(&str, &str, &[&str], &str)] = &[
    (
        "seq_bn",
        "dynamo",
        &["BatchNorm1d-2", "Dropout-4"],
        "BatchNorm folded into the Gemm before it; Dropout removed",
    ),
    ("seq_bn", "legacy", &["Dropout-4"], "Dropout removed"),
    (
        "nobias_flatten",
        "dynamo",
        &["Flatten-1", "Identity-4"],
        "Flatten of a 2-D input and Identity removed",
    ),
    (
        "nobias_flatten",
        "legacy",
        &["Identity-4"],
        "Identity removed",
    ),
    (
        "norm_variants",
        "dynamo",
        &["BatchNorm1d-2", "BatchNorm1d-11", "Dropout-12"],
        "both BatchNorms folded into the Gemms before them; Dropout removed",
    ),
    (
        "norm_variants",
        "legacy",
        &["Dropout-12"],
        "Dropout removed",
    ),
];

/// Every fixture's summary: `(case.exporter, ours, torchsummary's, the rows torchsummary has
/// that the graph keeps, in order)`; the last is `None` where the exporter erased none.
fn summaries() -> Vec<(String, Mlp, String, Option<Vec<Row>>)> {
    let mut out = Vec::new();
    for case in CASES {
        let want = std::fs::read_to_string(models().join(format!("{case}.summary.txt"))).unwrap();
        for exporter in EXPORTERS {
            let kept =
                ERASED
                    .iter()
                    .find(|e| (e.0, e.1) == (case, exporter))
                    .map(|(_, _, erased, _)| {
                        parse_rows(&want)
                            .into_iter()
                            .filter(|(label, _)| !erased.contains(&label.as_str()))
                            .map(|(_, r)| r)
                            .collect()
                    });
            let name = format!("{case}.{exporter}");
            out.push((name, fixture(case, exporter), want.clone(), kept));
        }
    }
    out
}

#[test]
fn summaries_match_torchsummary_except_for_erased_modules() {
    let mut exact = 0;
    for (name, model, want, kept) in summaries() {
        match kept {
            None => {
                assert_eq!(summary::summary(&model, -1), want, "{name}");
                exact += 1;
            }
            Some(kept) => assert_eq!(summary::rows(&model), kept, "{name}"),
        }
    }
    assert_eq!(exact, 20);
}

#[test]
fn summaries_match_torchsummary_where_the_graph_keeps_the_modules() {
    let mut matched = Vec::new();
    for (name, model, want, kept) in summaries() {
        let got = summary::summary(&model, -1);
        match kept {
            None => {
                assert_eq!(got, want, "{name}: summary");
                matched.push(name);
            }
            // Every row the graph keeps is there, in order, with its width and parameters.
            Some(rows) => {
                assert_eq!(summary::rows(&model), rows, "{name}: rows");
                assert_ne!(got, want, "{name}");
            }
        }
    }
    assert_eq!(matched.len(), 20, "{matched:?}");
}

// ---------------------------------------------------------------------------------------------
// Modules.

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

#[test]
fn modules_follow_the_pytorch_modules() {
    use Activation as A;
    // Single ops become the PyTorch activation; chains keep their class.
    let legacy = fixture("seq_ln", "legacy");
    let classes: Vec<Option<&str>> = legacy.modules().iter().map(Module::class).collect();
    assert_eq!(
        classes,
        [
            Some("Linear"),
            Some("LayerNorm"),
            Some("GELU"),
            Some("Linear"),
            Some("LayerNorm"),
            Some("GELU"),
            Some("Linear"),
            Some("LogSoftmax")
        ]
    );
    let dynamo = fixture("seq_ln", "dynamo");
    assert_eq!(dynamo.modules()[2], Module::Activation(A::Gelu));
    assert_eq!(dynamo.modules()[5], Module::Activation(A::GeluTanh));
    // Functions at the top of forward() have no row: F.relu, torch.tanh, F.silu, F.softmax.
    let fm = fixture("functional_mix", "dynamo");
    assert_eq!(fm.modules()[1], Module::Function(A::Relu));
    assert_eq!(fm.modules()[7], Module::Function(A::Softmax));
    assert_eq!(
        fixture("nested_functional", "legacy").modules()[3],
        Module::Function(A::Tanh)
    );
    // Legacy Clip(0, 6) is ReLU6; dynamo's HardSigmoid(1/6, 0.5) is nn.Hardsigmoid.
    let acts = fixture("acts_a", "legacy");
    assert_eq!(acts.modules()[5], Module::Activation(A::Relu6));
    assert_eq!(acts.modules()[15], Module::Activation(A::Hardsigmoid));
    // affine=False: the legacy Constant ones/zeros and dynamo's made-up ones are no parameters.
    for exporter in EXPORTERS {
        let nv = fixture("norm_variants", exporter);
        let ln: Vec<_> = nv
            .modules()
            .iter()
            .filter_map(|m| match m {
                Module::LayerNorm(l) => Some((l.weight().is_some(), l.bias().is_some())),
                _ => None,
            })
            .collect();
        assert_eq!(ln, [(false, false), (true, false)], "{exporter}");
    }
    // Legacy MatMul: the transposed weight is the Linear's [out, in] weight.
    let st =
        safetensors::load(models().join("nobias_flatten.meta.safetensors"), None, None).unwrap();
    let onnx = fixture("nobias_flatten", "legacy");
    assert_eq!(
        st.linears().collect::<Vec<_>>(),
        onnx.linears().collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// Fuzzing.

/// A message with numbers and quoted text blanked, so messages can be counted by kind.
fn error_kind(msg: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in msg.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                if quoted {
                    out.push_str("'…'");
                }
            }
            _ if quoted => {}
            '0'..='9' if out.ends_with('N') => {}
            '0'..='9' => out.push('N'),
            c => out.push(c),
        }
    }
    out.chars().take(100).collect()
}

/// One input: `Ok(None)` for a model whose CPU forward pass and summary run, `Ok(Some(message))`
/// for a Format error naming the source; a panic or any other error is `Err`.
fn check(bytes: &[u8]) -> Result<Option<String>, String> {
    let run = std::panic::catch_unwind(|| match onnx::from_bytes(bytes, "fuzz") {
        Ok(m) => {
            let n = m.in_features();
            let x = Matrix::new(2, n, (0..2 * n).map(|i| (i % 7) as f32 - 3.0).collect())
                .map_err(|e| e.to_string())?;
            let y = cpu::forward(&m, &x).map_err(|e| format!("forward failed: {e}"))?;
            if y.cols() != m.out_features() {
                return Err("output width differs from out_features".into());
            }
            summary::summary(&m, -1);
            Ok(None)
        }
        Err(Error::Format { path, msg }) if path == "fuzz" && !msg.is_empty() => Ok(Some(msg)),
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

/// Mutants of the fixtures (`ONNX_FUZZ_ITERS`, else `iters` of them, from `ONNX_FUZZ_SEED`,
/// else `seed`): every one must load and run or be refused with a Format error, and both must
/// happen. The seeds themselves must load.
fn fuzz(iters: usize, seed: u64) {
    fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
        std::env::var(name).ok().and_then(|s| s.parse().ok())
    }
    let iters: usize = env("ONNX_FUZZ_ITERS").unwrap_or(iters);
    let seed: u64 = env("ONNX_FUZZ_SEED").unwrap_or(seed);
    let seeds = Seeds::new(seed_files());
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    for s in seeds.files() {
        assert_eq!(check(s), Ok(None), "a seed must load");
    }
    let (mut ok, mut err) = (0usize, 0usize);
    let mut kinds: HashMap<String, usize> = HashMap::new();
    let mut failures = Vec::new();
    for i in 0..iters {
        let bytes = seeds.mutant(&mut rng);
        match check(&bytes) {
            Ok(None) => ok += 1,
            Ok(Some(msg)) => {
                err += 1;
                *kinds.entry(error_kind(&msg)).or_default() += 1;
            }
            Err(why) if failures.len() < 5 => failures.push((i, bytes, why)),
            Err(_) => {}
        }
    }
    println!(
        "fuzz onnx: {iters} mutants of {} seeds (seed {seed:#x}) in {:.2?}: {ok} loaded and ran, \
         {err} refused with a Format error ({} kinds of message), {} failures",
        seeds.files().len(),
        start.elapsed(),
        kinds.len(),
        failures.len()
    );
    if std::env::var_os("ONNX_FUZZ_VERBOSE").is_some() {
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        for (k, n) in kinds {
            println!("  {n:>7}  {k}");
        }
    }
    for (i, bytes, why) in &failures {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!("input {i} (seed {seed:#x}): {why}\n{hex}");
    }
    assert!(failures.is_empty());
    assert!(ok > 0 && err > 0, "the mutations must reach both outcomes");
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
    fuzz(20_000, 0x0a0a_0002);
}

#[test]
fn fuzz_mutated_files_never_panic() {
    fuzz(3000, 0x0a0a_0001);
}
