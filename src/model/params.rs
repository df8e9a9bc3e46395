//! A model's state as named, writable tensors: every module's tensors in PyTorch's state_dict
//! order (Linear `weight`, `bias`; BatchNorm1d `weight`, `bias`, `running_mean`, `running_var`,
//! `num_batches_tracked`; LayerNorm `weight`, `bias`; PReLU `weight`), each with the index of
//! its module in [`Mlp::modules`], its kind, whether it is trained, its shape and its values.
//! A trainer (or a device-side model) reads them with [`Mlp::tensors`] and writes them back with
//! [`Mlp::set_tensor`] / [`Mlp::tensor_mut`].

use std::fmt;

use crate::error::{Error, Result};
use crate::model::{Mlp, Module};

/// Which tensor of a module, named as in a PyTorch state_dict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorKind {
    /// `weight` (Linear `[out, in]`; BatchNorm1d, LayerNorm, PReLU `[C]`).
    Weight,
    /// `bias`.
    Bias,
    /// BatchNorm1d `running_mean` (a buffer).
    RunningMean,
    /// BatchNorm1d `running_var` (a buffer).
    RunningVar,
    /// BatchNorm1d `num_batches_tracked` (an int64 buffer, shape `[]`).
    NumBatchesTracked,
}

impl TensorKind {
    /// The state_dict suffix: `"weight"`, `"bias"`, `"running_mean"`, …
    pub fn name(self) -> &'static str {
        match self {
            TensorKind::Weight => "weight",
            TensorKind::Bias => "bias",
            TensorKind::RunningMean => "running_mean",
            TensorKind::RunningVar => "running_var",
            TensorKind::NumBatchesTracked => "num_batches_tracked",
        }
    }

    /// Whether PyTorch trains it (`requires_grad`): parameters yes, buffers no.
    pub fn trainable(self) -> bool {
        matches!(self, TensorKind::Weight | TensorKind::Bias)
    }
}

impl fmt::Display for TensorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The values of one tensor: f32 for parameters and running statistics, an integer count for
/// `num_batches_tracked`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TensorValues<'a> {
    /// float32 values, row-major.
    F32(&'a [f32]),
    /// An int64 scalar.
    Count(i64),
}

/// One tensor of a model's state, borrowed from it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef<'a> {
    /// Index of the module in [`Mlp::modules`].
    pub module: usize,
    /// Which of the module's tensors.
    pub kind: TensorKind,
    /// Whether it is a trained parameter (`requires_grad`) rather than a buffer.
    pub trainable: bool,
    /// Its shape as PyTorch has it (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// Its values.
    pub values: TensorValues<'a>,
}

impl TensorRef<'_> {
    /// The f32 values, `None` for `num_batches_tracked`.
    pub fn f32(&self) -> Option<&[f32]> {
        match self.values {
            TensorValues::F32(v) => Some(v),
            TensorValues::Count(_) => None,
        }
    }
}

