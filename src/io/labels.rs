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

/// Parses an integer `.npy` file's bytes (through [`super::npy::integers_from_bytes`], exact).
pub fn labels_from_npy(bytes: &[u8], source: &str) -> Result<Vec<i64>> {
    let err = |m: String| Error::format(source, m);
    let dtype = super::npy::dtype_from_bytes(bytes, source)?;
    if dtype.starts_with("float") {
        // Refused, never truncated.
        return Err(err(format!(
            "class targets must be integers, this array is {dtype} (float); save them with \
             np.int64 (float targets would be class probabilities in PyTorch)"
        )));
    }
    let (shape, values) = super::npy::integers_from_bytes(bytes, source)?;
    match shape.as_slice() {
        [_] | [_, 1] | [1, _] => Ok(values),
        _ => Err(err(format!(
            "class targets are [n] or [n, 1]; this array is {shape:?}"
        ))),
    }
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
        assert!(e.to_string().contains("data is truncated"), "{e}");
        // Exact past f32's and f64's integers, either byte order; past i64::MAX and bool refused.
        let big = (1i64 << 60) + 1;
        let d: Vec<u8> = [big, -big].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(
            labels_from_npy(&npy(">i8", "(2,)", &d), "t").unwrap(),
            [big, -big]
        );
        let e = labels_from_npy(&npy("<u8", "(1,)", &u64::MAX.to_le_bytes()), "t").unwrap_err();
        assert!(e.to_string().contains("past the largest int64"), "{e}");
        let e = labels_from_npy(&npy("|b1", "(1,)", &[1]), "t").unwrap_err();
        assert!(e.to_string().contains("expected integers"), "{e}");
        let e = labels_from_npy(&npy("<i8", "(2, 2)", &[0; 32]), "t").unwrap_err();
        assert!(e.to_string().contains("[n] or [n, 1]"), "{e}");
    }
}
