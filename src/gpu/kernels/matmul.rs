//! The training plan's matrix product (`shaders/matmul.wgsl`): `C = op(A)·op(B) (+ bias)` on
//! plain row-major f32 buffers, with A or B read transposed. The three products of a Linear
//! layer are its three variants: forward `X·Wᵀ + b` ([`Variant::Forward`]), `dX = dZ·W`
//! ([`Variant::InputGrad`]) and `dW = dZᵀ·X` ([`Variant::WeightGrad`]). The inference kernels'
//! packed, padded or f16 weights are read-only layouts; training updates its weights in place,
//! so it reads them as they are in PyTorch (`[out, in]`).

use crate::gpu::kernels::{
    Dispatch, Kernel, NO_EPILOGUE, PipelineSpec, SUBGROUP_DIRECTIVE, Slot, WgslStruct, source,
    wgsl_struct,
};

const BODY: &str = shader!("matmul.wgsl");
const A_SUBGROUP: &str = shader!("matmul_subgroup.wgsl");
const A_NO_SUBGROUP: &str = shader!("matmul_no_subgroup.wgsl");

/// Rows of C per invocation (`ROWS` in the WGSL, whose accumulators are written out for 32).
const ROWS: u64 = 32;
/// Invocations per workgroup at most (a row of them, each computing 4 columns).
const MAX_WG: u64 = 64;
/// Invocations per workgroup at least: one subgroup of a software adapter.
const MIN_WG: u64 = 8;

wgsl_struct! {
    /// The uniform block: C is `[m, n]`, the sum runs over `k`.
    pub(crate) struct MatmulDims {
        m: u32,
        n: u32,
        k: u32,
        /// `A[m, k]` is at `m·sam + k·sak`.
        sam: u32,
        sak: u32,
        /// `B[k, n]` is at `k·sbk + n·sbn`.
        sbk: u32,
        sbn: u32,
        /// `bias[n]` is added to every row.
        has_bias: u32,
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
    /// The device has subgroups (of at least 8): rows of A are shared by `subgroupBroadcast`.
    pub(crate) subgroups: bool,
    /// A software adapter, which runs every invocation of a workgroup, useful or not.
    pub(crate) software: bool,
}

impl Matmul {
    /// The uniform block for a batch of `rows` rows.
    pub(crate) fn dims(&self, rows: usize) -> MatmulDims {
        let (m, n, k, trans_a, trans_b) = match self.variant {
            Variant::Forward => (rows, self.n_out, self.n_in, false, true),
            Variant::InputGrad => (rows, self.n_in, self.n_out, false, false),
            Variant::WeightGrad => (self.n_out, self.n_in, rows, true, false),
        };
        // Row-major A [m, k] (or [k, m] read transposed) and B [k, n] (or [n, k]).
        let (sam, sak) = if trans_a { (1, m) } else { (k, 1) };
        let (sbk, sbn) = if trans_b { (1, k) } else { (n, 1) };
        MatmulDims {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            sam: sam as u32,
            sak: sak as u32,
            sbk: sbk as u32,
            sbn: sbn as u32,
            has_bias: u32::from(self.bias && self.variant == Variant::Forward),
        }
    }

    /// Columns of C: they set the workgroup's width.
    fn columns(&self) -> usize {
        match self.variant {
            Variant::Forward => self.n_out,
            Variant::InputGrad | Variant::WeightGrad => self.n_in,
        }
    }

    /// Invocations per workgroup, one per 4 columns. A software adapter runs every invocation,
    /// useful or not, so there the width (8 to 64) that pads the columns least, the widest on a
    /// tie (784 columns: 8, 200 invocations where 64 ran 256); elsewhere 64, or the smallest
    /// power of two of at least 8 that covers the columns.
    fn wg(&self) -> u64 {
        let groups = self.columns().div_ceil(4) as u64;
        if !self.software {
            return groups.next_power_of_two().clamp(MIN_WG, MAX_WG);
        }
        [MAX_WG, 32, 16, MIN_WG]
            .into_iter()
            .min_by_key(|wg| groups.div_ceil(*wg) * wg)
            .expect("widths")
    }

    /// The most rows a batch may have: the grid's y dimension counts blocks of rows.
    pub(crate) fn max_rows(max_groups: u32) -> usize {
        (u64::from(max_groups) * ROWS) as usize
    }
}

impl Kernel for Matmul {
    fn slots(&self) -> &'static [Slot] {
        SLOTS
    }

    fn pipelines(&self) -> Vec<PipelineSpec> {
        let (directive, rows_of_a) = if self.subgroups {
            (SUBGROUP_DIRECTIVE, A_SUBGROUP)
        } else {
            ("", A_NO_SUBGROUP)
        };
        let header = format!("{directive}{}const ROWS: u32 = {ROWS}u;\n", MatmulDims::WGSL);
        vec![PipelineSpec {
            label: "matmul",
            source: source(&header, SLOTS, NO_EPILOGUE, &[rows_of_a, BODY].concat()),
            trusted: false,
            entry: "matmul",
            constants: vec![("WG", self.wg() as f64)],
            slots: SLOTS,
        }]
    }

    fn dispatches(&self, rows: usize, _max_groups: u32) -> Vec<Dispatch> {
        let dims = self.dims(rows);
        let grid = (
            u64::from(dims.n).div_ceil(4 * self.wg()).max(1) as u32,
            u64::from(dims.m).div_ceil(ROWS).max(1) as u32,
        );
        vec![Dispatch::new(0, &dims, grid)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wg(columns: usize, software: bool) -> u64 {
        Matmul {
            variant: Variant::Forward,
            n_in: 3,
            n_out: columns,
            bias: false,
            subgroups: false,
            software,
        }
        .wg()
    }

    #[test]
    fn software_adapters_get_the_width_that_pads_least() {
        assert_eq!(wg(512, true), 64); // 128 groups of 4 columns: no padding at 64
        assert_eq!(wg(784, true), 8); // 196: 200 invocations at 8, 256 at 64
        assert_eq!(wg(192, true), 16); // 48: 48 at 16 and at 8, the wider wins
        assert_eq!(wg(10, true), 8);
        assert_eq!(wg(784, false), 64);
        assert_eq!(wg(10, false), 8);
    }
}
