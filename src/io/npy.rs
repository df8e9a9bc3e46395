//! NumPy `.npy` files: read versions 1.0, 2.0 and 3.0 with dtype `<f4` or `<f8` (C order, 1-D or
//! 2-D), write `<f4` version 1.0.
//!
//! The header (a Python dict literal) is parsed by hand and checked strictly: exactly the keys
//! `descr`, `fortran_order` and `shape`, a shape whose byte size does not overflow, and data whose
//! length is exactly what the shape says. Anything else is an [`Error::Format`].

use std::path::Path;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

use super::atomic::write_atomic;

/// The magic string every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Nesting limit for the header literal (a real header nests one level deep).
const MAX_DEPTH: usize = 16;

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

/// Reads a `.npy` file as a `[rows, cols]` f32 matrix (`<f8` values are rounded to f32; a 1-D
/// array `[n]` becomes one row `[1, n]`).
pub fn read(path: impl AsRef<Path>) -> Result<Matrix> {
    let path = path.as_ref();
    from_bytes(&super::read_file(path)?, &path.display().to_string())
}

/// Reads a `.npy` file (`<f4` or `<f8`) at full precision, without rounding `<f8` to f32.
pub fn read_f64(path: impl AsRef<Path>) -> Result<ArrayF64> {
    let path = path.as_ref();
    from_bytes_f64(&super::read_file(path)?, &path.display().to_string())
}

/// Parses the bytes of a `.npy` file as an f32 matrix; `source` names it in error messages.
pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Matrix> {
    let (header, data) = parse(bytes, source)?;
    let values: Vec<f32> = match header.dtype {
        Dtype::F4 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F8 => data.chunks_exact(8).map(|c| f64_le(c) as f32).collect(),
    };
    Matrix::new(header.rows, header.cols, values).map_err(|e| Error::format(source, e.to_string()))
}

/// Parses the bytes of a `.npy` file at full precision; `source` names it in error messages.
pub fn from_bytes_f64(bytes: &[u8], source: &str) -> Result<ArrayF64> {
    let (header, data) = parse(bytes, source)?;
    let values: Vec<f64> = match header.dtype {
        Dtype::F4 => data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        Dtype::F8 => data.chunks_exact(8).map(f64_le).collect(),
    };
    Ok(ArrayF64 {
        rows: header.rows,
        cols: header.cols,
        data: values,
    })
}

/// Writes `matrix` as a `<f4` C-order `.npy` (version 1.0), atomically.
pub fn write(path: impl AsRef<Path>, matrix: &Matrix) -> Result<()> {
    write_atomic(path.as_ref(), &to_bytes(matrix))
}

/// The bytes of a `<f4` C-order `.npy` file (version 1.0) holding `matrix` with shape
/// `(rows, cols)`. The header is padded with spaces and ends with `\n` so that the data starts at
/// a multiple of 64 bytes, as NumPy does.
pub fn to_bytes(matrix: &Matrix) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        matrix.rows(),
        matrix.cols()
    );
    // magic (6) + version (2) + header length (2) + header + '\n'
    let unpadded = 10 + header.len() + 1;
    let total = unpadded.next_multiple_of(64);
    header.extend(std::iter::repeat_n(' ', total - unpadded));
    header.push('\n');
    // Two integers always fit: the header is well under 64 KiB.
    let hlen = u16::try_from(header.len()).unwrap_or(u16::MAX);

    let mut out = Vec::with_capacity(total + matrix.as_slice().len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&hlen.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in matrix.as_slice() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn f64_le(c: &[u8]) -> f64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(c);
    f64::from_le_bytes(b)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    F4,
    F8,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F4 => 4,
            Dtype::F8 => 8,
        }
    }
}

struct Header {
    dtype: Dtype,
    rows: usize,
    cols: usize,
}

