//! `wgpu-mlp train`'s epoch loop: progress, per-epoch loss and accuracy on the training and
//! validation data, gradient health, checkpoints every N epochs and `--resume` (the model, the
//! optimizer, the Dropout generator, the step count and the data order, so that the run goes on
//! exactly as an uninterrupted one would), and the files at the end (nothing written unless the
//! run finishes or a checkpoint completes; every write atomic).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wgpu_mlp::data::EpochOrder;
use wgpu_mlp::io;
use wgpu_mlp::train::{
    Backend, EpochReport, Evaluation, Loss, Monitor, Reduction, Target, Trainer, evaluate,
    state_dict_bytes,
};
use wgpu_mlp::{Error, Matrix, Result, escape};

use crate::cli::args::TrainArgs;
use crate::cli::train_report::{self, EpochRecord, Progress};

/// The data a run trains and validates on.
pub(crate) struct Data {
    pub(crate) x: Matrix,
    pub(crate) y: Target,
    pub(crate) val: Option<(Matrix, Target)>,
}

/// `--val-split F`: the last `round(F·n)` rows held out (stated on stderr).
pub(crate) fn split(x: Matrix, y: Target, f: f64) -> Result<Data> {
    if !(f > 0.0 && f < 1.0) {
        return Err(Error::InvalidArgument(format!(
            "--val-split {f}: give a fraction between 0 and 1 (e.g. 0.1)"
        )));
    }
    let n = x.rows();
    let held = (f * n as f64).round() as usize;
    if held == 0 || held >= n {
        return Err(Error::InvalidArgument(format!(
            "--val-split {f} of {n} rows leaves {} for validation and {} for training: both \
             need at least one",
            held,
            n - held.min(n)
        )));
    }
    let keep = n - held;
    note!("validation: the last {held} of {n} rows (--val-split {f}); training on rows 0..{keep}");
    let rows = |r: std::ops::Range<usize>| r.collect::<Vec<usize>>();
    let pick = |m: &Matrix, r: Vec<usize>| -> Result<Matrix> {
        let mut data = Vec::with_capacity(r.len() * m.cols());
        for i in &r {
            data.extend_from_slice(m.row(*i));
        }
        Matrix::new(r.len(), m.cols(), data)
    };
    Ok(Data {
        x: pick(&x, rows(0..keep))?,
        val: Some((pick(&x, rows(keep..n))?, y.select(&rows(keep..n))?)),
        y: y.select(&rows(0..keep))?,
    })
}

/// The default checkpoint path: the output's, `.checkpoint.safetensors`.
pub(crate) fn checkpoint_path(args: &TrainArgs) -> Option<PathBuf> {
    args.tool.checkpoint_every?;
    Some(args.tool.checkpoint.clone().unwrap_or_else(|| {
        let stem = args
            .output
            .file_stem()
            .map_or("trained".into(), |s| s.to_string_lossy().into_owned());
        args.output
            .with_file_name(format!("{stem}.checkpoint.safetensors"))
    }))
}

/// The run settings a checkpoint records and a resume must match.
fn run_settings(args: &TrainArgs, data: &Data) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("run.rows".into(), data.x.rows().to_string());
    m.insert(
        "run.val_rows".into(),
        data.val.as_ref().map_or(0, |v| v.0.rows()).to_string(),
    );
    m.insert("run.batch_size".into(), args.batch_size.to_string());
    m.insert(
        "run.shuffle_seed".into(),
        args.shuffle_seed.map_or("none".into(), |s| s.to_string()),
    );
    m.insert("run.drop_last".into(), args.drop_last.to_string());
    m
}

