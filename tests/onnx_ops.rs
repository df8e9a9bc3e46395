//! ONNX import (`wgpu_mlp::onnx`): each op's semantics on hand-built graphs
//! (`common/onnx/build.rs`), through the public API. `tests/onnx.rs` has the PyTorch fixtures
//! and the fuzz, `tests/onnx_errors.rs` the files that are refused.

#[path = "common/onnx/mod.rs"]
mod helpers;

use helpers::build::{
    NodeProto, TensorProto, attr_f, attr_i, attr_t, eye, file, node, tensor, tensor_i64,
};
use helpers::import::{after_eye, import, refused};
use wgpu_mlp::{Activation, Matrix, Mlp, Module, cpu, summary};

fn run(m: &Mlp, rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let x = Matrix::from_rows(rows).unwrap();
    let y = cpu::forward(m, &x).unwrap();
    (0..y.rows()).map(|r| y.row(r).to_vec()).collect()
}

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() <= 1e-6 + 1e-6 * b.abs()
}

#[test]
fn a_hand_built_file_loads() {
    let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let bytes = file(
        vec![
            node(
                "Gemm",
                "/fc/Gemm",
                &["x", "W", "b"],
                &["h"],
                vec![attr_i("transB", 1)],
            ),
            node("Relu", "/act/Relu", &["h"], &["y"], vec![]),
        ],
        vec![
            tensor("W", &[3, 2], &w),
            tensor("b", &[3], &[0.5, -100.0, 0.0]),
        ],
        &[2],
        3,
    );
    let m = import(&bytes).unwrap();
    let y = cpu::forward(&m, &Matrix::from_rows(&[vec![1.0, 1.0]]).unwrap()).unwrap();
    assert_eq!(y.as_slice(), [3.5, 0.0, 11.0]);
    assert_eq!(m.modules()[1], Module::Activation(Activation::Relu));
}