/// Validates the whole file; returns the header and exactly the data bytes.
fn parse<'a>(bytes: &'a [u8], source: &str) -> Result<(Header, &'a [u8])> {
    let err = |msg: String| Error::format(source, msg);
    if bytes.len() < 10 {
        if !bytes.is_empty() && !MAGIC.starts_with(&bytes[..bytes.len().min(6)]) {
            return Err(err("not an .npy file (missing the \\x93NUMPY magic)".into()));
        }
        return Err(err(format!(
            "truncated .npy file: {} bytes, too short for the header",
            bytes.len()
        )));
    }
    if &bytes[..6] != MAGIC {
        return Err(err("not an .npy file (missing the \\x93NUMPY magic)".into()));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (hlen, start): (usize, usize) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(err(format!(
                    "truncated .npy file: {} bytes, too short for a version {major}.{minor} header",
                    bytes.len()
                )));
            }
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            let n = usize::try_from(n).map_err(|_| err("header length overflows".into()))?;
            (n, 12)
        }
        _ => {
            return Err(err(format!(
                "unsupported .npy version {major}.{minor} (expected 1.0, 2.0 or 3.0)"
            )));
        }
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            err(format!(
                "header length {hlen} runs past the end of the file ({} bytes)",
                bytes.len()
            ))
        })?;
    let text = std::str::from_utf8(&bytes[start..end]).map_err(|e| {
        err(format!(
            "header is not valid UTF-8 (invalid byte at header offset {})",
            e.valid_up_to()
        ))
    })?;
    let header = parse_header(text).map_err(|m| err(format!("bad .npy header: {m}")))?;

    let count = header.rows.checked_mul(header.cols);
    let nbytes = count.and_then(|n| n.checked_mul(header.dtype.size()));
    let shape = format!("[{}, {}]", header.rows, header.cols);
    let nbytes = nbytes.ok_or_else(|| err(format!("shape {shape} overflows the address space")))?;
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
    Ok((header, data))
}

/// Interprets the header dict.
fn parse_header(text: &str) -> Result<Header, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let value = p.value(0)?;
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(format!(
            "unexpected text after the dict at offset {}: {:?}",
            p.i,
            snippet(&p.s[p.i..])
        ));
    }
    let Lit::Dict(entries) = value else {
        return Err("expected a dict literal {...}".into());
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (k, v) in entries {
        let Lit::Str(k) = k else {
            return Err("dict keys must be strings".into());
        };
        let slot = match k.as_str() {
            "descr" => &mut descr,
            "fortran_order" => &mut fortran,
            "shape" => &mut shape,
            _ => return Err(format!("unexpected key '{k}'")),
        };
        if slot.replace(v).is_some() {
            return Err(format!("duplicate key '{k}'"));
        }
    }
    let dtype = match descr.ok_or("missing key 'descr'")? {
        Lit::Str(d) => match d.as_str() {
            "<f4" => Dtype::F4,
            "<f8" => Dtype::F8,
            other => {
                return Err(format!(
                    "unsupported dtype '{other}'; expected '<f4' (float32) or '<f8' (float64), \
                     little endian"
                ));
            }
        },
        _ => return Err("structured dtypes are not supported; expected '<f4' or '<f8'".into()),
    };
    match fortran.ok_or("missing key 'fortran_order'")? {
        Lit::Bool(false) => {}
        Lit::Bool(true) => {
            return Err("fortran_order is True; only C-order arrays are supported \
                        (save np.ascontiguousarray(a))"
                .into());
        }
        _ => return Err("'fortran_order' must be True or False".into()),
    }
    let (Lit::Tuple(dims) | Lit::List(dims)) = shape.ok_or("missing key 'shape'")? else {
        return Err("'shape' must be a tuple of integers".into());
    };
    let mut shape = Vec::with_capacity(dims.len());
    for d in &dims {
        match d {
            Lit::Int(n) => shape.push(
                usize::try_from(*n).map_err(|_| format!("invalid dimension {n} in the shape"))?,
            ),
            _ => return Err("'shape' must be a tuple of integers".into()),
        }
    }
    let (rows, cols) = match shape[..] {
        [n] => (1, n),
        [r, c] => (r, c),
        _ => {
            return Err(format!(
                "expected a 1-D or 2-D array, got shape {shape:?} ({} dimensions)",
                shape.len()
            ));
        }
    };
    Ok(Header { dtype, rows, cols })
}

