//! `torch.nn.init` with PyTorch's exact formulas, argument checks and error texts.
//!
//! Every function fills a row-major `&mut [f32]` in place, drawing from a [`Generator`] in the
//! order PyTorch draws, so with the same seed the uniform-based inits (uniform, xavier_uniform,
//! kaiming_uniform and `nn.Linear`'s default) give PyTorch's values bit for bit. Where the fans
//! matter the tensor's `shape` is passed explicitly (`[out, in]` for a Linear weight, as in
//! PyTorch). As in PyTorch, bounds and standard deviations are computed in f64 and cast to f32 by
//! the fill.
//!
//! Errors are [`Error::InvalidArgument`] carrying PyTorch's message (for example
//! `uniform_ expects to return a [from, to) range, but found from=2.2 > to=1.2`); a `shape` whose
//! element count differs from the slice length is an [`Error::Shape`].
//!
//! PyTorch also emits warnings this crate cannot: the kaiming "Initializing zero-element tensors is
//! a no-op" and the trunc_normal "mean is more than 2 std from [a, b]" ones. The behaviour around
//! them is the same.

use std::fmt;
use std::str::FromStr;

use crate::activation::erf;
use crate::error::{Error, Result};
use crate::rng::Generator;

mod scheme;
pub use scheme::Init;

/// Which fan kaiming init scales by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FanMode {
    /// `fan_in` (PyTorch's default): preserves the variance of activations in the forward pass.
    #[default]
    FanIn,
    /// `fan_out`: preserves the variance of gradients in the backward pass.
    FanOut,
}

impl FanMode {
    /// PyTorch's spelling: `"fan_in"` or `"fan_out"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FanMode::FanIn => "fan_in",
            FanMode::FanOut => "fan_out",
        }
    }
}

impl fmt::Display for FanMode {
    /// `fan_in` or `fan_out`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FanMode {
    type Err = Error;

    /// Lower-cases first, as PyTorch does (`"FAN_IN"` is accepted). Anything else fails with
    /// `Mode {mode} not supported, please use one of ['fan_in', 'fan_out']` (the lower-cased mode).
    fn from_str(s: &str) -> Result<Self> {
        let mode = s.to_lowercase();
        match mode.as_str() {
            "fan_in" => Ok(FanMode::FanIn),
            "fan_out" => Ok(FanMode::FanOut),
            _ => Err(Error::invalid(format!(
                "Mode {mode} not supported, please use one of ['fan_in', 'fan_out']"
            ))),
        }
    }
}

/// The nonlinearities `calculate_gain` knows, by their `nn.functional` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Nonlinearity {
    /// `linear`: gain 1.
    Linear,
    /// `conv1d`: gain 1.
    Conv1d,
    /// `conv2d`: gain 1.
    Conv2d,
    /// `conv3d`: gain 1.
    Conv3d,
    /// `conv_transpose1d`: gain 1.
    ConvTranspose1d,
    /// `conv_transpose2d`: gain 1.
    ConvTranspose2d,
    /// `conv_transpose3d`: gain 1.
    ConvTranspose3d,
    /// `sigmoid`: gain 1.
    Sigmoid,
    /// `tanh`: gain 5/3.
    Tanh,
    /// `relu`: gain √2.
    Relu,
    /// `leaky_relu` (kaiming's default): gain √(2 / (1 + slope²)).
    #[default]
    LeakyRelu,
    /// `selu`: gain 3/4.
    Selu,
}

impl Nonlinearity {
    /// Every variant, in PyTorch's table order.
    pub const ALL: [Nonlinearity; 12] = [
        Nonlinearity::Linear,
        Nonlinearity::Conv1d,
        Nonlinearity::Conv2d,
        Nonlinearity::Conv3d,
        Nonlinearity::ConvTranspose1d,
        Nonlinearity::ConvTranspose2d,
        Nonlinearity::ConvTranspose3d,
        Nonlinearity::Sigmoid,
        Nonlinearity::Tanh,
        Nonlinearity::Relu,
        Nonlinearity::LeakyRelu,
        Nonlinearity::Selu,
    ];

