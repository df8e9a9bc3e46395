//! What a benchmark run measures and how: [`BenchOptions`].

use std::io::IsTerminal as _;
use std::time::Duration;

use crate::bench::check::Tolerance;
use crate::bench::report::BenchPath;
use crate::bench::workload::{Case, Workload};
use crate::error::{Error, Result};

/// Default least warm-up time per path. A hardware GPU idles at a low clock: on an H100, after
/// CPU-only work, three warm-up runs did not bring the clock back (docs/BENCHMARKING.md,
/// "Warm-up").
// The default of an option, so it lives with the options (timing reads the options).
pub const WARMUP_TIME: Duration = Duration::from_millis(300);

/// How the progress of a run is shown on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Progress {
    /// Nothing.
    #[default]
    Off,
    /// One line per finished row.
    Lines,
    /// A progress bar (use on a terminal), with one line per finished row above it.
    Bar,
}

impl Progress {
    /// A bar when stderr is a terminal, one line per row otherwise.
    pub fn auto() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::Bar
        } else {
            Progress::Lines
        }
    }
}

/// What to run and how.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Workloads to run; empty: the quick set (all but `wide`), or all with `full`.
    pub workloads: Vec<Workload>,
    /// Batch sizes for `mnist`, `wide` and `seed` (`None`: each workload's own).
    pub batches: Option<Vec<usize>>,
    /// M = N = K for `gemm` (`None`: 256 and 512, or 256 to 2048 with `full`).
    pub sizes: Option<Vec<usize>>,
    /// Paths to run (empty: all).
    pub paths: Vec<BenchPath>,
    /// The full set of workloads and sizes instead of the quick subset.
    pub full: bool,
    /// Untimed runs before timing, per path.
    pub warmup: usize,
    /// Warm-up goes on (past `warmup` runs, when `warmup > 0`) until this much time has passed.
    pub warmup_time: Duration,
    /// Timed runs per path.
    pub runs: usize,
    /// Fewest timed runs of a path that exceeds the budget.
    pub min_runs: usize,
    /// Time per path after which timing stops once `min_runs` are done (`None`: no limit).
    /// Warm-up stops after half of it (at least one warm-up run is done when `warmup > 0`).
    pub budget: Option<Duration>,
    /// GPU adapter name substring (`None`: `WGPU_ADAPTER_NAME`, else the best adapter).
    pub adapter: Option<String>,
    /// Threads of the `cpu-fast` path (the process's cores by default).
    pub threads: usize,
    /// How the GPU paths store weights.
    pub weights: crate::gpu::WeightFormat,
    /// Which kernel the GPU paths run for each Linear layer.
    pub kernel: crate::gpu::LinearKernel,
    /// Let the GPU kernels use subgroup operations where the adapter has them
    /// ([`GpuOptions::subgroups`](crate::gpu::GpuOptions::subgroups)); `false` measures the kernels for devices without them.
    pub subgroups: bool,
    /// The correctness tolerance.
    pub tolerance: Tolerance,
    /// Progress display on stderr.
    pub progress: Progress,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            workloads: Vec::new(),
            batches: None,
            sizes: None,
            paths: Vec::new(),
            full: false,
            warmup: 3,
            warmup_time: WARMUP_TIME,
            runs: 10,
            min_runs: 3,
            budget: Some(Duration::from_secs(5)),
            adapter: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            weights: crate::gpu::WeightFormat::F32,
            kernel: crate::gpu::LinearKernel::Auto,
            subgroups: true,
            tolerance: Tolerance::default(),
            progress: Progress::Off,
        }
    }
}

impl BenchOptions {
    /// The cases to run, in order, after checking the options.
    pub fn cases(&self) -> Result<Vec<Case>> {
        if self.runs == 0 {
            return Err(Error::invalid("--runs must be at least 1"));
        }
        for (what, list) in [("--batch", &self.batches), ("--sizes", &self.sizes)] {
            match list {
                Some(l) if l.is_empty() || l.contains(&0) => {
                    return Err(Error::invalid(format!(
                        "{what}: give one or more sizes, each at least 1"
                    )));
                }
                _ => {}
            }
        }
        let workloads: Vec<Workload> = if self.workloads.is_empty() {
            Workload::ALL
                .into_iter()
                .filter(|w| self.full || w.in_quick())
                .collect()
        } else {
            let mut w = self.workloads.clone();
            w.dedup();
            w
        };
        let mut cases = Vec::new();
        for w in workloads {
            let points: Vec<usize> = match w {
                Workload::Gemm | Workload::Transfer => self.sizes.clone(),
                Workload::Roundtrip => None,
                _ => self.batches.clone(),
            }
            .unwrap_or_else(|| w.points(self.full).to_vec());
            for p in points {
                cases.push(Case {
                    workload: w,
                    size: w.sized().then_some(p),
                    batch: if w == Workload::Transfer { 1 } else { p },
                });
            }
        }
        Ok(cases)
    }

    pub(crate) fn mode(&self) -> &'static str {
        let custom = !self.workloads.is_empty()
            || self.batches.is_some()
            || self.sizes.is_some()
            || !self.paths.is_empty();
        match (custom, self.full) {
            (true, _) => "custom",
            (false, true) => "full",
            (false, false) => "quick",
        }
    }

    pub(crate) fn wants(&self, path: BenchPath) -> bool {
        self.paths.is_empty() || self.paths.contains(&path)
    }
}
