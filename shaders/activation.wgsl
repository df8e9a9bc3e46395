// Activation functions with PyTorch's f32 semantics, shared by the fused Linear epilogue
// (linear.wgsl) and the standalone elementwise kernels (elementwise.wgsl). It is prepended to
// those sources on the host; `ACT` and `ALPHA` are pipeline-overridable constants, so the branch
// is resolved when the pipeline is compiled.
//
// ACT: 0 identity, 1 sigmoid, 2 tanh, 3 relu, 4 leaky_relu (slope ALPHA), 5 gelu (erf),
//      6 gelu (tanh form), 7 silu, 8 elu (alpha ALPHA). Softmax is a row kernel (softmax.wgsl).
override ACT: u32 = 0u;
override ALPHA: f32 = 0.0;

// NaN test on the bits: `x != x` may be folded away by compilers that assume finite math.
fn is_nan_f32(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn nan_f32() -> f32 {
    return bitcast<f32>(0x7fc00000u);
}

// tanh that never returns NaN for large |x|: several drivers build tanh on exp, which overflows
// past |x| ≈ 44. In f32, tanh(±10) is already exactly ±1, so clamping there loses nothing.
fn safe_tanh(x: f32) -> f32 {
    if is_nan_f32(x) {
        return x;
    }
    return tanh(clamp(x, -10.0, 10.0));
}

// erfc(z) for z >= 0, Abramowitz & Stegun 7.1.26 (|error of erf| < 1.5e-7). Written as
// t·poly·exp(−z²) so GELU keeps its small values for very negative x instead of cancelling to 0.
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return poly * exp(-z * z);
}

fn activate(x: f32) -> f32 {
    switch ACT {
        case 1u: {
            // 1/(1+exp(-x)): exp overflows to inf for x < -88.7, giving exactly 0 as PyTorch does.
            return 1.0 / (1.0 + exp(-x));
        }
        case 2u: {
            return safe_tanh(x);
        }
        case 3u: {
            // NaN propagates (PyTorch's clamp_min); WGSL's max() may drop it.
            return select(max(x, 0.0), x, is_nan_f32(x));
        }
        case 4u: {
            return select(x * ALPHA, x, x > 0.0);
        }
        case 5u: {
            // x·½·(1 + erf(x/√2)) = x·½·erfc(−x/√2).
            if is_nan_f32(x) {
                return x;
            }
            let z = x * 0.70710678118654752;
            var e: f32;
            if z >= 0.0 {
                e = 2.0 - erfc_pos(z);
            } else {
                e = erfc_pos(-z);
            }
            return x * 0.5 * e;
        }
        case 6u: {
            if is_nan_f32(x) {
                return x;
            }
            let inner = 0.7978845608028654 * (x + 0.044715 * x * x * x);
            return 0.5 * x * (1.0 + safe_tanh(inner));
        }
        case 7u: {
            return x / (1.0 + exp(-x));
        }
        case 8u: {
            return select((exp(x) - 1.0) * ALPHA, x, x > 0.0);
        }
        default: {
            return x;
        }
    }
}
