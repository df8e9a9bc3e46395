//! Results: [`Record`]s collected in a [`Report`], printed as a markdown table or JSON.

use std::fmt::Write as _;

use crate::bench::check::Tolerance;
use crate::bench::stats::Stats;
use crate::gpu::AdapterSummary;

/// How a forward pass was run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BenchPath {
    /// [`crate::cpu::forward`]: f64 accumulation, simple loops; for checking, not speed.
    CpuReference,
    /// [`crate::cpu::CpuMlp`]: the crate's fast CPU path (packed weights, f32 kernels, all
    /// cores).
    CpuFast,
    /// [`crate::gpu::GpuMlp::forward`]: upload the input, run, read the output back.
    GpuE2e,
    /// [`crate::gpu::GpuMlp::run_prepared`]: input already on the device, output left there,
    /// the queue drained before the clock stops.
    GpuResident,
}

impl BenchPath {
    /// Every path, in table order.
    pub const ALL: [BenchPath; 4] = [
        BenchPath::CpuReference,
        BenchPath::CpuFast,
        BenchPath::GpuE2e,
        BenchPath::GpuResident,
    ];

    /// The name used in tables, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BenchPath::CpuReference => "cpu-reference",
            BenchPath::CpuFast => "cpu-fast",
            BenchPath::GpuE2e => "gpu-e2e",
            BenchPath::GpuResident => "gpu-resident",
        }
    }

    /// Parses a [`name`](Self::name).
    pub fn parse(s: &str) -> crate::Result<BenchPath> {
        BenchPath::ALL
            .into_iter()
            .find(|p| p.name() == s.trim())
            .ok_or_else(|| {
                crate::Error::invalid(format!(
                    "unknown path '{}'; expected one of: {}",
                    s.trim(),
                    BenchPath::ALL.map(BenchPath::name).join(", ")
                ))
            })
    }

    /// True for the GPU paths.
    pub fn is_gpu(self) -> bool {
        matches!(self, BenchPath::GpuE2e | BenchPath::GpuResident)
    }
}

/// One row of the results: a workload at one size or batch, on one path.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Workload id (`gemm`, `mnist`, `wide`, `seed`, `roundtrip`).
    pub workload: String,
    /// M = N = K for `gemm`, else `None`.
    pub size: Option<usize>,
    /// Rows per forward pass (M for `gemm`).
    pub batch: usize,
    /// The path.
    pub path: BenchPath,
    /// FLOPs of one forward pass.
    pub flops: u64,
    /// Timings; `None` when the row failed (see [`error`](Self::error)).
    pub stats: Option<Stats>,
    /// Why there is no figure: a failed correctness check, or a GPU error.
    pub error: Option<String>,
    /// Rows compared with the CPU reference, of `batch` (`None` for the reference itself).
    pub checked_rows: Option<usize>,
    /// Largest |a − e| in the check.
    pub max_abs_err: Option<f64>,
    /// The adapter name (GPU paths) or the CPU model (CPU paths).
    pub adapter: String,
    /// The wgpu backend (GPU paths) or `cpu`.
    pub backend: String,
    /// Runs asked for; `stats.runs` is lower when the time budget cut the path short.
    pub runs_requested: usize,
    /// GPU paths: the kernel each Linear layer ran, e.g. `gemv, gemv, gemv`.
    pub kernels: Option<String>,
    /// Bytes moved between host and device per call (end to end, and `transfer`).
    pub bytes: Option<u64>,
    /// End to end: a round trip of the same bytes with no kernel (the transfer floor).
    pub transfer_floor: Option<Stats>,
    /// End to end: this path with its kernels left out (its own upload, copy and readback).
    pub transfers_alone: Option<Stats>,
}

impl Record {
    /// A record of `case` on `path`, not yet measured.
    pub fn new(
        case: &crate::bench::Case,
        path: BenchPath,
        flops: u64,
        adapter: String,
        backend: String,
        runs_requested: usize,
    ) -> Self {
        Record {
            workload: case.workload.name().to_string(),
            size: case.size,
            batch: case.batch,
            path,
            flops,
            stats: None,
            error: None,
            checked_rows: None,
            max_abs_err: None,
            adapter,
            backend,
            runs_requested,
            kernels: None,
            bytes: None,
            transfer_floor: None,
            transfers_alone: None,
        }
    }

    /// This record with no figure, for the reason given.
    pub fn failed(self, error: String) -> Self {
        Record {
            error: Some(error),
            ..self
        }
    }

