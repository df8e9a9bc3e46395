//! `torch.nn.init` with PyTorch's exact formulas. (Stub: the full implementation lands next.)

use crate::error::{Error, Result};
use crate::rng::Generator;

/// How a tensor is initialized.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// `nn.Linear`'s own init: weight `kaiming_uniform_(a=√5)` (U(±1/√in)), bias U(±1/√fan_in).
    PytorchDefault,
    /// U[a, b).
    Uniform {
        /// Lower bound.
        a: f64,
        /// Upper bound.
        b: f64,
    },
    /// Fill with a constant.
    Constant(f64),
    /// Fill with 0.
    Zeros,
    /// Fill with 1.
    Ones,
}

impl Init {
    /// Fills a weight `[out, in]` (row-major, `fan_in = in`) drawing from `rng`.
    pub fn fill_weight(
        &self,
        _weight: &mut [f32],
        _out: usize,
        _fan_in: usize,
        _rng: &mut Generator,
    ) -> Result<()> {
        Err(Error::invalid("init not implemented yet"))
    }

    /// Fills a bias `[out]` whose layer has `fan_in` inputs, drawing from `rng`.
    pub fn fill_bias(&self, _bias: &mut [f32], _fan_in: usize, _rng: &mut Generator) -> Result<()> {
        Err(Error::invalid("init not implemented yet"))
    }
}
