//! The training plan's matrix product (`shaders/matmul.wgsl`): `C = op(A)·op(B) (+ bias)` on
//! plain row-major f32 buffers, with A or B read transposed. The three products of a Linear
//! layer are its three variants: forward `X·Wᵀ + b` ([`Variant::Forward`]), `dX = dZ·W`
//! ([`Variant::InputGrad`]) and `dW = dZᵀ·X` ([`Variant::WeightGrad`]). The inference kernels'
//! packed, padded or f16 weights are read-only layouts; training updates its weights in place,
//! so it reads them as they are in PyTorch (`[out, in]`).

use crate::gpu::kernels::{Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, Slot, wgsl_struct};

/// Outputs per invocation along each side (`R` in the WGSL).
const BLOCK: u64 = 4;
/// Invocations per workgroup along each side (`@workgroup_size(8, 8)` in the WGSL).
const WG: u64 = 8;
/// The side of the block of C one workgroup computes.
const TILE: u64 = BLOCK * WG;

wgsl_struct! {
    /// The uniform block: C is `[m, n]`, the sum runs over `k`.
    pub(crate) struct MatmulDims {
        m: u32,
        n: u32,
        k: u32,
        /// A is stored `[k, m]`.
        trans_a: u32,
        /// B is stored `[n, k]`.
        trans_b: u32,
        /// `bias[n]` is added to every row.
        has_bias: u32,
        pad0: u32,
        pad1: u32,
    }
}

const DIMS: Slot = Slot::dims("MatmulDims");
/// The left operand.
pub(crate) const A: Slot = Slot::storage(1, "a", "array<f32>", true);
/// The right operand.
pub(crate) const B: Slot = Slot::storage(2, "b", "array<f32>", true);
/// The bias (bound to a placeholder when there is none).
pub(crate) const BIAS: Slot = Slot::storage(3, "bias", "array<f32>", true);
/// The product.
pub(crate) const C: Slot = Slot::storage(4, "c", "array<f32>", false);
/// The bindings.
pub(crate) const SLOTS: &[Slot] = &[DIMS, A, B, BIAS, C];
/// Every set of bindings it uses.
pub(crate) const SLOT_SETS: &[&[Slot]] = &[SLOTS];

/// Which product of a Linear layer `[out, in]` on a batch of `rows` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Variant {
    /// `Z[rows, out] = X[rows, in]·Wᵀ (+ b)`.
    Forward,
    /// `dX[rows, in] = dZ[rows, out]·W`.
    InputGrad,
    /// `dW[out, in] = dZᵀ·X`.
    WeightGrad,
}

/// One product of a Linear layer of `n_in` inputs and `n_out` outputs.
#[derive(Debug)]
pub(crate) struct Matmul {
    pub(crate) variant: Variant,
    pub(crate) n_in: usize,
    pub(crate) n_out: usize,
    /// Forward only: add the bias.
    pub(crate) bias: bool,
}

impl Matmul {
    /// The uniform block for a batch of `rows` rows.
    pub(crate) fn dims(&self, rows: usize) -> MatmulDims {
        let (m, n, k, trans_a, trans_b) = match self.variant {
            Variant::Forward => (rows, self.n_out, self.n_in, 0, 1),
            Variant::InputGrad => (rows, self.n_in, self.n_out, 0, 0),
            Variant::WeightGrad => (self.n_out, self.n_in, rows, 1, 0),
        };
        MatmulDims {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            trans_a,
            trans_b,
            has_bias: u32::from(self.bias && self.variant == Variant::Forward),
            ..MatmulDims::default()
        }
    }

    /// The most rows a batch may have: the grid's y dimension counts tiles of rows.
    pub(crate) fn max_rows(max_groups: u32) -> usize {
        (u64::from(max_groups) * TILE) as usize
    }
}

impl Kernel for Matmul {
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        let body = shader!("matmul.wgsl");
        vec![PipelineSpec::checked::<MatmulDims>(
            "matmul",
            "matmul",
            SLOTS,
            NO_EPILOGUE,
            body,
        )]
    }

    fn dispatches(&self, rows: usize, _max_groups: u32) -> Vec<Dispatch> {
        let dims = self.dims(rows);
        let grid = (
            u64::from(dims.n).div_ceil(TILE).max(1) as u32,
            u64::from(dims.m).div_ceil(TILE).max(1) as u32,
        );
        vec![Dispatch::new(0, &dims, grid)]
    }
}
