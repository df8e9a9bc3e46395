//! Every activation, softmax and log-softmax at PyTorch's edge inputs (0, ±1e-45, ±1e-10, ±1e-7,
//! ±1e-3, the breakpoints, exp overflow, ±3e38, ±inf, NaN), against what real PyTorch returned
//! (`tests/data/activations/edge_values.json`, made by PyTorch 2.15; see its README): the CPU
//! reference, the fast f32 path of the epilogues, and the GPU kernel.
//!
//! The rule for a result `got` at input `x`: it matches PyTorch's float64 value, or PyTorch's
//! float32 value, within the tolerance of f32 arithmetic (relative 4e-6: a few f32 roundings, the
//! input's own rounding to f32, and the GPU's exp/log accuracy). The float32 value counts
//! because it is what a user running the same model in PyTorch sees, overflows and cancellations
//! included (gelu(+inf) is NaN in float32, hardswish(3e38) is +inf, log_softmax of a row led by a
//! value 100 above the rest loses digits in 1 + e⁻¹⁰⁰⁺…). Results below f32's smallest normal may be flushed to zero (WGSL allows it). NaN only
//! matches NaN; an infinity only an infinity of its sign. Relative accuracy near 0 is required:
//! tanh(−1e−10) must be −1e−10, elu:0.5(−1e−6)-like values −5e−7.

mod common;

use serde_json::Value;
use wgpu_mlp::gpu::ops;
use wgpu_mlp::{Activation, Expr, Matrix, Module, PRelu};

const RTOL: f64 = 4e-6;
const FLT_MIN: f64 = 1.1754943508222875e-38;

fn f32_of(v: &Value) -> f32 {
    let hex = v[0].as_str().unwrap();
    f32::from_bits(u32::from_str_radix(&hex[2..], 16).unwrap())
}

fn f64_of(v: &Value) -> f64 {
    let hex = v[0].as_str().unwrap();
    f64::from_bits(u64::from_str_radix(&hex[2..], 16).unwrap())
}

fn list<T>(v: &Value, f: fn(&Value) -> T) -> Vec<T> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn data() -> Value {
    let text = include_str!("data/activations/edge_values.json");
    serde_json::from_str(text).unwrap()
}

/// Whether `got` matches PyTorch (`t64` its float64 result at `x`, `t32` its float32 result), by
/// the rule in the module docs.
fn matches(x: f64, got: f64, t64: f64, t32: f64) -> bool {
    let close = |want: f64| {
        if want.is_nan() {
            return got.is_nan();
        }
        if want.is_infinite() {
            return got == want;
        }
        if got.is_nan() || got.is_infinite() {
            return false;
        }
        // Relative, plus an absolute 1e-12 of the input's scale: PyTorch's own float64 GELU
        // cancels to 0 in its far tail (gelu(−10) = −7.6e-23 exactly, PyTorch −0), where a more
        // accurate kernel may keep the tiny value.
        let tol = RTOL * want.abs()
            + if want.abs() < FLT_MIN { FLT_MIN } else { 0.0 }
            + 1e-12 * x.abs().clamp(1.0, 1e30);
        (got - want).abs() <= tol
    };
    close(t64) || close(t32)
}

/// Checks a list of results; `what` names the path.
fn check(what: &str, id: &str, xs: &[f32], got: &[f32], t64: &[f64], t32: &[f32]) {
    let mut bad = Vec::new();
    for i in 0..got.len() {
        if !matches(
            f64::from(xs[i]),
            f64::from(got[i]),
            t64[i],
            f64::from(t32[i]),
        ) {
            bad.push(format!(
                "x = {:e}: got {:e}, PyTorch f64 {:e}, f32 {:e}",
                xs[i], got[i], t64[i], t32[i]
            ));
        }
    }
    assert!(bad.is_empty(), "{what} {id}:\n{}", bad.join("\n"));
}

/// The module an entry describes.
fn module_of(entry: &Value) -> Module {
    let token = entry["token"].as_str().unwrap();
    if token == "prelu" {
        let w = entry["prelu_weight"].as_f64().unwrap() as f32;
        return Module::PRelu(PRelu::new(vec![w]).unwrap());
    }
    Module::Activation(token.parse::<Activation>().unwrap())
}

/// The inputs at which float32 and float64 agree on what the input is (±1e300 is ±inf in f32).
fn usable(x32: f32, x64: f64) -> bool {
    x32.is_nan() == x64.is_nan() && x32.is_infinite() == x64.is_infinite()
}

