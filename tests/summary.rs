//! `summary::summary` against real torchsummary 1.5.1 output and hand-computed MB figures.

use wgpu_mlp::summary::summary;
use wgpu_mlp::{Activation, Layer, Linear, Mlp};

/// Builds a model from `sizes` (input width, then each layer's width) and one activation per
/// layer. Weights do not matter for the summary; they are non-constant so the model carries no
/// symmetry diagnostics.
fn model_with(sizes: &[usize], acts: &[Activation], bias: bool) -> Mlp {
    assert_eq!(sizes.len(), acts.len() + 1);
    let layers = sizes
        .windows(2)
        .zip(acts)
        .map(|(w, &activation)| {
            let (n_in, n_out) = (w[0], w[1]);
            let weight = (0..n_in * n_out).map(|i| (i % 7) as f32 * 0.1).collect();
            let bias = bias.then(|| vec![0.0; n_out]);
            Layer {
                linear: Linear::new(n_in, n_out, weight, bias).unwrap(),
                activation,
            }
        })
        .collect();
    Mlp::from_layers(layers).unwrap()
}

fn model(sizes: &[usize], acts: &[Activation]) -> Mlp {
    model_with(sizes, acts, true)
}

fn acts(names: &[&str]) -> Vec<Activation> {
    names.iter().map(|n| n.parse().unwrap()).collect()
}

/// Python's `'%0.2f' % x` for the non-negative values these tests use, computed independently of
/// the crate: exact integer arithmetic on `x = k / 2^shift`, ties to even.
fn py_2f(k: u128, shift: u32) -> String {
    let scaled = k * 100;
    let mut q = scaled >> shift;
    let r = scaled - (q << shift);
    let half = 1u128 << (shift - 1);
    if r > half || (r == half && q % 2 == 1) {
        q += 1;
    }
    format!("{}.{:02}", q / 100, q % 100)
}

/// The four MB lines for element counts (input, output rows, params), as torchsummary computes
/// them: MiB at 4 bytes per element, output doubled, total from the unrounded parts. All values
/// are k / 2^18, so the arithmetic here is exact.
fn mb_lines(input_elems: u128, output_elems: u128, params: u128) -> String {
    let total = input_elems + 2 * output_elems + params;
    format!(
        "Input size (MB): {}\nForward/backward pass size (MB): {}\nParams size (MB): {}\n\
         Estimated Total Size (MB): {}\n",
        py_2f(input_elems, 18),
        py_2f(2 * output_elems, 18),
        py_2f(params, 18),
        py_2f(total, 18),
    )
}

/// [`mb_lines`] followed by the closing separator: how every summary ends.
fn footer(input_elems: u128, output_elems: u128, params: u128) -> String {
    format!(
        "{}{}\n",
        mb_lines(input_elems, output_elems, params),
        "-".repeat(64)
    )
}

/// Fails with both texts shown line by line, so a one-character difference is easy to spot.
#[track_caller]
fn assert_text(got: &str, want: &str) {
    if got != want {
        panic!("summary differs.\n--- got ---\n{got:?}\n--- want ---\n{want:?}\n\n{got}\n{want}");
    }
}

// The three cases of tests/data/cases.json, with torchsummary 1.5.1's printed text.
struct Case {
    sizes: &'static [usize],
    acts: &'static [&'static str],
    summary: &'static str,
    summary64: &'static str,
}

const CASES: [Case; 3] = [
    Case {
        sizes: &[3, 3, 2],
        acts: &["sigmoid", "identity"],
        summary: include_str!("data/seed_example.summary.txt"),
        summary64: include_str!("data/seed_example.summary64.txt"),
    },
    Case {
        sizes: &[10, 16, 8, 3],
        acts: &["relu", "tanh", "softmax"],
        summary: include_str!("data/small_classifier.summary.txt"),
        summary64: include_str!("data/small_classifier.summary64.txt"),
    },
    Case {
        sizes: &[6, 12, 1],
        acts: &["leaky_relu:0.1", "identity"],
        summary: include_str!("data/leaky_regression.summary.txt"),
        summary64: include_str!("data/leaky_regression.summary64.txt"),
    },
];

#[test]
fn matches_torchsummary_fixtures_character_for_character() {
    for case in &CASES {
        let m = model(case.sizes, &acts(case.acts));
        assert_text(&summary(&m, -1), case.summary);
        assert_text(&summary(&m, 64), case.summary64);
    }
}

#[test]
fn fixtures_are_newline_terminated_lines_of_the_documented_layout() {
    for case in &CASES {
        for text in [case.summary, case.summary64] {
            assert!(
                text.ends_with(
                    "----------------------------------------------------------------\n"
                )
            );
            assert!(!text.ends_with("\n\n"));
        }
    }
    let m = model(&[3, 3, 2], &acts(&["sigmoid", "identity"]));
    let text = summary(&m, -1);
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "-".repeat(64));
    assert_eq!(
        lines[1],
        "        Layer (type)               Output Shape         Param #"
    );
    assert_eq!(lines[2], "=".repeat(64));
    for row in [lines[1], lines[3], lines[4], lines[5]] {
        assert_eq!(row.len(), 63, "{row:?}");
    }
    assert_eq!(lines.len(), 16);
}

