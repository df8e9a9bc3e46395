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

// erfc(z) for z >= 0 with a relative error near 1e-6 at every z down to f32's smallest normal
// (a Chebyshev fit of erfc(z)·exp(z²) in t = 1/(1 + z/2), Numerical Recipes' erfcc), so GELU
// keeps its small values for very negative x instead of cancelling to 0.
fn wm_erfc_pos(z: f32) -> f32 {
    let z2 = z * z;
    return wm_erfc_parts(z, z2, fma(z, z, -z2));
}

// erfc(z) given z² exactly as z2 + rest (GELU passes x²/2 from x, since z = x/√2 rounded would
// move z² by 1e-5 at x = −13). exp(p − z²) is taken as 2^−n · exp(p − r − rest) with
// z2 = n·ln 2 + r (ln 2 in two parts, Cody and Waite): WGSL's exp is accurate only for small
// arguments (its error bound grows with |x|, 1e-5 relative at 85), and p − z2 would round z2's
// last digits away. Past z = 10.5 erfc is below f32's smallest subnormal.
fn wm_erfc_parts(z: f32, z2: f32, rest: f32) -> f32 {
    if z >= 10.5 {
        return 0.0;
    }
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let n = round(z2 * 1.44269504);
    let r = fma(-n, 0.693145751953125, z2) - n * 1.4286068202862268e-6;
    let k = i32(n);
    return t * ldexp(ldexp(exp(p - r - rest), -(k / 2)), -(k - k / 2));
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

// ln x: -inf at 0, NaN below 0 and for NaN, as C's log (WGSL leaves those undefined). A
// subnormal x is scaled into the normal range first: WGSL's log need not handle it (llvmpipe
// gives -88.03 for log(1e-45), not -103.28); on a device that flushes it, the scaled value is 0
// and the result -inf, log of the flushed input.
fn wm_log(x: f32) -> f32 {
    if wm_is_nan(x) || x < 0.0 {
        return wm_nan();
    }
    var s = x;
    var shift = 0.0;
    if x < 1.17549435e-38 {
        s = x * 16777216.0;
        shift = 16.635532333438687; // 24 ln 2
    }
    if s == 0.0 {
        return -wm_inf();
    }
    return log(s) - shift;
}

// √x, NaN below 0 (WGSL leaves it undefined).
fn wm_sqrt(x: f32) -> f32 {
    return select(sqrt(x), wm_nan(), x < 0.0 || wm_is_nan(x));
}

// C99's pow (Annex F) on every special value: pow(x, ±0) = 1 and pow(1, y) = 1 even for NaN;
// pow(−1, ±inf) = 1; |x| < 1 or > 1 to ±inf gives 0 or inf; ±0 and ±inf bases by the sign of y
// and whether y is an odd integer; NaN for a finite negative base with a non-integer exponent.
// Integer exponents 1, 2, 3, −1, −2 as PyTorch computes them (x·x, x·x·x, 1/x, 1/(x·x)), others
// through exp2 and log2 of |x|. (A constant exponent of ±0.5 never gets here: the epilogue
// generator writes sqrt for it, as torch.pow(tensor, 0.5) computes.)
fn wm_pow(x: f32, y: f32) -> f32 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if wm_is_nan(x) || wm_is_nan(y) {
        return wm_nan();
    }
    let a = abs(x);
    let inf = wm_inf();
    if abs(y) == inf {
        if a == 1.0 {
            return 1.0;
        }
        return select(0.0, inf, (a > 1.0) == (y > 0.0));
    }
    let integer = floor(y) == y;
    // Every f32 of magnitude 2^24 or more is an even integer.
    let odd = integer && abs(y) < 16777216.0 && (i32(abs(y)) & 1) == 1;
    if x < 0.0 && a != inf && !integer {
        return wm_nan();
    }
    var m: f32;
    if y == 1.0 {
        m = a;
    } else if y == 2.0 {
        m = a * a;
    } else if y == 3.0 {
        m = a * a * a;
    } else if y == -1.0 {
        m = 1.0 / a;
    } else if y == -2.0 {
        m = 1.0 / (a * a);
    } else if a == 0.0 {
        m = select(0.0, inf, y < 0.0);
    } else if a == inf {
        m = select(0.0, inf, y > 0.0);
    } else {
        m = wm_pow_magnitude(a, y);
    }
    // The sign bit, so that −0 counts as negative: pow(−0, 3) = −0, pow(−0, −1) = −inf.
    let negative = (bitcast<u32>(x) & 0x80000000u) != 0u;
    return select(m, -m, odd && negative);
}

// a^y for a finite a > 0 and a finite y: 2^(y·log2 a) with log2 a = e + log2 m (frexp, m near
// 1) and 2^t = 2^n · 2^(t − n) for the integer n nearest t, because WGSL's log2 and exp2
// are accurate only near 1 and near 0 (exp2's error bound grows with |t|: 3 + 2|t| ulp, so
// 1e10 ** 2.5 could be off by 1e-5). The rounding of y·e is kept (fma), and 2^n is applied as
// two exact powers of two (wm_exp2i), each within the normal range.
fn wm_pow_magnitude(a: f32, y: f32) -> f32 {
    // A subnormal a is scaled into the normal range (frexp need not handle it; llvmpipe's
    // reads 1e-45 as 2^-127); where the device flushes it, frexp(0) and log2(0) give 0 or inf,
    // the power of the flushed input.
    var s = a;
    var shift = 0.0;
    if a < 1.17549435e-38 {
        s = a * 16777216.0;
        shift = -24.0;
    }
    // m in [0.707, 1.414): log2 m = log1p(m − 1)/ln 2 (m − 1 exact) keeps its digits, where
    // WGSL's log2 promises only an absolute 2^-21.
    let f = frexp(s);
    var m = f.fract;
    var e = f32(f.exp) + shift;
    if m < 0.70710678 {
        m = m * 2.0;
        e = e - 1.0;
    }
    let hi = y * e;
    let lo = fma(y, e, -hi) + y * (wm_log1p(m - 1.0) * 1.44269504088896341);
    let t = hi + lo;
    if t >= 129.0 {
        return wm_inf();
    }
    if t <= -151.0 {
        return 0.0;
    }
    let n = round(t);
    let r = exp2((hi - n) + lo);
    let k = i32(n);
    return r * wm_exp2i(k / 2) * wm_exp2i(k - k / 2);
}

// 2^k for an integer k in [-126, 127], exactly, from its bits.
fn wm_exp2i(k: i32) -> f32 {
    return bitcast<f32>(u32(k + 127) << 23u);
}

// `x`, unchanged, hidden from the compiler: `zero` is a 0.0 the epilogue reads from its
// parameter buffer, so `x` and `wm_keep(x, zero)` are different values to it and no algebraic
// identity that IEEE arithmetic does not have (a − a = 0, a / a = 1, a + (−a) = 0, a · 0 = 0 with
// a equal to its own operand) can be applied between them.
fn wm_keep(x: f32, zero: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ bitcast<u32>(zero));
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
