//! Loads a model exported from PyTorch with `torch.onnx.export`, prints its torchsummary table
//! and runs a batch on the fast CPU path and, when there is an adapter, on the GPU, checking both
//! against the f64 reference.
//!
//! ```sh
//! cargo run --example onnx -- model.onnx [x.npy]
//! ```
//!
//! With no arguments it runs a small classifier from this repository's test data, exported by
//! PyTorch 2.15's dynamo exporter (`tests/data/models/seq_bn.dynamo.onnx`). Without an input
//! file the batch is 8 rows of random values. Choose the adapter with `WGPU_BACKEND` /
//! `WGPU_ADAPTER_NAME`.
use std::path::PathBuf;

use wgpu_mlp::gpu::{GpuContext, GpuMlp, GpuOptions};
use wgpu_mlp::{CpuMlp, Generator, Matrix, cpu, io, onnx, summary};

fn main() -> Result<(), wgpu_mlp::Error> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let path = args.next().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/models/seq_bn.dynamo.onnx")
    });
    // The architecture, the weights and the module names all come from the file.
    let model = onnx::load(&path)?;
    println!("{}", summary::summary(&model, -1));

    let x = match args.next() {
        Some(input) => io::read_matrix(input)?,
        None => {
            let rows = 8;
            let values = Generator::new(0).randn(rows * model.in_features());
            Matrix::new(rows, model.in_features(), values)?
        }
    };
    model.check_input(x.rows(), x.cols())?;
    let reference = cpu::forward(&model, &x)?;
    let max_diff = |y: &Matrix| {
        y.as_slice()
            .iter()
            .zip(reference.as_slice())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
    };

    let fast = CpuMlp::new(&model)?.forward(&x)?;
    println!(
        "CPU: {} rows, max |fast - reference| = {:e}",
        fast.rows(),
        max_diff(&fast)
    );

    match GpuContext::new(&GpuOptions::default()) {
        Ok(ctx) => {
            let y = GpuMlp::new(&ctx, &model)?.forward(&x)?;
            let a = ctx.adapter();
            println!(
                "GPU ({}, {}): max |gpu - reference| = {:e}",
                a.name,
                a.backend,
                max_diff(&y)
            );
        }
        Err(e) => println!("GPU: not run ({e})"),
    }
    for r in 0..x.rows().min(4) {
        println!("row {r}: {:?}", fast.row(r));
    }
    Ok(())
}
