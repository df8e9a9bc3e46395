//! The benchmark harness behind `wgpu-mlp bench`: the workloads of `workloads.md` on the CPU
//! reference, the fast CPU baseline ([`FastCpuMlp`]) and the GPU (end-to-end and resident), each
//! result checked against the f64 CPU reference before it is timed.
//!
//! ```no_run
//! use wgpu_mlp::bench::{self, BenchOptions, Workload};
//!
//! let opts = BenchOptions { workloads: vec![Workload::Mnist], batches: Some(vec![64]), ..BenchOptions::default() };
//! let report = bench::run(&opts)?;
//! print!("{}", report.to_markdown());
//! # Ok::<(), wgpu_mlp::Error>(())
//! ```
//!
//! Timing: `warmup` untimed runs, continued until `warmup_time` has passed (a hardware GPU idles
//! at a low clock and needs some continuous work to reach its boost clock), then up to `runs`
//! timed runs with the host clock (each GPU call returns only once the queue has drained). A path whose timed runs pass the time budget stops
//! after `min_runs`; the `runs` column always says how many were timed.

mod check;
mod fast_cpu;
mod plot;
mod report;
mod stats;

use std::io::IsTerminal as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use check::{CHECK_ALL_ROWS_UP_TO, CheckInfo, Reference, SUBSET_ROWS, Tolerance, check_rows};
pub use fast_cpu::FastCpuMlp;
pub use plot::svg;
pub use report::{BenchPath, Record, Report, Settings, sig};
pub use stats::{Stats, linear_flops, model_flops};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuMlp, GpuOptions};
use crate::matrix::Matrix;
use crate::model::{LayerSpec, Mlp};
use crate::rng::Generator;

/// Seed of every benchmark model's weights.
pub const MODEL_SEED: u64 = 0;
/// Seed of every benchmark input (uniform in [-1, 1), never all zeros).
pub const INPUT_SEED: u64 = 1;

/// A workload of `workloads.md`.
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
    /// The adapter's floor, measured as the forward pass of a 1→1 identity model on one row
    /// (upload 4 bytes, one tiny dispatch, read 4 bytes back). GPU paths only.
    Roundtrip,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 5] = [
        Workload::Gemm,
        Workload::Mnist,
        Workload::Wide,
        Workload::Seed,
        Workload::Roundtrip,
    ];

    /// The id used in tables, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Gemm => "gemm",
            Workload::Mnist => "mnist",
            Workload::Wide => "wide",
            Workload::Seed => "seed",
            Workload::Roundtrip => "roundtrip",
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
                    s.trim(),
                    Workload::ALL.map(Workload::name).join(", ")
                ))
            })
    }

    /// Part of the quick (default) run?
    pub fn in_quick(self) -> bool {
        self != Workload::Wide
    }

    /// GEMM sizes (for `gemm`) or batch sizes (the others) of a quick or full run.
    pub fn points(self, full: bool) -> &'static [usize] {
        match (self, full) {
            (Workload::Gemm, false) => &[256, 512],
            (Workload::Gemm, true) => &[256, 512, 1024, 2048],
            (Workload::Mnist, _) => &[1, 64, 1024],
            (Workload::Wide, _) => &[1024],
            (Workload::Seed | Workload::Roundtrip, _) => &[1],
        }
    }

    /// The model: `size` is M = N = K for `gemm` and ignored otherwise. Weights are PyTorch's
    /// default init with [`MODEL_SEED`].
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
            Workload::Roundtrip => b(1).layer(1, Identity).build(),
        }
    }

    /// The layer widths of [`model`](Self::model), input first, without building it.
    pub fn widths(self, size: usize) -> Vec<usize> {
        match self {
            Workload::Gemm => vec![size, size],
            Workload::Mnist => vec![784, 512, 512, 10],
            Workload::Wide => vec![2048; 4],
            Workload::Seed => vec![3, 3, 2],
            Workload::Roundtrip => vec![1, 1],
        }
    }

    /// The paths this workload runs on: all but `roundtrip`, which is GPU only.
    pub fn paths(self) -> &'static [BenchPath] {
        match self {
            Workload::Roundtrip => &[BenchPath::GpuE2e, BenchPath::GpuResident],
            _ => &BenchPath::ALL,
        }
    }
}

