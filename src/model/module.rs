//! [`Module`]: one PyTorch module (or function called in `forward()`) of an [`Mlp`](crate::Mlp),
//! and the parameter-holding ones besides [`Linear`]: [`BatchNorm1d`], [`LayerNorm`], [`PRelu`].
//! Each knows its class name, its parameter count as torchsummary counts it, and the
//! elementwise [`Expr`] it computes where it is elementwise.

use std::sync::Arc;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::model::expr::{Binary, Expr, Node};
use crate::model::linear::Linear;

/// PyTorch's default `eps` of `BatchNorm1d` and `LayerNorm`.
pub const DEFAULT_EPS: f32 = 1e-5;

/// One step of a model's forward pass, in forward order.
#[derive(Clone, Debug, PartialEq)]
pub enum Module {
    /// `nn.Linear`.
    Linear(Linear),
    /// `nn.BatchNorm1d` in eval mode (running statistics).
    BatchNorm1d(BatchNorm1d),
    /// `nn.LayerNorm` over the feature dimension.
    LayerNorm(LayerNorm),
    /// An activation module (`nn.ReLU()`, …): a torchsummary row.
    Activation(Activation),
    /// An activation called as a function in `forward()` (`torch.sigmoid(x)`): the same
    /// computation, but no module, so no torchsummary row.
    Function(Activation),
    /// `nn.PReLU`.
    PRelu(PRelu),
    /// Any other elementwise computation (an ONNX subgraph), with the PyTorch class it came from
    /// when known (a torchsummary row) or `None` for functional code (no row).
    Elementwise {
        /// What it computes.
        expr: Expr,
        /// The PyTorch module class, e.g. `"GELU"`.
        class: Option<String>,
    },
    /// `nn.Dropout(p)`: the identity at inference.
    Dropout(f32),
    /// `nn.Flatten()`: the identity on `[batch, features]` inputs.
    Flatten,
    /// `nn.Identity()`.
    Identity,
}

impl Module {
    /// The class name torchsummary prints, or `None` for what has no row (functions, and
    /// identity as a [`Layer`](crate::Layer)'s activation).
    pub fn class(&self) -> Option<&str> {
        match self {
            Module::Linear(_) => Some("Linear"),
            Module::BatchNorm1d(_) => Some("BatchNorm1d"),
            Module::LayerNorm(_) => Some("LayerNorm"),
            Module::Activation(a) => a.module_name(),
            Module::Function(_) => None,
            Module::PRelu(_) => Some("PReLU"),
            Module::Elementwise { class, .. } => class.as_deref(),
            Module::Dropout(_) => Some("Dropout"),
            Module::Flatten => Some("Flatten"),
            Module::Identity => Some("Identity"),
        }
    }

    /// Parameters as torchsummary counts them (its `weight` and `bias` attributes).
    pub fn param_count(&self) -> usize {
        match self {
            Module::Linear(l) => l.param_count(),
            Module::BatchNorm1d(b) => b.param_count(),
            Module::LayerNorm(l) => l.param_count(),
            Module::PRelu(p) => p.weight.len(),
            _ => 0,
        }
    }

    /// Whether it owns tensors in a state_dict (and so takes a module name).
    pub fn has_tensors(&self) -> bool {
        matches!(
            self,
            Module::Linear(_) | Module::BatchNorm1d(_) | Module::LayerNorm(_) | Module::PRelu(_)
        )
    }

    /// The output width for an input of `width` features, or the error explaining the mismatch.
    pub(crate) fn out_width(&self, width: usize) -> Result<usize> {
        let need = |c: usize, what: &str| {
            if c == width {
                Ok(width)
            } else {
                Err(Error::shape(format!(
                    "{what} has {c} features but its input has {width}"
                )))
            }
        };
        match self {
            Module::Linear(l) => need(l.in_features(), "Linear's input").map(|_| l.out_features()),
            Module::BatchNorm1d(b) => need(b.features(), "BatchNorm1d"),
            Module::LayerNorm(l) => need(l.features(), "LayerNorm"),
            Module::PRelu(p) if p.weight.len() != 1 => need(p.weight.len(), "PReLU"),
            Module::Elementwise { expr, .. } => expr.check_width(width).map(|()| width),
            _ => Ok(width),
        }
    }

    /// The elementwise expression of an elementwise module (activations, BatchNorm, PReLU,
    /// [`Module::Elementwise`]); `None` for the others (Linear, LayerNorm, row activations,
    /// no-ops).
    pub fn elementwise(&self) -> Option<Expr> {
        match self {
            Module::Activation(a) | Module::Function(a) if !a.is_row() => Expr::activation(*a).ok(),
            Module::BatchNorm1d(b) => Some(b.expr()),
            Module::PRelu(p) => Some(p.expr()),
            Module::Elementwise { expr, .. } => Some(expr.clone()),
            _ => None,
        }
    }
}

/// `nn.BatchNorm1d` in eval mode: `(x − running_mean) / √(running_var + eps) · weight + bias`,
/// per feature.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm1d {
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    weight: Option<Vec<f32>>,
    bias: Option<Vec<f32>>,
    eps: f32,
    /// Training steps taken in train mode (PyTorch's `num_batches_tracked`, an int64 buffer).
    num_batches_tracked: i64,
}

