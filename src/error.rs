//! The crate's error type: every fallible operation returns [`Result`].

use std::borrow::Cow;
use std::path::PathBuf;

/// Everything that can go wrong in wgpu-mlp. No public function panics on bad input; it returns one
/// of these instead.
///
/// Messages quote file names, file contents and arguments nobody checked, so `Display` passes every
/// part of a message through [`escape`]: a control character in a path or a CSV field is shown as
/// `\x1b`, `\n`, … and can never move the cursor, recolour the terminal or forge a line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is out of its valid range (init parameters, layer widths, batch sizes, …).
    #[error("invalid argument: {}", escape(.0))]
    InvalidArgument(String),

    /// Shapes that do not fit together (input width, chained layers, tensor sizes).
    #[error("shape mismatch: {}", escape(.0))]
    Shape(String),

    /// A file whose contents are malformed, truncated, or of an unsupported dtype.
    #[error("{}: {}", escape(.path), escape(.msg))]
    Format {
        /// The file (or a description of the source when it is not a file).
        path: String,
        /// What is wrong with it.
        msg: String,
    },

    /// An operating-system I/O error, with the path it happened on.
    #[error("{}: {}", escape(&.path.display().to_string()), escape(&.source.to_string()))]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// No GPU adapter matched the request. The message says how to install a software adapter.
    #[error("no GPU adapter found: {}", escape(.0))]
    NoAdapter(String),

    /// The GPU ran out of memory, or a request exceeds the device's limits.
    #[error("GPU out of memory or over a device limit: {}", escape(.0))]
    OutOfMemory(String),

    /// The device was lost (driver reset, removal) or stopped answering.
    #[error("GPU device lost: {}", escape(.0))]
    DeviceLost(String),

    /// A wait on the GPU exceeded its timeout.
    #[error("GPU did not answer within {0:?}")]
    Timeout(std::time::Duration),

    /// Any other error reported by wgpu (validation errors included).
    #[error("GPU error: {}", escape(.0))]
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

/// `s` with every character that could act on a terminal or hide text made visible: C0 and C1
/// control characters and DEL as `\t`, `\n`, `\r`, `\x1b`, `\u{9b}`, and the Unicode
/// bidirectional overrides and line separators (U+200E–U+200F, U+2028–U+202E, U+2066–U+2069) as
/// `\u{202e}`. Everything else, backslashes included, is unchanged; `s` is borrowed back when there
/// is nothing to escape. Text longer than 4,096 bytes is cut there, with the count of bytes left
/// out.
///
/// This is the one place where untrusted text (paths, arguments, file contents, driver strings) is
/// made safe to print; [`Error`]'s messages go through it.
pub fn escape(s: &str) -> Cow<'_, str> {
    // Text from a file can be any length (a 50 MB metadata string became a 50 MB error line):
    // past MAX_SHOWN bytes it is cut, saying how much was left out.
    if s.len() > MAX_SHOWN {
        let mut cut = MAX_SHOWN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        let shown = escape(&s[..cut]);
        return Cow::Owned(format!("{shown}… ({} more bytes)", s.len() - cut));
    }
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The most bytes of one piece of text [`escape`] shows (messages stay readable, and bounded).
const MAX_SHOWN: usize = 4096;

/// Characters [`escape`] rewrites.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
