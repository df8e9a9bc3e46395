//! Derivatives of the activations, with PyTorch autograd's formulas and conventions at the
//! kinks (ATen's `*_backward` kernels): ReLU'(0) = 0, LeakyReLU'(0) = slope, ELU'(0) = α·scale,
//! Hardtanh/ReLU6' = 0 on both bounds, Hardsigmoid' = 0 at ±3, Hardswish'(−3) = 0 and
//! Hardswish'(3) = 1 (torch 2.15's kernel, checked against autograd), Softplus' is 1 above the
//! threshold. Sigmoid, tanh, softmax and log-softmax differentiate from their (f32) output as
//! PyTorch does; the rest from the input. Everything in f64.

use crate::activation::{Activation, SELU_ALPHA, SELU_SCALE, erf, param_f64};

/// `dy/dx` of an elementwise activation at input `x` with output `y`.
pub(crate) fn derivative(a: Activation, x: f64, y: f64) -> f64 {
    let [p0, p1] = a.spec().values.map(param_f64);
    match a {
        Activation::Identity | Activation::Softmax | Activation::LogSoftmax => 1.0,
        Activation::Sigmoid => (1.0 - y) * y,
        Activation::Tanh => 1.0 - y * y,
        // threshold_backward on the result: 0 where the output is not > 0.
        Activation::Relu => f64::from(u8::from(y > 0.0)),
        Activation::LeakyRelu(_) => {
            if x > 0.0 {
                1.0
            } else {
                p0
            }
        }
        Activation::Elu(_) => elu(x, p0, 1.0, 1.0),
        Activation::Selu => elu(x, SELU_ALPHA, SELU_SCALE, 1.0),
        Activation::Celu(_) => elu(x, p0, 1.0, 1.0 / p0),
        Activation::Gelu => {
            let cdf = 0.5 * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2));
            let pdf = (-0.5 * x * x).exp()
                * (std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2 * 0.5);
            cdf + x * pdf
        }
        Activation::GeluTanh => {
            let beta = std::f64::consts::SQRT_2 * std::f64::consts::FRAC_2_SQRT_PI * 0.5;
            let kappa = 0.044715;
            let inner = beta * (x + kappa * x * x * x);
            let t = inner.tanh();
            let left = 0.5 * x;
            let right = 1.0 + t;
            0.5 * right + left * (1.0 - t * t) * beta * (1.0 + 3.0 * kappa * x * x)
        }
        Activation::Silu => {
            let s = 1.0 / (1.0 + (-x).exp());
            s * (1.0 + x * (1.0 - s))
        }
        Activation::Mish => {
            let s = 1.0 / (1.0 + (-x).exp());
            let t = x.exp().ln_1p().tanh();
            t + x * s * (1.0 - t * t)
        }
        Activation::Softplus { .. } => {
            let (beta, threshold) = (p0, p1);
            let z = (x * beta).exp();
            if x * beta > threshold {
                1.0
            } else {
                z / (z + 1.0)
            }
        }
        Activation::Hardtanh { .. } => inside(x, p0, p1),
        Activation::Relu6 => inside(x, 0.0, 6.0),
        Activation::Hardsigmoid => {
            if x > -3.0 && x < 3.0 {
                1.0 / 6.0
            } else {
                0.0
            }
        }
        Activation::Hardswish => {
            if x <= -3.0 {
                0.0
            } else if x < 3.0 {
                x / 3.0 + 0.5
            } else {
                1.0
            }
        }
    }
}

/// ATen's `elu_backward` on the input: `x ≤ 0 ? input_scale·α·scale·exp(x·input_scale) : scale`.
fn elu(x: f64, alpha: f64, scale: f64, input_scale: f64) -> f64 {
    if x <= 0.0 {
        input_scale * alpha * scale * (x * input_scale).exp()
    } else {
        scale
    }
}

/// `hardtanh_backward`: 1 strictly inside `(lo, hi)`, 0 on and beyond the bounds. NaN passes
/// the gradient on (neither comparison holds), as in ATen.
fn inside(x: f64, lo: f64, hi: f64) -> f64 {
    if x <= lo || x >= hi { 0.0 } else { 1.0 }
}

