//! Command lines for the CLI fuzzers, built from bytes by one grammar: `tests/fuzz_cli.rs` (CI,
//! seeded bytes, through the binary) and `fuzz/fuzz_targets/cli.rs` (cargo-fuzz, libFuzzer's
//! bytes, in-process) both include this file.
//!
//! Every command line is one of the subcommands with its required options drawn mostly from
//! valid values, then up to six more options (or raw tokens) whose values come from pools of
//! boundary values (0, -1, 2⁶⁴, 2e19, NaN, absurd layer widths), special files (a FIFO, a folder,
//! `/dev/zero`, the input as the output, names too long) and text with control characters, or are
//! cut from the fuzz bytes. Files cut from the fuzz bytes are written as `fuzz.csv`, `fuzz.npy`
//! and `fuzz.safetensors` first. The grammar keeps every run short: `bench` always gets
//! `--paths cpu-reference --budget 0.01 --sizes 3 --batch 1` (values given again are added to
//! these lists), and `infer` always `--device cpu`.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::Path;

/// Bytes to draw from; past the end every draw is 0.
pub struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, at: 0 }
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    /// A number below `n` (n ≥ 1).
    fn below(&mut self, n: usize) -> usize {
        let v = usize::from(self.byte()) | usize::from(self.byte()) << 8;
        v % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Up to `max` raw bytes.
    fn chunk(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.byte()).collect()
    }

    /// Text cut from the bytes (lossy UTF-8, NUL removed: an argument cannot hold one).
    fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(&self.chunk(max)).replace('\0', "")
    }
}

/// Text with control characters, a forged line and a bidi override.
pub const EVIL: &str = "e\x1b[2J\x07\r\nerror: forged\u{202e}x";

/// Writes the fixed files of the grammar into `dir` (once per folder): a valid 3 → 3 → 2 model
/// and inputs for it, a header-only CSV, a FIFO, a folder, and a link to `/dev/zero`.
pub fn prepare(dir: &Path) {
    use wgpu_mlp::{Activation, Mlp};
    if dir.join("good.safetensors").exists() {
        return;
    }
    let model = Mlp::builder(3)
        .layer(3, Activation::Sigmoid)
        .layer(2, Activation::Identity)
        .seed(0)
        .build()
        .unwrap();
    wgpu_mlp::io::safetensors::save_model(dir.join("good.safetensors"), &model).unwrap();
    let x = wgpu_mlp::Matrix::new(2, 3, vec![1.0, 2.0, 3.0, -1.0, f32::NAN, 0.5]).unwrap();
    wgpu_mlp::io::write_matrix(dir.join("x.npy"), &x).unwrap();
    wgpu_mlp::io::write_matrix(dir.join("x.csv"), &x).unwrap();
    std::fs::write(dir.join("header.csv"), "a,b,c\n").unwrap();
    // Targets for `train`: values for the 2 outputs, and class indices.
    let t = wgpu_mlp::Matrix::new(2, 2, vec![0.5, -1.0, 2.0, 0.0]).unwrap();
    wgpu_mlp::io::write_matrix(dir.join("t.npy"), &t).unwrap();
    std::fs::write(dir.join("labels.csv"), "0\n1\n").unwrap();
    std::fs::create_dir_all(dir.join("folder")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let fifo = std::ffi::CString::new(dir.join("fifo.npy").as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo on a valid NUL-terminated path.
        unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) };
        let _ = std::os::unix::fs::symlink("/dev/zero", dir.join("zero.npy"));
    }
}

