//! [`MlpBuilder`]: a model made layer by layer with PyTorch's initialisation, drawing weights in
//! the order `torch.manual_seed` followed by the same module constructors would.

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::model::Mlp;
use crate::model::linear::Linear;
use crate::model::module::{BatchNorm1d, DEFAULT_EPS, LayerNorm, Module};
use crate::rng::{DEFAULT_SEED, Generator};

/// How one layer is made by [`MlpBuilder`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    /// Output width (at least 1).
    pub out_features: usize,
    /// Activation after the layer.
    pub activation: Activation,
    /// Whether the layer has a bias.
    pub bias: bool,
    /// Initialization of the weight `[out, in]`.
    pub weight_init: Init,
    /// Initialization of the bias `[out]`.
    pub bias_init: Init,
}

impl LayerSpec {
    /// A layer with PyTorch's default init (weight and bias U(±1/√in)) and a bias.
    pub fn new(out_features: usize, activation: Activation) -> Self {
        LayerSpec {
            out_features,
            activation,
            bias: true,
            weight_init: Init::PytorchDefault,
            bias_init: Init::PytorchDefault,
        }
    }

    /// Sets the weight init.
    pub fn weight_init(mut self, init: Init) -> Self {
        self.weight_init = init;
        self
    }

    /// Sets the bias init.
    pub fn bias_init(mut self, init: Init) -> Self {
        self.bias_init = init;
        self
    }

    /// Drops the bias (`bias=False`).
    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }
}

/// Builds an [`Mlp`] layer by layer, input width first. See [`Mlp::builder`].
#[derive(Clone, Debug)]
pub struct MlpBuilder {
    in_features: usize,
    items: Vec<Item>,
    seed: u64,
}

/// What the builder appends: a Linear layer to draw (and its activation), or a module that needs
/// no random draws.
#[derive(Clone, Debug)]
enum Item {
    Layer(LayerSpec),
    BatchNorm1d { eps: f32 },
    LayerNorm { eps: f32 },
    Module(Module),
}

impl MlpBuilder {
    pub(crate) fn new(in_features: usize) -> Self {
        MlpBuilder {
            in_features,
            items: Vec::new(),
            seed: DEFAULT_SEED,
        }
    }

    /// Appends a Linear layer with PyTorch's default init, followed by `activation` as a module
    /// (identity: none).
    pub fn layer(self, out_features: usize, activation: Activation) -> Self {
        self.layer_spec(LayerSpec::new(out_features, activation))
    }

    /// Appends a layer described in full.
    pub fn layer_spec(mut self, spec: LayerSpec) -> Self {
        self.items.push(Item::Layer(spec));
        self
    }

    /// Appends `nn.BatchNorm1d` over the current width, as PyTorch initialises it (running mean
    /// 0, variance 1, weight 1, bias 0; no random draws).
    pub fn batchnorm1d(self) -> Self {
        self.batchnorm1d_eps(DEFAULT_EPS)
    }

    /// [`batchnorm1d`](Self::batchnorm1d) with this `eps`.
    pub fn batchnorm1d_eps(mut self, eps: f32) -> Self {
        self.items.push(Item::BatchNorm1d { eps });
        self
    }

    /// Appends `nn.LayerNorm` over the current width, as PyTorch initialises it.
    pub fn layernorm(self) -> Self {
        self.layernorm_eps(DEFAULT_EPS)
    }

    /// [`layernorm`](Self::layernorm) with this `eps`.
    pub fn layernorm_eps(mut self, eps: f32) -> Self {
        self.items.push(Item::LayerNorm { eps });
        self
    }

    /// Appends a module as it is (an activation module, `Dropout`, a `BatchNorm1d` with its own
    /// statistics, …). Its width must match the width at that point.
    pub fn module(mut self, module: Module) -> Self {
        self.items.push(Item::Module(module));
        self
    }

