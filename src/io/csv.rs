//! Numeric CSV: one matrix row per line.
//!
//! # Reading
//!
//! - **Text**: UTF-8 (a byte-order mark is skipped), lines ending in `\n`, `\r\n` or a lone `\r`. Blank lines
//!   and comment lines, whose first non-blank character is `#` (NumPy's `savetxt` header), are
//!   skipped; a line that starts with the missing-value marker `#N/A` or `#NA` is not a comment.
//! - **Delimiter**, decided by the first line that is not skipped: a comma if it holds one, else
//!   blanks: runs of spaces and tabs, as `np.savetxt` writes by default (`delimiter=' '`) and
//!   `np.loadtxt` reads, and as tab-separated files are. With blanks, two tabs in a row between
//!   two values mean an empty field (an error), as they do in a tab-separated file; leading and
//!   trailing blanks are ignored. Every line uses the first line's delimiter. A first line
//!   separated by `;` (and holding no comma) is refused with a message rather than read as one
//!   column.
//! - **Fields**: surrounding spaces and tabs are ignored. A field may be quoted: `"1.5"` is the
//!   number 1.5; inside quotes the delimiter does not split and `""` stands for one `"`; a quoted
//!   field must close on its line.
//! - **Numbers**: what Rust's `f32::from_str` takes (`1`, `-2.5`, `.5`, `5.`, `1e-7`, `+3E2`;
//!   correctly rounded, out-of-range magnitudes become ±inf or ±0), the infinities `inf` and
//!   `infinity` with an optional sign, and NaN spelled `nan` with an optional sign or as one of
//!   the missing-value markers pandas reads as NaN by default: `NA`, `N/A`, `#N/A`, `#NA`, `<NA>`,
//!   `NULL`, `None`, `#N/A N/A` (quoted where blanks separate fields), `1.#IND`, `-1.#IND`,
//!   `1.#QNAN`, `-1.#QNAN`. All of these are case-insensitive (`NaN`, `NAN`, `Inf`, `na`, `null`). An empty field is an error, not NaN
//!   (write `NaN` or `NA` for a missing value), and so are thousands separators, decimal commas,
//!   hexadecimal and `1_000`.
//! - **Header**: the first line that is not skipped is a header, and not data, when at least one
//!   of its fields is neither a number in the sense above nor empty (`1,,3` is a row with an empty
//!   field, an error; `,a,b` is a header); it must have as many fields as the data lines. A
//!   field that is not a number but starts like one (`1e`, `1.5f`, `-3x`) or holds a control
//!   character is an error, not a name: a damaged first row is never taken for a header. A header
//!   holds names only: a first line mixing numbers and names (`1,two,3`) is an error naming the
//!   first name and the first number. A first line whose fields are all numbers is data: nothing is ever dropped silently,
//!   so a header of numbers (pandas writes `0,1,2` for a frame with integer column names) is read
//!   as a row; [`parse`] says whether a header was found, and the CLI prints it. Every other line
//!   must hold numbers, as many as the first data line.
//! - **Rows**: a header and no data is an empty matrix `[0, columns]` (what [`write()`] makes of an
//!   empty batch); a file with neither is an error.
//!
//! # Writing
//!
//! No header, `,` between values, `\n` line ends, each value in the shortest form that reads back
//! to the same f32 (`NaN`, `inf`, `-inf` for the special values), so a write/read round trip is
//! exact. A matrix with no rows is written as a header line `c0,c1,…` (one name per column), which
//! reads back as the same `[0, columns]` matrix; a matrix with no columns cannot be written as CSV
//! and reads back as an error.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

use super::atomic::write_atomic_with;

/// How the fields of a line are separated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delimiter {
    /// `,`.
    Comma,
    /// Runs of spaces and tabs (at most one tab between two values).
    Whitespace,
}

impl Delimiter {
    /// `comma-separated`, `separated by spaces or tabs`.
    pub fn describe(self) -> &'static str {
        match self {
            Delimiter::Comma => "comma-separated",
            Delimiter::Whitespace => "separated by spaces or tabs",
        }
    }
}

