//! Activations against PyTorch's semantics (`pytorch-semantics.md` §3): values checked on PyTorch,
//! and the extremes (±inf, NaN, overflow in f32) that PyTorch's kernels produce.

use wgpu_mlp::Activation;
use wgpu_mlp::activation::{
    DEFAULT_LEAKY_SLOPE, erf, parse_list, softmax_row_f32, softmax_row_f64,
};

/// Asserts `got` matches `want`: bitwise (so the sign of zero counts), or, when `tol > 0`, within
/// `tol · max(1, |want|)` for finite values. A NaN matches only an expected NaN, and an expected
/// NaN only a NaN; infinities must match exactly.
#[track_caller]
fn check64(got: f64, want: f64, tol: f64, what: &str) {
    if want.is_nan() || got.is_nan() {
        assert!(
            want.is_nan() && got.is_nan(),
            "{what}: got {got:e}, want {want:e}"
        );
        return;
    }
    if got.to_bits() == want.to_bits() {
        return;
    }
    let ok = tol > 0.0
        && want.is_finite()
        && got.is_finite()
        && (got - want).abs() <= tol * want.abs().max(1.0);
    assert!(ok, "{what}: got {got:e}, want {want:e} (tolerance {tol:e})");
}

/// [`check64`] for f32 results. Widening to f64 is exact and keeps the sign of zero, NaN and
/// infinities, so the bitwise test means the same; the difference is then taken without rounding.
#[track_caller]
fn check32(got: f32, want: f32, tol: f32, what: &str) {
    check64(f64::from(got), f64::from(want), f64::from(tol), what);
}

/// Exactly `want`, sign of zero included (NaN: any NaN).
#[track_caller]
fn exact32(act: Activation, x: f32, want: f32) {
    check32(act.apply_f32(x), want, 0.0, &format!("{act}({x:e}) in f32"));
}

/// Exactly `want`, sign of zero included (NaN: any NaN).
#[track_caller]
fn exact64(act: Activation, x: f64, want: f64) {
    check64(act.apply_f64(x), want, 0.0, &format!("{act}({x:e}) in f64"));
}

/// Exact in both precisions.
#[track_caller]
fn exact_both(act: Activation, x: f32, want: f32) {
    exact32(act, x, want);
    exact64(act, f64::from(x), f64::from(want));
}

const INF: f32 = f32::INFINITY;
const NAN: f32 = f32::NAN;

#[test]
fn the_nan_helper_never_lets_nan_pass_as_a_number() {
    let r = std::panic::catch_unwind(|| check64(f64::NAN, 0.0, 1.0, "nan vs 0"));
    assert!(r.is_err());
    let r = std::panic::catch_unwind(|| check64(0.0, f64::NAN, 1.0, "0 vs nan"));
    assert!(r.is_err());
    let r = std::panic::catch_unwind(|| check32(f32::INFINITY, f32::MAX, 1.0, "inf vs max"));
    assert!(r.is_err());
    let r = std::panic::catch_unwind(|| check32(-0.0, 0.0, 0.0, "-0 vs 0"));
    assert!(r.is_err());
    check64(f64::NAN, -f64::NAN, 0.0, "nan vs nan");
    check32(1.0 + 1e-7, 1.0, 1e-6, "within tolerance");
}

#[test]
fn sigmoid_f32_extremes_follow_the_literal_kernel() {
    let s = Activation::Sigmoid;
    // exp(100) overflows f32, so 1/(1+inf) = 0 exactly, though the true value is a denormal.
    exact32(s, -100.0, 0.0);
    exact32(s, -89.0, 0.0);
    // Around -88 the result is a denormal: 6.0546e-39.
    let d = s.apply_f32(-88.0);
    assert!(d.is_subnormal(), "sigmoid(-88) = {d:e}");
    assert!((d - 6.054_602e-39).abs() < 1e-43, "sigmoid(-88) = {d:e}");
    // From about 16.6 up, 1 + exp(-x) rounds to 1 in f32.
    exact32(s, 16.7, 1.0);
    exact32(s, 20.0, 1.0);
    assert!(s.apply_f32(16.6) < 1.0);
    exact_both(s, INF, 1.0);
    exact_both(s, -INF, 0.0);
    exact_both(s, NAN, NAN);
    exact_both(s, 0.0, 0.5);
    check32(s.apply_f32(1.0), 0.731_058_6, 2e-7, "sigmoid(1)");
    check32(s.apply_f32(-2.0), 0.119_202_92, 2e-7, "sigmoid(-2)");
}

