//! Counting FLOPs and summarising timed runs.

use std::time::Duration;

use crate::model::Mlp;

/// FLOPs of one Linear layer on a batch: `2 · batch · in · out` (bias and activation not counted,
/// as in `workloads.md`), saturating at `u64::MAX`.
pub fn linear_flops(batch: usize, in_features: usize, out_features: usize) -> u64 {
    [batch, in_features, out_features]
        .iter()
        .try_fold(2u64, |acc, &n| acc.checked_mul(n as u64))
        .unwrap_or(u64::MAX)
}

/// FLOPs of a forward pass of `model` on `batch` rows: the sum of [`linear_flops`] over its layers.
pub fn model_flops(model: &Mlp, batch: usize) -> u64 {
    model
        .linears()
        .map(|l| linear_flops(batch, l.in_features(), l.out_features()))
        .fold(0u64, u64::saturating_add)
}

/// Median, min and max of a set of timed runs, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Median (the mean of the two middle runs for an even count).
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Number of timed runs (warm-up excluded).
    pub runs: usize,
}

impl Stats {
    /// Summarises run times in milliseconds; `None` for no runs or a non-finite time.
    pub fn from_ms(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() || samples.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Some(Stats {
            median_ms: median,
            min_ms: s[0],
            max_ms: s[n - 1],
            runs: n,
        })
    }

    /// Summarises run times.
    pub fn from_durations(samples: &[Duration]) -> Option<Stats> {
        let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        Stats::from_ms(&ms)
    }

    /// Throughput in GFLOP/s at the median time.
    pub fn gflops(&self, flops: u64) -> f64 {
        flops as f64 / (self.median_ms * 1e-3) / 1e9
    }

    /// Rows per second at the median time.
    pub fn samples_per_s(&self, batch: usize) -> f64 {
        batch as f64 / (self.median_ms * 1e-3)
    }
}
