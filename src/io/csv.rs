//! Plain numeric CSV: one matrix row per line, values separated by commas.
//!
//! Reading: blank lines and lines starting with `#` (NumPy's `savetxt` header) are ignored; the
//! first remaining line is a header, and skipped, when none of its fields is a number; every other
//! line must hold the same number of numeric fields (surrounding spaces allowed). Numbers are
//! parsed as f32 (correctly rounded; `nan`, `inf` and `-inf` are accepted).
//!
//! Writing: no header, `\n` line ends, each value in the shortest form that reads back to the same
//! f32 (so a write/read round trip is exact).

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

use super::atomic::write_atomic_with;

/// Reads a CSV file as a `[rows, cols]` matrix.
pub fn read(path: impl AsRef<Path>) -> Result<Matrix> {
    let path = path.as_ref();
    from_bytes(&super::read_file(path)?, &path.display().to_string())
}

/// Parses CSV text; `source` names it in error messages.
pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Matrix> {
    let err = |msg: String| Error::format(source, msg);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        err(format!("line {line}: not valid UTF-8 text"))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    let mut cols: Option<(usize, usize)> = None; // (width, line of the first data row)
    let mut data = Vec::new();
    let mut rows = 0usize;
    let mut first = true;
    for (idx, line) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if first {
            first = false;
            if fields.iter().all(|f| parse_number(f).is_none()) {
                continue; // header line
            }
        }
        match cols {
            None => cols = Some((fields.len(), line_no)),
            Some((width, at)) if width != fields.len() => {
                return Err(err(format!(
                    "line {line_no} has {} values but line {at} has {width}; rows must have equal length",
                    fields.len()
                )));
            }
            Some(_) => {}
        }
        for (c, f) in fields.iter().enumerate() {
            let v = parse_number(f).ok_or_else(|| {
                if f.is_empty() {
                    err(format!("line {line_no}, column {}: empty field", c + 1))
                } else {
                    err(format!(
                        "line {line_no}, column {}: '{}' is not a number",
                        c + 1,
                        f.chars().take(40).collect::<String>()
                    ))
                }
            })?;
            data.push(v);
        }
        rows += 1;
    }
    let Some((width, _)) = cols else {
        return Err(err("no numeric rows".into()));
    };
    Matrix::new(rows, width, data).map_err(|e| err(e.to_string()))
}

/// Parses one field as f32, or `None` when it is not a number.
fn parse_number(field: &str) -> Option<f32> {
    if field.is_empty() {
        return None;
    }
    field.parse::<f32>().ok()
}

/// Writes `matrix` as CSV, atomically.
pub fn write(path: impl AsRef<Path>, matrix: &Matrix) -> Result<()> {
    write_atomic_with(path.as_ref(), |w| write_rows(w, matrix))
}

/// The CSV text of `matrix`: one line per row, shortest round-trip formatting.
pub fn to_bytes(matrix: &Matrix) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_rows(&mut out, matrix);
    out
}

fn write_rows(w: &mut dyn Write, matrix: &Matrix) -> std::io::Result<()> {
    for r in 0..matrix.rows() {
        for (c, v) in matrix.row(r).iter().enumerate() {
            if c > 0 {
                w.write_all(b",")?;
            }
            // `Debug` is the shortest representation that parses back to the same f32, and uses
            // exponents for very large or small magnitudes (`1e-7`, not `0.0000001`).
            write!(w, "{v:?}")?;
        }
        w.write_all(b"\n")?;
    }
    Ok(())
}
