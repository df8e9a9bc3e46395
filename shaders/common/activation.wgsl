// The elementwise activations, one function each, `act_<name>` for the Activation whose
// `spec().name` is <name> (src/activation.rs; a unit test checks the two lists agree). Every
// function takes the activation's two parameters (leaky slope, ELU alpha, softplus beta and
// threshold, hardtanh bounds; 0 when unused) as run-time values from the epilogue's parameter
// buffer, never as constants: a constant 0 slope would let the compiler fold `x * slope` to 0
// and turn NaN and -inf into 0. PyTorch's formulas and edge cases: pytorch-semantics.md §3.

fn act_identity(x: f32, p0: f32, p1: f32) -> f32 {
    return x;
}

fn act_sigmoid(x: f32, p0: f32, p1: f32) -> f32 {
    return wm_sigmoid(x);
}

fn act_tanh(x: f32, p0: f32, p1: f32) -> f32 {
    return wm_tanh(x);
}

// NaN propagates (PyTorch's clamp_min); WGSL's max() may drop it.
fn act_relu(x: f32, p0: f32, p1: f32) -> f32 {
    return select(max(x, 0.0), x, wm_is_nan(x));
}

// p0: the negative slope.
fn act_leaky_relu(x: f32, p0: f32, p1: f32) -> f32 {
    return select(x * p0, x, x > 0.0);
}

// x·½·(1 + erf(x/√2)) = x·½·erfc(−x/√2), with z² = x²/2 from x itself (exact, fma) so the
// far tail keeps its digits (gelu(−13) = −7.95e-38).
fn act_gelu(x: f32, p0: f32, p1: f32) -> f32 {
    if wm_is_nan(x) {
        return x;
    }
    let a = abs(x);
    let a2 = a * a;
    let c = wm_erfc_parts(a * 0.70710678118654752, 0.5 * a2, 0.5 * fma(a, a, -a2));
    let e = select(2.0 - c, c, x < 0.0);
    return x * 0.5 * e;
}

// ½x·(1 + tanh(u)) = x·σ(2u): the same function without the cancellation of 1 + tanh(u) for
// very negative x (gelu_tanh(−5) = −2.29e-7, where the literal form gives −2.98e-7 in f32).
fn act_gelu_tanh(x: f32, p0: f32, p1: f32) -> f32 {
    let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * u));
}

fn act_silu(x: f32, p0: f32, p1: f32) -> f32 {
    return x / (1.0 + exp(-x));
}

// p0: alpha. expm1 keeps elu:0.5(-1e-6) = -5e-7 (exp(x) - 1 would give -5.4e-7).
fn act_elu(x: f32, p0: f32, p1: f32) -> f32 {
    return select(wm_expm1(x) * p0, x, x > 0.0);
}

fn act_selu(x: f32, p0: f32, p1: f32) -> f32 {
    return 1.0507009873554805 * select(1.6732632423543772 * wm_expm1(x), x, x > 0.0);
}

// x·tanh(softplus(x)); past 20 softplus(x) = x and tanh = 1 in f32.
fn act_mish(x: f32, p0: f32, p1: f32) -> f32 {
    let sp = select(wm_log1p(exp(x)), x, x > 20.0);
    return x * wm_tanh(sp);
}

// p0: beta, p1: threshold; the identity where beta·x > threshold (strictly).
fn act_softplus(x: f32, p0: f32, p1: f32) -> f32 {
    let bx = x * p0;
    return select(wm_log1p(exp(bx)) / p0, x, bx > p1);
}

// p0: min_val, p1: max_val; NaN propagates (PyTorch's clamp).
fn act_hardtanh(x: f32, p0: f32, p1: f32) -> f32 {
    return select(min(max(x, p0), p1), x, wm_is_nan(x));
}

fn act_relu6(x: f32, p0: f32, p1: f32) -> f32 {
    return select(min(max(x, 0.0), 6.0), x, wm_is_nan(x));
}

fn act_hardsigmoid(x: f32, p0: f32, p1: f32) -> f32 {
    return select(min(max(x + 3.0, 0.0), 6.0) / 6.0, x, wm_is_nan(x));
}

fn act_hardswish(x: f32, p0: f32, p1: f32) -> f32 {
    return select(x * min(max(x + 3.0, 0.0), 6.0) / 6.0, x, wm_is_nan(x));
}

// p0: alpha.
fn act_celu(x: f32, p0: f32, p1: f32) -> f32 {
    return select(p0 * wm_expm1(x / p0), x, x > 0.0);
}
