//! ONNX import: an `.onnx` file exported from PyTorch (either exporter) becomes an [`Mlp`].
//!
//! ```no_run
//! let model = wgpu_mlp::onnx::load("model.onnx")?;
//! println!("{}", wgpu_mlp::summary::summary(&model, -1));
//! # Ok::<(), wgpu_mlp::Error>(())
//! ```
//!
//! # What is an MLP graph
//!
//! One float input `[batch, features…]` (the batch axis symbolic or fixed, the others fixed),
//! one output, and between them a chain: every op reads the value the op before produced (an
//! elementwise subgraph may read it several times, e.g. SiLU's `x · sigmoid(x)`), plus
//! constants (initializers and `Constant` nodes, with the weights embedded in the file). A
//! value used again after a later matrix product, a second input or output, weights computed
//! from the input, or an unsupported op is an error naming the node and the reason.
//!
//! # How ops map
//!
//! | ONNX | becomes |
//! | --- | --- |
//! | `Gemm` (transA = 0, either transB) | [`Linear`](crate::Linear); α = β = 1 exactly, other α, β in the epilogue expression (scaling weights would round them) |
//! | `MatMul` with a constant `[in, out]` | `Linear` without bias; a following `Add` of a per-feature constant in the same scope is its bias |
//! | `BatchNormalization` (eval) | [`BatchNorm1d`](crate::BatchNorm1d) |
//! | `LayerNormalization` (last axis) | [`LayerNorm`](crate::LayerNorm) |
//! | `Softmax`, `LogSoftmax` (axis 1 or −1) | the row activation (a module, or a function at the top of `forward()`) |
//! | `Flatten` (axis 1), `Reshape` to `[batch, F]` | nothing, or `Module::Flatten` for an `nn.Flatten` |
//! | `Identity`, `Dropout` (inference) | nothing, or `Module::Identity` / `Module::Dropout` where the graph keeps the module |
//! | `Relu`, `Sigmoid`, `Tanh`, `LeakyRelu`, `Elu`, `Selu`, `Gelu`, `HardSigmoid`, `HardSwish`, `Softplus`, `Mish`, `Clip` | the PyTorch [`Activation`](crate::Activation) (exact rules below) |
//! | `PRelu` | [`PRelu`](crate::PRelu) (scalar or per-feature slope) |
//! | `Add`, `Sub`, `Mul`, `Div`, `Pow`, `Max`, `Min`, `Sqrt`, `Exp`, `Log`, `Erf`, `Neg`, `Abs`, `Reciprocal`, `Greater`, `Less`, `Where` | nodes of an [`Expr`](crate::Expr) |
//!
//! Every elementwise node between two structural ops joins one expression DAG; it is split
//! into modules by the PyTorch module each node came from (so the legacy exporter's erf chain
//! of an `nn.GELU` is one `GELU` module), each module an [`Expr`](crate::Expr) the GPU fuses
//! into the epilogue of the kernel before it and the CPU reference evaluates node by node in
//! f64. Elementwise ops on constants alone are folded at import.
//!
//! # Summary rows
//!
//! Modules are named after the PyTorch module their nodes came from, so
//! [`summary`](crate::summary::summary) prints what torchsummary printed for the original
//! model wherever the graph still holds those modules: dynamo files record the module path and
//! class of each node (`pkg.torch.onnx.name_scopes`, `class_hierarchy`); legacy files name
//! nodes after the module path (`/net/net.0/Gemm`) and the class is inferred from the ops
//! (`Clip(0, 6)` → `ReLU6`, `Div, Erf, Add, Mul` → `GELU`, `Sigmoid, Mul` → `SiLU`, …). Code
//! in the top `forward()` (`F.relu`, `torch.tanh`) has no row. What the exporters erase cannot
//! come back: both drop `Dropout` and `Identity`, dynamo drops a 2-D `Flatten` and folds a
//! `BatchNorm1d` that follows a `Linear` into that Linear's weights.
//!
//! # The two PyTorch exporters
//!
//! See `docs/ONNX.md` for the export commands and pitfalls. In short: `dynamo=True` (opset
//! 18+) keeps module metadata, writes `Gelu`, `Mish` as single ops and scalars as
//! initializers, and folds BatchNorm after a Linear; the legacy exporter (`dynamo=False`)
//! writes GELU and Mish as chains of primitive ops, scalars as `Constant` nodes, a bias-free
//! `Linear` as `MatMul` with a transposed weight, and drops `Softplus`'s threshold (the file
//! computes `ln(1 + e^{βx})/β` everywhere, which this importer reproduces as written).
//!
//! # Limits
//!
//! Files are capped at [`MAX_FILE_BYTES`] (protobuf's own 2 GiB limit), [`MAX_NODES`] nodes,
//! [`MAX_TENSOR_ELEMENTS`] elements and [`MAX_RANK`] dimensions per tensor; decoding is refused
//! before anything is allocated when the decoded structures would need more than
//! [`MAX_DECODED_BYTES`] beyond the file (protobuf lets a few bytes declare a large empty
//! message). The declared messages do not nest recursively (subgraphs of `If`/`Loop` are
//! skipped unread, and those ops are unsupported), so decoding depth is bounded by the schema.
//! Weights stored outside the file (`external_data`, `model.onnx.data`) are read by [`load`]
//! from the `.onnx` file's folder only, and by [`from_bytes_with_data`] from bytes in memory;
//! the bytes read never exceed the data files' size. Parsing uses `prost` on hand-declared messages (the subset of `onnx.proto`
//! an MLP needs; unknown fields are skipped).
//!
//! # Exact semantics of the activation ops
//!
//! - `Softplus` is `ln(1 + eˣ)` with no threshold. It becomes PyTorch's softplus with β = 1 and
//!   threshold 20: above 20, `ln(1 + eˣ) − x < 2.1e-9`, below half an f32 ulp of x, so both
//!   round to the same f32 for every input. A `Softplus(beta, threshold)` module is the
//!   subgraph the exporter wrote (dynamo: `Mul, Softplus, Div, Greater, Where`; legacy: the
//!   same without the threshold, reproduced as the file says).
//! - `HardSigmoid` with α = 1/6 (as f32) and β = 0.5 is `nn.Hardsigmoid`; other values compute
//!   `max(0, min(1, α·x + β))`. `Selu` with the default α, γ (PyTorch's constants as f32) is
//!   `nn.SELU`; other values compute `x > 0 ? γx : γ(αeˣ − α)`.
//! - `Clip` with finite constant scalar bounds `lo ≤ hi` is `nn.Hardtanh(lo, hi)` (`nn.ReLU6`
//!   for 0, 6); otherwise a `max` and a `min` (NaN propagates as in `torch.clamp`).
//! - `LeakyRelu(alpha)`, `Elu(alpha)`, `Gelu(approximate)`, `Relu`, `Sigmoid`, `Tanh`,
//!   `HardSwish`, `Mish` are exactly PyTorch's activations; `PRelu` is `x > 0 ? x : slope·x`.