/// A header line: its line number (from 1) and its field names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Line number, counting from 1.
    pub line: usize,
    /// The names, unquoted and trimmed.
    pub names: Vec<String>,
}

/// What [`parse`] read: the matrix, and how the text was understood.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The values, one row per data line.
    pub matrix: Matrix,
    /// The header line, if the first line was one.
    pub header: Option<Header>,
    /// The delimiter found on the first line.
    pub delimiter: Delimiter,
}

impl Parsed {
    /// One line for a user: `3 rows of 4 values, comma-separated; line 1 is a header (x0, x1, …)`.
    pub fn describe(&self) -> String {
        let (rows, cols) = (self.matrix.rows(), self.matrix.cols());
        let mut s = format!(
            "{rows} row{} of {cols} value{}, {}",
            if rows == 1 { "" } else { "s" },
            if cols == 1 { "" } else { "s" },
            self.delimiter.describe()
        );
        match &self.header {
            Some(h) => {
                let mut names: Vec<&str> = h.names.iter().take(6).map(String::as_str).collect();
                if h.names.len() > 6 {
                    names.push("…");
                }
                s.push_str(&format!(
                    "; line {} is a header, not data ({})",
                    h.line,
                    names.join(", ")
                ));
            }
            None => s.push_str("; no header line"),
        }
        s
    }
}

/// Reads a CSV file as a `[rows, cols]` matrix.
pub fn read(path: impl AsRef<Path>) -> Result<Matrix> {
    read_parsed(path).map(|p| p.matrix)
}

/// Reads a CSV file, saying how it was understood (header, delimiter).
pub fn read_parsed(path: impl AsRef<Path>) -> Result<Parsed> {
    let path = path.as_ref();
    parse(&super::read_file(path)?, &path.display().to_string())
}

/// Parses CSV text; `source` names it in error messages.
pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Matrix> {
    parse(bytes, source).map(|p| p.matrix)
}

