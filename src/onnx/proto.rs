//! The protobuf messages of `onnx.proto` that the importer reads, declared by hand for `prost`
//! (field numbers as in onnx/onnx.proto, ONNX 1.17 and earlier: the numbers never change).
//!
//! Only what an MLP needs is declared; everything else (doc strings, `value_info`, training
//! info, functions, subgraphs of `If`/`Loop`, sparse tensors' contents, …) is an unknown field
//! that `prost` skips without allocating. No declared message contains itself, directly or
//! not, so decoding nests at most [`MAX_NESTING`] messages deep whatever the file says (prost's
//! own recursion limit, 100, applies on top).
//!
//! Before `prost` builds any of these structs, [`scan`] walks the file's wire format with the
//! same schema and refuses it when it has more nodes than [`super::MAX_NODES`] or when the
//! decoded structures would need more than [`super::MAX_DECODED_BYTES`] beyond the file itself:
//! a few bytes of protobuf can declare an empty message that costs hundreds of bytes once
//! decoded, so a crafted file could otherwise ask for far more memory than it weighs.

use bytes::Bytes;

/// `ModelProto`: the file.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ModelProto {
    /// `ir_version` (1).
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// `producer_name` (2).
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// `producer_version` (3).
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// `graph` (7).
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// `opset_import` (8).
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
}

/// `OperatorSetIdProto`: one opset the model uses.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct OperatorSetIdProto {
    /// `domain` (1): `""` or `"ai.onnx"` for the standard operators.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// `version` (2).
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `GraphProto`: the computation.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct GraphProto {
    /// `node` (1), topologically sorted by the spec (the importer sorts them anyway).
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// `name` (2).
    #[prost(string, tag = "2")]
    pub name: String,
    /// `initializer` (5): the constant tensors (weights).
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// `input` (11).
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// `output` (12).
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    /// `sparse_initializer` (15), kept as raw bytes only to refuse them by name.
    #[prost(bytes = "bytes", repeated, tag = "15")]
    pub sparse_initializer: Vec<Bytes>,
}

/// `NodeProto`: one operator call.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct NodeProto {
    /// `input` (1): value names; `""` is an omitted optional input.
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// `output` (2).
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// `name` (3).
    #[prost(string, tag = "3")]
    pub name: String,
    /// `op_type` (4).
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// `attribute` (5).
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    /// `domain` (7).
    #[prost(string, tag = "7")]
    pub domain: String,
    /// `metadata_props` (9): the dynamo exporter's `pkg.torch.onnx.*` entries.
    #[prost(message, repeated, tag = "9")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// `AttributeProto`: a named attribute of a node.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AttributeProto {
    /// `name` (1).
    #[prost(string, tag = "1")]
    pub name: String,
    /// `f` (2).
    #[prost(float, tag = "2")]
    pub f: f32,
    /// `i` (3).
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// `s` (4).
    #[prost(bytes = "bytes", tag = "4")]
    pub s: Bytes,
    /// `t` (5).
    #[prost(message, optional, boxed, tag = "5")]
    pub t: Option<Box<TensorProto>>,
    /// `floats` (7).
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    /// `ints` (8).
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    /// `type` (20): which of the value fields is meant (`AttributeType`).
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

/// `AttributeProto.AttributeType` values the importer reads.
pub(crate) mod attr_type {
    /// `FLOAT`.
    pub const FLOAT: i32 = 1;
    /// `INT`.
    pub const INT: i32 = 2;
    /// `STRING`.
    pub const STRING: i32 = 3;
    /// `TENSOR`.
    pub const TENSOR: i32 = 4;
    /// `FLOATS`.
    pub const FLOATS: i32 = 6;
    /// `INTS`.
    pub const INTS: i32 = 7;
}

/// `TensorProto`: an initializer or a `Constant` node's value.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TensorProto {
    /// `dims` (1).
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// `data_type` (2): a `TensorProto.DataType`.
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// `segment` (3), kept as raw bytes only to refuse segmented tensors.
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub segment: Option<Bytes>,
    /// `float_data` (4).
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// `int32_data` (5): also float16/bfloat16 bits and bools.
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    /// `int64_data` (7).
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    /// `name` (8).
    #[prost(string, tag = "8")]
    pub name: String,
    /// `raw_data` (9): little-endian values; points into the file's buffer, not copied.
    #[prost(bytes = "bytes", tag = "9")]
    pub raw_data: Bytes,
    /// `double_data` (10).
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    /// `external_data` (13): where the data lives when it is not in the file.
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    /// `data_location` (14): 1 = `EXTERNAL`.
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

/// `TensorProto.DataType` values.
pub(crate) mod dtype {
    /// float32.
    pub const FLOAT: i32 = 1;
    /// int32.
    pub const INT32: i32 = 6;
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

