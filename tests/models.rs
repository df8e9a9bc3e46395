//! Real PyTorch MLPs (`tests/data/models`, exported by `make_models.py` with PyTorch 2.15: norms,
//! dropout, every activation, named and nested modules, functional activations, wrapped
//! state_dicts) loaded from their safetensors files: self-describing (`wgpu_mlp.arch` metadata)
//! with no other input, and bare with the architecture given as `--arch` would. Outputs match
//! PyTorch's float64 forward within rtol 1e-4, atol 1e-5 on the CPU reference and on the GPU
//! (fused and separate kernels); summaries match torchsummary character for character. The
//! same models exported to ONNX by both exporters run on the GPU too (`tests/onnx.rs` checks
//! their import and the CPU reference).

mod common;

use serde_json::Value;
use wgpu_mlp::gpu::{GpuMlp, KernelMode};
use wgpu_mlp::io::{npy, safetensors as st};
use wgpu_mlp::{Arch, Matrix, Mlp, cpu, summary};

const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-5;

fn path(name: &str) -> String {
    format!("{}/tests/data/models/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The fixtures: (name, arch, names, input, PyTorch's float64 output, torchsummary's text).
struct Case {
    name: String,
    arch: Arch,
    names: Option<Vec<String>>,
    x: Matrix,
    y64: Vec<f64>,
    summary: String,
}

fn cases() -> Vec<Case> {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(path("manifest.json")).unwrap()).unwrap();
    manifest
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            !c["name"]
                .as_str()
                .unwrap()
                .starts_with("nested_functional_")
        })
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_string();
            Case {
                arch: c["arch"].as_str().unwrap().parse().unwrap(),
                names: c["names"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.split(',').map(str::to_string).collect()),
                x: npy::read(path(&format!("{name}.x.npy"))).unwrap(),
                y64: npy::read_f64(path(&format!("{name}.y64.npy")))
                    .unwrap()
                    .data,
                summary: std::fs::read_to_string(path(&format!("{name}.summary.txt"))).unwrap(),
                name,
            }
        })
        .collect()
}

/// `m` on `x` matches PyTorch's float64 output `y64` on the CPU reference, the fast CPU path and
/// the GPU.
fn matches_on_every_path(m: &Mlp, x: &Matrix, y64: &[f64], what: &str) {
    let close = |got: Matrix, path: &str| {
        common::assert_close(got.as_slice(), y64, RTOL, ATOL, &format!("{what} {path}"))
    };
    close(cpu::forward(m, x).unwrap(), "reference");
    close(cpu::CpuMlp::new(m).unwrap().forward(x).unwrap(), "fast CPU");
    close(
        GpuMlp::new(common::ctx(), m).unwrap().forward(x).unwrap(),
        "GPU",
    );
}

fn check(got: &[f32], case: &Case, what: &str) {
    common::assert_close(got, &case.y64, RTOL, ATOL, &format!("{} {what}", case.name));
}

#[test]
fn self_describing_files_need_nothing_else() {
    let cases = cases();
    assert_eq!(cases.len(), 13);
    for case in &cases {
        let m = st::load(path(&format!("{}.meta.safetensors", case.name)), None, None).unwrap();
        check(
            cpu::forward(&m, &case.x).unwrap().as_slice(),
            case,
            "reference",
        );
        assert_eq!(
            summary::summary(&m, -1),
            case.summary,
            "{} summary",
            case.name
        );
        // The same file written back by the crate loads to the same model.
        let again = st::from_bytes(&st::model_to_bytes(&m).unwrap(), "mem", None, None).unwrap();
        assert_eq!(again, m, "{}: save and load", case.name);
    }
}

#[test]
fn bare_state_dicts_load_with_the_architecture() {
    for case in cases() {
        let bare = path(&format!("{}.safetensors", case.name));
        let m = st::load(&bare, Some(&case.arch), case.names.as_deref()).unwrap();
        let meta = st::load(path(&format!("{}.meta.safetensors", case.name)), None, None).unwrap();
        assert_eq!(m, meta, "{}", case.name);
        // Without an architecture the file is refused, and the message says what to pass.
        let e = st::load(&bare, None, None).unwrap_err().to_string();
        assert!(
            e.contains("--arch") && e.contains("--act"),
            "{}: {e}",
            case.name
        );
    }
}

