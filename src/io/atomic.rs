//! Every file the crate writes goes through here: [`check_output`] before any work, then
//! [`write_atomic`] / [`write_atomic_with`].
//!
//! A write goes to a new temporary file in the target's folder, named
//! `.<name>.tmp-<pid>-<n>` (`<name>` cut short when the whole would pass the folder's file-name
//! limit), created with `create_new` (it never opens, truncates or follows an existing file or
//! link: a symlink planted at that name makes the create fail, and the next name is tried). The
//! data is written, the file is flushed to disk (`fsync`), renamed over the target, and the folder
//! is flushed too. On any failure the temporary file is removed; while it exists it is listed in a
//! registry that [`remove_temp_files_on_signals`](super::remove_temp_files_on_signals) empties when
//! a signal such as SIGINT or SIGTERM stops the process.
//!
//! What is replaced: the target name. An existing regular file keeps its permission bits (and, where
//! the process may set it, its owner); a symbolic link at the target is replaced by the new file and
//! the file it pointed to is left as it was. A write-protected file, a folder, a device, a FIFO or a
//! socket at the target is refused.

use std::ffi::OsString;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Distinguishes temporary files made by one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary files that exist right now (absolute paths). Creating a temporary file and
/// entering it here happen under this lock, so a signal handler that takes the lock sees every
/// temporary file there is.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The registry of live temporary files, even if a thread panicked while holding it.
pub(crate) fn live_temps() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`live_temps`], or `None` if the lock is not free within `wait` (a signal's clean-up must not
/// hang on a lock held by the code it interrupted).
#[cfg(unix)]
pub(crate) fn live_temps_within(
    wait: std::time::Duration,
) -> Option<MutexGuard<'static, Vec<PathBuf>>> {
    let until = std::time::Instant::now() + wait;
    loop {
        match LIVE.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}

/// File-name length limit when the folder does not say (Linux, macOS and Windows all use 255).
const DEFAULT_NAME_MAX: usize = 255;

/// Checks that `path` can be written, before any work is done, so a long run never ends in a
/// failure to save its result. `inputs` are the other files the command reads or writes, each with
/// a description for the message (`("the input", x)`, `("--json", j)`).
///
/// Refused, each with a message naming the path, the problem and what to do:
/// - a path with no file name (`dir/`, `..`), or a name longer than the folder allows;
/// - a folder that does not exist or is not a folder;
/// - an existing folder, device, FIFO or socket at the path, or a write-protected file (its
///   permissions let nobody write it, or deny this user: it is not replaced, see the module docs);
/// - the same file as any of `inputs` (same device and inode, which catches `../` spellings,
///   symbolic and hard links; or, for files that do not exist yet, the same folder and name);
/// - a folder where the temporary file cannot be created (read-only, no permission, no space
///   for a name): this is tried by creating and removing the temporary file itself.
pub fn check_output(path: &Path, inputs: &[(&str, &Path)]) -> Result<()> {
    let target = Target::check(path)?;
    for (what, input) in inputs {
        if same_file(path, input) {
            return Err(Error::io(
                path,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "this is the same file as {what} {}; writing it would destroy that file \
                         (choose another output name)",
                        input.display()
                    ),
                ),
            ));
        }
    }
    // Probe: create and remove the very temporary file the write will use.
    let temp = target.create_temp()?;
    drop(temp);
    Ok(())
}

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes to `path` atomically; `fill` writes the content into a buffered writer.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    Prepared::write(path, fill)?.commit()
}

/// Writes several files so that all of them are replaced or none is: each is written in full to
/// its temporary file first, and only then are they renamed over their targets, in order (a
/// failure while writing, such as a full disk for the second, leaves every earlier output as it
/// was). Only a failed rename, after all the writing, can leave the earlier ones replaced.
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> Result<()> {
    let prepared = files
        .iter()
        .map(|(path, bytes)| Prepared::write(path, |w| w.write_all(bytes)))
        .collect::<Result<Vec<_>>>()?;
    prepared.into_iter().try_for_each(Prepared::commit)
}

/// A temporary file written in full and flushed to disk, waiting to be renamed over its target
/// (removed if dropped instead).
struct Prepared {
    target: Target,
    temp: Temp,
}

