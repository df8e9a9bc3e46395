//! Memory estimates, checked before anything large is allocated.
//!
//! A few bytes of arguments or files can ask for terabytes (`init --layers 2147483647,1` is 8 GiB of
//! weights, held three times while it is saved; a 12 MB weights file with a million-wide hidden
//! layer times a million input rows is 8 TB of activations). Each command estimates what it will
//! hold at its peak from the sizes it knows before allocating and refuses, naming both figures,
//! when that exceeds the memory the process can still have ([`available`]: the free memory, the
//! control group's limit and `ulimit -v`, on Linux; elsewhere there is no check). The estimates count every copy the code makes (see
//! [`forward_bytes`]); they are upper bounds within a small factor, measured against peak RSS.

use crate::error::{Error, Result};

/// The memory available to new allocations, in bytes: the tightest of what the system has free
/// (`MemAvailable` in `/proc/meminfo`), what this process's control group still allows
/// (`memory.max` − `memory.current`, or cgroup v1's `memory.limit_in_bytes` − usage) and what
/// its address-space limit leaves (`ulimit -v`: `RLIMIT_AS` − `VmSize`). Linux only; `None`
/// where nothing says.
pub fn available() -> Option<u64> {
    limit().map(|(bytes, _)| bytes)
}

/// [`available`] and where the figure comes from, for messages.
fn limit() -> Option<(u64, &'static str)> {
    #[cfg(target_os = "linux")]
    {
        [
            (linux::mem_available(), "MemAvailable in /proc/meminfo"),
            (linux::cgroup_room(), "the control group's memory limit"),
            (
                linux::address_space_room(),
                "the address-space limit (ulimit -v)",
            ),
        ]
        .into_iter()
        .filter_map(|(b, why)| b.map(|b| (b, why)))
        .min_by_key(|(b, _)| *b)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(target_os = "linux")]
mod linux {
    /// A `Key:  123 kB` line of a `/proc` file, in bytes.
    fn proc_kib(file: &str, key: &str) -> Option<u64> {
        let info = std::fs::read_to_string(file).ok()?;
        let line = info.lines().find(|l| l.starts_with(key))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    }

    pub(super) fn mem_available() -> Option<u64> {
        proc_kib("/proc/meminfo", "MemAvailable:")
    }

    /// A number in a cgroup file (`max` and absurd values, cgroup v1's "no limit", are `None`).
    fn cgroup_number(path: &str) -> Option<u64> {
        let text = std::fs::read_to_string(path).ok()?;
        text.trim().parse::<u64>().ok().filter(|&n| n < 1 << 62)
    }

    /// The limit less the usage of this process's memory control group (v2, else v1; a group
    /// whose folder is not visible from here falls back to the mount's root).
    pub(super) fn cgroup_room() -> Option<u64> {
        let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        for line in groups.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let (root, max, used) = match controllers {
                "" => ("/sys/fs/cgroup", "memory.max", "memory.current"),
                c if c.split(',').any(|c| c == "memory") => (
                    "/sys/fs/cgroup/memory",
                    "memory.limit_in_bytes",
                    "memory.usage_in_bytes",
                ),
                _ => continue,
            };
            for dir in [format!("{root}{path}"), root.to_string()] {
                if let Some(limit) = cgroup_number(&format!("{dir}/{max}")) {
                    let used = cgroup_number(&format!("{dir}/{used}")).unwrap_or(0);
                    return Some(limit.saturating_sub(used));
                }
            }
        }
        None
    }

    /// `RLIMIT_AS` less the address space this process already maps.
    pub(super) fn address_space_room() -> Option<u64> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit(2) fills the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0
            || lim.rlim_cur == libc::RLIM_INFINITY
        {
            return None;
        }
        let mapped = proc_kib("/proc/self/status", "VmSize:").unwrap_or(0);
        // rlim_t is u64 on 64-bit Linux, u32 on some 32-bit targets.
        #[allow(clippy::useless_conversion)]
        Some(u64::from(lim.rlim_cur).saturating_sub(mapped))
    }
}

/// `Ok` when `need` bytes fit in the [`available`] memory (or the system does not say); else an
/// [`Error::InvalidArgument`] saying that `what` needs about `need` bytes, how much the process
/// may still use and by which limit, and `advice`.
pub fn check(need: u128, what: &str, advice: &str) -> Result<()> {
    match limit() {
        Some((avail, why)) if need > u128::from(avail) => Err(Error::invalid(format!(
            "{what} needs about {} of memory, but this process can have {} more ({why}); \
             {advice}",
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
