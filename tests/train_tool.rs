//! `wgpu-mlp train` as a tool: the epoch lines, validation, the --log epoch summaries (no
//! "step" key), --plot, checkpoints and --resume continuing bit for bit (on both CPU paths),
//! and the errors that leave nothing written.

mod common;

use std::path::{Path, PathBuf};

use common::train::int_npy;
use common::{assert_fails, assert_ok, files_in, path_str, run_cli, stderr};

/// x.npy (50 × 5), y.npy (50 class indices of 3), vx.npy / vy.npy (9 rows) in a fresh folder.
fn files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, rows, seed) in [("x", 50, 1), ("vx", 9, 2)] {
        let x = common::input(rows, 5, seed, 1.0);
        wgpu_mlp::io::npy::write(d.join(format!("{name}.npy")), &x).unwrap();
    }
    let y: Vec<i64> = (0..50).map(|i| (i * 5 % 3) as i64).collect();
    std::fs::write(d.join("y.npy"), int_npy(&y)).unwrap();
    std::fs::write(d.join("vy.npy"), int_npy(&y[..9])).unwrap();
    dir
}

fn p(d: &Path, f: &str) -> PathBuf {
    d.join(f)
}

/// The training command on `d`'s files, with `more` flags.
fn train(d: &Path, more: &[&str]) -> std::process::Output {
    let (x, y) = (p(d, "x.npy"), p(d, "y.npy"));
    let mut args = vec![
        "train",
        "--layers",
        "5,8,3",
        "--arch",
        "linear,batchnorm1d,relu,dropout:0.2,linear",
        "--seed",
        "4",
        "--input",
        path_str(&x),
        "--target",
        path_str(&y),
        "--loss",
        "cross_entropy",
        "--batch-size",
        "8",
        "--shuffle-seed",
        "11",
    ];
    args.extend_from_slice(more);
    run_cli(&args)
}

#[test]
fn epochs_show_loss_accuracy_validation_and_health() {
    let dir = files();
    let d = dir.path();
    let (vx, vy, log, svg, out) = (
        p(d, "vx.npy"),
        p(d, "vy.npy"),
        p(d, "s.jsonl"),
        p(d, "c.svg"),
        p(d, "o.safetensors"),
    );
    let o = train(
        d,
        &[
            "--optim",
            "adam",
            "--lr",
            "0.01",
            "--epochs",
            "3",
            "--val-input",
            path_str(&vx),
            "--val-target",
            path_str(&vy),
            "--log",
            path_str(&log),
            "--plot",
            path_str(&svg),
            "-o",
            path_str(&out),
        ],
    );
    assert_ok(&o);
    let err = stderr(&o);
    let epochs: Vec<&str> = err.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 3, "{err}");
    for (i, l) in epochs.iter().enumerate() {
        assert!(l.starts_with(&format!("epoch {}/3  loss ", i + 1)), "{l}");
        for k in ["  acc ", "  val_loss ", "  val_acc ", " samples/s"] {
            assert!(l.contains(k), "{l}");
        }
    }
    assert!(err.contains("gradient health, epoch 3"), "{err}");
    assert!(err.contains("mean|grad|"), "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 50 rows in batches of 8: 7 steps per epoch, then the epoch's summary.
    assert_eq!(lines.len(), 3 * 8);
    for (i, v) in lines.iter().enumerate() {
        if i % 8 == 7 {
            assert!(v.get("step").is_none(), "{v}");
            assert_eq!(v["epoch"], i / 8 + 1);
            let acc = v["val_accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&acc));
            assert!(v["loss"].as_f64().unwrap() > 0.0);
            let h = v["health"].as_array().unwrap();
            assert_eq!(h.len(), 2);
            assert!(h[0]["dead"].is_number() && h[1]["dead"].is_null(), "{v}");
            assert!(h[0]["grad"].as_f64().unwrap() > 0.0);
        } else {
            assert_eq!(v["step"], (i / 8) * 7 + i % 8 + 1, "{v}");
        }
    }
    // The epoch's loss is the mean of its steps' losses weighted by their rows.
    let w: f64 = lines[..7]
        .iter()
        .enumerate()
        .map(|(b, v)| v["loss"].as_f64().unwrap() * if b < 6 { 8.0 } else { 2.0 })
        .sum();
    assert!((lines[7]["loss"].as_f64().unwrap() - w / 50.0).abs() < 1e-6);
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("validation") && svg.contains("accuracy"));
}

