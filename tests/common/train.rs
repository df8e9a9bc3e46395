//! The training fixtures of `tests/data/train` (made by `make_train.py` with real PyTorch) as
//! Rust values: a case's model, data, loss, optimizer and batch order, and PyTorch's float32 and
//! float64 trajectories.

use std::collections::HashMap;

use serde_json::Value;
use wgpu_mlp::data::EpochOrder;
use wgpu_mlp::model::{TensorValues, Tensors};
use wgpu_mlp::train::{Backend, Loss, Optimizer, Reduction, Target, Trainer};
use wgpu_mlp::{Arch, Matrix, Mlp};

/// A fixture JSON file of `tests/data/train`.
pub fn fixture(name: &str) -> Value {
    let path = super::data("train").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("valid JSON")
}

/// One tensor of a state_dict fixture.
#[derive(Clone, Debug)]
pub struct StTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
    pub count: Option<i64>,
}

/// A state_dict fixture, in PyTorch's order.
pub fn state(v: &Value) -> Vec<(String, StTensor)> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|t| {
            let shape = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let values = t["values"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_f64().unwrap()).collect())
                .unwrap_or_default();
            let name = t["name"].as_str().unwrap().to_string();
            (
                name,
                StTensor {
                    shape,
                    values,
                    count: t["count"].as_i64(),
                },
            )
        })
        .collect()
}

struct Dict(HashMap<String, StTensor>);

impl Tensors for Dict {
    fn keys(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.0.get(key).map(|t| t.shape.clone())
    }
    fn values(&self, key: &str) -> Result<Vec<f32>, String> {
        self.0
            .get(key)
            .map(|t| t.values.iter().map(|&v| v as f32).collect())
            .ok_or_else(|| format!("no {key}"))
    }
}

/// A trajectory case.
pub struct Case {
    pub name: String,
    pub model: Mlp,
    pub x: Matrix,
    pub y: Target,
    pub loss: Loss,
    pub reduction: Reduction,
    pub optim: Optimizer,
    pub order: EpochOrder,
    pub epochs: usize,
    pub losses: Vec<f64>,
    pub losses64: Vec<f64>,
    pub final32: Vec<(String, StTensor)>,
    pub final64: Vec<(String, StTensor)>,
}

fn f(v: &Value, k: &str, default: f64) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(default)
}

/// Every case of `trajectories.json`.
pub fn cases() -> Vec<Case> {
    let all = fixture("trajectories.json");
    all["cases"].as_array().unwrap().iter().map(case).collect()
}

fn case(c: &Value) -> Case {
    let arch: Arch = c["arch"].as_str().unwrap().parse().unwrap();
    let init = state(&c["init"])
        .into_iter()
        .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
        .collect();
    let model = arch.bind(&Dict(init), None).unwrap();
    let (n, n_in, n_out) = (
        c["n"].as_u64().unwrap() as usize,
        c["in"].as_u64().unwrap() as usize,
        c["out"].as_u64().unwrap() as usize,
    );
    let floats = |v: &Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let x = Matrix::new(n, n_in, floats(&c["x"])).unwrap();
    let l = &c["loss"];
    let loss = match l["name"].as_str().unwrap() {
        "mse" => Loss::Mse,
        "l1" => Loss::L1,
        "smooth_l1" => Loss::SmoothL1 {
            beta: f(l, "beta", 1.0),
        },
        "huber" => Loss::Huber {
            delta: f(l, "delta", 1.0),
        },
        "cross_entropy" => Loss::CrossEntropy {
            label_smoothing: f(l, "label_smoothing", 0.0),
        },
        "nll" => Loss::Nll,
        "bce" => Loss::Bce,
        "bce_with_logits" => Loss::BceWithLogits,
        other => panic!("unknown loss {other}"),
    };
    let y = if loss.wants_classes() {
        Target::Classes(
            c["y"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect(),
        )
    } else {
        Target::Values(Matrix::new(n, n_out, floats(&c["y"])).unwrap())
    };
    let reduction = l["reduction"].as_str().unwrap().parse().unwrap();
    let o = &c["optim"];
    let betas = o
        .get("betas")
        .and_then(Value::as_array)
        .map_or((0.9, 0.999), |b| {
            (b[0].as_f64().unwrap(), b[1].as_f64().unwrap())
        });
    let optim = match o["name"].as_str().unwrap() {
        "sgd" => Optimizer::Sgd {
            lr: f(o, "lr", 1e-3),
            momentum: f(o, "momentum", 0.0),
            dampening: f(o, "dampening", 0.0),
            nesterov: o.get("nesterov").and_then(Value::as_bool).unwrap_or(false),
            weight_decay: f(o, "weight_decay", 0.0),
        },
        name => Optimizer::Adam {
            lr: f(o, "lr", 1e-3),
            betas,
            eps: f(o, "eps", 1e-8),
            weight_decay: f(o, "weight_decay", if name == "adamw" { 0.01 } else { 0.0 }),
            amsgrad: o.get("amsgrad").and_then(Value::as_bool).unwrap_or(false),
            decoupled: name == "adamw",
        },
    };
    let order = EpochOrder::new(
        n,
        c["batch_size"].as_u64().unwrap() as usize,
        c["shuffle_seed"].as_u64(),
        c["drop_last"].as_bool().unwrap(),
    )
    .unwrap();
    let list = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    Case {
        name: c["name"].as_str().unwrap().to_string(),
        model,
        x,
        y,
        loss,
        reduction,
        optim,
        order,
        epochs: c["epochs"].as_u64().unwrap() as usize,
        losses: list(&c["losses"]),
        losses64: list(&c["losses64"]),
        final32: state(&c["final"]),
        final64: state(&c["final64"]),
    }
}

/// Trains a case on `backend`: the per-step losses and the trained model.
pub fn run(case: &Case, backend: Backend) -> (Vec<f32>, Mlp) {
    let mut t = Trainer::new(
        case.model.clone(),
        case.loss,
        case.reduction,
        case.optim,
        backend,
    )
    .unwrap();
    let mut order = case.order.clone();
    let mut losses = Vec::new();
    for _ in 0..case.epochs {
        losses.extend(t.epoch(&case.x, &case.y, &mut order).unwrap());
    }
    (losses, t.into_model())
}

/// The raw JSON of the trajectory case `name`.
pub fn case_json(name: &str) -> Value {
    fixture("trajectories.json")["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .clone()
}

/// A state_dict fixture as a plain safetensors file (F32 tensors, the int64 counters as I64,
/// no metadata): what `safetensors.torch.save_file(model.state_dict())` writes.
pub fn state_dict_file(state: &[(String, StTensor)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, t) in state {
        let start = data.len();
        let dtype = match t.count {
            Some(n) => {
                data.extend(n.to_le_bytes());
                "I64"
            }
            None => {
                data.extend(t.values.iter().flat_map(|&v| (v as f32).to_le_bytes()));
                "F32"
            }
        };
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": t.shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut text = serde_json::to_string(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    super::raw_st(&text, &data)
}

/// An int64 `.npy` of `values` (shape `[n]`).
pub fn int_npy(values: &[i64]) -> Vec<u8> {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let header = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}",
        values.len()
    );
    super::npy_file(1, &header, &data)
}

/// A safetensors file's tensors: name → (dtype, shape, values as f64).
pub type StTensors = HashMap<String, (String, Vec<usize>, Vec<f64>)>;

/// The metadata and tensors of a safetensors file.
pub fn read_st(bytes: &[u8]) -> (Value, StTensors) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut out = HashMap::new();
    let mut meta = Value::Null;
    for (k, v) in header {
        if k == "__metadata__" {
            meta = v;
            continue;
        }
        let dtype = v["dtype"].as_str().unwrap().to_string();
        let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).unwrap();
        let off: Vec<usize> = serde_json::from_value(v["data_offsets"].clone()).unwrap();
        let raw = &data[off[0]..off[1]];
        let values = match dtype.as_str() {
            "F32" => raw
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
                .collect(),
            "I64" => vec![i64::from_le_bytes(raw.try_into().unwrap()) as f64],
            d => panic!("dtype {d}"),
        };
        out.insert(k, (dtype, shape, values));
    }
    (meta, out)
}