impl BatchNorm1d {
    /// From the running statistics and the optional affine parameters (`affine=False` has
    /// neither), checking lengths.
    pub fn new(
        running_mean: Vec<f32>,
        running_var: Vec<f32>,
        weight: Option<Vec<f32>>,
        bias: Option<Vec<f32>>,
        eps: f32,
    ) -> Result<Self> {
        let c = running_mean.len();
        let lens = [
            Some(running_var.len()),
            weight.as_ref().map(Vec::len),
            bias.as_ref().map(Vec::len),
        ];
        if c == 0 || lens.iter().flatten().any(|&n| n != c) {
            return Err(Error::shape(format!(
                "BatchNorm1d: running_mean has {c} values; running_var, weight and bias need as \
                 many (got {lens:?})"
            )));
        }
        check_eps(eps, "BatchNorm1d")?;
        Ok(BatchNorm1d {
            running_mean,
            running_var,
            weight,
            bias,
            eps,
            num_batches_tracked: 0,
        })
    }

    /// PyTorch's initial state: mean 0, variance 1, weight 1, bias 0.
    pub fn default_init(features: usize) -> Self {
        BatchNorm1d {
            running_mean: vec![0.0; features],
            running_var: vec![1.0; features],
            weight: Some(vec![1.0; features]),
            bias: Some(vec![0.0; features]),
            eps: DEFAULT_EPS,
            num_batches_tracked: 0,
        }
    }

    /// `num_batches_tracked`: how many train-mode batches updated the running statistics.
    pub fn num_batches_tracked(&self) -> i64 {
        self.num_batches_tracked
    }

    /// Sets `num_batches_tracked` (a trainer counts steps; a loader restores the saved count).
    pub fn set_num_batches_tracked(&mut self, n: i64) {
        self.num_batches_tracked = n;
    }

    /// The running statistics and affine parameters, writable (lengths stay fixed):
    /// `(running_mean, running_var, weight, bias)`.
    pub(crate) fn tensors_mut(&mut self) -> BatchNormTensorsMut<'_> {
        (
            &mut self.running_mean,
            &mut self.running_var,
            self.weight.as_deref_mut(),
            self.bias.as_deref_mut(),
        )
    }

    /// Features (C).
    pub fn features(&self) -> usize {
        self.running_mean.len()
    }

    /// `running_mean`.
    pub fn running_mean(&self) -> &[f32] {
        &self.running_mean
    }

    /// `running_var`.
    pub fn running_var(&self) -> &[f32] {
        &self.running_var
    }

    /// `weight` (γ), absent with `affine=False`.
    pub fn weight(&self) -> Option<&[f32]> {
        self.weight.as_deref()
    }

    /// `bias` (β), absent with `affine=False`.
    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// `eps`.
    pub fn eps(&self) -> f32 {
        self.eps
    }

    fn param_count(&self) -> usize {
        affine_count(&self.weight, &self.bias)
    }

    /// The reference value of feature `c` at `x`, in f64: the map of [`BatchNorm1d::expr`].
    pub(crate) fn apply_f64(&self, x: f64, c: usize) -> f64 {
        let (center, scale, offset) = self.center_scale_offset(c);
        (x - center) * scale + offset
    }

    fn weight_f64(&self, c: usize) -> f64 {
        self.weight.as_ref().map_or(1.0, |w| f64::from(w[c]))
    }

    fn bias_f64(&self, c: usize) -> f64 {
        self.bias.as_ref().map_or(0.0, |b| f64::from(b[c]))
    }

    /// Feature `c`'s map as `(x − center) · scale + offset`, in f64, with
    /// `scale = weight / √(var + eps)`. PyTorch computes `x · scale + (bias − mean · scale)`;
    /// subtracting the mean first keeps the digits its float64 forward keeps where the mean is
    /// large and the variance small (mean 1e6, var 1e-6: `x · scale` and `mean · scale` are near
    /// 1e9 and cancel, in f32 to a multiple of 64). Where `scale` is not finite in f32 (var + eps
    /// = 0, an infinite weight) PyTorch's own form is kept, and with it its NaNs (`mean · inf` is
    /// NaN at mean 0): center 0, offset `bias − mean · scale`.
    fn center_scale_offset(&self, c: usize) -> (f64, f64, f64) {
        let inv = 1.0 / (f64::from(self.running_var[c]) + f64::from(self.eps)).sqrt();
        let scale = self.weight_f64(c) * inv;
        let mean = f64::from(self.running_mean[c]);
        if (scale as f32).is_finite() {
            (mean, scale, self.bias_f64(c))
        } else {
            (0.0, scale, self.bias_f64(c) - mean * scale)
        }
    }

    /// `(x − center) · scale + offset` per feature (PyTorch's form where `scale` is infinite in f32),
    /// each vector computed in f64 and rounded once: the map the kernels fuse into the epilogue
    /// of the step before (nothing is folded into a Linear's weights, which would round every
    /// weight again).
    pub fn expr(&self) -> Expr {
        let n = self.features();
        let (mut center, mut scale, mut offset) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for c in 0..n {
            let (m, s, o) = self.center_scale_offset(c);
            center.push(m as f32);
            scale.push(s as f32);
            offset.push(o as f32);
        }
        Expr::centered_affine(center, scale, offset)
    }
}

