//! The fast CPU path (`cpu::CpuMlp`) against the CPU reference: every activation and module, odd
//! shapes, batch 1 and large batches, extreme magnitudes, NaN and ±inf; the real PyTorch models
//! against PyTorch's float64 forward; results that do not depend on the thread count or the batch.
//!
//! Tolerance: |a − e| ≤ 1e-5 + 1e-5·|e| against the reference for inputs of order 1 (f32 FMA
//! chains over up to a few hundred terms, then f32 epilogues: a few ulps); for the PyTorch models,
//! the rtol 1e-4, atol 1e-5. NaN only matches NaN, infinities only themselves.

mod common;

use common::{assert_close, input, model};
use wgpu_mlp::cpu::{self, CpuMlp};
use wgpu_mlp::io::{npy, safetensors as st};
use wgpu_mlp::{Activation, BatchNorm1d, LayerNorm, LayerSpec, Linear, Matrix, Mlp, Module, PRelu};

fn check(m: &Mlp, x: &Matrix, rtol: f64, atol: f64, what: &str) {
    let got = CpuMlp::new(m).unwrap().forward(x).unwrap();
    let want = cpu::forward_f64(m, x).unwrap();
    assert_close(got.as_slice(), &want, rtol, atol, what);
}

#[test]
fn every_activation_and_module_matches_the_reference() {
    for act in Activation::ALL {
        let m = model(&[17, 33, 7], &[act, act], 5);
        for batch in [1, 3, 64, 65] {
            check(
                &m,
                &input(batch, 17, batch as u64, 2.0),
                1e-5,
                1e-5,
                &format!("{act} b{batch}"),
            );
        }
    }
    // Norms, PReLU, dropout and functions between the layers.
    let bn = BatchNorm1d::new(
        common::random_vec(31, 1, -1.0, 1.0),
        common::random_vec(31, 2, 0.5, 2.0),
        Some(common::random_vec(31, 3, 0.5, 1.5)),
        Some(common::random_vec(31, 4, -0.5, 0.5)),
        1e-5,
    )
    .unwrap();
    let m = Mlp::builder(13)
        .layer(31, Activation::Identity)
        .module(Module::BatchNorm1d(bn))
        .module(Module::PRelu(
            PRelu::new(common::random_vec(31, 5, 0.0, 0.5)).unwrap(),
        ))
        .module(Module::Dropout(0.3))
        .layer(257, Activation::Identity)
        .module(Module::LayerNorm(
            LayerNorm::new(257, Some(common::random_vec(257, 6, 0.5, 1.5)), None, 1e-3).unwrap(),
        ))
        .module(Module::Function(Activation::Gelu))
        .layer(9, Activation::LogSoftmax)
        .seed(9)
        .build()
        .unwrap();
    for batch in [1, 7, 200] {
        check(
            &m,
            &input(batch, 13, 40 + batch as u64, 3.0),
            1e-5,
            1e-5,
            &format!("mixed b{batch}"),
        );
    }
}

#[test]
fn shapes_off_every_tile_and_large_batches() {
    for (i, o) in [
        (1, 1),
        (3, 7),
        (31, 33),
        (33, 31),
        (257, 3),
        (784, 10),
        (7, 257),
    ] {
        let m = Mlp::builder(i)
            .layer_spec(LayerSpec::new(o, Activation::Identity).no_bias())
            .layer(5, Activation::Relu)
            .seed(i as u64)
            .build()
            .unwrap();
        for batch in [1, 2, 5, 63, 64, 65, 1000] {
            check(
                &m,
                &input(batch, i, (i * o + batch) as u64, 1.0),
                1e-5,
                1e-5,
                &format!("{i}→{o} b{batch}"),
            );
        }
    }
}

#[test]
fn extremes_nan_and_infinity_propagate_as_on_the_reference() {
    let m = model(&[4, 6, 3], &[Activation::Relu, Activation::Softmax], 2);
    let x = Matrix::from_rows(&[
        vec![1e4, -1e4, 3e3, 0.5],
        vec![f32::NAN, 0.0, 0.0, 0.0],
        vec![f32::INFINITY, 1.0, 2.0, 3.0],
        vec![f32::NEG_INFINITY, 1.0, 2.0, 3.0],
        vec![1e-40, -1e-45, 0.0, -0.0],
    ])
    .unwrap();
    check(&m, &x, 1e-5, 1e-5, "extremes");
    let got = CpuMlp::new(&m).unwrap().forward(&x).unwrap();
    assert!(
        got.row(1).iter().all(|v| v.is_nan()),
        "a NaN input makes its row NaN"
    );
    // Products past f32's range are infinite, as in the reference (and PyTorch).
    let big = Mlp::new(vec![Module::Linear(
        Linear::new(4, 1, vec![3e38; 4], None).unwrap(),
    )])
    .unwrap();
    let y = CpuMlp::new(&big)
        .unwrap()
        .forward(&Matrix::new(1, 4, vec![1.0; 4]).unwrap())
        .unwrap();
    assert_eq!(y.as_slice(), [f32::INFINITY]);
}

#[test]
fn results_do_not_depend_on_threads_or_batch() {
    let m = wgpu_mlp::bench::Workload::Mnist.model(0).unwrap();
    let x = input(300, 784, 1, 1.0);
    let one = CpuMlp::with_threads(&m, 1).unwrap().forward(&x).unwrap();
    for threads in [2, 3, 5] {
        let fast = CpuMlp::with_threads(&m, threads).unwrap();
        assert_eq!(fast.threads(), threads.min(fast.threads()));
        assert_eq!(fast.forward(&x).unwrap(), one, "{threads} threads");
    }
    // Each row alone equals the row in the batch.
    let fast = CpuMlp::new(&m).unwrap();
    for r in [0, 63, 64, 299] {
        let alone = fast
            .forward(&Matrix::new(1, 784, x.row(r).to_vec()).unwrap())
            .unwrap();
        assert_eq!(alone.as_slice(), one.row(r), "row {r}");
    }
    // Slices, and errors as values.
    let mut out = vec![0.0; 300 * 10];
    fast.forward_into(x.as_slice(), 300, &mut out).unwrap();
    assert_eq!(out, one.as_slice());
    assert!(fast.forward_slice(&x.as_slice()[..10], 300).is_err());
    assert!(fast.forward(&Matrix::zeros(2, 5)).is_err());
    assert_eq!(
        fast.forward(&Matrix::zeros(0, 784)).unwrap().shape(),
        [0, 10]
    );
    assert!(CpuMlp::with_threads(&m, 0).is_err());
}

#[test]
fn real_pytorch_models_match_pytorch_float64() {
    let dir = format!("{}/tests/data/models", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(case) = name.strip_suffix(".meta.safetensors") else {
            continue;
        };
        if case.starts_with("nested_functional_") {
            continue;
        }
        let m = st::load(&path, None, None).unwrap();
        let x = npy::read(format!("{dir}/{case}.x.npy")).unwrap();
        let y64 = npy::read_f64(format!("{dir}/{case}.y64.npy")).unwrap().data;
        let got = CpuMlp::new(&m).unwrap().forward(&x).unwrap();
        assert_close(got.as_slice(), &y64, 1e-4, 1e-5, case);
        n += 1;
    }
    assert_eq!(n, 13);
}