    /// PyTorch's name for it (`"leaky_relu"`, `"conv_transpose2d"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Nonlinearity::Linear => "linear",
            Nonlinearity::Conv1d => "conv1d",
            Nonlinearity::Conv2d => "conv2d",
            Nonlinearity::Conv3d => "conv3d",
            Nonlinearity::ConvTranspose1d => "conv_transpose1d",
            Nonlinearity::ConvTranspose2d => "conv_transpose2d",
            Nonlinearity::ConvTranspose3d => "conv_transpose3d",
            Nonlinearity::Sigmoid => "sigmoid",
            Nonlinearity::Tanh => "tanh",
            Nonlinearity::Relu => "relu",
            Nonlinearity::LeakyRelu => "leaky_relu",
            Nonlinearity::Selu => "selu",
        }
    }

    /// The recommended gain, `calculate_gain(self, param)`:
    ///
    /// | nonlinearity | gain |
    /// | --- | --- |
    /// | linear, conv*, conv_transpose*, sigmoid | 1 |
    /// | tanh | 5/3 |
    /// | relu | √2 |
    /// | leaky_relu | √(2 / (1 + s²)), `s = param`, or 0.01 when `param` is `None` |
    /// | selu | 3/4 |
    ///
    /// `param` is ignored except for leaky_relu. (PyTorch also rejects a bool slope; an `f64`
    /// cannot be one.)
    pub fn gain(self, param: Option<f64>) -> f64 {
        match self {
            Nonlinearity::Tanh => 5.0 / 3.0,
            Nonlinearity::Relu => 2.0f64.sqrt(),
            Nonlinearity::LeakyRelu => {
                let slope = param.unwrap_or(0.01);
                (2.0 / (1.0 + slope * slope)).sqrt()
            }
            Nonlinearity::Selu => 3.0 / 4.0,
            _ => 1.0,
        }
    }
}

impl fmt::Display for Nonlinearity {
    /// PyTorch's name, as [`Nonlinearity::as_str`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Nonlinearity {
    type Err = Error;

    /// Exact, case-sensitive match on PyTorch's names (`"ReLU"` and `"identity"` are rejected, as
    /// in PyTorch). Error: `Unsupported nonlinearity {s}`.
    fn from_str(s: &str) -> Result<Self> {
        Nonlinearity::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| Error::invalid(format!("Unsupported nonlinearity {s}")))
    }
}

/// `torch.nn.init.calculate_gain(nonlinearity, param)`: see [`Nonlinearity::gain`] for the table.
///
/// Matching is case-sensitive; `'identity'` (listed in PyTorch's docstring) is rejected like any
/// other unknown name with `Unsupported nonlinearity identity`.
pub fn calculate_gain(nonlinearity: &str, param: Option<f64>) -> Result<f64> {
    Ok(nonlinearity.parse::<Nonlinearity>()?.gain(param))
}

/// PyTorch's `_calculate_fan_in_and_fan_out`: for `shape = [out, in, k…]`,
/// `fan_in = in·∏k` and `fan_out = out·∏k` (a Linear weight `[out, in]` gives `(in, out)`).
///
/// Error for fewer than two dimensions: `Fan in and fan out can not be computed for tensor with
/// fewer than 2 dimensions`.
pub fn calculate_fan_in_and_fan_out(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::invalid(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions",
        ));
    }
    let overflow = || Error::invalid(format!("the fans of shape {shape:?} overflow usize"));
    let receptive = shape[2..]
        .iter()
        .try_fold(1usize, |acc, &k| acc.checked_mul(k))
        .ok_or_else(overflow)?;
    let fan_in = shape[1].checked_mul(receptive).ok_or_else(overflow)?;
    let fan_out = shape[0].checked_mul(receptive).ok_or_else(overflow)?;
    Ok((fan_in, fan_out))
}

/// PyTorch's `_calculate_correct_fan`: `fan_in` or `fan_out` of `shape` per `mode`.
pub fn calculate_correct_fan(shape: &[usize], mode: FanMode) -> Result<usize> {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(shape)?;
    Ok(match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    })
}

/// Checks that `shape` describes exactly `len` elements (`[]` is a scalar: 1 element).
fn check_shape(len: usize, shape: &[usize]) -> Result<()> {
    let n = shape.iter().try_fold(1usize, |acc, &k| acc.checked_mul(k));
    if n != Some(len) {
        return Err(Error::shape(format!(
            "shape {shape:?} does not describe a tensor of {len} elements"
        )));
    }
    Ok(())
}