/// BatchNorm1d's writable tensors: `(running_mean, running_var, weight, bias)`.
pub(crate) type BatchNormTensorsMut<'a> = (
    &'a mut [f32],
    &'a mut [f32],
    Option<&'a mut [f32]>,
    Option<&'a mut [f32]>,
);

/// `nn.LayerNorm(features)` over the last dimension: `(x − mean) / √(var + eps) · weight + bias`
/// with the biased variance of each row.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm {
    features: usize,
    weight: Option<Vec<f32>>,
    bias: Option<Vec<f32>>,
    eps: f32,
}

impl LayerNorm {
    /// From the optional affine parameters (`elementwise_affine=False` has neither,
    /// `bias=False` no bias), checking lengths.
    pub fn new(
        features: usize,
        weight: Option<Vec<f32>>,
        bias: Option<Vec<f32>>,
        eps: f32,
    ) -> Result<Self> {
        let bad = |v: &Option<Vec<f32>>| v.as_ref().is_some_and(|v| v.len() != features);
        if features == 0 || bad(&weight) || bad(&bias) {
            return Err(Error::shape(format!(
                "LayerNorm({features}): weight and bias need {features} values each"
            )));
        }
        check_eps(eps, "LayerNorm")?;
        Ok(LayerNorm {
            features,
            weight,
            bias,
            eps,
        })
    }

    /// PyTorch's initial state: weight 1, bias 0.
    pub fn default_init(features: usize) -> Self {
        LayerNorm {
            features,
            weight: Some(vec![1.0; features]),
            bias: Some(vec![0.0; features]),
            eps: DEFAULT_EPS,
        }
    }

    /// Features (the normalised shape).
    pub fn features(&self) -> usize {
        self.features
    }

    /// `weight` (γ).
    pub fn weight(&self) -> Option<&[f32]> {
        self.weight.as_deref()
    }

    /// `bias` (β).
    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// `eps`.
    pub fn eps(&self) -> f32 {
        self.eps
    }

    fn param_count(&self) -> usize {
        affine_count(&self.weight, &self.bias)
    }

    /// The affine parameters, writable: `(weight, bias)`.
    pub(crate) fn tensors_mut(&mut self) -> (Option<&mut [f32]>, Option<&mut [f32]>) {
        (self.weight.as_deref_mut(), self.bias.as_deref_mut())
    }

    /// The affine part, `x · weight + bias`, applied after the row is normalised.
    pub fn affine(&self) -> Expr {
        Expr::affine(self.weight.clone(), self.bias.clone())
    }

    /// The reference forward pass of one row, in f64 (biased variance, two passes).
    pub(crate) fn apply_row_f64(&self, row: &mut [f64]) {
        let n = row.len() as f64;
        let mean = row.iter().sum::<f64>() / n;
        let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        let inv = 1.0 / (var + f64::from(self.eps)).sqrt();
        for (c, x) in row.iter_mut().enumerate() {
            let w = self.weight.as_ref().map_or(1.0, |w| f64::from(w[c]));
            let b = self.bias.as_ref().map_or(0.0, |b| f64::from(b[c]));
            *x = (*x - mean) * inv * w + b;
        }
    }
}

/// `nn.PReLU`: `x` if `x > 0`, else `weight · x`, with one weight or one per feature.
#[derive(Clone, Debug, PartialEq)]
pub struct PRelu {
    weight: Vec<f32>,
}

impl PRelu {
    /// From its weight (1 value, or one per feature).
    pub fn new(weight: Vec<f32>) -> Result<Self> {
        if weight.is_empty() {
            return Err(Error::shape("PReLU needs at least one weight"));
        }
        Ok(PRelu { weight })
    }

    /// The weight.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    /// The weight, writable (its length stays fixed).
    pub(crate) fn weight_mut(&mut self) -> &mut [f32] {
        &mut self.weight
    }

    /// `where(x > 0, x, x · weight[c])`.
    pub fn expr(&self) -> Expr {
        let w: Arc<[f32]> = self.weight.clone().into();
        let nodes = vec![
            Node::Input,
            Node::Const(0.0),
            Node::Binary(Binary::Greater, 0, 1),
            Node::Column(w),
            Node::Binary(Binary::Mul, 0, 3),
            Node::Where(2, 0, 4),
        ];
        Expr::from_nodes(nodes).expect("a well-formed expression")
    }
}

/// Values of an optional weight and bias (torchsummary counts both, buffers not).
fn affine_count(weight: &Option<Vec<f32>>, bias: &Option<Vec<f32>>) -> usize {
    weight.as_ref().map_or(0, Vec::len) + bias.as_ref().map_or(0, Vec::len)
}

fn check_eps(eps: f32, what: &str) -> Result<()> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what}: eps must be a finite number ≥ 0, got {eps}"
        )))
    }
}