#[test]
fn sigmoid_f64_keeps_the_small_values() {
    let s = Activation::Sigmoid;
    let v = s.apply_f64(-100.0);
    assert!(
        (v / 3.720_075_976_020_835_6e-44 - 1.0).abs() < 1e-14,
        "{v:e}"
    );
    let v = s.apply_f64(-88.0);
    assert!((v / 6.054_601_895_401_186e-39 - 1.0).abs() < 1e-14, "{v:e}");
    check64(
        s.apply_f64(1.0),
        0.731_058_578_630_004_9,
        1e-15,
        "sigmoid(1)",
    );
    assert!(s.apply_f64(16.7) < 1.0);
}

#[test]
fn tanh_extremes() {
    let t = Activation::Tanh;
    exact_both(t, 1e4, 1.0);
    exact_both(t, -1e4, -1.0);
    exact_both(t, INF, 1.0);
    exact_both(t, -INF, -1.0);
    exact_both(t, NAN, NAN);
    exact_both(t, 0.0, 0.0);
    exact_both(t, -0.0, -0.0);
    // f32 reaches ±1 for |x| ≳ 9.01.
    exact32(t, 9.1, 1.0);
    exact32(t, -9.1, -1.0);
    check32(t.apply_f32(0.5), 0.462_117_16, 2e-7, "tanh(0.5)");
    check64(
        t.apply_f64(0.5),
        0.462_117_157_260_009_8,
        1e-15,
        "tanh(0.5)",
    );
}

#[test]
fn relu_propagates_nan_and_inf() {
    let r = Activation::Relu;
    exact_both(r, NAN, NAN);
    exact_both(r, INF, INF);
    exact_both(r, -INF, 0.0);
    exact_both(r, -3.5, 0.0);
    exact_both(r, 2.25, 2.25);
    exact_both(r, 0.0, 0.0);
    exact_both(r, f32::MIN_POSITIVE, f32::MIN_POSITIVE);
}

#[test]
fn leaky_relu() {
    let l = Activation::LeakyRelu(DEFAULT_LEAKY_SLOPE);
    exact32(l, -2.0, -2.0 * 0.01f32);
    check32(l.apply_f32(-2.0), -0.02, 1e-9, "leaky(-2)");
    exact_both(l, 3.0, 3.0);
    exact_both(l, NAN, NAN);
    exact_both(l, INF, INF);
    exact_both(l, -INF, -INF);
    exact_both(l, 0.0, 0.0);
    let l = Activation::LeakyRelu(0.2);
    exact32(l, -5.0, -5.0 * 0.2f32);
    // f64 uses the slope as written (0.2), as PyTorch's float64 kernel does with the Python
    // float, not the f32 widened (0.20000000298…).
    exact64(l, -5.0, -5.0 * 0.2);
    exact64(
        Activation::LeakyRelu(DEFAULT_LEAKY_SLOPE),
        -2.0,
        -2.0 * 0.01,
    );
    exact64(Activation::LeakyRelu(0.1), -3.0, -3.0 * 0.1);
    // A negative slope flips the sign, as in PyTorch.
    exact_both(Activation::LeakyRelu(-1.0), -4.0, 4.0);
}

#[test]
fn silu_extremes() {
    let s = Activation::Silu;
    // -100 / (1 + exp(100)) = -100 / inf = -0.0 in f32.
    let v = s.apply_f32(-100.0);
    assert_eq!(v, 0.0);
    assert!(v.is_sign_negative(), "silu(-100) must be -0.0, got {v:e}");
    exact32(s, -100.0, -0.0);
    exact32(s, INF, INF);
    exact32(s, NAN, NAN);
    // -inf / inf: NaN (from the formula).
    exact32(s, -INF, NAN);
    exact_both(s, 0.0, 0.0);
    check32(s.apply_f32(1.0), 0.731_058_6, 2e-7, "silu(1)");
    check32(s.apply_f32(-1.0), -0.268_941_43, 2e-7, "silu(-1)");
    // f64 keeps the tiny value.
    let v = s.apply_f64(-100.0);
    assert!(
        (v / -3.720_075_976_020_836e-42 - 1.0).abs() < 1e-14,
        "{v:e}"
    );
    exact64(s, f64::INFINITY, f64::INFINITY);
}

