//! The command line in-process: `run_args` (src/main.rs, included here as a module: the binary is
//! that function plus printing) on command lines built from the fuzz input by the grammar of
//! `tests/common/cli_args.rs`, which the CI property test `tests/fuzz_cli.rs` runs through the
//! binary. Each run happens in a scratch folder holding the grammar's files. Asserted: no panic,
//! a usage error that starts with `error: `, no raw control character in any error message, and
//! no temporary file left in the folder. `infer` runs on the CPU only (no GPU under libFuzzer).
#![no_main]

#[allow(dead_code)]
#[path = "../../src/main.rs"]
mod cli;

#[allow(dead_code)]
#[path = "../../tests/common/cli_args.rs"]
mod cli_args;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// The scratch folder of this process, with the grammar's fixed files.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("wgpu-mlp-fuzz-cli-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        cli_args::prepare(&d);
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let args = cli_args::command_line(&mut cli_args::Bytes::new(data), dir);
    match cli::run_args(&args) {
        Ok(()) | Err(cli::Failure::Info(_)) => {}
        Err(cli::Failure::Usage(e, escaped)) => {
            let text = escaped.unwrap_or_else(|| e.render().to_string());
            assert!(text.starts_with("error: "), "{args:?}: {text:?}");
            assert_eq!(cli_args::raw_control(&text), None, "{args:?}: {text:?}");
        }
        Err(cli::Failure::Run(e)) => {
            let msg = e.to_string();
            assert_eq!(cli_args::raw_control(&msg), None, "{args:?}: {msg:?}");
        }
    }
    let left = cli_args::temp_files_left(dir);
    assert!(left.is_empty(), "{args:?}: temporary files left: {left:?}");
});