/// Softmax's vector-Jacobian product on one row from its output `y`: `y·(g − Σ g·y)`.
pub(crate) fn softmax_row_backward(y: &[f32], g: &[f32], out: &mut [f64]) {
    let dot: f64 = y
        .iter()
        .zip(g)
        .map(|(&y, &g)| f64::from(y) * f64::from(g))
        .sum();
    for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
        *o = f64::from(y) * (f64::from(g) - dot);
    }
}

/// Log-softmax's vector-Jacobian product on one row from its output `y`: `g − exp(y)·Σ g`.
pub(crate) fn log_softmax_row_backward(y: &[f32], g: &[f32], out: &mut [f64]) {
    let sum: f64 = g.iter().map(|&g| f64::from(g)).sum();
    for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
        *o = f64::from(g) - f64::from(y).exp() * sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ELEMENTWISE: [Activation; 19] = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu(0.01),
        Activation::LeakyRelu(0.2),
        Activation::Elu(1.0),
        Activation::Elu(0.5),
        Activation::Selu,
        Activation::Celu(1.5),
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Silu,
        Activation::Mish,
        Activation::Softplus {
            beta: 2.0,
            threshold: 1.0,
        },
        Activation::Hardtanh {
            min: -2.0,
            max: 0.5,
        },
        Activation::Relu6,
        Activation::Hardsigmoid,
        Activation::Hardswish,
        Activation::Identity,
    ];

    /// Central differences of the f64 function away from the kinks: the derivative formulas
    /// agree to 1e-6 relative (the difference quotient's own error at h = 1e-6 is ~1e-10).
    #[test]
    fn derivatives_match_finite_differences() {
        let kinks = [0.0, 0.5, -2.0, 6.0, 3.0, -3.0];
        let mut g = crate::Generator::new(3);
        for a in ELEMENTWISE {
            for _ in 0..200 {
                let x = g.uniform_f64(-8.0, 8.0);
                if kinks.iter().any(|k| (x - k).abs() < 1e-3) {
                    continue;
                }
                let h = 1e-6;
                let fd = (a.apply_f64(x + h) - a.apply_f64(x - h)) / (2.0 * h);
                let d = derivative(a, x, a.apply_f64(x));
                assert!(
                    (fd - d).abs() <= 1e-6 * (1.0 + d.abs()),
                    "{a} at {x}: analytic {d}, finite difference {fd}"
                );
            }
        }
    }

    #[test]
    fn row_backward_matches_finite_differences() {
        let x = [0.3, -1.2, 2.5, 0.0, 1.1];
        let g = [0.7f32, -0.1, 0.4, 1.3, -0.9];
        for log in [false, true] {
            let f = |x: &[f64]| -> f64 {
                let mut r = x.to_vec();
                if log {
                    crate::activation::log_softmax_row_f64(&mut r);
                } else {
                    crate::activation::softmax_row_f64(&mut r);
                }
                r.iter().zip(&g).map(|(a, &b)| a * f64::from(b)).sum()
            };
            let mut y = x.to_vec();
            if log {
                crate::activation::log_softmax_row_f64(&mut y);
            } else {
                crate::activation::softmax_row_f64(&mut y);
            }
            // The analytic form is evaluated on the exact (f64) output here.
            let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
            let mut out = [0.0; 5];
            if log {
                log_softmax_row_backward(&y32, &g, &mut out);
            } else {
                softmax_row_backward(&y32, &g, &mut out);
            }
            for i in 0..5 {
                let (mut p, mut m) = (x.to_vec(), x.to_vec());
                p[i] += 1e-6;
                m[i] -= 1e-6;
                let fd = (f(&p) - f(&m)) / 2e-6;
                // y was rounded to f32 (PyTorch differentiates from its f32 output): 1e-6.
                assert!(
                    (fd - out[i]).abs() < 1e-6,
                    "log={log} i={i}: {} vs {fd}",
                    out[i]
                );
            }
        }
    }
}
