//! `--arch` / `--act` given for a file that describes its own architecture: the given one is
//! used, and a note says what it replaced, so the file's own is never dropped silently.

use std::io::Read;
use std::path::Path;

use wgpu_mlp::{Arch, escape};

/// The most header bytes read to find the file's own architecture (safetensors' own cap).
const MAX_HEADER: u64 = 100 << 20;

/// Prints a note when `path` (a safetensors file) carries a `wgpu_mlp.arch` that differs from
/// `given` (named by `option`). Only the header is read; a file whose header cannot be read
/// gets no note here (loading it reports what is wrong).
pub(crate) fn note_replaced(path: &Path, given: &Arch, option: &str) {
    let Some(own) = own_arch(path) else { return };
    let same = own.parse::<Arch>().is_ok_and(|a| a == *given);
    if !same {
        note!(
            "note: {option} replaces the architecture {} describes ({}) with {}",
            escape(&path.display().to_string()),
            escape(&cut(&own)),
            escape(&cut(&given.to_string()))
        );
    }
}

/// Long texts cut for a message.
fn cut(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}… ({} bytes more)", &s[..i], s.len() - i),
        None => s.to_string(),
    }
}

/// The `wgpu_mlp.arch` metadata of a safetensors file, if it has one.
fn own_arch(path: &Path) -> Option<String> {
    wgpu_mlp::io::check_input(path).ok()?;
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return None;
    }
    let mut header = Vec::new();
    file.take(len).read_to_end(&mut header).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&header).ok()?;
    json.get("__metadata__")?
        .get("wgpu_mlp.arch")?
        .as_str()
        .map(str::to_string)
}