const INPUTS: &[&str] = &[
    "x.npy",
    "x.csv",
    "fuzz.csv",
    "fuzz.npy",
    "header.csv",
    "fifo.npy",
    "zero.npy",
    "folder",
    "missing.npy",
    "",
];
const WEIGHTS: &[&str] = &[
    "good.safetensors",
    "fuzz.safetensors",
    "fifo.npy",
    "zero.npy",
    "folder",
    "x.npy",
    "missing.safetensors",
];
const OUTPUTS: &[&str] = &[
    "y.npy",
    "y.csv",
    "out.json",
    "plot.svg",
    "x.npy",
    "good.safetensors",
    "fifo.npy",
    "folder",
    "folder/",
    "missing/y.npy",
    "..",
    "m.safetensors",
];
/// Layer widths. None is within the per-tensor limit and large: `summary` builds its model
/// without a memory check (the model types are being redesigned), and a machine with the memory
/// would spend minutes on it. `init` also gets [`huge_layers`].
const LAYERS: &[&str] = &[
    "3,2",
    "3,3,2",
    "1,300,1",
    "1,2147483648",
    "4294967296,4294967296",
    "0,1",
    "3",
    "",
    ",",
    "3,,2",
    "-1,2",
];
const ACTS: &[&str] = &[
    "sigmoid,identity",
    "relu,softmax",
    "relu",
    "leaky_relu:0.1,elu",
    "leaky_relu:nan,gelu",
    "elu:1e39,silu",
    "softmax,softmax,softmax",
    "",
    "nope",
];
const INTEGERS: &[&str] = &[
    "0",
    "1",
    "3",
    "-1",
    "-0",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "9223372036854775807",
    "1e3",
    "0x10",
    " 2",
    "",
];
/// `train --target` files (besides the inputs'); t.npy and labels.csv fit the 3 → 3 → 2 model.
const TARGETS: &[&str] = &[
    "t.npy",
    "labels.csv",
    "x.npy",
    "fuzz.npy",
    "fuzz.csv",
    "missing.npy",
];
/// `train --output`: mostly a state_dict file name, the rest as `infer`'s.
const TRAIN_OUTPUTS: &[&str] = &[
    "trained.safetensors",
    "trained.safetensors",
    "good.safetensors",
    "y.npy",
    "folder",
    "missing/t.safetensors",
];
/// `train --layers`: small, since training has no memory check of its own for absurd widths.
const TRAIN_LAYERS: &[&str] = &["3,3,2", "3,2", "2,2", "3", ""];
/// `train --epochs`: small, so a line never trains for long.
const EPOCHS: &[&str] = &["1", "1", "2", "3", "0", "-1", "x"];
const OPTIMS: &[&str] = &["sgd", "adam", "adamw", "sgd", "adam", "nope"];
const LOSSES: &[&str] = &[
    "mse",
    "l1",
    "smooth_l1:0.5",
    "huber:nan",
    "cross_entropy:0.1",
    "nll",
    "bce",
    "bce_with_logits",
    "nope",
];
const FLOATS: &[&str] = &[
    "0.01", "0", "-1", "2e19", "1e300", "nan", "inf", "-inf", "1e-300", "-0", "",
];
const NAMES: &[&str] = &["fc1,fc2", "0,2", "", ",", "a,a", "weight"];
const WORKLOADS: &[&str] = &["seed", "gemm", "mnist", "roundtrip", "seed,gemm", "bogus"];
const PATHS: &[&str] = &["cpu-reference", "cpu-fast", "bogus"];
/// Tokens anywhere; the first four also stand alone (with no subcommand, or only `--`, the
/// binary would run the whole quick benchmark).
const TOKENS: &[&str] = &[
    "--help",
    "--version",
    "-h",
    "--bogus",
    "-",
    "-1",
    "--layers",
    "--output=",
    "--",
];

/// A thousand layers of 2³¹ − 1 weights each, every one within the per-tensor limit: tens of
/// terabytes, which `init`'s memory check refuses on any machine.
fn huge_layers() -> String {
    vec!["2147483647,1"; 1000].join(",")
}

/// A value of the given pool, or (rarely) the evil text or text cut from the bytes.
fn value(b: &mut Bytes<'_>, pool: &[&str]) -> String {
    match b.below(16) {
        0 => EVIL.to_string(),
        1 => b.text(24),
        _ => b.pick(pool).to_string(),
    }
}