#[test]
fn wrapped_state_dicts_load_like_the_model_they_wrap() {
    let arch: Arch = "linear,relu,linear,F.tanh,linear".parse().unwrap();
    let plain = st::load(
        path("nested_functional.safetensors"),
        Some(&arch),
        Some(&["net.0", "net.2", "head"].map(String::from)),
    )
    .unwrap();
    for wrapper in ["compiled", "dataparallel"] {
        let file = path(&format!("nested_functional_{wrapper}.safetensors"));
        // Names as the model has them, or as the wrapped state_dict spells them.
        for names in [
            ["net.0", "net.2", "head"],
            ["_orig_mod.net.0", "_orig_mod.net.2", "_orig_mod.head"],
        ] {
            let names = names.map(String::from);
            if wrapper == "dataparallel" && names[0].starts_with('_') {
                continue;
            }
            let m = st::load(&file, Some(&arch), Some(&names)).unwrap();
            assert_eq!(m, plain, "{wrapper} {names:?}");
        }
        let meta = st::load(
            path(&format!("nested_functional_{wrapper}.meta.safetensors")),
            None,
            None,
        )
        .unwrap();
        assert_eq!(meta, plain, "{wrapper} meta");
    }
}

#[test]
fn every_model_runs_on_the_gpu_fused_and_separate() {
    for case in cases() {
        let m = st::load(path(&format!("{}.meta.safetensors", case.name)), None, None).unwrap();
        for mode in [KernelMode::Fused, KernelMode::Separate] {
            let y = common::with_mode(common::ctx(), &m, mode)
                .unwrap()
                .forward(&case.x)
                .unwrap();
            check(y.as_slice(), &case, &format!("GPU {mode:?}"));
        }
        // Without subgroups (the windowed kernel's other x path, no fused softmax).
        let y = GpuMlp::new(common::ctx_without_subgroups(), &m)
            .unwrap()
            .forward(&case.x)
            .unwrap();
        check(y.as_slice(), &case, "GPU without subgroups");
    }
}

#[test]
fn onnx_models_from_both_exporters_run_on_the_gpu() {
    for case in cases() {
        for exporter in ["dynamo", "legacy"] {
            let m = wgpu_mlp::onnx::load(path(&format!("{}.{exporter}.onnx", case.name))).unwrap();
            let y = GpuMlp::new(common::ctx(), &m)
                .unwrap()
                .forward(&case.x)
                .unwrap();
            if (case.name.as_str(), exporter) == ("acts_a", "legacy") {
                // The legacy exporter drops Softplus's threshold (tests/onnx.rs): the file is
                // checked against the CPU reference of the same file, not PyTorch.
                let want = cpu::forward_f64(&m, &case.x).unwrap();
                common::assert_close(y.as_slice(), &want, RTOL, ATOL, "acts_a.legacy GPU");
            } else {
                check(y.as_slice(), &case, &format!("{exporter}.onnx on the GPU"));
            }
        }
    }
}

#[test]
fn layernorm_rows_of_one_and_constant_rows() {
    // LayerNorm over 1 feature and over constant rows: the variance is 0, the output is the bias.
    let ln = |n: usize| {
        Mlp::new(vec![
            wgpu_mlp::Module::Linear(
                wgpu_mlp::Linear::new(2, n, vec![0.0; 2 * n], Some(vec![3.0; n])).unwrap(),
            ),
            wgpu_mlp::Module::LayerNorm(
                wgpu_mlp::LayerNorm::new(n, Some(vec![2.0; n]), Some(vec![-1.0; n]), 1e-5).unwrap(),
            ),
        ])
        .unwrap()
    };
    for n in [1, 7, 4096] {
        let m = ln(n);
        let x = common::input(3, 2, n as u64, 5.0);
        let want = vec![-1.0; 3 * n];
        assert_eq!(
            cpu::forward(&m, &x).unwrap().as_slice(),
            want,
            "reference n={n}"
        );
        let got = GpuMlp::new(common::ctx(), &m).unwrap().forward(&x).unwrap();
        assert_eq!(got.as_slice(), want, "GPU n={n}");
    }
}