/// Parses CSV text (see the module docs for the rules); `source` names it in error messages.
pub fn parse(bytes: &[u8], source: &str) -> Result<Parsed> {
    let err = |msg: String| Error::format(source, msg);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        err(format!("line {line}: not valid UTF-8 text"))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    let mut delimiter = None;
    let mut header: Option<Header> = None;
    let mut width: Option<(usize, usize)> = None; // (values per row, line of the first data row)
    let mut data = Vec::new();
    let mut rows = 0usize;
    for (idx, line) in lines(text).enumerate() {
        let line_no = idx + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || is_comment(trimmed) {
            continue;
        }
        let delim = match delimiter {
            Some(d) => d,
            None => {
                let d = if line.contains(',') {
                    Delimiter::Comma
                } else if line.contains(';') {
                    return Err(err(format!(
                        "line {line_no} separates values with ';'; write them separated by \
                         commas, tabs or spaces"
                    )));
                } else {
                    Delimiter::Whitespace
                };
                delimiter = Some(d);
                d
            }
        };
        let fields = split_fields(line, delim).map_err(|m| err(format!("line {line_no}: {m}")))?;
        let values: Vec<Option<f32>> = fields.iter().map(|f| parse_number(f)).collect();
        let named = fields
            .iter()
            .zip(&values)
            .any(|(f, v)| v.is_none() && !f.is_empty());
        if rows == 0 && header.is_none() && width.is_none() && named {
            // A header names columns; a field that starts like a number or holds a control
            // character is a damaged value (`1e`, `1.5f`, `2<TAB>3` in a comma file), and taking
            // its line as a header would drop a row of data silently.
            let not_a_name = fields
                .iter()
                .zip(&values)
                .enumerate()
                .find(|(_, (f, v))| v.is_none() && !f.is_empty() && !is_name(f));
            if let Some((c, (f, _))) = not_a_name {
                return Err(err(format!(
                    "line {line_no}, column {}: '{}' is not a number, nor a column name (a \
                     header's names do not start like a number or hold control characters)",
                    c + 1,
                    f.chars().take(40).collect::<String>()
                )));
            }
            // A header holds names only: a first line mixing numbers and names (`1,two,3`) is
            // far likelier a data row with a typo than a header naming a column `1`.
            let number = fields.iter().zip(&values).position(|(_, v)| v.is_some());
            let name = fields
                .iter()
                .zip(&values)
                .position(|(f, v)| v.is_none() && !f.is_empty());
            if let (Some(n), Some(w)) = (number, name) {
                let show = |f: &str| f.chars().take(40).collect::<String>();
                return Err(err(format!(
                    "line {line_no}, column {}: '{}' is not a number, but column {} holds the \
                     number '{}'; a header line holds names only and a data row numbers only",
                    w + 1,
                    show(&fields[w]),
                    n + 1,
                    show(&fields[n])
                )));
            }
            header = Some(Header {
                line: line_no,
                names: fields.iter().map(|f| f.to_string()).collect(),
            });
            continue;
        }
        match (width, &header) {
            (None, Some(h)) if h.names.len() != fields.len() => {
                return Err(err(format!(
                    "line {line_no} has {} values but the header on line {} names {} columns; \
                     rows must have equal length",
                    fields.len(),
                    h.line,
                    h.names.len()
                )));
            }
            (None, _) => width = Some((fields.len(), line_no)),
            (Some((w, at)), _) if w != fields.len() => {
                return Err(err(format!(
                    "line {line_no} has {} values but line {at} has {w}; rows must have equal \
                     length",
                    fields.len()
                )));
            }
            (Some(_), _) => {}
        }
        for (c, (f, v)) in fields.iter().zip(values).enumerate() {
            let v = v.ok_or_else(|| {
                if f.is_empty() {
                    err(format!(
                        "line {line_no}, column {}: empty field (write NaN or NA for a missing \
                         value)",
                        c + 1
                    ))
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
    let cols = match (width, &header) {
        (Some((w, _)), _) => w,
        (None, Some(h)) => h.names.len(),
        (None, None) => {
            return Err(err(
                "no numeric rows and no header line, so the number of columns is unknown".into(),
            ));
        }
    };
    let matrix = Matrix::new(rows, cols, data).map_err(|e| err(e.to_string()))?;
    Ok(Parsed {
        matrix,
        header,
        delimiter: delimiter.unwrap_or(Delimiter::Comma),
    })
}

/// The lines of `text`: `\n`, `\r\n` and a lone `\r` (classic Mac OS) each end one.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.find(['\n', '\r']) {
            Some(i) => {
                let end = if r[i..].starts_with("\r\n") {
                    i + 2
                } else {
                    i + 1
                };
                rest = Some(&r[end..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Whether a field that is not a number can be a column name: it does not start like a number
/// (a digit, `.`, or a sign before either) and holds no control character.
fn is_name(field: &str) -> bool {
    let mut chars = field.chars();
    let starts_like_number = match chars.next() {
        // Any script's digits (a full-width `１` is a typo for 1, not a name).
        Some(c) if c.is_numeric() || c == '.' => true,
        Some('+' | '-') => chars.next().is_some_and(|c| c.is_numeric() || c == '.'),
        _ => false,
    };
    !starts_like_number && !field.chars().any(char::is_control)
}

/// Whether a (trimmed, non-empty) line is a comment: it starts with `#`, and not with the
/// missing-value markers `#N/A` or `#NA` as a whole field.
fn is_comment(line: &str) -> bool {
    if !line.starts_with('#') {
        return false;
    }
    let lower = line.get(..4).unwrap_or(line).to_ascii_lowercase();
    let marker = ["#n/a", "#na"].into_iter().find(|m| lower.starts_with(m));
    match marker {
        // `#N/A` as a whole field (followed by the end or a separator) is a value.
        Some(m) => {
            let rest = &line[m.len()..];
            !(rest.is_empty() || rest.starts_with([',', ' ', '\t', '"']))
        }
        None => true,
    }
}

/// Splits a line into fields (unquoted, trimmed); `Err` says what is wrong with the quoting or
/// the separators.
fn split_fields(line: &str, delim: Delimiter) -> Result<Vec<Cow<'_, str>>, String> {
    let b = line.as_bytes();
    let n = b.len();
    let blank = |c: u8| c == b' ' || c == b'\t';
    let comma = delim == Delimiter::Comma;
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        while i < n && blank(b[i]) {
            i += 1;
        }
        if !comma && i == n {
            break;
        }
        let field = fields.len() + 1;
        if i < n && b[i] == b'"' {
            // A quoted field: up to the closing quote, `""` standing for one quote.
            i += 1;
            let mut s = String::new();
            loop {
                let Some(p) = b[i..].iter().position(|&c| c == b'"') else {
                    return Err(format!(
                        "field {field}: unterminated quote (a quoted field must close on its line)"
                    ));
                };
                s.push_str(&line[i..i + p]);
                i += p + 1;
                if i < n && b[i] == b'"' {
                    s.push('"');
                    i += 1;
                } else {
                    break;
                }
            }
            let ends = i == n || blank(b[i]) || (comma && b[i] == b',');
            if !ends {
                return Err(format!("field {field}: text after the closing quote"));
            }
            fields.push(Cow::Owned(s.trim().to_string()));
        } else {
            let start = i;
            while i < n && !(if comma { b[i] == b',' } else { blank(b[i]) }) {
                i += 1;
            }
            let text = line[start..i].trim_end_matches([' ', '\t']);
            fields.push(Cow::Borrowed(text));
        }
        // The separator after the field.
        let run = i;
        while i < n && blank(b[i]) {
            i += 1;
        }
        if i == n {
            break;
        }
        if comma {
            if b[i] != b',' {
                return Err(format!("field {field}: text after the closing quote"));
            }
            // One comma: a field follows, even an empty one.
            i += 1;
        } else if b[run..i].iter().filter(|&&c| c == b'\t').count() > 1 {
            return Err(format!(
                "an empty field after field {field} (two tabs in a row; write NaN or NA for a \
                 missing value)"
            ));
        }
    }
    Ok(fields)
}

/// The spellings of NaN besides `nan` (case-insensitive): the missing-value markers pandas reads
/// as NaN by default.
const MISSING: [&str; 12] = [
    "na", "n/a", "#n/a", "#na", "<na>", "null", "none", "#n/a n/a", "1.#ind", "-1.#ind", "1.#qnan",
    "-1.#qnan",
];

/// Parses one field as f32, or `None` when it is not a number (see the module docs).
fn parse_number(field: &str) -> Option<f32> {
    if field.is_empty() {
        return None;
    }
    if let Ok(v) = field.parse::<f32>() {
        return Some(v);
    }
    MISSING
        .iter()
        .any(|m| field.eq_ignore_ascii_case(m))
        .then_some(f32::NAN)
}

/// Writes `matrix` as CSV, atomically.
pub fn write(path: impl AsRef<Path>, matrix: &Matrix) -> Result<()> {
    write_atomic_with(path.as_ref(), |w| write_rows(w, matrix))
}

/// The CSV text of `matrix`: one line per row, shortest round-trip formatting; a header line of
/// column names when there are no rows.
pub fn to_bytes(matrix: &Matrix) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_rows(&mut out, matrix);
    out
}

fn write_rows(w: &mut dyn Write, matrix: &Matrix) -> std::io::Result<()> {
    if matrix.rows() == 0 {
        // Only a header says how many columns an empty batch has.
        for c in 0..matrix.cols() {
            if c > 0 {
                w.write_all(b",")?;
            }
            write!(w, "c{c}")?;
        }
        return w.write_all(b"\n");
    }
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
