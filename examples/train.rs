//! Trains the primer's `MyModel` (Linear(4, 16) → torch.sigmoid → Linear(16, 3), xavier_normal_
//! on linear1.weight and kaiming_normal_ on linear2.weight) on a toy regression with Adam, in
//! shuffled batches as `DataLoader(shuffle=True, generator=torch.Generator().manual_seed(0))`
//! gives them, and prints the loss per epoch.
//!
//! `cargo run --example train`
use wgpu_mlp::data::EpochOrder;
use wgpu_mlp::train::{Backend, Loss, Optimizer, Reduction, Target, Trainer};
use wgpu_mlp::{Activation, Generator, Init, LayerSpec, Matrix, Mlp};

fn main() -> Result<(), wgpu_mlp::Error> {
    let model = Mlp::builder(4)
        .layer_spec(LayerSpec::new(16, Activation::Sigmoid).weight_init(Init::xavier_normal()))
        .layer_spec(LayerSpec::new(3, Activation::Identity).weight_init(Init::kaiming_normal()))
        .seed(0)
        .build()?;

    // 200 points of y = (x0 + x1, x2·x3, sin x0) with x ~ N(0, 1).
    let n = 200;
    let x = Generator::new(1).randn(n * 4);
    let y: Vec<f32> = x
        .chunks_exact(4)
        .flat_map(|r| [r[0] + r[1], r[2] * r[3], r[0].sin()])
        .collect();
    let (x, y) = (Matrix::new(n, 4, x)?, Target::Values(Matrix::new(n, 3, y)?));

    let mut trainer = Trainer::new(
        model,
        Loss::Mse,
        Reduction::Mean,
        Optimizer::adam(0.01),
        Backend::Cpu,
    )?;
    let mut order = EpochOrder::new(n, 16, Some(0), false)?;
    for epoch in 1..=20 {
        let losses = trainer.epoch(&x, &y, &mut order)?;
        let mean = losses.iter().sum::<f32>() / losses.len() as f32;
        println!("epoch {epoch:2}: mean loss {mean:.5}");
    }
    let trained: Mlp = trainer.into_model();
    println!("trained: {} parameters", trained.param_count());
    Ok(())
}
