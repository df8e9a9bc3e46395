//! Activation functions with PyTorch's exact semantics, including the edge cases
//! (±inf, NaN, large |x|) described in `pytorch-semantics.md` §3.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An activation applied after a Linear layer.
///
/// All but [`Activation::Softmax`] are elementwise; softmax normalises each row (the feature
/// dimension), as `nn.Softmax(dim=1)` does on a `[batch, features]` input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// No activation (`nn.Identity`; torchsummary shows no row for it).
    Identity,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `max(0, x)`; NaN propagates.
    Relu,
    /// `x` if `x > 0`, else `slope · x` (PyTorch's default slope is 0.01).
    LeakyRelu(f32),
    /// Row-wise softmax, numerically stable (the row max is subtracted first).
    Softmax,
    /// GELU, exact form: `x · ½ · (1 + erf(x / √2))`.
    Gelu,
    /// GELU, tanh approximation: `½x · (1 + tanh(√(2/π) · (x + 0.044715 x³)))`.
    GeluTanh,
    /// SiLU (swish): `x / (1 + exp(-x))`.
    Silu,
    /// ELU with the given alpha: `x` if `x > 0`, else `alpha · (exp(x) − 1)`.
    Elu(f32),
}

/// PyTorch's default negative slope for `nn.LeakyReLU`.
pub const DEFAULT_LEAKY_SLOPE: f32 = 0.01;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_CUBIC: f64 = 0.044715;

impl Activation {
    /// Every activation, with default parameters; handy for tests and help texts.
    pub const ALL: [Activation; 10] = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu(DEFAULT_LEAKY_SLOPE),
        Activation::Softmax,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Silu,
        Activation::Elu(1.0),
    ];

    /// The class name PyTorch's module would have, as torchsummary prints it, or `None` for identity
    /// (which the equivalent `nn.Sequential` leaves out).
    pub fn module_name(self) -> Option<&'static str> {
        Some(match self {
            Activation::Identity => return None,
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::Relu => "ReLU",
            Activation::LeakyRelu(_) => "LeakyReLU",
            Activation::Softmax => "Softmax",
            Activation::Gelu | Activation::GeluTanh => "GELU",
            Activation::Silu => "SiLU",
            Activation::Elu(_) => "ELU",
        })
    }

    /// True for softmax, which needs a whole row; false for elementwise activations.
    pub fn is_rowwise(self) -> bool {
        matches!(self, Activation::Softmax)
    }

    /// Applies an elementwise activation to one f32 value with PyTorch's f32 arithmetic
    /// (so `sigmoid(-100.0) == 0.0` and `silu(-100.0) == -0.0`, as in PyTorch).
    /// Softmax is not elementwise: this returns `x` for it; use [`softmax_row_f32`].
    pub fn apply_f32(self, x: f32) -> f32 {
        match self {
            Activation::Identity | Activation::Softmax => x,
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Relu => relu(x),
            Activation::LeakyRelu(slope) => {
                if x > 0.0 {
                    x
                } else {
                    x * slope
                }
            }
            Activation::Gelu => {
                (f64::from(x) * 0.5 * (1.0 + erf(f64::from(x) / 2f64.sqrt()))) as f32
            }
            Activation::GeluTanh => Activation::GeluTanh.apply_f64(f64::from(x)) as f32,
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Elu(alpha) => {
                if x > 0.0 {
                    x
                } else {
                    (x.exp() - 1.0) * alpha
                }
            }
        }
    }

    /// The same activation in f64: the CPU reference path's arithmetic. A leaky slope or ELU alpha
    /// is used as the decimal it was written as (`0.1`, not `0.1f32` widened), as in PyTorch's
    /// float64 kernels.
    pub fn apply_f64(self, x: f64) -> f64 {
        match self {
            Activation::Identity | Activation::Softmax => x,
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Relu => relu(x),
            Activation::LeakyRelu(slope) => {
                if x > 0.0 {
                    x
                } else {
                    x * param_f64(slope)
                }
            }
            Activation::Gelu => x * 0.5 * (1.0 + erf(x / 2f64.sqrt())),
            Activation::GeluTanh => {
                0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)).tanh())
            }
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::Elu(alpha) => {
                if x > 0.0 {
                    x
                } else {
                    (x.exp() - 1.0) * param_f64(alpha)
                }
            }
        }
    }
}

/// A slope or alpha as PyTorch's float64 kernels see it: the Python float that was written
/// (`0.1`), not the stored f32 widened (`0.10000000149011612`). That value is the shortest decimal
/// that rounds to the f32, which is what `Display` prints, so `leaky_relu:0.1` in f64 gives
/// exactly PyTorch's float64 result.
fn param_f64(p: f32) -> f64 {
    let wide = f64::from(p);
    if wide.fract() == 0.0 && wide.abs() < 1e7 {
        // Small integers (ELU's default alpha 1) print as themselves: skip the formatting.
        return wide;
    }
    p.to_string().parse().unwrap_or(wide)
}

/// `max(0, x)` that propagates NaN, as PyTorch's `clamp_min` does.
fn relu<T: PartialOrd + Default + Copy>(x: T) -> T {
    #[allow(clippy::eq_op)]
    let is_nan = x != x;
    if is_nan || x > T::default() {
        x
    } else {
        T::default()
    }
}

