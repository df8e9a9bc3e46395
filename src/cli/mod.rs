//! The command line's parts: its arguments, where the model comes from, where it runs, and the
//! commands. `src/main.rs` parses, dispatches and prints errors.

/// `eprintln!` that cannot fail the command: a diagnostic that cannot be written (stderr closed,
/// `2>&1 | true`, or full, `2>/dev/full`) is dropped and the command goes on; `eprintln!` would
/// panic. (`clippy::print_stderr` is denied in this crate to keep it so.)
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use note;

pub(crate) mod args;
pub(crate) mod commands;
pub(crate) mod csv_batches;
pub(crate) mod device;
pub(crate) mod infer;
pub(crate) mod input;
pub(crate) mod model;
pub(crate) mod output;
pub(crate) mod overrides;
pub(crate) mod train;
pub(crate) mod train_device;
pub(crate) mod train_report;
pub(crate) mod train_run;

/// An error in an input's content (`Error::Format`), naming the source.
pub(crate) fn format_error(
    source: impl std::fmt::Display,
    msg: impl Into<String>,
) -> wgpu_mlp::Error {
    wgpu_mlp::Error::Format {
        path: source.to_string(),
        msg: msg.into(),
    }
}
