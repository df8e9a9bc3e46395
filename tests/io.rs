//! I/O tests: safetensors state_dicts, `.npy` and CSV matrices, atomic writes, and the PyTorch
//! fixtures in `tests/data` run through the CPU reference.

mod common;

use common::{data, npy_file, raw_st};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use wgpu_mlp::io::{self, csv, npy, safetensors as st};
use wgpu_mlp::{Activation, Error, Layer, Linear, Matrix, Mlp};

/// The Format error's message, or a panic describing what came back instead.
fn format_msg<T: std::fmt::Debug>(r: wgpu_mlp::Result<T>) -> String {
    match r {
        Err(Error::Format { msg, .. }) => msg,
        other => panic!("expected a Format error, got {other:?}"),
    }
}

/// A small model with fixed weights (independent of the init code).
fn fixed_model(acts: &[Activation], widths: &[usize], bias: bool) -> Mlp {
    let mut layers = Vec::new();
    let mut k = 0.0f32;
    for (i, act) in acts.iter().enumerate() {
        let (n_in, n_out) = (widths[i], widths[i + 1]);
        let weight: Vec<f32> = (0..n_in * n_out)
            .map(|_| {
                k += 1.0;
                (k * 0.37).sin() / 3.0
            })
            .collect();
        let b = bias.then(|| (0..n_out).map(|j| j as f32 * 0.125 - 0.5).collect());
        layers.push(Layer {
            linear: Linear::new(n_in, n_out, weight, b).unwrap(),
            activation: *act,
        });
    }
    Mlp::from_layers(layers).unwrap()
}

/// A safetensors file from `(name, dtype, shape, bytes)` made with the safetensors crate.
fn st_file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `n` f32 values `[out, in]` for a weight.
fn weight_bytes(out: usize, inp: usize) -> Vec<u8> {
    f32_bytes(&(0..out * inp).map(|i| i as f32 * 0.25).collect::<Vec<_>>())
}

fn keys_of(bytes: &[u8]) -> Vec<String> {
    let mut k: Vec<String> = SafeTensors::deserialize(bytes)
        .unwrap()
        .names()
        .into_iter()
        .map(String::from)
        .collect();
    k.sort();
    k
}

// ---------------------------------------------------------------------------------------------
// safetensors: round trips and key naming

#[test]
fn save_load_model_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let acts = [
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Softmax,
    ];
    let model = fixed_model(&acts, &[5, 4, 3, 2], true);
    st::save_model(&path, &model).unwrap();
    let back = st::load_model(&path, &acts, None).unwrap();
    assert_eq!(back, model);
    // No temporary files left next to it.
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn save_load_without_bias() {
    let acts = [Activation::Tanh, Activation::Identity];
    let model = fixed_model(&acts, &[3, 4, 2], false);
    let bytes = st::model_to_bytes(&model).unwrap();
    assert_eq!(keys_of(&bytes), ["0.weight", "2.weight"]);
    let back = st::model_from_bytes(&bytes, "mem", &acts, None).unwrap();
    assert_eq!(back, model);
    assert!(back.linears().all(|l| l.bias().is_none()));
}

#[test]
fn saved_keys_follow_nn_sequential_indices() {
    let model = fixed_model(
        &[Activation::Relu, Activation::Relu, Activation::Softmax],
        &[4, 3, 3, 2],
        true,
    );
    let keys = keys_of(&st::model_to_bytes(&model).unwrap());
    assert_eq!(
        keys,
        [
            "0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"
        ]
    );

    let model = fixed_model(&[Activation::Identity; 3], &[4, 3, 3, 2], true);
    let keys = keys_of(&st::model_to_bytes(&model).unwrap());
    assert_eq!(
        keys,
        [
            "0.bias", "0.weight", "1.bias", "1.weight", "2.bias", "2.weight"
        ]
    );

    assert_eq!(
        st::module_indices(&[
            Activation::Sigmoid,
            Activation::Identity,
            Activation::Gelu,
            Activation::Identity
        ]),
        [0, 2, 3, 5]
    );
}

#[test]
fn saved_file_is_f32_little_endian_with_pt_metadata() {
    let model = fixed_model(&[Activation::Identity], &[2, 3], true);
    let bytes = st::model_to_bytes(&model).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let w = file.tensor("0.weight").unwrap();
    assert_eq!(w.dtype(), Dtype::F32);
    assert_eq!(w.shape(), [3, 2]);
    assert_eq!(
        w.data(),
        f32_bytes(model.linears().next().unwrap().weight())
    );
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        meta.metadata().as_ref().unwrap().get("format").unwrap(),
        "pt"
    );
    // The architecture is in the metadata, and the same model gives the same bytes every time.
    assert_eq!(
        meta.metadata()
            .as_ref()
            .unwrap()
            .get("wgpu_mlp.arch")
            .unwrap(),
        "linear"
    );
    for _ in 0..5 {
        assert_eq!(st::model_to_bytes(&model).unwrap(), bytes);
    }
}

#[test]
fn load_model_needs_one_activation_per_layer() {
    let model = fixed_model(&[Activation::Relu, Activation::Identity], &[3, 3, 2], true);
    let bytes = st::model_to_bytes(&model).unwrap();
    let err = st::model_from_bytes(&bytes, "mem", &[Activation::Relu], None).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("1 activation") && msg.contains("2 Linear"),
        "{msg}"
    );
    assert!(st::model_from_bytes(&bytes, "mem", &[Activation::Relu; 3], None).is_err());
}

// ---------------------------------------------------------------------------------------------
// safetensors: the PyTorch fixtures

struct Case {
    name: &'static str,
    acts: &'static str,
}

const CASES: [Case; 3] = [
    Case {
        name: "seed_example",
        acts: "sigmoid,identity",
    },
    Case {
        name: "small_classifier",
        acts: "relu,tanh,softmax",
    },
    Case {
        name: "leaky_regression",
        acts: "leaky_relu:0.1,identity",
    },
];