impl Prepared {
    fn write(path: &Path, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<Self> {
        let target = Target::check(path)?;
        let mut temp = target.create_temp()?;
        let file = temp.file.take().ok_or_else(|| {
            Error::io(
                path,
                io::Error::other("the temporary file is already closed"),
            )
        })?;
        if let Some(existing) = &target.existing {
            keep_owner_and_mode(&file, existing).map_err(|e| Error::io(&temp.path, e))?;
        }

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
        Ok(Prepared { target, temp })
    }

    fn commit(mut self) -> Result<()> {
        let path = &self.target.path;
        std::fs::rename(&self.temp.path, path).map_err(|e| Error::io(path, e))?;
        self.temp.renamed();
        sync_dir(&self.target.dir).map_err(|e| Error::io(&self.target.dir, e))
    }
}

/// Whether `a` and `b` name the same file: the same device and inode when both exist (symbolic
/// links followed), else the same canonical folder and file name.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(ma), Ok(mb)) => same_inode(&ma, &mb, a, b),
        _ => match (canonical_name(a), canonical_name(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

#[cfg(unix)]
fn same_inode(a: &Metadata, b: &Metadata, _: &Path, _: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_: &Metadata, _: &Metadata, a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// The canonical folder joined with the file name (the file itself need not exist).
fn canonical_name(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let name = p.file_name()?;
    let dir = folder_of(p).canonicalize().ok()?;
    Some(dir.join(name))
}

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An output path that passed the checks that need no writing.
struct Target {
    path: PathBuf,
    dir: PathBuf,
    name: OsString,
    name_max: usize,
    /// The regular file being replaced, if there is one.
    existing: Option<Metadata>,
}

impl Target {
    fn check(path: &Path) -> Result<Target> {
        let fail = |kind: io::ErrorKind, msg: String| Error::io(path, io::Error::new(kind, msg));
        let name = match path.file_name() {
            Some(n) if !path.as_os_str().to_string_lossy().ends_with('/') => n.to_os_string(),
            _ => {
                return Err(fail(
                    io::ErrorKind::InvalidInput,
                    "not a file name (the path ends in a folder); give the output file's name"
                        .into(),
                ));
            }
        };
        let dir = folder_of(path);
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(fail(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a folder", dir.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(fail(
                    io::ErrorKind::NotFound,
                    format!(
                        "the output folder {} does not exist; create it first",
                        dir.display()
                    ),
                ));
            }
            Err(e) => {
                return Err(fail(
                    e.kind(),
                    format!("cannot use the output folder {}: {e}", dir.display()),
                ));
            }
        }
        let name_max = name_max(&dir);
        let len = name_len(&name);
        if len > name_max {
            return Err(fail(
                io::ErrorKind::InvalidInput,
                format!(
                    "the file name is {len} bytes long; the folder allows at most {name_max}: \
                     choose a shorter name"
                ),
            ));
        }
        let existing = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Target {
                    path: path.to_path_buf(),
                    dir,
                    name,
                    name_max,
                    existing: None,
                });
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let ft = existing.file_type();
        let existing = if ft.is_symlink() {
            // The link itself is replaced; what it points to is not written.
            None
        } else if ft.is_dir() {
            return Err(fail(
                io::ErrorKind::IsADirectory,
                "is a folder; give the output file's name inside it".into(),
            ));
        } else if !ft.is_file() {
            return Err(fail(
                io::ErrorKind::InvalidInput,
                format!(
                    "is {}, not a regular file; outputs are written by replacing the file, so \
                     give a regular file's name",
                    kind_of(&existing)
                ),
            ));
        } else if let Some(attr) = unreplaceable_attribute(path) {
            return Err(fail(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the existing file is {attr}; it cannot be replaced, even by root. Clear \
                     the attribute (chattr -a -i, as root) or choose another output name"
                ),
            ));
        } else if let Some(mode) = write_protected(path, &existing) {
            return Err(fail(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the existing file is write-protected ({mode}); it is not replaced. Make it \
                     writable (chmod u+w), remove it, or choose another output name"
                ),
            ));
        } else {
            Some(existing)
        };
        Ok(Target {
            path: path.to_path_buf(),
            dir,
            name,
            name_max,
            existing,
        })
    }

    /// Creates a fresh temporary file `.NAME.tmp-PID-N` in the target's folder and enters it in the
    /// registry of live temporary files.
    fn create_temp(&self) -> Result<Temp> {
        let pid = std::process::id();
        let mut last_err = None;
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let candidate = self.dir.join(temp_name(&self.name, pid, n, self.name_max));
            let abs = std::path::absolute(&candidate).unwrap_or_else(|_| candidate.clone());
            let mut live = live_temps();
            match open_new(&candidate) {
                Ok(f) => {
                    live.push(abs.clone());
                    return Ok(Temp {
                        path: candidate,
                        abs,
                        file: Some(f),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(self.temp_error(e)),
            }
        }
        Err(Error::io(
            &self.path,
            last_err.unwrap_or_else(|| io::Error::other("could not create a temporary file")),
        ))
    }

    /// Says why the temporary file could not be made, in terms of the output.
    fn temp_error(&self, e: io::Error) -> Error {
        let dir = self.dir.display();
        let why = match e.kind() {
            io::ErrorKind::PermissionDenied => {
                format!("cannot write into the folder {dir}: permission denied")
            }
            io::ErrorKind::ReadOnlyFilesystem => {
                format!("cannot write into the folder {dir}: the file system is read-only")
            }
            io::ErrorKind::StorageFull => format!("no space left in the folder {dir}"),
            _ => format!("cannot create a file in the folder {dir}: {e}"),
        };
        Error::io(&self.path, io::Error::new(e.kind(), why))
    }
}

/// A live temporary file: removed (and taken out of the registry) when dropped, unless renamed.
struct Temp {
    path: PathBuf,
    abs: PathBuf,
    file: Option<File>,
}

impl Temp {
    /// The file now lives under the target's name: nothing to remove.
    fn renamed(&mut self) {
        forget(&self.abs);
        self.abs = PathBuf::new();
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        // Closed before the removal (on wasm32 `File` is a stub with nothing to close).
        #[cfg_attr(target_arch = "wasm32", allow(clippy::drop_non_drop))]
        drop(self.file.take());
        if !self.abs.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
            forget(&self.abs);
        }
    }
}

