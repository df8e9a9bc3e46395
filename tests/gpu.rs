//! GPU forward pass against the CPU reference, on whatever adapter `WGPU_BACKEND` /
//! `WGPU_ADAPTER_NAME` select (CI runs this file on lavapipe and on llvmpipe).
//!
//! Tolerances. The GPU computes in f32 with fused multiply-adds; the reference is f64. A dot
//! product of K terms in f32 has a worst-case relative error near K·2⁻²⁴ of Σ|xᵢwᵢ|, typically
//! √K·2⁻²⁴. For the widths here (K ≤ 1000, inputs in [-1, 1], PyTorch-default weights, outputs of
//! order 1) that is below 1e-5; we allow |gpu − ref| ≤ 1e-4 + 1e-4·|ref| per layer stack, which is
//! still thousands of times smaller than any indexing or layout mistake would produce (those give
//! O(1) errors). Extremes (|x| up to 1e4) are checked relative to the magnitude, and NaN only
//! matches an expected NaN.

mod common;

use common::{
    assert_close, ctx, ctx_without_subgroups, forward_with, input, kernel_runs, model, random_vec,
};
use wgpu_mlp::gpu::{
    GpuContext, GpuMlp, GpuMlpOptions, GpuOptions, KernelMode, LinearKernel, WeightFormat, ops,
};
use wgpu_mlp::{Activation, Error, Layer, Linear, Matrix, Mlp, Module, cpu, io};

const RTOL: f64 = 1e-4;
const ATOL: f64 = 1e-4;

fn check_model(m: &Mlp, x: &Matrix, mode: KernelMode, what: &str) {
    let gpu = common::with_mode(ctx(), m, mode).unwrap();
    let y = gpu.forward(x).unwrap();
    assert_eq!(y.shape(), [x.rows(), m.out_features()], "{what}");
    let expected = cpu::forward_f64(m, x).unwrap();
    assert_close(y.as_slice(), &expected, RTOL, ATOL, what);
}

#[test]
fn every_activation_fused_and_separate() {
    for (i, act) in Activation::ALL
        .iter()
        .chain(&[Activation::LeakyRelu(0.2), Activation::Elu(0.5)])
        .enumerate()
    {
        for mode in [KernelMode::Fused, KernelMode::Separate] {
            // Odd widths, so padding lanes are exercised; inputs wide enough to reach the tails.
            let m = model(&[13, 37, 9], &[*act, *act], 100 + i as u64);
            let x = input(67, 13, i as u64, 3.0);
            check_model(&m, &x, mode, &format!("{act} {mode:?}"));
        }
    }
}

#[test]
fn random_networks_depths_widths_batches() {
    const WIDTHS: [usize; 8] = [1, 3, 7, 31, 33, 64, 257, 1000];
    const BATCHES: [usize; 4] = [1, 2, 63, 1025];
    let acts = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::LeakyRelu(0.01),
        Activation::Gelu,
    ];
    let mut case = 0u64;
    for depth in 1..=5 {
        for (bi, &batch) in BATCHES.iter().enumerate() {
            // Walk the width list with a stride so every width shows up as input, hidden and
            // output width across the cases.
            let sizes: Vec<usize> = (0..=depth)
                .map(|j| WIDTHS[(depth * 3 + bi * 5 + j * 3) % WIDTHS.len()])
                .collect();
            let mut layer_acts: Vec<Activation> =
                (0..depth).map(|j| acts[(j + bi) % acts.len()]).collect();
            if case.is_multiple_of(3) {
                *layer_acts.last_mut().unwrap() = Activation::Softmax;
            }
            let m = model(&sizes, &layer_acts, case);
            let x = input(batch, sizes[0], 1000 + case, 1.0);
            check_model(
                &m,
                &x,
                KernelMode::Fused,
                &format!("sizes {sizes:?} batch {batch}"),
            );
            case += 1;
        }
    }
}

const KERNELS: [LinearKernel; 6] = LinearKernel::ALL;

