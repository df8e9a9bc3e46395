//! NumPy `.npy` files: read versions 1.0, 2.0 and 3.0 of any shape, in C or Fortran order, with
//! a float (`f2`, `f4`, `f8`), integer (`i1`–`i8`, `u1`–`u8`) or bool dtype in either byte order;
//! write `<f4` (and `<i8` for indices) version 1.0.
//!
//! Values are converted to f32 as PyTorch's `x.float()` converts them (rounded to nearest);
//! [`Array`] says from which dtype and how many values the rounding changed, so a caller can say
//! so. NumPy has no bfloat16: such arrays (`<V2` through ml_dtypes) are refused with a message.
//!
//! The header (a Python dict literal) is parsed by hand and checked strictly: exactly the keys
//! `descr`, `fortran_order` and `shape`, a shape whose byte size does not overflow, and data whose
//! length is exactly what the shape says. Anything else is an [`Error::Format`]. (A crate such as
//! npyz parses the header with a general Python-literal grammar of 27 crates, and its `.npz`
//! support brings zip's C compressors; this parser is bounded and fuzzed, see
//! `tests/fuzz_parsers.rs`.)

mod dtype;
mod header;
mod literal;
mod rows;

use std::path::Path;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

use super::atomic::write_atomic;

pub use rows::Rows;

/// A 2-D array read at full (f64) precision: see [`read_f64`].
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayF64 {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// The row-major values.
    pub data: Vec<f64>,
}

/// An array of any shape read as f32, in C (row-major) order whatever the file's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// The shape, as NumPy gives it.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
    /// NumPy's name of the file's dtype (`float32`, `float64`, `int64`, …).
    pub dtype: &'static str,
    /// How many values changed when rounded to f32 (0 for float32, float16 and small integers).
    pub rounded: usize,
}

impl Array {
    /// As a `[rows, cols]` matrix: `[n]` is one row `[1, n]`, a 2-D array is itself, and an N-D
    /// array `[d0, d1, …]` becomes `[d0, d1·…]` (as `nn.Flatten` flattens from dimension 1) when
    /// `flatten`, else is an error; `source` names the array in errors.
    pub fn into_matrix(self, flatten: bool, source: &str) -> Result<Matrix> {
        let (rows, cols) = match self.shape[..] {
            [] => {
                return Err(Error::format(
                    source,
                    "a 0-D array (a scalar); give a [batch, features] array",
                ));
            }
            [n] => (1, n),
            [r, c] => (r, c),
            [r, ..] if flatten => (r, self.shape[1..].iter().product()),
            _ => {
                return Err(Error::format(
                    source,
                    format!(
                        "a {}-D array of shape {:?}; give a 2-D [batch, features] array \
                         (x.reshape(len(x), -1)), or a model that starts with nn.Flatten",
                        self.shape.len(),
                        self.shape
                    ),
                ));
            }
        };
        Matrix::new(rows, cols, self.data).map_err(|e| Error::format(source, e.to_string()))
    }
}

/// Reads a `.npy` file as a `[rows, cols]` f32 matrix (values of other dtypes converted as
/// `x.float()` converts them; a 1-D array `[n]` becomes one row `[1, n]`).
pub fn read(path: impl AsRef<Path>) -> Result<Matrix> {
    let path = path.as_ref();
    from_bytes(&super::read_file(path)?, &path.display().to_string())
}

/// Reads a `.npy` file of any shape (see [`Array`]).
pub fn read_array(path: impl AsRef<Path>) -> Result<Array> {
    let path = path.as_ref();
    array_from_bytes(&super::read_file(path)?, &path.display().to_string())
}

/// Reads a `.npy` file at full precision, without rounding to f32.
pub fn read_f64(path: impl AsRef<Path>) -> Result<ArrayF64> {
    let path = path.as_ref();
    from_bytes_f64(&super::read_file(path)?, &path.display().to_string())
}

/// Parses the bytes of a `.npy` file as an f32 matrix; `source` names it in error messages.
pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Matrix> {
    array_from_bytes(bytes, source)?.into_matrix(false, source)
}

/// Parses the bytes of a `.npy` file of any shape; `source` names it in error messages.
pub fn array_from_bytes(bytes: &[u8], source: &str) -> Result<Array> {
    let (h, data) = parse(bytes, source)?;
    let mut values = Vec::new();
    values
        .try_reserve_exact(h.count)
        .map_err(|_| Error::format(source, format!("{} values do not fit in memory", h.count)))?;
    let rounded = h.dtype.decode_f32(data, &mut values);
    let data = if h.fortran {
        from_fortran(&h.shape, &values)
    } else {
        values
    };
    Ok(Array {
        shape: h.shape,
        data,
        dtype: h.dtype.name(),
        rounded,
    })
}

/// NumPy's name of the dtype of a `.npy` file (`float32`, `int64`, …), from its header.
pub fn dtype_from_bytes(bytes: &[u8], source: &str) -> Result<&'static str> {
    parse(bytes, source).map(|(h, _)| h.dtype.name())
}