/// Python's `float division by zero`, which PyTorch lets through where a formula divides by 0.
fn zero_division(context: &str) -> Error {
    Error::invalid(format!(
        "float division by zero (ZeroDivisionError: {context})"
    ))
}

/// `uniform_(tensor, a, b)`: i.i.d. U[a, b), exactly PyTorch's float32 `tensor.uniform_(a, b)`
/// (see [`Generator::uniform_`] for the arithmetic and the error texts).
pub fn uniform_(tensor: &mut [f32], a: f64, b: f64, rng: &mut Generator) -> Result<()> {
    rng.uniform_(tensor, a, b)
}

/// `normal_(tensor, mean, std)`: i.i.d. N(mean, std²), drawn as PyTorch's float32
/// `tensor.normal_(mean, std)` (see [`Generator::normal_`]). Error when `std < 0`:
/// `normal expects std >= 0.0, but found std -1`.
pub fn normal_(tensor: &mut [f32], mean: f64, std: f64, rng: &mut Generator) -> Result<()> {
    rng.normal_(tensor, mean, std)
}

/// Safety net for the rejection loops of [`trunc_normal_`]: PyTorch loops forever when nothing can
/// be accepted (e.g. `[a, b]` billions of std wide far in a tail); we give up with an error.
const TRUNC_NORMAL_MAX_ROUNDS: usize = 1_000_000;

/// `trunc_normal_(tensor, mean, std, a, b)`: N(mean, std²) restricted to `[a, b]`. `a` and `b` are
/// absolute values, not multiples of `std` (PyTorch's defaults are −2 and 2).
///
/// Algorithm (current PyTorch, PR #174997, rejection sampling; the stream of draws is PyTorch's):
/// with `Φ(z) = (1 + erf(z/√2))/2` and `p = Φ((b−mean)/std) − Φ((a−mean)/std)`,
/// - `p > 0.3`: fill N(mean, std²) ([`normal_`]); while some value lies outside `[a as f32,
///   b as f32]`, draw a whole fresh N(mean, std²) tensor and take its values at those positions;
/// - otherwise: proposals `x ~ U[a, b)` ([`uniform_`]) accepted when `ln u > −½((x−mean)/std)² −
///   log_peak` with `u ~ U[0, 1)`, `log_peak = −½((m−mean)/std)²` at the mode
///   `m = clamp(mean, a, b)`; each round redraws a whole proposal tensor and a whole `u` tensor and
///   updates the still-pending positions. The acceptance test runs in f32 like PyTorch's tensor ops;
///   its `ln` is the platform's `f32::ln` where PyTorch uses a SIMD log, so a value at the very edge
///   of acceptance can rarely go the other way.
///
/// Errors: `std == 0` (Python's `float division by zero`); `a > b`, or `a`/`b` NaN or beyond the
/// float range (the [`uniform_`] errors); no acceptance after a million rounds.
pub fn trunc_normal_(
    tensor: &mut [f32],
    mean: f64,
    std: f64,
    a: f64,
    b: f64,
    rng: &mut Generator,
) -> Result<()> {
    if std == 0.0 {
        return Err(zero_division("trunc_normal_ divides by std = 0"));
    }
    let norm_cdf = |x: f64| (1.0 + erf(x / 2.0f64.sqrt())) / 2.0;
    let p = norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std);
    let n = tensor.len();
    let no_convergence = || {
        Error::invalid(format!(
            "trunc_normal_(mean={mean}, std={std}, a={a}, b={b}): rejection sampling accepted \
             nothing in {TRUNC_NORMAL_MAX_ROUNDS} rounds"
        ))
    };
    if p > 0.3 {
        // PyTorch casts the bounds to the tensor dtype so the test matches representable values.
        let (lo, hi) = (a as f32, b as f32);
        let outside = |x: f32| x < lo || x > hi;
        rng.normal_(tensor, mean, std)?;
        let mut fresh = vec![0.0f32; n];
        let mut rounds = 0;
        while tensor.iter().any(|&x| outside(x)) {
            rounds += 1;
            if rounds > TRUNC_NORMAL_MAX_ROUNDS {
                return Err(no_convergence());
            }
            rng.normal_(&mut fresh, mean, std)?;
            for (x, &f) in tensor.iter_mut().zip(&fresh) {
                if outside(*x) {
                    *x = f;
                }
            }
        }
    } else {
        // Python's max(a, min(mean, b)).
        let inner = if b < mean { b } else { mean };
        let mode = if inner > a { inner } else { a };
        let log_peak = -0.5 * ((mode - mean) / std).powi(2);
        // candidates.sub_(mean).div_(std).pow_(2).mul_(-0.5).sub_(log_peak), in f32.
        let (mean32, std32, peak32) = (mean as f32, std as f32, log_peak as f32);
        let log_pdf = |x: f32| {
            let z = (x - mean32) / std32;
            (z * z) * -0.5 - peak32
        };
        rng.uniform_(tensor, a, b)?;
        let mut u = vec![0.0f32; n];
        rng.uniform_(&mut u, 0.0, 1.0)?;
        let mut pending: Vec<bool> = tensor
            .iter()
            .zip(&u)
            .map(|(&x, &u)| u.ln() > log_pdf(x))
            .collect();
        let mut candidates = vec![0.0f32; n];
        let mut rounds = 0;
        while pending.iter().any(|&p| p) {
            rounds += 1;
            if rounds > TRUNC_NORMAL_MAX_ROUNDS {
                return Err(no_convergence());
            }
            rng.uniform_(&mut candidates, a, b)?;
            for ((x, &c), &p) in tensor.iter_mut().zip(&candidates).zip(&pending) {
                if p {
                    *x = c;
                }
            }
            rng.uniform_(&mut u, 0.0, 1.0)?;
            for ((p, &c), &u) in pending.iter_mut().zip(&candidates).zip(&u) {
                if *p {
                    *p = u.ln() > log_pdf(c);
                }
            }
        }
    }
    Ok(())
}

