//! A CSV read a batch of lines at a time (`infer --batch-size`). Each batch is parsed by the
//! crate's CSV reader; the first decides the delimiter, the header and the width, and every
//! later batch must agree (a line of names further down is an error, not a second header).

use std::io::BufRead;

use wgpu_mlp::io::csv::{self, Delimiter};
use wgpu_mlp::{Matrix, Result, escape};

use crate::cli::format_error;

/// The longest line read: a row of a million values in full precision is about 16 MB.
const MAX_LINE: u64 = 256 << 20;

pub(crate) struct CsvBatches {
    reader: Box<dyn BufRead>,
    name: String,
    /// Lines read so far (numbered from 1).
    line: usize,
    /// The first batch's delimiter, width and header description.
    first: Option<(Delimiter, usize, Option<String>)>,
    rows: usize,
    done: bool,
}

impl CsvBatches {
    pub(crate) fn new(reader: Box<dyn BufRead>, name: String) -> Self {
        CsvBatches {
            reader,
            name,
            line: 0,
            first: None,
            rows: 0,
            done: false,
        }
    }

    /// Up to `n` lines holding data (blank and comment lines are skipped), parsed.
    pub(crate) fn next(&mut self, n: usize) -> Result<Option<Matrix>> {
        if self.done {
            return Ok(None);
        }
        let start = self.line + 1;
        let mut text = Vec::new();
        let mut lines = 0;
        // The first batch may begin with a header: one line more.
        let want = n.max(1) + usize::from(self.first.is_none());
        while lines < want {
            let mut buf = Vec::new();
            let reader: &mut dyn BufRead = &mut *self.reader;
            let got = std::io::Read::take(reader, MAX_LINE + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| format_error(&self.name, format!("cannot read: {e}")))?;
            if got == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            if got as u64 > MAX_LINE {
                return Err(format_error(
                    &self.name,
                    format!("line {} is longer than {MAX_LINE} bytes", self.line),
                ));
            }
            if !skipped(&buf) {
                lines += 1;
            }
            text.extend_from_slice(&buf);
        }
        let Some((delimiter, cols, _)) = &self.first else {
            // The first batch: the whole file's rules (an empty input is the reader's error).
            let parsed = csv::parse(&text, &self.name)?;
            let header = parsed.header.as_ref().map(|h| {
                format!(
                    "line {} is a header, not data ({})",
                    h.line,
                    h.names
                        .iter()
                        .take(6)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            self.first = Some((parsed.delimiter, parsed.matrix.cols(), header));
            self.rows += parsed.matrix.rows();
            return Ok(Some(parsed.matrix));
        };
        if lines == 0 {
            return Ok(None);
        }
        let source = format!("{}, the batch from line {start}", self.name);
        let parsed = csv::parse(&text, &source)?;
        if let Some(h) = parsed.header {
            return Err(format_error(
                &source,
                format!(
                    "line {} holds names, not numbers ({}); only the first line may be a header",
                    h.line,
                    h.names.join(", ")
                ),
            ));
        }
        if parsed.delimiter != *delimiter || parsed.matrix.cols() != *cols {
            return Err(format_error(
                &source,
                format!(
                    "{} values per line, {}, where the first lines have {cols}, {}",
                    parsed.matrix.cols(),
                    parsed.delimiter.describe(),
                    delimiter.describe()
                ),
            ));
        }
        self.rows += parsed.matrix.rows();
        Ok(Some(parsed.matrix))
    }

    /// Says on stderr how the CSV was read.
    pub(crate) fn finish(&self) {
        let Some((delimiter, cols, header)) = &self.first else {
            return;
        };
        let rows = self.rows;
        note!(
            "note: {}: {rows} row{} of {cols} value{}, {}; {}",
            escape(&self.name),
            if rows == 1 { "" } else { "s" },
            if *cols == 1 { "" } else { "s" },
            delimiter.describe(),
            escape(header.as_deref().unwrap_or("no header line"))
        );
    }
}

/// A blank line, or a comment (`#`, but not the missing-value markers `#N/A`, `#NA`).
fn skipped(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let t = text.trim_start_matches([' ', '\t', '\u{feff}']).trim_end();
    if t.is_empty() {
        return true;
    }
    let upper = t.to_ascii_uppercase();
    t.starts_with('#') && !upper.starts_with("#N/A") && !upper.starts_with("#NA")
}
