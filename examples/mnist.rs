//! An MNIST-sized classifier (784 → 512 ReLU → 512 ReLU → 10 softmax) on the GPU: a batch of 64
//! random "images", the predicted classes, and the largest difference from the CPU reference.
//!
//! `cargo run --release --example mnist` (choose the adapter with WGPU_BACKEND / WGPU_ADAPTER_NAME)
use std::time::Instant;

use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions};
use wgpu_mlp::{Activation, Generator, Matrix, Mlp, cpu};

fn main() -> Result<(), wgpu_mlp::Error> {
    let model = Mlp::builder(784)
        .layer(512, Activation::Relu)
        .layer(512, Activation::Relu)
        .layer(10, Activation::Softmax)
        .seed(0)
        .build()?;
    // Pixel intensities in [0, 1), like normalised MNIST.
    let batch = 64;
    let x = Matrix::new(batch, 784, Generator::new(1).rand(batch * 784))?;

    let ctx = GpuContext::new(&GpuOptions::default())?;
    let a = ctx.adapter();
    println!("adapter: {} ({}, {})", a.name, a.backend, a.device_type);
    let gpu = GpuMlp::new(&ctx, &model)?;
    gpu.forward(&x)?; // warm-up: first use compiles nothing more, but touches every buffer

    let t = Instant::now();
    let probs = gpu.forward(&x)?;
    let gpu_ms = t.elapsed().as_secs_f64() * 1e3;
    let reference = cpu::forward(&model, &x)?;

    let classes: Vec<usize> = (0..batch)
        .map(|r| {
            let row = probs.row(r);
            (0..row.len())
                .max_by(|&i, &j| row[i].total_cmp(&row[j]))
                .unwrap_or(0)
        })
        .collect();
    let max_diff = probs
        .as_slice()
        .iter()
        .zip(reference.as_slice())
        .map(|(g, c)| (g - c).abs())
        .fold(0.0f32, f32::max);
    println!("first 16 predicted classes: {:?}", &classes[..16]);
    println!("GPU forward of {batch} samples: {gpu_ms:.2} ms; max |GPU − CPU| = {max_diff:e}");
    Ok(())
}
