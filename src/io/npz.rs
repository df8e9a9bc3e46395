//! NumPy `.npz` files (`np.savez`, `np.savez_compressed`): a zip archive of `.npy` arrays, read
//! with the `zip` crate (stored or deflated members only). The archive's one array is read, or
//! the one named as `file.npz:name`.
//!
//! Bounded: at most [`MAX_MEMBERS`] members, and a member is read no further than its declared
//! size, which must fit in the memory this process can have, so a zip bomb is refused before it
//! is inflated.

use std::io::{Cursor, Read};
use std::path::Path;

use crate::error::{Error, Result};

use super::npy::{self, Array};

/// The most members an archive may list.
pub const MAX_MEMBERS: usize = 4096;

/// Reads the array `name` (with or without `.npy`) of the `.npz` file at `path`, or its only
/// array when `name` is `None`.
pub fn read_array(path: impl AsRef<Path>, name: Option<&str>) -> Result<Array> {
    let path = path.as_ref();
    array_from_bytes(&super::read_file(path)?, name, &path.display().to_string())
}

/// [`read_array`] on the bytes of a `.npz` file; `source` names it in errors.
pub fn array_from_bytes(bytes: &[u8], name: Option<&str>, source: &str) -> Result<Array> {
    let err = |msg: String| Error::format(source, msg);
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| err(format!("not a readable .npz (zip) archive: {e}")))?;
    if zip.len() > MAX_MEMBERS {
        return Err(err(format!(
            "the archive lists {} members, more than {MAX_MEMBERS}",
            zip.len()
        )));
    }
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| err(format!("cannot read the archive's names: {e}")))?;
    let shown = |names: &[String]| {
        let mut v: Vec<&str> = names
            .iter()
            .take(10)
            .map(|n| n.strip_suffix(".npy").unwrap_or(n))
            .collect();
        if names.len() > 10 {
            v.push("…");
        }
        v.join(", ")
    };
    let member = match name {
        Some(want) => {
            let file = format!("{want}.npy");
            names
                .iter()
                .find(|n| **n == file || *n == want)
                .cloned()
                .ok_or_else(|| {
                    err(format!(
                        "no array '{}' in the archive (it holds: {})",
                        crate::escape(want),
                        crate::escape(&shown(&names))
                    ))
                })?
        }
        None => match &names[..] {
            [one] => one.clone(),
            [] => return Err(err("the archive holds no array".into())),
            _ => {
                return Err(err(format!(
                    "the archive holds {} arrays ({}); name one as FILE.npz:NAME",
                    names.len(),
                    crate::escape(&shown(&names))
                )));
            }
        },
    };
    let inner = format!(
        "{source}:{}",
        member.strip_suffix(".npy").unwrap_or(&member)
    );
    let mut file = zip
        .by_name(&member)
        .map_err(|e| Error::format(&inner, format!("cannot read the member: {e}")))?;
    let size = file.size();
    // Reserving is not holding (memory is overcommitted): a declared size past what this process
    // can have would only fail later, while inflating.
    if let Some(room) = crate::memory::available()
        && size > room / 2
    {
        return Err(Error::format(
            &inner,
            format!(
                "the member is {size} bytes, more than memory allows ({} available)",
                crate::memory::bytes(u128::from(room))
            ),
        ));
    }
    let mut data = Vec::new();
    usize::try_from(size)
        .ok()
        .and_then(|n| data.try_reserve_exact(n).ok())
        .ok_or_else(|| {
            Error::format(
                &inner,
                format!("the member's {size} bytes do not fit in memory"),
            )
        })?;
    // One byte past the declared size shows a member that inflates to more than it says.
    (&mut file)
        .take(size.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| Error::format(&inner, format!("cannot read the member: {e}")))?;
    if data.len() as u64 != size {
        return Err(Error::format(
            &inner,
            format!(
                "the member holds {} bytes where the archive says {size}",
                data.len()
            ),
        ));
    }
    npy::array_from_bytes(&data, &inner)
}
