//! Hand-built ONNX files: the messages of `onnx.proto` the tests need, as plain structs written
//! with [`Pb`] (the bytes prost would write for the importer's own declarations), and short
//! constructors, so a test states a graph in a few lines: [`file`] of [`node`]s and
//! [`tensor`]s.

use super::protobuf::Pb;

/// `TensorProto.DataType` values.
pub mod dtype {
    /// float32.
    pub const FLOAT: i32 = 1;
    /// int8.
    pub const INT8: i32 = 3;
    /// int64.
    pub const INT64: i32 = 7;
    /// bool.
    pub const BOOL: i32 = 9;
    /// float16.
    pub const FLOAT16: i32 = 10;
    /// float64.
    pub const DOUBLE: i32 = 11;
    /// bfloat16.
    pub const BFLOAT16: i32 = 16;
}

/// `AttributeProto.AttributeType` values.
pub mod attr_type {
    /// `FLOAT`.
    pub const FLOAT: i32 = 1;
    /// `INT`.
    pub const INT: i32 = 2;
    /// `STRING`.
    pub const STRING: i32 = 3;
    /// `TENSOR`.
    pub const TENSOR: i32 = 4;
}

/// `TensorProto`.
#[derive(Clone, Debug, Default)]
pub struct TensorProto {
    pub dims: Vec<i64>,
    pub data_type: i32,
    pub float_data: Vec<f32>,
    pub int32_data: Vec<i32>,
    pub int64_data: Vec<i64>,
    pub name: String,
    pub raw_data: Vec<u8>,
    /// `external_data`: (key, value) entries.
    pub external_data: Vec<(String, String)>,
    pub data_location: i32,
}

impl TensorProto {
    pub fn pb(&self) -> Pb {
        Pb::default()
            .ints(1, self.dims.iter().copied())
            .int(2, self.data_type.into())
            .floats(4, &self.float_data)
            .ints(5, self.int32_data.iter().map(|&v| i64::from(v)))
            .ints(7, self.int64_data.iter().copied())
            .str(8, &self.name)
            .bytes(9, &self.raw_data)
            .msgs(
                13,
                self.external_data
                    .iter()
                    .map(|(k, v)| Pb::default().str(1, k).str(2, v)),
            )
            .int(14, self.data_location.into())
    }
}

/// `AttributeProto`.
#[derive(Clone, Debug, Default)]
pub struct AttributeProto {
    pub name: String,
    pub f: f32,
    pub i: i64,
    pub s: Vec<u8>,
    pub t: Option<TensorProto>,
    pub r#type: i32,
}

impl AttributeProto {
    pub fn pb(&self) -> Pb {
        Pb::default()
            .str(1, &self.name)
            .float(2, self.f)
            .int(3, self.i)
            .bytes(4, &self.s)
            .msgs(5, self.t.iter().map(TensorProto::pb))
            .int(20, self.r#type.into())
    }
}

/// `NodeProto`.
#[derive(Clone, Debug, Default)]
pub struct NodeProto {
    pub input: Vec<String>,
    pub output: Vec<String>,
    pub name: String,
    pub op_type: String,
    pub attribute: Vec<AttributeProto>,
    pub domain: String,
}

impl NodeProto {
    pub fn pb(&self) -> Pb {
        Pb::default()
            .strs(1, &self.input)
            .strs(2, &self.output)
            .str(3, &self.name)
            .str(4, &self.op_type)
            .msgs(5, self.attribute.iter().map(AttributeProto::pb))
            .str(7, &self.domain)
    }
}

/// A dimension of a [`ValueInfoProto`]'s shape.
#[derive(Clone, Debug)]
pub enum Dim {
    /// `dim_value`.
    Value(i64),
    /// `dim_param`, a symbolic size.
    Param(String),
}

/// `ValueInfoProto` of a tensor: its element type and shape (`None`: no shape).
#[derive(Clone, Debug)]
pub struct ValueInfoProto {
    pub name: String,
    pub elem_type: i32,
    pub shape: Option<Vec<Dim>>,
}

impl ValueInfoProto {
    pub fn pb(&self) -> Pb {
        let mut tensor_type = Pb::default().int(1, self.elem_type.into());
        if let Some(dims) = &self.shape {
            let dims = dims.iter().map(|d| match d {
                Dim::Value(v) => Pb::default().opt_int(1, Some(*v)),
                Dim::Param(p) => Pb::default().opt_str(2, Some(p)),
            });
            tensor_type = tensor_type.msg(2, Pb::default().msgs(1, dims));
        }
        Pb::default()
            .str(1, &self.name)
            .msg(2, Pb::default().msg(1, tensor_type))
    }
}

/// A float tensor, its values in `raw_data`.
pub fn tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: dtype::FLOAT,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// A 1-D int64 tensor, its values in `int64_data`.
pub fn tensor_i64(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![values.len() as i64],
        data_type: dtype::INT64,
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

pub fn attr_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: attr_type::FLOAT,
        ..Default::default()
    }
}

pub fn attr_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: attr_type::INT,
        ..Default::default()
    }
}

pub fn attr_s(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: s.into(),
        r#type: attr_type::STRING,
        ..Default::default()
    }
}

pub fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        t: Some(t),
        r#type: attr_type::TENSOR,
        ..Default::default()
    }
}

pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// A float value `[batch, dims…]`, the batch axis symbolic.
pub fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    let batch = Dim::Param("batch".into());
    ValueInfoProto {
        name: name.into(),
        elem_type: dtype::FLOAT,
        shape: Some(
            std::iter::once(batch)
                .chain(dims.iter().map(|&d| Dim::Value(d)))
                .collect(),
        ),
    }
}

/// The bytes of a `ModelProto` (IR version 8, opset 17) with graph `g` of these nodes,
/// initializers, inputs and outputs.
pub fn model(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
) -> Vec<u8> {
    let graph = Pb::default()
        .msgs(1, nodes.iter().map(NodeProto::pb))
        .str(2, "g")
        .msgs(5, inits.iter().map(TensorProto::pb))
        .msgs(11, inputs.iter().map(ValueInfoProto::pb))
        .msgs(12, outputs.iter().map(ValueInfoProto::pb));
    let opset = Pb::default().int(2, 17);
    Pb::default()
        .int(1, 8)
        .str(2, "test")
        .msg(7, graph)
        .msg(8, opset)
        .into_bytes()
}

/// The bytes of a model with one input `x` `[batch, in_dims…]` and one output `y`
/// `[batch, out]`.
pub fn file(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, in_dims: &[i64], out: i64) -> Vec<u8> {
    model(
        nodes,
        inits,
        vec![value("x", in_dims)],
        vec![value("y", &[out])],
    )
}

/// A 2 → 2 identity Gemm to start graphs with, `x` → `h`, and its weight.
pub fn eye() -> (NodeProto, TensorProto) {
    (
        node(
            "Gemm",
            "/fc/Gemm",
            &["x", "W"],
            &["h"],
            vec![attr_i("transB", 1)],
        ),
        tensor("W", &[2, 2], &[1.0, 0.0, 0.0, 1.0]),
    )
}
