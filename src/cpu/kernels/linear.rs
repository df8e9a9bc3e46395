//! [`PackedLinear`]: a Linear layer packed once, and the plan of its forward pass: whether to use
//! the pool, and whether threads split the output columns or the rows.

use super::gemm::{Lhs, block};
use super::kernel::{Kernel, Kernels};
use super::pack::PackedWeight;
use super::pool::Threads;
use crate::Linear;

/// Rows of a row block: the unit of work of a thread when rows are split, and the granule on
/// which the epilogue runs. Its `x` (≤ 512 KiB at in = 2048) and one panel group stay in L2.
const ROW_BLOCK: usize = 64;

/// Up to this many rows, threads split the output columns (each streams only its share of the
/// weight, which stays in its L2 across calls) and the epilogue runs once all are done; above,
/// threads take row blocks and run the epilogue on each as it is finished.
const COL_SPLIT_MAX_ROWS: usize = 64;

/// Multiply-adds below which a call stays on the calling thread: waking the workers and
/// joining costs about a microsecond, the time of roughly this much work.
const PAR_MIN_MACS: usize = 1 << 15;

/// Tasks per thread when columns are split, so that a thread that falls behind (a noisy
/// machine) can be helped by the others.
const TASKS_PER_THREAD: usize = 4;

/// A Linear layer's weight (`[out, in]` row-major as in PyTorch, `y = x·Wᵀ + b`) packed once at
/// load for the CPU kernels.
///
/// ```
/// use wgpu_mlp::Linear;
/// use wgpu_mlp::cpu::{PackedLinear, Threads};
///
/// // y = x·Wᵀ + b with W = [[1, 2], [3, 4], [5, 6]] (3 outputs, 2 inputs).
/// let linear = Linear::new(2, 3, vec![1., 2., 3., 4., 5., 6.], Some(vec![0.5, 0., -1.]))?;
/// let layer = PackedLinear::new(&linear);
/// let x = [1.0, 1.0, 2.0, 0.0]; // two rows
/// let mut y = [0.0; 6];
/// layer.forward(&x, 2, &mut y, &Threads::single(), &|_, rows| {
///     rows.iter_mut().for_each(|v| *v = v.max(0.0)) // ReLU
/// });
/// assert_eq!(y, [3.5, 7.0, 10.0, 2.5, 6.0, 9.0]);
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone)]
pub struct PackedLinear {
    w: PackedWeight,
    ks: &'static Kernels,
}

impl PackedLinear {
    /// Packs `linear` for the fastest kernel this CPU supports ([`Kernel::best`]).
    pub fn new(linear: &Linear) -> Self {
        Self::with_kernel(linear, Kernel::best()).expect("the best kernel is supported")
    }

    /// Packs `linear` for `kernel`; `None` if this CPU does not support it.
    pub fn with_kernel(linear: &Linear, kernel: Kernel) -> Option<Self> {
        let ks = kernel.table()?;
        let w = PackedWeight::new(
            linear.in_features(),
            linear.out_features(),
            linear.weight(),
            linear.bias(),
        );
        Some(PackedLinear { w, ks })
    }

    /// `B` (`[k, n]` row-major) packed for `kernel` (on `threads`) as a layer `in = k`, `out = n`
    /// with no bias,
    /// so that [`forward`](Self::forward) computes `a·B` (a copy instead of the transposition
    /// `with_kernel` of a Linear holding `Bᵀ` would need); `None` if this CPU lacks `kernel`.
    pub(crate) fn from_kn(
        k: usize,
        n: usize,
        b: &[f32],
        kernel: Kernel,
        threads: &Threads,
    ) -> Option<Self> {
        let ks = kernel.table()?;
        Some(PackedLinear {
            w: PackedWeight::from_kn(k, n, b, threads),
            ks,
        })
    }

    /// `Bᵀ` (`[n, k]` row-major, a Linear weight's layout) packed for `kernel` (on `threads`)
    /// with no bias,
    /// without building a [`Linear`] around it; `None` if this CPU lacks `kernel`.
    pub(crate) fn from_nk(
        k: usize,
        n: usize,
        bt: &[f32],
        kernel: Kernel,
        threads: &Threads,
    ) -> Option<Self> {
        let ks = kernel.table()?;
        Some(PackedLinear {
            w: PackedWeight::new_on(k, n, bt, None, threads),
            ks,
        })
    }

    /// The kernel this layer runs.
    pub fn kernel(&self) -> Kernel {
        self.ks.kernel
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.w.k()
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.w.n()
    }

    /// `y[rows, out] = x[rows, in]·Wᵀ + b` in f32 (FMA where the CPU has it), row-major, no
    /// padding, using up to `threads.count()` threads: the weight is streamed in panel groups,
    /// each shared by a few rows at a time held in registers; threads split the columns for
    /// small batches (GEMV-like) and row blocks for large ones (GEMM-like).
    ///
    /// `epilogue(first_row, block)` is called exactly once for every row, on blocks of complete
    /// output rows (`block` is rows `first_row..` of `y`, a whole number of rows of `out`
    /// values), possibly from worker threads and in any order, while the block is hot in cache:
    /// the place for activations and norms.
    ///
    /// The result does not depend on the thread count or the batch size: each output is one f32
    /// FMA chain over `in` in order, then `+ b`.
    ///
    /// # Panics
    /// If `x.len() != rows·in` or `y.len() != rows·out`; a panic of `epilogue` is passed on.
    pub fn forward(
        &self,
        x: &[f32],
        rows: usize,
        y: &mut [f32],
        threads: &Threads,
        epilogue: &(dyn Fn(usize, &mut [f32]) + Sync),
    ) {
        let k = self.w.k();
        assert_eq!(x.len(), rows * k, "x is not [{rows}, {k}]");
        self.product(Lhs::rows(x, k), rows, y, threads, epilogue);
    }