/// Takes `abs` out of the registry.
fn forget(abs: &Path) {
    let mut live = live_temps();
    if let Some(i) = live.iter().position(|p| p == abs) {
        live.swap_remove(i);
    }
}

/// `.NAME.tmp-PID-N`, with NAME cut short (at a character boundary) so the whole fits `name_max`.
fn temp_name(name: &std::ffi::OsStr, pid: u32, n: u64, name_max: usize) -> OsString {
    let suffix = format!(".tmp-{pid}-{n}");
    let room = name_max.saturating_sub(1 + suffix.len());
    let name = name.to_string_lossy();
    let mut cut = name.len().min(room);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    OsString::from(format!(".{}{suffix}", &name[..cut]))
}

/// Length of a file name in bytes as the file system sees it.
fn name_len(name: &std::ffi::OsStr) -> usize {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        name.as_bytes().len()
    }
    #[cfg(not(unix))]
    {
        name.to_string_lossy().len()
    }
}

/// The folder's limit on the length of a file name in bytes (`NAME_MAX`).
fn name_max(dir: &Path) -> usize {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) {
            // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
            let n = unsafe { libc::pathconf(c.as_ptr(), libc::_PC_NAME_MAX) };
            if n > 0 {
                return usize::try_from(n).unwrap_or(DEFAULT_NAME_MAX);
            }
        }
        DEFAULT_NAME_MAX
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        DEFAULT_NAME_MAX
    }
}

/// Creates `path`, failing if anything (a file, a link, dangling or not) is there.
fn open_new(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // create_new (O_CREAT | O_EXCL) already refuses links; O_NOFOLLOW says so twice.
        o.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    o.open(path)
}

/// Gives the new file the permission bits (and, where allowed, the owner) of the file it replaces.
fn keep_owner_and_mode(file: &File, existing: &Metadata) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // Only root may give a file away; for anyone else the owner is already theirs.
        let _ = std::os::unix::fs::fchown(file, Some(existing.uid()), Some(existing.gid()));
        file.set_permissions(std::fs::Permissions::from_mode(existing.mode() & 0o777))
    }
    #[cfg(not(unix))]
    {
        file.set_permissions(existing.permissions())
    }
}

/// `Some("append-only (chattr +a)")` or `Some("immutable (chattr +i)")` when the file carries an
/// attribute that makes the final rename over it fail after all the work (Linux; else `None`).
fn unreplaceable_attribute(path: &Path) -> Option<&'static str> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        // linux/fs.h
        const FS_IMMUTABLE_FL: libc::c_long = 0x10;
        const FS_APPEND_FL: libc::c_long = 0x20;
        let file = File::open(path).ok()?;
        // The kernel writes an int; a long leaves room either way.
        let mut flags: libc::c_long = 0;
        // SAFETY: FS_IOC_GETFLAGS on an open regular file writes into `flags`, which outlives
        // the call.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &raw mut flags) };
        if r != 0 {
            return None;
        }
        if flags & FS_IMMUTABLE_FL != 0 {
            Some("immutable (chattr +i)")
        } else if flags & FS_APPEND_FL != 0 {
            Some("append-only (chattr +a)")
        } else {
            None
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = path;
        None
    }
}

/// `Some("mode 0444")` when the existing file is write-protected: no write permission bit at all,
/// or (for users other than root) no write access for this user.
fn write_protected(path: &Path, meta: &Metadata) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o7777;
        if mode & 0o222 == 0 {
            return Some(format!("mode {mode:04o}"));
        }
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
        let r = unsafe { libc::access(c.as_ptr(), libc::W_OK) };
        (r != 0 && io::Error::last_os_error().kind() == io::ErrorKind::PermissionDenied)
            .then(|| format!("mode {mode:04o}, and this user may not write it"))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        meta.permissions()
            .readonly()
            .then(|| "read-only".to_string())
    }
}

/// `a FIFO`, `a character device`, … for messages.
pub(crate) fn kind_of(meta: &Metadata) -> &'static str {
    let ft = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        "a folder"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Flushes a folder's entries to disk, so a rename survives a power loss.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        match File::open(dir).and_then(|d| d.sync_all()) {
            // Some file systems cannot sync a folder; the rename itself has happened.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
                ) =>
            {
                Ok(())
            }
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
