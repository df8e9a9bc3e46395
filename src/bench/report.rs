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
    /// [`crate::bench::FastCpuMlp`]: `matrixmultiply` sgemm, threaded, f32.
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
}

impl Record {
    /// Short text for the shape column: `512×512×512` for GEMM, `b64` otherwise.
    pub fn shape(&self) -> String {
        match (self.workload.as_str(), self.size) {
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
            "- CPU: {}, {} threads (cpu-fast: matrixmultiply sgemm, threaded)",
            self.cpu, self.threads
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
             | GPU speedup vs cpu-reference | vs cpu-fast |\n",
        );
        s.push_str("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for r in &self.records {
            let speed = |p| {
                self.speedup(r, p)
                    .map_or("–".to_string(), |x| format!("{}×", sig(x)))
            };
            match (&r.stats, &r.error) {
                (Some(st), _) => {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} | {}–{} | {} | {} | {} | {} | {} |",
                        r.workload,
                        r.shape(),
                        r.path.name(),
                        sig(st.median_ms),
                        sig(st.min_ms),
                        sig(st.max_ms),
                        st.runs,
                        sig(st.gflops(r.flops)),
                        sig(st.samples_per_s(r.batch)),
                        speed(BenchPath::CpuReference),
                        speed(BenchPath::CpuFast),
                    );
                }
                (None, e) => {
                    let e = e.as_deref().unwrap_or("no result").replace('|', "\\|");
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | **error**: {e} | | | | | | |",
                        r.workload,
                        r.shape(),
                        r.path.name(),
                    );
                }
            }
        }
        s.push_str(
            "\nspeedup = CPU median / GPU median (above 1× the GPU wins). GFLOP/s counts \
             2·batch·in·out per Linear layer.",
        );
        if self.records.iter().any(|r| r.workload == "roundtrip") {
            s.push_str(" roundtrip is a 1→1 identity model's forward pass: the adapter's floor.");
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
        s
    }

    /// The results as JSON (see `docs/BENCHMARKING.md` for the fields).
    pub fn to_json(&self) -> String {
        let mut s = String::from("{\n");
        let a = self.adapter.as_ref();
        let st = &self.settings;
        let top: [(&str, String); 14] = [
            ("crate_version", jstr(&self.crate_version)),
            ("date", jstr(&self.date)),
            ("cpu", jstr(&self.cpu)),
            ("threads", self.threads.to_string()),
            (
                "load_avg_1min",
                self.load_avg.map_or("null".into(), |(b, a)| {
                    format!("{{\"before\": {}, \"after\": {}}}", jnum(b), jnum(a))
                }),
            ),
            ("adapter", jopt_str(a.map(|a| a.name.as_str()))),
            ("backend", jopt_str(a.map(|a| a.backend.as_str()))),
            ("device_type", jopt_str(a.map(|a| a.device_type.as_str()))),
            ("driver", jopt_str(a.map(|a| a.driver.as_str()))),
            ("adapter_error", jopt_str(self.adapter_error.as_deref())),
            ("mode", jstr(&st.mode)),
            (
                "timing",
                format!(
                    "{{\"warmup\": {}, \"warmup_s\": {}, \"runs\": {}, \"min_runs\": {}, \
                     \"budget_s\": {}}}",
                    st.warmup,
                    st.warmup_s,
                    st.runs,
                    st.min_runs,
                    jopt_num(st.budget_s)
                ),
            ),
            (
                "tolerance",
                format!(
                    "{{\"abs\": {}, \"rel\": {}}}",
                    jnum(self.tolerance.abs),
                    jnum(self.tolerance.rel)
                ),
            ),
            ("flops_rule", jstr("2*batch*in*out per Linear layer")),
        ];
        for (k, v) in top {
            let _ = writeln!(s, "  \"{k}\": {v},");
        }
        s.push_str("  \"records\": [");
        for (i, r) in self.records.iter().enumerate() {
            let stat = |f: fn(&Stats) -> f64| jopt_num(r.stats.as_ref().map(f));
            let fields: [(&str, String); 20] = [
                ("workload", jstr(&r.workload)),
                ("size", r.size.map_or("null".into(), |n| n.to_string())),
                ("batch", r.batch.to_string()),
                ("path", jstr(r.path.name())),
                ("median_ms", stat(|s| s.median_ms)),
                ("min_ms", stat(|s| s.min_ms)),
                ("max_ms", stat(|s| s.max_ms)),
                ("runs", r.stats.map_or(0, |s| s.runs).to_string()),
                ("runs_requested", r.runs_requested.to_string()),
                ("flops", r.flops.to_string()),
                ("gflops", jopt_num(r.gflops())),
                ("samples_per_s", jopt_num(r.samples_per_s())),
                (
                    "speedup_vs_cpu_reference",
                    jopt_num(self.speedup(r, BenchPath::CpuReference)),
                ),
                (
                    "speedup_vs_cpu_fast",
                    jopt_num(self.speedup(r, BenchPath::CpuFast)),
                ),
                (
                    "checked_rows",
                    r.checked_rows.map_or("null".into(), |n| n.to_string()),
                ),
                ("max_abs_err", jopt_num(r.max_abs_err)),
                ("adapter", jstr(&r.adapter)),
                ("backend", jstr(&r.backend)),
                ("kernels", jopt_str(r.kernels.as_deref())),
                ("error", jopt_str(r.error.as_deref())),
            ];
            s.push_str(if i == 0 { "\n    {" } else { ",\n    {" });
            for (j, (k, v)) in fields.iter().enumerate() {
                let sep = if j == 0 { "" } else { ", " };
                let _ = write!(s, "{sep}\"{k}\": {v}");
            }
            s.push('}');
        }
        s.push_str(if self.records.is_empty() {
            "]\n}\n"
        } else {
            "\n  ]\n}\n"
        });
        s
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

/// A JSON string literal.
pub(crate) fn jstr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn jopt_str(s: Option<&str>) -> String {
    s.map_or("null".to_string(), jstr)
}

/// A JSON number; `null` for NaN and infinities.
fn jnum(x: f64) -> String {
    if x.is_finite() {
        // Display never uses an exponent and round-trips.
        format!("{x}")
    } else {
        "null".to_string()
    }
}

fn jopt_num(x: Option<f64>) -> String {
    x.map_or("null".to_string(), jnum)
}
