//! The textbook 3 → 3 sigmoid → 2 network on the GPU, checked against the CPU reference.
//!
//! `cargo run --example seed`
use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions};
use wgpu_mlp::{Activation, Matrix, Mlp, cpu};

fn main() -> Result<(), wgpu_mlp::Error> {
    let model = Mlp::builder(3)
        .layer(3, Activation::Sigmoid)
        .layer(2, Activation::Identity)
        .seed(42) // the same weights as torch.manual_seed(42) + nn.Linear(3,3), nn.Linear(3,2)
        .build()?;
    let x = Matrix::new(1, 3, vec![1.0, 2.0, 3.0])?;

    let ctx = GpuContext::new(&GpuOptions::default())?;
    let adapter = ctx.adapter();
    println!(
        "adapter: {} ({}, {})",
        adapter.name, adapter.backend, adapter.device_type
    );
    let gpu = GpuMlp::new(&ctx, &model)?;
    let y_gpu = gpu.forward(&x)?;
    let y_cpu = cpu::forward(&model, &x)?;
    println!("GPU: {:?}", y_gpu.as_slice());
    println!("CPU: {:?}", y_cpu.as_slice());
    println!("PyTorch (manual_seed 42): [0.3082, 0.5068]");
    Ok(())
}
