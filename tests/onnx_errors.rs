//! ONNX import (`wgpu_mlp::onnx`): every class of damaged or unsupported file is refused with a
//! clean Format error naming the source and the reason, through the public API. Graphs are
//! hand-built (`common/onnx/build.rs`); `tests/onnx_ops.rs` has the ops that import.

#[path = "common/onnx/mod.rs"]
mod helpers;

use helpers::build::{
    AttributeProto, Dim, NodeProto, TensorProto, ValueInfoProto, attr_i, attr_s, dtype, eye, file,
    model, node, tensor, value,
};
use helpers::fixtures::models;
use helpers::import::{import, refused};
use helpers::protobuf::{Pb, write_varint};
use wgpu_mlp::{Error, onnx};

#[test]
fn damaged_and_unsupported_files_give_clean_errors() {
    let good = std::fs::read(models().join("seq_ln.legacy.onnx")).unwrap();
    // Damaged: empty, not protobuf, other formats, truncated anywhere.
    let mut damaged: Vec<Vec<u8>> = vec![
        vec![],
        b"not a model".to_vec(),
        std::fs::read(models().join("seq_ln.x.npy")).unwrap(),
        std::fs::read(models().join("seq_ln.safetensors")).unwrap(),
    ];
    for k in 1..20 {
        damaged.push(good[..good.len() * k / 20].to_vec());
    }
    for bytes in &damaged {
        refused(bytes);
    }

    let w = tensor("W", &[2, 2], &[1.0, 0.0, 0.0, 1.0]);
    // An unsupported op: the message names the op, the node, and the supported ops.
    let msg = refused(&file(
        vec![node(
            "Conv",
            "/features/conv1/Conv",
            &["x", "W"],
            &["y"],
            vec![],
        )],
        vec![w.clone()],
        &[2],
        2,
    ));
    assert!(
        msg.contains("'Conv'") && msg.contains("/features/conv1/Conv"),
        "{msg}"
    );
    for op in onnx::supported_ops() {
        assert!(msg.contains(op), "{op} missing from: {msg}");
    }
    // Two inputs.
    let gemm = node("Gemm", "/fc/Gemm", &["x", "W"], &["y"], vec![]);
    let msg = refused(&model(
        vec![gemm.clone()],
        vec![w.clone()],
        vec![value("x", &[2]), value("x2", &[2])],
        vec![value("y", &[2])],
    ));
    assert!(msg.contains("2 inputs"), "{msg}");
    // Weights in external data.
    let external = TensorProto {
        dims: vec![2, 2],
        data_type: dtype::FLOAT,
        name: "W".into(),
        external_data: vec![("location".into(), "w.bin".into())],
        data_location: 1,
        ..Default::default()
    };
    let msg = refused(&file(vec![gemm.clone()], vec![external], &[2], 2));
    assert!(
        msg.contains("onnx::load") && msg.contains("'w.bin'"),
        "{msg}"
    );
    // A missing initializer.
    let msg = refused(&file(vec![gemm], vec![], &[2], 2));
    assert!(
        msg.contains("'W'") && msg.contains("missing initializer"),
        "{msg}"
    );
    // A residual connection is not a chain.
    let msg = refused(&file(
        vec![
            node("Gemm", "/a/Gemm", &["x", "W"], &["h"], vec![]),
            node("Gemm", "/b/Gemm", &["h", "W"], &["h2"], vec![]),
            node("Add", "/Add", &["h2", "h"], &["y"], vec![]),
        ],
        vec![w],
        &[2],
        2,
    ));
    assert!(msg.contains("not a chain"), "{msg}");
    // A missing file is an I/O error with its path.
    assert!(matches!(
        onnx::load(models().join("missing.onnx")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn damaged_files_give_clean_errors() {
    let good = std::fs::read(models().join("seq_bn.legacy.onnx")).unwrap();
    let npy_file = std::fs::read(models().join("seq_bn.x.npy")).unwrap();
    let st = std::fs::read(models().join("seq_bn.safetensors")).unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("text".into(), b"hello, this is not a model\n".to_vec()),
        ("npy".into(), npy_file),
        ("safetensors".into(), st),
        ("a group".into(), vec![0x0b, 0x0c]),
        (
            "varint too long".into(),
            vec![
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
        ),
        // A ModelProto with only ir_version = 8.
        ("no graph".into(), Pb::default().int(1, 8).into_bytes()),
    ];
    for cut in [
        1,
        2,
        10,
        100,
        good.len() / 3,
        good.len() / 2,
        good.len() - 1,
    ] {
        cases.push((format!("truncated at {cut}"), good[..cut].to_vec()));
    }
    let mut flipped = good.clone();
    flipped[40] ^= 0x80;
    cases.push(("flipped length".into(), flipped));
    for (what, bytes) in cases {
        let msg = refused(&bytes);
        assert!(!msg.is_empty(), "{what}");
        println!("{what}: {msg}");
    }
    // 20,000 nested messages in a field the importer does not declare (ModelProto's
    // training_info, 20): skipped without recursion, then the missing graph is reported.
    let depth = 20_000;
    let mut sizes = vec![0usize; depth + 1];
    for k in (0..depth).rev() {
        let mut len = Vec::new();
        write_varint(&mut len, sizes[k + 1] as u64);
        sizes[k] = 2 + len.len() + sizes[k + 1];
    }
    let mut nested = Vec::with_capacity(sizes[0]);
    for k in 0..depth {
        nested.extend_from_slice(&[0xa2, 0x01]);
        write_varint(&mut nested, sizes[k + 1] as u64);
    }
    assert!(refused(&nested).contains("no graph"));
    let missing = onnx::load(models().join("no-such-file.onnx")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing:?}");
}

#[test]
fn unsupported_op_names_the_op_the_node_and_the_supported_ops() {
    let nodes = vec![node(
        "Conv",
        "/features/conv1/Conv",
        &["x", "W"],
        &["y"],
        vec![],
    )];
    let msg = refused(&file(nodes, vec![tensor("W", &[2, 2], &[0.0; 4])], &[2], 2));
    assert!(msg.contains("'Conv'"), "{msg}");
    assert!(msg.contains("/features/conv1/Conv"), "{msg}");
    for op in [
        "Gemm",
        "MatMul",
        "LayerNormalization",
        "Softmax",
        "Erf",
        "Where",
        "Clip",
    ] {
        assert!(msg.contains(op), "{op} in {msg}");
    }
    // Another domain, and control characters in names are escaped.
    let mut custom = node("FusedGemm", "n\u{1b}[2J", &["x"], &["y"], vec![]);
    custom.domain = "com.microsoft".into();
    let msg = refused(&file(vec![custom], vec![], &[2], 2));
    assert!(
        msg.contains("com.microsoft") && msg.contains("FusedGemm"),
        "{msg}"
    );
    assert!(!msg.contains('\u{1b}'), "{msg}");
}

#[test]
fn graphs_that_are_not_an_mlp_are_refused_with_the_reason() {
    let (g, w) = eye();
    let expect = |bytes: Vec<u8>, needle: &str| {
        let msg = refused(&bytes);
        assert!(msg.contains(needle), "expected '{needle}' in: {msg}");
    };
    // The identity Gemm between these graph inputs and outputs.
    let io = |inputs: Vec<ValueInfoProto>, outputs: Vec<ValueInfoProto>| {
        model(vec![g.clone()], vec![w.clone()], inputs, outputs)
    };
    let h = || vec![value("h", &[2])];
    // The identity Gemm, then these nodes.
    let eye_then =
        |nodes: Vec<NodeProto>| file([vec![g.clone()], nodes].concat(), vec![w.clone()], &[2], 2);
    // Two inputs, two outputs, none.
    expect(
        io(vec![value("x", &[2]), value("x2", &[2])], h()),
        "2 inputs",
    );
    expect(
        io(
            vec![value("x", &[2])],
            vec![value("h", &[2]), value("x", &[2])],
        ),
        "2 outputs",
    );
    expect(io(vec![], h()), "no input");
    // Missing initializer.
    expect(
        file(
            vec![node("Gemm", "/fc/Gemm", &["x", "W"], &["y"], vec![])],
            vec![],
            &[2],
            2,
        ),
        "missing initializer",
    );
    // A residual connection.
    expect(
        eye_then(vec![
            node("Relu", "/r", &["h"], &["r"], vec![]),
            node("Gemm", "/fc2/Gemm", &["r", "W"], &["h2"], vec![]),
            node("Add", "/Add", &["h2", "h"], &["y"], vec![]),
        ]),
        "not a chain",
    );
    // Shapes that do not chain, and a declared output that does not match.
    let nodes = vec![node(
        "Gemm",
        "/fc/Gemm",
        &["x", "W"],
        &["y"],
        vec![attr_i("transB", 1)],
    )];
    expect(
        file(
            nodes.clone(),
            vec![tensor("W", &[4, 3], &[0.0; 12])],
            &[2],
            4,
        ),
        "the data has 2 features",
    );
    expect(
        file(
            vec![g.clone()]
                .into_iter()
                .map(|mut n| {
                    n.output = vec!["y".into()];
                    n
                })
                .collect(),
            vec![w.clone()],
            &[2],
            5,
        ),
        "declared [batch, 5]",
    );
    // Weights computed from the input; a constant output.
    expect(
        file(
            vec![node("MatMul", "/m", &["x", "x"], &["y"], vec![])],
            vec![],
            &[2],
            2,
        ),
        "computed from the graph input",
    );
    expect(
        file(
            vec![node("Identity", "/i", &["W"], &["y"], vec![])],
            vec![w.clone()],
            &[2],
            2,
        ),
        "constant",
    );
    // No Linear at all.
    expect(
        file(
            vec![node("Relu", "/r", &["x"], &["y"], vec![])],
            vec![],
            &[2],
            2,
        ),
        "Linear",
    );
    // Unsupported attributes of supported ops.
    let with = |op: &str, attrs: Vec<AttributeProto>| {
        let mut nodes = vec![g.clone(), node(op, "/op", &["h"], &["y"], attrs)];
        if op == "LayerNormalization" || op == "BatchNormalization" {
            nodes[1]
                .input
                .extend(["s".to_string(), "b".into(), "s".into(), "s".into()]);
            nodes[1]
                .input
                .truncate(if op == "LayerNormalization" { 2 } else { 5 });
        }
        file(
            nodes,
            vec![
                w.clone(),
                tensor("s", &[2], &[1.0, 1.0]),
                tensor("b", &[2], &[0.0, 0.0]),
            ],
            &[2],
            2,
        )
    };
    expect(with("Softmax", vec![attr_i("axis", 0)]), "axis 0");
    expect(
        with("LayerNormalization", vec![attr_i("axis", 0)]),
        "axis 0",
    );
    expect(
        with("BatchNormalization", vec![attr_i("training_mode", 1)]),
        "training mode",
    );
    expect(with("Flatten", vec![attr_i("axis", 0)]), "axis 0");
    expect(
        with("Gelu", vec![attr_s("approximate", "erf")]),
        "approximate",
    );
    let nodes = vec![node(
        "Gemm",
        "/fc/Gemm",
        &["x", "W"],
        &["y"],
        vec![attr_i("transA", 1)],
    )];
    expect(file(nodes, vec![w.clone()], &[2], 2), "transA");
    // The Dropout mask used, training mode on.
    expect(
        eye_then(vec![
            node("Dropout", "/d", &["h"], &["d", "mask"], vec![]),
            node("Where", "/i", &["mask", "d", "h"], &["y"], vec![]),
        ]),
        "dropout mask",
    );
    let on = TensorProto {
        name: "on".into(),
        data_type: dtype::BOOL,
        int32_data: vec![1],
        ..Default::default()
    };
    let nodes = vec![
        g.clone(),
        node("Dropout", "/d", &["h", "", "on"], &["y"], vec![]),
    ];
    expect(file(nodes, vec![w.clone(), on], &[2], 2), "training mode");
    // A float where a boolean belongs, and the reverse.
    expect(
        eye_then(vec![node("Where", "/w", &["h", "h", "h"], &["y"], vec![])]),
        "a boolean expected",
    );
    expect(
        eye_then(vec![
            node("Greater", "/g", &["h", "h"], &["c"], vec![]),
            node("Relu", "/r", &["c"], &["y"], vec![]),
        ]),
        "a float expected",
    );
    // A constant that would change the data's shape.
    let nodes = vec![g.clone(), node("Add", "/a", &["h", "c"], &["y"], vec![])];
    expect(
        file(
            nodes,
            vec![w.clone(), tensor("c", &[3, 2], &[0.0; 6])],
            &[2],
            2,
        ),
        "does not broadcast",
    );
    // A cycle; a value written twice.
    expect(
        eye_then(vec![
            node("Relu", "/a", &["h", "z"], &["y"], vec![]),
            node("Relu", "/b", &["y"], &["z"], vec![]),
        ]),
        "cycle",
    );
    expect(
        eye_then(vec![
            node("Relu", "/a", &["h"], &["y"], vec![]),
            node("Relu", "/b", &["h"], &["y"], vec![]),
        ]),
        "both write",
    );
    // Input shapes.
    let mut no_shape = value("x", &[2]);
    no_shape.shape = None;
    expect(io(vec![no_shape], h()), "no shape");
    let mut symbolic = value("x", &[2]);
    symbolic.shape.as_mut().unwrap()[1] = Dim::Param("n".into());
    expect(io(vec![symbolic], h()), "symbolic");
    let mut ints = value("x", &[2]);
    ints.elem_type = dtype::INT64;
    expect(io(vec![ints], h()), "INT64");
}

#[test]
fn tensors_that_cannot_be_read_are_refused_by_name() {
    let gemm = || {
        vec![node(
            "Gemm",
            "/fc/Gemm",
            &["x", "W"],
            &["y"],
            vec![attr_i("transB", 1)],
        )]
    };
    let expect = |w: TensorProto, needles: &[&str]| {
        let msg = refused(&file(gemm(), vec![w], &[2], 2));
        for n in needles {
            assert!(msg.contains(n), "expected '{n}' in: {msg}");
        }
    };
    let mut external = tensor("W", &[2, 2], &[]);
    external.data_location = 1;
    external.external_data = vec![("location".into(), "model.onnx.data".into())];
    expect(
        external,
        &["'W'", "from_bytes_with_data", "model.onnx.data"],
    );
    let mut int8 = tensor("W", &[2, 2], &[]);
    int8.data_type = dtype::INT8;
    int8.raw_data = vec![1, 2, 3, 4];
    expect(int8, &["'W'", "INT8", "FLOAT, DOUBLE, FLOAT16"]);
    expect(
        tensor("W", &[2, 2], &[1.0, 2.0, 3.0]),
        &["'W'", "12 bytes of raw_data"],
    );
    let mut typed = tensor("W", &[2, 2], &[]);
    typed.float_data = vec![1.0; 5];
    expect(typed, &["5 values in float_data"]);
    expect(tensor("W", &[1 << 40, 1 << 40], &[]), &["elements"]);
    expect(tensor("W", &[-2, 2], &[]), &["negative"]);
    expect(tensor("W", &[1; 17], &[1.0]), &["dimensions"]);
    // float16, float64 and bfloat16 weights load (f16 via int32_data, the others raw).
    let w = [1.5f32, -2.0, 0.25, 8.0];
    let w_2x2 = |data_type| TensorProto {
        name: "W".into(),
        dims: vec![2, 2],
        data_type,
        ..Default::default()
    };
    let f16 = TensorProto {
        int32_data: w
            .iter()
            .map(|&v| i32::from(half::f16::from_f32(v).to_bits()))
            .collect(),
        ..w_2x2(dtype::FLOAT16)
    };
    let f64s = TensorProto {
        raw_data: w.iter().flat_map(|&v| f64::from(v).to_le_bytes()).collect(),
        ..w_2x2(dtype::DOUBLE)
    };
    let bf16 = TensorProto {
        raw_data: w
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_bits().to_le_bytes())
            .collect(),
        ..w_2x2(dtype::BFLOAT16)
    };
    for t in [f16, f64s, bf16] {
        let m = import(&file(gemm(), vec![t], &[2], 2)).unwrap();
        assert_eq!(m.linears().next().unwrap().weight(), w);
    }
}

#[test]
fn caps_refuse_before_allocating() {
    // More nodes than MAX_NODES (tiny Relu nodes).
    let nodes: Vec<NodeProto> = (0..=onnx::MAX_NODES)
        .map(|i| {
            node(
                "Relu",
                "",
                &[&format!("v{i}")],
                &[&format!("v{}", i + 1)],
                vec![],
            )
        })
        .collect();
    let msg = refused(&file(nodes, vec![], &[2], 2));
    assert!(msg.contains("nodes"), "{msg}");
    // A node with millions of empty attributes: 2 bytes each on the wire, far more decoded.
    let mut n = node("Relu", "r", &["x"], &["y"], vec![]).pb().into_bytes();
    for _ in 0..3_000_000 {
        n.extend_from_slice(&[0x2a, 0x00]);
    }
    let mut graph = vec![0x0a];
    write_varint(&mut graph, n.len() as u64);
    graph.extend_from_slice(&n);
    let mut model = vec![0x3a];
    write_varint(&mut model, graph.len() as u64);
    model.extend_from_slice(&graph);
    let msg = refused(&model);
    assert!(msg.contains("MiB"), "{msg}");
}

#[test]
fn constants_made_at_import_are_budgeted() {
    // A [C] constant on [batch, R, C] data broadcasts to R·C values: 100 distinct ones on a
    // 512 × 512 input would make 26M values from 200 KB of constants.
    let (r, c) = (512i64, 512i64);
    let mut nodes = Vec::new();
    let mut inits = vec![tensor("pad", &[r * c], &vec![0.0; (r * c) as usize])];
    let mut at = "x".to_string();
    for i in 0..100 {
        let out = format!("a{i}");
        nodes.push(node(
            "Add",
            &format!("/a{i}"),
            &[&at, &format!("k{i}")],
            &[&out],
            vec![],
        ));
        inits.push(tensor(&format!("k{i}"), &[c], &vec![i as f32; c as usize]));
        at = out;
    }
    nodes.push(node("Flatten", "/f", &[&at], &["y"], vec![]));
    let msg = refused(&file(nodes, inits, &[r, c], r * c));
    assert!(msg.contains("constant values"), "{msg}");
    // Folding: [1000, 1] + [1, 1000] makes 1M values; twenty of them exceed the budget.
    let mut nodes = Vec::new();
    let mut inits = vec![
        tensor("col", &[1000, 1], &[1.0; 1000]),
        tensor("row", &[1, 1000], &[1.0; 1000]),
    ];
    let mut at = "col".to_string();
    for i in 0..20 {
        let out = format!("f{i}");
        nodes.push(node(
            "Add",
            &format!("/f{i}"),
            &[&at, "row"],
            &[&out],
            vec![],
        ));
        at = out;
    }
    let (g, w) = eye();
    nodes.push(g);
    nodes.push(node("Mul", "/m", &["h", &at], &["y"], vec![]));
    inits.push(w);
    let msg = refused(&file(nodes, inits, &[2], 2));
    assert!(msg.contains("constant values"), "{msg}");
    // An input wider than the file could hold a first layer for.
    let nodes = vec![node("Relu", "/r", &["x"], &["y"], vec![])];
    let msg = refused(&file(nodes, vec![], &[1 << 30], 1 << 30));
    assert!(msg.contains("features, more than the file"), "{msg}");
}
