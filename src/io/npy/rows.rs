//! Reading a C-order `.npy` stream a few rows at a time, so an input larger than memory can be
//! run in batches.

use std::io::Read;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

use super::header::{self, Header};

/// The largest header a stream may announce. NumPy's own reader refuses headers over 10,000
/// bytes by default; this leaves room and bounds what a hostile stream makes us hold.
const MAX_HEADER: usize = 1 << 20;

/// A `.npy` stream read in batches of rows ([`Rows::next_rows`]), each converted to f32 as
/// [`super::read`] converts. An N-D array's rows are its first dimension, flattened.
pub struct Rows<R> {
    reader: R,
    header: Header,
    /// Values per row: the product of the dimensions after the first.
    row_len: usize,
    left: usize,
    rounded: usize,
    source: String,
}

impl<R: Read> Rows<R> {
    /// Reads the header from `reader`; `source` names the stream in errors. A Fortran-order
    /// array of two or more dimensions cannot be read by rows and is refused.
    pub fn new(mut reader: R, source: &str) -> Result<Self> {
        let err = |msg: String| Error::format(source, msg);
        let io = |e: std::io::Error| Error::format(source, format!("cannot read: {e}"));
        let mut first = [0u8; 12];
        let mut got = 0;
        while got < 10 {
            match reader.read(&mut first[got..10]).map_err(io)? {
                0 => break,
                n => got += n,
            }
        }
        if got == 10 && first[6] >= 2 {
            reader.read_exact(&mut first[10..12]).map_err(io)?;
            got = 12;
        }
        let (_, hlen) = header::prefix(&first[..got]).map_err(err)?;
        if hlen > MAX_HEADER {
            return Err(err(format!(
                "the header announces {hlen} bytes, more than the {MAX_HEADER} read from a stream"
            )));
        }
        let mut text = vec![0u8; hlen];
        reader
            .read_exact(&mut text)
            .map_err(|_| err(format!("the stream ends inside the {hlen}-byte header")))?;
        let header = header::parse(&text).map_err(err)?;
        if header.fortran && header.shape.len() >= 2 {
            return Err(err(
                "a Fortran-order array cannot be read in batches of rows; save \
                 np.ascontiguousarray(a), or leave out --batch-size"
                    .into(),
            ));
        }
        let (left, row_len) = match header.shape[..] {
            [] => {
                return Err(err(
                    "a 0-D array (a scalar); give a [batch, features] array".into(),
                ));
            }
            [n] => (1, n),
            [r, ..] => (r, header.shape[1..].iter().product()),
        };
        Ok(Rows {
            reader,
            header,
            row_len,
            left,
            rounded: 0,
            source: source.to_string(),
        })
    }

    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        &self.header.shape
    }

    /// NumPy's name of the stream's dtype.
    pub fn dtype(&self) -> &'static str {
        self.header.dtype.name()
    }

    /// How many values read so far changed when rounded to f32.
    pub fn rounded(&self) -> usize {
        self.rounded
    }

    /// Values per row (the dimensions after the first, multiplied).
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// The next `max_rows` rows (fewer at the end), `None` once all were read. After the last
    /// row, bytes left in the stream are an error, as they are in a file.
    pub fn next_rows(&mut self, max_rows: usize) -> Result<Option<Matrix>> {
        let err = |msg: String| Error::format(&self.source, msg);
        if self.left == 0 {
            let mut extra = [0u8; 1];
            return match self.reader.read(&mut extra) {
                Ok(0) => Ok(None),
                Ok(_) => Err(err(format!(
                    "unexpected bytes after the data of shape {:?}",
                    self.header.shape
                ))),
                Err(e) => Err(err(format!("cannot read: {e}"))),
            };
        }
        let rows = max_rows.max(1).min(self.left);
        let size = self.header.dtype.size();
        let nbytes = rows
            .checked_mul(self.row_len)
            .and_then(|n| n.checked_mul(size))
            .ok_or_else(|| err(format!("{rows} rows of {} values overflow", self.row_len)))?;
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(nbytes)
            .map_err(|_| err(format!("{rows} rows ({nbytes} bytes) do not fit in memory")))?;
        let got = (&mut self.reader)
            .take(nbytes as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| err(format!("cannot read: {e}")))?;
        if got < nbytes {
            return Err(err(format!(
                "data is truncated: shape {:?} needs more bytes than the stream has",
                self.header.shape
            )));
        }
        let mut values = Vec::with_capacity(rows * self.row_len);
        self.rounded += self.header.dtype.decode_f32(&bytes, &mut values);
        self.left -= rows;
        Matrix::new(rows, self.row_len, values)
            .map(Some)
            .map_err(|e| err(e.to_string()))
    }
}