/// One workload at one size or batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    /// The workload.
    pub workload: Workload,
    /// M = N = K for `gemm`.
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
    /// of its weights (the fast CPU baseline's and the GPU's), the input (drawn, then kept), and
    /// the forward pass.
    pub fn memory_bytes(&self) -> u128 {
        let widths = self.workload.widths(self.size.unwrap_or(0));
        let params = crate::memory::params(&widths);
        let batch = self.batch as u128;
        12 * params
            + 8 * batch * widths[0] as u128
            + crate::memory::forward_bytes(&widths, params, self.batch, true)
    }
}

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
    /// How the GPU paths store weights.
    pub weights: crate::gpu::WeightFormat,
    /// Which kernel the GPU paths run for each Linear layer.
    pub kernel: crate::gpu::LinearKernel,
    /// Let the GPU kernels use subgroup operations where the adapter has them
    /// ([`GpuOptions::subgroups`]); `false` measures the kernels for devices without them.
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
                Workload::Gemm => self.sizes.clone(),
                Workload::Roundtrip => None,
                _ => self.batches.clone(),
            }
            .unwrap_or_else(|| w.points(self.full).to_vec());
            for p in points {
                cases.push(match w {
                    Workload::Gemm => Case {
                        workload: w,
                        size: Some(p),
                        batch: p,
                    },
                    _ => Case {
                        workload: w,
                        size: None,
                        batch: p,
                    },
                });
            }
        }
        Ok(cases)
    }

    fn mode(&self) -> &'static str {
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

    fn wants(&self, path: BenchPath) -> bool {
        self.paths.is_empty() || self.paths.contains(&path)
    }
}

/// A random input `[batch, cols]`, uniform in [-1, 1), from [`INPUT_SEED`].
pub fn random_input(batch: usize, cols: usize) -> Result<Matrix> {
    let n = batch
        .checked_mul(cols)
        .ok_or_else(|| Error::invalid(format!("a [{batch}, {cols}] input overflows usize")))?;
    let mut rng = Generator::new(INPUT_SEED);
    let data = rng.rand(n).into_iter().map(|v| 2.0 * v - 1.0).collect();
    Matrix::new(batch, cols, data)
}

/// Default least warm-up time per path. A hardware GPU idles at a low clock: on an H100, after
/// CPU-only work, three warm-up runs did not bring the clock back (docs/BENCHMARKING.md,
/// "Warm-up").
pub const WARMUP_TIME: Duration = Duration::from_millis(300);

/// Runs `f` `warmup` times untimed (and on until `warmup_time` has passed), then times it up to `runs` times (see [`BenchOptions`] for
/// the budget). The first error ends it.
pub fn time_runs(opts: &BenchOptions, mut f: impl FnMut() -> Result<()>) -> Result<Vec<Duration>> {
    let start = Instant::now();
    let mut done = 0;
    while done < opts.warmup || (opts.warmup > 0 && start.elapsed() < opts.warmup_time) {
        f()?;
        done += 1;
        if opts.budget.is_some_and(|b| start.elapsed() >= b / 2) {
            break;
        }
    }
    let start = Instant::now();
    let min_runs = opts.min_runs.clamp(1, opts.runs);
    // `runs` may be huge (the budget ends the loop): reserve for a realistic count only.
    let mut samples = Vec::with_capacity(opts.runs.min(1024));
    while samples.len() < opts.runs {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
        if samples.len() >= min_runs && opts.budget.is_some_and(|b| start.elapsed() >= b) {
            break;
        }
    }
    Ok(samples)
}

/// The gate and the clock for one path: `check` produces an output that must match `reference`
/// (skipped when `None`: the reference path itself); only then is `timed` run and timed. A
/// mismatch or an error becomes the record's `error`, and no figure is reported.
pub fn measure(
    opts: &BenchOptions,
    template: &Record,
    reference: Option<(&Reference, &mut dyn FnMut() -> Result<Matrix>)>,
    timed: &mut dyn FnMut() -> Result<()>,
) -> Record {
    let mut rec = template.clone();
    rec.runs_requested = opts.runs;
    if let Some((reference, check)) = reference {
        let checked = check()
            .map_err(|e| e.to_string())
            .and_then(|out| reference.check(&out, opts.tolerance));
        match checked {
            Ok(info) => {
                rec.checked_rows = Some(info.rows);
                rec.max_abs_err = Some(info.max_abs_err);
            }
            Err(e) => {
                rec.error = Some(e);
                return rec;
            }
        }
    }
    match time_runs(opts, timed) {
        Ok(samples) => rec.stats = Stats::from_durations(&samples),
        Err(e) => rec.error = Some(e.to_string()),
    }
    rec
}

