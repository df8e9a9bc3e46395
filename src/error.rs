//! The crate's error type: every fallible operation returns [`Result`].

use std::path::PathBuf;

/// Everything that can go wrong in wgpu-mlp. No public function panics on bad input; it returns one
/// of these instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is out of its valid range (init parameters, layer widths, batch sizes, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Shapes that do not fit together (input width, chained layers, tensor sizes).
    #[error("shape mismatch: {0}")]
    Shape(String),

    /// A file whose contents are malformed, truncated, or of an unsupported dtype.
    #[error("{path}: {msg}")]
    Format {
        /// The file (or a description of the source when it is not a file).
        path: String,
        /// What is wrong with it.
        msg: String,
    },

    /// An operating-system I/O error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// No GPU adapter matched the request. The message says how to install a software adapter.
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),

    /// The GPU ran out of memory, or a request exceeds the device's limits.
    #[error("GPU out of memory or over a device limit: {0}")]
    OutOfMemory(String),

    /// The device was lost (driver reset, removal) or stopped answering.
    #[error("GPU device lost: {0}")]
    DeviceLost(String),

    /// A wait on the GPU exceeded its timeout.
    #[error("GPU did not answer within {0:?}")]
    Timeout(std::time::Duration),

    /// Any other error reported by wgpu (validation errors included).
    #[error("GPU error: {0}")]
    Gpu(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    /// Shorthand for [`Error::Shape`].
    pub(crate) fn shape(msg: impl Into<String>) -> Self {
        Error::Shape(msg.into())
    }

    /// Shorthand for [`Error::Format`].
    pub(crate) fn format(path: impl std::fmt::Display, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_string(),
            msg: msg.into(),
        }
    }

    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `s` with control characters escaped (`\n`, `\u{1b}`, …), for echoing untrusted text (file
/// contents, arguments) in an error message without letting it move the cursor or forge lines.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
