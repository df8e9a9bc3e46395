//! The benchmark harness behind `wgpu-mlp bench`: the workloads of `workloads.md` on the CPU
//! reference, the fast CPU path ([`CpuMlp`]) and the GPU (end-to-end and
//! resident), each result checked against the f64 CPU reference before it is timed, plus the
//! adapter's raw transfer floor.
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
//! timed runs with the host clock (each GPU call returns only once the queue has drained). A path
//! whose timed runs pass the time budget stops after `min_runs`; the `runs` column always says
//! how many were timed. How to measure honestly, and the current figures: docs/BENCHMARKING.md.

mod check;
mod machine;
mod options;
mod plot;
mod report;
mod stats;
mod timing;
mod train;
mod transfer;
mod workload;

use std::time::{SystemTime, UNIX_EPOCH};

pub use check::{CHECK_ALL_ROWS_UP_TO, CheckInfo, Reference, SUBSET_ROWS, Tolerance, check_rows};
pub use machine::{cpu_model, load_avg, utc_date};
pub use options::{BenchOptions, Progress, WARMUP_TIME};
pub use plot::svg;
pub use report::{BenchPath, Record, Report, Settings, sig};
pub use stats::{Stats, linear_flops, model_flops};
pub use timing::{INPUT_SEED, measure, random_input, time_runs};
pub use train::{TARGET_SEED, TRAIN_LOSS, random_classes, step_flops, train_optimizer};
pub use workload::{Case, MODEL_SEED, Workload};

use crate::cpu::CpuMlp;
use crate::error::Result;
use crate::gpu::{GpuContext, GpuMlp, GpuMlpOptions, GpuOptions};
use crate::matrix::Matrix;
use crate::model::Mlp;

