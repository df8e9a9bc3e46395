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
/// the rule in the module docs. The edge values allow an absolute 1e-12 of the input's scale:
/// PyTorch's own float64 GELU cancels to 0 in its far tail (gelu(−10) = −7.6e-23 exactly,
/// PyTorch −0), where the GPU keeps the tiny value (`gelu_tails_are_pytorchs_on_the_cpu_and_…`).
fn matches(x: f64, got: f64, t64: f64, t32: f64) -> bool {
    matches_within(got, t64, t32, 1e-12 * x.abs().clamp(1.0, 1e30))
}

/// [`matches`] with `extra` as the absolute allowance besides the flush one.
fn matches_within(got: f64, t64: f64, t32: f64, extra: f64) -> bool {
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
        let tol = RTOL * want.abs() + if want.abs() < FLT_MIN { FLT_MIN } else { 0.0 } + extra;
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

// ---------------------------------------------------------------------------------------------
// Issue 24's edges (`tests/data/edges/`, made by `make_edges.py` from PyTorch 2.15): IEEE
// identities through ONNX files of both exporters, pow's special values, softplus at its
// threshold, BatchNorm where its scale is infinite or its mean large, GELU's tail, subnormals.

fn edges() -> Value {
    let text = include_str!("data/edges/edges.json");
    serde_json::from_str(text).unwrap()
}

fn hex32(v: &Value) -> f32 {
    f32::from_bits(u32::from_str_radix(&v.as_str().unwrap()[2..], 16).unwrap())
}

fn hex64(v: &Value) -> f64 {
    f64::from_bits(u64::from_str_radix(&v.as_str().unwrap()[2..], 16).unwrap())
}

fn hexes32(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(hex32).collect()
}

fn hexes64(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(hex64).collect()
}

/// Whether `got` is PyTorch's float32 or float64 value by the rule of the module docs (NaN only
/// for NaN, an infinity only for itself, relative 4e-6, flushed where PyTorch is subnormal),
/// without the GELU-tail allowance.
fn is_pytorchs(got: f32, t32: f32, t64: f64) -> bool {
    matches_within(f64::from(got), t64, f64::from(t32), 0.0)
}

/// [`is_pytorchs`] with a relative tolerance `rtol` instead of 4e-6.
fn is_pytorchs_within(got: f32, t32: f32, t64: f64, rtol: f64) -> bool {
    let g = f64::from(got);
    is_pytorchs(got, t32, t64)
        || [t64, f64::from(t32)]
            .iter()
            .any(|w| w.is_finite() && g.is_finite() && (g - w).abs() <= rtol * w.abs())
}

/// The paths an [`Mlp`](wgpu_mlp::Mlp) runs on: the reference, the fast CPU path, and the GPU
/// with its kernels fused and separate.
fn every_path(m: &wgpu_mlp::Mlp, x: &Matrix) -> Vec<(&'static str, Matrix)> {
    use wgpu_mlp::gpu::KernelMode;
    let gpu = |mode| {
        common::with_mode(common::ctx(), m, mode)
            .unwrap()
            .forward(x)
            .unwrap()
    };
    vec![
        ("reference", wgpu_mlp::cpu::forward(m, x).unwrap()),
        (
            "fast CPU",
            wgpu_mlp::cpu::CpuMlp::new(m).unwrap().forward(x).unwrap(),
        ),
        ("GPU fused", gpu(KernelMode::Fused)),
        ("GPU separate", gpu(KernelMode::Separate)),
    ]
}

#[test]
fn ieee_identities_and_pow_through_onnx_files_of_both_exporters_on_every_path() {
    // Linear(1, 4) then `h - h`, `h + (h - h)`, `h / h`, `h * 0`, `h ** 0.5`, `1 ** h`, …: a
    // compiler that applies a − a = 0 gives 0 where PyTorch gives NaN (h = ±inf or NaN).
    let d = edges();
    let xs = hexes32(&d["x"]);
    let x = Matrix::new(xs.len(), 1, xs.clone()).unwrap();
    // A subnormal input may be flushed to zero on the GPU (WGSL allows it): there the GPU may
    // give PyTorch's value at the zero of the same sign instead (GUARANTEES.md).
    let zero_row = |v: f32| {
        xs.iter()
            .position(|z| *z == 0.0 && z.is_sign_negative() == v.is_sign_negative())
    };
    let cases = d["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 25);
    let mut bad = Vec::new();
    for (name, case) in cases {
        let (t32, t64) = (hexes32(&case["f32"]), hexes64(&case["f64"]));
        for exporter in ["dynamo", "legacy"] {
            let path = common::data(&format!("edges/{name}.{exporter}.onnx"));
            let m =
                wgpu_mlp::onnx::load(&path).unwrap_or_else(|e| panic!("{name}.{exporter}: {e}"));
            for (what, y) in every_path(&m, &x) {
                for (i, &got) in y.as_slice().iter().enumerate() {
                    let (r, c) = (i / 4, i % 4);
                    let mut ok = is_pytorchs(got, t32[i], t64[i]);
                    if !ok && what.starts_with("GPU") && xs[r] != 0.0 && xs[r].abs() < 1.1754944e-38
                    {
                        let z = zero_row(xs[r]).unwrap() * 4 + c;
                        ok = is_pytorchs(got, t32[z], t64[z]);
                    }
                    if !ok {
                        bad.push(format!(
                            "{name}.{exporter} {what}: x = {:e}, column {c}: got {got:e}, PyTorch \
                             f32 {:e}, f64 {:e}",
                            xs[r], t32[i], t64[i]
                        ));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{} wrong:\n{}", bad.len(), bad.join("\n"));
}

/// `Pow(a, b)` as an expression whose exponent is the constant `e`, or whose base is.
fn pow_expr(base: Option<f32>, exponent: Option<f32>) -> Expr {
    use wgpu_mlp::model::expr::{Binary, Node};
    let mut nodes = vec![Node::Input];
    let c = |v| Node::Const(v);
    match (base, exponent) {
        (None, Some(e)) => nodes.extend([c(e), Node::Binary(Binary::Pow, 0, 1)]),
        (Some(b), None) => nodes.extend([c(b), Node::Binary(Binary::Pow, 1, 0)]),
        _ => unreachable!(),
    }
    Expr::from_nodes(nodes).unwrap()
}

/// The expression on the reference, the fast path's f32 evaluation and the GPU's elementwise
/// kernel, at the inputs `xs`.
fn expr_paths(e: &Expr, xs: &[f32]) -> Vec<(&'static str, Vec<f32>)> {
    let reference = xs.iter().enumerate().map(|(i, &v)| e.eval(v, i)).collect();
    let mut fast = xs.to_vec();
    e.apply_rows_f32(&mut fast, xs.len(), &mut Vec::new());
    let x = Matrix::new(1, xs.len(), xs.to_vec()).unwrap();
    let gpu = ops::elementwise(common::ctx(), &x, e)
        .unwrap()
        .as_slice()
        .to_vec();
    vec![("reference", reference), ("fast f32", fast), ("GPU", gpu)]
}

#[test]
fn pow_special_values_match_pytorch_on_every_path() {
    // C99's pow table (pow(1, NaN) = 1, pow(−1, ±inf) = 1, pow(−inf, 1.5) = inf, …) and
    // torch.pow(tensor, 0.5) = sqrt ((−inf) ** 0.5 = NaN, (−0) ** 0.5 = −0).
    let d = edges();
    let p = &d["pow"];
    let (bases, exps) = (hexes32(&p["bases"]), hexes32(&p["exponents"]));
    let mut bad = Vec::new();
    let mut check = |what: String, xs: &[f32], got: &[f32], t32: &[f32], t64: &[f64]| {
        for i in 0..xs.len() {
            // Subnormal bases and results may be flushed on the GPU: checked below.
            let subnormal = |v: f64| v != 0.0 && v.abs() < 1.1754944e-38;
            if what.contains("GPU") && (subnormal(f64::from(xs[i])) || subnormal(t64[i])) {
                continue;
            }
            // The GPU's exp2 and log2 are looser than libm's: 1e-5 relative there (1e10 ** −3
            // is 1.0000042e-30 on lavapipe).
            let rtol = if what.contains("GPU") { 1e-5 } else { RTOL };
            if !is_pytorchs_within(got[i], t32[i], t64[i], rtol) {
                bad.push(format!(
                    "{what} at {:e}: got {:e}, PyTorch f32 {:e}, f64 {:e}",
                    xs[i], got[i], t32[i], t64[i]
                ));
            }
        }
    };
    // torch.pow(tensor, number): row i is every base to exponents[i].
    for (i, &e) in exps.iter().enumerate() {
        let t32 = hexes32(&p["by_number"]["f32"][i]);
        let t64 = hexes64(&p["by_number"]["f64"][i]);
        for (what, got) in expr_paths(&pow_expr(None, Some(e)), &bases) {
            check(format!("{what}: x ** {e:e}"), &bases, &got, &t32, &t64);
        }
    }
    // torch.pow(number, tensor): row i is bases[i] to every exponent.
    for (i, &b) in bases.iter().enumerate() {
        let t32 = hexes32(&p["of_number"]["f32"][i]);
        let t64 = hexes64(&p["of_number"]["f64"][i]);
        for (what, got) in expr_paths(&pow_expr(Some(b), None), &exps) {
            check(format!("{what}: {b:e} ** x"), &exps, &got, &t32, &t64);
        }
    }
    // torch.pow(tensor, tensor): C's pow at 0.5 too ((−inf) ** 0.5 = inf), the exponent a
    // per-feature column.
    let (t32, t64) = (hexes32(&p["tensors"]["f32"]), hexes64(&p["tensors"]["f64"]));
    let n = exps.len();
    for (i, &b) in bases.iter().enumerate() {
        use wgpu_mlp::model::expr::{Binary, Node};
        let e = Expr::from_nodes(vec![
            Node::Input,
            Node::Column(exps.clone().into()),
            Node::Binary(Binary::Pow, 0, 1),
        ])
        .unwrap();
        let xs = vec![b; n];
        for (what, got) in expr_paths(&e, &xs) {
            check(
                format!("{what}: {b:e} ** column"),
                &xs,
                &got,
                &t32[i * n..(i + 1) * n],
                &t64[i * n..(i + 1) * n],
            );
        }
    }
    assert!(bad.is_empty(), "{} wrong:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn softplus_takes_pytorch_float32s_branch_at_its_threshold_on_every_path() {
    // β·x is rounded to f32 before the comparison, as PyTorch's float32 kernel does:
    // softplus:0.1:1 at 10 is 13.13 (not 10), softplus:3:1 at 0.33333334 is 0.4378. Near the
    // threshold the two branches differ, so only PyTorch's float32 value counts here.
    let d = edges();
    let mut bad = Vec::new();
    for case in d["softplus"].as_array().unwrap() {
        let beta = case["beta"].as_f64().unwrap() as f32;
        let threshold = case["threshold"].as_f64().unwrap() as f32;
        let act = Activation::Softplus { beta, threshold };
        let xs = hexes32(&case["x"]);
        let t32 = hexes32(&case["f32"]);
        let e = Expr::activation(act).unwrap();
        for (what, got) in expr_paths(&e, &xs) {
            for i in 0..xs.len() {
                let want = f64::from(t32[i]);
                if (f64::from(got[i]) - want).abs() > RTOL * want.abs() {
                    bad.push(format!(
                        "{what} {act} at {:e}: got {:e}, PyTorch f32 {want:e}",
                        xs[i], got[i]
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{} wrong:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn batchnorm_with_an_infinite_scale_or_a_large_mean_matches_pytorch_on_every_path() {
    // var + eps = 0 or weight = ±inf: PyTorch's x·α + (bias − mean·α) gives NaN where the
    // textbook (x − mean)·α gives ±inf. Mean 1e6, var 1e-6, eps 1e-10: PyTorch float64 keeps
    // 999.95 where x·α + shift in f32 gave 1024.
    let d = edges();
    let mut bad = Vec::new();
    for case in d["batchnorm"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (rows, cols) = (
            case["rows"].as_u64().unwrap() as usize,
            case["cols"].as_u64().unwrap() as usize,
        );
        let bn = wgpu_mlp::BatchNorm1d::new(
            hexes32(&case["mean"]),
            hexes32(&case["var"]),
            Some(hexes32(&case["weight"])),
            Some(hexes32(&case["bias"])),
            case["eps"].as_f64().unwrap() as f32,
        )
        .unwrap();
        let xs = hexes32(&case["x"]);
        let (t32, t64) = (hexes32(&case["f32"]), hexes64(&case["f64"]));
        // The digits: PyTorch float64's value, not float32's, for the large mean.
        let digits = name == "large_mean_small_var";
        // A model needs a Linear before the BatchNorm: Linear(1, C) of ones for a row of one
        // value (±inf and NaN rows: an identity would make inf · 0 = NaN), the identity for the
        // other rows (finite).
        let ones = wgpu_mlp::Linear::new(1, cols, vec![1.0; cols], None).unwrap();
        for r in 0..rows {
            let row = &xs[r * cols..(r + 1) * cols];
            let uniform = row.iter().all(|v| v.to_bits() == row[0].to_bits());
            let (linear, x) = if uniform {
                (ones.clone(), Matrix::new(1, 1, vec![row[0]]).unwrap())
            } else {
                assert!(row.iter().all(|v| v.is_finite()), "{name} row {r}");
                (identity(cols), Matrix::new(1, cols, row.to_vec()).unwrap())
            };
            let m = wgpu_mlp::Mlp::new(vec![
                Module::Linear(linear),
                Module::BatchNorm1d(bn.clone()),
            ])
            .unwrap();
            for (what, y) in every_path(&m, &x) {
                for (c, &got) in y.as_slice().iter().enumerate() {
                    let i = r * cols + c;
                    let ok = if digits {
                        (f64::from(got) - t64[i]).abs() <= 1e-6 * t64[i].abs() + 1e-3
                    } else {
                        is_pytorchs(got, t32[i], t64[i])
                    };
                    if !ok {
                        bad.push(format!(
                            "{name} {what} [{r}, {c}] x = {:e}: got {got:e}, PyTorch f32 {:e}, \
                             f64 {:e}",
                            xs[i], t32[i], t64[i]
                        ));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{} wrong:\n{}", bad.len(), bad.join("\n"));
}

/// The expression of one of `subnormal`'s ops in `edges.json`.
fn subnormal_op(name: &str) -> Expr {
    use wgpu_mlp::model::expr::{Binary, Node, Unary};
    let bin = |op, c| vec![Node::Input, Node::Const(c), Node::Binary(op, 0, 1)];
    let nodes = match name {
        "reciprocal" => bin(Binary::Pow, -1.0),
        "log" => vec![Node::Input, Node::Unary(Unary::Log, 0)],
        "sqrt" => vec![Node::Input, Node::Unary(Unary::Sqrt, 0)],
        "exp" => vec![Node::Input, Node::Unary(Unary::Exp, 0)],
        "times_1e30" => bin(Binary::Mul, 1e30),
        "div_1e-30" => bin(Binary::Div, 1e-30),
        "identity_add" => bin(Binary::Add, 0.0),
        other => panic!("no expression for {other}"),
    };
    Expr::from_nodes(nodes).unwrap()
}

#[test]
fn subnormals_are_kept_on_the_cpu_and_may_be_flushed_on_the_gpu() {
    // The CPU paths never flush: 1/1e-40 = 1e40 → inf, log(1e-45) = −103.28, 1e-45 · 1e30 =
    // 1.4e-15, each PyTorch's float32 value within 4e-6 and no absolute allowance. The GPU gives
    // PyTorch's value at the input or at the input flushed to a zero of its sign (WGSL lets a
    // device flush subnormal inputs and results; lavapipe does), never anything else.
    let d = edges();
    let s = &d["subnormal"];
    let xs = hexes32(&s["x"]);
    let zero = |v: f32| {
        xs.iter()
            .position(|z| *z == 0.0 && z.is_sign_negative() == v.is_sign_negative())
            .unwrap()
    };
    let mut bad = Vec::new();
    for (name, t) in s["ops"].as_object().unwrap() {
        let (t32, t64) = (hexes32(&t["f32"]), hexes64(&t["f64"]));
        for (what, got) in expr_paths(&subnormal_op(name), &xs) {
            for i in 0..xs.len() {
                let (g, w) = (got[i], t32[i]);
                let ok = if what == "GPU" {
                    is_pytorchs(g, w, t64[i]) || is_pytorchs(g, t32[zero(xs[i])], t64[zero(xs[i])])
                } else if w.is_nan() {
                    g.is_nan()
                } else {
                    g == w || (f64::from(g) - f64::from(w)).abs() <= RTOL * f64::from(w).abs()
                };
                if !ok {
                    bad.push(format!(
                        "{what} {name}({:e}): got {g:e}, PyTorch f32 {w:e}",
                        xs[i]
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{} wrong:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn gelu_tails_are_pytorchs_on_the_cpu_and_exact_on_the_gpu() {
    // Where 1 + erf(x/√2) cancels (x ≤ −5.5 or so in f32, ≤ −8.3 in f64) PyTorch returns 0 or
    // digits of the cancellation; the CPU paths give PyTorch's value, the GPU (which computes
    // erfc(−x/√2) directly) the exact one, from Python's math.erfc: −7.6e-23 at −10. Below f32's
    // smallest normal the GPU may flush to zero.
    let d = edges();
    let g = &d["gelu_tail"];
    let xs = hexes32(&g["x"]);
    let (t32, t64, exact) = (hexes32(&g["f32"]), hexes64(&g["f64"]), hexes64(&g["erfc"]));
    let e = Expr::activation(Activation::Gelu).unwrap();
    let mut bad = Vec::new();
    for (what, got) in expr_paths(&e, &xs) {
        for i in 0..xs.len() {
            let v = f64::from(got[i]);
            let ok = if what == "GPU" {
                (v - exact[i]).abs() <= RTOL * exact[i].abs()
                    || (exact[i].abs() < FLT_MIN && v.abs() <= FLT_MIN)
            } else {
                is_pytorchs(got[i], t32[i], t64[i])
            };
            if !ok {
                bad.push(format!(
                    "{what} gelu({:e}): got {v:e}, PyTorch f32 {:e}, f64 {:e}, exact {:e}",
                    xs[i], t32[i], t64[i], exact[i]
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{} wrong:\n{}", bad.len(), bad.join("\n"));
    // The two differ where it shows: at −10 PyTorch and the CPU say 0, the GPU −7.6e-23.
    let at = xs.iter().position(|&v| v == -10.0).unwrap();
    assert_eq!(t32[at], 0.0);
    assert!((exact[at] + 7.6e-23).abs() < 1e-24, "{:e}", exact[at]);
}

#[test]
fn x_plus_zero_and_x_minus_x_are_computed_not_folded_on_the_gpu() {
    // Constructed variants of the ONNX cases: −0 + 0 is +0 (folding x + 0 to x gives −0), and
    // |x| − |x|, x / x, x + (−x) through two equal subexpressions the compiler may merge.
    use wgpu_mlp::model::expr::{Binary, Node, Unary};
    let xs = [
        -0.0f32,
        0.0,
        1.0,
        -2.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e30,
    ];
    type Case = (&'static str, Vec<Node>, fn(f32) -> f32);
    let cases: Vec<Case> = vec![
        (
            "x + 0",
            vec![
                Node::Input,
                Node::Const(0.0),
                Node::Binary(Binary::Add, 0, 1),
            ],
            |x| x + 0.0,
        ),
        (
            "|x| − |x|",
            vec![
                Node::Input,
                Node::Unary(Unary::Abs, 0),
                Node::Unary(Unary::Abs, 0),
                Node::Binary(Binary::Sub, 1, 2),
            ],
            |x| x.abs() - x.abs(),
        ),
        (
            "x / x",
            vec![Node::Input, Node::Binary(Binary::Div, 0, 0)],
            |x| x / x,
        ),
        (
            "x + (−x)",
            vec![
                Node::Input,
                Node::Unary(Unary::Neg, 0),
                Node::Binary(Binary::Add, 0, 1),
            ],
            |x| x + -x,
        ),
        (
            "x · x − x · x",
            vec![
                Node::Input,
                Node::Binary(Binary::Mul, 0, 0),
                Node::Binary(Binary::Mul, 0, 0),
                Node::Binary(Binary::Sub, 1, 2),
            ],
            |x| x * x - x * x,
        ),
        (
            "max(x, x) − x",
            vec![
                Node::Input,
                Node::Binary(Binary::Max, 0, 0),
                Node::Binary(Binary::Sub, 1, 0),
            ],
            |x| x - x,
        ),
    ];
    for (name, nodes, f) in cases {
        let e = Expr::from_nodes(nodes).unwrap();
        for (what, got) in expr_paths(&e, &xs) {
            for (x, g) in xs.iter().zip(&got) {
                // Zeros by their sign bit; finite values within f32 arithmetic (the GPU may
                // divide through a reciprocal).
                let want = f(*x);
                let same = if want.is_nan() || want == 0.0 || want.is_infinite() {
                    (want.is_nan() && g.is_nan()) || want.to_bits() == g.to_bits()
                } else {
                    (f64::from(*g) - f64::from(want)).abs() <= RTOL * f64::from(want).abs()
                };
                assert!(same, "{what} {name} at {x:e}: got {g:e}, IEEE {want:e}");
            }
        }
    }
}