#[test]
fn gelu_both_forms() {
    // PyTorch: GELU(-3) = -0.00404969 (erf form), -0.00363739 (tanh form).
    let g = Activation::Gelu;
    let gt = Activation::GeluTanh;
    check32(g.apply_f32(-3.0), -0.004_049_694, 1e-9, "gelu(-3)");
    check32(gt.apply_f32(-3.0), -0.003_637_392, 1e-9, "gelu_tanh(-3)");
    check64(
        g.apply_f64(-3.0),
        -0.004_049_694_094_890_31,
        1e-15,
        "gelu(-3)",
    );
    check64(
        gt.apply_f64(-3.0),
        -0.003_637_392_081_772_994_3,
        1e-15,
        "gelu_tanh(-3)",
    );
    check64(g.apply_f64(1.0), 0.841_344_746_068_542_9, 1e-15, "gelu(1)");
    check64(
        gt.apply_f64(1.0),
        0.841_191_990_608_276_8,
        1e-15,
        "gelu_tanh(1)",
    );
    check64(g.apply_f64(3.0), 2.995_950_305_905_11, 1e-15, "gelu(3)");
    check64(
        gt.apply_f64(3.0),
        2.996_362_607_918_227,
        1e-15,
        "gelu_tanh(3)",
    );
    exact_both(g, 0.0, 0.0);
    exact_both(gt, 0.0, 0.0);
    exact_both(g, NAN, NAN);
    exact_both(gt, NAN, NAN);
    // Large |x|: x itself, or a zero.
    exact_both(g, 20.0, 20.0);
    exact_both(gt, 20.0, 20.0);
    assert_eq!(g.apply_f32(-20.0), 0.0);
    assert_eq!(gt.apply_f32(-20.0), 0.0);
}

#[test]
fn elu() {
    let e = Activation::Elu(1.0);
    exact_both(e, -INF, -1.0);
    exact_both(Activation::Elu(0.5), -INF, -0.5);
    // Alpha as written in f64 (0.3), the f32 value in f32.
    exact32(Activation::Elu(0.3), -INF, -0.3f32);
    exact64(Activation::Elu(0.3), f64::NEG_INFINITY, -0.3);
    exact_both(e, INF, INF);
    exact_both(e, NAN, NAN);
    exact_both(e, 2.5, 2.5);
    exact_both(e, 0.0, 0.0);
    check32(e.apply_f32(-1.0), -0.632_120_56, 2e-7, "elu(-1)");
    check64(
        e.apply_f64(-1.0),
        -0.632_120_558_828_557_7,
        1e-15,
        "elu(-1)",
    );
    check32(
        Activation::Elu(0.5).apply_f32(-1.0),
        -0.316_060_28,
        2e-7,
        "elu:0.5(-1)",
    );
}

#[test]
fn identity_and_softmax_are_pass_through_elementwise() {
    for x in [0.0f32, -0.0, 1.5, -INF, INF] {
        exact_both(Activation::Identity, x, x);
        exact_both(Activation::Softmax, x, x);
        exact_both(Activation::LogSoftmax, x, x);
    }
    exact_both(Activation::Identity, NAN, NAN);
    assert!(Activation::Softmax.is_row());
    assert!(
        Activation::ALL.iter().filter(|a| a.is_row()).eq([
            Activation::Softmax,
            Activation::LogSoftmax
        ]
        .iter())
    );
}

