//! Times the fast CPU forward pass (`wgpu_mlp::cpu`) on the four workloads of
//! `docs/CPU.md`, or the `matrixmultiply` baseline on the same ones:
//!
//! - mnist 784-512-512-10 (ReLU, ReLU, softmax) at batch 1, 64 and 1024;
//! - wide 2048×3 (2048→2048 ReLU, three times) at batch 1024.
//!
//! Activations run in the epilogue callback (plain scalar loops). Buffers are allocated once, as
//! a model runner would keep them. Prints one line per workload:
//! `<impl> <workload> <median ms> <min ms> <max ms> <runs>`, the format of
//! `scripts/cpu_fast_numpy.py`, so that `scripts/cpu_fast_compare.sh` can alternate them.
//!
//! ```text
//! cargo run --release --example cpu_fast_bench -- [--impl fast|mm] [--kernel avx512|avx2|portable]
//!     [--threads N] [--budget SECONDS] [--only WORKLOAD] [--batches B1,B2,..]
//! ```

use std::hint::black_box;
use std::time::Instant;

use wgpu_mlp::Linear;
use wgpu_mlp::cpu::{Kernel, PackedLinear, Threads};

#[derive(Clone, Copy)]
enum Act {
    Relu,
    Softmax,
}

fn relu(v: &mut [f32]) {
    for x in v {
        // A select, not f32::max: NaN propagates.
        *x = if *x < 0.0 { 0.0 } else { *x };
    }
}

fn softmax_rows(v: &mut [f32], n: usize) {
    for row in v.chunks_exact_mut(n) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut s = 0.0;
        for x in row.iter_mut() {
            *x = (*x - m).exp();
            s += *x;
        }
        for x in row.iter_mut() {
            *x /= s;
        }
    }
}

fn apply(act: Act, v: &mut [f32], n: usize) {
    match act {
        Act::Relu => relu(v),
        Act::Softmax => softmax_rows(v, n),
    }
}

/// xorshift64*: weights uniform in ±1/√in as PyTorch's default init, inputs in [-1, 1).
struct Rng(u64);

impl Rng {
    fn sym(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let u = (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u32 << 24) as f32;
        2.0 * u - 1.0
    }

    fn linear(&mut self, k: usize, n: usize) -> Linear {
        let s = 1.0 / (k as f32).sqrt();
        let w = (0..n * k).map(|_| s * self.sym()).collect();
        let b = (0..n).map(|_| s * self.sym()).collect();
        Linear::new(k, n, w, Some(b)).expect("valid layer")
    }
}

/// One implementation of a forward pass, buffers included.
trait Forward {
    fn run(&mut self, x: &[f32], rows: usize) -> &[f32];
}

struct Fast<'a> {
    layers: Vec<(PackedLinear, Act)>,
    bufs: [Vec<f32>; 2],
    threads: &'a Threads,
}

impl Forward for Fast<'_> {
    fn run(&mut self, x: &[f32], rows: usize) -> &[f32] {
        let [a, b] = &mut self.bufs;
        for (i, (layer, act)) in self.layers.iter().enumerate() {
            let n = layer.out_features();
            let (src, dst): (&[f32], &mut Vec<f32>) = match i {
                0 => (x, a),
                _ if i % 2 == 1 => (a.as_slice(), b),
                _ => (b.as_slice(), a),
            };
            dst.resize(rows * n, 0.0);
            let act = *act;
            layer.forward(src, rows, dst, self.threads, &|_, block| {
                apply(act, block, n)
            });
        }
        if self.layers.len() % 2 == 1 { a } else { b }
    }
}

/// The `matrixmultiply` baseline (the harness's cpu-fast path before 2026-12-01): bias copied into y,
/// threaded sgemm with beta = 1 reading the weight transposed through its strides, activation.
struct Mm {
    layers: Vec<(Linear, Act)>,
    bufs: [Vec<f32>; 2],
}

