//! What `infer` writes and where: the output's values, each row's class (`--argmax`) or its
//! `--top-k`, to a file (.npy, .csv, .json; atomically) or as CSV on standard output (`-o -`),
//! a batch of rows at a time.

use std::io::Write;
use std::path::{Path, PathBuf};

use wgpu_mlp::io::{self, MatrixFormat};
use wgpu_mlp::{Error, Matrix, Result, escape};

/// Where the output goes.
pub(crate) enum Dest {
    Stdout,
    File(PathBuf, MatrixFormat),
}

impl Dest {
    pub(crate) fn parse(path: &Path) -> Result<Self> {
        if path == Path::new("-") {
            return Ok(Dest::Stdout);
        }
        match MatrixFormat::from_path(path)? {
            MatrixFormat::Npz => Err(Error::InvalidArgument(format!(
                "{}: .npz is an input format; write .npy, .csv or .json",
                escape(&path.display().to_string())
            ))),
            f => Ok(Dest::File(path.to_path_buf(), f)),
        }
    }

    fn format(&self) -> MatrixFormat {
        match self {
            Dest::Stdout => MatrixFormat::Csv,
            Dest::File(_, f) => *f,
        }
    }
}

/// What is written of each output row.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Select {
    Values,
    Argmax,
    TopK(usize),
}

impl Select {
    /// From `--argmax` and `--top-k`, checked against the output's format and width.
    pub(crate) fn new(argmax: bool, top_k: Option<usize>, dest: &Dest) -> Result<Self> {
        let select = match (argmax, top_k) {
            (true, _) => Select::Argmax,
            (false, Some(0)) => {
                return Err(Error::InvalidArgument(
                    "--top-k 0: give K of at least 1".into(),
                ));
            }
            (false, Some(k)) => Select::TopK(k),
            (false, None) => Select::Values,
        };
        if matches!(select, Select::TopK(_)) && dest.format() == MatrixFormat::Npy {
            return Err(Error::InvalidArgument(
                "--top-k writes two arrays (indices and values): write .csv, .json or - \
                 (stdout), or use --argmax for an .npy of classes"
                    .into(),
            ));
        }
        Ok(select)
    }

    /// Checked once the model's output width is known.
    pub(crate) fn check_width(self, width: usize) -> Result<()> {
        match self {
            Select::TopK(k) if k > width => Err(Error::InvalidArgument(format!(
                "--top-k {k}: the model has only {width} outputs"
            ))),
            Select::Argmax | Select::TopK(_) if width == 0 => Err(Error::InvalidArgument(
                "--argmax/--top-k: the model has no outputs".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Writes the output a batch at a time into `w`, in `format`.
pub(crate) struct Writer<'a> {
    w: &'a mut dyn Write,
    format: MatrixFormat,
    select: Select,
    width: usize,
    rows: usize,
}

impl<'a> Writer<'a> {
    /// Starts the output of `total` rows (`None`: not known yet, which .npy cannot take) of
    /// the model's `width` outputs.
    pub(crate) fn begin(
        w: &'a mut dyn Write,
        dest: &Dest,
        select: Select,
        width: usize,
        total: Option<usize>,
    ) -> std::io::Result<Self> {
        let format = dest.format();
        match format {
            MatrixFormat::Npy => {
                let Some(total) = total else {
                    return Err(std::io::Error::other(
                        "an .npy output needs the row count first",
                    ));
                };
                let header = match select {
                    Select::Argmax => io::npy::header_bytes("<i8", &[total]),
                    _ => io::npy::header_bytes("<f4", &[total, width]),
                };
                w.write_all(&header)?;
            }
            MatrixFormat::Json => w.write_all(b"[")?,
            _ => {}
        }
        Ok(Writer {
            w,
            format,
            select,
            width,
            rows: 0,
        })
    }

    /// Writes the rows of `out`.
    pub(crate) fn rows(&mut self, out: &Matrix) -> std::io::Result<()> {
        for r in 0..out.rows() {
            let row = out.row(r);
            match self.select {
                Select::Values => self.values(row)?,
                Select::Argmax => self.argmax(row)?,
                Select::TopK(k) => self.top_k(row, k)?,
            }
            self.rows += 1;
        }
        Ok(())
    }

    /// Ends the output (a CSV of no rows gets the header line that says its width).
    pub(crate) fn end(self) -> std::io::Result<()> {
        match self.format {
            MatrixFormat::Json => self.w.write_all(b"]\n")?,
            MatrixFormat::Csv if self.rows == 0 => {
                let names: Vec<String> = match self.select {
                    Select::Values => (0..self.width).map(|c| format!("c{c}")).collect(),
                    Select::Argmax => vec!["index".into()],
                    Select::TopK(k) => (1..=k)
                        .map(|i| format!("index_{i}"))
                        .chain((1..=k).map(|i| format!("value_{i}")))
                        .collect(),
                };
                writeln!(self.w, "{}", names.join(","))?;
            }
            _ => {}
        }
        self.w.flush()
    }

    fn separator(&mut self) -> std::io::Result<()> {
        if self.format == MatrixFormat::Json && self.rows > 0 {
            self.w.write_all(b",\n ")?;
        }
        Ok(())
    }

    fn values(&mut self, row: &[f32]) -> std::io::Result<()> {
        self.separator()?;
        match self.format {
            MatrixFormat::Npy => {
                for v in row {
                    self.w.write_all(&v.to_le_bytes())?;
                }
                Ok(())
            }
            MatrixFormat::Json => io::json::write_row(self.w, row),
            _ => csv_line(self.w, row.iter().map(|v| format!("{v:?}"))),
        }
    }

    fn argmax(&mut self, row: &[f32]) -> std::io::Result<()> {
        let i = top(row, 1)[0];
        self.separator()?;
        match self.format {
            MatrixFormat::Npy => self.w.write_all(&(i as i64).to_le_bytes()),
            _ => write!(
                self.w,
                "{i}{}",
                if self.format == MatrixFormat::Csv {
                    "\n"
                } else {
                    ""
                }
            ),
        }
    }

    fn top_k(&mut self, row: &[f32], k: usize) -> std::io::Result<()> {
        let idx = top(row, k);
        self.separator()?;
        if self.format == MatrixFormat::Json {
            let values: Vec<f32> = idx.iter().map(|&i| row[i]).collect();
            let list: Vec<String> = idx.iter().map(usize::to_string).collect();
            write!(self.w, "{{\"indices\": [{}], \"values\": ", list.join(", "))?;
            io::json::write_row(self.w, &values)?;
            return self.w.write_all(b"}");
        }
        csv_line(
            self.w,
            idx.iter()
                .map(usize::to_string)
                .chain(idx.iter().map(|&i| format!("{:?}", row[i]))),
        )
    }
}

fn csv_line(w: &mut dyn Write, fields: impl Iterator<Item = String>) -> std::io::Result<()> {
    let line: Vec<String> = fields.collect();
    writeln!(w, "{}", line.join(","))
}

/// The indices of the `k` largest values of `row`, largest first; equal values in index order
/// and NaN above everything, as torch.topk and torch.argmax order them.
pub(crate) fn top(row: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    let key = |i: usize| (row[i].is_nan(), row[i]);
    // A stable sort keeps equal values in index order.
    idx.sort_by(|&a, &b| {
        let (na, va) = key(a);
        let (nb, vb) = key(b);
        nb.cmp(&na)
            .then_with(|| vb.partial_cmp(&va).unwrap_or(std::cmp::Ordering::Equal))
    });
    idx.truncate(k);
    idx
}
