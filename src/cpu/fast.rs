//! [`CpuMlp`]: a model on the fast CPU path. The model's steps (`model::steps`: each Linear
//! layer or row operation with the elementwise modules after it as its epilogue) run on packed
//! weights; the epilogue is applied to each block of rows while it is in cache.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use crate::activation::softmax_row_f32;
use crate::cpu::kernels::{PackedLinear, Threads};
use crate::error::{Error, Result};
use crate::matrix::{Matrix, check_input_slice, check_output_slice};
use crate::model::Mlp;
use crate::model::expr::Expr;
use crate::model::steps::{RowOp, StepOp, steps};

/// One step: its operation on packed weights, then its epilogue.
#[derive(Clone)]
enum Op {
    Linear(PackedLinear),
    Row(RowOp),
    Elementwise,
}

#[derive(Clone)]
struct Step {
    op: Op,
    epilogue: Expr,
    n_out: usize,
}

/// An [`Mlp`] packed for the fast CPU path: f32 arithmetic (each product an FMA chain), results
/// within a few f32 roundings of [`crate::cpu::forward`] and independent of the thread count
/// and the batch (a row's result is the same alone or in any batch).
///
/// `CpuMlp` is `Send + Sync`; concurrent calls share the pool (one call's job at a time runs on
/// all its threads, a concurrent call runs on its own thread).
#[derive(Clone)]
pub struct CpuMlp {
    steps: Vec<Step>,
    threads: Arc<Threads>,
    n_in: usize,
    n_out: usize,
}

impl std::fmt::Debug for CpuMlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuMlp")
            .field("in", &self.n_in)
            .field("out", &self.n_out)
            .field("steps", &self.steps.len())
            .field("threads", &self.threads.count())
            .finish()
    }
}

/// The process's default pool: one thread per core, started on first use.
fn default_threads() -> Arc<Threads> {
    static POOL: OnceLock<Arc<Threads>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(Threads::default())).clone()
}

thread_local! {
    /// Scratch for epilogues of several operations, per thread (epilogues run on the pool's
    /// threads).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl CpuMlp {
    /// Packs `model` for the fastest kernel this CPU has, on the process's default pool (one
    /// thread per core).
    pub fn new(model: &Mlp) -> Result<Self> {
        Ok(Self::pack(model, default_threads()))
    }

    /// [`new`](Self::new) on a pool of its own with `threads` threads (1: the calling thread
    /// only).
    pub fn with_threads(model: &Mlp, threads: usize) -> Result<Self> {
        if threads == 0 {
            return Err(Error::invalid("the CPU path needs at least 1 thread"));
        }
        let pool = if threads == default_threads().count() {
            default_threads()
        } else {
            Arc::new(Threads::new(threads))
        };
        Ok(Self::pack(model, pool))
    }

    fn pack(model: &Mlp, threads: Arc<Threads>) -> Self {
        let steps = steps(model)
            .into_iter()
            .map(|s| Step {
                op: match s.op {
                    StepOp::Linear(l) => Op::Linear(PackedLinear::new(l)),
                    StepOp::Row(op) => Op::Row(op),
                    StepOp::Elementwise => Op::Elementwise,
                },
                epilogue: s.epilogue,
                n_out: s.n_out,
            })
            .collect();
        CpuMlp {
            steps,
            threads,
            n_in: model.in_features(),
            n_out: model.out_features(),
        }
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.n_in
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.n_out
    }

    /// Threads a forward pass runs on.
    pub fn threads(&self) -> usize {
        self.threads.count()
    }

    /// Runs the forward pass on `input` (`[batch, in]`) and returns `[batch, out]`.
    pub fn forward(&self, input: &Matrix) -> Result<Matrix> {
        if input.cols() != self.n_in {
            return Err(Error::shape(format!(
                "input is [{}, {}] but the model expects [batch, {}]",
                input.rows(),
                input.cols(),
                self.n_in
            )));
        }
        let y = self.forward_slice(input.as_slice(), input.rows())?;
        Matrix::new(input.rows(), self.n_out, y)
    }

    /// [`forward`](Self::forward) on a plain slice of `batch` rows, returning `[batch, out]`.
    pub fn forward_slice(&self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        // Checked before the output is allocated: a wrong `batch` is an error, not an
        // allocation of `batch · out` values.
        check_input_slice(input.len(), batch, self.n_in)?;
        let mut out = vec![0.0; batch.saturating_mul(self.n_out)];
        self.forward_into(input, batch, &mut out)?;
        Ok(out)
    }

    /// [`forward_slice`](Self::forward_slice) into a caller's buffer of `batch · out` values.
    pub fn forward_into(&self, input: &[f32], batch: usize, out: &mut [f32]) -> Result<()> {
        check_input_slice(input.len(), batch, self.n_in)?;
        check_output_slice(out.len(), batch, self.n_out)?;
        // Steps alternate between two buffers; the last writes `out`.
        let mut cur: Vec<f32> = Vec::new();
        let mut next: Vec<f32> = Vec::new();
        let last = self.steps.len() - 1;
        for (i, step) in self.steps.iter().enumerate() {
            let src: &[f32] = if i == 0 { input } else { &cur };
            let dst: &mut Vec<f32> = &mut next;
            dst.clear();
            dst.resize(batch * step.n_out, 0.0);
            self.run(step, src, batch, dst);
            std::mem::swap(&mut cur, &mut next);
            if i == last {
                out.copy_from_slice(&cur);
            }
        }
        Ok(())
    }

    /// One step from `src` into `dst` (`batch · n_out` values).
    fn run(&self, step: &Step, src: &[f32], batch: usize, dst: &mut [f32]) {
        let n = step.n_out;
        let epilogue = |_: usize, rows: &mut [f32]| {
            SCRATCH.with(|s| step.epilogue.apply_rows_f32(rows, n, &mut s.borrow_mut()));
        };
        match &step.op {
            Op::Linear(l) => l.forward(src, batch, dst, &self.threads, &epilogue),
            Op::Row(op) => {
                dst.copy_from_slice(src);
                for row in dst.chunks_exact_mut(n.max(1)) {
                    row_op(*op, row);
                    epilogue(0, row);
                }
            }
            Op::Elementwise => {
                dst.copy_from_slice(src);
                epilogue(0, dst);
            }
        }
    }
}

/// A row operation in f32 (sums in f64, as the reductions are short next to the matrix products).
fn row_op(op: RowOp, row: &mut [f32]) {
    match op {
        RowOp::Softmax => softmax_row_f32(row),
        RowOp::LogSoftmax => {
            let m = row.iter().fold(f32::NEG_INFINITY, |m, &x| {
                if x.is_nan() || m.is_nan() {
                    f32::NAN
                } else {
                    m.max(x)
                }
            });
            let sum: f64 = row.iter().map(|&x| f64::from((x - m).exp())).sum();
            let log_sum = sum.ln() as f32;
            row.iter_mut().for_each(|x| *x = (*x - m) - log_sum);
        }
        RowOp::Normalize { eps } => {
            let n = row.len() as f64;
            let mean = row.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
            let var = row
                .iter()
                .map(|&x| (f64::from(x) - mean).powi(2))
                .sum::<f64>()
                / n;
            let inv = 1.0 / (var + f64::from(eps)).sqrt();
            // In f64: x − mean overflows f32 for rows near f32's limit (3e38 and −1e38).
            row.iter_mut()
                .for_each(|x| *x = ((f64::from(*x) - mean) * inv) as f32);
        }
    }
}
