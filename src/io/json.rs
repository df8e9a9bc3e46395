//! JSON output: a matrix as an array of rows, `[[0.5, -1.25], [3.0, 1e-7]]`.
//!
//! Each number is in the shortest form that reads back to the same f32. JSON has no NaN or
//! infinity: those are written as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, which
//! Python's `float()` and JavaScript's `Number()` read back (a `null` would lose which it was).

use std::io::Write;
use std::path::Path;

use crate::error::Result;
use crate::matrix::Matrix;

use super::atomic::write_atomic_with;

/// Writes `matrix` as JSON, atomically.
pub fn write(path: impl AsRef<Path>, matrix: &Matrix) -> Result<()> {
    write_atomic_with(path.as_ref(), |w| write_matrix(w, matrix))
}

/// The JSON text of `matrix`, with a final newline.
pub fn to_bytes(matrix: &Matrix) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_matrix(&mut out, matrix);
    out
}

fn write_matrix(w: &mut dyn Write, matrix: &Matrix) -> std::io::Result<()> {
    w.write_all(b"[")?;
    for r in 0..matrix.rows() {
        if r > 0 {
            w.write_all(b",\n ")?;
        }
        write_row(w, matrix.row(r))?;
    }
    w.write_all(b"]\n")
}

/// Writes `values` as a JSON array.
pub fn write_row(w: &mut dyn Write, values: &[f32]) -> std::io::Result<()> {
    w.write_all(b"[")?;
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            w.write_all(b", ")?;
        }
        write_number(w, v)?;
    }
    w.write_all(b"]")
}

/// Writes one value: the shortest round-trip form, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub fn write_number(w: &mut dyn Write, v: f32) -> std::io::Result<()> {
    if v.is_nan() {
        w.write_all(b"\"NaN\"")
    } else if v.is_infinite() {
        w.write_all(if v > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        })
    } else {
        // `Debug` is the shortest form that parses back to the same f32 (`1e-7`, `0.5`).
        write!(w, "{v:?}")
    }
}