impl Mlp {
    /// Every tensor of the model in state_dict order (modules in forward order, each module's
    /// tensors in PyTorch's order). Absent optional tensors (`bias=False`, `affine=False`) are
    /// left out, as PyTorch leaves them out of a state_dict.
    ///
    /// ```
    /// use wgpu_mlp::{Activation, Mlp};
    /// use wgpu_mlp::model::TensorKind;
    /// let model = Mlp::builder(3).layer(2, Activation::Relu).batchnorm1d().seed(0).build()?;
    /// let t = model.tensors();
    /// let names: Vec<String> = t.iter().map(|t| format!("{}.{}", t.module, t.kind)).collect();
    /// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean",
    ///                    "2.running_var", "2.num_batches_tracked"]);
    /// assert_eq!(t[0].shape, [2, 3]);
    /// assert!(t[0].trainable && !t[4].trainable);
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn tensors(&self) -> Vec<TensorRef<'_>> {
        let mut out = Vec::new();
        for (i, m) in self.modules.iter().enumerate() {
            let mut items: Vec<(TensorKind, TensorValues<'_>)> = Vec::new();
            let mut put = |kind, values| items.push((kind, values));
            match m {
                Module::Linear(l) => {
                    put(TensorKind::Weight, TensorValues::F32(l.weight()));
                    if let Some(b) = l.bias() {
                        put(TensorKind::Bias, TensorValues::F32(b));
                    }
                }
                Module::BatchNorm1d(b) => {
                    if let Some(w) = b.weight() {
                        put(TensorKind::Weight, TensorValues::F32(w));
                    }
                    if let Some(v) = b.bias() {
                        put(TensorKind::Bias, TensorValues::F32(v));
                    }
                    put(TensorKind::RunningMean, TensorValues::F32(b.running_mean()));
                    put(TensorKind::RunningVar, TensorValues::F32(b.running_var()));
                    put(
                        TensorKind::NumBatchesTracked,
                        TensorValues::Count(b.num_batches_tracked()),
                    );
                }
                Module::LayerNorm(l) => {
                    if let Some(w) = l.weight() {
                        put(TensorKind::Weight, TensorValues::F32(w));
                    }
                    if let Some(v) = l.bias() {
                        put(TensorKind::Bias, TensorValues::F32(v));
                    }
                }
                Module::PRelu(p) => put(TensorKind::Weight, TensorValues::F32(p.weight())),
                _ => {}
            }
            for (kind, values) in items {
                let shape = match (kind, values, m) {
                    (_, TensorValues::Count(_), _) => Vec::new(),
                    (TensorKind::Weight, _, Module::Linear(l)) => {
                        vec![l.out_features(), l.in_features()]
                    }
                    (_, TensorValues::F32(v), _) => vec![v.len()],
                };
                out.push(TensorRef {
                    module: i,
                    kind,
                    trainable: kind.trainable(),
                    shape,
                    values,
                });
            }
        }
        out
    }

