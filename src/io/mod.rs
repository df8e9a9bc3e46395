//! Weights and data I/O: safetensors state_dicts, `.npy`, `.npz`, CSV and JSON matrices.
//!
//! - [`safetensors`] reads and writes the `state_dict` of the equivalent PyTorch `nn.Sequential`.
//! - [`npy`] reads `.npy` arrays (float, integer or bool, any shape, C or Fortran order,
//!   versions 1–3) and writes `<f4` version 1.0; [`npz`] reads one array of a `.npz`.
//! - [`csv`] reads and writes plain numeric CSV; [`json`] writes JSON.
//! - [`read_matrix`] / [`write_matrix`] pick the format by the file's extension; [`stdin`]
//!   reads standard input and tells its format by its first bytes.
//!
//! Every reader returns [`Error::Format`] naming the problem for malformed,
//! truncated or unsupported files (it never panics), and reads only regular files (symbolic links
//! followed), never more bytes than the file had when it was opened: a folder, a FIFO or a device
//! such as `/dev/zero` is refused before it is opened for reading.
//!
//! Every writer is atomic ([`write_atomic`]): the data goes to a new temporary file in the
//! target's folder that is renamed over the target only once it is complete and on disk, so a
//! failed write never leaves a partial (or any new) file behind. [`check_output`] checks an output
//! path before any work is done, and [`remove_temp_files_on_signals`] extends the guarantee to
//! SIGINT, SIGTERM and the other signals a run can be stopped with (not SIGKILL).

mod atomic;
pub mod csv;
pub mod json;
pub mod labels;
pub mod npy;
#[cfg(not(target_arch = "wasm32"))]
#[cfg_attr(docsrs, doc(cfg(not(target_arch = "wasm32"))))]
pub mod npz;
#[cfg(feature = "pth")]
pub mod pth;
pub mod safetensors;
mod signals;
pub mod stdin;

pub use atomic::{check_output, same_file, write_atomic, write_atomic_all, write_atomic_with};
pub use signals::remove_temp_files_on_signals;

use std::io::Read as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// A matrix file format, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatrixFormat {
    /// NumPy `.npy`.
    Npy,
    /// Comma-separated values, `.csv`.
    Csv,
    /// NumPy `.npz` (read only): its one array, or the one named as `file.npz:name`.
    Npz,
    /// JSON (written only): an array of rows.
    Json,
}

impl MatrixFormat {
    /// The format for `path`'s extension (`.npy`, `.csv`, `.npz`, `.json`, case-insensitive; a
    /// `.npz` may name its array, `file.npz:name`); an error naming the path otherwise.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let (path, _) = npz_member(path);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("npy") => Ok(MatrixFormat::Npy),
            Some("csv") => Ok(MatrixFormat::Csv),
            Some("npz") => Ok(MatrixFormat::Npz),
            Some("json") => Ok(MatrixFormat::Json),
            Some(other) => Err(Error::invalid(format!(
                "{}: unsupported file extension '.{other}'; use .npy, .npz, .csv or .json",
                path.display()
            ))),
            None => Err(Error::invalid(format!(
                "{}: no file extension; use .npy, .npz, .csv or .json",
                path.display()
            ))),
        }
    }
}

/// Splits `file.npz:name` into the file and the array's name. A path that exists as given, or
/// has no `.npz:` in it, is a file of its own.
pub fn npz_member(path: &Path) -> (std::borrow::Cow<'_, Path>, Option<String>) {
    let whole = (path.into(), None);
    let Some(text) = path.to_str() else {
        return whole;
    };
    let lower = text.to_ascii_lowercase();
    match lower.rfind(".npz:") {
        Some(at) if !path.exists() => {
            let (file, name) = (&text[..at + 4], &text[at + 5..]);
            (Path::new(file).to_path_buf().into(), Some(name.to_string()))
        }
        _ => whole,
    }
}

/// Reads a `[rows, cols]` matrix from a `.npy`, `.npz` (`file.npz:name`) or `.csv` file, chosen
/// by extension.
pub fn read_matrix(path: impl AsRef<Path>) -> Result<Matrix> {
    let path = path.as_ref();
    match MatrixFormat::from_path(path)? {
        MatrixFormat::Npy => npy::read(path),
        MatrixFormat::Csv => csv::read(path),
        #[cfg(not(target_arch = "wasm32"))]
        MatrixFormat::Npz => {
            let (file, name) = npz_member(path);
            npz::read_array(&file, name.as_deref())?.into_matrix(false, &path.display().to_string())
        }
        #[cfg(target_arch = "wasm32")]
        MatrixFormat::Npz => Err(Error::invalid(".npz files are not read on wasm32")),
        MatrixFormat::Json => Err(Error::invalid(format!(
            "{}: JSON is written, not read; give .npy, .npz or .csv",
            path.display()
        ))),
    }
}

/// Writes a matrix to a `.npy`, `.csv` or `.json` file, chosen by extension (atomically).
pub fn write_matrix(path: impl AsRef<Path>, matrix: &Matrix) -> Result<()> {
    let path = path.as_ref();
    match MatrixFormat::from_path(path)? {
        MatrixFormat::Npy => npy::write(path, matrix),
        MatrixFormat::Csv => csv::write(path, matrix),
        MatrixFormat::Json => json::write(path, matrix),
        MatrixFormat::Npz => Err(Error::invalid(format!(
            "{}: .npz is read, not written; give .npy, .csv or .json",
            path.display()
        ))),
    }
}

/// Checks that `path` is a regular file that can be read (symbolic links followed) and returns its
/// size in bytes. A folder, FIFO, socket or device is refused with a message that says what it is.
pub fn check_input(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    regular(path, &meta)?;
    Ok(meta.len())
}

/// `Ok` for a regular file, else an error naming what `path` is.
fn regular(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    Err(Error::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "is {}, not a regular file; give a file (save the data to a file first)",
                atomic::kind_of(meta)
            ),
        ),
    ))
}

/// Reads a whole regular file (see [`check_input`]), no more than the size it had when opened.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    check_input(path)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Were the file swapped for a FIFO after the check, opening it would wait for a writer;
        // O_NONBLOCK makes the open return (and changes nothing for a regular file).
        options.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    regular(path, &meta)?;
    let len = meta.len();
    let mut bytes = Vec::new();
    usize::try_from(len)
        .ok()
        .and_then(|n| bytes.try_reserve_exact(n).ok())
        .ok_or_else(|| {
            Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::OutOfMemory,
                    format!("the file is {len} bytes, more than this process can hold in memory"),
                ),
            )
        })?;
    file.take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}