    /// The name ONNX gives a data type, for messages.
    pub fn name(t: i32) -> String {
        const NAMES: [&str; 27] = [
            "UNDEFINED",
            "FLOAT",
            "UINT8",
            "INT8",
            "UINT16",
            "INT16",
            "INT32",
            "INT64",
            "STRING",
            "BOOL",
            "FLOAT16",
            "DOUBLE",
            "UINT32",
            "UINT64",
            "COMPLEX64",
            "COMPLEX128",
            "BFLOAT16",
            "FLOAT8E4M3FN",
            "FLOAT8E4M3FNUZ",
            "FLOAT8E5M2",
            "FLOAT8E5M2FNUZ",
            "UINT4",
            "INT4",
            "FLOAT4E2M1",
            "FLOAT8E8M0",
            "UINT2",
            "INT2",
        ];
        usize::try_from(t)
            .ok()
            .and_then(|i| NAMES.get(i))
            .map_or_else(|| format!("data type {t}"), |n| (*n).to_string())
    }
}

/// `ValueInfoProto`: a graph input or output.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ValueInfoProto {
    /// `name` (1).
    #[prost(string, tag = "1")]
    pub name: String,
    /// `type` (2).
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `TypeProto`, of which only the tensor case (`tensor_type`, 1) is declared; a sequence, map,
/// optional or sparse type leaves `tensor_type` empty.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TypeProto {
    /// `tensor_type` (1).
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
}

/// `TypeProto.Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TypeProtoTensor {
    /// `elem_type` (1): a `TensorProto.DataType`.
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// `shape` (2); absent when the rank is unknown.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TensorShapeProto {
    /// `dim` (1).
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: a size, a symbolic name (`"batch"`), or unknown.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Dimension {
    /// `dim_value` (1).
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    /// `dim_param` (2).
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// `StringStringEntryProto`: a key/value pair.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StringStringEntryProto {
    /// `key` (1).
    #[prost(string, tag = "1")]
    pub key: String,
    /// `value` (2).
    #[prost(string, tag = "2")]
    pub value: String,
}

/// How deep the declared messages nest: Model → Graph → ValueInfo → Type → Tensor type →
/// Shape → Dimension, or Model → Graph → Node → Attribute → Tensor → entry.
pub(crate) const MAX_NESTING: usize = 7;

/// The message types of the schema, for [`scan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Model,
    OpsetId,
    Graph,
    Node,
    Attribute,
    Tensor,
    ValueInfo,
    Type,
    TypeTensor,
    Shape,
    Dim,
    Entry,
}

/// What a declared field decodes to, for the memory estimate of [`scan`].
#[derive(Clone, Copy, Debug)]
enum Field {
    /// A message: its struct's size each time it appears.
    Message { kind: Kind },
    /// A string (copied out of the buffer) or, for `copies: false`, `Bytes` pointing into it.
    Text { repeated: bool, copies: bool },
    /// A repeated number of `size` bytes once decoded (packed or not); `fixed`: as wide on the
    /// wire (float, double), else a varint of at least one byte.
    Numbers { size: usize, fixed: bool },
    /// A scalar number: nothing beyond the struct.
    Scalar,
}

fn schema(kind: Kind, tag: u64) -> Option<Field> {
    use Field::*;
    use Kind::*;
    let msg = |kind, _repeated: bool| Some(Message { kind });
    let text = |repeated, copies| Some(Text { repeated, copies });
    match (kind, tag) {
        (Model, 1) | (OpsetId, 2) | (Attribute, 2 | 3 | 20) => Some(Scalar),
        (Tensor, 2 | 14) | (TypeTensor, 1) | (Dim, 1) => Some(Scalar),
        (Model, 2 | 3) | (OpsetId, 1) | (Graph, 2) | (Node, 3 | 4 | 7) => text(false, true),
        (Attribute, 1) | (Tensor, 8) | (ValueInfo, 1) | (Dim, 2) | (Entry, 1 | 2) => {
            text(false, true)
        }
        (Node, 1 | 2) => text(true, true),
        (Graph, 15) => text(true, false),
        (Attribute, 4) | (Tensor, 3 | 9) => text(false, false),
        (Model, 7) => msg(Graph, false),
        (Model, 8) => msg(OpsetId, true),
        (Graph, 1) => msg(Node, true),
        (Graph, 5) => msg(Tensor, true),
        (Graph, 11 | 12) => msg(ValueInfo, true),
        (Node, 5) => msg(Attribute, true),
        (Node, 9) | (Tensor, 13) => msg(Entry, true),
        // Boxed: allocated like a repeated one.
        (Attribute, 5) => msg(Tensor, true),
        (ValueInfo, 2) => msg(Type, false),
        (Type, 1) => msg(TypeTensor, false),
        (TypeTensor, 2) => msg(Shape, false),
        (Shape, 1) => msg(Dim, true),
        (Attribute, 7) | (Tensor, 4) => Some(Numbers {
            size: 4,
            fixed: true,
        }),
        (Tensor, 10) => Some(Numbers {
            size: 8,
            fixed: true,
        }),
        (Tensor, 5) => Some(Numbers {
            size: 4,
            fixed: false,
        }),
        (Attribute, 8) | (Tensor, 1 | 7) => Some(Numbers {
            size: 8,
            fixed: false,
        }),
        _ => None,
    }
}