/// Checks the CPU reference on one fixture against PyTorch's float64 run of the same model.
///
/// Both sides compute in f64 from the same f32 weights and inputs, so they differ only by f64
/// rounding (summation order, libm): we allow 1e-12 relative error, with an absolute floor of
/// 1e-14 for values near zero. PyTorch's own f32 output (`y.npy`) must be within f32 rounding.
fn check_fixture(case: &Case) {
    let acts = wgpu_mlp::activation::parse_list(case.acts).unwrap();
    let model = st::load_model(data(&format!("{}.safetensors", case.name)), &acts, None).unwrap();
    let x = npy::read(data(&format!("{}.x.npy", case.name))).unwrap();
    let want = npy::read_f64(data(&format!("{}.y64.npy", case.name))).unwrap();
    let got = wgpu_mlp::cpu::forward_f64(&model, &x).unwrap();
    assert_eq!(
        [want.rows, want.cols],
        [x.rows(), model.out_features()],
        "{}",
        case.name
    );
    assert_eq!(got.len(), want.data.len());
    for (i, (g, w)) in got.iter().zip(&want.data).enumerate() {
        // An f32 rounding per operation (the reference rounds as PyTorch's float32 modules do).
        let tol = 1e-6 * w.abs().max(1e-2);
        assert!(
            (g - w).abs() <= tol,
            "{} [{i}]: got {g:e}, PyTorch float64 {w:e} (relative error {:e})",
            case.name,
            ((g - w) / w).abs()
        );
    }
    let y32 = npy::read(data(&format!("{}.y.npy", case.name))).unwrap();
    let ours = wgpu_mlp::cpu::forward(&model, &x).unwrap();
    assert_eq!(y32.shape(), ours.shape());
    for (a, b) in y32.as_slice().iter().zip(ours.as_slice()) {
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "{}: {a} vs {b}",
            case.name
        );
    }
}

#[test]
fn fixture_seed_example_matches_pytorch_float64() {
    check_fixture(&CASES[0]);
}

#[test]
fn fixture_small_classifier_matches_pytorch_float64() {
    check_fixture(&CASES[1]);
}

/// PyTorch's float64 run uses the slope 0.1 as an f64; `Activation::LeakyRelu` stores an f32, and
/// widening 0.1f32 to f64 gives 0.10000000149…, a 1.5e-8 relative difference in the slope.
#[test]
fn fixture_leaky_regression_matches_pytorch_float64() {
    check_fixture(&CASES[2]);
}

#[test]
fn fixture_layer_shapes() {
    let layers = st::load_layers(data("small_classifier.safetensors"), None).unwrap();
    let shapes: Vec<_> = layers
        .iter()
        .map(|l| (l.in_features(), l.out_features()))
        .collect();
    assert_eq!(shapes, [(10, 16), (16, 8), (8, 3)]);
    assert!(layers.iter().all(|l| l.bias().is_some()));
}

#[test]
fn lone_linear_state_dict_loads_as_one_layer() {
    let layers = st::load_layers(data("init_linear_seed1_4x6.safetensors"), None).unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!((layers[0].in_features(), layers[0].out_features()), (4, 6));
    assert_eq!(layers[0].bias().unwrap().len(), 6);
}

// ---------------------------------------------------------------------------------------------
// safetensors: dtypes, key order, named modules

#[test]
fn f16_bf16_f64_tensors_are_accepted() {
    // Values exact in every dtype.
    let w = [0.5f32, -1.25, 2.0, 0.0, -0.375, 3.0];
    let b = [1.5f32, -2.0];
    let f16 = |v: &[f32]| -> Vec<u8> {
        v.iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect()
    };
    let bf16 = |v: &[f32]| -> Vec<u8> {
        v.iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
            .collect()
    };
    let f64b =
        |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| f64::from(*x).to_le_bytes()).collect() };
    type Conv = fn(&[f32]) -> Vec<u8>;
    let cases: [(Dtype, Conv); 4] = [
        (Dtype::F16, f16),
        (Dtype::BF16, bf16),
        (Dtype::F64, f64b),
        (Dtype::F32, f32_bytes),
    ];
    for (dtype, conv) in cases {
        let bytes = st_file(&[
            ("0.weight", dtype, vec![2, 3], conv(&w)),
            ("0.bias", dtype, vec![2], conv(&b)),
        ]);
        let layers = st::layers_from_bytes(&bytes, "mem", None).unwrap();
        assert_eq!(layers[0].weight(), w, "{dtype:?}");
        assert_eq!(layers[0].bias().unwrap(), b, "{dtype:?}");
    }
    // Mixed dtypes in one file are fine too.
    let bytes = st_file(&[
        ("0.weight", Dtype::F16, vec![2, 3], f16(&w)),
        ("0.bias", Dtype::F64, vec![2], f64b(&b)),
    ]);
    let layers = st::layers_from_bytes(&bytes, "mem", None).unwrap();
    assert_eq!(layers[0].bias().unwrap(), b);
}

#[test]
fn layers_are_taken_in_numeric_order() {
    // Eleven layers 0..=10, layer i is Linear(i + 1, i + 2): lexicographic order (0, 1, 10, 2, …)
    // would not chain.
    let mut tensors = Vec::new();
    for i in 0..=10usize {
        let name: &'static str = Box::leak(format!("{i}.weight").into_boxed_str());
        tensors.push((
            name,
            Dtype::F32,
            vec![i + 2, i + 1],
            weight_bytes(i + 2, i + 1),
        ));
    }
    let bytes = st_file(&tensors);
    let layers = st::layers_from_bytes(&bytes, "mem", None).unwrap();
    let ins: Vec<usize> = layers.iter().map(Linear::in_features).collect();
    assert_eq!(ins, (1..=11).collect::<Vec<_>>());
    assert!(layers.iter().all(|l| l.bias().is_none()));
}

#[test]
fn sparse_indices_keep_their_order() {
    // Indices 0, 3, 7, 12 (activation modules in between) load in that order.
    let bytes = st_file(&[
        ("12.weight", Dtype::F32, vec![1, 4], weight_bytes(1, 4)),
        ("3.weight", Dtype::F32, vec![3, 2], weight_bytes(3, 2)),
        ("7.weight", Dtype::F32, vec![4, 3], weight_bytes(4, 3)),
        ("0.weight", Dtype::F32, vec![2, 5], weight_bytes(2, 5)),
    ]);
    let layers = st::layers_from_bytes(&bytes, "mem", None).unwrap();
    let shapes: Vec<_> = layers
        .iter()
        .map(|l| (l.in_features(), l.out_features()))
        .collect();
    assert_eq!(shapes, [(5, 2), (2, 3), (3, 4), (4, 1)]);
}