/// `constant_(tensor, val)`: every element is `val as f32`.
///
/// Error, as PyTorch's `fill_`: `value cannot be converted to type float without overflow` for a
/// finite `val` beyond ±f32::MAX (±∞ and NaN are allowed).
pub fn constant_(tensor: &mut [f32], val: f64) -> Result<()> {
    if val.is_finite() && val.abs() > f64::from(f32::MAX) {
        return Err(Error::invalid(
            "value cannot be converted to type float without overflow",
        ));
    }
    tensor.fill(val as f32);
    Ok(())
}

/// `ones_(tensor)`: every element is 1.
pub fn ones_(tensor: &mut [f32]) {
    tensor.fill(1.0);
}

/// `zeros_(tensor)`: every element is 0.
pub fn zeros_(tensor: &mut [f32]) {
    tensor.fill(0.0);
}

/// `eye_(tensor)`: the identity for a 2-D `shape = [rows, cols]`, non-square allowed:
/// `t[i][j] = 1` if `i == j`, else 0.
///
/// Error for any other number of dimensions: `Only tensors with 2 dimensions are supported`.
pub fn eye_(tensor: &mut [f32], shape: &[usize]) -> Result<()> {
    if shape.len() != 2 {
        return Err(Error::invalid(
            "Only tensors with 2 dimensions are supported",
        ));
    }
    check_shape(tensor.len(), shape)?;
    let (rows, cols) = (shape[0], shape[1]);
    tensor.fill(0.0);
    for i in 0..rows.min(cols) {
        tensor[i * cols + i] = 1.0;
    }
    Ok(())
}

/// The xavier standard deviation, `gain·√(2 / (fan_in + fan_out))`, computed as PyTorch does.
fn xavier_std(shape: &[usize], gain: f64, function: &str) -> Result<f64> {
    let (fan_in, fan_out) = calculate_fan_in_and_fan_out(shape)?;
    let sum = fan_in
        .checked_add(fan_out)
        .ok_or_else(|| Error::invalid(format!("the fans of shape {shape:?} overflow usize")))?;
    if sum == 0 {
        return Err(zero_division(&format!(
            "{function} on shape {shape:?} has fan_in + fan_out = 0"
        )));
    }
    Ok(gain * (2.0 / sum as f64).sqrt())
}