#[test]
fn erf_matches_known_values() {
    // Reference values: Python's math.erf (glibc, under 1 ulp). The points around 3 caught a
    // series that lost 5e-14 to cancellation there.
    let known = [
        (0.0, 0.0),
        (1e-10, 1.128_379_167_095_512_6e-10),
        (0.1, 0.112_462_916_018_284_9),
        (0.5, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
        (1.5, 0.966_105_146_475_310_8),
        (2.0, 0.995_322_265_018_952_7),
        (2.5, 0.999_593_047_982_555),
        (2.9, 0.999_958_902_121_900_5),
        (2.999, 0.999_977_769_831_400_2),
        (3.0, 0.999_977_909_503_001_4),
        (3.001, 0.999_978_048_339_082_2),
        (3.5, 0.999_999_256_901_627_6),
        (4.0, 0.999_999_984_582_742_1),
        (5.0, 0.999_999_999_998_462_6),
        (6.0, 1.0),
        (10.0, 1.0),
        (30.0, 1.0),
    ];
    for (x, want) in known {
        check64(erf(x), want, 8e-16, &format!("erf({x})"));
        check64(erf(-x), -want, 8e-16, &format!("erf(-{x})"));
    }
    exact64_erf(f64::INFINITY, 1.0);
    exact64_erf(f64::NEG_INFINITY, -1.0);
    assert!(erf(f64::NAN).is_nan());
    assert!(erf(-0.0).is_sign_negative());
    // Odd and monotone over a fine sweep, within [-1, 1].
    let mut prev = -1.0;
    for i in -8000..=8000 {
        let x = f64::from(i) / 1000.0;
        let y = erf(x);
        assert!((-1.0..=1.0).contains(&y), "erf({x}) = {y}");
        assert!(y >= prev, "erf not monotone at {x}: {y} < {prev}");
        assert_eq!(erf(-x), -y, "erf not odd at {x}");
        prev = y;
    }
}

#[track_caller]
fn exact64_erf(x: f64, want: f64) {
    check64(erf(x), want, 0.0, &format!("erf({x})"));
}

#[track_caller]
fn softmax32(row: &[f32]) -> Vec<f32> {
    let mut r = row.to_vec();
    softmax_row_f32(&mut r);
    r
}

#[track_caller]
fn softmax64(row: &[f64]) -> Vec<f64> {
    let mut r = row.to_vec();
    softmax_row_f64(&mut r);
    r
}

#[test]
fn softmax_is_shift_invariant_for_huge_inputs() {
    let want = [
        0.090_030_573_170_380_46,
        0.244_728_471_054_797_64,
        0.665_240_955_774_821_8,
    ];
    for row in [
        [1000.0, 1001.0, 1002.0],
        [1.0, 2.0, 3.0],
        [-1e4, -1e4 + 1.0, -1e4 + 2.0],
    ] {
        let y = softmax32(&row.map(|v: f64| v as f32));
        for (g, w) in y.iter().zip(want) {
            check32(*g, w as f32, 3e-7, "softmax f32");
        }
        let y = softmax64(&row);
        for (g, w) in y.iter().zip(want) {
            check64(*g, w, 1e-15, "softmax f64");
        }
    }
    // PyTorch's printed values.
    let y = softmax32(&[1000.0, 1001.0, 1002.0]);
    for (g, w) in y.iter().zip([0.090_030_57, 0.244_728_45, 0.665_240_94]) {
        check32(*g, w, 3e-7, "softmax([1000, 1001, 1002])");
    }
}

#[test]
fn softmax_special_values() {
    // -inf entries give exactly 0 when the max is finite.
    let y = softmax32(&[f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]);
    assert_eq!(
        y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        [0, 1f32.to_bits(), 0]
    );
    let y = softmax64(&[f64::NEG_INFINITY, 0.0, 0.0]);
    assert_eq!(y, [0.0, 0.5, 0.5]);
    assert!(y[0].is_sign_positive());

    let all_nan32 = |row: &[f32], what: &str| {
        let y = softmax32(row);
        assert!(y.iter().all(|v| v.is_nan()), "{what} (f32): {y:?}");
        let row64: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        let y = softmax64(&row64);
        assert!(y.iter().all(|v| v.is_nan()), "{what} (f64): {y:?}");
    };
    all_nan32(&[f32::NEG_INFINITY; 3], "all -inf");
    all_nan32(&[f32::NEG_INFINITY], "a single -inf");
    all_nan32(&[1.0, INF, 2.0], "+inf");
    all_nan32(&[INF, INF], "all +inf");
    all_nan32(&[1.0, 2.0, NAN], "NaN last");
    all_nan32(&[NAN, 1.0, 2.0], "NaN first");
    all_nan32(&[f32::NEG_INFINITY, NAN], "NaN and -inf");

    // A single entry is 1; equal entries share equally.
    assert_eq!(softmax32(&[-7.5]), [1.0]);
    assert_eq!(softmax64(&[123.0]), [1.0]);
    assert_eq!(softmax32(&[3.0; 4]), [0.25; 4]);
    // Rows sum to 1.
    let y = softmax64(&[0.3, -1.2, 4.0, 2.2, 0.0]);
    check64(y.iter().sum(), 1.0, 1e-15, "sum");
}

#[test]
fn names_round_trip_through_display_and_from_str() {
    for act in Activation::ALL {
        let name = act.to_string();
        assert_eq!(name.parse::<Activation>().unwrap(), act, "{name}");
        assert_eq!(
            name.to_uppercase().parse::<Activation>().unwrap(),
            act,
            "{name}"
        );
    }
    for act in [
        Activation::LeakyRelu(0.2),
        Activation::LeakyRelu(0.1),
        Activation::LeakyRelu(-0.5),
        Activation::Elu(0.5),
        Activation::Elu(2.0),
    ] {
        assert_eq!(act.to_string().parse::<Activation>().unwrap(), act);
    }
    let expect = [
        ("identity", Activation::Identity),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
        ("relu", Activation::Relu),
        ("leaky_relu:0.01", Activation::LeakyRelu(0.01)),
        ("softmax", Activation::Softmax),
        ("gelu", Activation::Gelu),
        ("gelu_tanh", Activation::GeluTanh),
        ("silu", Activation::Silu),
        ("elu", Activation::Elu(1.0)),
    ];
    for (name, act) in expect {
        assert_eq!(act.to_string(), name);
    }
    assert_eq!(Activation::LeakyRelu(0.2).to_string(), "leaky_relu:0.2");
    assert_eq!(Activation::Elu(0.5).to_string(), "elu:0.5");

    for (s, want) in [
        ("leaky_relu:0.2", Activation::LeakyRelu(0.2)),
        ("leaky_relu", Activation::LeakyRelu(DEFAULT_LEAKY_SLOPE)),
        ("Leaky_ReLU:0.2", Activation::LeakyRelu(0.2)),
        ("elu:0.5", Activation::Elu(0.5)),
        ("ELU", Activation::Elu(1.0)),
        ("ReLU", Activation::Relu),
        ("SIGMOID", Activation::Sigmoid),
        ("GeLU_Tanh", Activation::GeluTanh),
        ("  tanh ", Activation::Tanh),
    ] {
        assert_eq!(s.parse::<Activation>().unwrap(), want, "{s:?}");
    }
}

#[test]
fn bad_names_are_errors() {
    for bad in [
        "",
        "sigmoidd",
        "softplus:0",
        "hardtanh:3:-2",
        "relu6:1",
        "softplus:1:2:3",
        "leaky_relu:abc",
        "leaky_relu:",
        "leaky_relu:nan",
        "leaky_relu:inf",
        "elu:x",
        "relu:0.5",
        "sigmoid:1",
    ] {
        let err = bad.parse::<Activation>();
        assert!(err.is_err(), "{bad:?} parsed as {err:?}");
    }
    let msg = "leaky_relu:abc"
        .parse::<Activation>()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("abc"), "{msg}");
    let msg = "swishy".parse::<Activation>().unwrap_err().to_string();
    assert!(msg.contains("swishy") && msg.contains("sigmoid"), "{msg}");
}

