//! The PyTorch fixtures of `tests/data/models`: 13 models, each exported by both exporters
//! (`{case}.{exporter}.onnx`), with its input (`{case}.x.npy`), PyTorch's float64 output
//! (`{case}.y64.npy`), torchsummary's table (`{case}.summary.txt`) and state_dict
//! (`{case}.safetensors`).

use std::path::PathBuf;

use wgpu_mlp::{Mlp, onnx};

pub const CASES: [&str; 13] = [
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

pub const EXPORTERS: [&str; 2] = ["dynamo", "legacy"];

/// The folder of the fixtures.
pub fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/models")
}

/// `{case}.{exporter}.onnx`, imported.
pub fn fixture(case: &str, exporter: &str) -> Mlp {
    onnx::load(models().join(format!("{case}.{exporter}.onnx")))
        .unwrap_or_else(|e| panic!("{case}.{exporter}.onnx: {e}"))
}

/// Every `.onnx` file of the fixtures, sorted by name: the seeds of the mutation fuzz here and
/// of `fuzz/corpus/onnx`.
pub fn seed_files() -> Vec<Vec<u8>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(models())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}