#[test]
fn named_modules_load_with_names() {
    let bytes = st_file(&[
        ("fc1.weight", Dtype::F32, vec![3, 2], weight_bytes(3, 2)),
        ("fc1.bias", Dtype::F32, vec![3], f32_bytes(&[1.0, 2.0, 3.0])),
        ("out.weight", Dtype::F32, vec![1, 3], weight_bytes(1, 3)),
    ]);
    let names = ["fc1".to_string(), "out".to_string()];
    let layers = st::layers_from_bytes(&bytes, "mem", Some(&names)).unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0].bias().unwrap(), [1.0, 2.0, 3.0]);
    assert!(layers[1].bias().is_none());
    let model = st::model_from_bytes(
        &bytes,
        "mem",
        &[Activation::Relu, Activation::Identity],
        Some(&names),
    )
    .unwrap();
    assert_eq!(model.in_features(), 2);

    // Without names: the natural order of the module names (fc1 before out).
    assert_eq!(st::layers_from_bytes(&bytes, "mem", None).unwrap(), layers);
    // Names in the wrong order do not chain.
    let rev = ["out".to_string(), "fc1".to_string()];
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", Some(&rev)));
    assert!(msg.contains("chain"), "{msg}");
    // A name that is not there.
    let bad = ["fc1".to_string(), "fc2".to_string()];
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", Some(&bad)));
    assert!(msg.contains("fc2.weight"), "{msg}");
    // Keys left over.
    let only = ["fc1".to_string()];
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", Some(&only)));
    assert!(msg.contains("'out.weight'"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// safetensors: bad input

#[test]
fn every_truncation_of_a_fixture_is_a_format_error() {
    let full = std::fs::read(data("small_classifier.safetensors")).unwrap();
    assert!(st::layers_from_bytes(&full, "mem", None).is_ok());
    for len in 0..full.len() {
        let r = st::layers_from_bytes(&full[..len], "cut", None);
        assert!(
            matches!(r, Err(Error::Format { .. })),
            "prefix of {len} bytes: {r:?}"
        );
    }
}

#[test]
fn truncated_file_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    let full = std::fs::read(data("seed_example.safetensors")).unwrap();
    std::fs::write(&path, &full[..full.len() - 7]).unwrap();
    match st::load_layers(&path, None) {
        Err(Error::Format { path: p, msg }) => {
            assert!(p.contains("t.safetensors"), "{p}");
            assert!(msg.contains("data_offsets"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("nope.safetensors");
    assert!(matches!(
        st::load_layers(&missing, None),
        Err(Error::Io { .. })
    ));
}

#[test]
fn header_length_past_eof() {
    let mut bytes = std::fs::read(data("seed_example.safetensors")).unwrap();
    bytes[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(msg.contains("past the end"), "{msg}");
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(msg.contains("past the end"), "{msg}");
    let msg = format_msg(st::layers_from_bytes(&[1, 2, 3], "mem", None));
    assert!(msg.contains("too short"), "{msg}");
}

#[test]
fn offsets_past_the_end() {
    let h = r#"{"0.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,1600]}}"#;
    let msg = format_msg(st::layers_from_bytes(&raw_st(h, &[0; 16]), "mem", None));
    assert!(msg.contains("data_offsets"), "{msg}");
    // Offsets that fit the file but not the shape.
    let h = r#"{"0.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}"#;
    let msg = format_msg(st::layers_from_bytes(&raw_st(h, &[0; 16]), "mem", None));
    assert!(msg.contains("data_offsets"), "{msg}");
    // Overflowing shape.
    let h = r#"{"0.weight":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#;
    assert!(st::layers_from_bytes(&raw_st(h, &[0; 16]), "mem", None).is_err());
}

#[test]
fn wrong_dtype_is_rejected() {
    for (dtype, size) in [
        (Dtype::I32, 4),
        (Dtype::I64, 8),
        (Dtype::U8, 1),
        (Dtype::BOOL, 1),
    ] {
        let bytes = st_file(&[("0.weight", dtype, vec![2, 2], vec![0; 4 * size])]);
        let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
        assert!(
            msg.contains(&format!("{dtype}")) && msg.contains("'0.weight'"),
            "{msg}"
        );
    }
    // A dtype name the format does not know.
    let h = r#"{"0.weight":{"dtype":"Q4","shape":[2,2],"data_offsets":[0,16]}}"#;
    let msg = format_msg(st::layers_from_bytes(&raw_st(h, &[0; 16]), "mem", None));
    assert!(msg.contains("Q4"), "{msg}");
}

#[test]
fn shapes_that_do_not_chain() {
    let bytes = st_file(&[
        ("0.weight", Dtype::F32, vec![4, 3], weight_bytes(4, 3)),
        ("2.weight", Dtype::F32, vec![2, 5], weight_bytes(2, 5)),
    ]);
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(
        msg.contains("chain") && msg.contains("'2.weight'") && msg.contains("'0.weight'"),
        "{msg}"
    );
}

#[test]
fn missing_weight() {
    let bytes = st_file(&[
        ("0.weight", Dtype::F32, vec![4, 3], weight_bytes(4, 3)),
        ("2.bias", Dtype::F32, vec![2], f32_bytes(&[0.0, 1.0])),
    ]);
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(msg.contains("missing '2.weight'"), "{msg}");
    let bytes = st_file(&[("bias", Dtype::F32, vec![2], f32_bytes(&[0.0, 1.0]))]);
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(msg.contains("missing 'weight'"), "{msg}");
    let empty = raw_st("{}", &[]);
    let msg = format_msg(st::layers_from_bytes(&empty, "mem", None));
    assert!(msg.contains("no tensors"), "{msg}");
}

#[test]
fn bias_of_wrong_length_or_rank() {
    let bytes = st_file(&[
        ("0.weight", Dtype::F32, vec![4, 3], weight_bytes(4, 3)),
        ("0.bias", Dtype::F32, vec![3], f32_bytes(&[0.0; 3])),
    ]);
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(msg.contains("'0.bias'") && msg.contains("[4]"), "{msg}");
    let bytes = st_file(&[
        ("0.weight", Dtype::F32, vec![4, 3], weight_bytes(4, 3)),
        ("0.bias", Dtype::F32, vec![4, 1], f32_bytes(&[0.0; 4])),
    ]);
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(msg.contains("'0.bias'"), "{msg}");
}

#[test]
fn weight_must_be_2d_and_nonempty() {
    for shape in [vec![12], vec![2, 3, 2], vec![]] {
        let n: usize = shape.iter().product();
        let bytes = st_file(&[("0.weight", Dtype::F32, shape.clone(), vec![0; 4 * n])]);
        let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
        assert!(msg.contains("2-D"), "{shape:?}: {msg}");
    }
    let bytes = st_file(&[("0.weight", Dtype::F32, vec![0, 3], vec![])]);
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(msg.contains("at least 1"), "{msg}");
}

#[test]
fn unknown_keys_are_named() {
    let bytes = st_file(&[
        ("0.weight", Dtype::F32, vec![4, 3], weight_bytes(4, 3)),
        ("1.running_mean", Dtype::F32, vec![4], f32_bytes(&[0.0; 4])),
        ("extra", Dtype::F32, vec![1], f32_bytes(&[0.0])),
    ]);
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(
        msg.contains("'1.running_mean'") && msg.contains("'extra'"),
        "{msg}"
    );
    // "01" and "1" are the same module index.
    let bytes = st_file(&[
        ("01.weight", Dtype::F32, vec![4, 3], weight_bytes(4, 3)),
        ("1.weight", Dtype::F32, vec![4, 3], weight_bytes(4, 3)),
    ]);
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(msg.contains("same parameter"), "{msg}");
}

#[test]
fn non_utf8_or_invalid_json_header() {
    let mut h = br#"{"0.weight":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}"#.to_vec();
    h[3] = 0xff;
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&h);
    bytes.extend_from_slice(&[0; 4]);
    let msg = format_msg(st::layers_from_bytes(&bytes, "mem", None));
    assert!(msg.contains("UTF-8"), "{msg}");

    let msg = format_msg(st::layers_from_bytes(
        &raw_st("{not json", &[]),
        "mem",
        None,
    ));
    assert!(msg.contains("invalid header"), "{msg}");
}

#[test]
fn garbage_never_panics() {
    // A cheap deterministic fuzz: flip bytes of a valid file; every outcome must be Ok or Err.
    let full = std::fs::read(data("seed_example.safetensors")).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..3000 {
        let mut b = full.clone();
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state % b.len() as u64) as usize;
            b[i] = (state >> 32) as u8;
        }
        let _ = st::layers_from_bytes(&b, "fuzz", None);
    }
}

// ---------------------------------------------------------------------------------------------
// npy

#[test]
fn npy_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.npy");
    let m = Matrix::new(
        2,
        4,
        vec![
            1.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::MIN_POSITIVE,
            1e-45,
            -3.5,
            f32::MAX,
        ],
    )
    .unwrap();
    npy::write(&path, &m).unwrap();
    let back = npy::read(&path).unwrap();
    assert_eq!(back.shape(), [2, 4]);
    let bits = |m: &Matrix| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back), bits(&m));
    // Empty batch.
    let e = Matrix::new(0, 3, vec![]).unwrap();
    assert_eq!(npy::from_bytes(&npy::to_bytes(&e), "mem").unwrap(), e);
}