    /// Short text for the shape column: `512×512×512` for GEMM, `16 MiB` for transfers, `b64`
    /// otherwise.
    pub fn shape(&self) -> String {
        match (self.workload.as_str(), self.size) {
            ("transfer", Some(n)) => format!("{n} MiB"),
            (_, Some(n)) => format!("{n}×{n}×{n}"),
            ("roundtrip", None) => "1×1 forward".to_string(),
            (_, None) => format!("b{}", self.batch),
        }
    }

    /// GFLOP/s at the median time.
    pub fn gflops(&self) -> Option<f64> {
        self.stats.map(|s| s.gflops(self.flops))
    }

    /// Rows per second at the median time.
    pub fn samples_per_s(&self) -> Option<f64> {
        self.stats.map(|s| s.samples_per_s(self.batch))
    }

    fn same_case(&self, other: &Record) -> bool {
        self.workload == other.workload && self.size == other.size && self.batch == other.batch
    }
}

/// Timing settings, as reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `quick`, `full` or `custom`.
    pub mode: String,
    /// Warm-up runs asked for per path.
    pub warmup: usize,
    /// Least warm-up time per path in seconds (when `warmup > 0`).
    pub warmup_s: f64,
    /// Timed runs asked for per path.
    pub runs: usize,
    /// Fewest timed runs when the budget is exhausted.
    pub min_runs: usize,
    /// Time budget per path in seconds (`None`: none).
    pub budget_s: Option<f64>,
}

/// Everything one `bench` run measured, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// This crate's version.
    pub crate_version: String,
    /// UTC date and time of the run, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// CPU model, from `/proc/cpuinfo`.
    pub cpu: String,
    /// `std::thread::available_parallelism`.
    pub threads: usize,
    /// What the `cpu-fast` path ran on: threads and kernels.
    pub cpu_fast: String,
    /// The 1-minute load average (`/proc/loadavg`) before and after the run, where known: well
    /// above 0 before the run means other processes shared the CPU.
    pub load_avg: Option<(f64, f64)>,
    /// The GPU adapter, when one was opened.
    pub adapter: Option<AdapterSummary>,
    /// Why no adapter was opened (GPU rows then carry the error).
    pub adapter_error: Option<String>,
    /// Timing settings.
    pub settings: Settings,
    /// The correctness tolerance.
    pub tolerance: Tolerance,
    /// The results, in run order.
    pub records: Vec<Record>,
}

impl Report {
    /// CPU median over GPU median for a GPU record (above 1: the GPU wins), against the given CPU
    /// path of the same workload and shape.
    pub fn speedup(&self, record: &Record, over: BenchPath) -> Option<f64> {
        if !record.path.is_gpu() {
            return None;
        }
        let gpu = record.stats?;
        let cpu = self
            .records
            .iter()
            .find(|r| r.path == over && r.same_case(record))?
            .stats?;
        Some(cpu.median_ms / gpu.median_ms)
    }

    /// The adapter as one line: name, backend, device type.
    pub fn adapter_line(&self) -> String {
        match (&self.adapter, &self.adapter_error) {
            (Some(a), _) => {
                let soft = if a.device_type == "Cpu" {
                    " — a software adapter: the \"GPU\" runs on the same CPU cores"
                } else {
                    ""
                };
                format!(
                    "{} (backend {}, device type {}){soft}",
                    a.name, a.backend, a.device_type
                )
            }
            (None, Some(e)) => format!("none ({e})"),
            (None, None) => "not used".to_string(),
        }
    }

