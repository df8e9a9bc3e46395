// Math helpers shared by every kernel, with PyTorch's f32 semantics where WGSL leaves a case
// implementation-defined (NaN in max/min, log and sqrt outside their domain, pow of a negative
// base) and with formulas that keep their relative accuracy near 0, where `exp(x) - 1` and
// `log(1 + x)` lose every digit (tanh(-1e-10) must be -1e-10, not -3e-8).

// NaN test on the bits: `x != x` may be folded away by compilers that assume finite math.
fn wm_is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// NaN and +inf from their bits, through a variable: WebGPU's WGSL compiler in browsers (Tint)
// evaluates a bitcast of a constant when the shader is created and refuses a NaN or infinite
// result ("value nan cannot be represented as 'f32'"); a variable makes it a run-time value.
fn wm_nan() -> f32 {
    var bits = 0x7fc00000u;
    return bitcast<f32>(bits);
}

fn wm_inf() -> f32 {
    var bits = 0x7f800000u;
    return bitcast<f32>(bits);
}

// exp(x) - 1: a Taylor polynomial below |x| = 0.5 (truncation 5e-9 relative there), the plain
// difference beyond, where it cancels at most 1.5 bits.
fn wm_expm1(x: f32) -> f32 {
    if abs(x) < 0.5 {
        return x * (1.0 + x * (0.5 + x * (0.16666667 + x * (0.041666668 + x * (0.008333334
            + x * (0.0013888889 + x * (0.0001984127 + x * 0.0000248016)))))));
    }
    return exp(x) - 1.0;
}

// log(1 + y): through atanh below |y| = 0.5, log1p(y) = 2·atanh(s) with s = y / (2 + y),
// |s| <= 1/3, as an odd series (truncation below 1e-8 relative); the plain log beyond.
fn wm_log1p(y: f32) -> f32 {
    if abs(y) < 0.5 {
        let s = y / (2.0 + y);
        let s2 = s * s;
        return 2.0 * s * (1.0 + s2 * (0.33333334 + s2 * (0.2 + s2 * (0.14285715 + s2 * (0.11111111
            + s2 * (0.09090909 + s2 * (0.07692308 + s2 * 0.06666667)))))));
    }
    return wm_log(1.0 + y);
}

// tanh through expm1: tanh(a) = e / (e + 2) with e = expm1(2a), accurate at every magnitude;
// |x| > 10 is exactly ±1 in f32 (and exp would overflow past |x| ≈ 44 on drivers that build
// tanh on exp).
fn wm_tanh(x: f32) -> f32 {
    if wm_is_nan(x) {
        return x;
    }
    let a = min(abs(x), 10.0);
    let e = wm_expm1(2.0 * a);
    let t = select(e / (e + 2.0), 1.0, abs(x) >= 10.0);
    return select(t, -t, x < 0.0);
}

// 1 / (1 + exp(-x)): exp overflows to inf for x < -88.7, giving exactly 0 as PyTorch does.
fn wm_sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// erfc(z) for z >= 0 with a relative error near 1e-7 at every z (a Chebyshev fit of
// erfc(z)·exp(z²) in t = 1/(1 + z/2), Numerical Recipes' erfcc), so GELU keeps its small values
// for very negative x instead of cancelling to 0. exp(−z² + P) loses |z²|·ε to the rounding of
// z²: the exact remainder of z·z (fma) is added back.
fn wm_erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let z2 = z * z;
    let rest = fma(z, z, -z2);
    return t * exp(p - z2) * (1.0 - rest);
}

// erf: the Maclaurin series below |x| = 0.75 (relative accuracy near 0, where the A&S form's
// absolute error of 1.5e-7 would swamp erf(1e-7)), 1 - erfc beyond.
fn wm_erf(x: f32) -> f32 {
    if wm_is_nan(x) {
        return x;
    }
    let a = abs(x);
    if a < 0.75 {
        let x2 = x * x;
        return 1.1283791671 * x * (1.0 + x2 * (-0.33333334 + x2 * (0.1 + x2 * (-0.023809524
            + x2 * (0.0046296297 + x2 * (-0.00075757575 + x2 * (0.00010683761 + x2 * -0.000013227513)))))));
    }
    let r = 1.0 - wm_erfc_pos(a);
    return select(r, -r, x < 0.0);
}

// ln x: -inf at 0, NaN below 0 and for NaN, as C's log (WGSL leaves those undefined).
fn wm_log(x: f32) -> f32 {
    if wm_is_nan(x) || x < 0.0 {
        return wm_nan();
    }
    if x == 0.0 {
        return -wm_inf();
    }
    return log(x);
}

// √x, NaN below 0 (WGSL leaves it undefined).
fn wm_sqrt(x: f32) -> f32 {
    return select(sqrt(x), wm_nan(), x < 0.0 || wm_is_nan(x));
}

// C's pow for the cases models use: integer exponents of any base (x·x, x·x·x exactly), other
// exponents of non-negative bases; NaN for a negative base with a non-integer exponent.
fn wm_pow(x: f32, y: f32) -> f32 {
    if wm_is_nan(x) || wm_is_nan(y) {
        return select(wm_nan(), 1.0, y == 0.0);
    }
    if y == 0.0 {
        return 1.0;
    }
    if y == 1.0 {
        return x;
    }
    if y == 2.0 {
        return x * x;
    }
    if y == 3.0 {
        return x * x * x;
    }
    if y == 0.5 {
        return wm_sqrt(x);
    }
    let a = abs(x);
    if a == 0.0 {
        return select(0.0, wm_inf(), y < 0.0);
    }
    let m = exp2(y * log2(a));
    if x > 0.0 {
        return m;
    }
    if y != floor(y) {
        return wm_nan();
    }
    let odd = abs(y) < 16777216.0 && (i32(abs(y)) & 1) == 1;
    return select(m, -m, odd);
}

// max / min that propagate NaN (torch.maximum / torch.minimum).
fn wm_max(a: f32, b: f32) -> f32 {
    return select(max(a, b), wm_nan(), wm_is_nan(a) || wm_is_nan(b));
}

fn wm_min(a: f32, b: f32) -> f32 {
    return select(min(a, b), wm_nan(), wm_is_nan(a) || wm_is_nan(b));
}

fn wm_is_nan4(v: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}
