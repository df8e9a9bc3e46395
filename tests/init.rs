//! `torch.nn.init` parity: the generator, every init's formula, errors, and bit-exact PyTorch
//! default init against the fixtures in `tests/data`.
//!
//! Statistical checks use `N = 200_000` samples and a tolerance of `5·σ/√N` on both the mean and the
//! standard deviation. For the mean that is 5 standard errors. For the standard deviation the
//! standard error is `σ·√((κ−1)/(4N))` (κ = kurtosis: 1.8 uniform, 3 normal, ≤ 9 for the truncated
//! normals used here), so the same tolerance is at least 3.5 standard errors. Every generator is
//! seeded, so these tests are deterministic; the tolerances only say how far the fixed sample may
//! sit from the true value.

// Expected gains and bounds are written as PyTorch prints them (e.g. 1.4142135623730951), not as
// std's constants, so the comparison is against the reference values themselves.
#![allow(clippy::approx_constant)]

use std::f64::consts::PI;

use safetensors::SafeTensors;
use wgpu_mlp::activation::erf;
use wgpu_mlp::init::{
    self, FanMode, Nonlinearity, calculate_correct_fan, calculate_fan_in_and_fan_out,
    calculate_gain,
};
use wgpu_mlp::{Activation, Error, Generator, Init, LayerSpec, Mlp};