/// LayerNorm on hard rows, mixed in one batch: random rows of extreme magnitude (1e-30 to 3e38),
/// constant rows (0.1 to 3e38; the output is the bias, or NaN when eps is 0, as 0 · ∞ in
/// PyTorch) and rows with a large mean and a small spread (1e6 ± 1); widths 1, 3, 7, 24, 33, 768
/// and 4,096; eps 1e-5 and 0; then a Linear to 5 outputs. The GPU (fused and separate) and the
/// fast CPU path agree with the f64 reference within rtol 1e-4, atol 1e-5 (the usual tolerance:
/// the normalised values are O(1)), NaN where it has NaN. On the GPU the sum and the squares
/// used to overflow from about 1e19 up (the bias alone), and an f32 mean's rounding error made
/// constant rows come out as ±0.3 to ±1.
#[test]
fn layernorm_rows_of_extreme_magnitude() {
    for n in [1, 3, 7, 24, 33, 768, 4096] {
        let mut data = Vec::new();
        let scales = [1e-30f32, 1e-3, 1.0, 1e18, 1e19, 1e20, 1e30, 3e38];
        for (i, &scale) in scales.iter().enumerate() {
            // Values within ±1, so that scale · value stays finite at 3e38.
            let row = common::random_vec(n, 10 + i as u64, -1.0, 1.0);
            data.extend(row.iter().map(|v| v * scale));
        }
        let constants = [
            0.1f32, 3.3, -7.5, 1000.1, 12345.678, 1e6, 1e10, 1e20, 1e30, 3e38,
        ];
        for c in constants {
            data.extend(std::iter::repeat_n(c, n));
        }
        for (i, mean) in [1e6f32, 12345.678].into_iter().enumerate() {
            let spread = common::random_vec(n, 30 + i as u64, -1.0, 1.0);
            data.extend(spread.iter().map(|v| mean + v));
        }
        let x = Matrix::new(data.len() / n, n, data).unwrap();
        for eps in [1e-5, 0.0] {
            let weight = common::random_vec(n, 3, 0.5, 2.0);
            let bias = common::random_vec(n, 4, -1.0, 1.0);
            // A Linear after it (a network needs one) mixes the normalised values into 5 outputs.
            let m = Mlp::new(vec![
                wgpu_mlp::Module::LayerNorm(
                    wgpu_mlp::LayerNorm::new(n, Some(weight), Some(bias), eps).unwrap(),
                ),
                wgpu_mlp::Module::Linear(
                    wgpu_mlp::Linear::new(n, 5, common::random_vec(5 * n, 5, -1.0, 1.0), None)
                        .unwrap(),
                ),
            ])
            .unwrap();
            let want = cpu::forward_f64(&m, &x).unwrap();
            let what = |w: &str| format!("LayerNorm({n}, eps {eps}) {w}");
            for mode in [KernelMode::Fused, KernelMode::Separate] {
                let y = common::with_mode(common::ctx(), &m, mode)
                    .unwrap()
                    .forward(&x)
                    .unwrap();
                let path = format!("GPU {mode:?}");
                common::assert_close(y.as_slice(), &want, RTOL, ATOL, &what(&path));
            }
            let y = cpu::CpuMlp::new(&m).unwrap().forward(&x).unwrap();
            common::assert_close(y.as_slice(), &want, RTOL, ATOL, &what("fast CPU"));
        }
    }
}

/// Bare state_dicts whose LayerNorms own no tensors (`elementwise_affine=False`) beside modules
/// with 1-D weights of the same width (`tests/data/binding`, made by `make_binding.py` with
/// PyTorch 2.15): a bare LayerNorm before a PReLU(C), before an affine LayerNorm, and inside
/// nested blocks named `lin`, `norm`, `act`. The reading of the file that fits (an
/// nn.Sequential's indices settle a tie) runs like PyTorch on the CPU reference, the fast CPU
/// path and the GPU; summaries equal torchsummary's. (Each used to bind the PReLU's or the
/// LayerNorm's tensors to the bare LayerNorm: wrong numbers, exit 0.)
#[test]
fn layernorms_without_tensors_bind_where_the_file_says() {
    let dir = |name: &str| format!("{}/tests/data/binding/{name}", env!("CARGO_MANIFEST_DIR"));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir("manifest.json")).unwrap()).unwrap();
    let cases = manifest.as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let arch: Arch = c["arch"].as_str().unwrap().parse().unwrap();
        let names: Option<Vec<String>> = c["names"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(str::to_string).collect());
        let x = npy::read(dir(&format!("{name}.x.npy"))).unwrap();
        let y64 = npy::read_f64(dir(&format!("{name}.y64.npy"))).unwrap().data;
        let m = st::load(
            dir(&format!("{name}.safetensors")),
            Some(&arch),
            names.as_deref(),
        )
        .unwrap();
        matches_on_every_path(&m, &x, &y64, name);
        // torchsummary also lists a custom container (`Block`) as a row of its own, which no
        // state_dict records: the nested case's summary is not compared.
        if name != "nested_blocks" {
            let want = std::fs::read_to_string(dir(&format!("{name}.summary.txt"))).unwrap();
            assert_eq!(summary::summary(&m, -1), want, "{name} summary");
        }
    }
    // Without indices in the names nothing settles which LayerNorm is the bare one: an error that
    // says how to say it, and '-' in the names says it.
    let bytes = std::fs::read(dir("bare_ln_then_ln.safetensors")).unwrap();
    let header_len = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..header_len].to_vec())
        .unwrap()
        .replace("\"0.", "\"p.")
        .replace("\"2.", "\"q.")
        .replace("\"3.", "\"r.");
    let renamed = common::raw_st(&header, &bytes[header_len..]);
    let arch: Arch = "linear,layernorm,layernorm,linear".parse().unwrap();
    let e = st::from_bytes(&renamed, "renamed", Some(&arch), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ambiguous") && e.contains("'-'"), "{e}");
    let names: Vec<String> = ["p", "-", "q", "r"].map(String::from).to_vec();
    let m = st::from_bytes(&renamed, "renamed", Some(&arch), Some(&names)).unwrap();
    let x = npy::read(dir("bare_ln_then_ln.x.npy")).unwrap();
    let y64 = npy::read_f64(dir("bare_ln_then_ln.y64.npy")).unwrap().data;
    common::assert_close(
        cpu::forward(&m, &x).unwrap().as_slice(),
        &y64,
        RTOL,
        ATOL,
        "'-' in the names",
    );
    // '-' stands only for a LayerNorm.
    let names: Vec<String> = ["-", "p", "q", "r"].map(String::from).to_vec();
    let e = st::from_bytes(&renamed, "renamed", Some(&arch), Some(&names))
        .unwrap_err()
        .to_string();
    assert!(e.contains("'-'"), "{e}");
}

