//! The clock: warm-up, timed runs within a budget, and the correctness gate before them.

use std::time::{Duration, Instant};

use crate::bench::check::Reference;
use crate::bench::options::BenchOptions;
use crate::bench::report::Record;
use crate::bench::stats::Stats;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::rng::Generator;

/// Seed of every benchmark input (uniform in [-1, 1), never all zeros).
pub const INPUT_SEED: u64 = 1;

/// A random input `[batch, cols]`, uniform in [-1, 1), from [`INPUT_SEED`].
pub fn random_input(batch: usize, cols: usize) -> Result<Matrix> {
    let n = batch
        .checked_mul(cols)
        .ok_or_else(|| Error::invalid(format!("a [{batch}, {cols}] input overflows usize")))?;
    let mut rng = Generator::new(INPUT_SEED);
    let data = rng.rand(n).into_iter().map(|v| 2.0 * v - 1.0).collect();
    Matrix::new(batch, cols, data)
}

/// Runs `f` `warmup` times untimed (and on until `warmup_time` has passed), then times it up to `runs` times (see [`BenchOptions`] for
/// the budget). The first error ends it.
pub fn time_runs(opts: &BenchOptions, mut f: impl FnMut() -> Result<()>) -> Result<Vec<Duration>> {
    let start = Instant::now();
    let mut done = 0;
    while done < opts.warmup || (opts.warmup > 0 && start.elapsed() < opts.warmup_time) {
        f()?;
        done += 1;
        if opts.budget.is_some_and(|b| start.elapsed() >= b / 2) {
            break;
        }
    }
    let start = Instant::now();
    let min_runs = opts.min_runs.clamp(1, opts.runs);
    // `runs` may be huge (the budget ends the loop): reserve for a realistic count only.
    let mut samples = Vec::with_capacity(opts.runs.min(1024));
    while samples.len() < opts.runs {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
        if samples.len() >= min_runs && opts.budget.is_some_and(|b| start.elapsed() >= b) {
            break;
        }
    }
    Ok(samples)
}

/// The gate and the clock for one path: `check` produces an output that must match `reference`
/// (skipped when `None`: the reference path itself); only then is `timed` run and timed. A
/// mismatch or an error becomes the record's `error`, and no figure is reported.
pub fn measure(
    opts: &BenchOptions,
    template: &Record,
    reference: Option<(&Reference, &mut dyn FnMut() -> Result<Matrix>)>,
    timed: &mut dyn FnMut() -> Result<()>,
) -> Record {
    let mut rec = template.clone();
    rec.runs_requested = opts.runs;
    if let Some((reference, check)) = reference {
        let checked = check()
            .map_err(|e| e.to_string())
            .and_then(|out| reference.check(&out, opts.tolerance));
        match checked {
            Ok(info) => {
                rec.checked_rows = Some(info.rows);
                rec.max_abs_err = Some(info.max_abs_err);
            }
            Err(e) => {
                rec.error = Some(e);
                return rec;
            }
        }
    }
    match time_runs(opts, timed) {
        Ok(samples) => rec.stats = Stats::from_durations(&samples),
        Err(e) => rec.error = Some(e.to_string()),
    }
    rec
}