fn snippet(s: &[u8]) -> String {
    String::from_utf8_lossy(&s[..s.len().min(20)]).into_owned()
}

/// A Python literal as found in `.npy` headers.
enum Lit {
    Str(String),
    Bool(bool),
    Int(i128),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

/// A tiny recursive-descent parser for Python literals (strings, ints, booleans, None, tuples,
/// lists and dicts), with a nesting limit.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > MAX_DEPTH {
            return Err("header nests too deeply".into());
        }
        let at = self.i;
        match self.peek() {
            None => Err("unexpected end of the header".into()),
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Lit::Dict(entries));
                    }
                    let k = self.value(depth + 1)?;
                    if self.peek() != Some(b':') {
                        return Err(format!("expected ':' at offset {}", self.i));
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at offset {}", self.i)),
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                self.i += 1;
                let mut items = Vec::new();
                let mut saw_comma = false;
                loop {
                    if self.peek() == Some(close) {
                        self.i += 1;
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            saw_comma = true;
                        }
                        Some(c) if c == close => {}
                        _ => {
                            return Err(format!(
                                "expected ',' or '{}' at offset {}",
                                close as char, self.i
                            ));
                        }
                    }
                }
                if open == b'[' {
                    Ok(Lit::List(items))
                } else if items.len() == 1 && !saw_comma {
                    // `(x)` is just a parenthesised value in Python.
                    Ok(items.pop().unwrap_or(Lit::None))
                } else {
                    Ok(Lit::Tuple(items))
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i).copied() {
                        None => return Err(format!("unterminated string starting at offset {at}")),
                        Some(c) if c == q => {
                            self.i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let Some(&e) = self.s.get(self.i + 1) else {
                                return Err(format!("unterminated string starting at offset {at}"));
                            };
                            match e {
                                b'\\' | b'\'' | b'"' => out.push(e),
                                b'n' => out.push(b'\n'),
                                b't' => out.push(b'\t'),
                                _ => out.extend_from_slice(&[b'\\', e]),
                            }
                            self.i += 2;
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                // The input is a &str and escapes only replace ASCII, so this cannot fail.
                String::from_utf8(out)
                    .map(Lit::Str)
                    .map_err(|_| "invalid UTF-8 in a string".into())
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let negative = c == b'-';
                if c == b'-' || c == b'+' {
                    self.i += 1;
                }
                let start = self.i;
                let mut n: i128 = 0;
                while let Some(&d) = self.s.get(self.i).filter(|d| d.is_ascii_digit()) {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(i128::from(d - b'0')))
                        .ok_or_else(|| format!("integer too large at offset {start}"))?;
                    self.i += 1;
                }
                if self.i == start {
                    return Err(format!("expected a number at offset {at}"));
                }
                // Python 2 long suffix, as written by old NumPy versions.
                if matches!(self.s.get(self.i), Some(b'L' | b'l')) {
                    self.i += 1;
                }
                if self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.')
                {
                    return Err(format!("expected an integer at offset {start}"));
                }
                Ok(Lit::Int(if negative { -n } else { n }))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Ok(Lit::Bool(true)),
                    b"False" => Ok(Lit::Bool(false)),
                    b"None" => Ok(Lit::None),
                    w => Err(format!(
                        "unexpected word '{}' at offset {start}",
                        String::from_utf8_lossy(w)
                    )),
                }
            }
            Some(c) => Err(format!(
                "unexpected character {:?} at offset {}",
                char::from(c),
                self.i
            )),
        }
    }
}