#[test]
fn seed_example_has_20_params_and_an_activation_row() {
    let m = model(&[3, 3, 2], &[Activation::Sigmoid, Activation::Identity]);
    assert_eq!(m.param_count(), 20);
    let text = summary(&m, -1);
    assert!(text.contains("\n            Linear-1                    [-1, 3]              12\n"));
    assert!(text.contains("\n           Sigmoid-2                    [-1, 3]               0\n"));
    assert!(text.contains("\n            Linear-3                    [-1, 2]               8\n"));
    assert!(text.contains("\nTotal params: 20\nTrainable params: 20\nNon-trainable params: 0\n"));
}

const MNIST_ROWS: &str = "\
----------------------------------------------------------------
        Layer (type)               Output Shape         Param #
================================================================
            Linear-1                  [-1, 128]         100,480
              ReLU-2                  [-1, 128]               0
            Linear-3                   [-1, 64]           8,256
              ReLU-4                   [-1, 64]               0
            Linear-5                   [-1, 10]             650
           Softmax-6                   [-1, 10]               0
================================================================
Total params: 109,386
Trainable params: 109,386
Non-trainable params: 0
----------------------------------------------------------------
";

#[test]
fn mnist_sized_model_at_batch_minus_one() {
    let m = model(&[784, 128, 64, 10], &acts(&["relu", "relu", "softmax"]));
    assert_eq!(m.param_count(), 109_386);
    // By hand: input 784·4/2^20 = 0.00299 → 0.00; fwd/bwd 2·(128+128+64+64+10+10)·4/2^20
    // = 0.00308 → 0.00; params 109,386·4/2^20 = 0.41727 → 0.42; total 0.42335 → 0.42.
    let by_hand = "\
Input size (MB): 0.00
Forward/backward pass size (MB): 0.00
Params size (MB): 0.42
Estimated Total Size (MB): 0.42
----------------------------------------------------------------
";
    assert_eq!(
        mb_lines(784, 404, 109_386),
        by_hand.split_once("---").unwrap().0
    );
    assert_text(&summary(&m, -1), &format!("{MNIST_ROWS}{by_hand}"));
}

#[test]
fn mnist_sized_model_at_batch_64_and_a_huge_batch() {
    let m = model(&[784, 128, 64, 10], &acts(&["relu", "relu", "softmax"]));
    let rows64 = MNIST_ROWS.replace("[-1, ", "[64, ");
    // 784·64·4/2^20 = 0.19140625 → 0.19; 2·64·404·4/2^20 = 0.197265625 → 0.20;
    // total 0.41727 + 0.19727 + 0.19141 = 0.80595 → 0.81.
    let mb64 = "\
Input size (MB): 0.19
Forward/backward pass size (MB): 0.20
Params size (MB): 0.42
Estimated Total Size (MB): 0.81
";
    assert_eq!(mb_lines(784 * 64, 404 * 64, 109_386), mb64);
    let dashes = "-".repeat(64);
    assert_text(&summary(&m, 64), &format!("{rows64}{mb64}{dashes}\n"));

    // One million rows: 784e6·4/2^20 = 2990.72265625 → 2990.72; 2·404e6·4/2^20 = 3082.275390625
    // → 3082.28; total 6073.41532… → 6073.42.
    let b = 1_000_000u128;
    let mb_huge = "\
Input size (MB): 2990.72
Forward/backward pass size (MB): 3082.28
Params size (MB): 0.42
Estimated Total Size (MB): 6073.42
";
    assert_eq!(mb_lines(784 * b, 404 * b, 109_386), mb_huge);
    let text = summary(&m, 1_000_000);
    assert!(text.contains("\n            Linear-1             [1000000, 128]         100,480\n"));
    assert!(text.ends_with(&format!("{mb_huge}{dashes}\n")), "{text}");

    // 10^12 rows: values in the millions of MiB.
    let b = 1_000_000_000_000u128;
    let text = summary(&m, 1_000_000_000_000);
    assert!(text.ends_with(&format!(
        "{}{dashes}\n",
        mb_lines(784 * b, 404 * b, 109_386)
    )));
    assert!(text.contains("Input size (MB): 2990722656.25\n"), "{text}");
}

#[test]
fn layers_without_bias_count_in_times_out() {
    let m = model_with(&[4, 3, 2], &[Activation::Relu, Activation::Identity], false);
    assert_eq!(m.param_count(), 18);
    let want = format!(
        "\
----------------------------------------------------------------
        Layer (type)               Output Shape         Param #
================================================================
            Linear-1                    [-1, 3]              12
              ReLU-2                    [-1, 3]               0
            Linear-3                    [-1, 2]               6
================================================================
Total params: 18
Trainable params: 18
Non-trainable params: 0
----------------------------------------------------------------
{}----------------------------------------------------------------
",
        mb_lines(4, 3 + 3 + 2, 18)
    );
    assert_text(&summary(&m, -1), &want);
}

