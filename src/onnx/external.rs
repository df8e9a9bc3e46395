//! Weights stored outside the `.onnx` file (`external_data`), as `torch.onnx.export(...,
//! dynamo=True)` writes them by default (`model.onnx` + `model.onnx.data`).
//!
//! Each external initializer names a `location` (a file), an `offset` and a `length`. Before the
//! graph is read, every such initializer gets its bytes from a [`Source`] and becomes an ordinary
//! `raw_data` tensor, so the rest of the importer never sees the difference. Locations are
//! untrusted: only a relative path of plain components is accepted (no root, no `..`), a file
//! on disk must resolve (symbolic links followed) inside the `.onnx` file's folder, and every
//! range must lie inside its file; each error names the initializer. The bytes read are at most
//! the data files' total size, however many initializers point into them.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use super::proto::{StringStringEntryProto, TensorProto};
use super::tensor::{element_count, element_size};
use crate::error::escape;

/// Where external data comes from: files in a folder, or files already in memory.
pub(crate) enum Source<'a> {
    /// None available (`from_bytes`): external data is an error saying how to load it.
    None,
    /// Files inside this folder (the `.onnx` file's own).
    Folder(PathBuf),
    /// Files in memory, by location name.
    Memory(&'a [(&'a str, &'a [u8])]),
}

/// Where one initializer's data lies.
struct Location<'t> {
    file: &'t str,
    offset: u64,
    length: Option<u64>,
}

/// Replaces every external initializer's data by the bytes it points to.
/// Returns the number of bytes read; errors name the initializer.
pub(crate) fn resolve(
    initializers: &mut [TensorProto],
    source: &Source<'_>,
) -> Result<u64, String> {
    let mut files = Files::new(source);
    let mut total = 0u64;
    for t in initializers.iter_mut() {
        if t.data_location != 1 && t.external_data.is_empty() {
            continue;
        }
        let name = format!("initializer '{}'", escape(&t.name));
        let bytes = read_one(t, &mut files).map_err(|e| format!("{name} {e}"))?;
        total += bytes.len() as u64;
        // Aliased ranges could otherwise multiply a small data file many times in memory.
        if total > files.total_size {
            return Err(format!(
                "{name}: the external tensors read so far take {total} bytes, more than their \
                 data files hold ({} bytes): ranges overlap (a damaged or crafted file?)",
                files.total_size
            ));
        }
        t.raw_data = bytes;
        t.data_location = 0;
        t.external_data.clear();
    }
    Ok(total)
}

fn read_one(t: &TensorProto, files: &mut Files<'_>) -> Result<Bytes, String> {
    let loc = location(&t.external_data)?;
    if matches!(files.source, Source::None) {
        return Err(format!(
            "stores its data in '{}' beside the .onnx file; load the model by its path \
             (wgpu_mlp::onnx::load) so the data file can be found, or pass the data file's bytes \
             with wgpu_mlp::onnx::from_bytes_with_data",
            escape(loc.file)
        ));
    }
    check_relative(loc.file)?;
    let size = element_size(t.data_type).ok_or_else(|| {
        format!(
            "has data type {}, which the importer does not read",
            super::proto::dtype::name(t.data_type)
        )
    })?;
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("has a negative dimension {d}")))
        .collect::<Result<Vec<usize>, String>>()?;
    let want = element_count(&dims)? as u64 * size as u64;
    let file_len = files.len(loc.file)?;
    let length = loc
        .length
        .unwrap_or_else(|| file_len.saturating_sub(loc.offset));
    if length != want {
        return Err(format!(
            "has shape {dims:?} ({want} bytes) but its external data in '{}' is {length} bytes",
            escape(loc.file)
        ));
    }
    match loc.offset.checked_add(length) {
        Some(end) if end <= file_len => {}
        _ => {
            return Err(format!(
                "points past the end of '{}': bytes {} to {} of a {file_len}-byte file",
                escape(loc.file),
                loc.offset,
                loc.offset as u128 + length as u128
            ));
        }
    }
    files.read(loc.file, loc.offset, length)
}

/// The `location`, `offset` and `length` entries.
fn location(entries: &[StringStringEntryProto]) -> Result<Location<'_>, String> {
    let get = |k: &str| {
        entries
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.as_str())
    };
    let number = |k: &str| -> Result<Option<u64>, String> {
        get(k)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("has external data {k} '{}', not a byte count", escape(v)))
            })
            .transpose()
    };
    let file = get("location").ok_or("is marked as external data but names no location")?;
    Ok(Location {
        file,
        offset: number("offset")?.unwrap_or(0),
        length: number("length")?,
    })
}

