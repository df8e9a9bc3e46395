//! Atomic file writes: a temporary file in the target's directory, renamed over the target once
//! complete. On any failure the temporary file is removed, so no partial output is ever left.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes temporary files made by one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Removes the temporary file unless disarmed (also on panic).
struct TempGuard {
    path: Option<PathBuf>,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes to `path` atomically; `fill` writes the content into a buffered writer.
pub(crate) fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        Error::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.is_dir() {
        return Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::IsADirectory, "is a directory"),
        ));
    }

    let (tmp_path, file) = create_temp(&dir, &file_name.to_string_lossy())?;
    let mut guard = TempGuard {
        path: Some(tmp_path.clone()),
    };

    let mut writer = io::BufWriter::new(file);
    fill(&mut writer)
        .and_then(|()| writer.flush())
        .map_err(|e| Error::io(path, e))?;
    let file = writer
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    // Closed before the rename (on wasm32 `File` is a stub with nothing to close).
    #[cfg_attr(target_arch = "wasm32", allow(clippy::drop_non_drop))]
    drop(file);

    std::fs::rename(&tmp_path, path).map_err(|e| Error::io(path, e))?;
    guard.path = None;
    Ok(())
}

/// Creates a fresh temporary file `.NAME.tmp-PID-N` in `dir`.
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last_err = None;
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let candidate = dir.join(format!(".{name}.tmp-{pid}-{n}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(f) => return Ok((candidate, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(Error::io(dir.join(name), e)),
        }
    }
    Err(Error::io(
        dir.join(name),
        last_err.unwrap_or_else(|| io::Error::other("could not create a temporary file")),
    ))
}