#[test]
fn npy_header_is_padded_to_64_and_ends_with_newline() {
    for (r, c) in [(1, 1), (4, 3), (123_456_789_012, 0), (0, 7_890), (0, 0)] {
        let bytes = npy::to_bytes(&Matrix::zeros(r, c));
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(bytes[10 + hlen - 1], b'\n');
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        assert!(
            header.starts_with(&format!(
                "{{'descr': '<f4', 'fortran_order': False, 'shape': ({r}, {c}), }}"
            )),
            "{header}"
        );
        assert_eq!(bytes.len(), 10 + hlen + 4 * r * c);
    }
}

#[test]
fn npy_reads_fixture_f4_and_f8() {
    let x = npy::read(data("seed_example.x.npy")).unwrap();
    assert_eq!(x.shape(), [4, 3]);
    let y = npy::read(data("seed_example.y64.npy")).unwrap();
    let y64 = npy::read_f64(data("seed_example.y64.npy")).unwrap();
    assert_eq!(y.shape(), [4, 2]);
    assert_eq!((y64.rows, y64.cols), (4, 2));
    for (a, b) in y.as_slice().iter().zip(&y64.data) {
        assert_eq!(*a, *b as f32);
    }
}

#[test]
fn npy_versions_and_header_variants() {
    let d = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let headers = [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
        "{\"descr\":\"<f4\",\"shape\":(2,3),\"fortran_order\":False}",
        "{'shape': (2L, 3L), 'fortran_order': False, 'descr': '<f4'}      \n",
        "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , 3 , ) }",
    ];
    for v in [1, 2, 3] {
        for h in headers {
            let m = npy::from_bytes(&npy_file(v, h, &d), "mem")
                .unwrap_or_else(|e| panic!("v{v} {h:?}: {e}"));
            assert_eq!(m.shape(), [2, 3]);
            assert_eq!(m.as_slice(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        }
    }
    // 1-D becomes one row.
    let m = npy::from_bytes(
        &npy_file(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }",
            &d,
        ),
        "mem",
    )
    .unwrap();
    assert_eq!(m.shape(), [1, 6]);
    // <f8 is converted.
    let d8: Vec<u8> = [0.1f64, 0.2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let m = npy::from_bytes(
        &npy_file(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }",
            &d8,
        ),
        "mem",
    )
    .unwrap();
    assert_eq!(m.as_slice(), [0.1f32, 0.2f32]);
}

/// Fortran order is read in C order: the values as NumPy indexes them (was refused).
#[test]
fn npy_fortran_order_is_read_in_c_order() {
    let h = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
    let data: Vec<u8> = [1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let m = npy::from_bytes(&npy_file(1, h, &data), "mem").unwrap();
    assert_eq!(m.shape(), [2, 3]);
    assert_eq!(m.as_slice(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn npy_overflowing_shape_is_rejected() {
    for shape in [
        "(4294967296, 4294967296)",
        "(18446744073709551615, 2)",
        "(99999999999999999999999999999999999999999999, 1)",
        "(-1, 3)",
    ] {
        let h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        let msg = format_msg(npy::from_bytes(&npy_file(1, &h, &[0; 16]), "mem"));
        assert!(
            msg.contains("overflow")
                || msg.contains("too large")
                || msg.contains("invalid dimension"),
            "{shape}: {msg}"
        );
    }
}

#[test]
fn npy_wrong_dtype_is_rejected() {
    for descr in [
        "<c8", "float32", "<f16", "<U3", "|O", "<i3", "<b2", "<V2", "<M8",
    ] {
        let h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2, 2), }}");
        let msg = format_msg(npy::from_bytes(&npy_file(1, &h, &[0; 16]), "mem"));
        assert!(msg.contains(descr) && msg.contains("dtype"), "{msg}");
    }
    // NumPy has no bfloat16: ml_dtypes writes it as raw 2-byte voids.
    let h = "{'descr': '<V2', 'fortran_order': False, 'shape': (2,), }";
    let msg = format_msg(npy::from_bytes(&npy_file(1, h, &[0; 4]), "mem"));
    assert!(msg.contains("bfloat16"), "{msg}");
    let h = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }";
    let msg = format_msg(npy::from_bytes(&npy_file(1, h, &[0; 8]), "mem"));
    assert!(msg.contains("structured"), "{msg}");
}

/// Every dtype NumPy writes for PyTorch users' data converts as NumPy's `astype(float32)` (and
/// so torch's `x.float()`) does, bit for bit; Fortran order and big-endian read in C order; an
/// N-D array is flattened from dimension 1 only when asked. Fixtures: tests/data/inputs/make.py.
#[test]
fn npy_dtypes_orders_and_shapes_convert_as_numpy_does() {
    let dir = common::data("inputs");
    let cases = [
        ("float64", "float64", true),
        ("float16", "float16", false),
        ("int64", "int64", true),
        ("uint8", "uint8", false),
        ("int16_be", "int16", false),
        ("bool", "bool", false),
        ("float32_be", "float32", false),
        ("fortran", "float32", false),
        ("fortran64", "float64", true),
        ("images", "float32", false),
    ];
    for (name, dtype, rounds) in cases {
        let a = npy::read_array(dir.join(format!("{name}.npy"))).unwrap();
        assert_eq!(a.dtype, dtype, "{name}");
        assert_eq!(a.rounded > 0, rounds, "{name}: {} rounded", a.rounded);
        let want = npy::read(dir.join(format!("{name}.f32.npy"))).unwrap();
        let flat = a.shape.len() > 2;
        if flat {
            let refused = a.clone().into_matrix(false, name).unwrap_err().to_string();
            assert!(refused.contains("nn.Flatten"), "{refused}");
        }
        let got = a.into_matrix(flat, name).unwrap();
        assert_eq!(got.shape(), want.shape(), "{name}");
        let bits = |m: &Matrix| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{name}");
    }
    // The f64 reader agrees with NumPy's float64 values on Fortran order too.
    let c = npy::read_f64(dir.join("float64.npy")).unwrap();
    let f = npy::read_f64(dir.join("fortran64.npy")).unwrap();
    assert_eq!(c, f);
}

/// `.npz`: the one array, or the one named; several without a name, or a missing name, are
/// errors listing what the archive holds; compressed archives read as stored ones.
#[test]
fn npz_reads_its_one_array_or_the_named_one() {
    let dir = common::data("inputs");
    let want = npy::read(dir.join("float64.f32.npy")).unwrap();
    let one = wgpu_mlp::io::read_matrix(dir.join("one.npz")).unwrap();
    assert_eq!(one, want);
    let x = wgpu_mlp::io::read_matrix(format!("{}:x", dir.join("two.npz").display())).unwrap();
    assert_eq!(x, want);
    let y = wgpu_mlp::io::npz::read_array(dir.join("two.npz"), Some("y")).unwrap();
    assert_eq!(y.shape, [2, 4]);
    let msg = format_msg(wgpu_mlp::io::read_matrix(dir.join("two.npz")));
    assert!(msg.contains("2 arrays") && msg.contains("x, y"), "{msg}");
    let msg = format_msg(wgpu_mlp::io::npz::read_array(
        dir.join("two.npz"),
        Some("z"),
    ));
    assert!(msg.contains("no array 'z'"), "{msg}");
    let msg = format_msg(wgpu_mlp::io::npz::array_from_bytes(
        b"PK\x03\x04junk",
        None,
        "mem",
    ));
    assert!(msg.contains("zip"), "{msg}");
}

/// JSON output: rows of shortest round-trip numbers; NaN and infinities as strings.
#[test]
fn json_output_round_trips_and_names_special_values() {
    let m = Matrix::new(2, 2, vec![0.1, -1e-7, f32::NAN, f32::NEG_INFINITY]).unwrap();
    let text = String::from_utf8(wgpu_mlp::io::json::to_bytes(&m)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v[0][0].as_f64().unwrap() as f32, 0.1f32);
    assert_eq!(v[0][1].as_f64().unwrap() as f32, -1e-7f32);
    assert_eq!(v[1][0], "NaN");
    assert_eq!(v[1][1], "-Infinity");
}

#[test]
fn npy_lying_headers() {
    let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    // Data shorter than the shape says.
    let msg = format_msg(npy::from_bytes(&npy_file(1, h, &[0; 20]), "mem"));
    assert!(msg.contains("truncated") && msg.contains("24"), "{msg}");
    // Longer.
    let msg = format_msg(npy::from_bytes(&npy_file(1, h, &[0; 28]), "mem"));
    assert!(msg.contains("unexpected bytes"), "{msg}");
    // Header length past EOF.
    let mut b = npy_file(1, h, &[0; 24]);
    b[8..10].copy_from_slice(&60000u16.to_le_bytes());
    let msg = format_msg(npy::from_bytes(&b, "mem"));
    assert!(msg.contains("past the end"), "{msg}");
    let mut b = npy_file(2, h, &[0; 24]);
    b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let msg = format_msg(npy::from_bytes(&b, "mem"));
    assert!(msg.contains("past the end"), "{msg}");
}

#[test]
fn npy_bad_headers() {
    let d = [0u8; 16];
    let cases = [
        ("{'descr': '<f4', 'shape': (2, 2), }", "fortran_order"),
        ("{'descr': '<f4', 'fortran_order': False}", "shape"),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}",
            "'x'",
        ),
        (
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}",
            "duplicate",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }",
            "2-D",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
            "shape []",
        ),
        (
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 2), }",
            "fortran_order",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0, 2), }",
            "integer",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), } junk",
            "after the dict",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)",
            "'}'",
        ),
        ("{'descr: '<f4'}", "header"),
        ("['descr']", "dict"),
        ("", "end of the header"),
        (
            &format!("{}0{}", "(".repeat(100), ")".repeat(100)),
            "deeply",
        ),
    ];
    for (h, want) in cases {
        let msg = format_msg(npy::from_bytes(&npy_file(1, h, &d), "mem"));
        assert!(msg.contains(want), "{h:?}: {msg}");
    }
    // A scalar with its 4 bytes: read, and refused as a matrix.
    let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }";
    let msg = format_msg(npy::from_bytes(&npy_file(1, h, &d[..4]), "mem"));
    assert!(msg.contains("0-D"), "{msg}");
    // Non-UTF-8 header.
    let mut b = npy_file(
        1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
        &d,
    );
    b[13] = 0xfe;
    let msg = format_msg(npy::from_bytes(&b, "mem"));
    assert!(msg.contains("UTF-8"), "{msg}");
    // Bad magic and unknown version.
    let msg = format_msg(npy::from_bytes(b"PK\x03\x04 this is a zip file", "mem"));
    assert!(msg.contains("magic"), "{msg}");
    let msg = format_msg(npy::from_bytes(&npy_file(4, "{}", &d), "mem"));
    assert!(msg.contains("version"), "{msg}");
}

