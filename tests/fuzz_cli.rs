//! Property test of the command line, run in CI: seeded random command lines
//! ([`common::cli_args`]: every subcommand, boundary numbers, special files, control characters,
//! bytes cut into files) through the real binary, in a scratch folder. Every run must:
//!
//! - end with status 0 or 1 (never a panic, which the binary reports as an internal error, never
//!   a signal);
//! - on failure, print a line starting with `error: `;
//! - print no raw control character or bidirectional override (on stdout or stderr);
//! - leave no temporary file in the folder.
//!
//! `FUZZ_CLI_RUNS` sets the number of command lines (default 300, a few seconds), `FUZZ_CLI_SEED`
//! the seed. A failure prints the command line; `fuzz/fuzz_targets/cli.rs` runs the same grammar
//! in-process under cargo-fuzz for longer runs.

mod common;

use std::process::Command;
use std::time::Instant;

use common::cli_args::{Bytes, command_line, prepare, raw_control, temp_files_left};

const DEFAULT_RUNS: usize = 300;

/// SplitMix64: the bytes each command line is built from.
fn bytes_for(seed: u64, run: usize) -> Vec<u8> {
    let mut s = seed ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..512)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_command_lines_fail_cleanly_or_succeed() {
    let runs = env_or("FUZZ_CLI_RUNS", DEFAULT_RUNS);
    let seed = env_or("FUZZ_CLI_SEED", 0x5eed_0c11_u64);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    prepare(d);
    let start = Instant::now();
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut problems = Vec::new();
    for run in 0..runs {
        let data = bytes_for(seed, run);
        let args = command_line(&mut Bytes::new(&data), d);
        let child = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"))
            .args(&args[1..])
            .current_dir(d)
            // `-i -` reads standard input: an empty one, never the test runner's terminal.
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A watchdog against a hang (a FIFO opened for reading would wait forever).
        let (o, killed) = common::wait_or_kill(child, 120);
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let mut why = Vec::new();
        if killed {
            why.push("hung (killed after 120 s)".to_string());
        }
        match o.status.code() {
            Some(0) => ok += 1,
            Some(1) => {
                failed += 1;
                if !stderr.lines().any(|l| l.starts_with("error: ")) {
                    why.push("exit 1 without an `error: ` line".into());
                }
            }
            _ => why.push(format!("status {:?}", o.status)),
        }
        if stderr.contains("internal error") || stderr.contains("panicked") {
            why.push("a panic".into());
        }
        for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            if let Some(c) = raw_control(text) {
                why.push(format!("raw {c:?} on {name}"));
            }
        }
        let left = temp_files_left(d);
        if !left.is_empty() {
            why.push(format!("temporary files left: {left:?}"));
            for f in left {
                let _ = std::fs::remove_file(d.join(f));
            }
        }
        if !why.is_empty() && problems.len() < 10 {
            problems.push(format!("run {run}: {args:?}: {}\n{stderr}", why.join("; ")));
        }
    }
    println!(
        "fuzz cli: {runs} command lines (seed {seed:#x}) in {:.2?}: {ok} succeeded, {failed} \
         failed cleanly, {} problems",
        start.elapsed(),
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        ok > 0 && failed > 0,
        "the grammar must reach both outcomes ({ok} ok, {failed} failed)"
    );
}