/// The CPU model from `/proc/cpuinfo` (`unknown` elsewhere).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The 1-minute load average from `/proc/loadavg` (`None` elsewhere).
pub fn load_avg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the Unix epoch.
pub fn utc_date(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// Runs the benchmark and returns every figure. Errors only for invalid options: a missing adapter
/// or a wrong GPU result is reported in the rows concerned.
pub fn run(opts: &BenchOptions) -> Result<Report> {
    let cases = opts.cases()?;
    // Every case is checked before the first one runs: its layers within the per-tensor limit,
    // and its memory within what the machine has.
    for case in &cases {
        let widths = case.workload.widths(case.size.unwrap_or(0));
        if let Some(p) = widths.windows(2).find(|p| {
            p[0].checked_mul(p[1])
                .is_none_or(|n| n > Mlp::MAX_TENSOR_ELEMENTS)
        }) {
            return Err(Error::invalid(format!(
                "{} {}: a [{}, {}] weight is over the limit of {} elements per tensor; use \
                 smaller --sizes",
                case.workload.name(),
                case.size.unwrap_or(case.batch),
                p[1],
                p[0],
                Mlp::MAX_TENSOR_ELEMENTS
            )));
        }
    }
    if let Some(case) = cases.iter().max_by_key(|c| c.memory_bytes()) {
        crate::memory::check(
            case.memory_bytes(),
            &format!(
                "bench: the largest case ({} with batch {})",
                case.workload.name(),
                case.batch
            ),
            "use smaller --batch or --sizes",
        )?;
    }
    let load_before = load_avg();
    let cpu = cpu_model();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());

    let needs_gpu = cases.iter().any(|c| {
        c.workload
            .paths()
            .iter()
            .any(|p| p.is_gpu() && opts.wants(*p))
    });
    let gpu = if needs_gpu {
        Some(GpuContext::new(&GpuOptions {
            adapter_name: opts.adapter.clone(),
            subgroups: opts.subgroups,
            ..GpuOptions::default()
        }))
    } else {
        None
    };
    let (adapter, adapter_error) = match &gpu {
        Some(Ok(ctx)) => (Some(ctx.adapter()), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };

    let steps: usize = cases
        .iter()
        .map(|c| {
            c.workload
                .paths()
                .iter()
                .filter(|p| opts.wants(**p))
                .count()
        })
        .sum();
    let bar = match opts.progress {
        Progress::Bar => {
            let bar = indicatif::ProgressBar::new(steps as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} rows, {elapsed} elapsed  {msg}",
            ) {
                bar.set_style(style);
            }
            Some(bar)
        }
        _ => None,
    };
    let say = |line: String| match (&bar, opts.progress) {
        (Some(b), _) => b.println(line),
        (None, Progress::Lines) => eprintln!("{line}"),
        _ => {}
    };

    let mut records = Vec::new();
    for case in &cases {
        let paths: Vec<BenchPath> = case
            .workload
            .paths()
            .iter()
            .copied()
            .filter(|p| opts.wants(*p))
            .collect();
        if paths.is_empty() {
            continue;
        }
        let model = case.model()?;
        let template = |path: BenchPath| {
            let (adapter, backend) = match (&adapter, path.is_gpu()) {
                (Some(a), true) => (a.name.clone(), a.backend.clone()),
                (None, true) => ("none".to_string(), "none".to_string()),
                (_, false) => (cpu.clone(), "cpu".to_string()),
            };
            Record {
                workload: case.workload.name().to_string(),
                size: case.size,
                batch: case.batch,
                path,
                flops: model_flops(&model, case.batch),
                stats: None,
                error: None,
                checked_rows: None,
                max_abs_err: None,
                adapter,
                backend,
                runs_requested: opts.runs,
                kernels: None,
            }
        };
        let label = format!(
            "{} {}",
            case.workload.name(),
            template(BenchPath::CpuFast).shape()
        );
        if let Some(b) = &bar {
            b.set_message(format!("{label}: checking against the CPU reference"));
        }
        let input = random_input(case.batch, model.in_features())?;
        let reference = Reference::new(&model, &input)?;

        // GPU model, shared by both GPU paths of the case.
        let gpu_model = match &gpu {
            Some(Ok(ctx)) if paths.iter().any(|p| p.is_gpu()) => {
                let options = crate::gpu::GpuMlpOptions {
                    weights: opts.weights,
                    kernel: opts.kernel,
                    ..Default::default()
                };
                Some(GpuMlp::with_options(ctx, &model, options).map_err(|e| e.to_string()))
            }
            Some(Err(e)) => Some(Err(e.to_string())),
            _ => None,
        };
        for path in paths {
            if let Some(b) = &bar {
                b.set_message(format!("{label} {}", path.name()));
            }
            let rec = match path {
                BenchPath::CpuReference => measure(opts, &template(path), None, &mut || {
                    crate::cpu::forward(&model, &input).map(drop)
                }),
                BenchPath::CpuFast => {
                    let fast = FastCpuMlp::new(&model);
                    measure(
                        opts,
                        &template(path),
                        Some((&reference, &mut || fast.forward(&input))),
                        &mut || fast.forward(&input).map(drop),
                    )
                }
                BenchPath::GpuE2e | BenchPath::GpuResident => match &gpu_model {
                    Some(Ok(g)) if path == BenchPath::GpuE2e => measure(
                        opts,
                        &template(path),
                        Some((&reference, &mut || g.forward(&input))),
                        &mut || g.forward(&input).map(drop),
                    ),
                    Some(Ok(g)) => measure(
                        opts,
                        &template(path),
                        Some((&reference, &mut || {
                            g.prepare(&input)?;
                            g.run_prepared()?;
                            g.read_prepared()
                        })),
                        &mut || g.run_prepared(),
                    ),
                    Some(Err(e)) => Record {
                        error: Some(e.clone()),
                        ..template(path)
                    },
                    None => Record {
                        error: Some("no GPU context".to_string()),
                        ..template(path)
                    },
                },
            };
            let mut rec = rec;
            if let (Some(Ok(g)), true) = (&gpu_model, path.is_gpu()) {
                let names: Vec<String> = g
                    .linear_kernels(case.batch)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                rec.kernels = Some(names.join(", "));
            }
            say(row_line(&rec));
            records.push(rec);
            if let Some(b) = &bar {
                b.inc(1);
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(Report {
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        date: utc_date(now),
        cpu,
        threads,
        load_avg: load_before.zip(load_avg()),
        adapter,
        adapter_error,
        settings: Settings {
            mode: {
                let mut mode = opts.mode().to_string();
                if opts.weights == crate::gpu::WeightFormat::F16 {
                    mode.push_str(", f16 weights on the GPU");
                }
                if opts.kernel != crate::gpu::LinearKernel::Auto {
                    mode.push_str(&format!(", {} kernel", opts.kernel));
                }
                // On software adapters the subgroup path is much faster (docs/KERNELS.md): say
                // which one ran.
                if let Some(Ok(ctx)) = &gpu {
                    mode.push_str(if ctx.uses_subgroups() {
                        ", GPU kernels with subgroups"
                    } else {
                        ", GPU kernels without subgroups"
                    });
                }
                mode
            },
            warmup: opts.warmup,
            warmup_s: opts.warmup_time.as_secs_f64(),
            runs: opts.runs,
            min_runs: opts.min_runs.clamp(1, opts.runs),
            budget_s: opts.budget.map(|b| b.as_secs_f64()),
        },
        tolerance: opts.tolerance,
        records,
    })
}

/// One finished row as a progress line.
fn row_line(r: &Record) -> String {
    let what = format!("{} {} {}", r.workload, r.shape(), r.path.name());
    match (&r.stats, &r.error) {
        (Some(s), _) => format!(
            "bench: {what}: {} ms median ({} runs), {} GFLOP/s",
            sig(s.median_ms),
            s.runs,
            sig(s.gflops(r.flops))
        ),
        (None, e) => format!(
            "bench: {what}: error: {}",
            e.as_deref().unwrap_or("no result")
        ),
    }
}