#[test]
fn every_linear_kernel_on_shapes_off_every_tile_size() {
    // Widths and batches around the block and tile sizes (4, 8, 16, 64, 128), so every kernel
    // meets partial vec4s, partial register blocks, partial k steps and partial tiles.
    let cases: [(&[usize], usize); 8] = [
        (&[1, 1], 1),
        (&[3, 7, 2], 3),
        (&[7, 31, 33], 7),
        (&[33, 129, 65], 31),
        (&[31, 257, 3], 33),
        (&[257, 63, 127], 129),
        (&[17, 200, 130], 257),
        (&[129, 33, 1], 1025),
    ];
    for kernel in KERNELS {
        for (i, &(sizes, batch)) in cases.iter().enumerate() {
            let acts: Vec<Activation> = (1..sizes.len())
                .map(|j| [Activation::Relu, Activation::Tanh][j % 2])
                .collect();
            let m = model(sizes, &acts, 300 + i as u64);
            let x = input(batch, sizes[0], 400 + i as u64, 2.0);
            for mode in [KernelMode::Fused, KernelMode::Separate] {
                let y = forward_with(&m, &x, mode, kernel);
                let expected = cpu::forward_f64(&m, &x).unwrap();
                let what = format!("{kernel} {mode:?} sizes {sizes:?} batch {batch}");
                assert_close(y.as_slice(), &expected, RTOL, ATOL, &what);
            }
        }
    }
}

#[test]
fn every_linear_kernel_at_extreme_magnitudes() {
    // |x| up to 1e4 through one identity layer of 300 inputs: products up to ~1e4 summed over
    // 300 terms; the f32 error bound scales with Σ|xᵢwᵢ|, so the tolerance is relative to it.
    let m = model(&[300, 70], &[Activation::Identity], 77);
    let x = input(130, 300, 78, 1e4);
    let expected = cpu::forward_f64(&m, &x).unwrap();
    let scale: f64 = x.as_slice().iter().map(|v| f64::from(v.abs())).sum::<f64>() / 130.0;
    for kernel in KERNELS {
        let y = forward_with(&m, &x, KernelMode::Fused, kernel);
        assert_close(
            y.as_slice(),
            &expected,
            0.0,
            scale * 1e-6,
            &format!("{kernel}"),
        );
    }
}

#[test]
fn kernel_names_parse_and_print() {
    for kernel in KERNELS {
        assert_eq!(kernel.to_string().parse::<LinearKernel>().unwrap(), kernel);
    }
    let err = "tiled32".parse::<LinearKernel>().unwrap_err().to_string();
    assert!(err.contains("expected auto, windowed"), "{err}");
}

#[test]
fn separate_kernels_on_random_networks() {
    for (case, sizes) in [vec![1, 1], vec![31, 33, 7], vec![257, 64, 3, 1]]
        .iter()
        .enumerate()
    {
        let acts: Vec<Activation> = (1..sizes.len())
            .map(|j| {
                if j == sizes.len() - 1 {
                    Activation::Softmax
                } else {
                    Activation::Silu
                }
            })
            .collect();
        let m = model(sizes, &acts, 7 + case as u64);
        for batch in [1, 63] {
            let x = input(batch, sizes[0], case as u64, 1.0);
            check_model(&m, &x, KernelMode::Separate, &format!("{sizes:?} b{batch}"));
        }
    }
}

#[test]
fn pytorch_fixtures_match_float64_outputs() {
    let cases = [
        (
            "seed_example",
            vec![Activation::Sigmoid, Activation::Identity],
        ),
        (
            "small_classifier",
            vec![Activation::Relu, Activation::Tanh, Activation::Softmax],
        ),
        (
            "leaky_regression",
            vec![Activation::LeakyRelu(0.1), Activation::Identity],
        ),
    ];
    for (name, acts) in cases {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
        let m =
            io::safetensors::load_model(format!("{dir}{name}.safetensors"), &acts, None).unwrap();
        let x = io::npy::read(format!("{dir}{name}.x.npy")).unwrap();
        let y64 = io::npy::read_f64(format!("{dir}{name}.y64.npy")).unwrap();
        for mode in [KernelMode::Fused, KernelMode::Separate] {
            let y = common::with_mode(ctx(), &m, mode)
                .unwrap()
                .forward(&x)
                .unwrap();
            // PyTorch's own f32 output differs from its f64 output by ~1e-7; so does ours.
            assert_close(y.as_slice(), &y64.data, 1e-5, 1e-6, name);
        }
    }
}