fn struct_size(kind: Kind) -> usize {
    use std::mem::size_of;
    match kind {
        Kind::Model => size_of::<ModelProto>(),
        Kind::OpsetId => size_of::<OperatorSetIdProto>(),
        Kind::Graph => size_of::<GraphProto>(),
        Kind::Node => size_of::<NodeProto>(),
        Kind::Attribute => size_of::<AttributeProto>(),
        Kind::Tensor => size_of::<TensorProto>(),
        Kind::ValueInfo => size_of::<ValueInfoProto>(),
        Kind::Type => size_of::<TypeProto>(),
        Kind::TypeTensor => size_of::<TypeProtoTensor>(),
        Kind::Shape => size_of::<TensorShapeProto>(),
        Kind::Dim => size_of::<Dimension>(),
        Kind::Entry => size_of::<StringStringEntryProto>(),
    }
}

/// What [`scan`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Graph nodes.
    pub nodes: usize,
    /// Bytes the decoded structures need beyond the file's own buffer (an upper bound).
    pub decoded_bytes: usize,
}

/// Walks the wire format of a `ModelProto` with the schema above, without allocating: counts
/// the graph's nodes and bounds the memory decoding will take. Fails on malformed wire data
/// (a truncated varint or field, a length past the end of its message, a group, a wire type
/// that does not exist), naming the byte offset.
pub(crate) fn scan(buf: &[u8]) -> Result<Scan, String> {
    let mut out = Scan {
        decoded_bytes: struct_size(Kind::Model),
        ..Scan::default()
    };
    // An explicit stack of (kind, end offset) instead of recursion; the schema bounds its depth.
    let mut stack: Vec<(Kind, usize)> = vec![(Kind::Model, buf.len())];
    let mut at = 0usize;
    while let Some(&(kind, end)) = stack.last() {
        if at == end {
            stack.pop();
            continue;
        }
        let start = at;
        let key = varint(buf, &mut at, end)?;
        let (tag, wire) = (key >> 3, key & 7);
        if tag == 0 {
            return Err(format!("field number 0 at byte {start}"));
        }
        let field = schema(kind, tag);
        match wire {
            0 => {
                varint(buf, &mut at, end)?;
                if let Some(Field::Numbers { size, .. }) = field {
                    out.decoded_bytes = out.decoded_bytes.saturating_add(size);
                }
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                at = at
                    .checked_add(n)
                    .filter(|&e| e <= end)
                    .ok_or_else(|| format!("truncated {n}-byte field at byte {start}"))?;
                if let Some(Field::Numbers { size, .. }) = field {
                    out.decoded_bytes = out.decoded_bytes.saturating_add(size);
                }
            }
            2 => {
                let len = varint(buf, &mut at, end)?;
                let body = at;
                let stop = usize::try_from(len)
                    .ok()
                    .and_then(|l| body.checked_add(l))
                    .filter(|&e| e <= end)
                    .ok_or_else(|| {
                        format!(
                            "field {tag} at byte {start} is {len} bytes long, past the end of \
                             its message (byte {end})"
                        )
                    })?;
                at = stop;
                let cost = match field {
                    Some(Field::Message { kind: child, .. }) => {
                        if kind == Kind::Graph && child == Kind::Node {
                            out.nodes += 1;
                        }
                        if stack.len() > MAX_NESTING {
                            return Err(format!("messages nest too deeply at byte {start}"));
                        }
                        stack.push((child, stop));
                        at = body;
                        // A singular message lives inside its parent's struct, but it may be
                        // sent many times (prost merges them): counted each time, an upper
                        // bound.
                        struct_size(child)
                    }
                    Some(Field::Text { repeated, copies }) => {
                        let own = if copies { stop - body } else { 0 };
                        let slot = if repeated {
                            if copies {
                                std::mem::size_of::<String>()
                            } else {
                                std::mem::size_of::<Bytes>()
                            }
                        } else {
                            0
                        };
                        own + slot
                    }
                    // Packed numbers: as many bytes when fixed-width, else at most one number
                    // per byte.
                    Some(Field::Numbers { size, fixed }) => {
                        if fixed {
                            stop - body
                        } else {
                            (stop - body).saturating_mul(size)
                        }
                    }
                    Some(Field::Scalar) | None => 0,
                };
                out.decoded_bytes = out.decoded_bytes.saturating_add(cost);
            }
            _ => {
                return Err(format!(
                    "wire type {wire} (field {tag}) at byte {start}: not used by ONNX files"
                ));
            }
        }
    }
    Ok(out)
}

/// Reads a varint at `*at` (before `end`), advancing past it.
fn varint(buf: &[u8], at: &mut usize, end: usize) -> Result<u64, String> {
    let start = *at;
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        if *at >= end {
            return Err(format!("truncated varint at byte {start}"));
        }
        let b = buf[*at];
        *at += 1;
        if shift == 63 && b > 1 {
            return Err(format!("varint longer than 64 bits at byte {start}"));
        }
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(format!("varint longer than 64 bits at byte {start}"))
}
