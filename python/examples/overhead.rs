//! The Rust side of the binding's overhead measurement (python/bench/overhead.sh runs it
//! alternated with python/bench/overhead.py): the harness's mnist workload (784 → 512 → 512 → 10,
//! ReLU, ReLU, softmax, PyTorch's default init with seed 0), saved where the Python side loads
//! it, and timed through the Rust API a Rust user calls (`forward_slice`: input slice in, a new
//! output vector out) at batch 1 and 1024 on the fast CPU path and the GPU.
//!
//! `cargo run --release --example overhead -- MODEL_PATH [CALLS]` prints one line per case:
//! `rust DEVICE BATCH MEDIAN_MS MIN_MS` (the minimum is the figure least moved by other load on
//! the machine).

use std::time::Instant;

use wgpu_mlp::cpu::CpuMlp;
use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions};
use wgpu_mlp::{Activation, Mlp, io};

fn main() -> wgpu_mlp::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "mnist.safetensors".into());
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(200);
    let model = Mlp::builder(784)
        .layer(512, Activation::Relu)
        .layer(512, Activation::Relu)
        .layer(10, Activation::Softmax)
        .seed(0)
        .build()?;
    io::safetensors::save_model(&path, &model)?;
    let cpu = CpuMlp::new(&model)?;
    let ctx = GpuContext::new(&GpuOptions::default())?;
    let gpu = GpuMlp::new(&ctx, &model)?;
    // The fixed cost of a call: a 16 → 16 Linear layer at batch 1, whose compute is a few
    // hundred nanoseconds; what Python adds shows up here undiluted.
    let tiny = Mlp::builder(16)
        .layer(16, Activation::Identity)
        .seed(0)
        .build()?;
    io::safetensors::save_model(format!("{path}.tiny"), &tiny)?;
    let tiny = CpuMlp::new(&tiny)?;
    let x16 = [0.5f32; 16];
    let (med, min) = time_ms(runs * 100, || tiny.forward_slice(&x16, 1).map(drop))?;
    println!("rust tiny-cpu 1 {med:.5} {min:.5}");
    for batch in [1usize, 1024] {
        // The same input as the Python side: x[i] = sin(i) (any fixed data would do).
        let x: Vec<f32> = (0..batch * 784).map(|i| (i as f32).sin()).collect();
        let runs = if batch == 1 { runs * 10 } else { runs };
        let (med, min) = time_ms(runs, || cpu.forward_slice(&x, batch).map(drop))?;
        println!("rust cpu {batch} {med:.5} {min:.5}");
        let (med, min) = time_ms(runs, || gpu.forward_slice(&x, batch).map(drop))?;
        println!("rust gpu {batch} {med:.5} {min:.5}");
    }
    Ok(())
}

/// Median and minimum of `runs` timed calls after `runs / 10 + 3` untimed ones, in milliseconds.
fn time_ms(
    runs: usize,
    mut f: impl FnMut() -> wgpu_mlp::Result<()>,
) -> wgpu_mlp::Result<(f64, f64)> {
    for _ in 0..runs / 10 + 3 {
        f()?;
    }
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok((t[t.len() / 2], t[0]))
}