/// Max |a − b| over two state_dict fixtures' tensor `name`.
pub fn drift(a: &StTensor, b: &StTensor) -> f64 {
    a.values
        .iter()
        .zip(&b.values)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Checks a trajectory (`losses` per step, the trained `model`) against PyTorch's: each step's
/// loss within `k ×` PyTorch's float32-vs-float64 drift so far + 4 ulps, each final tensor
/// within `k ×` its own drift + 8 ulps; `what` names the path in messages.
pub fn check_trajectory(case: &Case, losses: &[f32], model: &Mlp, k: f64, what: &str) {
    assert_eq!(losses.len(), case.losses.len(), "{}: steps", case.name);
    // Losses: per step, within K × the largest drift so far (drift accumulates along a
    // trajectory, and a single step's drift can be 0 by chance).
    let mut worst_drift: f64 = 0.0;
    for (s, ((&ours, &t32), &t64)) in losses
        .iter()
        .zip(&case.losses)
        .zip(&case.losses64)
        .enumerate()
    {
        assert!(ours.is_finite(), "{} step {s}: {ours}", case.name);
        worst_drift = worst_drift.max((t32 - t64).abs());
        let tol = k * worst_drift + 4.0 * f64::from(f32::EPSILON) * t32.abs();
        let err = (f64::from(ours) - t32).abs();
        assert!(
            err <= tol,
            "{} ({what}) step {s}: loss {ours} vs PyTorch {t32} (float64 {t64}): error {err:e} > {tol:e}",
            case.name
        );
    }
    // Final state: each tensor within K × its own drift (+ ulps), names and order as PyTorch's.
    let ours = model.tensors();
    assert_eq!(
        ours.len(),
        case.final32.len(),
        "{}: tensor count",
        case.name
    );
    for (t, ((name, t32), (_, t64))) in ours.iter().zip(case.final32.iter().zip(&case.final64)) {
        assert!(
            name.ends_with(t.kind.name()),
            "{}: {name} vs {}",
            case.name,
            t.kind
        );
        assert_eq!(t.shape, t32.shape, "{} {name}", case.name);
        match t.values {
            TensorValues::Count(n) => assert_eq!(Some(n), t32.count, "{} {name}", case.name),
            TensorValues::F32(v) => {
                let d = drift(t32, t64);
                for (i, (&o, &e)) in v.iter().zip(&t32.values).enumerate() {
                    let tol = k * d + 8.0 * f64::from(f32::EPSILON) * e.abs().max(1e-3);
                    let err = (f64::from(o) - e).abs();
                    assert!(
                        err <= tol,
                        "{} ({what}) {name}[{i}]: {o} vs PyTorch {e}: error {err:e} > {tol:e} \
                         (PyTorch's f32/f64 drift {d:e})",
                        case.name
                    );
                }
            }
        }
    }
}

/// `CrossEntropyLoss()` as PyTorch's default (no label smoothing).
pub fn cross_entropy() -> Loss {
    Loss::CrossEntropy {
        label_smoothing: 0.0,
    }
}
