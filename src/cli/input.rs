//! What `infer` reads: a file (.npy, .npz, .csv) or standard input (`-i -`), whole or a batch of
//! rows at a time (`--batch-size`), with a note on stderr for everything not taken as it was
//! (a CSV's header, a dtype converted to float32, an N-D array flattened).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use wgpu_mlp::io::{self, MatrixFormat, npy};
use wgpu_mlp::{Error, Matrix, Result, escape, memory};

use crate::cli::format_error;

/// Where the input comes from.
pub(crate) enum Source {
    Stdin,
    /// The file, its format, and the array named in `file.npz:name`.
    File(PathBuf, MatrixFormat, Option<String>),
}

impl Source {
    pub(crate) fn parse(arg: &Path) -> Result<Self> {
        if arg == Path::new("-") {
            return Ok(Source::Stdin);
        }
        let format = MatrixFormat::from_path(arg)?;
        if format == MatrixFormat::Json {
            return Err(Error::InvalidArgument(format!(
                "{}: JSON is an output format; give .npy, .npz or .csv",
                escape(&arg.display().to_string())
            )));
        }
        let (file, member) = io::npz_member(arg);
        Ok(Source::File(file.into_owned(), format, member))
    }

    /// The file, if the input is one.
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Source::File(p, ..) => Some(p),
            Source::Stdin => None,
        }
    }

    fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".into(),
            Source::File(p, ..) => p.display().to_string(),
        }
    }

    /// Reads the whole input as a matrix; `flatten`: the model starts with nn.Flatten, so an
    /// N-D array is flattened from dimension 1.
    pub(crate) fn read(&self, flatten: bool) -> Result<Matrix> {
        let name = self.name();
        let (format, bytes) = match self {
            Source::Stdin => {
                // Held once as bytes and once as values: a third of what is free, at most.
                let limit = memory::available().map_or(u64::MAX, |b| b / 3);
                let bytes = io::stdin::read_all(limit)?;
                (io::stdin::sniff(&bytes), Some(bytes))
            }
            Source::File(_, f, _) => (*f, None),
        };
        let array = match (format, self) {
            (MatrixFormat::Csv, _) => {
                let parsed = match (&bytes, self) {
                    (Some(b), _) => io::csv::parse(b, &name)?,
                    (None, Source::File(p, ..)) => io::csv::read_parsed(p)?,
                    (None, Source::Stdin) => cannot_read()?,
                };
                note!("note: {}: {}", escape(&name), escape(&parsed.describe()));
                return Ok(parsed.matrix);
            }
            (MatrixFormat::Npy, _) => match (&bytes, self) {
                (Some(b), _) => npy::array_from_bytes(b, &name)?,
                (None, Source::File(p, ..)) => npy::read_array(p)?,
                (None, Source::Stdin) => cannot_read()?,
            },
            (MatrixFormat::Npz, Source::File(p, _, member)) => {
                io::npz::read_array(p, member.as_deref())?
            }
            (MatrixFormat::Npz, Source::Stdin) => {
                io::npz::array_from_bytes(bytes.as_deref().unwrap_or_default(), None, &name)?
            }
            (MatrixFormat::Json, _) => cannot_read()?,
        };
        dtype_note(&name, array.dtype, array.rounded, array.data.len() as u128);
        let shape = array.shape.clone();
        let m = array.into_matrix(flatten, &name)?;
        if shape.len() > 2 {
            note!(
                "note: {}: shape {shape:?} flattened from dimension 1 to [{}, {}], as the \
                 model's nn.Flatten does",
                escape(&name),
                m.rows(),
                m.cols()
            );
        }
        Ok(m)
    }

    /// Opens the input to be read `--batch-size` rows at a time.
    pub(crate) fn batches(&self, flatten: bool) -> Result<Batches> {
        let name = self.name();
        let mut reader: Box<dyn BufRead> = match self {
            Source::Stdin => Box::new(BufReader::new(std::io::stdin())),
            Source::File(p, MatrixFormat::Npz, _) => {
                return Err(Error::InvalidArgument(format!(
                    "{}: an .npz is read whole; save the array as .npy to read it in batches, \
                     or leave out --batch-size",
                    escape(&p.display().to_string())
                )));
            }
            Source::File(p, ..) => {
                io::check_input(p)?;
                let file = std::fs::File::open(p).map_err(|e| Error::Io {
                    path: p.clone(),
                    source: e,
                })?;
                Box::new(BufReader::new(file))
            }
        };
        let first = reader.fill_buf().map_err(|e| Error::Io {
            path: PathBuf::from(&name),
            source: e,
        })?;
        match io::stdin::sniff(first) {
            MatrixFormat::Npy => {
                let rows = npy::Rows::new(reader, &name)?;
                if rows.shape().len() > 2 && !flatten {
                    return Err(format_error(
                        &name,
                        format!(
                            "a {}-D array of shape {:?}; give a 2-D [batch, features] array, \
                             or a model that starts with nn.Flatten",
                            rows.shape().len(),
                            rows.shape()
                        ),
                    ));
                }
                Ok(Batches::Npy(rows, name))
            }
            MatrixFormat::Npz => Err(format_error(
                &name,
                "an .npz is read whole; leave out --batch-size",
            )),
            _ => Ok(Batches::Csv(crate::cli::csv_batches::CsvBatches::new(
                reader, name,
            ))),
        }
    }
}

/// A read that cannot happen (each format was matched to its reader above).
fn cannot_read<T>() -> Result<T> {
    Err(Error::InvalidArgument(
        "this input format cannot be read".into(),
    ))
}

/// A note for values that were not float32: converted as `x.float()` does.
fn dtype_note(name: &str, dtype: &str, rounded: usize, count: u128) {
    if dtype == "float32" {
        return;
    }
    let change = if rounded == 0 {
        "every value exact".to_string()
    } else {
        format!("{rounded} of {count} values rounded")
    };
    note!(
        "note: {}: {dtype} values converted to float32, as x.float() does ({change})",
        escape(name)
    );
}

/// An input read a batch of rows at a time.
pub(crate) enum Batches {
    Npy(npy::Rows<Box<dyn BufRead>>, String),
    Csv(crate::cli::csv_batches::CsvBatches),
}

impl Batches {
    /// The row count when known before reading (an .npy's header says it).
    pub(crate) fn total(&self) -> Option<usize> {
        match self {
            // A 1-D array is one row.
            Batches::Npy(rows, _) => match rows.shape() {
                [_] => Some(1),
                shape => shape.first().copied(),
            },
            Batches::Csv(_) => None,
        }
    }

    /// The values per row when known before reading (an .npy's header says it).
    pub(crate) fn width(&self) -> Option<usize> {
        match self {
            Batches::Npy(rows, _) => Some(rows.row_len()),
            Batches::Csv(_) => None,
        }
    }

    /// The next `n` rows, `None` at the end.
    pub(crate) fn next(&mut self, n: usize) -> Result<Option<Matrix>> {
        match self {
            Batches::Npy(rows, _) => rows.next_rows(n),
            Batches::Csv(c) => c.next(n),
        }
    }

    /// The notes to print once all was read.
    pub(crate) fn finish(&self) {
        match self {
            Batches::Npy(rows, name) => {
                let count = self.total().unwrap_or(0) as u128 * rows.row_len() as u128;
                dtype_note(name, rows.dtype(), rows.rounded(), count);
            }
            Batches::Csv(c) => c.finish(),
        }
    }
}