/// A location must be a relative path of plain components: the data lives beside the model.
fn check_relative(file: &str) -> Result<(), String> {
    let refuse = |why: &str| {
        Err(format!(
            "has its external data at '{}', {why}; data files must lie in the .onnx file's folder",
            escape(file)
        ))
    };
    if file.is_empty() {
        return refuse("an empty path");
    }
    if file.contains('\0') {
        return refuse("a path with a NUL byte");
    }
    // A Windows-style separator or drive would mean something else elsewhere: refuse both.
    if file.contains('\\') || file.contains(':') {
        return refuse("a path with '\\' or ':'");
    }
    for c in Path::new(file).components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return refuse("a path with '..'"),
            Component::RootDir | Component::Prefix(_) => return refuse("an absolute path"),
        }
    }
    Ok(())
}

/// The data files opened so far.
struct Files<'a> {
    source: &'a Source<'a>,
    open: HashMap<String, Opened<'a>>,
    /// The sizes of every file opened, added up.
    total_size: u64,
}

enum Opened<'a> {
    Disk(File, u64),
    Memory(&'a [u8]),
}

impl<'a> Files<'a> {
    fn new(source: &'a Source<'a>) -> Self {
        Files {
            source,
            open: HashMap::new(),
            total_size: 0,
        }
    }

    /// Opens `file` once; its length.
    fn len(&mut self, file: &str) -> Result<u64, String> {
        if let Some(o) = self.open.get(file) {
            return Ok(match o {
                Opened::Disk(_, n) => *n,
                Opened::Memory(b) => b.len() as u64,
            });
        }
        let opened = match self.source {
            Source::None => unreachable!("checked by the caller"),
            Source::Folder(dir) => open_inside(dir, file)?,
            Source::Memory(files) => {
                let (_, b) = files.iter().find(|(n, _)| *n == file).ok_or_else(|| {
                    format!(
                        "stores its data in '{}', which is not among the data files given ({})",
                        escape(file),
                        files
                            .iter()
                            .map(|(n, _)| format!("'{}'", escape(n)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                Opened::Memory(b)
            }
        };
        let n = match &opened {
            Opened::Disk(_, n) => *n,
            Opened::Memory(b) => b.len() as u64,
        };
        self.total_size = self.total_size.saturating_add(n);
        self.open.insert(file.to_string(), opened);
        Ok(n)
    }

    /// `length` bytes of `file` from `offset` (checked against its length by the caller).
    fn read(&mut self, file: &str, offset: u64, length: u64) -> Result<Bytes, String> {
        let what =
            |e: std::io::Error| format!("cannot read its external data in '{}': {e}", escape(file));
        match self.open.get_mut(file).expect("opened by len") {
            Opened::Memory(b) => Ok(Bytes::copy_from_slice(
                &b[offset as usize..(offset + length) as usize],
            )),
            Opened::Disk(f, _) => {
                use std::io::{Read, Seek, SeekFrom};
                f.seek(SeekFrom::Start(offset)).map_err(what)?;
                let n =
                    usize::try_from(length).map_err(|_| "is too large for memory".to_string())?;
                let mut buf = Vec::new();
                buf.try_reserve_exact(n)
                    .map_err(|_| format!("needs {n} bytes, more than this process can hold"))?;
                f.take(length).read_to_end(&mut buf).map_err(what)?;
                if buf.len() != n {
                    return Err(format!(
                        "cannot read its external data in '{}': the file shrank while it was read",
                        escape(file)
                    ));
                }
                Ok(Bytes::from(buf))
            }
        }
    }
}

/// Opens `file` inside `dir`: it must resolve (links followed) to a regular file in `dir` or
/// below.
fn open_inside(dir: &Path, file: &str) -> Result<Opened<'static>, String> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let cannot = |e: std::io::Error| {
        format!(
            "cannot open its external data '{}' in {}: {e}",
            escape(file),
            escape(&dir.display().to_string())
        )
    };
    let root = dir.canonicalize().map_err(cannot)?;
    let real = dir.join(file).canonicalize().map_err(cannot)?;
    if !real.starts_with(&root) {
        return Err(format!(
            "has its external data at '{}', which resolves to {} outside the .onnx file's folder \
             (a symbolic link?); data files must lie in that folder",
            escape(file),
            escape(&real.display().to_string())
        ));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The resolved path has no links left: one swapped in now is not followed, and a FIFO
        // does not block the open.
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let f = options.open(&real).map_err(cannot)?;
    let meta = f.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!(
            "has its external data in '{}', which is not a regular file",
            escape(file)
        ));
    }
    Ok(Opened::Disk(f, meta.len()))
}