#[test]
fn every_truncation_of_an_npy_is_a_format_error() {
    let full = std::fs::read(data("small_classifier.x.npy")).unwrap();
    assert!(npy::from_bytes(&full, "mem").is_ok());
    for len in 0..full.len() {
        let r = npy::from_bytes(&full[..len], "cut");
        assert!(matches!(r, Err(Error::Format { .. })), "{len}: {r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// csv

#[test]
fn csv_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    let mut vals = vec![0.1f32, -0.0, 1e-7, 3.4e38, 1e-45, -123.456, 1.0, 2.5e-20];
    let mut s = 1u32;
    for _ in 0..64 {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        vals.push(f32::from_bits(s & 0x7f7f_ffff) * if s & 1 == 0 { 1.0 } else { -1.0 });
    }
    let m = Matrix::new(vals.len() / 8, 8, vals).unwrap();
    csv::write(&path, &m).unwrap();
    let back = csv::read(&path).unwrap();
    let bits = |m: &Matrix| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(back.shape(), m.shape());
    assert_eq!(bits(&back), bits(&m));
    // Special values.
    let m = Matrix::new(1, 3, vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]).unwrap();
    let back = csv::from_bytes(&csv::to_bytes(&m), "mem").unwrap();
    assert!(back.as_slice()[0].is_nan());
    assert_eq!(&back.as_slice()[1..], [f32::INFINITY, f32::NEG_INFINITY]);
}

#[test]
fn csv_formatting_is_short() {
    let m = Matrix::new(2, 2, vec![0.1, 1.0, 1e-7, -2.5]).unwrap();
    assert_eq!(
        String::from_utf8(csv::to_bytes(&m)).unwrap(),
        "0.1,1.0\n1e-7,-2.5\n"
    );
}

#[test]
fn csv_header_blank_lines_and_crlf() {
    let text = "\u{feff}x0, x1 ,x2\r\n\r\n1, 2,3\r\n  \n# a comment\n4,5,6e0\n\n";
    let m = csv::from_bytes(text.as_bytes(), "mem").unwrap();
    assert_eq!(m.shape(), [2, 3]);
    assert_eq!(m.as_slice(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // No header, no trailing newline.
    let m = csv::from_bytes(b"1,2\n3,4", "mem").unwrap();
    assert_eq!(m.shape(), [2, 2]);
}

#[test]
fn csv_ragged_rows() {
    let msg = format_msg(csv::from_bytes(b"a,b,c\n1,2,3\n4,5\n", "mem"));
    assert!(msg.contains("line 3") && msg.contains("line 2"), "{msg}");
}

#[test]
fn csv_non_numbers() {
    let msg = format_msg(csv::from_bytes(b"1,2\n3,abc\n", "mem"));
    assert!(
        msg.contains("line 2, column 2") && msg.contains("'abc'"),
        "{msg}"
    );
    // Text on a later line is an error, naming the line and column.
    let msg = format_msg(csv::from_bytes(b"1,2\n3,4\n5,x\n", "mem"));
    assert!(msg.contains("line 3, column 2"), "{msg}");
    let msg = format_msg(csv::from_bytes(b"1,,3\n", "mem"));
    assert!(msg.contains("empty field"), "{msg}");
    assert!(msg.contains("NaN or NA"), "{msg}");
    // Semicolons are not taken for one column of text.
    for text in [&b"1;2;3\n"[..], b"a;b\n1;2\n"] {
        let msg = format_msg(csv::from_bytes(text, "mem"));
        assert!(msg.contains("line 1 separates values with ';'"), "{msg}");
    }
}

#[test]
fn csv_empty_and_non_utf8() {
    let msg = format_msg(csv::from_bytes(b"", "mem"));
    assert!(msg.contains("no numeric rows"), "{msg}");
    let msg = format_msg(csv::from_bytes(b"\n# only a comment\n  \n", "mem"));
    assert!(msg.contains("no numeric rows"), "{msg}");
    let msg = format_msg(csv::from_bytes(b"1,2\n3,\xff\n", "mem"));
    assert!(msg.contains("line 2") && msg.contains("UTF-8"), "{msg}");
}

/// Every spelling of a number the CSV reader takes besides decimals, in several cases.
const CSV_SPECIALS: &[(&str, f32)] = &[
    ("nan", f32::NAN),
    ("NaN", f32::NAN),
    ("NAN", f32::NAN),
    ("-nan", f32::NAN),
    ("+NaN", f32::NAN),
    ("NA", f32::NAN),
    ("na", f32::NAN),
    ("N/A", f32::NAN),
    ("n/a", f32::NAN),
    ("#N/A", f32::NAN),
    ("#NA", f32::NAN),
    ("<NA>", f32::NAN),
    ("NULL", f32::NAN),
    ("null", f32::NAN),
    ("None", f32::NAN),
    ("#N/A N/A", f32::NAN),
    ("1.#IND", f32::NAN),
    ("-1.#IND", f32::NAN),
    ("1.#QNAN", f32::NAN),
    ("-1.#QNAN", f32::NAN),
    ("inf", f32::INFINITY),
    ("Inf", f32::INFINITY),
    ("+inf", f32::INFINITY),
    ("-inf", f32::NEG_INFINITY),
    ("infinity", f32::INFINITY),
    ("-Infinity", f32::NEG_INFINITY),
    ("INFINITY", f32::INFINITY),
    (".5", 0.5),
    ("5.", 5.0),
    ("+3E2", 300.0),
    ("1e-7", 1e-7),
];

fn same_value(a: f32, b: f32) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

#[test]
fn csv_first_line_of_missing_values_or_infinities_is_data() {
    for &(spelling, value) in CSV_SPECIALS {
        for text in [
            format!("{spelling},{spelling},{spelling}\n1,2,3\n4,5,6\n"),
            format!("{spelling},1,{spelling}\n1,2,3\n4,5,6\n"),
            format!("\"{spelling}\",1,2\n1,2,3\n4,5,6\n"),
            // With blanks as the delimiter, `#N/A N/A` is two fields unless quoted.
            if spelling.contains(' ') {
                format!("\"{spelling}\" 1 2\n1 2 3\n4 5 6\n")
            } else {
                format!("{spelling} 1 2\n1 2 3\n4 5 6\n")
            },
        ] {
            let p = csv::parse(text.as_bytes(), "mem").unwrap();
            assert_eq!(p.matrix.shape(), [3, 3], "{text:?}");
            assert!(p.header.is_none(), "{text:?}");
            assert!(same_value(p.matrix.as_slice()[0], value), "{text:?}");
            assert_eq!(&p.matrix.as_slice()[3..], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        }
    }
}

#[test]
fn csv_header_is_a_first_line_with_a_field_that_is_not_a_number() {
    // Names, quoted names, an empty name: a header, reported as one.
    for (text, names) in [
        ("x0,x1,x2\n1,2,3\n", vec!["x0", "x1", "x2"]),
        (
            "\"a\",\"b,c\",\"d\"\"e\"\n1,2,3\n",
            vec!["a", "b,c", "d\"e"],
        ),
        (",x,y\n1,2,3\n", vec!["", "x", "y"]),
        ("# comment\n\n  a  b  c\n1 2 3\n", vec!["a", "b", "c"]),
    ] {
        let p = csv::parse(text.as_bytes(), "mem").unwrap();
        let h = p.header.as_ref().unwrap_or_else(|| panic!("{text:?}"));
        assert_eq!(h.names, names, "{text:?}");
        assert_eq!(p.matrix.as_slice(), [1.0, 2.0, 3.0], "{text:?}");
        assert!(p.describe().contains("is a header"), "{}", p.describe());
    }
    // A line of numbers is data, even where a frame's integer column names would be.
    let p = csv::parse(b"0,1,2\n1.5,2.5,3.5\n", "mem").unwrap();
    assert!(p.header.is_none());
    assert_eq!(p.matrix.shape(), [2, 3]);
    assert!(
        p.describe()
            .starts_with("2 rows of 3 values, comma-separated; no header")
    );
    // A first line mixing numbers and names is neither: an error naming a name and a number,
    // whether or not data follows (`1,two,3` alone used to be a header over no rows).
    for (text, name, number) in [
        (
            "1,two,3\n",
            "column 2: 'two'",
            "column 1 holds the number '1'",
        ),
        (
            "1,two,3\n4,5,6\n",
            "column 2: 'two'",
            "column 1 holds the number '1'",
        ),
        (
            "id,2019,2020\n1,2,3\n",
            "column 1: 'id'",
            "column 2 holds the number '2019'",
        ),
        (
            "NA,x,NA\n1,2,3\n",
            "column 2: 'x'",
            "column 1 holds the number 'NA'",
        ),
        (
            "x 1.5 inf\n1 2 3\n",
            "column 1: 'x'",
            "column 2 holds the number '1.5'",
        ),
        (
            "\"a\",\"7\"\n1,2\n",
            "column 1: 'a'",
            "column 2 holds the number '7'",
        ),
    ] {
        let msg = format_msg(csv::from_bytes(text.as_bytes(), "mem"));
        assert!(
            msg.contains(&format!("line 1, {name} is not a number"))
                && msg.contains(number)
                && msg.contains("names only"),
            "{text:?}: {msg}"
        );
    }
    // A header must name as many columns as the rows have.
    let msg = format_msg(csv::from_bytes(b"a,b\n1,2,3\n", "mem"));
    assert!(msg.contains("header on line 1 names 2 columns"), "{msg}");
}

#[test]
fn csv_space_and_tab_delimited_files_as_numpy_writes_them() {
    // np.savetxt(f, a): '%.18e', one space between values.
    let text = "1.000000000000000000e+00 -2.500000000000000000e+00\n\
                3.000000000000000000e+00 4.000000000000000000e-01\n";
    let p = csv::parse(text.as_bytes(), "mem").unwrap();
    assert_eq!(p.delimiter, csv::Delimiter::Whitespace);
    assert_eq!(p.matrix.as_slice(), [1.0, -2.5, 3.0, 0.4]);
    // Aligned columns, leading and trailing blanks, CRLF, tabs mixed with spaces.
    let p = csv::parse(b"  1    2 \t3\r\n4\t 5 6  \r\n", "mem").unwrap();
    assert_eq!(p.matrix.shape(), [2, 3]);
    // Tab-separated, spaces around values ignored; two tabs in a row are an empty field.
    let p = csv::parse(b"a\tb\n1\t 2\n3 \t4\t\n", "mem").unwrap();
    assert_eq!(p.delimiter, csv::Delimiter::Whitespace);
    assert_eq!(p.matrix.as_slice(), [1.0, 2.0, 3.0, 4.0]);
    for text in [&b"1\t\t3\n"[..], b"1\t2\n3\t \t4\n"] {
        let msg = format_msg(csv::from_bytes(text, "mem"));
        assert!(msg.contains("empty field"), "{msg}");
    }
    // One delimiter per file: a comma in a space-separated file is not a separator.
    let msg = format_msg(csv::from_bytes(b"1 2\n3,4\n", "mem"));
    assert!(msg.contains("line 2 has 1 values"), "{msg}");
    let msg = format_msg(csv::from_bytes(b"1\n3,4\n", "mem"));
    assert!(msg.contains("'3,4' is not a number"), "{msg}");
    // A single column.
    let p = csv::parse(b"1\n2\n3\n", "mem").unwrap();
    assert_eq!(p.matrix.shape(), [3, 1]);
}

#[test]
fn csv_quoted_numbers_are_numbers() {
    let p = csv::parse(b"\"1\",\"2\",\"3\"\n\" 4 \", \"5e0\" ,6\n", "mem").unwrap();
    assert!(p.header.is_none());
    assert_eq!(p.matrix.as_slice(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let p = csv::parse(b"\"1\" \"2\"\n", "mem").unwrap();
    assert_eq!(p.matrix.as_slice(), [1.0, 2.0]);
    for (text, phrase) in [
        (&b"1,\"2\n"[..], "unterminated quote"),
        (b"1,\"2\"x\n", "after the closing quote"),
        (b"1,2\n3,\"4,5\"\n", "'4,5' is not a number"),
        (b"1,2\n3,\"\"\n", "empty field"),
    ] {
        let msg = format_msg(csv::from_bytes(text, "mem"));
        assert!(msg.contains(phrase), "{text:?}: {msg}");
    }
}

#[test]
fn csv_empty_batch_round_trips_as_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.csv");
    let m = Matrix::new(0, 3, vec![]).unwrap();
    csv::write(&path, &m).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "c0,c1,c2\n");
    assert_eq!(csv::read(&path).unwrap(), m);
    assert_eq!(io::read_matrix(&path).unwrap(), m);
    // Any header without rows is an empty batch of its width.
    assert_eq!(csv::from_bytes(b"a b\n", "mem").unwrap().shape(), [0, 2]);
}

// ---------------------------------------------------------------------------------------------
// read_matrix / write_matrix and atomic writes

#[test]
fn matrix_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let m = Matrix::new(2, 2, vec![1.0, 2.0, 3.0, 4.5]).unwrap();
    for name in ["a.npy", "b.csv", "c.NPY", "d.Csv"] {
        let p = dir.path().join(name);
        io::write_matrix(&p, &m).unwrap();
        assert_eq!(io::read_matrix(&p).unwrap(), m, "{name}");
    }
    assert!(
        std::fs::read(dir.path().join("b.csv"))
            .unwrap()
            .starts_with(b"1.0,2.0\n")
    );
    assert!(
        std::fs::read(dir.path().join("a.npy"))
            .unwrap()
            .starts_with(b"\x93NUMPY")
    );
    for name in ["e.txt", "f", "g.npz"] {
        let p = dir.path().join(name);
        let err = io::write_matrix(&p, &m).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(!p.exists());
        assert!(io::read_matrix(&p).is_err());
    }
}

#[test]
fn failed_write_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = Matrix::zeros(3, 3);
    let model = fixed_model(&[Activation::Identity], &[2, 2], true);
    // Missing parent directory.
    let p = dir.path().join("missing").join("out.npy");
    assert!(matches!(npy::write(&p, &m), Err(Error::Io { .. })));
    assert!(matches!(
        csv::write(dir.path().join("missing/o.csv"), &m),
        Err(Error::Io { .. })
    ));
    assert!(st::save_model(dir.path().join("missing/m.safetensors"), &model).is_err());
    // Target is a directory.
    let sub = dir.path().join("sub.npy");
    std::fs::create_dir(&sub).unwrap();
    assert!(npy::write(&sub, &m).is_err());
    assert!(sub.is_dir());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["sub.npy"]);
    assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 0);
}

