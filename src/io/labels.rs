//! Class-index targets (for `cross_entropy` and `nll`): an integer `.npy` (`int8` … `int64`,
//! `uint8` … `uint64`, shape `[n]` or `[n, 1]`) or a CSV of whole numbers (one column, or one
//! row). A float `.npy` is refused rather than truncated: PyTorch takes float targets of
//! cross-entropy as class probabilities, not indices.

use std::path::Path;

use crate::error::{Error, Result};

use super::MatrixFormat;

/// Reads the class indices of `path` (`.npy` or `.csv`, by extension).
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<i64>> {
    let path = path.as_ref();
    let source = path.display().to_string();
    match MatrixFormat::from_path(path)? {
        MatrixFormat::Npy => labels_from_npy(&super::read_file(path)?, &source),
        MatrixFormat::Npz | MatrixFormat::Json => Err(Error::format(
            &source,
            "class targets are read from an integer .npy or a CSV of whole numbers",
        )),
        MatrixFormat::Csv => {
            let m = super::csv::read(path)?;
            if m.rows() != 1 && m.cols() != 1 {
                return Err(Error::format(
                    &source,
                    format!(
                        "class targets are one column (or one row) of integers; this CSV is \
                         [{}, {}]",
                        m.rows(),
                        m.cols()
                    ),
                ));
            }
            m.as_slice()
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if v.is_finite() && v.fract() == 0.0 && v.abs() < 16_777_216.0 {
                        Ok(v as i64)
                    } else {
                        Err(Error::format(
                            &source,
                            format!("class target {i} is {v}, not a whole number"),
                        ))
                    }
                })
                .collect()
        }
    }
}

/// Parses an integer `.npy` file's bytes.
pub fn labels_from_npy(bytes: &[u8], source: &str) -> Result<Vec<i64>> {
    let err = |m: String| Error::format(source, m);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(err("not a .npy file (no \\x93NUMPY magic)".into()));
    }
    let (len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(err(format!("unsupported .npy version {v}"))),
    };
    let header = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| err("truncated or non-text .npy header".into()))?;
    let descr = quoted_after(header, "'descr':").ok_or_else(|| err("no 'descr' key".into()))?;
    if !header.contains("'fortran_order': False") {
        return Err(err(
            "only C-order arrays are read (fortran_order is not False)".into(),
        ));
    }
    let (size, signed) = match descr {
        "|i1" | "<i1" => (1, true),
        "<i2" => (2, true),
        "<i4" => (4, true),
        "<i8" => (8, true),
        "|u1" | "<u1" => (1, false),
        "<u2" => (2, false),
        "<u4" => (4, false),
        "<u8" => (8, false),
        d if d.contains('f') => {
            return Err(err(format!(
                "class targets must be integers, this array is {d} (float); save them with \
                 np.int64 (float targets would be class probabilities in PyTorch)"
            )));
        }
        d => return Err(err(format!("unsupported dtype {d} for class targets"))),
    };
    let shape = shape_of(header).ok_or_else(|| err("no readable 'shape' key".into()))?;
    let n = match shape.as_slice() {
        [n] | [n, 1] | [1, n] => *n,
        _ => {
            return Err(err(format!(
                "class targets are [n] or [n, 1]; this array is {shape:?}"
            )));
        }
    };
    let data = &bytes[start + len..];
    if data.len() != n * size {
        return Err(err(format!(
            "the shape says {n} values of {size} bytes but the data is {} bytes",
            data.len()
        )));
    }
    data.chunks_exact(size)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(c);
            if signed && c[size - 1] & 0x80 != 0 {
                b[size..].fill(0xff);
            }
            let v = i64::from_le_bytes(b);
            if !signed && v < 0 {
                Err(err(format!(
                    "class target {} is too large",
                    u64::from_le_bytes(b)
                )))
            } else {
                Ok(v)
            }
        })
        .collect()
}

/// The text between the quotes after `key`.
fn quoted_after<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let rest = &header[header.find(key)? + key.len()..];
    let open = rest.find('\'')?;
    let rest = &rest[open + 1..];
    Some(&rest[..rest.find('\'')?])
}

/// The `shape` tuple of the header.
fn shape_of(header: &str) -> Option<Vec<usize>> {
    let rest = &header[header.find("'shape':")? + 8..];
    let open = rest.find('(')?;
    let close = rest.find(')')?;
    rest[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((h.len() as u16).to_le_bytes());
        out.extend(h.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn reads_integer_arrays_and_refuses_floats() {
        let d: Vec<u8> = [2i64, -1, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            labels_from_npy(&npy("<i8", "(3,)", &d), "t").unwrap(),
            [2, -1, 0]
        );
        let d: Vec<u8> = [1i32, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            labels_from_npy(&npy("<i4", "(2, 1)", &d), "t").unwrap(),
            [1, 7]
        );
        assert_eq!(
            labels_from_npy(&npy("|u1", "(2,)", &[255, 3]), "t").unwrap(),
            [255, 3]
        );
        let e = labels_from_npy(&npy("<f4", "(1,)", &[0; 4]), "t").unwrap_err();
        assert!(e.to_string().contains("must be integers"), "{e}");
        let e = labels_from_npy(&npy("<i8", "(2,)", &[0; 8]), "t").unwrap_err();
        assert!(e.to_string().contains("the shape says 2 values"), "{e}");
        let e = labels_from_npy(&npy("<i8", "(2, 2)", &[0; 32]), "t").unwrap_err();
        assert!(e.to_string().contains("[n] or [n, 1]"), "{e}");
    }
}