/// A one-layer identity model `y = x` (weight = I, no bias) followed by `act`, so the activation
/// sees exactly the values we choose.
fn passthrough(width: usize, act: Activation) -> Mlp {
    let mut w = vec![0.0f32; width * width];
    for i in 0..width {
        w[i * width + i] = 1.0;
    }
    Mlp::from_layers(vec![Layer {
        linear: Linear::new(width, width, w, None).unwrap(),
        activation: act,
    }])
    .unwrap()
}

/// f32 reference for one row through `act`, PyTorch's f32 semantics.
fn reference_row(act: Activation, row: &[f32]) -> Vec<f64> {
    let mut r: Vec<f32> = row.to_vec();
    if act == Activation::LogSoftmax {
        let mut r64: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        wgpu_mlp::activation::log_softmax_row_f64(&mut r64);
        return r64.into_iter().map(|v| f64::from(v as f32)).collect();
    }
    if act.is_row() {
        wgpu_mlp::activation::softmax_row_f32(&mut r);
    } else {
        r.iter_mut().for_each(|v| *v = act.apply_f32(*v));
    }
    r.into_iter().map(f64::from).collect()
}

#[test]
fn extremes_large_magnitudes_inf_and_nan() {
    let inf = f32::INFINITY;
    let nan = f32::NAN;
    let rows: Vec<Vec<f32>> = vec![
        vec![1e4, -1e4, 100.0, -100.0, 88.0, -88.0, 0.0],
        vec![1000.0, 1001.0, 1002.0, -1e4, -1e4, -1e4, -1e4],
        vec![-inf, 0.0, 1.0, -inf, 2.0, -inf, 3.0],
        vec![-inf, -inf, -inf, -inf, -inf, -inf, -inf],
        vec![inf, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        vec![nan, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
        vec![-3.0, 3.0, 1e-3, -1e-3, 20.0, -20.0, 9.5],
    ];
    let x = Matrix::from_rows(&rows).unwrap();
    for act in Activation::ALL {
        for (mode, kernel) in kernel_runs() {
            let m = passthrough(7, act);
            let y = forward_with(&m, &x, mode, kernel);
            for (i, row) in rows.iter().enumerate() {
                // The identity matmul turns a lone inf into inf·0 = NaN in other columns, as in
                // PyTorch; so only rows without inf/NaN go through the matmul cleanly. Those rows
                // are checked through the standalone kernel below instead.
                if row.iter().all(|v| v.is_finite()) {
                    let expected = reference_row(act, row);
                    assert_close(
                        y.row(i),
                        &expected,
                        1e-5,
                        1e-6,
                        &format!("{act} {mode:?} {kernel} row {i}"),
                    );
                }
            }
        }
        // The activation kernel alone sees ±inf and NaN directly.
        let y = ops::activation(ctx(), &x, act).unwrap();
        for (i, row) in rows.iter().enumerate() {
            let expected = reference_row(act, row);
            assert_close(
                y.row(i),
                &expected,
                1e-5,
                1e-6,
                &format!("{act} kernel row {i}"),
            );
        }
    }
}

#[test]
fn sigmoid_and_tanh_limits_are_exact() {
    let x = Matrix::new(1, 4, vec![-100.0, 100.0, -1e4, 1e4]).unwrap();
    let s = ops::activation(ctx(), &x, Activation::Sigmoid).unwrap();
    assert_eq!(s.as_slice(), &[0.0, 1.0, 0.0, 1.0]);
    let t = ops::activation(ctx(), &x, Activation::Tanh).unwrap();
    assert_eq!(t.as_slice(), &[-1.0, 1.0, -1.0, 1.0]);
}

#[test]
fn each_separate_kernel_matches_cpu() {
    for (rows, inner, cols) in [(1, 1, 1), (3, 7, 5), (63, 257, 33), (130, 64, 1000)] {
        let x = input(rows, inner, rows as u64, 2.0);
        let w = input(cols, inner, cols as u64 + 1, 1.0);
        let y = ops::matmul(ctx(), &x, &w).unwrap();
        let mut expected = vec![0.0f64; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                expected[r * cols + c] = x
                    .row(r)
                    .iter()
                    .zip(w.row(c))
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
            }
        }
        assert_close(
            y.as_slice(),
            &expected,
            RTOL,
            ATOL,
            &format!("matmul {rows}x{inner}x{cols}"),
        );

        let a = input(rows, cols, 5, 10.0);
        let bias = random_vec(cols, 6, -1.0, 1.0);
        let y = ops::bias_add(ctx(), &a, &bias).unwrap();
        let expected: Vec<f64> = a
            .as_slice()
            .iter()
            .enumerate()
            .map(|(i, v)| f64::from(*v) + f64::from(bias[i % cols]))
            .collect();
        assert_close(y.as_slice(), &expected, 1e-6, 1e-6, "bias_add");

        for act in Activation::ALL {
            let y = ops::activation(ctx(), &a, act).unwrap();
            let expected: Vec<f64> = (0..rows)
                .flat_map(|r| reference_row(act, a.row(r)))
                .collect();
            assert_close(
                y.as_slice(),
                &expected,
                1e-5,
                1e-6,
                &format!("{act} kernel"),
            );
        }
    }
}

#[test]
fn batch_larger_than_the_workgroup_grid_is_chunked() {
    // 65,535 workgroups × 32 rows is the most one dispatch of the blocked kernel covers; this
    // batch needs two chunks.
    let rows = 65_535 * 32 + 1000;
    let m = Mlp::from_layers(vec![Layer {
        linear: Linear::new(1, 2, vec![2.0, -3.0], Some(vec![0.5, 0.25])).unwrap(),
        activation: Activation::Identity,
    }])
    .unwrap();
    let blocked = GpuMlpOptions {
        kernel: LinearKernel::Blocked,
        ..Default::default()
    };
    let gpu = GpuMlp::with_options(ctx(), &m, blocked).unwrap();
    assert!(gpu.chunk_rows() < rows, "the test must exceed one chunk");
    let x = Matrix::new(rows, 1, (0..rows).map(|i| (i % 1000) as f32).collect()).unwrap();
    let y = gpu.forward(&x).unwrap();
    for i in [0, 1, gpu.chunk_rows() - 1, gpu.chunk_rows(), rows - 1] {
        let v = (i % 1000) as f32;
        assert_eq!(y.row(i), &[2.0 * v + 0.5, -3.0 * v + 0.25], "row {i}");
    }
    let expected = cpu::forward_f64(&m, &x).unwrap();
    assert_close(y.as_slice(), &expected, 0.0, 0.0, "chunked batch");
    // The GEMV kernel covers 4 rows per workgroup, so its chunks are smaller.
    let options = GpuMlpOptions {
        kernel: LinearKernel::Gemv,
        ..Default::default()
    };
    let gemv = GpuMlp::with_options(ctx(), &m, options).unwrap();
    assert!(
        gemv.chunk_rows() <= 65_535 * 4,
        "GEMV chunk {}",
        gemv.chunk_rows()
    );
    let y = gemv.forward(&x).unwrap();
    assert_close(y.as_slice(), &expected, 0.0, 0.0, "chunked batch, GEMV");
}

#[test]
fn batch_larger_than_the_storage_binding_is_chunked() {
    // A device whose largest binding holds 256 KiB: 1000 rows of width 130 (528 bytes a row,
    // padded) need 3 chunks.
    let small = GpuContext::new(&GpuOptions {
        max_storage_binding_size: Some(256 * 1024),
        ..GpuOptions::default()
    })
    .unwrap();
    assert_eq!(small.limits().max_storage_buffer_binding_size, 256 * 1024);
    let m = model(&[100, 130, 10], &[Activation::Relu, Activation::Softmax], 3);
    let gpu = GpuMlp::new(&small, &m).unwrap();
    assert!(gpu.chunk_rows() < 1000);
    let x = input(1000, 100, 9, 1.0);
    let y = gpu.forward(&x).unwrap();
    assert_close(
        y.as_slice(),
        &cpu::forward_f64(&m, &x).unwrap(),
        RTOL,
        ATOL,
        "chunked",
    );

    // A weight matrix that cannot fit one binding is refused with the limit in the message.
    // (Inputs over 8,192 features read their weight from a storage buffer: the blocked kernel.)
    let big = model(&[16_389, 8], &[Activation::Identity], 1);
    let err = GpuMlp::new(&small, &big).unwrap_err();
    assert!(matches!(err, Error::OutOfMemory(_)), "{err}");
    assert!(err.to_string().contains("262144"), "{err}");
}

/// `m` with every weight rounded to f16 and back: what the GPU computes with f16 storage.
fn rounded_to_f16(m: &Mlp) -> Mlp {
    let modules = m
        .modules()
        .iter()
        .map(|module| match module {
            Module::Linear(l) => {
                let w = l.weight().iter().map(|&v| half::f16::from_f32(v).to_f32());
                let bias = l.bias().map(<[f32]>::to_vec);
                Module::Linear(
                    Linear::new(l.in_features(), l.out_features(), w.collect(), bias).unwrap(),
                )
            }
            other => other.clone(),
        })
        .collect();
    Mlp::new(modules).unwrap()
}

#[test]
fn f16_weights_match_the_reference_with_rounded_weights() {
    // With f16 storage the GPU computes exactly the model whose weights are rounded to f16 (the
    // arithmetic stays f32), so the f32 tolerance applies against that model. Against the
    // original f32 model the rounding (relative 2⁻¹¹ per weight) adds about √K·2⁻¹²·|x||w| to
    // each dot product: 2e-3 relative plus absolute covers it for these widths.
    let f16 = GpuMlpOptions {
        weights: WeightFormat::F16,
        ..GpuMlpOptions::default()
    };
    for (case, sizes) in [vec![784, 512, 10], vec![33, 257, 7], vec![2_048, 64, 3]]
        .iter()
        .enumerate()
    {
        let acts = [Activation::Relu, Activation::Softmax];
        let m = model(sizes, &acts[..sizes.len() - 1], 30 + case as u64);
        for batch in [1, 5, 64] {
            let x = input(batch, sizes[0], case as u64, 1.0);
            for mode in [KernelMode::Fused, KernelMode::Separate] {
                let opts = GpuMlpOptions { mode, ..f16 };
                let y = GpuMlp::with_options(ctx(), &m, opts)
                    .unwrap()
                    .forward(&x)
                    .unwrap();
                let what = format!("f16 {sizes:?} b{batch} {mode:?}");
                let exact = cpu::forward_f64(&rounded_to_f16(&m), &x).unwrap();
                assert_close(y.as_slice(), &exact, RTOL, ATOL, &what);
                let original = cpu::forward_f64(&m, &x).unwrap();
                assert_close(y.as_slice(), &original, 2e-3, 2e-3, &what);
            }
        }
    }
}

#[test]
fn f16_weights_beyond_the_f16_range_are_refused_naming_the_weight() {
    // A finite weight of magnitude 65520 or more rounds to ±inf in f16: the model would return
    // ±inf from finite inputs. Refused before any upload, naming the Linear layer (counted from
    // 0) and the weight's [out, in] position; 65504 (f16's largest) and 65519 (rounds to it)
    // run, and an infinite weight stays infinite as in f32.
    let f16 = GpuMlpOptions {
        weights: WeightFormat::F16,
        ..GpuMlpOptions::default()
    };
    let with = |w: f32| {
        let mut second = vec![0.5f32; 6];
        second[5] = w; // [1, 2] of a [2, 3] weight
        Mlp::new(vec![
            Module::Linear(Linear::new(2, 3, vec![0.25; 6], Some(vec![0.0; 3])).unwrap()),
            Module::Activation(Activation::Relu),
            Module::Linear(Linear::new(3, 2, second, None).unwrap()),
        ])
        .unwrap()
    };
    let x = Matrix::new(1, 2, vec![1.0, 2.0]).unwrap();
    for w in [7e4f32, 1e5, -65520.0, 65520.0, 3e38, f32::MAX] {
        for mode in [KernelMode::Fused, KernelMode::Separate] {
            match GpuMlp::with_options(ctx(), &with(w), GpuMlpOptions { mode, ..f16 }) {
                Err(Error::InvalidArgument(msg)) => assert!(
                    msg.contains(&format!("Linear layer 1's weight[1, 2] = {w}"))
                        && msg.contains("f16"),
                    "{msg}"
                ),
                other => panic!("weight {w}: {:?}", other.map(|_| ())),
            }
        }
        // f32 weights take it.
        let y = GpuMlp::new(ctx(), &with(w)).unwrap().forward(&x).unwrap();
        assert!(
            y.as_slice().iter().all(|v| !v.is_nan()),
            "{w}: {:?}",
            y.as_slice()
        );
    }
    for w in [65504.0f32, -65519.0, f32::INFINITY, 1e-9] {
        let m = with(w);
        let y = GpuMlp::with_options(ctx(), &m, f16)
            .unwrap()
            .forward(&x)
            .unwrap();
        let exact = cpu::forward_f64(&rounded_to_f16(&m), &x).unwrap();
        assert_close(y.as_slice(), &exact, RTOL, ATOL, &format!("f16 weight {w}"));
    }
}

#[test]
fn inputs_over_1024_features_pair_two_uniform_windows() {
    // 1,025 to 8,192 features leave fewer than 16 rows in a 64 KiB window: each dispatch covers two
    // windows (8, 4 or 2 rows each). Batches that end inside the first or the second window.
    for (case, n_in) in [1_500usize, 2_048, 4_100].into_iter().enumerate() {
        let m = model(
            &[n_in, 37, 5],
            &[Activation::Relu, Activation::Identity],
            20 + case as u64,
        );
        for batch in [1, 3, 8, 9, 17, 100] {
            let x = input(batch, n_in, batch as u64, 1.0);
            for mode in [KernelMode::Fused, KernelMode::Separate] {
                check_model(&m, &x, mode, &format!("in {n_in} batch {batch} {mode:?}"));
            }
        }
    }
}

#[test]
fn inputs_too_wide_for_the_uniform_window_use_the_storage_kernel() {
    // 16,389 features do not fit the windowed kernel's 64 KiB window of rows (at most 8,192 do):
    // the blocked kernel runs.
    let m = model(
        &[16_389, 5, 3],
        &[Activation::Tanh, Activation::Identity],
        11,
    );
    let x = input(3, 16_389, 12, 1.0);
    for mode in [KernelMode::Fused, KernelMode::Separate] {
        check_model(&m, &x, mode, "wide input");
    }
}

#[test]
fn thousand_forward_passes_are_identical_and_allocate_nothing() {
    let m = model(&[31, 64, 10], &[Activation::Relu, Activation::Softmax], 5);
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    let x = input(17, 31, 4, 1.0);
    let first = gpu.forward(&x).unwrap();
    let warm = gpu.workspace_allocations();
    for _ in 0..1000 {
        assert_eq!(gpu.forward(&x).unwrap(), first);
    }
    assert_eq!(
        gpu.workspace_allocations(),
        warm,
        "buffers were allocated after warm-up"
    );
    // Smaller batches reuse the same buffers too.
    let small = input(3, 31, 8, 1.0);
    gpu.forward(&small).unwrap();
    assert_eq!(gpu.workspace_allocations(), warm);
}

#[test]
fn resident_path_matches_forward() {
    let m = model(&[784, 512, 10], &[Activation::Relu, Activation::Softmax], 2);
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    let x = input(64, 784, 3, 1.0);
    gpu.prepare(&x).unwrap();
    gpu.run_prepared().unwrap();
    assert_eq!(gpu.read_prepared().unwrap(), gpu.forward(&x).unwrap());
}

#[test]
fn errors_instead_of_panics() {
    let m = model(&[5, 3], &[Activation::Relu], 1);
    let gpu = GpuMlp::new(ctx(), &m).unwrap();
    let err = gpu.forward(&input(2, 4, 1, 1.0)).unwrap_err();
    assert!(matches!(err, Error::Shape(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("[2, 4]") && msg.contains('5'), "{msg}");

    let empty = gpu.forward(&Matrix::new(0, 5, vec![]).unwrap()).unwrap();
    assert_eq!(empty.shape(), [0, 3]);

    assert!(
        gpu.run_prepared().is_err(),
        "run_prepared before prepare must fail"
    );

    let err = GpuContext::new(&GpuOptions {
        adapter_name: Some("no-such-adapter-name".into()),
        ..GpuOptions::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::NoAdapter(_)), "{err}");
}

#[test]
fn a_timeout_is_an_error_and_the_model_still_works_afterwards() {
    let ctx = GpuContext::new(&GpuOptions {
        timeout: std::time::Duration::from_micros(1),
        ..GpuOptions::default()
    })
    .unwrap();
    let m = model(&[256, 256, 256], &[Activation::Relu, Activation::Tanh], 4);
    let gpu = GpuMlp::new(&ctx, &m).unwrap();
    let x = input(512, 256, 5, 1.0);
    match gpu.forward(&x) {
        Err(Error::Timeout(_)) => {}
        // wgpu's GL backend runs the work inside submit, leaving no wait to time out.
        Ok(_) if ctx.adapter().backend == "Gl" => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    ctx.set_timeout(std::time::Duration::from_secs(120));
    for _ in 0..3 {
        let y = gpu.forward(&x).unwrap();
        assert_close(
            y.as_slice(),
            &cpu::forward_f64(&m, &x).unwrap(),
            RTOL,
            ATOL,
            "after timeout",
        );
    }
}

#[test]
fn gpu_model_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GpuMlp>();
    assert_send_sync::<GpuContext>();
}

#[test]
fn kernels_beyond_the_device_workgroup_limits_are_refused_the_rest_run() {
    // A device allowing 64 invocations per workgroup, as downlevel GL devices may: the GEMV kernel
    // and the 128 tile (256 each) are refused with the limit in the message; the others run.
    let small = GpuContext::new(&GpuOptions {
        max_workgroup_invocations: Some(64),
        ..GpuOptions::default()
    })
    .unwrap();
    let m = model(&[33, 70, 5], &[Activation::Relu, Activation::Softmax], 91);
    let x = input(130, 33, 92, 1.0);
    let expected = cpu::forward_f64(&m, &x).unwrap();
    for kernel in KERNELS {
        let options = GpuMlpOptions {
            kernel,
            ..Default::default()
        };
        match (kernel, GpuMlp::with_options(&small, &m, options)) {
            (LinearKernel::Gemv | LinearKernel::Tiled128, Err(e)) => {
                let msg = e.to_string();
                assert!(msg.contains("256×1") || msg.contains("16×16"), "{msg}");
                assert!(msg.contains("64 in all"), "{msg}");
            }
            (LinearKernel::Gemv | LinearKernel::Tiled128, Ok(_)) => {
                panic!("{kernel} must be refused on a 64-invocation device")
            }
            (_, result) => {
                let y = result.unwrap().forward(&x).unwrap();
                assert_close(y.as_slice(), &expected, RTOL, ATOL, &format!("{kernel}"));
            }
        }
    }
}

#[test]
fn linear_kernels_name_what_each_layer_runs() {
    let m = model(&[33, 70, 5], &[Activation::Relu, Activation::Identity], 93);
    // A named kernel runs every layer.
    for kernel in KERNELS.into_iter().skip(1) {
        let options = GpuMlpOptions {
            kernel,
            ..Default::default()
        };
        let gpu = GpuMlp::with_options(ctx(), &m, options).unwrap();
        assert_eq!(gpu.linear_kernels(10), [kernel, kernel], "{kernel}");
    }
    // Auto: the windowed kernel on software adapters; by shape and batch on hardware.
    let auto = GpuMlp::new(ctx(), &m).unwrap();
    if ctx().is_software() {
        assert_eq!(auto.linear_kernels(1), [LinearKernel::Windowed; 2]);
    } else {
        assert_eq!(auto.linear_kernels(1), [LinearKernel::Gemv; 2]);
        // 2,048 outputs: 1,024 rows make 128 tiles of 128 (the 64 tile wins), 2,048 rows 256.
        let wide = model(&[256, 2048], &[Activation::Identity], 94);
        let wide = GpuMlp::new(ctx(), &wide).unwrap();
        assert_eq!(wide.linear_kernels(1024), [LinearKernel::Tiled64]);
        assert_eq!(wide.linear_kernels(2048), [LinearKernel::Tiled128]);
    }
}

#[test]
fn windowed_kernel_reads_x_with_and_without_subgroups() {
    // windowed.wgsl takes its rows of x from windowed_subgroup.wgsl where the device has
    // subgroups (lavapipe does), else from windowed_no_subgroup.wgsl (llvmpipe's GL does not): run both on
    // this adapter. Shapes cover 1, 4, 8 and 16 rows per invocation, inputs over 1,024 features
    // (without subgroups: paired windows of 8, 4 and 2 rows; with them, one window of the whole
    // activation buffer), several weight panels of 32 outputs, batch 1's
    // GEMV path (x read 8 steps ahead; k4 below, at and past 8), and batches that end inside a
    // row block.
    let plain = ctx_without_subgroups();
    assert!(!plain.uses_subgroups());
    let adapter = ctx().adapter();
    // lavapipe's subgroups are its SIMD width: 8 lanes at 256 bits (CI), 16 at 512, 4 at 128
    // (LP_NATIVE_VECTOR_WIDTH=128), which is below what the subgroup kernels need.
    if adapter.backend == "Vulkan"
        && adapter.name.contains("llvmpipe")
        && !adapter.name.contains("128 bits")
    {
        assert!(
            ctx().uses_subgroups(),
            "lavapipe offers subgroups of 8 or 16; the subgroup x source would go untested"
        );
    }
    let cases: [(&[usize], &[usize]); 5] = [
        (&[13, 37, 9], &[1, 3, 4, 67]),
        (&[31, 1000, 7], &[1, 5, 33]),
        (&[1_500, 300, 5], &[1, 8, 9, 17]),
        (&[2_048, 33, 3], &[3, 16, 100]),
        (&[4_100, 37, 5], &[1, 2, 9, 40]),
    ];
    let options = GpuMlpOptions {
        kernel: LinearKernel::Windowed,
        ..Default::default()
    };
    for (i, &(sizes, batches)) in cases.iter().enumerate() {
        let m = model(sizes, &[Activation::Relu, Activation::Tanh], 900 + i as u64);
        for &batch in batches {
            let x = input(batch, sizes[0], 950 + batch as u64, 2.0);
            let expected = cpu::forward_f64(&m, &x).unwrap();
            for (context, name) in [(ctx(), "default"), (plain, "no subgroups")] {
                let y = GpuMlp::with_options(context, &m, options)
                    .unwrap()
                    .forward(&x)
                    .unwrap();
                let what = format!("{name}: sizes {sizes:?} batch {batch}");
                assert_close(y.as_slice(), &expected, RTOL, ATOL, &what);
            }
        }
    }
}

#[test]
fn softmax_fused_into_the_linear_kernel_keeps_pytorch_edge_cases() {
    // With subgroups, a softmax layer of at most 32 outputs is computed in windowed.wgsl's store
    // step (windowed_subgroup.wgsl's row_op) instead of a row.wgsl pass. A zero weight
    // makes the pre-activation exactly the bias, so the rows can hold ±inf and NaN: a NaN, a +inf
    // or an all −inf row must give an all-NaN row, as in PyTorch. Widths around 32 (the largest
    // fused one), batches for 1, 4 and 16 rows per invocation, with and without subgroups.
    let plain = ctx_without_subgroups();
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    for width in [1usize, 3, 10, 31, 32, 33] {
        // Within ±2.5 so every column carries weight; the 1e4 row below checks large magnitudes.
        let spread: Vec<f32> = (0..width)
            .map(|i| (i * 7 % 11) as f32 * 0.5 - 2.5)
            .collect();
        let with = |i: usize, v: f32| {
            let mut r = spread.clone();
            r[i] = v;
            r
        };
        let rows = [
            spread.clone(),
            with(width / 2, -inf),
            vec![-inf; width],
            with(width - 1, inf),
            with(0, nan),
            with(width / 3, 1e4),
        ];
        for (p, bias) in rows.iter().enumerate() {
            let m = Mlp::from_layers(vec![Layer {
                linear: Linear::new(2, width, vec![0.0; 2 * width], Some(bias.clone())).unwrap(),
                activation: Activation::Softmax,
            }])
            .unwrap();
            let expected = reference_row(Activation::Softmax, bias);
            for batch in [1, 3, 17] {
                let x = input(batch, 2, batch as u64, 1.0);
                for (context, name) in [(ctx(), "default"), (plain, "no subgroups")] {
                    let y = GpuMlp::new(context, &m).unwrap().forward(&x).unwrap();
                    for r in 0..batch {
                        let what =
                            format!("{name}: width {width} pattern {p} batch {batch} row {r}");
                        assert_close(y.row(r), &expected, 1e-5, 1e-6, &what);
                    }
                }
            }
        }
    }
}
