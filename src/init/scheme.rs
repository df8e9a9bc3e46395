//! [`Init`]: the initialisation scheme of one tensor, as [`crate::MlpBuilder`] applies it per
//! layer, on top of the `torch.nn.init` functions of the parent module.

use super::{
    FanMode, Nonlinearity, check_shape, constant_, eye_, kaiming_normal_, kaiming_uniform_,
    normal_, ones_, trunc_normal_, uniform_, xavier_normal_, xavier_uniform_, zeros_,
};
use crate::error::Result;
use crate::rng::Generator;

/// How a tensor is initialized: one variant per `torch.nn.init` scheme, plus `nn.Linear`'s own.
///
/// [`crate::MlpBuilder`] calls [`Init::fill_weight`] then [`Init::fill_bias`] for each layer in
/// order, from one [`Generator`]: with [`Init::PytorchDefault`] everywhere that reproduces
/// `torch.manual_seed(S)` followed by the same `nn.Linear` constructions, bit for bit.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// `nn.Linear.reset_parameters()`. Weight: `kaiming_uniform_(a=√5)`, i.e. in f64
    /// `gain = √(2/(1+5))`, `std = gain/√fan_in`, `bound = √3·std` (= 1/√fan_in up to an f64 ulp),
    /// then U(−bound, bound). Bias: U(−1/√fan_in, 1/√fan_in), or all zeros when `fan_in = 0`.
    PytorchDefault,
    /// `uniform_`: U[a, b).
    Uniform {
        /// Lower bound (inclusive).
        a: f64,
        /// Upper bound (exclusive).
        b: f64,
    },
    /// `normal_`: N(mean, std²).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation (≥ 0).
        std: f64,
    },
    /// `trunc_normal_`: N(mean, std²) restricted to `[a, b]` (absolute bounds); see
    /// [`trunc_normal_`].
    TruncNormal {
        /// Mean of the untruncated normal.
        mean: f64,
        /// Standard deviation of the untruncated normal.
        std: f64,
        /// Lower cut-off (absolute; PyTorch's default −2).
        a: f64,
        /// Upper cut-off (absolute; PyTorch's default 2).
        b: f64,
    },
    /// `constant_`: every element is the value.
    Constant(f64),
    /// `zeros_`: every element is 0.
    Zeros,
    /// `ones_`: every element is 1.
    Ones,
    /// `eye_`: the (possibly non-square) identity `[out, in]`. Weights only: a bias is 1-D.
    Eye,
    /// `xavier_uniform_(gain)`: U(−a, a), `a = gain·√(6/(fan_in + fan_out))`. Weights only.
    XavierUniform {
        /// Scale factor (PyTorch's default 1; see [`calculate_gain`](super::calculate_gain)).
        gain: f64,
    },
    /// `xavier_normal_(gain)`: N(0, std²), `std = gain·√(2/(fan_in + fan_out))`. Weights only.
    XavierNormal {
        /// Scale factor (PyTorch's default 1; see [`calculate_gain`](super::calculate_gain)).
        gain: f64,
    },
    /// `kaiming_uniform_(a, mode, nonlinearity)`: U(−bound, bound), `bound = √3·gain/√fan`.
    /// Weights only.
    KaimingUniform {
        /// Negative slope for leaky_relu: `Some(0.0)` is PyTorch's default (gain √2), `None` is
        /// PyTorch's `a=None` (slope 0.01).
        a: Option<f64>,
        /// Which fan to scale by.
        mode: FanMode,
        /// The nonlinearity that follows, for the gain.
        nonlinearity: Nonlinearity,
    },
    /// `kaiming_normal_(a, mode, nonlinearity)`: N(0, std²), `std = gain/√fan`. Weights only.
    KaimingNormal {
        /// Negative slope for leaky_relu: `Some(0.0)` is PyTorch's default (gain √2), `None` is
        /// PyTorch's `a=None` (slope 0.01).
        a: Option<f64>,
        /// Which fan to scale by.
        mode: FanMode,
        /// The nonlinearity that follows, for the gain.
        nonlinearity: Nonlinearity,
    },
}

impl Init {
    /// `xavier_uniform_` with PyTorch's default `gain = 1`.
    pub const fn xavier_uniform() -> Init {
        Init::XavierUniform { gain: 1.0 }
    }

    /// `xavier_normal_` with PyTorch's default `gain = 1`.
    pub const fn xavier_normal() -> Init {
        Init::XavierNormal { gain: 1.0 }
    }