    /// [`forward`](Self::forward) with any left operand: `y[rows, out] = a·Wᵀ + b` where
    /// `a[r][p]` is read where [`Lhs`] says (a row-major `x`, or a transpose read in place).
    ///
    /// # Panics
    /// If `a` does not hold `rows` rows of `in` values or `y.len() != rows·out`.
    pub(crate) fn product(
        &self,
        x: Lhs<'_>,
        rows: usize,
        y: &mut [f32],
        threads: &Threads,
        epilogue: &(dyn Fn(usize, &mut [f32]) + Sync),
    ) {
        let (k, n) = (self.w.k(), self.w.n());
        assert!(
            x.holds(rows, k),
            "the left operand does not hold [{rows}, {k}]"
        );
        assert_eq!(y.len(), rows * n, "y is not [{rows}, {n}]");
        if rows == 0 {
            return;
        }
        let t = if rows.saturating_mul(k).saturating_mul(n) >= PAR_MIN_MACS {
            threads.count()
        } else {
            1
        };
        let single = Threads::single();
        let threads = if t > 1 { threads } else { &single };
        let out = OutPtr(y.as_mut_ptr());
        if t > 1 && rows <= COL_SPLIT_MAX_ROWS {
            self.forward_cols(x, rows, out, t, threads);
            epilogue(0, y);
        } else {
            self.forward_rows(x, rows, out, t, threads, epilogue);
        }
    }

    /// Threads take panel groups (of the width the row count's tiles use), all rows each.
    fn forward_cols(&self, x: Lhs<'_>, rows: usize, out: OutPtr, t: usize, threads: &Threads) {
        let ks = self.ks;
        let chunk = rows.div_ceil(rows.div_ceil(ks.rows));
        let chunks = Chunks::new(self.w.panels(), ks.np[chunk], t);
        threads.run(chunks.count, &|task| {
            // SAFETY: `out` is y (rows·n floats, checked in `forward`); tasks get disjoint panel
            // ranges, and y is not otherwise touched until `run` returns.
            unsafe { block(ks, &self.w, x, rows, out.get(), chunks.get(task)) };
        });
    }

    /// Threads take row blocks (a multiple of t of them, at most ROW_BLOCK rows, whole tiles),
    /// all panels each, and run the epilogue on each block as soon as it is done.
    fn forward_rows(
        &self,
        x: Lhs<'_>,
        rows: usize,
        out: OutPtr,
        t: usize,
        threads: &Threads,
        epilogue: &(dyn Fn(usize, &mut [f32]) + Sync),
    ) {
        let (ks, n) = (self.ks, self.w.n());
        let tiles = rows.div_ceil(ks.rows);
        let blocks = rows.div_ceil(ROW_BLOCK).next_multiple_of(t).min(tiles);
        let all = (0, self.w.panels());
        threads.run(blocks, &|b| {
            let r0 = (b * tiles / blocks * ks.rows).min(rows);
            let r1 = ((b + 1) * tiles / blocks * ks.rows).min(rows);
            // SAFETY: tasks get disjoint row ranges of y (rows·n floats, checked in `forward`),
            // which is not otherwise touched until `run` returns.
            unsafe {
                let yb = out.get().add(r0 * n);
                block(ks, &self.w, x.skip_rows(r0), r1 - r0, yb, all);
                epilogue(r0, std::slice::from_raw_parts_mut(yb, (r1 - r0) * n));
            }
        });
    }
}

/// `panels` cut into `count` ranges of whole groups of `group` panels: [`TASKS_PER_THREAD`] per
/// thread when there are enough groups.
struct Chunks {
    panels: usize,
    group: usize,
    groups: usize,
    count: usize,
}

impl Chunks {
    fn new(panels: usize, group: usize, threads: usize) -> Self {
        let groups = panels.div_ceil(group);
        let count = if threads <= 1 {
            1
        } else {
            groups.min(threads * TASKS_PER_THREAD)
        };
        Chunks {
            panels,
            group,
            groups,
            count,
        }
    }

    /// Panel range of chunk `c`.
    fn get(&self, c: usize) -> (usize, usize) {
        let g0 = c * self.groups / self.count;
        let g1 = (c + 1) * self.groups / self.count;
        (
            (g0 * self.group).min(self.panels),
            (g1 * self.group).min(self.panels),
        )
    }
}

/// `y`'s base pointer, shared with the tasks that write disjoint parts of it.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

impl OutPtr {
    // A method, not field access, so closures capture the whole (Sync) wrapper.
    fn get(self) -> *mut f32 {
        self.0
    }
}

// SAFETY: the pointer is only dereferenced by tasks on disjoint parts of y (see the callers).
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl std::fmt::Debug for PackedLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedLinear")
            .field("in_features", &self.in_features())
            .field("out_features", &self.out_features())
            .field("kernel", &self.kernel())
            .finish()
    }
}
