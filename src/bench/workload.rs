//! The workloads of `workloads.md` (plus `transfer`), and one workload at one size: a [`Case`].

use crate::activation::Activation;
use crate::bench::report::BenchPath;
use crate::error::{Error, Result};
use crate::model::{LayerSpec, Mlp};

/// Seed of every benchmark model's weights.
pub const MODEL_SEED: u64 = 0;

/// A workload of `workloads.md`, or the transfer floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// One Linear layer without bias or activation, `[M, K] · [N, K]ᵀ`, M = N = K.
    Gemm,
    /// Linear(784→512) + ReLU → Linear(512→512) + ReLU → Linear(512→10) + Softmax.
    Mnist,
    /// Linear(2048→2048) + ReLU → Linear(2048→2048) + ReLU → Linear(2048→2048).
    Wide,
    /// Linear(3→3) + Sigmoid → Linear(3→2).
    Seed,
    /// One training step of Linear(784→512) + ReLU → Linear(512→512) + ReLU → Linear(512→10):
    /// forward, cross-entropy loss, backward, SGD with momentum 0.9.
    Train,
    /// The adapter's floor, measured as the forward pass of a 1→1 identity model on one row
    /// (upload 4 bytes, one tiny dispatch, read 4 bytes back). GPU paths only.
    Roundtrip,
    /// The adapter's raw transfers: `size` MiB uploaded, copied back and read, with wgpu's own
    /// calls and no kernel (the floor of any end-to-end call moving those bytes). GPU only.
    Transfer,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 7] = [
        Workload::Gemm,
        Workload::Mnist,
        Workload::Wide,
        Workload::Seed,
        Workload::Train,
        Workload::Roundtrip,
        Workload::Transfer,
    ];

    /// The id used in tables, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Gemm => "gemm",
            Workload::Mnist => "mnist",
            Workload::Wide => "wide",
            Workload::Seed => "seed",
            Workload::Train => "train",
            Workload::Roundtrip => "roundtrip",
            Workload::Transfer => "transfer",
        }
    }

    /// Parses a [`name`](Self::name).
    pub fn parse(s: &str) -> Result<Workload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s.trim().to_lowercase())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown workload '{}'; expected one of: {}",
                    crate::escape(s.trim()),
                    Workload::ALL.map(Workload::name).join(", ")
                ))
            })
    }

    /// Part of the quick (default) run? Not `wide`, nor `train` (its reference step takes
    /// seconds at batch 1024).
    pub fn in_quick(self) -> bool {
        !matches!(self, Workload::Wide | Workload::Train)
    }

    /// GEMM sizes (`gemm`), MiB (`transfer`) or batch sizes (the others) of a quick or full run.
    pub fn points(self, full: bool) -> &'static [usize] {
        match (self, full) {
            (Workload::Gemm, false) => &[256, 512],
            (Workload::Gemm, true) => &[256, 512, 1024, 2048],
            (Workload::Mnist, _) => &[1, 64, 1024],
            (Workload::Wide, _) => &[1024],
            (Workload::Train, _) => &[64, 1024],
            (Workload::Seed | Workload::Roundtrip, _) => &[1],
            (Workload::Transfer, false) => &[1, 16],
            (Workload::Transfer, true) => &[1, 16, 128],
        }
    }

    /// Whether `points` are sizes (gemm, transfer) rather than batches.
    pub fn sized(self) -> bool {
        matches!(self, Workload::Gemm | Workload::Transfer)
    }

    /// The model: `size` is M = N = K for `gemm` and ignored otherwise. Weights are PyTorch's
    /// default init with [`MODEL_SEED`]. `transfer` has none (an error).
    pub fn model(self, size: usize) -> Result<Mlp> {
        use Activation::{Identity, Relu, Sigmoid, Softmax};
        let b = |n_in: usize| Mlp::builder(n_in).seed(MODEL_SEED);
        match self {
            Workload::Gemm => b(size)
                .layer_spec(LayerSpec::new(size, Identity).no_bias())
                .build(),
            Workload::Mnist => b(784)
                .layer(512, Relu)
                .layer(512, Relu)
                .layer(10, Softmax)
                .build(),
            Workload::Wide => b(2048)
                .layer(2048, Relu)
                .layer(2048, Relu)
                .layer(2048, Identity)
                .build(),
            Workload::Seed => b(3).layer(3, Sigmoid).layer(2, Identity).build(),
            Workload::Train => b(784)
                .layer(512, Relu)
                .layer(512, Relu)
                .layer(10, Identity)
                .build(),
            Workload::Roundtrip => b(1).layer(1, Identity).build(),
            Workload::Transfer => Err(Error::invalid("the transfer workload has no model")),
        }
    }

    /// The layer widths of [`model`](Self::model), input first, without building it (empty for
    /// `transfer`).
    pub fn widths(self, size: usize) -> Vec<usize> {
        match self {
            Workload::Gemm => vec![size, size],
            Workload::Mnist | Workload::Train => vec![784, 512, 512, 10],
            Workload::Wide => vec![2048; 4],
            Workload::Seed => vec![3, 3, 2],
            Workload::Roundtrip => vec![1, 1],
            Workload::Transfer => Vec::new(),
        }
    }

    /// The paths this workload runs on: all but `roundtrip` (GPU only) and `transfer` (its one
    /// round trip is reported as `gpu-e2e`).
    pub fn paths(self) -> &'static [BenchPath] {
        match self {
            Workload::Roundtrip => &[BenchPath::GpuE2e, BenchPath::GpuResident],
            Workload::Transfer => &[BenchPath::GpuE2e],
            _ => &BenchPath::ALL,
        }
    }
}

