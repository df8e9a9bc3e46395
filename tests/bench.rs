//! The benchmark harness's logic, without timing anything that matters: FLOP counting, the
//! statistics, the correctness gate, the JSON and the SVG.

mod common;

use std::time::Duration;

use common::model;
use wgpu_mlp::bench::{
    self, BenchOptions, BenchPath, Record, Reference, Report, Settings, Stats, Tolerance, Workload,
    random_input,
};
use wgpu_mlp::gpu::AdapterSummary;
use wgpu_mlp::{Activation, Matrix, Mlp, Module};

// ---------------------------------------------------------------------------------------------
// FLOPs and statistics

#[test]
fn flops_are_two_batch_in_out_per_linear() {
    assert_eq!(bench::linear_flops(64, 784, 512), 2 * 64 * 784 * 512);
    let mnist = Workload::Mnist.model(0).unwrap();
    assert_eq!(
        bench::model_flops(&mnist, 64),
        2 * 64 * (784 * 512 + 512 * 512 + 512 * 10)
    );
    let gemm = Workload::Gemm.model(2048).unwrap();
    assert_eq!(bench::model_flops(&gemm, 2048), 2 * 2048u64.pow(3));
    assert_eq!(bench::model_flops(&mnist, 0), 0);
    // No overflow on the largest workload.
    let wide = Workload::Wide.model(0).unwrap();
    assert_eq!(bench::model_flops(&wide, 1024), 3 * 2 * 1024 * 2048 * 2048);
}