/// Parses the bytes of an integer `.npy` file (any integer dtype, either byte or memory order)
/// exactly: its shape and its values as i64 in C order. Floats and bools are refused (a float
/// is never silently truncated); an unsigned value past `i64::MAX` is an error.
pub fn integers_from_bytes(bytes: &[u8], source: &str) -> Result<(Vec<usize>, Vec<i64>)> {
    let (h, data) = parse(bytes, source)?;
    if !h.dtype.is_integer() {
        return Err(Error::format(
            source,
            format!("expected integers, the array is {}", h.dtype.name()),
        ));
    }
    let mut values = Vec::new();
    values
        .try_reserve_exact(h.count)
        .map_err(|_| Error::format(source, format!("{} values do not fit in memory", h.count)))?;
    h.dtype
        .decode_i64(data, &mut values)
        .map_err(|m| Error::format(source, m))?;
    let values = if h.fortran {
        from_fortran(&h.shape, &values)
    } else {
        values
    };
    Ok((h.shape, values))
}

/// Parses the bytes of a `.npy` file at full precision; `source` names it in error messages.
pub fn from_bytes_f64(bytes: &[u8], source: &str) -> Result<ArrayF64> {
    let (h, data) = parse(bytes, source)?;
    let (rows, cols) = match h.shape[..] {
        [n] => (1, n),
        [r, c] => (r, c),
        _ => {
            return Err(Error::format(
                source,
                format!("expected a 1-D or 2-D array, got shape {:?}", h.shape),
            ));
        }
    };
    let mut values = Vec::with_capacity(h.count);
    h.dtype.decode_f64(data, &mut values);
    let data = if h.fortran {
        from_fortran(&h.shape, &values)
    } else {
        values
    };
    Ok(ArrayF64 { rows, cols, data })
}

/// Writes `matrix` as a `<f4` C-order `.npy` (version 1.0), atomically.
pub fn write(path: impl AsRef<Path>, matrix: &Matrix) -> Result<()> {
    write_atomic(path.as_ref(), &to_bytes(matrix))
}

/// The bytes of a `<f4` C-order `.npy` file (version 1.0) holding `matrix` with shape
/// `(rows, cols)`.
pub fn to_bytes(matrix: &Matrix) -> Vec<u8> {
    let mut out = header_bytes("<f4", &[matrix.rows(), matrix.cols()]);
    out.reserve(matrix.as_slice().len() * 4);
    for v in matrix.as_slice() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// The magic, version (1.0) and header of a C-order `.npy` file of dtype `descr` and `shape`,
/// the data to follow. The header is padded with spaces and ends with `\n` so that the data
/// starts at a multiple of 64 bytes, as NumPy does.
pub fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    // A 1-tuple needs its comma: (3,).
    let comma = if shape.len() == 1 { "," } else { "" };
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}{comma}), }}",
        dims.join(", ")
    );
    // magic (6) + version (2) + header length (2) + header + '\n'
    let unpadded = 10 + header.len() + 1;
    let total = unpadded.next_multiple_of(64);
    header.extend(std::iter::repeat_n(' ', total - unpadded));
    header.push('\n');
    // Shapes of a few dimensions keep the header well under 64 KiB.
    let hlen = u16::try_from(header.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(header::MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&hlen.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// Validates the whole file; returns the header and exactly the data bytes.
fn parse<'a>(bytes: &'a [u8], source: &str) -> Result<(header::Header, &'a [u8])> {
    let err = |msg: String| Error::format(source, msg);
    let (start, hlen) = header::prefix(&bytes[..bytes.len().min(12)]).map_err(err)?;
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            err(format!(
                "header length {hlen} runs past the end of the file ({} bytes)",
                bytes.len()
            ))
        })?;
    let h = header::parse(&bytes[start..end]).map_err(err)?;
    // The header checked that this does not overflow.
    let nbytes = h.nbytes().unwrap_or(usize::MAX);
    let shape = format!("{:?}", h.shape);
    let data = &bytes[end..];
    if data.len() < nbytes {
        return Err(err(format!(
            "data is truncated: shape {shape} needs {nbytes} bytes, the file has {}",
            data.len()
        )));
    }
    if data.len() > nbytes {
        return Err(err(format!(
            "{} unexpected bytes after the data of shape {shape} ({nbytes} bytes)",
            data.len() - nbytes
        )));
    }
    Ok((h, data))
}

/// The C-order (row-major) copy of values stored in Fortran (column-major) order.
fn from_fortran<T: Copy>(shape: &[usize], values: &[T]) -> Vec<T> {
    if shape.len() < 2 || values.is_empty() {
        return values.to_vec();
    }
    // Fortran strides: the first index varies fastest.
    let mut strides = Vec::with_capacity(shape.len());
    let mut s = 1usize;
    for &d in shape {
        strides.push(s);
        s *= d;
    }
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        let at: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(values[at]);
        // The next C-order index: the last dimension varies fastest.
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}