#[test]
fn exact_ties_round_half_to_even() {
    // Linear(127, 256): (127 + 1)·256 = 32,768 params → 32,768·4/2^20 = 0.125 exactly → "0.12".
    let m = model(&[127, 256], &[Activation::Identity]);
    assert_eq!(m.param_count(), 32_768);
    let text = summary(&m, -1);
    assert!(text.contains("\nParams size (MB): 0.12\n"), "{text}");
    // Total 0.125 + 0.00195 + 0.00048 = 0.1274 → 0.13 although the parts show 0.00 + 0.00 + 0.12.
    assert!(text.ends_with(&footer(127, 256, 32_768)));
    assert!(
        text.contains("\nEstimated Total Size (MB): 0.13\n"),
        "{text}"
    );

    // Batch 192: fwd/bwd 2·192·256·4/2^20 = 0.375 exactly → "0.38".
    let text = summary(&m, 192);
    assert!(
        text.contains("\nForward/backward pass size (MB): 0.38\n"),
        "{text}"
    );
    assert!(text.contains("\nInput size (MB): 0.09\n"), "{text}");
    assert!(
        text.contains("\nEstimated Total Size (MB): 0.59\n"),
        "{text}"
    );

    // Linear(639, 256): 163,840 params → 0.625 exactly → "0.62".
    let m = model(&[639, 256], &[Activation::Identity]);
    assert!(summary(&m, -1).contains("\nParams size (MB): 0.62\n"));

    // Input 128·256 = 32,768 elements → 0.125 → "0.12", also with a negative batch other than -1
    // (abs() in torchsummary); the shapes show the batch as given.
    let m = model(&[128, 1], &[Activation::Sigmoid]);
    for batch in [256, -256] {
        let text = summary(&m, batch);
        assert!(text.contains("\nInput size (MB): 0.12\n"), "{text}");
        assert!(text.contains(&format!("  [{batch}, 1]  ")), "{text}");
    }

    // A total that is itself a tie: Linear(7, 1) at batch 3640 has 25,480 input elements,
    // 2·3,640 output elements and 8 params: 32,768 elements = 0.125 MiB → "0.12", while the parts
    // show 0.10 + 0.03 + 0.00.
    let m = model(&[7, 1], &[Activation::Identity]);
    let text = summary(&m, 3640);
    let want_mb = "\
Input size (MB): 0.10
Forward/backward pass size (MB): 0.03
Params size (MB): 0.00
Estimated Total Size (MB): 0.12
";
    assert_eq!(mb_lines(7 * 3640, 3640, 8), want_mb);
    assert!(text.contains(want_mb), "{text}");
}

#[test]
fn every_activation_gets_its_module_row_and_identity_none() {
    let all = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::Softmax,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Silu,
        Activation::Elu(0.5),
        Activation::Identity,
    ];
    let sizes = [2usize; 11];
    let m = model(&sizes, &all);
    let text = summary(&m, 5);
    let keys: Vec<&str> = text
        .lines()
        .skip(3)
        .take_while(|l| !l.starts_with('='))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "Linear-1",
            "Sigmoid-2",
            "Linear-3",
            "Tanh-4",
            "Linear-5",
            "ReLU-6",
            "Linear-7",
            "LeakyReLU-8",
            "Linear-9",
            "Softmax-10",
            "Linear-11",
            "GELU-12",
            "Linear-13",
            "GELU-14",
            "Linear-15",
            "SiLU-16",
            "Linear-17",
            "ELU-18",
            "Linear-19",
        ]
    );
    assert!(text.contains("\n          Softmax-10                     [5, 2]               0\n"));
    // 10 layers of 6 params; 19 rows of 5·2 outputs.
    assert!(text.contains("\nTotal params: 60\n"));
    assert!(text.ends_with(&footer(2 * 5, 19 * 10, 60)));
}

#[test]
fn over_long_fields_push_the_columns_right_and_zero_batch_works() {
    let m = model(&[2, 300], &[Activation::Relu]);
    let text = summary(&m, i64::MAX);
    // 26 characters: one more than the column, so no padding before it.
    assert!(
        text.contains("\n            Linear-1  [9223372036854775807, 300]             900\n"),
        "{text}"
    );
    let text = summary(&m, 0);
    assert!(text.contains("\n            Linear-1                   [0, 300]             900\n"));
    assert!(text.ends_with(&footer(0, 0, 900)));
}

#[test]
fn large_param_counts_get_thousands_separators() {
    // Linear(4096, 4096) + Linear(4096, 1000): 16,781,312 + 4,097,000 params.
    let m = model_with(&[4096, 4096, 1000], &acts(&["relu", "identity"]), true);
    let text = summary(&m, -1);
    assert!(text.contains("\n            Linear-1                 [-1, 4096]      16,781,312\n"));
    assert!(text.contains("\n            Linear-3                 [-1, 1000]       4,097,000\n"));
    assert!(text.contains("\nTotal params: 20,878,312\nTrainable params: 20,878,312\n"));
    // 20,878,312·4/2^20 = 79.644989… → 79.64.
    assert!(text.contains("\nParams size (MB): 79.64\n"));
    assert!(text.ends_with(&footer(4096, 4096 * 2 + 1000, 20_878_312)));
}