    /// The results as markdown: a short header, the table, and how to read it.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let st = &self.settings;
        let _ = writeln!(
            s,
            "### wgpu-mlp {} bench ({}), {}\n",
            self.crate_version, st.mode, self.date
        );
        let _ = writeln!(s, "- GPU adapter: {}", self.adapter_line());
        let _ = writeln!(
            s,
            "- CPU: {}, {} threads (cpu-fast: {})",
            self.cpu, self.threads, self.cpu_fast
        );
        if let Some((before, after)) = self.load_avg {
            let _ = writeln!(
                s,
                "- 1-minute load average before / after the run: {before:.2} / {after:.2} (on {} \
                 threads; well above 0 before the run means the machine was not idle)",
                self.threads
            );
        }
        let budget = match st.budget_s {
            Some(b) => format!(
                ", fewer (at least {}) once a path's timed runs pass {b} s",
                st.min_runs
            ),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "- {} warm-up runs (and at least {} s of them) + {} timed runs per path{budget}; host \
             clock, GPU queue drained; every result checked against the f64 CPU reference ({}) \
             before timing\n",
            st.warmup,
            st.warmup_s,
            st.runs,
            self.tolerance.describe()
        );
        s.push_str(
            "| workload | shape | path | median ms | min–max ms | runs | GFLOP/s | samples/s \
             | GPU vs cpu-fast |\n",
        );
        s.push_str("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for r in self.records.iter().filter(|r| r.workload != "transfer") {
            let speed = self
                .speedup(r, BenchPath::CpuFast)
                .map_or("–".to_string(), |x| format!("{}×", sig(x)));
            match (&r.stats, &r.error) {
                (Some(st), _) => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {}–{} | {} | {} | {} | {speed} |",
                        r.workload,
                        r.shape(),
                        r.path.name(),
                        sig(st.median_ms),
                        sig(st.min_ms),
                        sig(st.max_ms),
                        st.runs,
                        sig(st.gflops(r.flops)),
                        sig(st.samples_per_s(r.batch)),
                    );
                }
                (None, e) => {
                    let e = e.as_deref().unwrap_or("no result").replace('|', "\\|");
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | **error**: {e} | | | | | |",
                        r.workload,
                        r.shape(),
                        r.path.name(),
                    );
                }
            }
        }
        s.push_str(
            "\nGPU vs cpu-fast = cpu-fast median / GPU median (above 1× the GPU wins). GFLOP/s \
             counts 2·batch·in·out per Linear layer.",
        );
        if self.records.iter().any(|r| r.workload == "roundtrip") {
            s.push_str(" roundtrip is a 1→1 identity model's forward pass: the adapter's floor.");
        }
        if self.records.iter().any(|r| r.workload == "train") {
            s.push_str(
                " A train row is one optimizer step (forward, cross-entropy, backward, SGD with \
                 momentum); its FLOPs count each product computed (forward and dW of every layer, \
                 dX of all but the first), and its check compares the first step's loss and \
                 updated parameters with the reference's.",
            );
        }
        if self.records.iter().any(|r| {
            r.checked_rows
                .is_some_and(|c| c < r.batch && r.stats.is_some())
        }) {
            let _ = write!(
                s,
                " Batches over {} rows are checked on their first and last {} rows.",
                super::check::CHECK_ALL_ROWS_UP_TO,
                super::check::SUBSET_ROWS / 2
            );
        }
        // Which kernels ran, once per workload and shape.
        let mut seen = Vec::new();
        for r in &self.records {
            if let Some(k) = &r.kernels {
                let line = format!("{} {}: {k}", r.workload, r.shape());
                if !seen.contains(&line) {
                    seen.push(line);
                }
            }
        }
        if !seen.is_empty() {
            let _ = write!(s, "\nLinear kernels on the GPU: {}.", seen.join("; "));
        }
        if self
            .adapter
            .as_ref()
            .is_some_and(|a| a.device_type == "Cpu")
        {
            s.push_str(
                "\nOn a software adapter the \"GPU\" is an LLVM JIT on the same CPU cores, so the \
                 CPU paths are expected to win; the GPU path pays off on real GPUs.",
            );
        }
        s.push('\n');
        s.push_str(&self.transfers_markdown());
        s
    }

    /// The transfer floor (raw round trips of the adapter), and how far each end-to-end row is
    /// from it: the path's own transfers (its kernels left out) against the same bytes moved
    /// with wgpu's plain calls; `e2e − resident` beside them for reference.
    fn transfers_markdown(&self) -> String {
        let mut s = String::new();
        let raw: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.workload == "transfer" && r.stats.is_some())
            .collect();
        if !raw.is_empty() {
            s.push_str("\nRaw transfers (write_buffer, copy, map, read back; no kernel):\n\n");
            s.push_str("| moved up + down | median ms | min–max ms | GB/s |\n");
            s.push_str("| --- | ---: | ---: | ---: |\n");
            for r in raw {
                let st = r.stats.expect("filtered");
                let _ = writeln!(
                    s,
                    "| {} + {} | {} | {}–{} | {} |",
                    r.shape(),
                    r.shape(),
                    sig(st.median_ms),
                    sig(st.min_ms),
                    sig(st.max_ms),
                    sig(r.bytes.unwrap_or(0) as f64 / st.median_ms / 1e6)
                );
            }
        }
        let rows: Vec<String> = self
            .records
            .iter()
            .filter_map(|r| {
                let (e2e, floor) = (r.stats?, r.transfer_floor?);
                let resident = self
                    .records
                    .iter()
                    .find(|o| o.path == BenchPath::GpuResident && o.same_case(r))?
                    .stats?;
                let alone = r.transfers_alone?;
                Some(format!(
                    "| {} {} | {} | {} | {} | {} | {}× |",
                    r.workload,
                    r.shape(),
                    r.bytes.map_or("–".into(), |b| b.to_string()),
                    sig(e2e.median_ms - resident.median_ms),
                    sig(alone.median_ms),
                    sig(floor.median_ms),
                    sig(alone.median_ms / floor.median_ms)
                ))
            })
            .collect();
        if !rows.is_empty() {
            s.push_str(
                "\nEnd to end against the transfer floor: the e2e path's transfers alone (its upload, \
                 copy and readback with the kernels left out) against the same bytes moved with \
                 wgpu's plain calls (1.5× or less is the target). e2e − resident estimates the \
                 same cost but carries the kernels' run-to-run noise, larger than the transfers on \
                 a software adapter:\n\n",
            );
            s.push_str(
                "| workload | bytes moved | e2e − resident ms | transfers alone ms | floor ms | \
                 ratio |\n",
            );
            s.push_str("| --- | ---: | ---: | ---: | ---: | ---: |\n");
            for r in rows {
                s.push_str(&r);
                s.push('\n');
            }
        }
        s
    }

    /// The results as JSON (see `docs/BENCHMARKING.md` for the fields).
    pub fn to_json(&self) -> String {
        use serde_json::{Value, json};
        let a = self.adapter.as_ref();
        let st = &self.settings;
        let num = |x: Option<f64>| x.filter(|v| v.is_finite()).map_or(Value::Null, Value::from);
        let records: Vec<Value> = self
            .records
            .iter()
            .map(|r| {
                let stat = |f: fn(&Stats) -> f64| num(r.stats.as_ref().map(f));
                json!({
                    "workload": r.workload,
                    "size": r.size,
                    "batch": r.batch,
                    "path": r.path.name(),
                    "median_ms": stat(|s| s.median_ms),
                    "min_ms": stat(|s| s.min_ms),
                    "max_ms": stat(|s| s.max_ms),
                    "runs": r.stats.map_or(0, |s| s.runs),
                    "runs_requested": r.runs_requested,
                    "flops": r.flops,
                    "gflops": num(r.gflops()),
                    "samples_per_s": num(r.samples_per_s()),
                    "speedup_vs_cpu_reference": num(self.speedup(r, BenchPath::CpuReference)),
                    "speedup_vs_cpu_fast": num(self.speedup(r, BenchPath::CpuFast)),
                    "checked_rows": r.checked_rows,
                    "max_abs_err": num(r.max_abs_err),
                    "adapter": r.adapter,
                    "backend": r.backend,
                    "kernels": r.kernels,
                    "bytes_moved": r.bytes,
                    "transfer_floor_ms": num(r.transfer_floor.map(|s| s.median_ms)),
                    "transfers_alone_ms": num(r.transfers_alone.map(|s| s.median_ms)),
                    "error": r.error,
                })
            })
            .collect();
        let report = json!({
            "crate_version": self.crate_version,
            "date": self.date,
            "cpu": self.cpu,
            "threads": self.threads,
            "cpu_fast": self.cpu_fast,
            "load_avg_1min": self.load_avg.map(|(b, a)| json!({"before": num(Some(b)), "after": num(Some(a))})),
            "adapter": a.map(|a| a.name.as_str()),
            "backend": a.map(|a| a.backend.as_str()),
            "device_type": a.map(|a| a.device_type.as_str()),
            "driver": a.map(|a| a.driver.as_str()),
            "adapter_error": self.adapter_error,
            "mode": st.mode,
            "timing": {
                "warmup": st.warmup,
                "warmup_s": st.warmup_s,
                "runs": st.runs,
                "min_runs": st.min_runs,
                "budget_s": st.budget_s,
            },
            "tolerance": {"abs": num(Some(self.tolerance.abs)), "rel": num(Some(self.tolerance.rel))},
            "flops_rule": "2*batch*in*out per Linear layer; train: per product computed (forward and dW of every layer, dX of all but the first)",
            "records": records,
        });
        let mut text = serde_json::to_string_pretty(&report)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        text.push('\n');
        text
    }
}

/// A number with three significant digits (no exponent): `0.0123`, `1.23`, `123`, `12345`.
pub fn sig(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let mag = x.abs().log10().floor() as i32;
    let decimals = (2 - mag).clamp(0, 9) as usize;
    format!("{x:.decimals$}")
}