/// `xavier_uniform_(tensor, gain)` (Glorot): U(−a, a) with `a = gain·√(6 / (fan_in + fan_out))`,
/// computed as PyTorch does: `std = gain·√(2 / (fan_in + fan_out))`, `a = √3·std`, in f64.
///
/// No zero-element shortcut (as in PyTorch): `[n, 0]` is fine (nothing to fill), `[0, 0]` is an error
/// (PyTorch raises `ZeroDivisionError: float division by zero`). Fewer than 2 dimensions: the fan
/// error of [`calculate_fan_in_and_fan_out`]. A negative gain gives the [`uniform_`] range error.
pub fn xavier_uniform_(
    tensor: &mut [f32],
    shape: &[usize],
    gain: f64,
    rng: &mut Generator,
) -> Result<()> {
    check_shape(tensor.len(), shape)?;
    let std = xavier_std(shape, gain, "xavier_uniform_")?;
    let a = 3.0f64.sqrt() * std;
    rng.uniform_(tensor, -a, a)
}

/// `xavier_normal_(tensor, gain)` (Glorot): N(0, std²) with `std = gain·√(2 / (fan_in + fan_out))`.
/// Same errors as [`xavier_uniform_`] (a negative gain gives the [`normal_`] std error).
pub fn xavier_normal_(
    tensor: &mut [f32],
    shape: &[usize],
    gain: f64,
    rng: &mut Generator,
) -> Result<()> {
    check_shape(tensor.len(), shape)?;
    let std = xavier_std(shape, gain, "xavier_normal_")?;
    rng.normal_(tensor, 0.0, std)
}

/// The kaiming standard deviation `gain / √fan`, or `None` for a zero-element shape (a no-op).
fn kaiming_std(
    shape: &[usize],
    a: Option<f64>,
    mode: FanMode,
    nonlinearity: Nonlinearity,
) -> Result<Option<f64>> {
    // PyTorch returns before any validation here, warning "Initializing zero-element tensors is a
    // no-op"; we have no warning channel, so it is silent.
    if shape.contains(&0) {
        return Ok(None);
    }
    let fan = calculate_correct_fan(shape, mode)?;
    let gain = nonlinearity.gain(a);
    Ok(Some(gain / (fan as f64).sqrt()))
}

/// `kaiming_uniform_(tensor, a, mode, nonlinearity)` (He): U(−bound, bound) with
/// `gain = calculate_gain(nonlinearity, a)`, `std = gain / √fan`, `bound = √3·std` (f64, as PyTorch).
///
/// `a` is the negative slope of a following leaky ReLU and matters only for
/// [`Nonlinearity::LeakyRelu`]. PyTorch's default is `a = 0` (pass `Some(0.0)`: gain √2, plain He
/// init); `None` means PyTorch's `a=None`, slope 0.01. `nn.Linear`'s default is `Some(√5)`, which
/// makes `bound = 1/√fan_in`.
///
/// A shape with a 0 dimension is a no-op that skips every check (PyTorch warns
/// "Initializing zero-element tensors is a no-op"). Otherwise fewer than 2 dimensions is the fan
/// error of [`calculate_fan_in_and_fan_out`].
pub fn kaiming_uniform_(
    tensor: &mut [f32],
    shape: &[usize],
    a: Option<f64>,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    rng: &mut Generator,
) -> Result<()> {
    check_shape(tensor.len(), shape)?;
    match kaiming_std(shape, a, mode, nonlinearity)? {
        Some(std) => {
            let bound = 3.0f64.sqrt() * std;
            rng.uniform_(tensor, -bound, bound)
        }
        None => Ok(()),
    }
}

/// `kaiming_normal_(tensor, a, mode, nonlinearity)` (He): N(0, std²) with `std = gain / √fan`,
/// `gain = calculate_gain(nonlinearity, a)`. Arguments and zero-element behaviour as
/// [`kaiming_uniform_`].
pub fn kaiming_normal_(
    tensor: &mut [f32],
    shape: &[usize],
    a: Option<f64>,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    rng: &mut Generator,
) -> Result<()> {
    check_shape(tensor.len(), shape)?;
    match kaiming_std(shape, a, mode, nonlinearity)? {
        Some(std) => rng.normal_(tensor, 0.0, std),
        None => Ok(()),
    }
}
