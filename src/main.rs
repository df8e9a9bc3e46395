//! The `wgpu-mlp` command line.
//!
//! ```text
//! wgpu-mlp summary --weights model.onnx|model.safetensors [--arch M1,M2,... | --act A1,...] [--batch N]
//! wgpu-mlp summary --layers 784,128,64,10 [--arch M1,M2,... | --act relu,relu,softmax] [--batch N]
//! wgpu-mlp init --layers 784,128,10 [--arch ... | --act relu,softmax] --seed 42 --output model.safetensors
//! wgpu-mlp infer --weights model.onnx|model.safetensors [--arch ... | --act ...]
//!                --input x.npy|x.npz[:NAME]|x.csv|- --output y.npy|y.csv|y.json|-
//!                [--argmax | --top-k K] [--batch-size N]
//!                [--device auto|gpu|cpu|cpu-reference] [--adapter NAME] [--threads N]
//!                [--kernel KERNEL] [--weight-format f32|f16]
//! wgpu-mlp adapters
//! wgpu-mlp [bench] [--full] [--workload gemm,mnist,...] [--batch N,...] [--sizes N,...]
//!                  [--paths cpu-fast,gpu-e2e,...] [--runs N] [--warmup N] [--budget SECS]
//!                  [--adapter NAME] [--threads N] [--json FILE] [--plot FILE.svg]
//! ```
//!
//! With no subcommand, `wgpu-mlp` runs the quick benchmark (`wgpu-mlp bench`).
//!
//! Every error prints `error: <message>` on stderr and exits with status 1 (usage errors
//! included); no command leaves a partial output file behind. The commands live in `cli/`.

// Printing goes through `cli::note!` and the commands' stdout writer, which do not panic when
// stdout or stderr is closed or full.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use wgpu_mlp::io;
use wgpu_mlp::{Error, Result};

mod cli;

use cli::note;

use cli::args::{Cli, Command};
use cli::commands;

fn main() -> ExitCode {
    quiet_mesa();
    // A panic is a bug; report it like any other error, without a backtrace.
    std::panic::set_hook(Box::new(|info| {
        note!(
            "error: internal error (this is a bug): {}",
            wgpu_mlp::escape(&info.to_string())
        );
    }));
    // Ctrl-C or a kill while an output is being written removes the temporary file.
    if let Err(e) = io::remove_temp_files_on_signals() {
        note!("warning: {e}");
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    match std::panic::catch_unwind(|| run_args(&args)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(Failure::Info(e))) => match e.print() {
            Ok(()) => ExitCode::SUCCESS,
            // `--help > /dev/full`: the text was asked for and not delivered.
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                note!("error: cannot write to stdout: {err}");
                ExitCode::FAILURE
            }
            Err(_) => ExitCode::SUCCESS,
        },
        Ok(Err(Failure::Usage(e, escaped))) => {
            match escaped {
                Some(text) => {
                    use std::io::Write as _;
                    let _ = std::io::stderr().write_all(text.as_bytes());
                }
                // As clap prints it (in colour on a terminal).
                None => {
                    let _ = e.print();
                }
            }
            ExitCode::FAILURE
        }
        Ok(Err(Failure::Run(e))) => {
            note!("error: {e}");
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}

/// How a run ends when it does not simply succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// `--help` or `--version`: text for stdout, and success.
    Info(clap::Error),
    /// A usage error from clap, and its text with the arguments escaped when any argument
    /// needed it (see [`usage_error`]).
    Usage(clap::Error, Option<String>),
    /// Any other error: printed as `error: {e}`.
    Run(Error),
}

/// The whole command line: parses `args` (the program name first) and runs the command. The
/// binary is this plus printing; the fuzz target calls it directly.
pub(crate) fn run_args(args: &[OsString]) -> std::result::Result<(), Failure> {
    let cli = Cli::try_parse_from(args).map_err(|e| {
        use clap::error::ErrorKind;
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Failure::Info(e),
            _ => {
                let escaped = usage_error(&e, args);
                Failure::Usage(e, escaped)
            }
        }
    })?;
    run(cli).map_err(Failure::Run)
}

/// The text to show for a usage error when clap's own would not do. clap quotes the offending
/// argument as it was typed, so when any argument holds a control character (or is not UTF-8) the
/// arguments are parsed again in their escaped form ([`wgpu_mlp::escape`]) and that error, which
/// quotes them escaped, is returned. `None`: no argument needed escaping.
fn usage_error(e: &clap::Error, args: &[OsString]) -> Option<String> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| wgpu_mlp::escape(&a.to_string_lossy()).into_owned())
        .collect();
    if shown.iter().zip(args).all(|(s, a)| a == s.as_str()) {
        return None;
    }
    Some(match Cli::try_parse_from(&shown) {
        Err(again) if again.kind() == e.kind() => again.render().to_string(),
        // Not the same failure once escaped: escape the whole message, line breaks included.
        _ => format!("{}\n", wgpu_mlp::escape(e.render().to_string().trim_end())),
    })
}

fn run(cli: Cli) -> Result<()> {
    let command = match cli.command {
        Some(c) => c,
        // No subcommand: the quick benchmark, with `bench`'s defaults.
        None => Cli::try_parse_from(["wgpu-mlp", "bench"])
            .ok()
            .and_then(|c| c.command)
            .ok_or_else(|| Error::InvalidArgument("no subcommand".into()))?,
    };
    match command {
        Command::Summary(args) => commands::summary(args),
        Command::Init(args) => commands::init(args),
        Command::Infer(args) => cli::infer::infer(args),
        Command::Train(args) => cli::train::train(*args),
        Command::Adapters => commands::adapters(),
        Command::Bench(args) => commands::bench(args),
    }
}

/// Mesa's EGL wants `XDG_RUNTIME_DIR` and prints four `error:` lines without it, which read
/// like this tool's own: when it is unset, point it at a private folder (mode 0700) of ours.
fn quiet_mesa() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("wgpu-mlp-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // Use it only if it is ours, a folder, and private (not a planted link or open folder).
        let ok = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0);
        if ok {
            // SAFETY: called first thing in main, before any other thread exists, so nothing
            // reads the environment concurrently.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}