    /// `kaiming_uniform_` with PyTorch's defaults: `a = 0`, `fan_in`, `leaky_relu` (gain √2).
    pub const fn kaiming_uniform() -> Init {
        Init::KaimingUniform {
            a: Some(0.0),
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::LeakyRelu,
        }
    }

    /// `kaiming_normal_` with PyTorch's defaults: `a = 0`, `fan_in`, `leaky_relu` (gain √2).
    pub const fn kaiming_normal() -> Init {
        Init::KaimingNormal {
            a: Some(0.0),
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::LeakyRelu,
        }
    }

    /// `trunc_normal_` with PyTorch's defaults: mean 0, std 1, cut at −2 and 2.
    pub const fn trunc_normal() -> Init {
        Init::TruncNormal {
            mean: 0.0,
            std: 1.0,
            a: -2.0,
            b: 2.0,
        }
    }

    /// Whether every element gets the same value (zeros, ones, constant). Such a weight makes all
    /// neurons of a layer identical, and they stay identical during training.
    pub fn is_constant(&self) -> bool {
        matches!(self, Init::Zeros | Init::Ones | Init::Constant(_))
    }

    /// Fills a tensor of the given `shape`; [`Init::PytorchDefault`] here is the weight rule
    /// (`fill_bias` handles the bias rule before getting here).
    fn fill(&self, t: &mut [f32], shape: &[usize], rng: &mut Generator) -> Result<()> {
        check_shape(t.len(), shape)?;
        match *self {
            Init::PytorchDefault => kaiming_uniform_(
                t,
                shape,
                Some(5.0f64.sqrt()),
                FanMode::FanIn,
                Nonlinearity::LeakyRelu,
                rng,
            ),
            Init::Uniform { a, b } => uniform_(t, a, b, rng),
            Init::Normal { mean, std } => normal_(t, mean, std, rng),
            Init::TruncNormal { mean, std, a, b } => trunc_normal_(t, mean, std, a, b, rng),
            Init::Constant(v) => constant_(t, v),
            Init::Zeros => {
                zeros_(t);
                Ok(())
            }
            Init::Ones => {
                ones_(t);
                Ok(())
            }
            Init::Eye => eye_(t, shape),
            Init::XavierUniform { gain } => xavier_uniform_(t, shape, gain, rng),
            Init::XavierNormal { gain } => xavier_normal_(t, shape, gain, rng),
            Init::KaimingUniform {
                a,
                mode,
                nonlinearity,
            } => kaiming_uniform_(t, shape, a, mode, nonlinearity, rng),
            Init::KaimingNormal {
                a,
                mode,
                nonlinearity,
            } => kaiming_normal_(t, shape, a, mode, nonlinearity, rng),
        }
    }

    /// Fills a weight `[out, fan_in]` (row-major, as `nn.Linear.weight`) drawing from `rng`.
    ///
    /// [`Init::PytorchDefault`] is `kaiming_uniform_(weight, a=√5)`: bound = √3·√(1/3)/√fan_in.
    pub fn fill_weight(
        &self,
        weight: &mut [f32],
        out: usize,
        fan_in: usize,
        rng: &mut Generator,
    ) -> Result<()> {
        self.fill(weight, &[out, fan_in], rng)
    }

    /// Fills a bias `[out]` (1-D) whose layer has `fan_in` inputs, drawing from `rng`.
    ///
    /// [`Init::PytorchDefault`] is `nn.Linear`'s bias rule: U(−1/√fan_in, 1/√fan_in), all zeros when
    /// `fan_in = 0`. The fan-based schemes (xavier, kaiming) fail on a 1-D tensor exactly as in
    /// PyTorch: `Fan in and fan out can not be computed for tensor with fewer than 2 dimensions`;
    /// [`Init::Eye`] fails with `Only tensors with 2 dimensions are supported`.
    pub fn fill_bias(&self, bias: &mut [f32], fan_in: usize, rng: &mut Generator) -> Result<()> {
        match self {
            Init::PytorchDefault => {
                // Python: bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0 (an int, so the
                // range is [0, 0], not [-0.0, 0]).
                let (from, to) = if fan_in > 0 {
                    let bound = 1.0 / (fan_in as f64).sqrt();
                    (-bound, bound)
                } else {
                    (0.0, 0.0)
                };
                rng.uniform_(bias, from, to)
            }
            other => other.fill(bias, &[bias.len()], rng),
        }
    }
}