/// A command line (the program name first) for a run in `dir`, whose files [`prepare`] wrote.
pub fn command_line(b: &mut Bytes<'_>, dir: &Path) -> Vec<OsString> {
    std::fs::write(dir.join("fuzz.csv"), b.chunk(64)).unwrap();
    std::fs::write(dir.join("fuzz.npy"), b.chunk(160)).unwrap();
    std::fs::write(dir.join("fuzz.safetensors"), b.chunk(200)).unwrap();
    let path = |name: String| -> String {
        if name.is_empty() || name.starts_with('/') {
            name
        } else {
            dir.join(name).to_string_lossy().into_owned()
        }
    };
    let mut args: Vec<String> = Vec::new();
    // (option, pool of values; None for a flag without a value)
    type Opts = &'static [(&'static str, Option<&'static [&'static str]>)];
    let options: Opts = match b.below(6) {
        0 => {
            args.push("summary".into());
            if b.below(2) == 0 {
                args.extend(["--layers".into(), value(b, LAYERS)]);
            } else {
                args.extend(["--weights".into(), path(value(b, WEIGHTS))]);
            }
            &[
                ("--act", Some(ACTS)),
                ("--batch", Some(INTEGERS)),
                ("--names", Some(NAMES)),
                ("--layers", Some(LAYERS)),
            ]
        }
        1 => {
            args.push("init".into());
            let layers = if b.below(8) == 0 {
                huge_layers()
            } else {
                value(b, LAYERS)
            };
            args.extend(["--layers".into(), layers]);
            args.extend(["--output".into(), path(value(b, OUTPUTS))]);
            &[
                ("--act", Some(ACTS)),
                ("--seed", Some(INTEGERS)),
                ("-o", Some(OUTPUTS)),
            ]
        }
        2 => {
            args.push("infer".into());
            args.extend(["--weights".into(), path(value(b, WEIGHTS))]);
            args.extend(["--input".into(), path(value(b, INPUTS))]);
            args.extend(["--output".into(), path(value(b, OUTPUTS))]);
            args.extend(["--device".into(), "cpu".into()]);
            if b.below(2) == 0 {
                args.extend(["--act".into(), "sigmoid,identity".into()]);
            }
            &[
                ("--act", Some(ACTS)),
                ("--names", Some(NAMES)),
                ("-i", Some(INPUTS)),
                ("-o", Some(OUTPUTS)),
                // Standard input (empty in the fuzzers) and output.
                ("-i", Some(&["-"])),
                ("-o", Some(&["-"])),
                ("--argmax", None),
                ("--top-k", Some(INTEGERS)),
                ("--batch-size", Some(INTEGERS)),
                ("--threads", Some(INTEGERS)),
                ("--adapter", Some(&["nvidia", ""])),
                ("--weight-format", Some(&["f32", "f16", "f64"])),
                ("--kernel", Some(&["auto", "tiled64", "nope"])),
            ]
        }
        5 => {
            args.push("train".into());
            if b.below(2) == 0 {
                let weights = match b.below(2) {
                    0 => "good.safetensors".to_string(),
                    _ => value(b, WEIGHTS),
                };
                args.extend(["--weights".into(), path(weights)]);
            } else {
                args.extend(["--layers".into(), value(b, TRAIN_LAYERS)]);
            }
            args.extend(["--input".into(), path(value(b, INPUTS))]);
            args.extend(["--target".into(), path(value(b, TARGETS))]);
            args.extend(["--loss".into(), b.pick(LOSSES).to_string()]);
            args.extend(["--output".into(), path(value(b, TRAIN_OUTPUTS))]);
            args.extend(["--epochs".into(), b.pick(EPOCHS).to_string()]);
            args.extend(["--optim".into(), b.pick(OPTIMS).to_string()]);
            args.extend([
                "--batch-size".into(),
                b.pick(&["1", "2", "3", "0"]).to_string(),
            ]);
            args.extend(["--device".into(), "cpu".into()]);
            &[
                ("--act", Some(ACTS)),
                (
                    "--arch",
                    Some(&["linear,relu,linear", "linear,batchnorm1d,linear", "nope"]),
                ),
                ("--names", Some(NAMES)),
                ("--seed", Some(INTEGERS)),
                ("--reduction", Some(&["mean", "sum", "nope"])),
                ("--lr", Some(FLOATS)),
                ("--momentum", Some(FLOATS)),
                ("--dampening", Some(FLOATS)),
                ("--nesterov", None),
                ("--weight-decay", Some(FLOATS)),
                ("--betas", Some(&["0.9,0.999", "1,1", "nan,0", "0.9", ""])),
                ("--eps", Some(FLOATS)),
                ("--amsgrad", None),
                ("--shuffle-seed", Some(INTEGERS)),
                ("--drop-last", None),
                ("--log", Some(OUTPUTS)),
            ]
        }
        3 => {
            args.push("bench".into());
            for fixed in [
                "--paths",
                "cpu-reference",
                "--budget",
                "0.01",
                "--sizes",
                "3",
                "--batch",
                "1",
            ] {
                args.push(fixed.into());
            }
            &[
                ("--workload", Some(WORKLOADS)),
                ("--paths", Some(PATHS)),
                ("--runs", Some(INTEGERS)),
                ("--warmup", Some(INTEGERS)),
                ("--batch", Some(INTEGERS)),
                ("--sizes", Some(INTEGERS)),
                ("--json", Some(OUTPUTS)),
                ("--plot", Some(OUTPUTS)),
                ("--weight-format", Some(&["f32", "f16", "f64"])),
                ("--kernel", Some(&["auto", "windowed", "nope"])),
                ("--full", None),
                ("--quick", None),
                ("--no-subgroups", None),
            ]
        }
        _ => {
            // No subcommand would run the whole quick benchmark: always give a token that is
            // one, or fails, or prints help.
            args.push(match b.below(8) {
                0 => EVIL.to_string(),
                _ => b.pick(&TOKENS[..4]).to_string(),
            });
            &[]
        }
    };
    for _ in 0..b.below(7) {
        if options.is_empty() || b.below(8) == 0 {
            args.push(value(b, TOKENS));
            continue;
        }
        let (flag, pool) = b.pick(options);
        args.push(flag.into());
        if let Some(pool) = pool {
            let v = value(b, pool);
            let is_file = std::ptr::eq(pool, OUTPUTS)
                || std::ptr::eq(pool, INPUTS)
                || std::ptr::eq(pool, WEIGHTS)
                || std::ptr::eq(pool, TARGETS)
                || std::ptr::eq(pool, TRAIN_OUTPUTS);
            args.push(if is_file { path(v) } else { v });
        }
    }
    std::iter::once("wgpu-mlp".to_string())
        .chain(args)
        .map(OsString::from)
        .collect()
}

/// The atomic writer's temporary files (`.NAME.tmp-PID-N`) left in `dir`.
pub fn temp_files_left(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains(".tmp-"))
        .collect()
}

/// The first raw control character (line ends aside) or bidirectional override in `text`.
pub fn raw_control(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}