#[test]
fn workload_models_have_the_documented_shapes() {
    // (in, out, activation module after it) for each Linear layer.
    let widths = |m: &Mlp| {
        let mods = m.modules();
        mods.iter()
            .enumerate()
            .filter_map(|(i, module)| match module {
                Module::Linear(l) => {
                    let act = match mods.get(i + 1) {
                        Some(Module::Activation(a)) => *a,
                        _ => Activation::Identity,
                    };
                    Some((l.in_features(), l.out_features(), act))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    use Activation::*;
    assert_eq!(
        widths(&Workload::Mnist.model(0).unwrap()),
        [(784, 512, Relu), (512, 512, Relu), (512, 10, Softmax)]
    );
    assert_eq!(
        widths(&Workload::Wide.model(0).unwrap()),
        [
            (2048, 2048, Relu),
            (2048, 2048, Relu),
            (2048, 2048, Identity)
        ]
    );
    assert_eq!(
        widths(&Workload::Seed.model(0).unwrap()),
        [(3, 3, Sigmoid), (3, 2, Identity)]
    );
    let gemm = Workload::Gemm.model(256).unwrap();
    assert_eq!(widths(&gemm), [(256, 256, Identity)]);
    assert!(
        gemm.linears().next().unwrap().bias().is_none(),
        "gemm has no bias"
    );
    assert_eq!(
        widths(&Workload::Roundtrip.model(0).unwrap()),
        [(1, 1, Identity)]
    );
}

#[test]
fn stats_median_min_max() {
    let s = Stats::from_ms(&[3.0, 1.0, 2.0]).unwrap();
    assert_eq!(
        (s.median_ms, s.min_ms, s.max_ms, s.runs),
        (2.0, 1.0, 3.0, 3)
    );
    let s = Stats::from_ms(&[4.0, 1.0, 3.0, 2.0]).unwrap();
    assert_eq!(
        (s.median_ms, s.min_ms, s.max_ms, s.runs),
        (2.5, 1.0, 4.0, 4)
    );
    let s = Stats::from_ms(&[7.0]).unwrap();
    assert_eq!((s.median_ms, s.min_ms, s.max_ms), (7.0, 7.0, 7.0));
    assert!(Stats::from_ms(&[]).is_none());
    assert!(Stats::from_ms(&[1.0, f64::NAN]).is_none());
    let s = Stats::from_durations(&[Duration::from_millis(2), Duration::from_micros(500)]).unwrap();
    assert!((s.median_ms - 1.25).abs() < 1e-12 && s.min_ms == 0.5 && s.max_ms == 2.0);
    // 1 GFLOP in 10 ms is 100 GFLOP/s; 64 rows in 10 ms are 6400 rows/s.
    let s = Stats::from_ms(&[10.0]).unwrap();
    assert!((s.gflops(1_000_000_000) - 100.0).abs() < 1e-9);
    assert!((s.samples_per_s(64) - 6400.0).abs() < 1e-9);
}

#[test]
fn time_runs_respects_warmup_runs_and_budget() {
    let count = |opts: &BenchOptions| {
        let mut calls = 0;
        let samples = bench::time_runs(opts, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        (calls, samples.len())
    };
    let no_budget = BenchOptions {
        warmup: 2,
        warmup_time: Duration::ZERO,
        runs: 5,
        budget: None,
        ..BenchOptions::default()
    };
    assert_eq!(count(&no_budget), (7, 5));
    // Warm-up goes on until its time has passed: 2 runs asked, 20 ms of 5 ms runs given.
    let warm = BenchOptions {
        warmup_time: Duration::from_millis(20),
        ..no_budget.clone()
    };
    let mut starts = Vec::new();
    let samples = bench::time_runs(&warm, || {
        starts.push(std::time::Instant::now());
        std::thread::sleep(Duration::from_millis(5));
        Ok(())
    })
    .unwrap();
    assert_eq!(samples.len(), 5);
    let first_timed = starts.len() - 5;
    assert!(first_timed >= 2, "{first_timed} warm-up runs");
    assert!(starts[first_timed] - starts[0] >= Duration::from_millis(20));
    // A spent budget: one warm-up run, then the minimum of timed runs.
    let spent = BenchOptions {
        warmup: 3,
        warmup_time: Duration::ZERO,
        runs: 10,
        min_runs: 3,
        budget: Some(Duration::ZERO),
        ..BenchOptions::default()
    };
    assert_eq!(count(&spent), (4, 3));
    // min_runs never exceeds runs.
    let few = BenchOptions {
        runs: 2,
        ..spent.clone()
    };
    assert_eq!(count(&few).1, 2);
    // The first error ends it.
    let err = bench::time_runs(&no_budget, || Err(wgpu_mlp::Error::Gpu("boom".into())));
    assert!(err.is_err());
}

#[test]
fn sig_keeps_three_significant_digits() {
    assert_eq!(bench::sig(0.012345), "0.0123");
    assert_eq!(bench::sig(1.2345), "1.23");
    assert_eq!(bench::sig(123.45), "123");
    assert_eq!(bench::sig(12345.6), "12346");
    assert_eq!(bench::sig(0.0), "0");
}

#[test]
fn utc_dates() {
    assert_eq!(bench::utc_date(0), "1970-01-01 00:00 UTC");
    assert_eq!(bench::utc_date(951_782_400), "2000-02-29 00:00 UTC");
    assert_eq!(bench::utc_date(1_700_000_000), "2023-11-14 22:13 UTC");
}

// ---------------------------------------------------------------------------------------------
// Options

#[test]
fn quick_and_full_cases() {
    let quick = BenchOptions::default().cases().unwrap();
    assert!(quick.iter().all(|c| c.workload != Workload::Wide));
    // The train step's reference takes seconds at batch 1024: --full or --workload train only.
    assert!(quick.iter().all(|c| c.workload != Workload::Train));
    let sized = |w| {
        quick
            .iter()
            .filter(move |c| c.workload == w)
            .filter_map(|c| c.size)
    };
    assert_eq!(sized(Workload::Gemm).collect::<Vec<_>>(), [256, 512]);
    assert_eq!(sized(Workload::Transfer).collect::<Vec<_>>(), [1, 16]);
    assert!(quick.iter().any(|c| c.workload == Workload::Roundtrip));

    let full = BenchOptions {
        full: true,
        ..BenchOptions::default()
    }
    .cases()
    .unwrap();
    let gemm: Vec<usize> = full
        .iter()
        .filter(|c| c.workload == Workload::Gemm)
        .filter_map(|c| c.size)
        .collect();
    assert_eq!(gemm, [256, 512, 1024, 2048]);
    let mnist: Vec<usize> = full
        .iter()
        .filter(|c| c.workload == Workload::Mnist)
        .map(|c| c.batch)
        .collect();
    assert_eq!(mnist, [1, 64, 1024]);
    let train: Vec<usize> = full
        .iter()
        .filter(|c| c.workload == Workload::Train)
        .map(|c| c.batch)
        .collect();
    assert_eq!(train, [64, 1024]);
    assert!(
        full.iter()
            .any(|c| c.workload == Workload::Wide && c.batch == 1024)
    );
    for w in Workload::ALL {
        assert!(full.iter().any(|c| c.workload == w), "{w:?}");
    }

    let custom = BenchOptions {
        workloads: vec![Workload::Mnist, Workload::Roundtrip],
        batches: Some(vec![8, 32]),
        ..BenchOptions::default()
    }
    .cases()
    .unwrap();
    let got: Vec<(Workload, usize)> = custom.iter().map(|c| (c.workload, c.batch)).collect();
    // --batch does not apply to roundtrip (one row by definition).
    assert_eq!(
        got,
        [
            (Workload::Mnist, 8),
            (Workload::Mnist, 32),
            (Workload::Roundtrip, 1)
        ]
    );
}

#[test]
fn bad_options_are_refused() {
    let runs0 = BenchOptions {
        runs: 0,
        ..BenchOptions::default()
    };
    assert!(runs0.cases().is_err());
    let batch0 = BenchOptions {
        batches: Some(vec![0]),
        ..BenchOptions::default()
    };
    assert!(batch0.cases().is_err());
    assert!(Workload::parse("mnist").is_ok());
    let e = Workload::parse("resnet").unwrap_err().to_string();
    assert!(
        e.contains("gemm, mnist, wide, seed, train, roundtrip"),
        "{e}"
    );
    assert_eq!(BenchPath::parse("gpu-e2e").unwrap(), BenchPath::GpuE2e);
    assert!(BenchPath::parse("gpu").is_err());
}

// ---------------------------------------------------------------------------------------------
// The correctness gate and the fast CPU baseline

#[test]
fn random_inputs_are_nonzero_and_in_range() {
    let x = random_input(16, 9).unwrap();
    assert_eq!(x.shape(), [16, 9]);
    assert!(
        x.as_slice()
            .iter()
            .all(|&v| (-1.0..1.0).contains(&v) && v != 0.0)
    );
    assert!(x.as_slice().iter().any(|&v| v < 0.0) && x.as_slice().iter().any(|&v| v > 0.0));
}

#[test]
fn gate_accepts_the_reference_and_rejects_wrong_results() {
    let m = model(&[5, 7, 3], &[Activation::Tanh; 2], 7);
    let x = random_input(4, 5).unwrap();
    let reference = Reference::new(&m, &x).unwrap();
    let good = wgpu_mlp::cpu::forward(&m, &x).unwrap();
    let info = reference.check(&good, Tolerance::default()).unwrap();
    assert_eq!((info.rows, info.of_rows), (4, 4));
    assert!(info.max_abs_err < 1e-6);

    let mut wrong = good.clone();
    wrong.as_mut_slice()[5] += 0.01;
    let e = reference.check(&wrong, Tolerance::default()).unwrap_err();
    assert!(e.contains("[1, 2]"), "{e}");

    let mut nan = good.clone();
    nan.as_mut_slice()[0] = f32::NAN;
    assert!(reference.check(&nan, Tolerance::default()).is_err());

    let zeros = Matrix::zeros(4, 3);
    assert!(reference.check(&zeros, Tolerance::default()).is_err());

    let short = Matrix::zeros(3, 3);
    assert!(reference.check(&short, Tolerance::default()).is_err());
}

#[test]
fn big_batches_are_checked_on_their_first_and_last_rows() {
    assert_eq!(bench::check_rows(3), [0, 1, 2]);
    assert_eq!(bench::check_rows(bench::CHECK_ALL_ROWS_UP_TO).len(), 256);
    let rows = bench::check_rows(1000);
    assert_eq!(rows.len(), bench::SUBSET_ROWS);
    assert_eq!((rows[0], rows[31], rows[32], rows[63]), (0, 31, 968, 999));

    let m = model(&[4, 2], &[Activation::Identity; 1], 7);
    let x = random_input(300, 4).unwrap();
    let reference = Reference::new(&m, &x).unwrap();
    let mut y = wgpu_mlp::cpu::forward(&m, &x).unwrap();
    assert_eq!(reference.check(&y, Tolerance::default()).unwrap().rows, 64);
    // A wrong last row is caught.
    y.as_mut_slice()[299 * 2] += 1.0;
    assert!(reference.check(&y, Tolerance::default()).is_err());
}

fn template(path: BenchPath) -> Record {
    Record {
        workload: "mnist".into(),
        size: None,
        batch: 4,
        path,
        flops: 1000,
        stats: None,
        error: None,
        checked_rows: None,
        max_abs_err: None,
        adapter: "test".into(),
        backend: "test".into(),
        runs_requested: 0,
        kernels: None,
        bytes: None,
        transfer_floor: None,
        transfers_alone: None,
    }
}

#[test]
fn a_wrong_result_is_an_error_row_and_is_never_timed() {
    let m = model(&[3, 4, 2], &[Activation::Relu; 2], 7);
    let x = random_input(4, 3).unwrap();
    let reference = Reference::new(&m, &x).unwrap();
    let opts = BenchOptions {
        warmup: 1,
        warmup_time: Duration::ZERO,
        runs: 3,
        ..BenchOptions::default()
    };
    let mut timed_calls = 0;
    let rec = bench::measure(
        &opts,
        &template(BenchPath::GpuE2e),
        Some((&reference, &mut || Ok(Matrix::zeros(4, 2)))),
        &mut || {
            timed_calls += 1;
            Ok(())
        },
    );
    assert_eq!(timed_calls, 0);
    assert!(rec.stats.is_none());
    assert!(
        rec.error.as_deref().unwrap().contains("wrong result"),
        "{rec:?}"
    );
    // An error from the path itself is an error row too.
    let rec = bench::measure(
        &opts,
        &template(BenchPath::GpuE2e),
        Some((&reference, &mut || {
            Err(wgpu_mlp::Error::Gpu("device gone".into()))
        })),
        &mut || Ok(()),
    );
    assert!(rec.error.unwrap().contains("device gone"));

    // A right result is timed.
    let mut calls = 0;
    let rec = bench::measure(
        &opts,
        &template(BenchPath::CpuFast),
        Some((&reference, &mut || wgpu_mlp::cpu::forward(&m, &x))),
        &mut || {
            calls += 1;
            Ok(())
        },
    );
    assert_eq!(calls, 4);
    assert_eq!(rec.stats.unwrap().runs, 3);
    assert_eq!(rec.checked_rows, Some(4));
    assert!(rec.error.is_none());
}

// ---------------------------------------------------------------------------------------------
// Reports: markdown, JSON, SVG

fn stats(ms: f64) -> Option<Stats> {
    Stats::from_ms(&[ms, ms * 0.9, ms * 1.2])
}

fn sample_report() -> Report {
    let rec = |workload: &str, size: Option<usize>, batch, path, ms: Option<f64>| Record {
        workload: workload.into(),
        size,
        batch,
        path,
        flops: 2 * batch as u64 * 100 * 100,
        stats: ms.and_then(stats),
        error: ms
            .is_none()
            .then(|| "wrong result at [0, 1]: got \"x\" | bad".to_string()),
        checked_rows: Some(batch),
        max_abs_err: Some(1e-7),
        adapter: "llvmpipe \"test\"".into(),
        backend: "Vulkan".into(),
        runs_requested: 3,
        kernels: path
            .is_gpu()
            .then(|| "windowed, windowed, windowed".to_string()),
        bytes: (path == BenchPath::GpuE2e).then_some(batch as u64 * 3176),
        transfer_floor: (path == BenchPath::GpuE2e).then(|| stats(0.1)).flatten(),
        transfers_alone: (path == BenchPath::GpuE2e).then(|| stats(0.12)).flatten(),
    };
    let mut records = Vec::new();
    for (b, gpu_ms) in [(1usize, 1.0), (64, 2.0), (1024, 10.0)] {
        records.push(rec(
            "mnist",
            None,
            b,
            BenchPath::CpuReference,
            Some(b as f64),
        ));
        records.push(rec(
            "mnist",
            None,
            b,
            BenchPath::CpuFast,
            Some(b as f64 / 50.0),
        ));
        records.push(rec("mnist", None, b, BenchPath::GpuE2e, Some(gpu_ms)));
        records.push(rec(
            "mnist",
            None,
            b,
            BenchPath::GpuResident,
            Some(gpu_ms / 2.0),
        ));
    }
    for n in [256usize, 512] {
        records.push(rec("gemm", Some(n), n, BenchPath::CpuFast, Some(1.0)));
        records.push(rec("gemm", Some(n), n, BenchPath::GpuE2e, None));
    }
    Report {
        crate_version: "0.1.0".into(),
        date: "2025-01-01 00:00 UTC".into(),
        cpu: "Test CPU <x>".into(),
        threads: 2,
        cpu_fast: "the crate's CPU path (2 threads, avx512 kernels)".into(),
        load_avg: Some((1.5, 2.0)),
        adapter: Some(AdapterSummary {
            name: "llvmpipe \"test\"".into(),
            backend: "Vulkan".into(),
            device_type: "Cpu".into(),
            driver: "Mesa".into(),
        }),
        adapter_error: None,
        settings: Settings {
            mode: "quick".into(),
            warmup: 1,
            warmup_s: 0.3,
            runs: 3,
            min_runs: 3,
            budget_s: Some(5.0),
        },
        tolerance: Tolerance::default(),
        records,
    }
}

#[test]
fn speedups_are_cpu_over_gpu() {
    let r = sample_report();
    let gpu = &r.records[2]; // mnist b1 gpu-e2e: 1 ms; cpu-reference 1 ms, cpu-fast 0.02 ms
    assert_eq!(r.speedup(gpu, BenchPath::CpuReference), Some(1.0));
    assert!((r.speedup(gpu, BenchPath::CpuFast).unwrap() - 0.02).abs() < 1e-12);
    assert_eq!(r.speedup(&r.records[0], BenchPath::CpuFast), None);
    // An error row has no speedup.
    let err = r.records.last().unwrap();
    assert_eq!(r.speedup(err, BenchPath::CpuFast), None);
}

#[test]
fn markdown_table_has_every_row_and_shows_errors() {
    let md = sample_report().to_markdown();
    assert!(
        md.contains("| workload | shape | path | median ms |"),
        "{md}"
    );
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| mnist |")).count(),
        12
    );
    assert!(md.contains("| gemm | 256×256×256 | gpu-e2e | **error**: wrong result"));
    // The pipe inside the error message is escaped, so the row keeps its columns.
    assert!(md.contains("\\| bad"), "{md}");
    assert!(md.contains("software adapter"));
    assert!(md.contains("1-minute load average before / after the run: 1.50 / 2.00 (on 2"));
    assert!(md.contains("| mnist | b1 | gpu-e2e | 1.00 |"), "{md}");
    assert!(
        md.contains(
            "Linear kernels on the GPU: mnist b1: windowed, windowed, windowed; mnist b64:"
        ),
        "{md}"
    );
    // The transfer check: e2e − resident (1.0 − 0.5), the transfers alone against the floor.
    assert!(
        md.contains("| mnist b1 | 3176 | 0.500 | 0.120 | 0.100 | 1.20× |"),
        "{md}"
    );
}

#[test]
fn json_has_the_required_fields_and_parses() {
    let report = sample_report();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    for key in [
        "crate_version",
        "cpu",
        "threads",
        "cpu_fast",
        "adapter",
        "backend",
        "device_type",
        "load_avg_1min",
        "records",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    let records = json["records"].as_array().unwrap();
    assert_eq!(records.len(), report.records.len());
    for r in records {
        for key in [
            "workload",
            "size",
            "batch",
            "path",
            "median_ms",
            "min_ms",
            "max_ms",
            "runs",
            "gflops",
            "samples_per_s",
            "speedup_vs_cpu_reference",
            "speedup_vs_cpu_fast",
            "adapter",
            "backend",
            "kernels",
            "bytes_moved",
            "transfer_floor_ms",
            "transfers_alone_ms",
            "error",
        ] {
            assert!(r.get(key).is_some(), "{key} in {r}");
        }
    }
    assert_eq!(records[0]["path"], "cpu-reference");
    assert!(records[0]["size"].is_null() && records[0]["batch"] == 1);
    assert_eq!(records[12]["size"], 256);
    // An error row: no figures, the message kept as it was.
    let err = records.last().unwrap();
    assert!(err["median_ms"].is_null() && err["gflops"].is_null());
    assert!(err["error"].as_str().unwrap().contains(r#"got "x""#));
    // An empty report is still valid JSON.
    let empty = Report {
        records: vec![],
        adapter: None,
        adapter_error: Some("no adapter".into()),
        ..report
    };
    serde_json::from_str::<serde_json::Value>(&empty.to_json()).unwrap();
}

#[test]
fn svg_is_well_formed_and_names_every_series() {
    let svg = bench::svg(&sample_report());
    assert!(svg.starts_with("<svg"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
    for name in ["cpu-reference", "cpu-fast", "gpu-e2e", "gpu-resident"] {
        assert!(svg.contains(name), "{name}");
    }
    assert!(svg.contains("batch size") && svg.contains("M = N = K"));
    // Text is escaped.
    assert!(svg.contains("Test CPU &lt;x&gt;") && !svg.contains("<x>"));
    xml_check::balanced(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    // Every coordinate is a number.
    assert!(!svg.contains("NaN") && !svg.contains("inf"));

    // No figures at all still draws a valid frame.
    let empty = Report {
        records: vec![],
        ..sample_report()
    };
    let svg = bench::svg(&empty);
    xml_check::balanced(&svg).unwrap();
    assert!(svg.contains("no data"));
}

/// A CPU-only run end to end: two tiny rows, no GPU needed.
#[test]
fn cpu_only_run_produces_checked_records() {
    let opts = BenchOptions {
        workloads: vec![Workload::Seed],
        paths: vec![BenchPath::CpuReference, BenchPath::CpuFast],
        warmup: 0,
        runs: 2,
        ..BenchOptions::default()
    };
    let report = bench::run(&opts).unwrap();
    assert!(report.adapter.is_none() && report.adapter_error.is_none());
    assert_eq!(report.records.len(), 2);
    assert!(
        report
            .records
            .iter()
            .all(|r| r.stats.is_some_and(|s| s.runs == 2))
    );
    assert_eq!(report.records[1].checked_rows, Some(1));
    assert_eq!(report.settings.mode, "custom");
    assert_eq!(report.crate_version, env!("CARGO_PKG_VERSION"));
    assert!(report.threads >= 1 && !report.cpu.is_empty());
    serde_json::from_str::<serde_json::Value>(&report.to_json()).unwrap();
}

/// The train workload on the CPU: one optimizer step per timed run, the first step of cpu-fast
/// checked against the reference's, FLOPs per product computed, and its own plot panel.
#[test]
fn cpu_only_train_run_checks_the_first_step() {
    let opts = BenchOptions {
        workloads: vec![Workload::Train],
        batches: Some(vec![3]),
        paths: vec![BenchPath::CpuReference, BenchPath::CpuFast],
        warmup: 0,
        runs: 2,
        ..BenchOptions::default()
    };
    let report = bench::run(&opts).unwrap();
    assert_eq!(report.records.len(), 2);
    for r in &report.records {
        assert_eq!((r.workload.as_str(), r.batch), ("train", 3));
        assert!(r.stats.is_some_and(|s| s.runs == 2), "{r:?}");
        assert_eq!(r.flops, bench::step_flops(&[784, 512, 512, 10], 3));
    }
    let fast = &report.records[1];
    assert_eq!(fast.path, BenchPath::CpuFast);
    assert_eq!(fast.checked_rows, Some(3));
    assert!(
        fast.max_abs_err.is_some_and(|e| e > 0.0 && e < 1e-4),
        "{fast:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["records"][1]["workload"], "train");
    assert_eq!(json["records"][1]["path"], "cpu-fast");
    assert!(json["records"][1]["median_ms"].as_f64().unwrap() > 0.0);
    let svg = bench::svg(&report);
    assert!(svg.contains("train step"));
    xml_check::balanced(&svg).unwrap();
    assert!(report.to_markdown().contains("one optimizer step"));
}

/// Checks that every element of an XML document is closed in order (no DTDs or CDATA needed).
mod xml_check {
    pub fn balanced(s: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>').ok_or("unclosed tag")?;
            let tag = &after[..close];
            rest = &after[close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(top) if top == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else if !tag.ends_with('/') && !tag.starts_with('?') && !tag.starts_with('!') {
                let name = tag.split_whitespace().next().ok_or("empty tag")?;
                stack.push(name.to_string());
            }
            if !tag.matches('"').count().is_multiple_of(2) {
                return Err(format!("unbalanced quotes in <{tag}>"));
            }
        }
        if stack.is_empty() {
            Ok(())
        } else {
            Err(format!("unclosed elements: {stack:?}"))
        }
    }
}

#[test]
fn the_report_says_whether_the_gpu_kernels_used_subgroups() {
    // The subgroup path is much faster on lavapipe (docs/KERNELS.md), so a figure must say which
    // path produced it.
    for subgroups in [true, false] {
        let opts = BenchOptions {
            workloads: vec![Workload::Roundtrip],
            paths: vec![BenchPath::GpuResident],
            warmup: 0,
            runs: 1,
            subgroups,
            ..BenchOptions::default()
        };
        let report = bench::run(&opts).unwrap();
        let gpu = wgpu_mlp::gpu::GpuContext::new(&wgpu_mlp::gpu::GpuOptions {
            subgroups,
            ..Default::default()
        })
        .unwrap();
        let expected = if gpu.uses_subgroups() {
            "GPU kernels with subgroups"
        } else {
            "GPU kernels without subgroups"
        };
        assert!(
            report.settings.mode.ends_with(expected),
            "mode {:?} for subgroups = {subgroups}",
            report.settings.mode
        );
        assert!(report.records.iter().all(|r| r.error.is_none()));
    }
}
