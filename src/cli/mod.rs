//! The command line's parts: its arguments, where the model comes from, where it runs, and the
//! commands. `src/main.rs` parses, dispatches and prints errors.

pub(crate) mod args;
pub(crate) mod commands;
pub(crate) mod device;
pub(crate) mod model;