    /// Seeds the generator. With the default init, `seed(S)` gives bit-for-bit the weights of
    /// `torch.manual_seed(S)` followed by constructing the same `nn.Linear` layers in order.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Validates the shapes and draws the weights (each layer's weight, then its bias, in order).
    ///
    /// Every layer's size is checked before anything is allocated: a weight of more than
    /// [`Mlp::MAX_TENSOR_ELEMENTS`] elements is an [`Error::InvalidArgument`] naming the layer and
    /// the limit, and memory is reserved fallibly, so an allocation the system refuses is an error
    /// too (not an abort).
    pub fn build(self) -> Result<Mlp> {
        if self.in_features == 0 {
            return Err(Error::shape("the input width must be at least 1"));
        }
        let specs = || {
            self.items.iter().filter_map(|it| match it {
                Item::Layer(s) => Some(s),
                _ => None,
            })
        };
        if specs().next().is_none() {
            return Err(Error::shape("a network needs at least one Linear layer"));
        }
        if let Some(i) = specs().position(|s| s.out_features == 0) {
            return Err(Error::shape(format!(
                "layer {i} has width 0; widths must be at least 1"
            )));
        }
        // Refuse absurd sizes before allocating anything, for every layer.
        let mut fan_in = self.in_features;
        for (i, spec) in specs().enumerate() {
            check_tensor_size(i, fan_in, spec.out_features)?;
            fan_in = spec.out_features;
        }
        let mut rng = Generator::new(self.seed);
        let mut modules = Vec::with_capacity(self.items.len() * 2);
        let mut width = self.in_features;
        let mut i = 0;
        for item in self.items {
            match item {
                Item::Layer(spec) => {
                    let linear = draw_linear(i, width, &spec, &mut rng)?;
                    width = linear.out_features();
                    modules.push(Module::Linear(linear));
                    if spec.activation != Activation::Identity {
                        modules.push(Module::Activation(spec.activation));
                    }
                    i += 1;
                }
                Item::BatchNorm1d { eps } => {
                    let (mean, var) = (vec![0.0; width], vec![1.0; width]);
                    let (w, b) = (Some(vec![1.0; width]), Some(vec![0.0; width]));
                    modules.push(Module::BatchNorm1d(BatchNorm1d::new(mean, var, w, b, eps)?));
                }
                Item::LayerNorm { eps } => {
                    let (w, b) = (Some(vec![1.0; width]), Some(vec![0.0; width]));
                    modules.push(Module::LayerNorm(LayerNorm::new(width, w, b, eps)?));
                }
                Item::Module(m) => {
                    width = m.out_width(width)?;
                    modules.push(m);
                }
            }
        }
        Mlp::new(modules)
    }
}

/// Draws layer `i`'s weight, then its bias, as `nn.Linear(fan_in, out)` would.
fn draw_linear(i: usize, fan_in: usize, spec: &LayerSpec, rng: &mut Generator) -> Result<Linear> {
    let out = spec.out_features;
    let len = check_tensor_size(i, fan_in, out)?;
    let mut weight = try_zeros(len, || format!("layer {i} weight [{out}, {fan_in}]"))?;
    spec.weight_init
        .fill_weight(&mut weight, out, fan_in, rng)
        .map_err(|e| Error::invalid(format!("layer {i} weight: {e}")))?;
    let bias = if spec.bias {
        let mut b = try_zeros(out, || format!("layer {i} bias [{out}]"))?;
        spec.bias_init
            .fill_bias(&mut b, fan_in, rng)
            .map_err(|e| Error::invalid(format!("layer {i} bias: {e}")))?;
        Some(b)
    } else {
        None
    };
    Linear::new(fan_in, out, weight, bias)
}

/// The element count of layer `i`'s weight `[out, fan_in]`, or the error explaining that it is
/// over [`Mlp::MAX_TENSOR_ELEMENTS`].
fn check_tensor_size(i: usize, fan_in: usize, out: usize) -> Result<usize> {
    let limit = Mlp::MAX_TENSOR_ELEMENTS;
    match fan_in.checked_mul(out) {
        Some(n) if n <= limit => Ok(n),
        n => Err(Error::invalid(format!(
            "layer {i}: Linear({fan_in}, {out}) is too large: its weight [{out}, {fan_in}] has {} \
             elements, over the limit of {limit} elements ({} GiB of f32) per tensor",
            n.map_or_else(
                || format!("{fan_in}·{out} (overflows usize)"),
                |n| n.to_string()
            ),
            ((limit as u64 + 1) * 4) >> 30
        ))),
    }
}

/// A vector of `len` zeros, reserved fallibly: an allocation the system refuses is an error naming
/// `what`, not an abort.
fn try_zeros(len: usize, what: impl FnOnce() -> String) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|e| {
        Error::invalid(format!(
            "out of memory: cannot allocate {} bytes for {}: {e}",
            len as u128 * 4,
            what()
        ))
    })?;
    v.resize(len, 0.0);
    Ok(v)
}