/// The epoch loop; writes the output, the log and the plot when every epoch succeeded.
pub(crate) fn run(
    args: &TrainArgs,
    mut trainer: Trainer,
    data: &Data,
    mut order: EpochOrder,
    names: &[String],
    loss: Loss,
) -> Result<()> {
    let on_gpu = trainer.backend() == Backend::Gpu;
    if on_gpu && (args.tool.checkpoint_every.is_some() || args.tool.resume.is_some()) {
        return Err(Error::InvalidArgument(
            "--checkpoint-every and --resume work on the CPU paths only (the GPU's optimizer \
             state is not read back yet): use --device cpu or cpu-reference"
                .into(),
        ));
    }
    let settings = run_settings(args, data);
    let mut history: Vec<EpochRecord> = Vec::new();
    let mut first = 1;
    if let Some(path) = &args.tool.resume {
        let shown = escape(&path.display().to_string()).into_owned();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let meta = trainer.resume(&bytes, &shown, Some(names))?;
        for (k, v) in &settings {
            let had = meta.get(k).map_or("?", String::as_str);
            if had != v {
                return Err(Error::InvalidArgument(format!(
                    "{shown}: the checkpoint's {} is {had}, this run's {v}: resume with the same \
                     data, --batch-size, --shuffle-seed, --drop-last and validation",
                    k.trim_start_matches("run.")
                )));
            }
        }
        let done: usize = meta
            .get("run.epoch")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| {
                Error::InvalidArgument(format!("{shown}: no epoch in the checkpoint"))
            })?;
        if done >= args.epochs {
            return Err(Error::InvalidArgument(format!(
                "{shown} has already trained {done} epochs: --epochs is the total, give more \
                 than {done}"
            )));
        }
        history = meta
            .get("run.history")
            .and_then(|h| serde_json::from_str::<Vec<serde_json::Value>>(h).ok())
            .map(|v| v.iter().filter_map(EpochRecord::from_json).collect())
            .unwrap_or_default();
        // The data order: the same generator, replayed through the epochs done.
        for _ in 0..done {
            order.next_epoch();
        }
        first = done + 1;
        note!(
            "resuming from {shown}: {done} epochs, {} steps done",
            trainer.steps()
        );
    }
    let ckpt = checkpoint_path(args);
    let mut monitor = Monitor::new(trainer.model(), loss);
    // The GPU's steps do not wait and read nothing back but their losses, once an epoch; with
    // --health each step waits, its parameters are read back and the monitor recomputes it on
    // the reference (docs/TRAINING.md, "Gradient health").
    let monitored = !on_gpu || args.tool.health;
    let mut log = String::new();
    let mut last: Option<EpochReport> = None;
    let mut warned: Vec<String> = Vec::new();
    let mut progress = Progress::new();
    let rows = data.x.rows();
    let batch = args.batch_size;
    for epoch in first..=args.epochs {
        progress.start();
        let steps_before = trainer.steps() as usize;
        let losses = if monitored {
            trainer.epoch_monitored(&data.x, &data.y, &mut order, &mut monitor, |done, of, l| {
                progress.step(epoch, args.epochs, done, of, (done * batch).min(rows), l)
            })
        } else {
            trainer.epoch(&data.x, &data.y, &mut order)
        };
        let losses = match losses {
            Ok(l) => l,
            Err(e) => {
                progress.clear();
                if let Some(p) = &ckpt
                    && p.exists()
                {
                    note!(
                        "the last checkpoint is kept: {}",
                        escape(&p.display().to_string())
                    );
                }
                return Err(e);
            }
        };
        let seconds = progress.seconds();
        for (b, l) in losses.iter().enumerate() {
            log.push_str(&format!(
                "{{\"step\":{},\"epoch\":{epoch},\"batch\":{},\"loss\":{}}}\n",
                steps_before + b + 1,
                b + 1,
                json_f32(*l)
            ));
        }
        let report = if monitored {
            monitor.finish_epoch(trainer.model())
        } else {
            gpu_report(&losses, batch, args.reduction.parse()?, rows)
        };
        let val = match &data.val {
            Some((vx, vy)) => Some(evaluate(
                trainer.model(),
                loss,
                args.reduction.parse()?,
                vx,
                vy,
                batch,
            )?),
            None => None,
        };
        let record = EpochRecord::new(epoch, &report.train, val.as_ref());
        progress.clear();
        let seen = losses.len().saturating_mul(batch).min(rows);
        note!(
            "{}",
            record.line(args.epochs, seen as f64 / seconds.max(1e-9))
        );
        for w in &report.warnings {
            if !warned.contains(w) {
                note!("warning: epoch {epoch}: {w}");
                warned.push(w.clone());
            }
        }
        log.push_str(&train_report::summary_json(&record, &report));
        log.push('\n');
        history.push(record);
        if let (Some(every), Some(path)) = (args.tool.checkpoint_every, &ckpt)
            && epoch % every == 0
        {
            let mut extra = settings.clone();
            extra.insert("run.epoch".into(), epoch.to_string());
            let h: Vec<serde_json::Value> = history.iter().map(EpochRecord::to_json).collect();
            extra.insert(
                "run.history".into(),
                serde_json::Value::Array(h).to_string(),
            );
            let bytes = trainer.checkpoint(Some(names), &extra)?;
            io::write_atomic(path, &bytes)?;
        }
        last = Some(report);
    }
    let bytes = state_dict_bytes(trainer.model(), Some(names))?;
    let svg = args
        .tool
        .plot
        .as_ref()
        .map(|_| train_report::curves(&history));
    let mut files: Vec<(&Path, &[u8])> = vec![(args.output.as_path(), bytes.as_slice())];
    if let Some(p) = &args.log {
        files.push((p.as_path(), log.as_bytes()));
    }
    if let (Some(p), Some(s)) = (&args.tool.plot, &svg) {
        files.push((p.as_path(), s.as_bytes()));
    }
    io::write_atomic_all(&files)?;
    if !monitored {
        note!(
            "gradient health: not measured on the GPU unless asked (--health: each step is then \
             read back and recomputed on the CPU reference, which is slower)"
        );
    } else if let Some(r) = &last {
        note!("{}", train_report::health_table(args.epochs, r).trim_end());
    }
    Ok(())
}

/// An epoch on the GPU without --health as the report shows it: the mean loss per row from the
/// step losses (batches of `batch` rows, the last one what is left of `rows`), no accuracy and
/// no layer health (neither is read back from the device).
fn gpu_report(losses: &[f32], batch: usize, reduction: Reduction, rows: usize) -> EpochReport {
    let (mut total, mut seen) = (0f64, 0usize);
    for l in losses {
        let n = batch.min(rows - seen.min(rows));
        total += match reduction {
            Reduction::Mean => f64::from(*l) * n as f64,
            Reduction::Sum => f64::from(*l),
        };
        seen += n;
    }
    EpochReport {
        train: Evaluation {
            loss: total / seen.max(1) as f64,
            accuracy: None,
            rows: seen,
        },
        layers: Vec::new(),
        warnings: Vec::new(),
    }
}

/// An f32 as JSON (the shortest decimal that reads back to it; NaN cannot occur here).
fn json_f32(v: f32) -> String {
    format!("{v:?}")
}
