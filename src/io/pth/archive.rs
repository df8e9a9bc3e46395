//! The zip archive of a `torch.save` file: one top folder (`<name>/`) holding `data.pkl`,
//! `byteorder` and the storages under `data/<key>`, each entry stored uncompressed.

use std::io::{Cursor, Read};

use zip::{CompressionMethod, ZipArchive};

use crate::error::escape;

/// An opened archive and the folder its entries live in.
pub(super) struct Archive<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    /// `<name>/`, the folder that holds `data.pkl`.
    pub prefix: String,
}

impl<'a> Archive<'a> {
    /// Opens the archive and finds its `data.pkl`; a TorchScript archive or another zip file
    /// is refused by what it is.
    pub fn open(bytes: &'a [u8]) -> Result<Self, String> {
        let zip = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| format!("not a readable zip archive (torch.save's format): {e}"))?;
        let names: Vec<String> = zip
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.into_owned()))
            .collect();
        let pkl: Vec<&String> = names
            .iter()
            .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
            .collect();
        let prefix = match pkl.as_slice() {
            [one] => one.trim_end_matches("data.pkl").to_string(),
            [] if names
                .iter()
                .any(|n| n.ends_with("/constants.pkl") || n.contains("/code/")) =>
            {
                return Err(
                    "this is a TorchScript archive (torch.jit.save), not a torch.save \
                            state_dict; save the weights with torch.save(model.state_dict(), \
                            'model.pth')"
                        .into(),
                );
            }
            [] => {
                return Err(
                    "a zip archive without the data.pkl torch.save writes: not a PyTorch file"
                        .into(),
                );
            }
            _ => return Err("a zip archive with more than one data.pkl".into()),
        };
        let mut a = Archive { zip, prefix };
        let order = format!("{}byteorder", a.prefix);
        if names.contains(&order) && a.read_entry(&order, 16)? != b"little" {
            return Err("the tensors are stored big-endian, which is not read".into());
        }
        Ok(a)
    }

    /// The bytes of entry `name`, which must be stored (not compressed) and at most `max` bytes.
    pub fn read_entry(&mut self, name: &str, max: u64) -> Result<Vec<u8>, String> {
        let shown = escape(name).into_owned();
        let mut f = self
            .zip
            .by_name(name)
            .map_err(|e| format!("the archive has no readable entry '{shown}': {e}"))?;
        if f.compression() != CompressionMethod::Stored {
            return Err(format!(
                "entry '{shown}' is compressed ({}); torch.save stores entries uncompressed",
                f.compression()
            ));
        }
        if f.size() > max {
            return Err(format!(
                "entry '{shown}' is {} bytes, more than the {max} expected",
                f.size()
            ));
        }
        let mut out = Vec::with_capacity(f.size() as usize);
        f.by_ref()
            .take(max)
            .read_to_end(&mut out)
            .map_err(|e| format!("cannot read entry '{shown}': {e}"))?;
        Ok(out)
    }
}
