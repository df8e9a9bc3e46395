//! `cargo bench`: the benchmark workloads' kernels and forward passes under criterion, for
//! regression tracking. `wgpu-mlp bench` is the tool for reading CPU-against-GPU figures; this
//! keeps each measurement short (10 samples, about 2 s) so the whole run takes a few minutes.
//!
//! Every GPU output is checked against the f64 CPU reference before it is measured. Without a GPU
//! adapter the GPU benches are skipped with a note (`WGPU_BACKEND=vulkan|gl` picks one).

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};

use wgpu_mlp::bench::{Reference, Tolerance, Workload, random_input};
use wgpu_mlp::cpu::CpuMlp;
use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions};
use wgpu_mlp::{Matrix, Mlp};

/// (label, model, input) for a workload at a size (gemm) or batch.
fn case(workload: Workload, n: usize) -> (String, Mlp, Matrix) {
    let model = workload.model(n).expect("benchmark model");
    let label = match workload {
        Workload::Gemm => format!("gemm-{n}"),
        _ => format!("{}-b{n}", workload.name()),
    };
    let input = random_input(n, model.in_features()).expect("benchmark input");
    (label, model, input)
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

fn check(what: &str, model: &Mlp, input: &Matrix, output: &Matrix) {
    let reference = Reference::new(model, input).expect("reference");
    if let Err(e) = reference.check(output, Tolerance::default()) {
        panic!("{what}: {e}");
    }
}

fn cpu(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu-reference");
    configure(&mut group);
    for (workload, n) in [
        (Workload::Seed, 1),
        (Workload::Mnist, 1),
        (Workload::Gemm, 256),
    ] {
        let (label, model, input) = case(workload, n);
        group.bench_function(label, |b| {
            b.iter(|| wgpu_mlp::cpu::forward(black_box(&model), black_box(&input)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("cpu-fast");
    configure(&mut group);
    for (workload, n) in [(Workload::Mnist, 64), (Workload::Gemm, 512)] {
        let (label, model, input) = case(workload, n);
        let fast = CpuMlp::new(&model).expect("cpu-fast");
        check(
            &label,
            &model,
            &input,
            &fast.forward(&input).expect("cpu-fast"),
        );
        group.bench_function(label, |b| b.iter(|| fast.forward(black_box(&input))));
    }
    group.finish();
}

fn gpu(c: &mut Criterion) {
    let ctx = match GpuContext::new(&GpuOptions::default()) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("note: GPU benches skipped: {e}");
            return;
        }
    };
    let a = ctx.adapter();
    eprintln!(
        "GPU benches on {} ({}, {})",
        a.name, a.backend, a.device_type
    );

    let cases = [
        (Workload::Mnist, 64),
        (Workload::Gemm, 512),
        (Workload::Roundtrip, 1),
    ];
    let mut group = c.benchmark_group("gpu-e2e");
    configure(&mut group);
    for (workload, n) in cases {
        let (label, model, input) = case(workload, n);
        let gpu = GpuMlp::new(&ctx, &model).expect("upload");
        check(
            &label,
            &model,
            &input,
            &gpu.forward(&input).expect("gpu-e2e"),
        );
        group.bench_function(label, |b| b.iter(|| gpu.forward(black_box(&input))));
    }
    group.finish();

    let mut group = c.benchmark_group("gpu-resident");
    configure(&mut group);
    for (workload, n) in cases {
        let (label, model, input) = case(workload, n);
        let gpu = GpuMlp::new(&ctx, &model).expect("upload");
        gpu.prepare(&input).expect("prepare");
        gpu.run_prepared().expect("run_prepared");
        check(&label, &model, &input, &gpu.read_prepared().expect("read"));
        group.bench_function(label, |b| b.iter(|| gpu.run_prepared()));
    }
    group.finish();
}

criterion_group!(benches, cpu, gpu);
criterion_main!(benches);