#[test]
fn every_activation_matches_pytorch_at_its_edges_on_cpu_and_gpu() {
    let d = data();
    let x32_all = list(&d["inputs"]["f32"], f32_of);
    let x64_all = list(&d["inputs"]["f64"], f64_of);
    let keep: Vec<usize> = (0..x32_all.len())
        .filter(|&i| usable(x32_all[i], x64_all[i]))
        .collect();
    let xs: Vec<f32> = keep.iter().map(|&i| x32_all[i]).collect();
    let x = Matrix::new(1, xs.len(), xs.clone()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for entry in d["activations"].as_array().unwrap() {
        let id = entry["id"].as_str().unwrap();
        seen.insert(entry["token"].as_str().unwrap().split(':').next().unwrap());
        let t64_all = list(&entry["f64"], f64_of);
        let t32_all = list(&entry["f32"], f32_of);
        let t64: Vec<f64> = keep.iter().map(|&i| t64_all[i]).collect();
        let t32: Vec<f32> = keep.iter().map(|&i| t32_all[i]).collect();
        let module = module_of(entry);
        let expr = module.elementwise().unwrap();

        // The CPU reference: each value in f64 from the f32 input, rounded to f32.
        let reference: Vec<f32> = xs
            .iter()
            .enumerate()
            .map(|(i, &v)| expr.eval(v, i))
            .collect();
        check("reference", id, &xs, &reference, &t64, &t32);
        // The fast CPU path's f32 evaluation of the same expression.
        let mut fast = xs.clone();
        expr.apply_rows_f32(&mut fast, xs.len(), &mut Vec::new());
        check("fast f32", id, &xs, &fast, &t64, &t32);
        // The GPU's elementwise kernel.
        let gpu = ops::elementwise(common::ctx(), &x, &expr).unwrap();
        check("GPU", id, &xs, gpu.as_slice(), &t64, &t32);
    }
    // Every elementwise activation the crate has is in the file (the row ones have their own
    // test below): a new one without PyTorch's edge values fails here.
    for a in Activation::ALL {
        let name = a.spec().name;
        if !matches!(name, "identity" | "softmax" | "log_softmax") {
            assert!(
                seen.contains(name),
                "{name} has no PyTorch edge values in the file"
            );
        }
    }
}

#[test]
fn the_reference_f64_formulas_are_pytorchs() {
    // In float64 the crate's formulas agree with PyTorch's to a few ulps on every input.
    let d = data();
    let xs = list(&d["inputs"]["f64"], f64_of);
    for entry in d["activations"].as_array().unwrap() {
        let Module::Activation(act) = module_of(entry) else {
            continue;
        };
        let want = list(&entry["f64"], f64_of);
        for (x, w) in xs.iter().zip(&want) {
            let got = act.apply_f64(*x);
            let ok = if w.is_nan() {
                got.is_nan()
            } else if w.is_infinite() {
                got == *w
            } else {
                (got - w).abs() <= 1e-13 * w.abs() + 1e-300
            };
            assert!(ok, "{act} at {x:e}: got {got:e}, PyTorch {w:e}");
        }
    }
}

#[test]
fn softmax_and_log_softmax_rows_match_pytorch() {
    let d = data();
    for (n, entry) in d["softmax"].as_array().unwrap().iter().enumerate() {
        let act = match entry["op"].as_str().unwrap() {
            "softmax" => Activation::Softmax,
            _ => Activation::LogSoftmax,
        };
        let x32 = list(&entry["in_f32"], f32_of);
        let x64 = list(&entry["in_f64"], f64_of);
        if !x32.iter().zip(&x64).all(|(a, b)| usable(*a, *b)) {
            continue;
        }
        let t64 = list(&entry["f64"], f64_of);
        let t32 = list(&entry["f32"], f32_of);
        let x = Matrix::new(1, x32.len(), x32.clone()).unwrap();
        // The reference's row function, as the CPU reference runs it (f64, rounded to f32).
        let mut r: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
        if act == Activation::Softmax {
            wgpu_mlp::activation::softmax_row_f64(&mut r);
        } else {
            wgpu_mlp::activation::log_softmax_row_f64(&mut r);
        }
        let reference: Vec<f32> = r.iter().map(|&v| v as f32).collect();
        check(
            "reference",
            &format!("{act} row {n}"),
            &x32,
            &reference,
            &t64,
            &t32,
        );
        let gpu = ops::activation(common::ctx(), &x, act).unwrap();
        check(
            "GPU row kernel",
            &format!("{act} row {n}"),
            &x32,
            gpu.as_slice(),
            &t64,
            &t32,
        );
        // Fused into the Linear kernel where the row fits a subgroup (through an identity layer,
        // so only rows without infinities: inf · 0 would be NaN before the softmax).
        if x32.iter().all(|v| v.is_finite()) {
            let model = wgpu_mlp::Mlp::new(vec![
                Module::Linear(identity(x32.len())),
                Module::Activation(act),
            ])
            .unwrap();
            let fused = wgpu_mlp::gpu::GpuMlp::new(common::ctx(), &model)
                .unwrap()
                .forward(&x)
                .unwrap();
            check(
                "GPU fused",
                &format!("{act} row {n}"),
                &x32,
                fused.as_slice(),
                &t64,
                &t32,
            );
        }
    }
}

/// Linear(n, n) with the identity weight and no bias.
fn identity(n: usize) -> wgpu_mlp::Linear {
    let mut w = vec![0.0; n * n];
    for i in 0..n {
        w[i * n + i] = 1.0;
    }
    wgpu_mlp::Linear::new(n, n, w, None).unwrap()
}

#[test]
fn expressions_compose_like_the_modules_they_come_from() {
    // A chain of activations as one epilogue equals the modules one after another.
    let e = Expr::activation(Activation::Mish).unwrap().then(
        &Expr::activation(Activation::Hardtanh {
            min: -0.5,
            max: 0.7,
        })
        .unwrap(),
    );
    for x in [-3.0f32, -1e-7, 0.0, 0.2, 4.0] {
        let direct = Activation::Hardtanh {
            min: -0.5,
            max: 0.7,
        }
        .apply_f64(f64::from(Activation::Mish.apply_f64(f64::from(x)) as f32))
            as f32;
        assert_eq!(e.eval(x, 0), direct, "{x}");
    }
}