#[test]
fn gemm_alpha_beta_and_trans_b() {
    // y = 0.5 · x·B + 2 · C with B [in, out] (transB = 0).
    let b = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [2, 3]
    let c = [0.25, -1.0, 3.0];
    let nodes = vec![node(
        "Gemm",
        "g",
        &["x", "B", "C"],
        &["y"],
        vec![attr_f("alpha", 0.5), attr_f("beta", 2.0)],
    )];
    let m = import(&file(
        nodes,
        vec![tensor("B", &[2, 3], &b), tensor("C", &[3], &c)],
        &[2],
        3,
    ))
    .unwrap();
    let x = [1.5f32, -2.0];
    let y = &run(&m, &[x.to_vec()])[0];
    for o in 0..3 {
        let dot = f64::from(x[0]) * f64::from(b[o]) + f64::from(x[1]) * f64::from(b[3 + o]);
        assert!(close(y[o], 0.5 * dot + 2.0 * f64::from(c[o])), "{y:?}");
    }
    // The Linear has no bias; α and β are in the epilogue, which has no summary row.
    assert!(matches!(&m.modules()[0], Module::Linear(l) if l.bias().is_none()));
    assert_eq!(summary::rows(&m).len(), 1);
    // α = β = 1: exactly a Linear with bias, nothing else.
    let nodes = vec![node("Gemm", "g", &["x", "B", "C"], &["y"], vec![])];
    let m = import(&file(
        nodes,
        vec![tensor("B", &[2, 3], &b), tensor("C", &[1, 3], &c)],
        &[2],
        3,
    ))
    .unwrap();
    assert_eq!(m.modules().len(), 1);
    assert_eq!(m.linears().next().unwrap().bias(), Some(&c[..]));
    assert_eq!(
        m.linears().next().unwrap().weight(),
        &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
}

#[test]
fn matmul_then_add_is_a_linear_with_bias_in_the_same_scope() {
    let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [2, 3]
    let b = [0.5, -0.5, 1.0];
    let inits = || vec![tensor("W", &[2, 3], &w), tensor("b", &[3], &b)];
    let same = vec![
        node("MatMul", "/fc/MatMul", &["x", "W"], &["p"], vec![]),
        node("Add", "/fc/Add", &["p", "b"], &["y"], vec![]),
    ];
    let m = import(&file(same, inits(), &[2], 3)).unwrap();
    assert_eq!(m.modules().len(), 1);
    assert_eq!(m.linears().next().unwrap().bias(), Some(&b[..]));
    // `x @ W + b` at the top of forward(): an Add of its own (no row), same values.
    let functional = vec![
        node("MatMul", "/fc/MatMul", &["x", "W"], &["p"], vec![]),
        node("Add", "/Add", &["b", "p"], &["y"], vec![]),
    ];
    let f = import(&file(functional, inits(), &[2], 3)).unwrap();
    assert_eq!(f.modules().len(), 2);
    assert!(matches!(
        &f.modules()[1],
        Module::Elementwise { class: None, .. }
    ));
    let rows = [vec![1.0, -3.0], vec![0.5, 2.0]];
    assert_eq!(run(&m, &rows), run(&f, &rows));
}

#[test]
fn elementwise_subgraphs_compute_onnx_semantics() {
    let x = [-7.0f32, -2.5, -0.5, 0.0, 0.4, 1.0, 3.0, 9.0];
    let rows: Vec<Vec<f32>> = x.iter().map(|&v| vec![v, -v]).collect();
    let check =
        |nodes: Vec<NodeProto>, inits: Vec<TensorProto>, f: &dyn Fn(f64) -> f64, what: &str| {
            let m = after_eye(nodes, inits).unwrap_or_else(|e| panic!("{what}: {e}"));
            for (row, out) in rows.iter().zip(run(&m, &rows)) {
                for (&xi, yi) in row.iter().zip(out) {
                    let want = f(f64::from(xi));
                    assert!(close(yi, want), "{what}({xi}) = {yi}, expected {want}");
                }
            }
            m
        };
    let scalar = |name: &str, v: f32| tensor(name, &[], &[v]);
    // Clip with constant bounds is Hardtanh / ReLU6; one bound is a max or min.
    let m = check(
        vec![node("Clip", "/a/Clip", &["h", "lo", "hi"], &["y"], vec![])],
        vec![scalar("lo", 0.0), scalar("hi", 6.0)],
        &|v| v.clamp(0.0, 6.0),
        "Clip(0, 6)",
    );
    assert_eq!(m.modules()[1], Module::Activation(Activation::Relu6));
    check(
        vec![node("Clip", "/a/Clip", &["h", "", "hi"], &["y"], vec![])],
        vec![scalar("hi", 0.5)],
        &|v| v.min(0.5),
        "Clip(max = 0.5)",
    );
    check(
        vec![node("Clip", "/a/Clip", &["h", "lo", "hi"], &["y"], vec![])],
        vec![scalar("lo", 3.0), scalar("hi", 1.0)],
        &|_| 1.0,
        "Clip(3, 1)",
    );
    check(
        vec![node(
            "Clip",
            "/a/Clip",
            &["h"],
            &["y"],
            vec![attr_f("min", -1.0)],
        )],
        vec![],
        &|v| v.max(-1.0),
        "opset-6 Clip(min = -1)",
    );
    // Per-feature bounds: column 0 holds x, column 1 holds −x.
    let m = after_eye(
        vec![node("Clip", "/a/Clip", &["h", "lo"], &["y"], vec![])],
        vec![tensor("lo", &[1, 2], &[0.0, -1.0])],
    )
    .unwrap();
    for (row, out) in rows.iter().zip(run(&m, &rows)) {
        assert_eq!(out, [row[0].max(0.0), row[1].max(-1.0)]);
    }
    check(
        vec![node(
            "HardSigmoid",
            "/a/H",
            &["h"],
            &["y"],
            vec![attr_f("alpha", 0.2)],
        )],
        vec![],
        &|v| (0.2f32 as f64 * v + 0.5).clamp(0.0, 1.0),
        "HardSigmoid(0.2, 0.5)",
    );
    check(
        vec![node(
            "Selu",
            "/a/S",
            &["h"],
            &["y"],
            vec![attr_f("alpha", 2.0), attr_f("gamma", 3.0)],
        )],
        vec![],
        &|v| {
            if v > 0.0 {
                3.0 * v
            } else {
                3.0 * (2.0 * v.exp() - 2.0)
            }
        },
        "Selu(2, 3)",
    );
    check(
        vec![node("Selu", "/a/S", &["h"], &["y"], vec![])],
        vec![],
        &|v| Activation::Selu.apply_f64(v),
        "Selu",
    );
    // |x| as a DAG: Where(x > 0, x, −x); Sub, Div, Pow, Sqrt, Exp, Log, Reciprocal.
    let m = check(
        vec![
            node("Greater", "/Greater", &["h", "zero"], &["c"], vec![]),
            node("Neg", "/Neg", &["h"], &["n"], vec![]),
            node("Where", "/Where", &["c", "h", "n"], &["y"], vec![]),
        ],
        vec![scalar("zero", 0.0)],
        &f64::abs,
        "Where",
    );
    assert!(matches!(
        &m.modules()[1],
        Module::Elementwise { class: None, .. }
    ));
    check(
        vec![
            node("Mul", "/m", &["h", "h"], &["sq"], vec![]),
            node("Add", "/a", &["sq", "one"], &["p"], vec![]),
            node("Sqrt", "/s", &["p"], &["r"], vec![]),
            node("Log", "/l", &["r"], &["lg"], vec![]),
            node("Exp", "/e", &["lg"], &["ex"], vec![]),
            node("Reciprocal", "/rc", &["ex"], &["inv"], vec![]),
            node("Pow", "/pw", &["inv", "two"], &["p2"], vec![]),
            node("Sub", "/sb", &["one", "p2"], &["d"], vec![]),
            node("Div", "/dv", &["d", "two"], &["y"], vec![]),
        ],
        vec![scalar("one", 1.0), scalar("two", 2.0)],
        &|v| (1.0 - 1.0 / (v * v + 1.0)) / 2.0,
        "math chain",
    );
    // Constants folded: Div(Constant 6, Constant 3) · x, and Max/Min with several inputs.
    check(
        vec![
            node(
                "Constant",
                "/c1",
                &[],
                &["six"],
                vec![attr_t("value", tensor("", &[], &[6.0]))],
            ),
            node(
                "Constant",
                "/c2",
                &[],
                &["three"],
                vec![attr_f("value_float", 3.0)],
            ),
            node("Div", "/d", &["six", "three"], &["k"], vec![]),
            node("Mul", "/m", &["h", "k"], &["t"], vec![]),
            node("Max", "/mx", &["t", "h", "zero"], &["y"], vec![]),
        ],
        vec![scalar("zero", 0.0)],
        &|v| (2.0 * v).max(v).max(0.0),
        "folded constants",
    );
    // Softplus (no threshold in ONNX) and the activation ops.
    check(
        vec![node("Softplus", "/s", &["h"], &["y"], vec![])],
        vec![],
        &|v| v.exp().ln_1p(),
        "Softplus",
    );
    for (op, act) in [
        ("Relu", Activation::Relu),
        ("Sigmoid", Activation::Sigmoid),
        ("Tanh", Activation::Tanh),
        ("Mish", Activation::Mish),
        ("HardSwish", Activation::Hardswish),
    ] {
        let m = check(
            vec![node(op, &format!("/act/{op}"), &["h"], &["y"], vec![])],
            vec![],
            &|v| act.apply_f64(v),
            op,
        );
        assert_eq!(m.modules()[1], Module::Activation(act), "{op}");
    }
    // An identity and an inference Dropout in a module scope keep their summary rows.
    let m = after_eye(
        vec![
            node("Identity", "/id/Identity", &["h"], &["i"], vec![]),
            node(
                "Dropout",
                "/drop/Dropout",
                &["i", "ratio"],
                &["y", "mask"],
                vec![],
            ),
        ],
        vec![scalar("ratio", 0.25)],
    )
    .unwrap();
    assert_eq!(
        &m.modules()[1..],
        &[Module::Identity, Module::Dropout(0.25)]
    );
}

#[test]
fn dead_nodes_are_ignored() {
    // A Conv whose output nothing reads, and a Dropout mask nothing live reads.
    let m = after_eye(
        vec![
            node("Conv", "/dead/Conv", &["h", "W"], &["c"], vec![]),
            node("Dropout", "/d", &["h"], &["y", "mask"], vec![]),
            node("Identity", "/i", &["mask"], &["unused"], vec![]),
        ],
        vec![],
    )
    .unwrap();
    assert_eq!(m.modules().len(), 1);
}

#[test]
fn reshape_flatten_and_wider_inputs() {
    // [batch, 2, 3] · per-last-axis constant [3], flattened, then a Gemm: the constant tiles
    // over the 6 features in row-major order.
    let k = [1.0, 10.0, 100.0];
    let nodes = vec![
        node("Mul", "/scale/Mul", &["x", "k"], &["s"], vec![]),
        node(
            "Flatten",
            "/flat/Flatten",
            &["s"],
            &["f"],
            vec![attr_i("axis", 1)],
        ),
        node(
            "Gemm",
            "/fc/Gemm",
            &["f", "W"],
            &["y"],
            vec![attr_i("transB", 1)],
        ),
    ];
    let w: Vec<f32> = (0..6).map(|i| if i == 0 { 0.0 } else { 1.0 }).collect();
    let m = import(&file(
        nodes,
        vec![tensor("k", &[3], &k), tensor("W", &[1, 6], &w)],
        &[2, 3],
        1,
    ))
    .unwrap();
    assert_eq!(m.in_features(), 6);
    let y = run(&m, &[vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]);
    assert_eq!(y[0][0], 10.0 + 100.0 + 1.0 + 10.0 + 100.0);
    assert!(m.modules().contains(&Module::Flatten));
    // Reshape to [-1, F] or [0, -1] is the identity; other shapes are refused.
    for shape in [[-1, 2], [0, -1], [0, 2]] {
        let nodes = vec![node("Reshape", "/Reshape", &["h", "s"], &["y"], vec![])];
        let m = after_eye(nodes, vec![tensor_i64("s", &shape)]).unwrap();
        assert_eq!(m.modules().len(), 1, "{shape:?}");
    }
    for shape in [
        vec![2, -1],
        vec![-1],
        vec![-1, 1, 2],
        vec![-1, -1],
        vec![1, 2],
    ] {
        let nodes = vec![node("Reshape", "/Reshape", &["h", "s"], &["y"], vec![])];
        let (g, w) = eye();
        let mut all = vec![g];
        all.extend(nodes);
        let msg = refused(&file(all, vec![w, tensor_i64("s", &shape)], &[2], 2));
        assert!(msg.contains("reshapes"), "{shape:?}: {msg}");
    }
}

#[test]
fn prelu_first_and_per_feature() {
    // A one-weight PReLU before any Linear: computed, and the model's input width is right.
    let nodes = vec![
        node("PRelu", "/act/PRelu", &["x", "slope"], &["p"], vec![]),
        node(
            "Gemm",
            "/fc/Gemm",
            &["p", "W"],
            &["y"],
            vec![attr_i("transB", 1)],
        ),
    ];
    let m = import(&file(
        nodes,
        vec![
            tensor("slope", &[1], &[0.5]),
            tensor("W", &[1, 3], &[1.0, 1.0, 1.0]),
        ],
        &[3],
        1,
    ))
    .unwrap();
    assert_eq!(m.in_features(), 3);
    assert_eq!(run(&m, &[vec![-2.0, 4.0, -6.0]])[0][0], -1.0 + 4.0 - 3.0);
    let m = after_eye(
        vec![node("PRelu", "/act/PRelu", &["h", "slope"], &["y"], vec![])],
        vec![tensor("slope", &[2], &[0.5, 2.0])],
    )
    .unwrap();
    assert!(matches!(&m.modules()[1], Module::PRelu(p) if p.weight() == [0.5, 2.0]));
    assert_eq!(run(&m, &[vec![-2.0, -2.0]])[0], [-1.0, -4.0]);
}

#[test]
fn legacy_opsets_clip_defaults_broadcast_axes_and_repeated_attributes() {
    // Files in opset 6 (tests/data/edges/legacy, made with onnx.helper by make_legacy.py; the
    // values from onnx.reference): Clip with a bound left out clamps at ±FLT_MAX; Add / Mul
    // with broadcast=1 along the last axes (or one value) compute; along axis 0 (one value per
    // row) they are refused by name, as is an attribute given twice.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/edges/legacy");
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let f32s = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| f32::from_bits(u32::from_str_radix(&h.as_str().unwrap()[2..], 16).unwrap()))
            .collect()
    };
    let computed = expected["computed"].as_object().unwrap();
    assert_eq!(computed.len(), 8);
    for (name, case) in computed {
        let m = wgpu_mlp::onnx::load(dir.join(format!("{name}.onnx")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let x = Matrix::new(6, 1, f32s(&case["x"])).unwrap();
        let want = f32s(&case["y"]);
        for (what, y) in [
            ("reference", cpu::forward(&m, &x).unwrap()),
            ("fast", cpu::CpuMlp::new(&m).unwrap().forward(&x).unwrap()),
        ] {
            for (g, w) in y.as_slice().iter().zip(&want) {
                assert!(
                    (g.is_nan() && w.is_nan()) || g == w,
                    "{name} {what}: got {:?}, onnx.reference {want:?}",
                    y.as_slice()
                );
            }
        }
    }
    let refused = expected["refused"].as_object().unwrap();
    assert_eq!(refused.len(), 4);
    for name in refused.keys() {
        let err = wgpu_mlp::onnx::load(dir.join(format!("{name}.onnx")))
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"))
            .to_string();
        let why = if name == "dup_attr" {
            "gives attribute 'alpha' twice"
        } else {
            "legacy broadcast (broadcast=1, axis=0)"
        };
        assert!(
            err.contains(why) && err.contains(&format!("{name}.onnx")),
            "{name}: {err}"
        );
    }
}

#[test]
fn an_attribute_given_twice_is_refused_on_any_op() {
    // Constructed variants of dup_attr.onnx: on a structural op and on an elementwise one.
    let mut gemm = node("Gemm", "g", &["x", "W"], &["y"], vec![attr_i("transB", 1)]);
    gemm.attribute.push(attr_i("transB", 0));
    let (_, w) = eye();
    let msg = refused(&file(vec![gemm], vec![w], &[2], 2));
    assert!(msg.contains("gives attribute 'transB' twice"), "{msg}");
    let elu = node(
        "Elu",
        "e",
        &["h"],
        &["y"],
        vec![attr_f("alpha", 1.0), attr_f("alpha", 0.5)],
    );
    let msg = match after_eye(vec![elu], vec![]) {
        Err(wgpu_mlp::Error::Format { msg, .. }) => msg,
        other => panic!("{other:?}"),
    };
    assert!(msg.contains("gives attribute 'alpha' twice"), "{msg}");
}