impl Forward for Mm {
    fn run(&mut self, x: &[f32], rows: usize) -> &[f32] {
        let [a, b] = &mut self.bufs;
        for (i, (l, act)) in self.layers.iter().enumerate() {
            let (k, n) = (l.in_features(), l.out_features());
            let (src, dst): (&[f32], &mut Vec<f32>) = match i {
                0 => (x, a),
                _ if i % 2 == 1 => (a.as_slice(), b),
                _ => (b.as_slice(), a),
            };
            dst.resize(rows * n, 0.0);
            for row in dst.chunks_exact_mut(n) {
                row.copy_from_slice(l.bias().expect("bias"));
            }
            assert!(src.len() == rows * k && l.weight().len() == n * k);
            // SAFETY: A = src [rows, k] strides (k, 1); B = Wᵀ [k, n] read from W [n, k] with
            // strides (1, k); C = dst [rows, n] strides (n, 1); all in bounds (asserted and
            // resized above), dst aliases neither.
            unsafe {
                matrixmultiply::sgemm(
                    rows,
                    k,
                    n,
                    1.0,
                    src.as_ptr(),
                    k as isize,
                    1,
                    l.weight().as_ptr(),
                    1,
                    k as isize,
                    1.0,
                    dst.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
            apply(*act, dst, n);
        }
        if self.layers.len() % 2 == 1 { a } else { b }
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .map(|i| args.get(i + 1).expect("flag value").clone())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let imp = arg(&args, "--impl").unwrap_or_else(|| "fast".into());
    let budget: f64 = arg(&args, "--budget").map_or(1.0, |s| s.parse().expect("seconds"));
    let only = arg(&args, "--only");
    let kernel = match arg(&args, "--kernel").as_deref() {
        None => Kernel::best(),
        Some(name) => *Kernel::ALL
            .iter()
            .find(|k| k.name() == name)
            .expect("--kernel avx512|avx2|portable"),
    };
    let threads = match arg(&args, "--threads") {
        Some(t) => Threads::new(t.parse().expect("thread count")),
        None => Threads::default(),
    };
    let label = match imp.as_str() {
        "fast" => format!("fast-{}-t{}", kernel.name(), threads.count()),
        "mm" => "matrixmultiply".to_string(),
        other => panic!("--impl fast|mm, not {other}"),
    };

    let mut rng = Rng(0x853c_49e6_748f_ea9b);
    let mnist: Vec<(Linear, Act)> = vec![
        (rng.linear(784, 512), Act::Relu),
        (rng.linear(512, 512), Act::Relu),
        (rng.linear(512, 10), Act::Softmax),
    ];
    let wide: Vec<(Linear, Act)> = (0..3)
        .map(|_| (rng.linear(2048, 2048), Act::Relu))
        .collect();
    let mut workloads = vec![
        ("mnist-b1".to_string(), &mnist, 1),
        ("mnist-b64".to_string(), &mnist, 64),
        ("mnist-b1024".to_string(), &mnist, 1024),
        ("wide-b1024".to_string(), &wide, 1024),
    ];
    // --batches 2,5,8: the mnist model at other batch sizes instead (for tuning thresholds).
    if let Some(list) = arg(&args, "--batches") {
        workloads = list
            .split(',')
            .map(|b| (format!("mnist-b{b}"), &mnist, b.parse().expect("batch")))
            .collect();
    }
    for (name, model, rows) in workloads {
        if only.as_deref().is_some_and(|o| o != name.as_str()) {
            continue;
        }
        let k = model[0].0.in_features();
        let x: Vec<f32> = (0..rows * k).map(|_| rng.sym()).collect();
        let mut imp: Box<dyn Forward + '_> = if imp == "fast" {
            Box::new(Fast {
                layers: model
                    .iter()
                    .map(|(l, a)| (PackedLinear::with_kernel(l, kernel).expect("kernel"), *a))
                    .collect(),
                bufs: [Vec::new(), Vec::new()],
                threads: &threads,
            })
        } else {
            Box::new(Mm {
                layers: model.clone(),
                bufs: [Vec::new(), Vec::new()],
            })
        };
        for _ in 0..3 {
            black_box(imp.run(&x, rows));
        }
        let mut times = Vec::new();
        let start = Instant::now();
        while (start.elapsed().as_secs_f64() < budget || times.len() < 5) && times.len() < 100_000 {
            let t0 = Instant::now();
            black_box(imp.run(black_box(&x), rows));
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{label} {name} {:.4} {:.4} {:.4} {}",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1],
            times.len()
        );
    }
}