/// Softmax of one row in f64, PyTorch's algorithm: m = max (NaN-propagating), e = exp(x − m),
/// y = e · (1/Σe). A row with +inf or NaN, or all −inf, becomes all NaN.
pub fn softmax_row_f64(row: &mut [f64]) {
    softmax_row(row, f64::NEG_INFINITY, f64::NAN, f64::exp);
}

/// Softmax of one row in f32, the same algorithm as [`softmax_row_f64`] in f32 arithmetic.
pub fn softmax_row_f32(row: &mut [f32]) {
    softmax_row(row, f32::NEG_INFINITY, f32::NAN, f32::exp);
}

/// The softmax algorithm for either float type (std has no float trait; the constants and `exp`
/// come in as arguments).
fn softmax_row<T>(row: &mut [T], neg_inf: T, nan: T, exp: fn(T) -> T)
where
    T: Copy
        + PartialOrd
        + std::ops::Sub<Output = T>
        + std::ops::AddAssign
        + std::ops::MulAssign
        + std::ops::Div<Output = T>
        + From<u8>,
{
    #[allow(clippy::eq_op)]
    let is_nan = |v: T| v != v;
    let m = row.iter().copied().fold(neg_inf, |m, x| {
        if is_nan(x) || is_nan(m) {
            nan
        } else if x > m {
            x
        } else {
            m
        }
    });
    let mut sum = T::from(0);
    for x in row.iter_mut() {
        *x = exp(*x - m);
        sum += *x;
    }
    let inv = T::from(1) / sum;
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// The error function, within 7e-16 (6 ulp) of the exact value in f64 (std has no stable `erf`).
///
/// Maclaurin series for |x| < 1.5, a continued fraction for erfc beyond. (The series' alternating
/// terms grow to about e^(x²) before they shrink, so it loses accuracy further out: up to 5e-14
/// near 3.)
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    let r = if ax < 1.5 {
        // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
        let x2 = ax * ax;
        let mut term = ax;
        let mut sum = ax;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            // `<=`, not `<`: at x = 0 every term is 0 and `<` would never end the loop.
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else if ax < 27.0 {
        // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))), evaluated bottom-up;
        // 120 levels converge to the last bit from x = 1.5 on (80 already do).
        let mut f = ax;
        for k in (1..=120).rev() {
            f = ax + (k as f64 / 2.0) / f;
        }
        1.0 - (-ax * ax).exp() / (std::f64::consts::PI.sqrt() * f)
    } else {
        1.0
    };
    r.copysign(x)
}

impl fmt::Display for Activation {
    /// The CLI name: `identity`, `sigmoid`, `tanh`, `relu`, `leaky_relu:SLOPE`, `softmax`, `gelu`,
    /// `gelu_tanh`, `silu`, `elu` (or `elu:ALPHA` when alpha is not 1).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Identity => write!(f, "identity"),
            Activation::Sigmoid => write!(f, "sigmoid"),
            Activation::Tanh => write!(f, "tanh"),
            Activation::Relu => write!(f, "relu"),
            Activation::LeakyRelu(s) => write!(f, "leaky_relu:{s}"),
            Activation::Softmax => write!(f, "softmax"),
            Activation::Gelu => write!(f, "gelu"),
            Activation::GeluTanh => write!(f, "gelu_tanh"),
            Activation::Silu => write!(f, "silu"),
            Activation::Elu(a) if *a == 1.0 => write!(f, "elu"),
            Activation::Elu(a) => write!(f, "elu:{a}"),
        }
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Parses a CLI name (case-insensitive): see the `Display` impl for the list.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, param) = match lower.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (lower.as_str(), None),
        };
        let number = |p: &str| -> Result<f32> {
            p.parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    Error::invalid(format!("activation '{s}': '{p}' is not a finite number"))
                })
        };
        let act = match (name, param) {
            ("identity" | "linear" | "none", None) => Activation::Identity,
            ("sigmoid", None) => Activation::Sigmoid,
            ("tanh", None) => Activation::Tanh,
            ("relu", None) => Activation::Relu,
            ("leaky_relu", None) => Activation::LeakyRelu(DEFAULT_LEAKY_SLOPE),
            ("leaky_relu", Some(p)) => Activation::LeakyRelu(number(p)?),
            ("softmax", None) => Activation::Softmax,
            ("gelu", None) => Activation::Gelu,
            ("gelu_tanh", None) => Activation::GeluTanh,
            ("silu" | "swish", None) => Activation::Silu,
            ("elu", None) => Activation::Elu(1.0),
            ("elu", Some(p)) => Activation::Elu(number(p)?),
            _ => {
                return Err(Error::invalid(format!(
                    "unknown activation '{s}'; expected one of identity, sigmoid, tanh, relu, \
                     leaky_relu[:SLOPE], softmax, gelu, gelu_tanh, silu, elu[:ALPHA]"
                )));
            }
        };
        Ok(act)
    }
}

/// Parses a comma-separated list of activation names (`relu,relu,softmax`).
pub fn parse_list(s: &str) -> Result<Vec<Activation>> {
    s.split(',').map(str::parse).collect()
}
