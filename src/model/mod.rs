//! The model: [`Mlp`], a sequence of [`Module`]s in forward order (Linear layers, norms,
//! activations, dropout, …), with [`Layer`] and [`MlpBuilder`] for the common "Linear then
//! activation" stacks, and [`Expr`], the elementwise expressions the modules reduce to.

pub mod arch;
mod bind;
mod builder;
pub mod expr;
mod linear;
mod module;
mod params;
pub(crate) mod steps;

pub use arch::Arch;
pub use bind::{Tensors, natural_cmp};
pub use builder::{LayerSpec, MlpBuilder};
pub use expr::Expr;
pub use linear::Linear;
pub use module::{BatchNorm1d, DEFAULT_EPS, LayerNorm, Module, PRelu};
pub use params::{TensorKind, TensorRef, TensorValues};

use crate::activation::Activation;
use crate::error::{Error, Result};

/// One Linear layer and the activation that follows it: the shorthand of [`Mlp::from_layers`]
/// and `--act` for the common stacks.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The affine map.
    pub linear: Linear,
    /// The activation applied to its output (as a module; identity adds none).
    pub activation: Activation,
}

/// A multi-layer perceptron: `[batch, in] → [batch, out]`, a sequence of [`Module`]s.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    modules: Vec<Module>,
    in_features: usize,
    out_features: usize,
    diagnostics: Vec<String>,
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
        MlpBuilder::new(in_features)
    }

    /// A model of these modules, in forward order. The widths must chain (each module's input
    /// width is the previous output width), and there must be at least one Linear layer; the
    /// input width is the first width a module fixes (a PReLU with one slope fixes none).
    pub fn new(modules: Vec<Module>) -> Result<Self> {
        if !modules.iter().any(|m| matches!(m, Module::Linear(_))) {
            return Err(Error::shape("a network needs at least one Linear layer"));
        }
        // The input width is the first one a module fixes: a single-slope PReLU fits any
        // width, so the module after it says (PReLU(), Linear(4, 3) takes 4 features).
        let in_features = modules
            .iter()
            .find_map(|m| match m {
                Module::Linear(l) => Some(l.in_features()),
                Module::BatchNorm1d(b) => Some(b.features()),
                Module::LayerNorm(l) => Some(l.features()),
                Module::PRelu(p) if p.weight().len() > 1 => Some(p.weight().len()),
                _ => None,
            })
            .unwrap_or(1);
        let mut width = in_features;
        for (i, m) in modules.iter().enumerate() {
            width = m.out_width(width).map_err(|e| {
                Error::shape(format!(
                    "module {i} ({}): {}",
                    m.class().unwrap_or("function"),
                    e.to_string().trim_start_matches("shape mismatch: ")
                ))
            })?;
        }
        let diagnostics = symmetry_warnings(&modules);
        Ok(Mlp {
            modules,
            in_features,
            out_features: width,
            diagnostics,
        })
    }

    /// Assembles Linear layers, each followed by its activation module (identity: none): the
    /// equivalent `nn.Sequential`. Checks that the shapes chain.
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
        let mut modules = Vec::with_capacity(layers.len() * 2);
        for l in layers {
            modules.push(Module::Linear(l.linear));
            if l.activation != Activation::Identity {
                modules.push(Module::Activation(l.activation));
            }
        }
        Mlp::new(modules)
    }

    /// The modules, in forward order.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The Linear layers, in forward order.
    pub fn linears(&self) -> impl Iterator<Item = &Linear> {
        self.modules.iter().filter_map(|m| match m {
            Module::Linear(l) => Some(l),
            _ => None,
        })
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Total parameters as torchsummary counts them (`Σ (in + 1) · out` for Linear layers,
    /// `2·C` for norms, …).
    pub fn param_count(&self) -> usize {
        self.modules.iter().map(Module::param_count).sum()
    }

    /// Adds a note for [`diagnostics`](Self::diagnostics) (how a file was read, e.g. bound by
    /// shape).
    pub(crate) fn add_diagnostic(&mut self, note: String) {
        self.diagnostics.push(note);
    }

    /// Warnings about the model, e.g. a weight matrix whose entries are all equal (zeros, ones or
    /// any constant): such a layer's neurons are identical and can never learn different features.
    pub fn diagnostics(&self) -> &[String] {
        &self.diagnostics
    }

    /// Checks that an input `[batch, cols]` fits this model; the error names both shapes.
    pub fn check_input(&self, batch: usize, cols: usize) -> Result<()> {
        if cols != self.in_features {
            return Err(Error::shape(format!(
                "input is [{batch}, {cols}] but the model expects [batch, {}]",
                self.in_features
            )));
        }
        Ok(())
    }
}

/// One warning per layer whose weight entries are all the same value.
fn symmetry_warnings(modules: &[Module]) -> Vec<String> {
    let mut out = Vec::new();
    let linears = modules.iter().filter_map(|m| match m {
        Module::Linear(l) => Some(l),
        _ => None,
    });
    for (i, linear) in linears.enumerate() {
        let w = linear.weight();
        let first = w[0];
        let constant = w.iter().all(|&v| v.to_bits() == first.to_bits());
        if constant && linear.out_features() > 1 {
            out.push(format!(
                "layer {i} (Linear({}, {})): every weight is {first}; its {} neurons are identical \
                 and get identical gradients, so they can never learn different features. \
                 Use a random init (the default, xavier_* or kaiming_*) to break the symmetry.",
                linear.in_features(),
                linear.out_features(),
                linear.out_features()
            ));
        }
    }
    out
}