/// One workload at one size or batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    /// The workload.
    pub workload: Workload,
    /// M = N = K for `gemm`, MiB for `transfer`.
    pub size: Option<usize>,
    /// Rows per forward pass.
    pub batch: usize,
}

impl Case {
    /// The model of this case.
    pub fn model(&self) -> Result<Mlp> {
        self.workload.model(self.size.unwrap_or(0))
    }

    /// Bytes this case holds at its peak (see [`crate::memory`]): the model and up to two copies
    /// of its weights (the fast CPU path's and the GPU's), the input (drawn, then kept), and the
    /// forward pass (for `train`, also the gradients, the momentum and the reference's copy of
    /// the model, and every layer's activations kept for the backward); for `transfer`, the
    /// host and device buffers.
    pub fn memory_bytes(&self) -> u128 {
        if self.workload == Workload::Transfer {
            return (4 * self.size.unwrap_or(1) as u128) << 20;
        }
        let widths = self.workload.widths(self.size.unwrap_or(0));
        let params = crate::memory::params(&widths);
        let batch = self.batch as u128;
        let train = if self.workload == Workload::Train {
            16 * params + 16 * batch * widths.iter().sum::<usize>() as u128
        } else {
            0
        };
        12 * params
            + 8 * batch * widths[0] as u128
            + crate::memory::forward_bytes(&widths, params, self.batch, true)
            + train
    }

    /// Refuses a case whose weights are over the per-tensor limit, before anything is built.
    pub(crate) fn check_size(&self) -> Result<()> {
        let widths = self.workload.widths(self.size.unwrap_or(0));
        match widths.windows(2).find(|p| {
            p[0].checked_mul(p[1])
                .is_none_or(|n| n > Mlp::MAX_TENSOR_ELEMENTS)
        }) {
            Some(p) => Err(Error::invalid(format!(
                "{} {}: a [{}, {}] weight is over the limit of {} elements per tensor; use \
                 smaller --sizes",
                self.workload.name(),
                self.size.unwrap_or(self.batch),
                p[1],
                p[0],
                Mlp::MAX_TENSOR_ELEMENTS
            ))),
            None => Ok(()),
        }
    }
}
