//! Constant tensors: an initializer's or a `Constant` node's `TensorProto` read into f32 (or
//! i64 for shapes), checking its dtype, its element count against the data, and the caps.

use half::{bf16, f16};

use super::proto::{TensorProto, dtype};
use super::{MAX_RANK, MAX_TENSOR_ELEMENTS};

/// The values of a constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    /// float32, float64 (rounded), float16 or bfloat16 values, as f32.
    Float(Vec<f32>),
    /// int32 or int64 values (shapes, axes).
    Int(Vec<i64>),
    /// Booleans (the condition of `Where`).
    Bool(Vec<bool>),
}

/// Where a constant came from: a parameter the exporter stored, or a value it made up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A graph initializer (the exporters store parameters there).
    Initializer,
    /// A `Constant` node (the legacy exporter writes `affine=False` ones and zeros this way).
    ConstantNode,
    /// Computed by the importer from other constants.
    Folded,
}

/// A constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tensor {
    /// Its shape.
    pub dims: Vec<usize>,
    /// Its values, row-major; as many as the dims say.
    pub data: Data,
    /// Where it came from.
    pub origin: Origin,
}

impl Tensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            Data::Float(v) => v.len(),
            Data::Int(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    /// The values as f32 when it is a float tensor (booleans as 1 and 0).
    pub fn floats(&self) -> Option<Vec<f32>> {
        match &self.data {
            Data::Float(v) => Some(v.clone()),
            Data::Bool(v) => Some(v.iter().map(|&b| f32::from(u8::from(b))).collect()),
            Data::Int(_) => None,
        }
    }

    /// What kind of values it holds, for messages.
    pub fn kind(&self) -> &'static str {
        match self.data {
            Data::Float(_) => "float",
            Data::Int(_) => "integer",
            Data::Bool(_) => "boolean",
        }
    }
}

/// The number of elements of a shape, checked against [`MAX_TENSOR_ELEMENTS`] and
/// [`MAX_RANK`].
pub(crate) fn element_count(dims: &[usize]) -> Result<usize, String> {
    if dims.len() > MAX_RANK {
        return Err(format!(
            "has {} dimensions; at most {MAX_RANK} are supported",
            dims.len()
        ));
    }
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
        .ok_or_else(|| {
            format!(
                "shape {dims:?} has more than {MAX_TENSOR_ELEMENTS} elements, the cap per tensor"
            )
        })
}

/// The bytes of one element of a data type in `raw_data`, for the types the importer reads.
pub(crate) fn element_size(data_type: i32) -> Option<usize> {
    match data_type {
        dtype::FLOAT | dtype::INT32 => Some(4),
        dtype::DOUBLE | dtype::INT64 => Some(8),
        dtype::FLOAT16 | dtype::BFLOAT16 => Some(2),
        dtype::BOOL => Some(1),
        _ => None,
    }
}

/// Reads a `TensorProto`; the error says what is wrong (the caller names the tensor).
pub(crate) fn read(t: &TensorProto, origin: Origin) -> Result<Tensor, String> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        let location = t
            .external_data
            .iter()
            .find(|e| e.key == "location")
            .map(|e| format!(" (in '{}')", crate::error::escape(&e.value)))
            .unwrap_or_default();
        return Err(format!(
            "stores its data outside the .onnx file{location}, which only an initializer may do"
        ));
    }
    if t.segment.is_some() {
        return Err("is a segment of a larger tensor, which is not supported".into());
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("has a negative dimension {d}")))
        .collect::<Result<Vec<usize>, String>>()?;
    let n = element_count(&dims)?;
    let raw = &t.raw_data[..];
    let have_raw = !raw.is_empty();
    // A typed field (`float_data`, …) holds one value per element.
    let one_each = |got: usize, what: &str| {
        if got == n {
            Ok(())
        } else {
            Err(format!(
                "has shape {dims:?} ({n} elements) but {got} values in {what}"
            ))
        }
    };
    // The element size in raw_data, and whether raw_data holds the values.
    let Some(size) = element_size(t.data_type) else {
        return Err(format!(
            "has data type {}; the importer reads FLOAT, DOUBLE, FLOAT16 and BFLOAT16 tensors \
             (and INT64, INT32, BOOL for shapes and conditions)",
            dtype::name(t.data_type)
        ));
    };
    if have_raw {
        // n · size cannot overflow: n ≤ MAX_TENSOR_ELEMENTS ≤ isize::MAX / 4.
        if raw.len() != n.saturating_mul(size) {
            return Err(format!(
                "has shape {dims:?} ({n} elements of {size} bytes) but {} bytes of raw_data",
                raw.len()
            ));
        }
    }
    let data = match t.data_type {
        dtype::FLOAT if have_raw => Data::Float(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes(array(c)))
                .collect(),
        ),
        dtype::FLOAT => {
            one_each(t.float_data.len(), "float_data")?;
            Data::Float(t.float_data.clone())
        }
        dtype::DOUBLE if have_raw => Data::Float(
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes(array(c)) as f32)
                .collect(),
        ),
        dtype::DOUBLE => {
            one_each(t.double_data.len(), "double_data")?;
            Data::Float(t.double_data.iter().map(|&v| v as f32).collect())
        }
        dtype::FLOAT16 | dtype::BFLOAT16 => {
            let bits: Vec<u16> = if have_raw {
                raw.chunks_exact(2)
                    .map(|c| u16::from_le_bytes(array(c)))
                    .collect()
            } else {
                one_each(t.int32_data.len(), "int32_data")?;
                // Each int32 holds one value's 16 bits.
                t.int32_data.iter().map(|&v| v as u16).collect()
            };
            Data::Float(if t.data_type == dtype::FLOAT16 {
                bits.iter().map(|&b| f16::from_bits(b).to_f32()).collect()
            } else {
                bits.iter().map(|&b| bf16::from_bits(b).to_f32()).collect()
            })
        }
        dtype::INT64 if have_raw => Data::Int(
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes(array(c)))
                .collect(),
        ),
        dtype::INT64 => {
            one_each(t.int64_data.len(), "int64_data")?;
            Data::Int(t.int64_data.clone())
        }
        dtype::INT32 if have_raw => Data::Int(
            raw.chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(array(c))))
                .collect(),
        ),
        dtype::BOOL if have_raw => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
        // INT32 and BOOL without raw_data.
        _ => {
            one_each(t.int32_data.len(), "int32_data")?;
            if t.data_type == dtype::BOOL {
                Data::Bool(t.int32_data.iter().map(|&v| v != 0).collect())
            } else {
                Data::Int(t.int32_data.iter().map(|&v| i64::from(v)).collect())
            }
        }
    };
    Ok(Tensor { dims, data, origin })
}

/// One value's little-endian bytes (`c` is a chunk of exactly `N`).
fn array<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(c);
    b
}