const N: usize = 200_000;
/// A `[rows, cols]` shape with `N` elements, non-square so fan_in ≠ fan_out.
const SHAPE: [usize; 2] = [400, 500];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn data_path(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn read_data(name: &str) -> Vec<u8> {
    std::fs::read(data_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The f32 contents of a safetensors tensor, with its shape.
fn tensor_f32(st: &SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let view = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (view.shape().to_vec(), values)
}

/// The seed of a case in `tests/data/cases.json` (a tiny scan: the crate has no JSON dependency).
fn case_seed(name: &str) -> u64 {
    let text = std::fs::read_to_string(data_path("cases.json")).unwrap();
    let start = text
        .find(&format!("\"name\": \"{name}\""))
        .unwrap_or_else(|| panic!("case {name} not in cases.json"));
    let rest = &text[start + 1..];
    let seed_at = rest.find("\"seed\":").expect("seed key") + "\"seed\":".len();
    if let Some(next_case) = rest.find("\"name\":") {
        assert!(seed_at < next_case, "case {name} has no seed of its own");
    }
    rest[seed_at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

/// The message of an `InvalidArgument` error (panics on anything else).
fn invalid_msg<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(Error::InvalidArgument(msg)) => msg,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Sample mean and standard deviation (population form), in f64.
fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// Mean and std within `5·σ/√n` of the true values (see the module comment).
fn assert_moments(v: &[f32], mean: f64, std: f64, what: &str) {
    let (m, s) = moments(v);
    let tol = 5.0 * std / (v.len() as f64).sqrt();
    assert!(
        (m - mean).abs() <= tol,
        "{what}: mean {m} vs {mean} (tol {tol})"
    );
    assert!(
        (s - std).abs() <= tol,
        "{what}: std {s} vs {std} (tol {tol})"
    );
}

/// Everything in `[lo, hi)`, both ends approached (N draws leave a gap of ~(hi−lo)/N), and the
/// moments of U(lo, hi).
fn assert_uniform(v: &[f32], lo: f32, hi: f32, what: &str) {
    assert!(
        v.iter().all(|&x| x >= lo && x < hi),
        "{what}: value outside [{lo}, {hi})"
    );
    let (min, max) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let width = f64::from(hi) - f64::from(lo);
    assert!(
        f64::from(min) - f64::from(lo) < 1e-3 * width,
        "{what}: min {min}"
    );
    assert!(
        f64::from(hi) - f64::from(max) < 1e-3 * width,
        "{what}: max {max}"
    );
    assert_moments(
        v,
        (f64::from(lo) + f64::from(hi)) / 2.0,
        width / 12f64.sqrt(),
        what,
    );
}

fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

fn norm_cdf(x: f64) -> f64 {
    (1.0 + erf(x / 2f64.sqrt())) / 2.0
}

/// Mean and std of N(mean, std²) truncated to [a, b].
fn trunc_moments(mean: f64, std: f64, a: f64, b: f64) -> (f64, f64) {
    let (al, be) = ((a - mean) / std, (b - mean) / std);
    let z = norm_cdf(be) - norm_cdf(al);
    let d = (norm_pdf(al) - norm_pdf(be)) / z;
    let m = mean + std * d;
    let var = std * std * (1.0 + (al * norm_pdf(al) - be * norm_pdf(be)) / z - d * d);
    (m, var.sqrt())
}

// ---------------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------------

#[test]
fn mt19937_matches_reference_outputs() {
    // std::mt19937 with its default seed 5489: first output, and the 10000th (the C++ standard's
    // conformance value).
    let mut g = Generator::new(5489);
    assert_eq!(g.next_u32(), 3_499_211_612);
    for _ in 1..9_999 {
        g.next_u32();
    }
    assert_eq!(g.next_u32(), 4_123_659_995);
}

#[test]
fn manual_seed_rand_known_values() {
    // torch.manual_seed(0); torch.rand(3) and torch.manual_seed(42); torch.rand(2).
    let r = Generator::new(0).rand(3);
    let shown: Vec<String> = r.iter().map(|x| format!("{x:.4}")).collect();
    assert_eq!(shown, ["0.4963", "0.7682", "0.0885"]);
    let r = Generator::new(42).rand(2);
    let shown: Vec<String> = r.iter().map(|x| format!("{x:.4}")).collect();
    assert_eq!(shown, ["0.8823", "0.9150"]);
}

#[test]
fn seed_uses_low_32_bits_like_torch() {
    let mut a = Generator::new((1u64 << 32) | 7);
    let mut b = Generator::new(7);
    assert_eq!(a.seed(), (1u64 << 32) | 7);
    for _ in 0..100 {
        assert_eq!(a.next_u32(), b.next_u32());
    }
    // The default generator seed works like any other.
    assert_eq!(Generator::default().seed(), wgpu_mlp::DEFAULT_SEED);
}

#[test]
fn manual_seed_resets_state_and_normal_cache() {
    let mut g = Generator::new(3);
    let mut one = [0.0f32; 1];
    g.normal_(&mut one, 0.0, 1.0).unwrap(); // leaves a cached sample
    g.manual_seed(3);
    assert_eq!(g, Generator::new(3));
}

#[test]
fn next_u64_is_first_draw_high() {
    let mut g = Generator::new(11);
    let mut c = g.clone();
    let (hi, lo) = (c.next_u32(), c.next_u32());
    assert_eq!(g.next_u64(), (u64::from(hi) << 32) | u64::from(lo));
}

#[test]
fn uniform_f32_formula_bit_exact() {
    // v = fma((r & 0xFFFFFF)·2⁻²⁴, to − from, from) in f32 (PyTorch's build fuses the
    // multiply-add: the fixture tests below fail without it); a value equal to `to` becomes `from`.
    let (from, to) = (-0.3f64, 0.7f64);
    let (f, t) = (from as f32, to as f32);
    let mut g = Generator::new(123);
    let mut c = g.clone();
    let mut v = vec![0.0f32; 10_000];
    g.uniform_(&mut v, from, to).unwrap();
    for &x in &v {
        let r = c.next_u32();
        let u = (r & 0x00ff_ffff) as f32 * (1.0 / 16_777_216.0);
        let want = u.mul_add(t - f, f);
        let want = if want == t { f } else { want };
        assert_eq!(x.to_bits(), want.to_bits());
    }
    assert_eq!(g.next_u32(), c.next_u32(), "one draw per element");
}

#[test]
fn uniform_never_returns_the_upper_bound() {
    // A range tiny next to its magnitude: f32 spacing at 1e8 is 8, so fma(x, 16, 1e8) rounds to
    // 1e8 + 16 for x > 0.75. PyTorch maps such values back to `from` to keep [from, to).
    let mut v = vec![0.0f32; 1000];
    init::uniform_(&mut v, 1e8, 1e8 + 16.0, &mut Generator::new(4)).unwrap();
    assert!(v.iter().all(|&x| x == 1e8 || x == 1e8 + 8.0), "{v:?}");
    assert!(v.contains(&1e8) && v.contains(&(1e8 + 8.0)));
}

#[test]
fn uniform_f64_formula_53_bits() {
    let mut g = Generator::new(5);
    let mut c = g.clone();
    for _ in 0..1000 {
        let r = c.next_u64() & ((1u64 << 53) - 1);
        let want = (r as f64 / (1u64 << 53) as f64).mul_add(3.0, -1.0);
        assert_eq!(g.uniform_f64(-1.0, 2.0).to_bits(), want.to_bits());
    }
}

/// One scalar Box–Muller pair from two f64 uniforms, as PyTorch's `normal_distribution<double>`.
fn box_muller_pair(c: &mut Generator) -> (f64, f64) {
    let u1 = c.uniform_f64(0.0, 1.0);
    let u2 = c.uniform_f64(0.0, 1.0);
    let r = (-2.0 * (-u2).ln_1p()).sqrt();
    let theta = 2.0 * PI * u1;
    (r * theta.cos(), r * theta.sin())
}

#[test]
fn normal_small_tensor_uses_scalar_path_with_cache() {
    let (mean, std) = (1.5, 2.0);
    let mut g = Generator::new(3);
    let mut c = g.clone();
    let mut v = [0.0f32; 3];
    g.normal_(&mut v, mean, std).unwrap();
    let (z0, z1) = box_muller_pair(&mut c);
    let (z2, z3) = box_muller_pair(&mut c);
    let want = [z0, z1, z2].map(|z| z.mul_add(std, mean) as f32);
    assert_eq!(bits(&v), bits(&want));
    // The second sample of the last pair is cached in the generator for the next call.
    assert_eq!(g.normal_f64(0.0, 1.0).to_bits(), z3.to_bits());
    assert_eq!(g.next_u32(), c.next_u32(), "two 64-bit draws per pair");
}

/// Box–Muller of PyTorch's `normal_fill_16`, in f64 (the reference for the f32 kernel).
fn fill16_reference(block: &[f32], mean: f64, std: f64) -> Vec<f64> {
    let mut out = vec![0.0; 16];
    for j in 0..8 {
        let u1 = 1.0 - f64::from(block[j]);
        let u2 = f64::from(block[j + 8]);
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * PI * u2;
        out[j] = r * theta.cos() * std + mean;
        out[j + 8] = r * theta.sin() * std + mean;
    }
    out
}

#[test]
fn normal_large_tensor_block_layout_and_tail_refill() {
    // 20 elements: 20 uniforms, Box–Muller on [0, 16), then the last 16 positions [4, 20) refilled
    // with 16 fresh uniforms and transformed again: 36 draws in all.
    let (mean, std) = (0.5, 2.0);
    let mut g = Generator::new(9);
    let mut c = g.clone();
    let mut v = vec![0.0f32; 20];
    g.normal_(&mut v, mean, std).unwrap();
    let first: Vec<f32> = (0..20).map(|_| c.uniform_f32(0.0, 1.0)).collect();
    let tail: Vec<f32> = (0..16).map(|_| c.uniform_f32(0.0, 1.0)).collect();
    let mut want = fill16_reference(&first[..16], mean, std);
    want.truncate(4);
    want.extend(fill16_reference(&tail, mean, std));
    for (i, (&got, &w)) in v.iter().zip(&want).enumerate() {
        assert!(
            (f64::from(got) - w).abs() < 1e-5,
            "element {i}: {got} vs {w}"
        );
    }
    assert_eq!(g.next_u32(), c.next_u32(), "36 draws consumed");
    // A multiple of 16 has no refill: exactly one draw per element.
    let mut g = Generator::new(9);
    let mut c = g.clone();
    let mut v = vec![0.0f32; 32];
    g.normal_(&mut v, 0.0, 1.0).unwrap();
    for _ in 0..32 {
        c.next_u32();
    }
    assert_eq!(g.next_u32(), c.next_u32());
}

#[test]
fn normal_moments_both_paths() {
    let mut g = Generator::new(1);
    for n in [N, N + 3] {
        let mut v = vec![0.0f32; n];
        g.normal_(&mut v, 0.5, 2.0).unwrap();
        assert_moments(&v, 0.5, 2.0, &format!("normal_ n={n}"));
    }
    // Scalar path: many tensors of fewer than 16 elements.
    let mut v = Vec::with_capacity(N);
    let mut chunk = [0.0f32; 5];
    while v.len() < N {
        g.normal_(&mut chunk, -1.0, 0.5).unwrap();
        v.extend_from_slice(&chunk);
    }
    assert_moments(&v, -1.0, 0.5, "normal_ scalar path");
    let r = Generator::new(2).randn(N);
    assert_moments(&r, 0.0, 1.0, "randn");
}

// ---------------------------------------------------------------------------------------------
// Init formulas
// ---------------------------------------------------------------------------------------------

#[test]
fn uniform_bounds_and_moments() {
    let mut g = Generator::new(10);
    let mut v = vec![0.0f32; N];
    init::uniform_(&mut v, -0.3, 0.7, &mut g).unwrap();
    assert_uniform(&v, -0.3, 0.7, "uniform_");
    // Init::Uniform is the same draw.
    let mut w = vec![0.0f32; N];
    Init::Uniform { a: -0.3, b: 0.7 }
        .fill_weight(&mut w, SHAPE[0], SHAPE[1], &mut Generator::new(10))
        .unwrap();
    assert_eq!(bits(&v), bits(&w));
    // a == b is allowed: every value is a.
    let mut v = vec![9.0f32; 10];
    init::uniform_(&mut v, 0.25, 0.25, &mut g).unwrap();
    assert!(v.iter().all(|&x| x == 0.25));
}

#[test]
fn normal_init_moments() {
    let mut g = Generator::new(11);
    let mut v = vec![0.0f32; N];
    init::normal_(&mut v, 3.0, 0.1, &mut g).unwrap();
    assert_moments(&v, 3.0, 0.1, "normal_");
    let mut w = vec![0.0f32; N];
    Init::Normal {
        mean: 3.0,
        std: 0.1,
    }
    .fill_weight(&mut w, SHAPE[0], SHAPE[1], &mut Generator::new(11))
    .unwrap();
    assert_eq!(bits(&v), bits(&w));
    // std = 0 is allowed: every value is the mean.
    init::normal_(&mut v[..20], 1.25, 0.0, &mut g).unwrap();
    assert!(v[..20].iter().all(|&x| x == 1.25));
}

#[test]
fn trunc_normal_central_branch() {
    // p = Φ(2) − Φ(−2) ≈ 0.954 > 0.3: normal draws with redraws outside [a, b].
    for (mean, std, a, b) in [
        (0.0, 1.0, -2.0, 2.0),
        (0.5, 0.02, -2.0, 2.0),
        (1.0, 2.0, 0.0, 5.0),
    ] {
        let mut v = vec![0.0f32; N];
        init::trunc_normal_(&mut v, mean, std, a, b, &mut Generator::new(12)).unwrap();
        assert!(
            v.iter().all(|&x| f64::from(x) >= a && f64::from(x) <= b),
            "outside [{a}, {b}]"
        );
        let (m, s) = trunc_moments(mean, std, a, b);
        assert_moments(&v, m, s, &format!("trunc_normal_({mean}, {std}, {a}, {b})"));
    }
}

#[test]
fn trunc_normal_tail_branch() {
    // p = Φ(6) − Φ(2) ≈ 0.023 ≤ 0.3: uniform proposals with rejection.
    for (mean, std, a, b) in [
        (0.0, 0.5, 1.0, 3.0),
        (0.0, 1.0, -0.2, 0.3),
        (5.0, 1.0, -1.0, 1.0),
    ] {
        let mut v = vec![0.0f32; N];
        init::trunc_normal_(&mut v, mean, std, a, b, &mut Generator::new(13)).unwrap();
        assert!(
            v.iter().all(|&x| f64::from(x) >= a && f64::from(x) <= b),
            "outside [{a}, {b}]"
        );
        let (m, s) = trunc_moments(mean, std, a, b);
        assert_moments(&v, m, s, &format!("trunc_normal_({mean}, {std}, {a}, {b})"));
    }
    // Init::TruncNormal and its defaults go through the same function.
    let mut w = vec![0.0f32; 6];
    Init::trunc_normal()
        .fill_weight(&mut w, 2, 3, &mut Generator::new(1))
        .unwrap();
    assert!(w.iter().all(|&x| (-2.0..=2.0).contains(&x)));
}

#[test]
fn constant_ones_zeros() {
    let mut v = vec![7.0f32; 12];
    init::constant_(&mut v, 0.3).unwrap();
    assert!(v.iter().all(|&x| x == 0.3f32));
    init::ones_(&mut v);
    assert!(v.iter().all(|&x| x == 1.0));
    init::zeros_(&mut v);
    assert!(v.iter().all(|&x| x.to_bits() == 0));
    // Infinities and NaN convert; finite values beyond f32 do not (as PyTorch's fill_).
    init::constant_(&mut v, f64::INFINITY).unwrap();
    assert!(v.iter().all(|&x| x == f32::INFINITY));
    assert_eq!(
        invalid_msg(init::constant_(&mut v, 1e39)),
        "value cannot be converted to type float without overflow"
    );
    let mut g = Generator::new(0);
    for (init, want) in [
        (Init::Zeros, 0.0f32),
        (Init::Ones, 1.0),
        (Init::Constant(-2.5), -2.5),
    ] {
        assert!(init.is_constant());
        let mut w = vec![9.0f32; 6];
        init.fill_weight(&mut w, 2, 3, &mut g).unwrap();
        let mut b = vec![9.0f32; 2];
        init.fill_bias(&mut b, 3, &mut g).unwrap();
        assert!(w.iter().chain(&b).all(|&x| x == want), "{init:?}");
    }
    assert!(!Init::PytorchDefault.is_constant());
    assert!(!Init::Eye.is_constant());
    // None of them draws from the generator.
    assert_eq!(g, Generator::new(0));
}

#[test]
fn eye_square_and_non_square() {
    for (rows, cols) in [(3, 5), (5, 3), (4, 4), (1, 1), (0, 3)] {
        let mut v = vec![7.0f32; rows * cols];
        init::eye_(&mut v, &[rows, cols]).unwrap();
        for i in 0..rows {
            for j in 0..cols {
                assert_eq!(
                    v[i * cols + j],
                    if i == j { 1.0 } else { 0.0 },
                    "[{rows},{cols}]"
                );
            }
        }
    }
    let mut w = vec![0.0f32; 6];
    Init::Eye
        .fill_weight(&mut w, 2, 3, &mut Generator::new(0))
        .unwrap();
    assert_eq!(w, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn xavier_uniform_bound_and_moments() {
    let (fan_in, fan_out) = (SHAPE[1], SHAPE[0]);
    for gain in [1.0, 2.0, 5.0 / 3.0] {
        // PyTorch: std = gain·√(2/(fan_in + fan_out)), a = √3·std.
        let std = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
        let bound = 3f64.sqrt() * std;
        let closed_form = gain * (6.0 / (fan_in + fan_out) as f64).sqrt();
        assert!((bound - closed_form).abs() <= 1e-15 * closed_form);
        let mut v = vec![0.0f32; N];
        init::xavier_uniform_(&mut v, &SHAPE, gain, &mut Generator::new(20)).unwrap();
        assert_uniform(&v, -bound as f32, bound as f32, "xavier_uniform_");
        let mut w = vec![0.0f32; N];
        Init::XavierUniform { gain }
            .fill_weight(&mut w, SHAPE[0], SHAPE[1], &mut Generator::new(20))
            .unwrap();
        assert_eq!(bits(&v), bits(&w));
    }
    // §1.5: xavier_uniform_(W[2, 3]) has a = √(6/5) = 1.0954451150103321.
    let a = 3f64.sqrt() * (2.0f64 / 5.0).sqrt();
    assert!((a - 1.0954451150103321).abs() <= f64::EPSILON);
    let mut v = vec![0.0f32; 6];
    init::xavier_uniform_(&mut v, &[2, 3], 1.0, &mut Generator::new(0)).unwrap();
    assert!(v.iter().all(|&x| x.abs() <= a as f32));
    assert_eq!(Init::xavier_uniform(), Init::XavierUniform { gain: 1.0 });
}

#[test]
fn xavier_normal_std() {
    let (fan_in, fan_out) = (SHAPE[1], SHAPE[0]);
    for gain in [1.0, 2f64.sqrt()] {
        let std = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
        let mut v = vec![0.0f32; N];
        init::xavier_normal_(&mut v, &SHAPE, gain, &mut Generator::new(21)).unwrap();
        assert_moments(&v, 0.0, std, "xavier_normal_");
    }
    assert_eq!(Init::xavier_normal(), Init::XavierNormal { gain: 1.0 });
}

#[test]
fn kaiming_uniform_bounds_and_moments() {
    let leaky_001 = 1.4141428569978354; // calculate_gain('leaky_relu') with the 0.01 default slope
    for (a, mode, nl, gain) in [
        (
            Some(0.0),
            FanMode::FanIn,
            Nonlinearity::LeakyRelu,
            2f64.sqrt(),
        ), // PyTorch's defaults
        (
            Some(0.0),
            FanMode::FanOut,
            Nonlinearity::LeakyRelu,
            2f64.sqrt(),
        ),
        (None, FanMode::FanIn, Nonlinearity::LeakyRelu, leaky_001),
        (
            Some(0.2),
            FanMode::FanIn,
            Nonlinearity::LeakyRelu,
            (2.0f64 / 1.04).sqrt(),
        ),
        (Some(0.2), FanMode::FanIn, Nonlinearity::Relu, 2f64.sqrt()), // a ignored
        (None, FanMode::FanOut, Nonlinearity::Tanh, 5.0 / 3.0),
        (None, FanMode::FanIn, Nonlinearity::Linear, 1.0),
        (None, FanMode::FanIn, Nonlinearity::Selu, 0.75),
    ] {
        let fan = calculate_correct_fan(&SHAPE, mode).unwrap();
        assert_eq!(fan, if mode == FanMode::FanIn { 500 } else { 400 });
        // PyTorch: std = gain/√fan, bound = √3·std.
        let bound = 3f64.sqrt() * (gain / (fan as f64).sqrt());
        let mut v = vec![0.0f32; N];
        init::kaiming_uniform_(&mut v, &SHAPE, a, mode, nl, &mut Generator::new(30)).unwrap();
        let what = format!("kaiming_uniform_({a:?}, {mode}, {nl})");
        assert_uniform(&v, -bound as f32, bound as f32, &what);
        let mut w = vec![0.0f32; N];
        Init::KaimingUniform {
            a,
            mode,
            nonlinearity: nl,
        }
        .fill_weight(&mut w, SHAPE[0], SHAPE[1], &mut Generator::new(30))
        .unwrap();
        assert_eq!(bits(&v), bits(&w), "{what}");
    }
    // §1.5: kaiming_uniform_(W[out, 3]) with defaults has bound √6/√3 = 1.4142135623730951.
    let bound = 3f64.sqrt() * (2f64.sqrt() / 3f64.sqrt());
    assert!((bound - 1.4142135623730951).abs() <= 2.0 * f64::EPSILON);
    assert_eq!(
        Init::kaiming_uniform(),
        Init::KaimingUniform {
            a: Some(0.0),
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::LeakyRelu
        }
    );
}

#[test]
fn kaiming_normal_std() {
    for (a, mode, nl, gain) in [
        (
            Some(0.0),
            FanMode::FanIn,
            Nonlinearity::LeakyRelu,
            2f64.sqrt(),
        ),
        (Some(0.0), FanMode::FanOut, Nonlinearity::Relu, 2f64.sqrt()),
        (None, FanMode::FanIn, Nonlinearity::Sigmoid, 1.0),
    ] {
        let fan = calculate_correct_fan(&SHAPE, mode).unwrap();
        let std = gain / (fan as f64).sqrt();
        let mut v = vec![0.0f32; N];
        init::kaiming_normal_(&mut v, &SHAPE, a, mode, nl, &mut Generator::new(31)).unwrap();
        assert_moments(
            &v,
            0.0,
            std,
            &format!("kaiming_normal_({a:?}, {mode}, {nl})"),
        );
    }
    assert_eq!(
        Init::kaiming_normal(),
        Init::KaimingNormal {
            a: Some(0.0),
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::LeakyRelu
        }
    );
}

#[test]
fn pytorch_default_weight_and_bias_bounds() {
    for fan_in in [1usize, 3, 7, 500] {
        // kaiming_uniform_(a=√5): gain = √(2/(1+5)), std = gain/√fan_in, bound = √3·std (f64).
        let a = 5f64.sqrt();
        let gain = (2.0 / (1.0 + a * a)).sqrt();
        let bound = 3f64.sqrt() * (gain / (fan_in as f64).sqrt());
        // It is 1/√fan_in up to rounding.
        let inv = 1.0 / (fan_in as f64).sqrt();
        assert!(
            (bound - inv).abs() <= 4.0 * f64::EPSILON * inv,
            "fan_in {fan_in}"
        );
        let out = N / fan_in;
        let mut g = Generator::new(40);
        let mut w = vec![0.0f32; out * fan_in];
        Init::PytorchDefault
            .fill_weight(&mut w, out, fan_in, &mut g)
            .unwrap();
        assert_uniform(&w, -bound as f32, bound as f32, "default weight");
        let mut b = vec![0.0f32; N];
        Init::PytorchDefault
            .fill_bias(&mut b, fan_in, &mut g)
            .unwrap();
        assert_uniform(&b, -inv as f32, inv as f32, "default bias");
    }
    // §1.5: for n = 3 the two f64 values differ by one ulp but agree as f32.
    let bound3 = 3f64.sqrt() * ((2.0f64 / 6.0).sqrt() / 3f64.sqrt());
    assert_eq!(bound3 as f32, (1.0 / 3f64.sqrt()) as f32);
}

#[test]
fn pytorch_default_bias_with_zero_fan_in_is_zero() {
    let mut g = Generator::new(0);
    let mut b = vec![5.0f32; 4];
    Init::PytorchDefault.fill_bias(&mut b, 0, &mut g).unwrap();
    assert!(b.iter().all(|&x| x.to_bits() == 0), "{b:?}: +0.0 expected");
    // U(0, 0) still consumes one draw per element, as in PyTorch.
    let mut c = Generator::new(0);
    for _ in 0..4 {
        c.next_u32();
    }
    assert_eq!(g, c);
    // The weight of a Linear(0, out) is zero-element: a no-op that draws nothing.
    let mut w: Vec<f32> = Vec::new();
    Init::PytorchDefault
        .fill_weight(&mut w, 4, 0, &mut g)
        .unwrap();
    assert_eq!(g, c);
}

// ---------------------------------------------------------------------------------------------
// calculate_gain, fans, modes
// ---------------------------------------------------------------------------------------------

#[test]
fn calculate_gain_table() {
    for name in [
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    ] {
        assert_eq!(calculate_gain(name, None).unwrap(), 1.0, "{name}");
        assert_eq!(calculate_gain(name, Some(0.5)).unwrap(), 1.0, "{name}");
    }
    assert_eq!(calculate_gain("tanh", None).unwrap(), 1.6666666666666667);
    assert_eq!(calculate_gain("relu", None).unwrap(), 1.4142135623730951);
    assert_eq!(
        calculate_gain("relu", Some(0.2)).unwrap(),
        1.4142135623730951
    );
    assert_eq!(
        calculate_gain("leaky_relu", None).unwrap(),
        1.4141428569978354
    );
    assert_eq!(
        calculate_gain("leaky_relu", Some(0.0)).unwrap(),
        1.4142135623730951
    );
    assert_eq!(
        calculate_gain("leaky_relu", Some(5f64.sqrt())).unwrap(),
        0.5773502691896257
    );
    assert_eq!(
        calculate_gain("leaky_relu", Some(0.2)).unwrap(),
        (2.0f64 / (1.0 + 0.2 * 0.2)).sqrt()
    );
    assert_eq!(calculate_gain("selu", None).unwrap(), 0.75);
    for n in Nonlinearity::ALL {
        assert_eq!(
            calculate_gain(n.as_str(), Some(0.3)).unwrap(),
            n.gain(Some(0.3))
        );
    }
}

#[test]
fn calculate_gain_errors() {
    for name in [
        "identity",
        "Linear",
        "ReLU",
        "gelu",
        "silu",
        "elu",
        "",
        "leaky_relu ",
    ] {
        assert_eq!(
            invalid_msg(calculate_gain(name, None)),
            format!("Unsupported nonlinearity {name}")
        );
    }
}

#[test]
fn nonlinearity_and_fan_mode_parsing() {
    for n in Nonlinearity::ALL {
        assert_eq!(n.as_str().parse::<Nonlinearity>().unwrap(), n);
        assert_eq!(n.to_string(), n.as_str());
    }
    assert_eq!(
        invalid_msg("Tanh".parse::<Nonlinearity>()),
        "Unsupported nonlinearity Tanh"
    );
    assert_eq!(Nonlinearity::default(), Nonlinearity::LeakyRelu);

    // The mode is lower-cased first.
    assert_eq!("fan_in".parse::<FanMode>().unwrap(), FanMode::FanIn);
    assert_eq!("FAN_IN".parse::<FanMode>().unwrap(), FanMode::FanIn);
    assert_eq!("Fan_Out".parse::<FanMode>().unwrap(), FanMode::FanOut);
    assert_eq!(FanMode::FanOut.to_string(), "fan_out");
    assert_eq!(FanMode::default(), FanMode::FanIn);
    assert_eq!(
        invalid_msg("fan".parse::<FanMode>()),
        "Mode fan not supported, please use one of ['fan_in', 'fan_out']"
    );
    assert_eq!(
        invalid_msg("FAN_AVG".parse::<FanMode>()),
        "Mode fan_avg not supported, please use one of ['fan_in', 'fan_out']"
    );
}

#[test]
fn fans() {
    assert_eq!(calculate_fan_in_and_fan_out(&[2, 3]).unwrap(), (3, 2));
    assert_eq!(calculate_fan_in_and_fan_out(&[6, 4]).unwrap(), (4, 6));
    // Conv2d weight [out_ch, in_ch, kH, kW].
    assert_eq!(
        calculate_fan_in_and_fan_out(&[4, 3, 5, 5]).unwrap(),
        (75, 100)
    );
    assert_eq!(calculate_fan_in_and_fan_out(&[0, 0]).unwrap(), (0, 0));
    assert_eq!(calculate_correct_fan(&[2, 3], FanMode::FanIn).unwrap(), 3);
    assert_eq!(calculate_correct_fan(&[2, 3], FanMode::FanOut).unwrap(), 2);
    let msg = "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions";
    assert_eq!(invalid_msg(calculate_fan_in_and_fan_out(&[5])), msg);
    assert_eq!(invalid_msg(calculate_fan_in_and_fan_out(&[])), msg);
    assert_eq!(
        invalid_msg(calculate_correct_fan(&[5], FanMode::FanOut)),
        msg
    );
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

const FAN_ERROR: &str =
    "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions";

#[test]
fn uniform_errors() {
    let mut g = Generator::new(0);
    let mut v = vec![0.0f32; 4];
    assert_eq!(
        invalid_msg(init::uniform_(&mut v, 2.2, 1.2, &mut g)),
        "uniform_ expects to return a [from, to) range, but found from=2.2 > to=1.2"
    );
    assert_eq!(
        invalid_msg(init::uniform_(&mut v, -3e38, 3e38, &mut g)),
        "uniform_ expects to-from <= std::numeric_limits<Float>::max(), but found to=3e+38 and \
         from=-3e+38 which result in to-from to exceed the limit"
    );
    assert_eq!(
        invalid_msg(init::uniform_(&mut v, -1e39, 0.0, &mut g)),
        "from is out of bounds for float"
    );
    assert_eq!(
        invalid_msg(init::uniform_(&mut v, 0.0, f64::INFINITY, &mut g)),
        "to is out of bounds for float"
    );
    assert_eq!(
        invalid_msg(init::uniform_(&mut v, f64::NAN, 1.0, &mut g)),
        "from is out of bounds for float"
    );
    // Checked even for an empty tensor, and nothing is drawn on error.
    assert!(init::uniform_(&mut [], 1.0, 0.0, &mut g).is_err());
    assert_eq!(g, Generator::new(0));
}

#[test]
fn normal_errors() {
    let mut g = Generator::new(0);
    let mut v = vec![0.0f32; 20];
    assert_eq!(
        invalid_msg(init::normal_(&mut v, 0.0, -1.0, &mut g)),
        "normal expects std >= 0.0, but found std -1"
    );
    assert_eq!(
        invalid_msg(init::normal_(&mut v[..3], 0.0, -0.5, &mut g)),
        "normal expects std >= 0.0, but found std -0.5"
    );
    assert_eq!(
        invalid_msg(init::normal_(&mut [], 0.0, f64::NAN, &mut g)),
        "normal expects std >= 0.0, but found std nan"
    );
    assert_eq!(g, Generator::new(0));
    // xavier_normal_ with a negative gain reaches the same check.
    assert_eq!(
        invalid_msg(init::xavier_normal_(&mut v, &[4, 5], -1.0, &mut g)),
        format!(
            "normal expects std >= 0.0, but found std {}",
            // -√(2/9) printed with 6 significant digits
            "-0.471405"
        )
    );
}

#[test]
fn xavier_errors() {
    let mut g = Generator::new(0);
    let mut v = vec![0.0f32; 5];
    assert_eq!(
        invalid_msg(init::xavier_uniform_(&mut v, &[5], 1.0, &mut g)),
        FAN_ERROR
    );
    assert_eq!(
        invalid_msg(init::xavier_normal_(&mut v, &[5], 1.0, &mut g)),
        FAN_ERROR
    );
    // [0, 0]: PyTorch raises ZeroDivisionError (float division by zero).
    let msg = invalid_msg(init::xavier_uniform_(&mut [], &[0, 0], 1.0, &mut g));
    assert!(msg.starts_with("float division by zero"), "{msg}");
    let msg = invalid_msg(init::xavier_normal_(&mut [], &[0, 0], 1.0, &mut g));
    assert!(msg.starts_with("float division by zero"), "{msg}");
    // [n, 0] is fine: fan sum n, nothing to fill.
    init::xavier_uniform_(&mut [], &[3, 0], 1.0, &mut g).unwrap();
    // A negative gain makes from > to.
    let mut v = vec![0.0f32; 6];
    let msg = invalid_msg(init::xavier_uniform_(&mut v, &[2, 3], -1.0, &mut g));
    assert_eq!(
        msg,
        "uniform_ expects to return a [from, to) range, but found from=1.09545 > to=-1.09545"
    );
}

#[test]
fn kaiming_zero_element_is_noop_and_errors() {
    let mut g = Generator::new(0);
    // Zero-element shapes: no-op without any validation (PyTorch only warns).
    for shape in [[0usize, 5], [5, 0], [0, 0]] {
        init::kaiming_uniform_(
            &mut [],
            &shape,
            Some(0.0),
            FanMode::FanIn,
            Nonlinearity::LeakyRelu,
            &mut g,
        )
        .unwrap();
        init::kaiming_normal_(
            &mut [],
            &shape,
            None,
            FanMode::FanOut,
            Nonlinearity::Relu,
            &mut g,
        )
        .unwrap();
    }
    init::kaiming_uniform_(
        &mut [],
        &[0],
        None,
        FanMode::FanIn,
        Nonlinearity::Tanh,
        &mut g,
    )
    .unwrap();
    assert_eq!(g, Generator::new(0));
    // 1-D and 0-D tensors: the fan error.
    let mut v = vec![0.0f32; 5];
    assert_eq!(
        invalid_msg(init::kaiming_uniform_(
            &mut v,
            &[5],
            Some(0.0),
            FanMode::FanIn,
            Nonlinearity::LeakyRelu,
            &mut g
        )),
        FAN_ERROR
    );
    assert_eq!(
        invalid_msg(init::kaiming_normal_(
            &mut v[..1],
            &[],
            Some(0.0),
            FanMode::FanIn,
            Nonlinearity::LeakyRelu,
            &mut g
        )),
        FAN_ERROR
    );
}

#[test]
fn eye_errors() {
    let mut v = vec![0.0f32; 8];
    let msg = "Only tensors with 2 dimensions are supported";
    assert_eq!(invalid_msg(init::eye_(&mut v, &[8])), msg);
    assert_eq!(invalid_msg(init::eye_(&mut v, &[2, 2, 2])), msg);
    assert_eq!(
        invalid_msg(Init::Eye.fill_bias(&mut v, 3, &mut Generator::new(0))),
        msg
    );
}

#[test]
fn trunc_normal_errors() {
    let mut g = Generator::new(0);
    let mut v = vec![0.0f32; 8];
    let msg = invalid_msg(init::trunc_normal_(&mut v, 0.0, 0.0, -2.0, 2.0, &mut g));
    assert!(msg.starts_with("float division by zero"), "{msg}");
    assert_eq!(
        invalid_msg(init::trunc_normal_(&mut v, 0.0, 1.0, 2.0, -2.0, &mut g)),
        "uniform_ expects to return a [from, to) range, but found from=2 > to=-2"
    );
    assert_eq!(
        invalid_msg(init::trunc_normal_(&mut v, 0.0, 1.0, f64::NAN, 2.0, &mut g)),
        "from is out of bounds for float"
    );
}

#[test]
fn shape_mismatch_is_a_shape_error() {
    let mut g = Generator::new(0);
    let mut v = vec![0.0f32; 5];
    let r = init::xavier_uniform_(&mut v, &[2, 3], 1.0, &mut g);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    let r = init::kaiming_normal_(
        &mut v,
        &[2, 2],
        None,
        FanMode::FanIn,
        Nonlinearity::Relu,
        &mut g,
    );
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    let r = init::eye_(&mut v, &[2, 3]);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
    let r = Init::Uniform { a: 0.0, b: 1.0 }.fill_weight(&mut v, 2, 3, &mut g);
    assert!(matches!(r, Err(Error::Shape(_))), "{r:?}");
}

#[test]
fn fan_based_bias_inits_fail_like_pytorch() {
    let mut g = Generator::new(0);
    for init in [
        Init::xavier_uniform(),
        Init::xavier_normal(),
        Init::kaiming_uniform(),
        Init::kaiming_normal(),
    ] {
        let mut b = vec![0.0f32; 4];
        assert_eq!(
            invalid_msg(init.fill_bias(&mut b, 3, &mut g)),
            FAN_ERROR,
            "{init:?}"
        );
        // Through the builder the error names the layer.
        let err = Mlp::builder(3)
            .layer_spec(LayerSpec::new(4, Activation::Relu).bias_init(init.clone()))
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("layer 0 bias") && text.contains(FAN_ERROR),
            "{text}"
        );
    }
    // Non-fan inits work on a bias.
    let mut b = vec![0.0f32; 4];
    Init::Normal {
        mean: 0.0,
        std: 0.1,
    }
    .fill_bias(&mut b, 3, &mut g)
    .unwrap();
    Init::Uniform { a: -1.0, b: 1.0 }
        .fill_bias(&mut b, 3, &mut g)
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Bit-exact PyTorch parity
// ---------------------------------------------------------------------------------------------

#[test]
fn linear_default_init_matches_pytorch_fixtures() {
    for (seed, fan_in, out) in [(0u64, 3usize, 2usize), (1, 4, 6)] {
        let file = format!("init_linear_seed{seed}_{fan_in}x{out}.safetensors");
        let bytes = read_data(&file);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (w_shape, want_w) = tensor_f32(&st, "weight");
        let (b_shape, want_b) = tensor_f32(&st, "bias");
        assert_eq!(w_shape, [out, fan_in], "{file}");
        assert_eq!(b_shape, [out], "{file}");

        // Directly: torch.manual_seed(seed); nn.Linear(fan_in, out).
        let mut g = Generator::new(seed);
        let mut w = vec![0.0f32; out * fan_in];
        let mut b = vec![0.0f32; out];
        Init::PytorchDefault
            .fill_weight(&mut w, out, fan_in, &mut g)
            .unwrap();
        Init::PytorchDefault
            .fill_bias(&mut b, fan_in, &mut g)
            .unwrap();
        assert_eq!(bits(&w), bits(&want_w), "{file} weight");
        assert_eq!(bits(&b), bits(&want_b), "{file} bias");

        // Through the builder.
        let model = Mlp::builder(fan_in)
            .layer(out, Activation::Identity)
            .seed(seed)
            .build()
            .unwrap();
        let linear = model.linears().next().unwrap();
        assert_eq!(
            bits(linear.weight()),
            bits(&want_w),
            "{file} builder weight"
        );
        assert_eq!(
            bits(linear.bias().unwrap()),
            bits(&want_b),
            "{file} builder bias"
        );
    }
}

#[test]
fn model_weights_match_pytorch_fixtures() {
    for name in ["seed_example", "small_classifier", "leaky_regression"] {
        let seed = case_seed(name);
        let bytes = read_data(&format!("{name}.safetensors"));
        let st = SafeTensors::deserialize(&bytes).unwrap();
        // Linear layers in Sequential order: "<i>.weight" sorted by module index.
        let mut idx: Vec<usize> = st
            .names()
            .iter()
            .filter_map(|n| n.strip_suffix(".weight"))
            .map(|i| i.parse().unwrap())
            .collect();
        idx.sort_unstable();
        let layers: Vec<_> = idx
            .iter()
            .map(|i| {
                (
                    tensor_f32(&st, &format!("{i}.weight")),
                    tensor_f32(&st, &format!("{i}.bias")),
                )
            })
            .collect();

        // Activations draw nothing, so identity everywhere gives the same weights.
        let in_features = layers[0].0.0[1];
        let mut builder = Mlp::builder(in_features).seed(seed);
        for ((shape, _), _) in &layers {
            builder = builder.layer(shape[0], Activation::Identity);
        }
        let model = builder.build().unwrap();
        assert_eq!(model.linears().count(), layers.len(), "{name}");
        for (k, (linear, ((w_shape, w), (_, b)))) in model.linears().zip(&layers).enumerate() {
            assert_eq!(
                [linear.out_features(), linear.in_features()],
                [w_shape[0], w_shape[1]],
                "{name} layer {k}"
            );
            assert_eq!(bits(linear.weight()), bits(w), "{name} layer {k} weight");
            assert_eq!(
                bits(linear.bias().unwrap()),
                bits(b),
                "{name} layer {k} bias"
            );
        }
    }
}

#[test]
fn linear_3x2_seed0_matches_reference_text() {
    // pytorch-semantics.md §6.1 / the fixture, to 4 d.p.
    let mut g = Generator::new(0);
    let mut w = vec![0.0f32; 6];
    Init::PytorchDefault
        .fill_weight(&mut w, 2, 3, &mut g)
        .unwrap();
    let shown: Vec<String> = w.iter().map(|x| format!("{x:.4}")).collect();
    assert_eq!(
        shown,
        [
            "-0.0043", "0.3097", "-0.4752", "-0.4249", "-0.2224", "0.1548"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

#[test]
fn constant_weights_produce_symmetry_diagnostics() {
    for init in [Init::Zeros, Init::Ones, Init::Constant(0.5)] {
        let model = Mlp::builder(4)
            .layer_spec(LayerSpec::new(3, Activation::Relu).weight_init(init.clone()))
            .layer(2, Activation::Identity)
            .seed(1)
            .build()
            .unwrap();
        let diags = model.diagnostics();
        assert!(!diags.is_empty(), "{init:?}");
        assert!(
            diags
                .iter()
                .any(|d| d.contains("symmetry") && d.contains("layer 0")),
            "{init:?}: {diags:?}"
        );
    }
    let model = Mlp::builder(4)
        .layer(3, Activation::Relu)
        .layer(2, Activation::Identity)
        .seed(1)
        .build()
        .unwrap();
    assert!(model.diagnostics().is_empty(), "{:?}", model.diagnostics());
}

#[test]
fn same_seed_same_weights_different_seed_different() {
    let build = |seed: u64, weight_init: Init| {
        Mlp::builder(5)
            .layer_spec(LayerSpec::new(8, Activation::Tanh).weight_init(weight_init.clone()))
            .layer_spec(LayerSpec::new(3, Activation::Identity).weight_init(weight_init))
            .seed(seed)
            .build()
            .unwrap()
    };
    for init in [
        Init::PytorchDefault,
        Init::xavier_uniform(),
        Init::kaiming_normal(),
        Init::trunc_normal(),
        Init::Normal {
            mean: 0.0,
            std: 0.02,
        },
    ] {
        let a = build(7, init.clone());
        let b = build(7, init.clone());
        let c = build(8, init.clone());
        assert_eq!(a, b, "{init:?}");
        assert_ne!(
            a.linears().next().unwrap().weight(),
            c.linears().next().unwrap().weight(),
            "{init:?}"
        );
    }
}