#[test]
fn lists_parse_in_order() {
    assert_eq!(
        parse_list("relu,tanh,softmax").unwrap(),
        [Activation::Relu, Activation::Tanh, Activation::Softmax]
    );
    assert_eq!(
        parse_list("leaky_relu:0.1,identity").unwrap(),
        [Activation::LeakyRelu(0.1), Activation::Identity]
    );
    assert!(parse_list("relu,,tanh").is_err());
    assert!(parse_list("relu,bogus").is_err());
}

#[test]
fn module_names_are_pytorch_class_names() {
    let names: Vec<Option<&str>> = Activation::ALL.iter().map(|a| a.module_name()).collect();
    assert_eq!(
        names,
        [
            None,
            Some("Sigmoid"),
            Some("Tanh"),
            Some("ReLU"),
            Some("LeakyReLU"),
            Some("Softmax"),
            Some("GELU"),
            Some("GELU"),
            Some("SiLU"),
            Some("ELU"),
            Some("LogSoftmax"),
            Some("SELU"),
            Some("Mish"),
            Some("Softplus"),
            Some("Hardtanh"),
            Some("ReLU6"),
            Some("Hardsigmoid"),
            Some("Hardswish"),
            Some("CELU"),
        ]
    );
}

#[test]
fn celu() {
    // PyTorch's CELU: max(0, x) + min(0, alpha·(exp(x/alpha) − 1)).
    let c = Activation::Celu(0.5);
    check64(
        c.apply_f64(-1.0),
        0.5 * ((-2.0f64).exp() - 1.0),
        1e-15,
        "celu:0.5(-1)",
    );
    exact64(c, 2.0, 2.0);
    exact64(c, f64::NEG_INFINITY, -0.5);
    assert!(c.apply_f64(f64::NAN).is_nan());
    check64(c.apply_f64(-1e-10), -1e-10, 1e-19, "celu near 0");
    assert_eq!("celu:0.5".parse::<Activation>().unwrap(), c);
    assert_eq!(Activation::Celu(1.0).to_string(), "celu");
    assert!("celu:0".parse::<Activation>().is_err());
}
