//! The CPU reference forward pass on hand-computed cases (`pytorch-semantics.md` §6) and on the
//! PyTorch fixtures in `tests/data`.

mod common;

use safetensors::{Dtype, SafeTensors};
use wgpu_mlp::cpu::{forward, forward_f64};
use wgpu_mlp::{Activation, Error, Layer, Linear, Matrix, Mlp};

fn layer(n_in: usize, n_out: usize, w: &[f32], b: Option<&[f32]>, act: Activation) -> Layer {
    Layer {
        linear: Linear::new(n_in, n_out, w.to_vec(), b.map(<[f32]>::to_vec)).unwrap(),
        activation: act,
    }
}

fn row(x: &[f32]) -> Matrix {
    Matrix::new(1, x.len(), x.to_vec()).unwrap()
}

/// `got` within ±`tol` of values printed to a few digits (PyTorch's, in the docs).
#[track_caller]
fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    let want: Vec<f64> = want.iter().map(|&w| f64::from(w)).collect();
    common::assert_close(got, &want, 0.0, f64::from(tol), "printed values");
}

/// An f32 tensor from a safetensors file: (shape, values).
fn tensor(st: &SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st.tensor(name).unwrap();
    assert_eq!(t.dtype(), Dtype::F32, "{name}");
    let values = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (t.shape().to_vec(), values)
}

