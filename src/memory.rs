//! Memory estimates, checked before anything large is allocated.
//!
//! A few bytes of arguments or files can ask for terabytes (`init --layers 2147483647,1` is 8 GiB of
//! weights, held three times while it is saved; a 12 MB weights file with a million-wide hidden
//! layer times a million input rows is 8 TB of activations). Each command estimates what it will
//! hold at its peak from the sizes it knows before allocating and refuses, naming both figures,
//! when that exceeds the memory the system says is available (`MemAvailable` in `/proc/meminfo` on
//! Linux; elsewhere there is no check). The estimates count every copy the code makes (see
//! [`forward_bytes`]); they are upper bounds within a small factor, measured against peak RSS.

use crate::error::{Error, Result};

/// The memory available to new allocations without swapping, in bytes: `MemAvailable` from
/// `/proc/meminfo` (Linux); `None` where the system does not say.
pub fn available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `Ok` when `need` bytes fit in the [`available`] memory (or the system does not say); else an
/// [`Error::InvalidArgument`] saying that `what` needs about `need` bytes, how much the machine has,
/// and `advice`.
pub fn check(need: u128, what: &str, advice: &str) -> Result<()> {
    match available() {
        Some(avail) if need > u128::from(avail) => Err(Error::invalid(format!(
            "{what} needs about {} of memory, but this machine has {} available (MemAvailable \
             in /proc/meminfo); {advice}",
            bytes(need),
            bytes(u128::from(avail))
        ))),
        _ => Ok(()),
    }
}

/// Bytes held at the peak of a forward pass of `rows` rows through layers of the given `widths`
/// (input first) with `params` parameters, on the CPU reference, or with `gpu` on the CPU or the
/// GPU (whose memory is host memory on software adapters), whichever is larger; the output matrix
/// and its serialised bytes included. The model itself and the input are not counted.
///
/// - CPU reference: the activations in f64, the layer's input and output alive together, then the
///   f32 output: `8·rows·max(wᵢ + wᵢ₊₁) + 4·rows·w_out`.
/// - GPU: the weights on the device and a packed host copy (`8·params`), the input upload, two
///   activation buffers, the readback buffer and the output: `rows·(4·w₀ + 8·max w + 8·w_out)`.
/// - Writing the output: `4·rows·w_out` more (the `.npy` bytes).
pub fn forward_bytes(widths: &[usize], params: u128, rows: usize, gpu: bool) -> u128 {
    let rows = rows as u128;
    let w = |i: usize| widths.get(i).copied().unwrap_or(0) as u128;
    let last = w(widths.len().saturating_sub(1));
    let max_pair = widths
        .windows(2)
        .map(|p| p[0] as u128 + p[1] as u128)
        .max()
        .unwrap_or(0);
    let max_w = widths.iter().copied().max().unwrap_or(0) as u128;
    let cpu = 8 * rows * max_pair + 4 * rows * last;
    let gpu = if gpu {
        8 * params + rows * (4 * w(0) + 8 * max_w + 8 * last)
    } else {
        0
    };
    cpu.max(gpu) + 4 * rows * last
}

/// Parameters of layers of the given widths (input first), with a bias in every layer.
pub fn params(widths: &[usize]) -> u128 {
    widths
        .windows(2)
        .map(|p| (p[0] as u128 + 1) * p[1] as u128)
        .sum()
}

/// `1.5 GiB`, `320 MiB`, `12 KiB`, `100 bytes`.
pub fn bytes(n: u128) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}
