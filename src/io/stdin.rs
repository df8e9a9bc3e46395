//! Standard input as a matrix source (`-i -`): read whole within a limit, its format told by
//! its first bytes.

use std::io::Read;

use crate::error::{Error, Result};

use super::MatrixFormat;

/// The format of a stream from its first bytes: `.npy` by its magic, `.npz` by a zip's local
/// header, CSV otherwise.
pub fn sniff(first: &[u8]) -> MatrixFormat {
    if first.starts_with(b"\x93NUMPY") {
        MatrixFormat::Npy
    } else if first.starts_with(b"PK\x03\x04") || first.starts_with(b"PK\x05\x06") {
        MatrixFormat::Npz
    } else {
        MatrixFormat::Csv
    }
}

/// Reads all of standard input, refusing more than `limit` bytes (the memory a caller can
/// spare) with a message instead of running out of memory.
pub fn read_all(limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("<stdin>", e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::invalid(format!(
            "standard input holds more than {limit} bytes, more than memory allows; \
             give --batch-size to read it a batch at a time"
        )));
    }
    Ok(bytes)
}
