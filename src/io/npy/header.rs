//! The start of a `.npy` file: the magic, the version, the header's length and the header dict
//! (`descr`, `fortran_order`, `shape`), checked strictly: exactly those keys, a known dtype, and
//! a shape whose byte size does not overflow.

use super::dtype::Dtype;
use super::literal::{Lit, Parser, snippet};

/// The magic string every `.npy` file starts with.
pub(crate) const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// The most dimensions a shape may have (NumPy's own limit).
const MAX_DIMS: usize = 64;

/// What the header says.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) fortran: bool,
    /// Elements in all (the shape's product).
    pub(crate) count: usize,
}

impl Header {
    /// Bytes of data the header announces; `None` when that overflows.
    pub(crate) fn nbytes(&self) -> Option<usize> {
        self.count.checked_mul(self.dtype.size())
    }
}

/// From the first bytes of a file (at least 12, or all there are): where the header text
/// starts and how long it is. An error message when these are not the start of a `.npy` file.
pub(crate) fn prefix(bytes: &[u8]) -> Result<(usize, usize), String> {
    if bytes.len() < 10 {
        if !bytes.is_empty() && !MAGIC.starts_with(&bytes[..bytes.len().min(6)]) {
            return Err("not an .npy file (missing the \\x93NUMPY magic)".into());
        }
        return Err(format!(
            "truncated .npy file: {} bytes, too short for the header",
            bytes.len()
        ));
    }
    if &bytes[..6] != MAGIC {
        return Err("not an .npy file (missing the \\x93NUMPY magic)".into());
    }
    let (major, minor) = (bytes[6], bytes[7]);
    match major {
        1 => Ok((10, usize::from(u16::from_le_bytes([bytes[8], bytes[9]])))),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(format!(
                    "truncated .npy file: {} bytes, too short for a version {major}.{minor} header",
                    bytes.len()
                ));
            }
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            let n = usize::try_from(n).map_err(|_| "header length overflows".to_string())?;
            Ok((12, n))
        }
        _ => Err(format!(
            "unsupported .npy version {major}.{minor} (expected 1.0, 2.0 or 3.0)"
        )),
    }
}

/// Interprets the header text (the bytes after the prefix).
pub(crate) fn parse(raw: &[u8]) -> Result<Header, String> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        format!(
            "header is not valid UTF-8 (invalid byte at header offset {})",
            e.valid_up_to()
        )
    })?;
    parse_dict(text).map_err(|m| format!("bad .npy header: {m}"))
}

fn parse_dict(text: &str) -> Result<Header, String> {
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
        Lit::Str(d) => Dtype::parse(&d)?,
        _ => return Err("structured dtypes are not supported; expected a number dtype".into()),
    };
    let fortran = match fortran.ok_or("missing key 'fortran_order'")? {
        Lit::Bool(b) => b,
        _ => return Err("'fortran_order' must be True or False".into()),
    };
    let (Lit::Tuple(dims) | Lit::List(dims)) = shape.ok_or("missing key 'shape'")? else {
        return Err("'shape' must be a tuple of integers".into());
    };
    if dims.len() > MAX_DIMS {
        return Err(format!(
            "the shape has {} dimensions, more than NumPy's {MAX_DIMS}",
            dims.len()
        ));
    }
    let mut shape = Vec::with_capacity(dims.len());
    for d in &dims {
        match d {
            Lit::Int(n) => shape.push(
                usize::try_from(*n).map_err(|_| format!("invalid dimension {n} in the shape"))?,
            ),
            _ => return Err("'shape' must be a tuple of integers".into()),
        }
    }
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|n| n.checked_mul(dtype.size()).is_some())
        .ok_or_else(|| format!("shape {shape:?} overflows the address space"))?;
    Ok(Header {
        dtype,
        shape,
        fortran,
        count,
    })
}