#[test]
fn val_split_holds_out_the_last_rows_and_says_so() {
    let dir = files();
    let d = dir.path();
    let out = p(d, "o.safetensors");
    let o = train(
        d,
        &[
            "--optim",
            "sgd",
            "--epochs",
            "1",
            "--val-split",
            "0.2",
            "-o",
            path_str(&out),
        ],
    );
    assert_ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains("validation: the last 10 of 50 rows (--val-split 0.2)"),
        "{err}"
    );
    for bad in ["0", "1", "-0.5", "0.001"] {
        let o = train(
            d,
            &[
                "--optim",
                "sgd",
                "--epochs",
                "1",
                "--val-split",
                bad,
                "-o",
                path_str(&p(d, "n.st")),
            ],
        );
        let e = assert_fails(&o);
        assert!(e.contains("--val-split"), "{e}");
    }
    assert!(!p(d, "n.st").exists());
}

/// 4 epochs, and 2 + resume 2, on both CPU paths and two optimizers: the same bytes out (the
/// model, the log's epoch summaries and the plot).
#[test]
fn resume_continues_bit_for_bit() {
    let dir = files();
    let d = dir.path();
    let s = |f: &str| path_str(&p(d, f)).to_string();
    for device in ["cpu-reference", "cpu"] {
        for optim in [
            &["--optim", "adamw", "--lr", "0.02", "--amsgrad"][..],
            &[
                "--optim",
                "sgd",
                "--lr",
                "0.1",
                "--momentum",
                "0.9",
                "--nesterov",
            ][..],
        ] {
            let mut common_flags = vec!["--device", device, "--val-split", "0.1"];
            common_flags.extend_from_slice(optim);
            let run = |more: &[&str]| {
                let mut a = common_flags.clone();
                a.extend_from_slice(more);
                let o = train(d, &a);
                assert_ok(&o);
                stderr(&o)
            };
            let (a, al, ap) = (s("a.safetensors"), s("a.jsonl"), s("a.svg"));
            run(&["--epochs", "4", "-o", &a, "--log", &al, "--plot", &ap]);
            let (b, ck) = (s("b.safetensors"), s("ck.safetensors"));
            run(&[
                "--epochs",
                "2",
                "-o",
                &b,
                "--checkpoint-every",
                "2",
                "--checkpoint",
                &ck,
            ]);
            let (bl, bp) = (s("b.jsonl"), s("b.svg"));
            let err = run(&[
                "--epochs", "4", "-o", &b, "--resume", &ck, "--log", &bl, "--plot", &bp,
            ]);
            assert!(
                err.contains("resuming from") && err.contains("2 epochs"),
                "{err}"
            );
            let read = |f: &str| std::fs::read(p(d, f)).unwrap();
            assert!(
                read("a.safetensors") == read("b.safetensors"),
                "{device} {optim:?}"
            );
            assert!(read("a.svg") == read("b.svg"), "{device} {optim:?}");
            // The resumed log holds epochs 3 and 4, numbered on: the uninterrupted log's tail.
            let (la, lb) = (
                String::from_utf8(read("a.jsonl")).unwrap(),
                String::from_utf8(read("b.jsonl")).unwrap(),
            );
            assert!(
                la.ends_with(&lb) && lb.starts_with("{\"step\":13,\"epoch\":3,"),
                "{lb}"
            );
        }
    }
}