/// CELU from both exporters (`tests/data/celu`, made by `make_celu.py` with PyTorch 2.15: a
/// `Celu` node each, from `nn.CELU(0.5)` and from `F.celu(alpha=0.7)` in `forward()`): the
/// reference, the fast CPU path and the GPU against PyTorch's float64 forward. (The importer
/// refused `Celu` although `--arch` had `celu`.)
#[test]
fn celu_from_both_exporters() {
    let dir = |name: &str| format!("{}/tests/data/celu/{name}", env!("CARGO_MANIFEST_DIR"));
    let x = npy::read(dir("celu.x.npy")).unwrap();
    let y64 = npy::read_f64(dir("celu.y64.npy")).unwrap().data;
    for exporter in ["dynamo", "legacy"] {
        let m = wgpu_mlp::onnx::load(dir(&format!("celu.{exporter}.onnx"))).unwrap();
        let celu: Vec<String> = m.modules().iter().map(|m| format!("{m:?}")).collect();
        assert!(
            celu.iter().filter(|m| m.contains("Celu(0.5)")).count() == 1
                && celu.iter().filter(|m| m.contains("Celu(0.7)")).count() == 1,
            "{exporter}: {celu:?}"
        );
        matches_on_every_path(&m, &x, &y64, exporter);
    }
}

/// A chain of 100 elementwise modules between two Linear layers (tanh, leaky ReLU, ELU,
/// BatchNorm, in turn), split into epilogues of at most 64 nodes: the GPU (fused and separate)
/// and the fast CPU path agree with the f64 reference. (Unsplit, such chains were built in
/// quadratic time and compiled into one enormous shader.)
#[test]
fn long_elementwise_chains_run_on_every_path() {
    use wgpu_mlp::{Activation, BatchNorm1d, Linear, Module};
    let mut modules = vec![Module::Linear(
        Linear::new(5, 7, common::random_vec(35, 1, -1.0, 1.0), None).unwrap(),
    )];
    for i in 0..100 {
        modules.push(match i % 4 {
            0 => Module::Activation(Activation::Tanh),
            1 => Module::Activation(Activation::LeakyRelu(0.1)),
            2 => Module::Function(Activation::Elu(0.5)),
            _ => Module::BatchNorm1d(BatchNorm1d::default_init(7)),
        });
    }
    modules.push(Module::Linear(
        Linear::new(7, 3, common::random_vec(21, 2, -1.0, 1.0), None).unwrap(),
    ));
    let m = Mlp::new(modules).unwrap();
    let x = common::input(33, 5, 3, 3.0);
    let want = cpu::forward_f64(&m, &x).unwrap();
    for mode in [KernelMode::Fused, KernelMode::Separate] {
        let y = common::with_mode(common::ctx(), &m, mode)
            .unwrap()
            .forward(&x)
            .unwrap();
        common::assert_close(y.as_slice(), &want, RTOL, ATOL, &format!("GPU {mode:?}"));
    }
    let y = cpu::CpuMlp::new(&m).unwrap().forward(&x).unwrap();
    common::assert_close(y.as_slice(), &want, RTOL, ATOL, "fast CPU");
}