/// A C-order little-endian `.npy` array of `<f4` or `<f8`, as f64: (shape, values).
fn npy(bytes: &[u8]) -> (Vec<usize>, Vec<f64>) {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let (hlen, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        _ => (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let dims = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = dims
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data = &bytes[start + hlen..];
    let values = if header.contains("'<f4'") {
        data.chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect()
    } else {
        assert!(header.contains("'<f8'"), "{header}");
        data.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    (shape, values)
}

/// `torch.manual_seed(0); nn.Linear(3, 2)`: the exact f32 weights PyTorch drew (§6.1).
fn linear_seed0() -> Linear {
    let bytes = include_bytes!("data/init_linear_seed0_3x2.safetensors");
    let st = SafeTensors::deserialize(bytes).unwrap();
    let (ws, w) = tensor(&st, "weight");
    let (bs, b) = tensor(&st, "bias");
    assert_eq!((ws.as_slice(), bs.as_slice()), (&[2, 3][..], &[2][..]));
    Linear::new(3, 2, w, Some(b)).unwrap()
}

#[test]
fn linear_3x2_of_section_6_1() {
    // PyTorch: x = [1, 2, 3] gives y = [-0.8219, 0.0526].
    let model = Mlp::from_layers(vec![Layer {
        linear: linear_seed0(),
        activation: Activation::Identity,
    }])
    .unwrap();
    let y = forward(&model, &row(&[1.0, 2.0, 3.0])).unwrap();
    assert_eq!(y.shape(), [1, 2]);
    assert_close(y.as_slice(), &[-0.8219, 0.0526], 1e-4);
    // The exact f32 weights printed to 4 d.p. are those of §6.1.
    let w4: Vec<f32> = linear_seed0()
        .weight()
        .iter()
        .map(|v| (v * 1e4).round() / 1e4)
        .collect();
    assert_close(
        &w4,
        &[-0.0043, 0.3097, -0.4752, -0.4249, -0.2224, 0.1548],
        1e-7,
    );

    // With the weights as printed (4 d.p.) the result can move by up to 0.5e-4 · (1+2+3+1).
    let model = Mlp::from_layers(vec![layer(
        3,
        2,
        &[-0.0043, 0.3097, -0.4752, -0.4249, -0.2224, 0.1548],
        Some(&[-0.0114, 0.4578]),
        Activation::Identity,
    )])
    .unwrap();
    let y = forward(&model, &row(&[1.0, 2.0, 3.0])).unwrap();
    assert_close(y.as_slice(), &[-0.8219, 0.0526], 3.5e-4);
    // Hand computation: -0.0043 + 2·0.3097 - 3·0.4752 - 0.0114 = -0.8219, and
    // -0.4249 - 2·0.2224 + 3·0.1548 + 0.4578 = 0.0525.
    let y = forward_f64(&model, &row(&[1.0, 2.0, 3.0])).unwrap();
    assert!(
        (y[0] + 0.8219).abs() < 1e-7 && (y[1] - 0.0525).abs() < 1e-7,
        "{y:?}"
    );
}

/// The seed example of §6.2 with its weights as printed there (4 d.p.).
fn seed_example_printed() -> Mlp {
    Mlp::from_layers(vec![
        layer(
            3,
            3,
            &[
                0.4414, 0.4792, -0.1353, 0.5304, -0.1265, 0.1165, -0.2811, 0.3391, 0.5090,
            ],
            Some(&[-0.4236, 0.5018, 0.1081]),
            Activation::Sigmoid,
        ),
        layer(
            3,
            2,
            &[0.4266, 0.0782, 0.2784, -0.0815, 0.4451, 0.0853],
            Some(&[-0.2695, 0.1472]),
            Activation::Identity,
        ),
    ])
    .unwrap()
}

#[test]
fn seed_example_of_section_6_2() {
    let model = seed_example_printed();
    assert_eq!(model.param_count(), 20);
    let x = row(&[1.0, 2.0, 3.0]);
    let y = forward(&model, &x).unwrap();
    assert_close(y.as_slice(), &[0.3082, 0.5068], 1e-4);

    // The hidden layer alone: h = [0.57048, 1.12870, 2.03198], σ(h) = [0.63888, 0.75560, 0.88411].
    let first = Layer {
        linear: model.linears().next().unwrap().clone(),
        activation: Activation::Sigmoid,
    };
    let mut pre = first.clone();
    pre.activation = Activation::Identity;
    let h = forward(&Mlp::from_layers(vec![pre]).unwrap(), &x).unwrap();
    assert_close(h.as_slice(), &[0.57048, 1.12870, 2.03198], 1e-3);
    let s = forward(&Mlp::from_layers(vec![first]).unwrap(), &x).unwrap();
    assert_close(s.as_slice(), &[0.63888, 0.75560, 0.88411], 1e-3);

    // The same with PyTorch's exact weights (manual_seed(42)).
    let model = fixture_model(
        include_bytes!("data/seed_example.safetensors"),
        &[3, 3, 2],
        &[Activation::Sigmoid, Activation::Identity],
    );
    let y = forward(&model, &x).unwrap();
    assert_close(y.as_slice(), &[0.3082, 0.5068], 1e-4);
}

/// A fixture's `nn.Sequential` state_dict as an [`Mlp`]. Linear layers sit at module indices
/// 0, 2, 4, … except after an identity, which takes no index.
fn fixture_model(st: &[u8], sizes: &[usize], acts: &[Activation]) -> Mlp {
    let st = SafeTensors::deserialize(st).unwrap();
    let mut index = 0;
    let mut layers = Vec::new();
    for (w, &activation) in sizes.windows(2).zip(acts) {
        let (n_in, n_out) = (w[0], w[1]);
        let (ws, weight) = tensor(&st, &format!("{index}.weight"));
        let (bs, bias) = tensor(&st, &format!("{index}.bias"));
        assert_eq!(ws, [n_out, n_in]);
        assert_eq!(bs, [n_out]);
        layers.push(Layer {
            linear: Linear::new(n_in, n_out, weight, Some(bias)).unwrap(),
            activation,
        });
        index += if activation == Activation::Identity {
            1
        } else {
            2
        };
    }
    Mlp::from_layers(layers).unwrap()
}

#[test]
fn matches_pytorch_fixtures() {
    struct Case {
        sizes: &'static [usize],
        acts: [&'static str; 3],
        st: &'static [u8],
        x: &'static [u8],
        y: &'static [u8],
        y64: &'static [u8],
    }
    let cases = [
        Case {
            sizes: &[3, 3, 2],
            acts: ["sigmoid", "identity", ""],
            st: include_bytes!("data/seed_example.safetensors"),
            x: include_bytes!("data/seed_example.x.npy"),
            y: include_bytes!("data/seed_example.y.npy"),
            y64: include_bytes!("data/seed_example.y64.npy"),
        },
        Case {
            sizes: &[10, 16, 8, 3],
            acts: ["relu", "tanh", "softmax"],
            st: include_bytes!("data/small_classifier.safetensors"),
            x: include_bytes!("data/small_classifier.x.npy"),
            y: include_bytes!("data/small_classifier.y.npy"),
            y64: include_bytes!("data/small_classifier.y64.npy"),
        },
        Case {
            sizes: &[6, 12, 1],
            acts: ["leaky_relu:0.1", "identity", ""],
            st: include_bytes!("data/leaky_regression.safetensors"),
            x: include_bytes!("data/leaky_regression.x.npy"),
            y: include_bytes!("data/leaky_regression.y.npy"),
            y64: include_bytes!("data/leaky_regression.y64.npy"),
        },
    ];
    for case in cases {
        let acts: Vec<Activation> = case.acts[..case.sizes.len() - 1]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let model = fixture_model(case.st, case.sizes, &acts);
        let (xs, x) = npy(case.x);
        let (ys, y) = npy(case.y);
        let (y64s, y64) = npy(case.y64);
        let out = *case.sizes.last().unwrap();
        assert_eq!(xs, [xs[0], case.sizes[0]]);
        assert_eq!(ys, [xs[0], out]);
        assert_eq!(y64s, ys);
        let input = Matrix::new(xs[0], xs[1], x.iter().map(|&v| v as f32).collect()).unwrap();

        // float64 PyTorch on the same f32 weights and inputs: equal up to an f32 rounding per
        // operation (the reference rounds after each, as PyTorch's float32 modules do).
        let got64 = forward_f64(&model, &input).unwrap();
        for (i, (g, w)) in got64.iter().zip(&y64).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs() + 1e-8,
                "{:?} [{i}]: {g} vs {w}",
                case.sizes
            );
        }
        // float32 PyTorch: a few f32 roundings away.
        let got = forward(&model, &input).unwrap();
        assert_eq!(got.shape(), [xs[0], out]);
        for (i, (g, w)) in got.as_slice().iter().zip(&y).enumerate() {
            assert!(
                (f64::from(*g) - w).abs() <= 2e-6,
                "{:?} [{i}]: {g} vs {w}",
                case.sizes
            );
        }
    }
}

#[test]
fn layer_without_bias() {
    // y = relu(x·Wᵀ), W = [[1, 2], [3, -4], [0.5, 0.25]].
    let model = Mlp::from_layers(vec![layer(
        2,
        3,
        &[1.0, 2.0, 3.0, -4.0, 0.5, 0.25],
        None,
        Activation::Relu,
    )])
    .unwrap();
    assert_eq!(model.param_count(), 6);
    let x = Matrix::from_rows(&[vec![1.0, 1.0], vec![2.0, -1.0]]).unwrap();
    let y = forward(&model, &x).unwrap();
    assert_eq!(y.as_slice(), [3.0, 0.0, 0.75, 0.0, 10.0, 0.75]);
}

#[test]
fn wrong_input_width_names_both_shapes() {
    let model = seed_example_printed();
    let x = Matrix::zeros(2, 5);
    for err in [
        forward(&model, &x).unwrap_err(),
        forward_f64(&model, &x).unwrap_err(),
    ] {
        assert!(matches!(err, Error::Shape(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("[2, 5]"), "{msg}");
        assert!(msg.contains("[batch, 3]"), "{msg}");
    }
    // An empty-width input is refused as well.
    assert!(forward(&model, &Matrix::zeros(4, 0)).is_err());
}

/// A deterministic pseudo-random value in [-2, 2).
fn noise(i: usize) -> f32 {
    let mut s = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    s ^= s >> 29;
    s = s.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    s ^= s >> 32;
    ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
}

fn noisy_model() -> Mlp {
    let sizes = [7usize, 16, 9, 4];
    let acts = [Activation::Gelu, Activation::Tanh, Activation::Softmax];
    let mut k = 0;
    let layers = sizes
        .windows(2)
        .zip(acts)
        .map(|(w, act)| {
            let weight: Vec<f32> = (0..w[0] * w[1])
                .map(|_| {
                    k += 1;
                    noise(k) * 0.5
                })
                .collect();
            let bias: Vec<f32> = (0..w[1])
                .map(|_| {
                    k += 1;
                    noise(k) * 0.1
                })
                .collect();
            layer(w[0], w[1], &weight, Some(&bias), act)
        })
        .collect();
    Mlp::from_layers(layers).unwrap()
}

#[test]
fn each_row_of_a_batch_equals_that_row_alone() {
    let model = noisy_model();
    let n = 1000;
    let data: Vec<f32> = (0..n * 7).map(|i| noise(1_000_000 + i)).collect();
    let x = Matrix::new(n, 7, data).unwrap();
    let batched = forward(&model, &x).unwrap();
    let batched64 = forward_f64(&model, &x).unwrap();
    assert_eq!(batched.shape(), [n, 4]);
    for r in 0..n {
        let single = forward(&model, &row(x.row(r))).unwrap();
        let got = batched.row(r);
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            single
                .as_slice()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            "row {r}"
        );
        let single64 = forward_f64(&model, &row(x.row(r))).unwrap();
        assert_eq!(
            batched64[r * 4..(r + 1) * 4]
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            single64.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "row {r} (f64)"
        );
        // Softmax rows sum to 1 (up to the f32 rounding of each value).
        let sum: f64 = single64.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "row {r}: {sum}");
    }
}

#[test]
fn batch_of_zero_rows_gives_an_empty_output() {
    let model = noisy_model();
    let y = forward(&model, &Matrix::zeros(0, 7)).unwrap();
    assert_eq!(y.shape(), [0, 4]);
    assert!(
        forward_f64(&model, &Matrix::zeros(0, 7))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn nan_input_propagates_to_its_row_only() {
    let model = seed_example_printed();
    let x = Matrix::from_rows(&[
        vec![1.0, 2.0, 3.0],
        vec![f32::NAN, 0.0, 0.0],
        vec![1.0, 2.0, 3.0],
    ])
    .unwrap();
    let y = forward(&model, &x).unwrap();
    assert!(y.row(1).iter().all(|v| v.is_nan()), "{:?}", y.row(1));
    assert_eq!(y.row(0), y.row(2));
    assert!(y.row(0).iter().all(|v| v.is_finite()));

    // Through a softmax the whole row becomes NaN; an infinite input that reaches softmax as +inf
    // does too.
    let model = Mlp::from_layers(vec![layer(
        2,
        3,
        &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        Some(&[0.0, 0.0, 0.0]),
        Activation::Softmax,
    )])
    .unwrap();
    let x = Matrix::from_rows(&[
        vec![f32::NAN, 0.0],
        vec![f32::INFINITY, 0.0],
        vec![0.0, 0.0],
    ])
    .unwrap();
    let y = forward(&model, &x).unwrap();
    assert!(y.row(0).iter().all(|v| v.is_nan()), "{:?}", y.row(0));
    assert!(y.row(1).iter().all(|v| v.is_nan()), "{:?}", y.row(1));
    for v in y.row(2) {
        assert!((v - 1.0 / 3.0).abs() < 1e-7);
    }
}

#[test]
fn the_reference_rounds_to_f32_after_every_operation() {
    let model = noisy_model();
    let data: Vec<f32> = (0..50 * 7).map(|i| noise(5_000 + i) * 3.0).collect();
    let x = Matrix::new(50, 7, data).unwrap();
    let y = forward(&model, &x).unwrap();
    let y64 = forward_f64(&model, &x).unwrap();
    for (a, b) in y.as_slice().iter().zip(&y64) {
        assert_eq!(
            f64::from(*a).to_bits(),
            b.to_bits(),
            "forward_f64 is forward, widened"
        );
    }

    // Between layers values are f32, as in PyTorch: 1 + 1e-8 is 1.
    let model = Mlp::from_layers(vec![layer(
        1,
        1,
        &[1.0],
        Some(&[1e-8]),
        Activation::Identity,
    )])
    .unwrap();
    let x = row(&[1.0]);
    assert_eq!(forward(&model, &x).unwrap().as_slice(), [1.0]);

    // A product that overflows f32 is +inf, and stays +inf through the next layer (f64 between
    // layers would have kept 1e60 finite and scaled it back to 1e30).
    let two = |w: f32, act| layer(1, 1, &[w], None, act);
    let model = Mlp::from_layers(vec![
        two(1e30, Activation::Identity),
        two(1e-30, Activation::Identity),
    ])
    .unwrap();
    assert_eq!(
        forward(&model, &row(&[1e30])).unwrap().as_slice(),
        [f32::INFINITY]
    );
    // A row of 3e38 weights: the dot product is past f32's range, +inf as in PyTorch (not 0
    // after the next layer's tiny weight).
    let model = Mlp::from_layers(vec![
        layer(4, 1, &[3e38; 4], None, Activation::Identity),
        two(1e-38, Activation::Relu),
    ])
    .unwrap();
    assert_eq!(
        forward(&model, &row(&[1.0; 4])).unwrap().as_slice(),
        [f32::INFINITY]
    );

    // Within one dot product the sum is exact in f64 (allowed: PyTorch's order is its own):
    // 2^24 + 1 - 2^24.
    let model = Mlp::from_layers(vec![layer(
        3,
        1,
        &[1.0, 1.0, -1.0],
        None,
        Activation::Identity,
    )])
    .unwrap();
    let x = row(&[16_777_216.0, 1.0, 16_777_216.0]);
    assert_eq!(forward(&model, &x).unwrap().as_slice(), [1.0]);
}