#[test]
fn resume_refuses_other_settings_and_writes_nothing() {
    let dir = files();
    let d = dir.path();
    let ck = p(d, "ck.safetensors");
    let out = p(d, "o.safetensors");
    let o = train(
        d,
        &[
            "--optim",
            "sgd",
            "--epochs",
            "2",
            "--checkpoint-every",
            "1",
            "--checkpoint",
            path_str(&ck),
            "-o",
            path_str(&out),
        ],
    );
    assert_ok(&o);
    std::fs::remove_file(&out).unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--optim", "sgd", "--lr", "0.5", "--epochs", "4"],
            "optimizer",
        ),
        (
            &["--optim", "sgd", "--epochs", "4", "--drop-last"],
            "drop_last",
        ),
        (
            &["--optim", "sgd", "--epochs", "2"],
            "already trained 2 epochs",
        ),
        (
            &["--optim", "sgd", "--epochs", "3", "--val-split", "0.5"],
            "rows",
        ),
    ];
    for (flags, says) in cases {
        let mut a = flags.to_vec();
        a.extend_from_slice(&["--resume", path_str(&ck), "-o", path_str(&out)]);
        let e = assert_fails(&train(d, &a));
        assert!(e.contains(says), "{flags:?}: {e}");
        assert!(!out.exists());
    }
    // Not a checkpoint: a trained state_dict.
    let model = p(d, "m.safetensors");
    assert_ok(&train(
        d,
        &["--optim", "sgd", "--epochs", "1", "-o", path_str(&model)],
    ));
    let e = assert_fails(&train(
        d,
        &[
            "--optim",
            "sgd",
            "--epochs",
            "3",
            "--resume",
            path_str(&model),
            "-o",
            path_str(&out),
        ],
    ));
    assert!(e.contains("not a training checkpoint"), "{e}");
    assert!(!out.exists());
}

/// A loss that becomes NaN stops the run; the last completed checkpoint stays, the output is
/// not written, and no temporary file is left. (The learning rates are tried in turn until one
/// diverges after the first epoch, 7 steps.)
#[test]
fn a_diverging_run_keeps_its_last_checkpoint() {
    let dir = files();
    let d = dir.path();
    let ck = p(d, "ck.safetensors");
    let out = p(d, "o.safetensors");
    let mut seen = Vec::new();
    for lr in ["1e3", "1e4", "1e5", "1e6", "1e8"] {
        let _ = std::fs::remove_file(&ck);
        let o = train(
            d,
            &[
                "--optim",
                "sgd",
                "--lr",
                lr,
                "--epochs",
                "8",
                "--checkpoint-every",
                "1",
                "--checkpoint",
                path_str(&ck),
                "-o",
                path_str(&out),
            ],
        );
        if o.status.success() {
            continue;
        }
        let e = assert_fails(&o);
        let step: usize = e
            .split("at step ")
            .nth(1)
            .and_then(|t| t.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{e}"));
        seen.push(step);
        assert!(!out.exists());
        let left = files_in(d);
        assert!(left.iter().all(|f| !f.contains(".tmp")), "{left:?}");
        if step > 7 {
            assert!(
                ck.exists() && e.contains("the last checkpoint is kept"),
                "{e}"
            );
            return;
        }
    }
    panic!("no learning rate diverged after the first epoch: stopped at steps {seen:?}");
}

#[test]
fn outputs_must_differ() {
    let dir = files();
    let d = dir.path();
    let out = p(d, "o.safetensors");
    let e = assert_fails(&train(
        d,
        &[
            "--optim",
            "sgd",
            "--epochs",
            "1",
            "--plot",
            path_str(&out),
            "-o",
            path_str(&out),
        ],
    ));
    assert!(e.contains("--plot and --output name the same file"), "{e}");
    let e = assert_fails(&train(
        d,
        &[
            "--optim",
            "sgd",
            "--epochs",
            "1",
            "--checkpoint",
            "x",
            "-o",
            path_str(&out),
        ],
    ));
    assert!(e.contains("checkpoint-every"), "{e}");
}
