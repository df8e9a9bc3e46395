//! Activation functions with PyTorch's exact semantics, including the edge cases
//! (±inf, NaN, large |x|, tiny |x|) described in `pytorch-semantics.md` §3.
//!
//! Every fact about an activation lives in one place, [`Activation::spec`]: its name on the
//! command line and in `--arch`, the PyTorch class torchsummary prints, its parameters and their
//! defaults, and its float64 formula. The GPU calls the WGSL function `act_<name>` of
//! `shaders/common/activation.wgsl`; adding an activation is a variant and a `spec` arm
//! here plus that one WGSL function.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An activation: elementwise, or (softmax, log-softmax) over each row.
///
/// Row activations normalise the feature dimension, as `nn.Softmax(dim=1)` and
/// `nn.LogSoftmax(dim=1)` do on a `[batch, features]` input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// No activation (`nn.Identity`; as the activation of a [`Layer`](crate::Layer) it has no
    /// module and no summary row).
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
    /// ELU with the given alpha: `x` if `x > 0`, else `alpha · expm1(x)`.
    Elu(f32),
    /// Row-wise log-softmax: `(x − max) − log Σ exp(x − max)`.
    LogSoftmax,
    /// SELU: `scale · (x if x > 0 else α · expm1(x))` with PyTorch's two constants.
    Selu,
    /// Mish: `x · tanh(softplus(x))`.
    Mish,
    /// Softplus: `x` if `β·x > threshold`, else `log1p(exp(β·x)) / β`; the comparison is PyTorch
    /// float32's on every path (β·x rounded to f32), also in [`Activation::apply_f64`].
    Softplus {
        /// β (PyTorch's default 1).
        beta: f32,
        /// Above `β·x > threshold` the function is the identity (default 20).
        threshold: f32,
    },
    /// Hardtanh: `x` clamped to `[min, max]` (default `[-1, 1]`); NaN propagates.
    Hardtanh {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// ReLU6: `min(max(x, 0), 6)`.
    Relu6,
    /// Hardsigmoid: `relu6(x + 3) / 6`.
    Hardsigmoid,
    /// Hardswish: `x · relu6(x + 3) / 6`.
    Hardswish,
    /// CELU with the given alpha: `x` if `x > 0`, else `alpha · expm1(x / alpha)`.
    Celu(f32),
}

/// PyTorch's default negative slope for `nn.LeakyReLU`.
pub const DEFAULT_LEAKY_SLOPE: f32 = 0.01;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_CUBIC: f64 = 0.044715;
/// SELU's α and scale, as PyTorch writes them.
pub(crate) const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
pub(crate) const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// What an activation is, in one place: see [`Activation::spec`].
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The name in `--act` / `--arch` (lower case), and the WGSL function `act_<name>`.
    pub name: &'static str,
    /// The PyTorch module class torchsummary prints; `None` for identity.
    pub class: Option<&'static str>,
    /// Parameter names and PyTorch's defaults, in `name:p1:p2` order.
    pub params: &'static [(&'static str, f32)],
    /// The current parameter values (unused entries 0), as the GPU receives them.
    pub values: [f32; 2],
    /// Whether it normalises a whole row (softmax, log-softmax) instead of each element.
    pub row: bool,
    /// Builds the activation from parameter values (defaults filled in).
    make: fn([f32; 2]) -> Activation,
    /// The float64 formula (parameters as PyTorch's float64 kernels see them); `None` for the
    /// row activations.
    f64: Option<fn(f64, [f64; 2]) -> f64>,
}

impl Activation {
    /// Every activation with default parameters, one of each kind.
    pub const ALL: [Activation; 19] = [
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
        Activation::LogSoftmax,
        Activation::Selu,
        Activation::Mish,
        Activation::Softplus {
            beta: 1.0,
            threshold: 20.0,
        },
        Activation::Hardtanh {
            min: -1.0,
            max: 1.0,
        },
        Activation::Relu6,
        Activation::Hardsigmoid,
        Activation::Hardswish,
        Activation::Celu(1.0),
    ];