/// Runs the benchmark and returns every figure. Errors only for invalid options: a missing adapter
/// or a wrong GPU result is reported in the rows concerned.
pub fn run(opts: &BenchOptions) -> Result<Report> {
    let cases = opts.cases()?;
    // Every case is checked before the first one runs: its layers within the per-tensor limit,
    // and its memory within what the machine has.
    for case in &cases {
        case.check_size()?;
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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let needs_gpu = cases.iter().any(|c| {
        c.workload
            .paths()
            .iter()
            .any(|p| p.is_gpu() && opts.wants(*p))
    });
    let gpu = needs_gpu.then(|| {
        GpuContext::new(&GpuOptions {
            adapter_name: opts.adapter.clone(),
            subgroups: opts.subgroups,
            ..GpuOptions::default()
        })
    });
    // A GPU asked for (by --adapter, WGPU_ADAPTER_NAME, WGPU_BACKEND or a GPU path in --paths)
    // that cannot be had is an error before any work; otherwise its rows say why they are empty.
    let gpu = match gpu {
        Some(Err(e)) => {
            let set = |v: &str| std::env::var(v).is_ok_and(|s| !s.is_empty());
            let asked = opts.adapter.is_some()
                || set("WGPU_ADAPTER_NAME")
                || set("WGPU_BACKEND")
                || opts.paths.iter().any(|p| p.is_gpu());
            if asked {
                return Err(e);
            }
            Some(Err(e.to_string()))
        }
        Some(Ok(ctx)) => Some(Ok(ctx)),
        None => None,
    };
    let progress = Bar::new(opts, &cases);
    let mut records = Vec::new();
    for case in &cases {
        records.extend(run_case(opts, case, gpu.as_ref(), &progress)?);
    }
    progress.finish();
    let gpu_ok = gpu.as_ref().and_then(|g| g.as_ref().ok());
    Ok(Report {
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        date: utc_date(now),
        cpu: cpu_model(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_fast: cpu_fast_line(opts.threads),
        load_avg: load_before.zip(load_avg()),
        adapter: gpu_ok.map(GpuContext::adapter),
        adapter_error: gpu.as_ref().and_then(|g| g.as_ref().err().cloned()),
        settings: Settings {
            mode: mode_line(opts, gpu_ok),
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

/// Every path of one case: the correctness gate, then the clock.
fn run_case(
    opts: &BenchOptions,
    case: &Case,
    gpu: Option<&std::result::Result<GpuContext, String>>,
    progress: &Bar,
) -> Result<Vec<Record>> {
    let paths: Vec<BenchPath> = case
        .workload
        .paths()
        .iter()
        .copied()
        .filter(|p| opts.wants(*p))
        .collect();
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let adapter = gpu.and_then(|g| g.as_ref().ok()).map(GpuContext::adapter);
    let template = |path: BenchPath, flops: u64| {
        let (name, backend) = match (&adapter, path.is_gpu()) {
            (Some(a), true) => (a.name.clone(), a.backend.clone()),
            (None, true) => ("none".to_string(), "none".to_string()),
            (_, false) => (cpu_model(), "cpu".to_string()),
        };
        Record::new(case, path, flops, name, backend, opts.runs)
    };
    if case.workload == Workload::Transfer {
        let rec = template(BenchPath::GpuE2e, 0);
        let mib = case.size.unwrap_or(1) as u64 * (1 << 20);
        progress.working(&format!(
            "transfer {} MiB up and back",
            case.size.unwrap_or(1)
        ));
        let rec = match gpu {
            Some(Ok(ctx)) => match transfer::measure(ctx, opts, mib, mib) {
                Ok(s) => Record {
                    stats: Some(s),
                    bytes: Some(2 * mib),
                    ..rec
                },
                Err(e) => rec.failed(e.to_string()),
            },
            Some(Err(e)) => rec.failed(e.clone()),
            None => rec.failed("no GPU context".into()),
        };
        progress.done(&rec);
        return Ok(vec![rec]);
    }
    if case.workload == Workload::Train {
        return train::run_case(opts, case, &paths, gpu, &template, &|what, rec| match rec {
            Some(r) => progress.done(r),
            None => progress.working(what),
        });
    }
    let model = case.model()?;
    let flops = model_flops(&model, case.batch);
    progress.working(&format!(
        "{} {}: the CPU reference",
        case.workload.name(),
        case.batch
    ));
    let input = random_input(case.batch, model.in_features())?;
    let reference = Reference::new(&model, &input)?;
    // One GPU model shared by both GPU paths of the case.
    let gpu_model = match gpu {
        Some(Ok(ctx)) if paths.iter().any(|p| p.is_gpu()) => {
            let options = GpuMlpOptions {
                weights: opts.weights,
                kernel: opts.kernel,
                ..Default::default()
            };
            Some(GpuMlp::with_options(ctx, &model, options).map_err(|e| e.to_string()))
        }
        Some(Err(e)) => Some(Err(e.clone())),
        _ => None,
    };
    let mut records = Vec::new();
    for path in paths {
        progress.working(&format!(
            "{} {} {}",
            case.workload.name(),
            case.batch,
            path.name()
        ));
        let mut rec = match path {
            BenchPath::CpuReference => measure(opts, &template(path, flops), None, &mut || {
                crate::cpu::forward(&model, &input).map(drop)
            }),
            BenchPath::CpuFast => {
                let fast = CpuMlp::with_threads(&model, opts.threads)?;
                measure(
                    opts,
                    &template(path, flops),
                    Some((&reference, &mut || fast.forward(&input))),
                    &mut || fast.forward(&input).map(drop),
                )
            }
            BenchPath::GpuE2e | BenchPath::GpuResident => match &gpu_model {
                Some(Ok(g)) => gpu_path(opts, &template(path, flops), g, path, &input, &reference),
                Some(Err(e)) => template(path, flops).failed(e.clone()),
                None => template(path, flops).failed("no GPU context".into()),
            },
        };
        if let (Some(Ok(g)), true) = (&gpu_model, path.is_gpu()) {
            let names: Vec<String> = g
                .linear_kernels(case.batch)
                .iter()
                .map(ToString::to_string)
                .collect();
            rec.kernels = Some(names.join(", "));
        }
        // End to end: what the same bytes cost with no kernel (the floor), and what this path's
        // own transfers cost with its kernels left out, for the transfer check.
        if let (Some(Ok(ctx)), Some(Ok(g)), BenchPath::GpuE2e) = (gpu, &gpu_model, path)
            && rec.stats.is_some()
        {
            let (up, down) = moved_bytes(&model, case.batch);
            rec.bytes = Some(up + down);
            rec.transfer_floor = transfer::measure(ctx, opts, up, down).ok();
            rec.transfers_alone =
                time_runs(opts, || g.transfers_alone(input.as_slice(), case.batch))
                    .ok()
                    .and_then(|s| Stats::from_durations(&s));
        }
        progress.done(&rec);
        records.push(rec);
    }
    Ok(records)
}

/// A GPU path: end to end (upload, run, read back) or resident (input on the device, output
/// left there, the queue drained).
fn gpu_path(
    opts: &BenchOptions,
    template: &Record,
    g: &GpuMlp,
    path: BenchPath,
    input: &Matrix,
    reference: &Reference,
) -> Record {
    if path == BenchPath::GpuE2e {
        return measure(
            opts,
            template,
            Some((reference, &mut || g.forward(input))),
            &mut || g.forward(input).map(drop),
        );
    }
    measure(
        opts,
        template,
        Some((reference, &mut || {
            g.prepare(input)?;
            g.run_prepared()?;
            g.read_prepared()
        })),
        &mut || g.run_prepared(),
    )
}

/// Bytes an end-to-end call moves: the input up, the output back, each as its device rows
/// (f32s padded to whole vec4s: 16 bytes per 4 features).
fn moved_bytes(model: &Mlp, batch: usize) -> (u64, u64) {
    let padded = |n: usize| 16 * n.div_ceil(4) as u64;
    (
        batch as u64 * padded(model.in_features()),
        batch as u64 * padded(model.out_features()),
    )
}

/// `the crate's CPU path, 2 threads, avx512 kernels`.
fn cpu_fast_line(threads: usize) -> String {
    format!(
        "the crate's CPU path ({} threads, {} kernels)",
        crate::cpu::Threads::new(threads).count(),
        crate::cpu::Kernel::best().name()
    )
}

/// `quick, GPU kernels with subgroups`, and any option that changes what the GPU runs.
fn mode_line(opts: &BenchOptions, gpu: Option<&GpuContext>) -> String {
    let mut mode = opts.mode().to_string();
    if opts.weights == crate::gpu::WeightFormat::F16 {
        mode.push_str(", f16 weights on the GPU");
    }
    if opts.kernel != crate::gpu::LinearKernel::Auto {
        mode.push_str(&format!(", {} kernel", opts.kernel));
    }
    // On software adapters the subgroup path is much faster (docs/KERNELS.md): say which ran.
    if let Some(ctx) = gpu {
        mode.push_str(if ctx.uses_subgroups() {
            ", GPU kernels with subgroups"
        } else {
            ", GPU kernels without subgroups"
        });
    }
    mode
}

/// Progress on stderr: a bar on a terminal, one line per finished row otherwise.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
}

impl Bar {
    fn new(opts: &BenchOptions, cases: &[Case]) -> Self {
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
        let bar = (opts.progress == Progress::Bar).then(|| {
            let bar = indicatif::ProgressBar::new(steps as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} rows, {elapsed} elapsed  {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Bar {
            bar,
            lines: opts.progress == Progress::Lines,
        }
    }

    fn working(&self, what: &str) {
        if let Some(b) = &self.bar {
            b.set_message(what.to_string());
        }
    }

    fn done(&self, r: &Record) {
        let what = format!("{} {} {}", r.workload, r.shape(), r.path.name());
        let line = match (&r.stats, &r.error) {
            (Some(s), _) if r.workload == "transfer" => format!(
                "bench: {what}: {} ms median ({} runs), {} GB/s",
                sig(s.median_ms),
                s.runs,
                sig(r.bytes.unwrap_or(0) as f64 / s.median_ms / 1e6)
            ),
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
        };
        match &self.bar {
            Some(b) => {
                b.println(line);
                b.inc(1);
            }
            // A progress line that cannot be written (stderr closed) is not worth failing a run.
            None if self.lines => {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            None => {}
        }
    }

    fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;

    #[test]
    fn moved_bytes_counts_padded_device_rows_in_bytes() {
        // mnist: 784 features up (196 vec4s), 10 outputs back (3 vec4s), 16 bytes per vec4.
        let m = Mlp::builder(784)
            .layer(10, Activation::Softmax)
            .build()
            .unwrap();
        assert_eq!(moved_bytes(&m, 1), (3136, 48));
        assert_eq!(moved_bytes(&m, 1024), (1024 * 3136, 1024 * 48));
    }
}