#[test]
fn write_replaces_existing_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("y.npy");
    std::fs::write(
        &p,
        b"old contents that are longer than the new file, surely? no",
    )
    .unwrap();
    let m = Matrix::new(1, 2, vec![7.0, 8.0]).unwrap();
    npy::write(&p, &m).unwrap();
    assert_eq!(npy::read(&p).unwrap(), m);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn write_atomic_and_check_output_are_the_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    io::write_atomic(&path, b"{}").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let missing = dir.path().join("missing/out.json");
    assert!(io::write_atomic(&missing, b"{}").is_err());
    let err = io::check_output(&missing, &[]).unwrap_err().to_string();
    assert!(
        err.contains("the output folder") && err.contains("does not exist"),
        "{err}"
    );
    io::check_output(&path, &[]).unwrap();
    // A bare file name is in the current folder.
    io::check_output(std::path::Path::new("plain.svg"), &[]).unwrap();
    // The probe leaves nothing behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    for bad in ["", "..", "sub/"] {
        let err = io::check_output(std::path::Path::new(bad), &[]).unwrap_err();
        assert!(
            err.to_string().contains("not a file name"),
            "{bad:?}: {err}"
        );
    }
}

/// `primer.meta.safetensors` with its `wgpu_mlp.arch` metadata replaced by `arch`.
fn primer_with_arch(arch: &str) -> Vec<u8> {
    let bytes = std::fs::read(data("models/primer.meta.safetensors")).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    header["__metadata__"]["wgpu_mlp.arch"] = arch.into();
    raw_st(&header.to_string(), &bytes[8 + len..])
}