mod elementwise;
mod external;
mod graph;
mod lower;
mod proto;
mod scope;
mod tensor;

use std::path::Path;

use bytes::Bytes;
use prost::Message;

use crate::error::{Error, Result};
use crate::model::Mlp;
use external::Source;

/// The largest `.onnx` file accepted: protobuf messages cannot exceed 2 GiB (exporters write
/// larger models with external data, whose files this cap does not cover).
pub const MAX_FILE_BYTES: u64 = (1 << 31) - 1;

/// The most nodes a graph may have (an MLP has a handful per layer).
pub const MAX_NODES: usize = 100_000;

/// The most elements one tensor may have (the model's own cap, see
/// [`Mlp::MAX_TENSOR_ELEMENTS`]).
pub const MAX_TENSOR_ELEMENTS: usize = Mlp::MAX_TENSOR_ELEMENTS;

/// The most dimensions a tensor may have.
pub const MAX_RANK: usize = 16;

/// How much memory decoding may take beyond the file itself (the structs of the messages and
/// the strings copied out of it), checked by a scan of the wire format before decoding.
pub const MAX_DECODED_BYTES: usize = 256 << 20;

/// The most values one folded constant (an elementwise op on constants) may have.
pub(crate) const MAX_FOLD_ELEMENTS: usize = 1 << 20;