    /// Everything about this activation (see [`Spec`]).
    pub fn spec(self) -> Spec {
        use Activation as A;
        let s = |name, class, params, make, f64| Spec {
            name,
            class,
            params,
            values: [0.0; 2],
            row: false,
            make,
            f64: Some(f64),
        };
        let mut spec = match self {
            A::Identity => s("identity", None, &[], |_| A::Identity, |x, _| x),
            A::Sigmoid => s("sigmoid", Some("Sigmoid"), &[], |_| A::Sigmoid, sigmoid),
            A::Tanh => s("tanh", Some("Tanh"), &[], |_| A::Tanh, |x, _| x.tanh()),
            A::Relu => s("relu", Some("ReLU"), &[], |_| A::Relu, |x, _| relu(x)),
            A::LeakyRelu(_) => s(
                "leaky_relu",
                Some("LeakyReLU"),
                &[("negative_slope", DEFAULT_LEAKY_SLOPE)],
                |p| A::LeakyRelu(p[0]),
                |x, p| if x > 0.0 { x } else { x * p[0] },
            ),
            A::Gelu => s(
                "gelu",
                Some("GELU"),
                &[],
                |_| A::Gelu,
                |x, _| x * 0.5 * (1.0 + erf(x / 2f64.sqrt())),
            ),
            A::GeluTanh => s(
                "gelu_tanh",
                Some("GELU"),
                &[],
                |_| A::GeluTanh,
                |x, _| 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)).tanh()),
            ),
            A::Silu => s(
                "silu",
                Some("SiLU"),
                &[],
                |_| A::Silu,
                |x, _| x / (1.0 + (-x).exp()),
            ),
            A::Elu(_) => s(
                "elu",
                Some("ELU"),
                &[("alpha", 1.0)],
                |p| A::Elu(p[0]),
                |x, p| if x > 0.0 { x } else { x.exp_m1() * p[0] },
            ),
            A::Selu => s(
                "selu",
                Some("SELU"),
                &[],
                |_| A::Selu,
                |x, _| {
                    if x > 0.0 {
                        SELU_SCALE * x
                    } else {
                        SELU_SCALE * (SELU_ALPHA * x.exp_m1())
                    }
                },
            ),
            A::Mish => s(
                "mish",
                Some("Mish"),
                &[],
                |_| A::Mish,
                |x, _| x * x.exp().ln_1p().tanh(),
            ),
            A::Softplus { .. } => s(
                "softplus",
                Some("Softplus"),
                &[("beta", 1.0), ("threshold", 20.0)],
                |p| A::Softplus {
                    beta: p[0],
                    threshold: p[1],
                },
                |x, p| {
                    // The branch is PyTorch float32's on every path: β·x rounded to f32 and
                    // compared with the f32 threshold (softplus:0.1:1 at 10 is 13.13, not 10).
                    if (x as f32) * (p[0] as f32) > p[1] as f32 {
                        x
                    } else {
                        (x * p[0]).exp().ln_1p() / p[0]
                    }
                },
            ),
            A::Hardtanh { .. } => s(
                "hardtanh",
                Some("Hardtanh"),
                &[("min_val", -1.0), ("max_val", 1.0)],
                |p| A::Hardtanh {
                    min: p[0],
                    max: p[1],
                },
                |x, p| clamp(x, p[0], p[1]),
            ),
            A::Relu6 => s(
                "relu6",
                Some("ReLU6"),
                &[],
                |_| A::Relu6,
                |x, _| clamp(x, 0.0, 6.0),
            ),
            A::Hardsigmoid => s(
                "hardsigmoid",
                Some("Hardsigmoid"),
                &[],
                |_| A::Hardsigmoid,
                |x, _| clamp(x + 3.0, 0.0, 6.0) / 6.0,
            ),
            A::Hardswish => s(
                "hardswish",
                Some("Hardswish"),
                &[],
                |_| A::Hardswish,
                |x, _| x * clamp(x + 3.0, 0.0, 6.0) / 6.0,
            ),
            A::Celu(_) => s(
                "celu",
                Some("CELU"),
                &[("alpha", 1.0)],
                |p| A::Celu(p[0]),
                |x, p| {
                    if x > 0.0 {
                        x
                    } else {
                        p[0] * (x / p[0]).exp_m1()
                    }
                },
            ),
            A::Softmax | A::LogSoftmax => Spec {
                name: if self == A::Softmax {
                    "softmax"
                } else {
                    "log_softmax"
                },
                class: Some(if self == A::Softmax {
                    "Softmax"
                } else {
                    "LogSoftmax"
                }),
                params: &[],
                values: [0.0; 2],
                row: true,
                make: if self == A::Softmax {
                    |_| A::Softmax
                } else {
                    |_| A::LogSoftmax
                },
                f64: None,
            },
        };
        spec.values = match self {
            A::LeakyRelu(s) | A::Elu(s) | A::Celu(s) => [s, 0.0],
            A::Softplus { beta, threshold } => [beta, threshold],
            A::Hardtanh { min, max } => [min, max],
            _ => [0.0; 2],
        };
        spec
    }

    /// The class name PyTorch's module would have, as torchsummary prints it, or `None` for
    /// identity (which the equivalent `nn.Sequential` leaves out).
    pub fn module_name(self) -> Option<&'static str> {
        self.spec().class
    }

    /// True for softmax and log-softmax, which need a whole row; false for elementwise
    /// activations.
    pub fn is_row(self) -> bool {
        self.spec().row
    }

    /// Applies an elementwise activation to one f32 value with PyTorch's f32 arithmetic where it
    /// differs from rounding the f64 result (so `sigmoid(-100.0) == 0.0` and
    /// `silu(-100.0) == -0.0`, as in PyTorch). Row activations return `x`; use
    /// [`softmax_row_f32`].
    pub fn apply_f32(self, x: f32) -> f32 {
        match self {
            Activation::Identity | Activation::Softmax | Activation::LogSoftmax => x,
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Relu => relu(x),
            Activation::LeakyRelu(slope) => {
                if x > 0.0 {
                    x
                } else {
                    x * slope
                }
            }
            Activation::Silu => x / (1.0 + (-x).exp()),
            _ => self.apply_f64_with(f64::from(x), self.spec().values.map(f64::from)) as f32,
        }
    }

    /// The same activation in f64: the CPU reference path's arithmetic. A parameter (leaky
    /// slope, ELU alpha, …) is used as the decimal it was written as (`0.1`, not `0.1f32`
    /// widened), as in PyTorch's float64 kernels. Row activations return `x`.
    pub fn apply_f64(self, x: f64) -> f64 {
        self.apply_f64_with(x, self.spec().values.map(param_f64))
    }

    fn apply_f64_with(self, x: f64, params: [f64; 2]) -> f64 {
        match self.spec().f64 {
            Some(f) => f(x, params),
            None => x,
        }
    }
}