#[test]
fn invalid_own_metadata_is_the_files_fault_and_an_override_skips_it() {
    // Issue 24, item 11: the file's metadata was parsed even when --arch replaced it, and its
    // errors were reported as "--arch: …".
    let own: wgpu_mlp::Arch = std::fs::read(data("models/primer.meta.safetensors"))
        .map(|b| st::metadata(&b, "primer").unwrap().0.unwrap())
        .unwrap()
        .parse()
        .unwrap();
    for bad in ["linear,relux,linear", "relu", "linear,dropout:2,linear"] {
        let bytes = primer_with_arch(bad);
        let e = st::from_bytes(&bytes, "bad.safetensors", None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad.safetensors")
                && e.contains("wgpu_mlp.arch metadata is not valid")
                && !e.contains("--arch"),
            "{bad}: {e}"
        );
        // Given an architecture, the file's own is never parsed.
        let m = st::from_bytes(&bytes, "bad.safetensors", Some(&own), None).unwrap();
        assert_eq!(m.in_features(), 3, "{bad}");
    }
    // On the command line: the file's fault without --arch, a working model with it, and a bad
    // --arch is still named as such.
    let dir = std::env::temp_dir().join(format!("own_arch_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.safetensors");
    std::fs::write(&file, primer_with_arch("linear,relux,linear")).unwrap();
    let x = data("models/primer.x.npy");
    let out = dir.join("y.csv");
    let run = |arch: Option<&str>| {
        let mut args = vec![
            "infer",
            "--device",
            "cpu",
            "--weights",
            common::path_str(&file),
            "-i",
            common::path_str(&x),
            "-o",
            common::path_str(&out),
        ];
        if let Some(a) = arch {
            args.extend(["--arch", a]);
        }
        common::cli(&args).output().unwrap()
    };
    let e = common::assert_fails(&run(None));
    assert!(
        e.contains("metadata is not valid") && !e.contains("--arch:"),
        "{e}"
    );
    let own = own.to_string();
    common::assert_ok(&run(Some(&own)));
    let e = common::assert_fails(&run(Some("linear,relux,linear")));
    assert!(e.contains("--arch: unknown module 'relux'"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
