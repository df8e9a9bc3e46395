//! `Linear`: one fully connected layer, `y = x·Wᵀ + b`, with PyTorch's weight layout.

use crate::error::{Error, Result};

/// A fully connected layer. `weight` is `[out_features, in_features]`, row-major, exactly as
/// `nn.Linear.weight`; `bias` is `[out_features]` or absent (`bias=False`).
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    in_features: usize,
    out_features: usize,
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl Linear {
    /// Builds a layer from its parameters, checking every length.
    pub fn new(
        in_features: usize,
        out_features: usize,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(Error::shape(format!(
                "Linear({in_features}, {out_features}): widths must be at least 1"
            )));
        }
        let n = in_features.checked_mul(out_features).ok_or_else(|| {
            Error::shape(format!(
                "Linear({in_features}, {out_features}): weight size overflows"
            ))
        })?;
        if weight.len() != n {
            return Err(Error::shape(format!(
                "Linear({in_features}, {out_features}): weight [{out_features}, {in_features}] needs {n} values, got {}",
                weight.len()
            )));
        }
        if let Some(b) = &bias
            && b.len() != out_features
        {
            return Err(Error::shape(format!(
                "Linear({in_features}, {out_features}): bias needs {out_features} values, got {}",
                b.len()
            )));
        }
        Ok(Linear {
            in_features,
            out_features,
            weight,
            bias,
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

    /// The weight, `[out, in]` row-major.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    /// The bias, if the layer has one.
    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// The weight and bias, writable (lengths stay fixed).
    pub(crate) fn tensors_mut(&mut self) -> (&mut [f32], Option<&mut [f32]>) {
        (&mut self.weight, self.bias.as_deref_mut())
    }

    /// Parameters: `(in + 1) · out` with bias, `in · out` without.
    pub fn param_count(&self) -> usize {
        (self.in_features + usize::from(self.bias.is_some())) * self.out_features
    }
}