/// A parameter as PyTorch's float64 kernels see it: the Python float that was written (`0.1`),
/// not the stored f32 widened (`0.10000000149011612`). That value is the shortest decimal that
/// rounds to the f32, which is what `Display` prints.
pub(crate) fn param_f64(p: f32) -> f64 {
    let wide = f64::from(p);
    if wide.fract() == 0.0 && wide.abs() < 1e7 {
        // Small integers (ELU's default alpha 1) print as themselves: skip the formatting.
        return wide;
    }
    p.to_string().parse().unwrap_or(wide)
}

fn sigmoid(x: f64, _: [f64; 2]) -> f64 {
    1.0 / (1.0 + (-x).exp())
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

/// `x` clamped to `[lo, hi]`, NaN propagating (PyTorch's `clamp`).
fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    if x.is_nan() { x } else { x.max(lo).min(hi) }
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

/// Log-softmax of one row in f64, PyTorch's algorithm: `(x − m) − log(Σ exp(x − m))`, the
/// subtractions in that order for accuracy. The same NaN rows as softmax; `−inf` entries stay
/// `−inf` while the row max is finite.
pub fn log_softmax_row_f64(row: &mut [f64]) {
    let m = nan_max(row.iter().copied());
    let sum: f64 = row.iter().map(|&x| (x - m).exp()).sum();
    let log_sum = sum.ln();
    for x in row.iter_mut() {
        *x = (*x - m) - log_sum;
    }
}

/// The NaN-propagating maximum of a row (−inf for an empty row).
fn nan_max(row: impl Iterator<Item = f64>) -> f64 {
    row.fold(f64::NEG_INFINITY, |m, x| {
        if x.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(x)
        }
    })
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
    /// The `--act` / `--arch` name, with its parameters after colons where they are not
    /// PyTorch's defaults (`elu:0.5`, `softplus:2:5`); the leaky slope is always written
    /// (`leaky_relu:0.01`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spec = self.spec();
        f.write_str(spec.name)?;
        let defaults = spec.params.iter().map(|p| p.1);
        let differs = spec.values.iter().zip(defaults).any(|(v, d)| *v != d);
        if differs || matches!(self, Activation::LeakyRelu(_)) {
            for v in &spec.values[..spec.params.len()] {
                write!(f, ":{v}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Parses an `--act` / `--arch` name (case-insensitive), with optional parameters after
    /// colons: `leaky_relu:0.2`, `elu:0.5`, `softplus:2` (β) or `softplus:2:5` (β, threshold),
    /// `hardtanh:-2:3`. `swish` is accepted for `silu`, `linear` and `none` for `identity`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let mut parts = lower.split(':');
        let name = match parts.next().unwrap_or("") {
            "swish" => "silu",
            "linear" | "none" => "identity",
            n => n,
        };
        let given: Vec<&str> = parts.collect();
        let Some(spec) = Activation::ALL
            .iter()
            .map(|a| a.spec())
            .find(|sp| sp.name == name)
        else {
            return Err(Error::invalid(format!(
                "unknown activation '{}'; expected one of {}",
                crate::error::escape(s),
                names()
            )));
        };
        if given.len() > spec.params.len() {
            return Err(Error::invalid(format!(
                "activation '{}': {} takes {} parameter(s) ({})",
                crate::error::escape(s),
                spec.name,
                spec.params.len(),
                usage(spec)
            )));
        }
        let mut values = [0.0f32; 2];
        for (i, (_, default)) in spec.params.iter().enumerate() {
            values[i] = match given.get(i) {
                None => *default,
                Some(p) => p
                    .parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "activation '{}': '{}' is not a finite number",
                            crate::error::escape(s),
                            crate::error::escape(p)
                        ))
                    })?,
            };
        }
        let act = (spec.make)(values);
        act.check()?;
        Ok(act)
    }
}

