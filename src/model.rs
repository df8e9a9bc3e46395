//! `Mlp`: a stack of Linear layers, each followed by an activation, and its builder.

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layer::Linear;
use crate::rng::Generator;

/// One Linear layer and the activation that follows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The affine map.
    pub linear: Linear,
    /// The activation applied to its output.
    pub activation: Activation,
}

/// A multi-layer perceptron: `[batch, in] → [batch, out]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    layers: Vec<Layer>,
    diagnostics: Vec<String>,
}

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
    specs: Vec<LayerSpec>,
    seed: u64,
}

/// The seed used when none is given: PyTorch's default CPU generator seed.
pub const DEFAULT_SEED: u64 = 67_280_421_310_721;

impl MlpBuilder {
    /// Appends a layer with PyTorch's default init.
    pub fn layer(self, out_features: usize, activation: Activation) -> Self {
        self.layer_spec(LayerSpec::new(out_features, activation))
    }

    /// Appends a layer described in full.
    pub fn layer_spec(mut self, spec: LayerSpec) -> Self {
        self.specs.push(spec);
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
        if self.specs.is_empty() {
            return Err(Error::shape("a network needs at least one Linear layer"));
        }
        if let Some(i) = self.specs.iter().position(|s| s.out_features == 0) {
            return Err(Error::shape(format!(
                "layer {i} has width 0; widths must be at least 1"
            )));
        }
        // Refuse absurd sizes before allocating anything, for every layer.
        let mut fan_in = self.in_features;
        for (i, spec) in self.specs.iter().enumerate() {
            check_tensor_size(i, fan_in, spec.out_features)?;
            fan_in = spec.out_features;
        }
        let mut rng = Generator::new(self.seed);
        let mut layers = Vec::with_capacity(self.specs.len());
        let mut fan_in = self.in_features;
        for (i, spec) in self.specs.into_iter().enumerate() {
            let out = spec.out_features;
            let len = check_tensor_size(i, fan_in, out)?;
            let mut weight = try_zeros(len, || format!("layer {i} weight [{out}, {fan_in}]"))?;
            spec.weight_init
                .fill_weight(&mut weight, out, fan_in, &mut rng)
                .map_err(|e| Error::invalid(format!("layer {i} weight: {e}")))?;
            let bias = if spec.bias {
                let mut b = try_zeros(out, || format!("layer {i} bias [{out}]"))?;
                spec.bias_init
                    .fill_bias(&mut b, fan_in, &mut rng)
                    .map_err(|e| Error::invalid(format!("layer {i} bias: {e}")))?;
                Some(b)
            } else {
                None
            };
            layers.push(Layer {
                linear: Linear::new(fan_in, out, weight, bias)?,
                activation: spec.activation,
            });
            fan_in = out;
        }
        Mlp::from_layers(layers)
    }
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
            len.saturating_mul(4),
            what()
        ))
    })?;
    v.resize(len, 0.0);
    Ok(v)
}

impl Mlp {
    /// The most elements any one weight tensor made by [`MlpBuilder::build`] may have:
    /// `2³¹ − 1` (8 GiB of f32). Larger layers are refused before anything is allocated. The limit
    /// is far above what a forward pass can use in practice (on the GPU a weight must also fit one
    /// storage binding, at most 2 GiB), and it keeps every element index within `i32`. On 32-bit
    /// targets the address space caps it further.
    pub const MAX_TENSOR_ELEMENTS: usize = if (i32::MAX as u64) < (isize::MAX as u64) / 4 {
        i32::MAX as usize
    } else {
        isize::MAX as usize / 4
    };

    /// Starts a builder for a network whose input has `in_features` columns.
    ///
    /// ```
    /// use wgpu_mlp::{Activation, Mlp};
    /// let model = Mlp::builder(3)
    ///     .layer(3, Activation::Sigmoid)
    ///     .layer(2, Activation::Identity)
    ///     .seed(42)
    ///     .build()?;
    /// assert_eq!(model.param_count(), 20);
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn builder(in_features: usize) -> MlpBuilder {
        MlpBuilder {
            in_features,
            specs: Vec::new(),
            seed: DEFAULT_SEED,
        }
    }

    /// Assembles layers made elsewhere (loaded weights, say); checks that the shapes chain.
    pub fn from_layers(layers: Vec<Layer>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::shape("a network needs at least one Linear layer"));
        }
        for (i, pair) in layers.windows(2).enumerate() {
            let (a, b) = (&pair[0].linear, &pair[1].linear);
            if a.out_features() != b.in_features() {
                return Err(Error::shape(format!(
                    "layer {i} outputs {} features but layer {} expects {}",
                    a.out_features(),
                    i + 1,
                    b.in_features()
                )));
            }
        }
        let diagnostics = symmetry_warnings(&layers);
        Ok(Mlp {
            layers,
            diagnostics,
        })
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.layers[0].linear.in_features()
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.layers[self.layers.len() - 1].linear.out_features()
    }

    /// Total parameters, `Σ (in + 1) · out`.
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(|l| l.linear.param_count()).sum()
    }

    /// Warnings about the model, e.g. a weight matrix whose entries are all equal (zeros, ones or
    /// any constant): such a layer's neurons are identical and can never learn different features.
    pub fn diagnostics(&self) -> &[String] {
        &self.diagnostics
    }

    /// Checks that an input `[batch, cols]` fits this model; the error names both shapes.
    pub fn check_input(&self, batch: usize, cols: usize) -> Result<()> {
        let first = &self.layers[0].linear;
        if cols != first.in_features() {
            return Err(Error::shape(format!(
                "input is [{batch}, {cols}] but the model expects [batch, {}] (first layer Linear({}, {}))",
                first.in_features(),
                first.in_features(),
                first.out_features()
            )));
        }
        Ok(())
    }
}

/// One warning per layer whose weight entries are all the same value.
fn symmetry_warnings(layers: &[Layer]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let w = layer.linear.weight();
        let first = w[0];
        let constant = w.iter().all(|&v| v.to_bits() == first.to_bits());
        if constant && layer.linear.out_features() > 1 {
            out.push(format!(
                "layer {i} (Linear({}, {})): every weight is {first}; its {} neurons are identical \
                 and get identical gradients, so they can never learn different features. \
                 Use a random init (the default, xavier_* or kaiming_*) to break the symmetry.",
                layer.linear.in_features(),
                layer.linear.out_features(),
                layer.linear.out_features()
            ));
        }
    }
    out
}