/// How many values the importer may make beyond twice the file's size: folded constants and
/// per-feature columns broadcast from smaller constants (a `[C]` constant on `[batch, R, C]`
/// data becomes `R·C` values).
pub(crate) const IMPORT_BUDGET: usize = 1 << 24;

/// Reads an `.onnx` file as a model. Weights stored as external data (`model.onnx.data`, as
/// `torch.onnx.export(..., dynamo=True)` writes them by default) are read from the files the
/// model names, which must lie in this file's folder (or below it); a location that is
/// absolute, has `..`, resolves elsewhere through a symbolic link, or a range past the end of
/// its file is an error naming the initializer.
pub fn load(path: impl AsRef<Path>) -> Result<Mlp> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(Error::format(&source, too_large(len)));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    from_buffer(Bytes::from(bytes), &source, &Source::Folder(dir))
}

/// Reads the bytes of an `.onnx` file as a model; `source` names it in error messages. Every
/// failure is an [`Error::Format`] naming `source`. A model with external data is refused here
/// (there is no folder to find it in): use [`load`] or [`from_bytes_with_data`].
pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Mlp> {
    from_buffer(Bytes::copy_from_slice(bytes), source, &Source::None)
}

/// Reads a model whose weights are in external data files already in memory (a web page that
/// was given both files): `data` pairs each file's name, as the model's `location` entries
/// spell it (`"model.onnx.data"`), with its bytes. Locations are checked as [`load`] checks
/// them (relative, no `..`); a location not in `data` or a range past the end of its bytes is
/// an error naming the initializer.
pub fn from_bytes_with_data(bytes: &[u8], source: &str, data: &[(&str, &[u8])]) -> Result<Mlp> {
    from_buffer(Bytes::copy_from_slice(bytes), source, &Source::Memory(data))
}

/// Whether `path` has the `.onnx` extension (case-insensitive): how the CLI tells an ONNX file
/// from a safetensors one.
pub fn is_onnx_path(path: impl AsRef<Path>) -> bool {
    path.as_ref()
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Every ONNX op the importer reads, sorted.
pub fn supported_ops() -> Vec<&'static str> {
    lower::supported_ops()
}

fn too_large(len: u64) -> String {
    format!(
        "the file is {len} bytes; ONNX files (protobuf) are at most {MAX_FILE_BYTES} bytes \
         (larger models keep their weights in external data, a file beside the .onnx)"
    )
}

fn from_buffer(buf: Bytes, source: &str, data: &Source<'_>) -> Result<Mlp> {
    let err = |msg: String| Error::format(source, msg);
    let len = buf.len();
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(err(too_large(buf.len() as u64)));
    }
    if buf.is_empty() {
        return Err(err("the file is empty".into()));
    }
    let scan = proto::scan(&buf)
        .map_err(|e| err(format!("not a valid ONNX file (damaged protobuf: {e})")))?;
    if scan.nodes > MAX_NODES {
        return Err(err(format!(
            "the graph has {} nodes; at most {MAX_NODES} are supported",
            scan.nodes
        )));
    }
    if scan.decoded_bytes > MAX_DECODED_BYTES.saturating_add(buf.len()) {
        return Err(err(format!(
            "decoding would take about {} MiB for a {}-byte file; at most {} MiB beyond the \
             file are allowed (a damaged or crafted file?)",
            scan.decoded_bytes >> 20,
            buf.len(),
            MAX_DECODED_BYTES >> 20
        )));
    }
    let mut model = proto::ModelProto::decode(buf)
        .map_err(|e| err(format!("not a valid ONNX file (damaged protobuf: {e})")))?;
    let Some(graph) = model.graph.as_mut() else {
        return Err(err(
            "not an ONNX model: the file has no graph (field 7 of ModelProto)".into(),
        ));
    };
    let external = external::resolve(&mut graph.initializer, data).map_err(err)?;
    let g = graph::build(&model).map_err(err)?;
    // The importer's own budget grows with the weights it was given, wherever they were stored.
    let weighed = usize::try_from(external).map_or(usize::MAX, |e| len.saturating_add(e));
    lower::lower(&g, weighed).map_err(err)
}