impl Activation {
    /// Refuses parameter values PyTorch would refuse (softplus β = 0, hardtanh min > max).
    fn check(self) -> Result<()> {
        match self {
            Activation::Celu(0.0) => Err(Error::invalid(
                "celu: alpha must not be 0 (the function divides by it)",
            )),
            Activation::Softplus { beta: 0.0, .. } => Err(Error::invalid(
                "softplus: beta must not be 0 (the function divides by it)",
            )),
            Activation::Hardtanh { min, max } if min > max => Err(Error::invalid(format!(
                "hardtanh: min_val ({min}) must not exceed max_val ({max})"
            ))),
            _ => Ok(()),
        }
    }
}

/// `leaky_relu[:negative_slope]`: how to write an activation, for messages and help.
fn usage(spec: Spec) -> String {
    let mut s = spec.name.to_string();
    if !spec.params.is_empty() {
        let names: Vec<&str> = spec.params.iter().map(|p| p.0).collect();
        s.push_str(&format!("[:{}]", names.join(":")));
    }
    s
}

/// Every activation as it is written, with its parameters: `identity, sigmoid, …,
/// leaky_relu[:negative_slope], …` (for messages and help texts).
pub fn names() -> String {
    let names: Vec<String> = Activation::ALL.iter().map(|a| usage(a.spec())).collect();
    names.join(", ")
}

/// Parses a comma-separated list of activation names (`relu,relu,softmax`).
pub fn parse_list(s: &str) -> Result<Vec<Activation>> {
    s.split(',').map(str::parse).collect()
}
