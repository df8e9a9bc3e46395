//! burn 0.22's wgpu backend running wgpu-mlp's `train` workload step (src/bench/train.rs,
//! docs/BENCHMARKING.md "The train workload"): Linear(784→512) + ReLU → Linear(512→512) + ReLU
//! → Linear(512→10), CrossEntropyLoss (mean), SGD(lr=0.01, momentum=0.9, dampening 0,
//! no Nesterov), f32. One timed step = the batch uploaded (input and class targets, from host
//! vectors), forward, loss, backward, optimizer update, then the loss read back to the host as
//! an f32 and the device synchronised (so the update has run too), as PyTorch's
//! `loss.item()` and our gpu-e2e path.
//!
//! Usage: burn-train-step [--batch 64,1024] [--runs 10] [--warmup 3]
//! The graphics API comes from WGPU_BACKEND (vulkan, the default, or gl), pinned: it never
//! falls back to another. Per batch it prints the warm-up and timed steps and a summary on
//! stderr, and one JSON line on stdout:
//! {"impl":"burn-wgpu","batch":64,"median_ms":…,"min_ms":…,"max_ms":…,"runs":…,…}

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::wgpu::WgpuBackend;

const IN: usize = 784;
const HIDDEN: usize = 512;
const CLASSES: usize = 10;
const LR: f64 = 0.01;

#[derive(Module, Debug)]
struct Mlp {
    l1: Linear,
    l2: Linear,
    l3: Linear,
    relu: Relu,
}

impl Mlp {
    fn new(device: &Device) -> Self {
        // burn's default Linear init is PyTorch's (uniform ±1/sqrt(fan_in)).
        Self {
            l1: LinearConfig::new(IN, HIDDEN).init(device),
            l2: LinearConfig::new(HIDDEN, HIDDEN).init(device),
            l3: LinearConfig::new(HIDDEN, CLASSES).init(device),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.relu.forward(self.l1.forward(x));
        let x = self.relu.forward(self.l2.forward(x));
        self.l3.forward(x)
    }
}

/// A small deterministic generator (splitmix64): the inputs need only be the same kind as the
/// harness's (uniform in [-1, 1), class indices uniform in 0..10), not the same numbers.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Args {
    batches: Vec<usize>,
    runs: usize,
    warmup: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        batches: vec![64, 1024],
        runs: 10,
        warmup: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--batch" => {
                args.batches = value.split(',').map(num).collect::<Result<_, _>>()?;
            }
            "--runs" => args.runs = num(&value)?,
            "--warmup" => args.warmup = num(&value)?,
            _ => return Err(format!("unknown flag {flag} (--batch, --runs, --warmup)")),
        }
    }
    if args.runs == 0 || args.batches.contains(&0) {
        return Err("--runs and every batch must be at least 1".into());
    }
    Ok(args)
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("burn-train-step: {e}");
        std::process::exit(2);
    });
    let requested = std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan".into());
    let api = match requested.to_ascii_lowercase().as_str() {
        "vulkan" => WgpuBackend::Vulkan,
        "gl" | "opengl" => WgpuBackend::Gl,
        other => {
            eprintln!("burn-train-step: WGPU_BACKEND={other}: use vulkan or gl");
            std::process::exit(2);
        }
    };
    let (device, setup) = Device::wgpu_options()
        .graphics_api(api)
        .init_with_setup()
        .unwrap_or_else(|e| {
            eprintln!("burn-train-step: no wgpu device on {requested}: {e}");
            std::process::exit(1);
        });
    let info = setup.adapter.get_info();
    let adapter = format!(
        "{} ({:?}, {:?}, driver {} {})",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    );
    eprintln!("# burn 0.22.1 wgpu backend (fusion, autotune) on {adapter}");
    let device = device.autodiff();
    device.seed(0);

    for &batch in &args.batches {
        let mut rng = SplitMix(0x5EED ^ batch as u64);
        let x: Vec<f32> = (0..batch * IN)
            .map(|_| (2.0 * rng.unit() - 1.0) as f32)
            .collect();
        let y: Vec<i64> = (0..batch)
            .map(|_| ((rng.unit() * CLASSES as f64) as i64).min(CLASSES as i64 - 1))
            .collect();

        let mut model = Mlp::new(&device);
        let mut optim = SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(0.9)
                    .with_dampening(0.0)
                    .with_nesterov(false),
            ))
            .init();
        let loss_fn = CrossEntropyLossConfig::new().init(&device);

        let mut step = |model: Mlp| -> (Mlp, f32) {
            let xs = Tensor::<2>::from_data(TensorData::new(x.clone(), [batch, IN]), &device);
            let ys = Tensor::<1, Int>::from_data(TensorData::new(y.clone(), [batch]), &device);
            let loss = loss_fn.forward(model.forward(xs), ys);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let model = optim.step(LR, model, grads);
            let value = loss.into_scalar::<f32>();
            device.sync().expect("device sync");
            (model, value)
        };

        let mut warm = Vec::new();
        for _ in 0..args.warmup {
            let t = Instant::now();
            let (m, loss) = step(model);
            model = m;
            warm.push((t.elapsed().as_secs_f64() * 1e3, loss));
        }
        let mut times = Vec::new();
        let mut last_loss = f32::NAN;
        for _ in 0..args.runs {
            let t = Instant::now();
            let (m, loss) = step(model);
            model = m;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            last_loss = loss;
        }
        if !last_loss.is_finite() {
            eprintln!("burn-train-step: b{batch}: the loss went non-finite ({last_loss})");
            std::process::exit(1);
        }
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|t| format!("{t:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let warm_ms: Vec<f64> = warm.iter().map(|w| w.0).collect();
        eprintln!(
            "# b{batch}: warm-up ms (untimed) {}; first loss {:.4}",
            fmt(&warm_ms),
            warm.first().map_or(f32::NAN, |w| w.1)
        );
        eprintln!(
            "# b{batch}: timed ms {}; last loss {last_loss:.4}",
            fmt(&times)
        );
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let (med, lo, hi) = (median(&sorted), sorted[0], sorted[sorted.len() - 1]);
        eprintln!(
            "burn-wgpu train b{batch}: median {med:.3} ms (range {lo:.3}–{hi:.3}), {} runs after {} warm-up",
            times.len(),
            args.warmup
        );
        println!(
            "{{\"impl\":\"burn-wgpu\",\"burn\":\"0.22.1\",\"workload\":\"train\",\"batch\":{batch},\"median_ms\":{med:.4},\"min_ms\":{lo:.4},\"max_ms\":{hi:.4},\"runs\":{},\"warmup\":{},\"adapter\":{:?},\"last_loss\":{last_loss}}}",
            times.len(),
            args.warmup,
            adapter
        );
    }
}