    /// The trainable tensors only (what an optimizer updates), in state_dict order.
    pub fn parameters(&self) -> Vec<TensorRef<'_>> {
        self.tensors().into_iter().filter(|t| t.trainable).collect()
    }

    /// The f32 tensor `kind` of module `module`, writable. An error names the module when it has
    /// no such tensor (or it is `num_batches_tracked`: see [`Mlp::set_num_batches_tracked`]).
    /// Only values change, never shapes.
    pub fn tensor_mut(&mut self, module: usize, kind: TensorKind) -> Result<&mut [f32]> {
        let n = self.modules.len();
        let m = self.modules.get_mut(module).ok_or_else(|| {
            Error::invalid(format!("module {module} does not exist: the model has {n}"))
        })?;
        let class = m.class().unwrap_or("function").to_string();
        let found: Option<&mut [f32]> = match (m, kind) {
            (Module::Linear(l), TensorKind::Weight) => Some(l.tensors_mut().0),
            (Module::Linear(l), TensorKind::Bias) => l.tensors_mut().1,
            (Module::BatchNorm1d(b), k) => {
                let (mean, var, w, bias) = b.tensors_mut();
                match k {
                    TensorKind::Weight => w,
                    TensorKind::Bias => bias,
                    TensorKind::RunningMean => Some(mean),
                    TensorKind::RunningVar => Some(var),
                    TensorKind::NumBatchesTracked => None,
                }
            }
            (Module::LayerNorm(l), TensorKind::Weight) => l.tensors_mut().0,
            (Module::LayerNorm(l), TensorKind::Bias) => l.tensors_mut().1,
            (Module::PRelu(p), TensorKind::Weight) => Some(p.weight_mut()),
            _ => None,
        };
        found.ok_or_else(|| {
            Error::invalid(format!(
                "module {module} ({class}) has no f32 tensor '{kind}'"
            ))
        })
    }

    /// Overwrites tensor `kind` of module `module` with `values`, which must have its length
    /// (the error gives both).
    pub fn set_tensor(&mut self, module: usize, kind: TensorKind, values: &[f32]) -> Result<()> {
        let t = self.tensor_mut(module, kind)?;
        if t.len() != values.len() {
            return Err(Error::shape(format!(
                "module {module} {kind} has {} values, got {}",
                t.len(),
                values.len()
            )));
        }
        t.copy_from_slice(values);
        Ok(())
    }

    /// Sets `num_batches_tracked` of the BatchNorm1d at `module`.
    pub fn set_num_batches_tracked(&mut self, module: usize, n: i64) -> Result<()> {
        match self.modules.get_mut(module) {
            Some(Module::BatchNorm1d(b)) => {
                b.set_num_batches_tracked(n);
                Ok(())
            }
            _ => Err(Error::invalid(format!(
                "module {module} is not a BatchNorm1d: it has no num_batches_tracked"
            ))),
        }
    }

    /// Mutable access to the modules for the trainer, which keeps every shape.
    pub(crate) fn modules_mut(&mut self) -> &mut [Module] {
        &mut self.modules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Activation, Mlp};

    fn model() -> Mlp {
        Mlp::builder(3)
            .layer(4, Activation::Relu)
            .batchnorm1d()
            .layer(2, Activation::Identity)
            .layernorm()
            .seed(1)
            .build()
            .unwrap()
    }

    #[test]
    fn order_kinds_and_shapes_follow_the_state_dict() {
        let m = model();
        let got: Vec<(usize, &str, bool, Vec<usize>)> = m
            .tensors()
            .iter()
            .map(|t| (t.module, t.kind.name(), t.trainable, t.shape.to_vec()))
            .collect();
        let idx = |c: &str| {
            m.modules()
                .iter()
                .position(|x| x.class() == Some(c))
                .unwrap()
        };
        let (bn, ln) = (idx("BatchNorm1d"), idx("LayerNorm"));
        assert_eq!(
            got,
            vec![
                (0, "weight", true, vec![4, 3]),
                (0, "bias", true, vec![4]),
                (bn, "weight", true, vec![4]),
                (bn, "bias", true, vec![4]),
                (bn, "running_mean", false, vec![4]),
                (bn, "running_var", false, vec![4]),
                (bn, "num_batches_tracked", false, vec![]),
                (bn + 1, "weight", true, vec![2, 4]),
                (bn + 1, "bias", true, vec![2]),
                (ln, "weight", true, vec![2]),
                (ln, "bias", true, vec![2]),
            ]
        );
        assert_eq!(m.parameters().len(), 8);
        let l0 = m.linears().next().unwrap();
        assert_eq!(m.tensors()[0].f32().unwrap(), l0.weight());
    }

    #[test]
    fn writes_land_and_shapes_are_checked() {
        let mut m = model();
        m.set_tensor(0, TensorKind::Bias, &[1.0, 2.0, 3.0, 4.0])
            .unwrap();
        assert_eq!(
            m.linears().next().unwrap().bias().unwrap(),
            &[1.0, 2.0, 3.0, 4.0]
        );
        let e = m.set_tensor(0, TensorKind::Bias, &[1.0]).unwrap_err();
        assert!(e.to_string().contains("has 4 values, got 1"), "{e}");
        let e = m.tensor_mut(1, TensorKind::Weight).unwrap_err();
        assert!(
            e.to_string()
                .contains("module 1 (ReLU) has no f32 tensor 'weight'"),
            "{e}"
        );
        let e = m.tensor_mut(99, TensorKind::Weight).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        m.tensor_mut(2, TensorKind::RunningVar).unwrap()[3] = 7.0;
        let Module::BatchNorm1d(b) = &m.modules()[2] else {
            panic!("module 2 is the BatchNorm1d")
        };
        assert_eq!(b.running_var()[3], 7.0);
        m.set_num_batches_tracked(2, 5).unwrap();
        assert!(
            m.tensors()
                .iter()
                .any(|t| t.values == TensorValues::Count(5))
        );
        assert!(m.set_num_batches_tracked(0, 1).is_err());
        let ln = m.modules().len() - 1;
        m.set_tensor(ln, TensorKind::Weight, &[0.5, 0.25]).unwrap();
        let Module::LayerNorm(l) = &m.modules()[ln] else {
            panic!("the last module is the LayerNorm")
        };
        assert_eq!(l.weight().unwrap(), &[0.5, 0.25]);
    }

    #[test]
    fn absent_optional_tensors_are_left_out() {
        let lin = crate::Linear::new(2, 1, vec![1.0, 2.0], None).unwrap();
        let mut m = Mlp::new(vec![
            Module::Linear(lin),
            Module::PRelu(crate::PRelu::new(vec![0.25]).unwrap()),
        ])
        .unwrap();
        let kinds: Vec<_> = m.tensors().iter().map(|t| (t.module, t.kind)).collect();
        assert_eq!(kinds, [(0, TensorKind::Weight), (1, TensorKind::Weight)]);
        assert!(m.tensor_mut(0, TensorKind::Bias).is_err());
        m.set_tensor(1, TensorKind::Weight, &[0.5]).unwrap();
        assert_eq!(m.tensors()[1].f32().unwrap(), &[0.5]);
    }
}
