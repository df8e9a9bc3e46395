//! Reading a safetensors file: the header validated with the safetensors crate (and duplicate
//! keys refused), the tensors behind the [`Tensors`] trait that binding reads.

use std::collections::HashMap;

use ::safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};

use crate::error::{Error, Result};
#[cfg(feature = "pth")]
use crate::io::pth;
use crate::model::Tensors;

use super::json_keys;

/// A state_dict file's tensors: a safetensors file, or a `.pth` as torch.save writes it (told
/// apart by their first bytes, so a `.pth` loads wherever a safetensors file does).
pub(super) enum Parsed<'a> {
    Safetensors(StateDict<'a>),
    #[cfg(feature = "pth")]
    Pth(pth::StateDict),
}

/// Reads either kind of file.
pub(super) fn parse<'a>(bytes: &'a [u8], source: &str) -> Result<Parsed<'a>> {
    // A safetensors file starts with its header's length and then `{`: a zip or pickle
    // signature there cannot be one.
    let header_len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let fits =
        header_len.is_some_and(|n| n <= (bytes.len() - 8) as u64 && bytes.get(8) == Some(&b'{'));
    let torch_save = matches!(bytes, [b'P', b'K', 3, 4, ..] | [0x80, 2..=5, ..]);
    if torch_save && !fits {
        #[cfg(feature = "pth")]
        return Ok(Parsed::Pth(pth::StateDict::from_bytes(bytes, source)?));
        #[cfg(not(feature = "pth"))]
        return Err(Error::format(
            source,
            "this is a PyTorch file as torch.save writes it; reading .pth files needs wgpu-mlp's \
             `pth` feature",
        ));
    }
    let st = deserialize(bytes, source)?;
    Ok(Parsed::Safetensors(StateDict::new(&st)))
}

impl Parsed<'_> {
    /// The first tensor of a dtype this crate does not read, if any.
    pub(super) fn check_dtypes(&self) -> std::result::Result<(), String> {
        match self {
            Parsed::Safetensors(d) => d.check_dtypes(),
            #[cfg(feature = "pth")]
            Parsed::Pth(d) => d.check_dtypes(),
        }
    }

    fn inner(&self) -> &dyn Tensors {
        match self {
            Parsed::Safetensors(d) => d,
            #[cfg(feature = "pth")]
            Parsed::Pth(d) => d,
        }
    }
}

impl Tensors for Parsed<'_> {
    fn keys(&self) -> Vec<String> {
        self.inner().keys()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.inner().shape(key)
    }

    fn values(&self, key: &str) -> std::result::Result<Vec<f32>, String> {
        self.inner().values(key)
    }

    fn count(&self, key: &str) -> Option<i64> {
        self.inner().count(key)
    }
}

/// A safetensors file's tensors, for [`Arch::bind`](crate::Arch::bind).
pub(super) struct StateDict<'a> {
    tensors: HashMap<String, TensorView<'a>>,
}

impl<'a> StateDict<'a> {
    pub(super) fn new(st: &SafeTensors<'a>) -> Self {
        StateDict {
            tensors: st.tensors().into_iter().collect(),
        }
    }
}

impl StateDict<'_> {
    /// The first tensor of a dtype this crate does not read, if any. BatchNorm's
    /// `num_batches_tracked` (an I64 counter used only in training) is ignored.
    pub(super) fn check_dtypes(&self) -> std::result::Result<(), String> {
        let mut keys: Vec<&String> = self
            .tensors
            .keys()
            .filter(|k| !k.ends_with("num_batches_tracked"))
            .collect();
        keys.sort();
        for k in keys {
            let t = &self.tensors[k];
            if !matches!(
                t.dtype(),
                Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64
            ) {
                return Err(format!(
                    "'{}' has dtype {}; supported dtypes are F32, F16, BF16 and F64",
                    crate::escape(k),
                    t.dtype()
                ));
            }
        }
        Ok(())
    }
}

impl Tensors for StateDict<'_> {
    fn keys(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn shape(&self, key: &str) -> Option<Vec<usize>> {
        self.tensors.get(key).map(|t| t.shape().to_vec())
    }

    fn values(&self, key: &str) -> std::result::Result<Vec<f32>, String> {
        match self.tensors.get(key) {
            Some(t) => to_f32(key, t),
            None => Err(format!("no tensor '{key}'")),
        }
    }

    fn count(&self, key: &str) -> Option<i64> {
        let t = self.tensors.get(key)?;
        let one = t.shape().iter().product::<usize>() == 1;
        let bytes = <[u8; 8]>::try_from(t.data()).ok()?;
        (t.dtype() == Dtype::I64 && one).then(|| i64::from_le_bytes(bytes))
    }
}

/// Parses and validates the file (header, offsets) with the safetensors crate, with messages that
/// say what is wrong.
pub(super) fn deserialize<'a>(bytes: &'a [u8], source: &str) -> Result<SafeTensors<'a>> {
    let err = |msg: String| Error::format(source, msg);
    let Some(len_bytes) = bytes.get(..8) else {
        return Err(err(format!(
            "truncated safetensors file: {} bytes, too short for the 8-byte header length",
            bytes.len()
        )));
    };
    let mut n = [0u8; 8];
    n.copy_from_slice(len_bytes);
    let n = u64::from_le_bytes(n);
    let available = (bytes.len() - 8) as u64;
    // The safetensors crate (through serde_json) silently keeps the last of two entries with the
    // same name, so a file could hold two different tensors under one key and we would load
    // whichever came last. Refuse it, before the crate parses the header: with different offsets
    // it would report the offsets of the entry it kept rather than the real problem. (The scan
    // needs no valid JSON; the crate checks that next.)
    if let Some(header) = usize::try_from(n)
        .ok()
        .filter(|&n| n as u64 <= available)
        .and_then(|n| bytes.get(8..8 + n))
        .and_then(|h| std::str::from_utf8(h).ok())
    {
        json_keys::check_unique(header).map_err(err)?;
    }
    if n > available {
        return Err(err(format!(
            "header length {n} runs past the end of the file ({} bytes); the file is truncated \
             or not a safetensors file",
            bytes.len()
        )));
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        err(match e {
            SafeTensorError::InvalidHeader(_) => "the header is not valid UTF-8".into(),
            SafeTensorError::InvalidHeaderDeserialization(e) | SafeTensorError::JsonError(e) => {
                format!("invalid header: {e}")
            }
            SafeTensorError::HeaderTooLarge => format!("header length {n} is too large"),
            SafeTensorError::HeaderTooSmall | SafeTensorError::InvalidHeaderLength => {
                format!("invalid header length {n}")
            }
            SafeTensorError::InvalidOffset(name) => format!(
                "tensor '{name}' has invalid data_offsets (they must be in order, contiguous, \
                 start at 0 and lie inside the file)"
            ),
            SafeTensorError::TensorInvalidInfo => {
                "a tensor's data_offsets do not match its shape and dtype".into()
            }
            SafeTensorError::MetadataIncompleteBuffer => format!(
                "the tensors' data_offsets do not cover the data section ({} bytes) exactly: \
                 offsets past the end of the file, or trailing bytes",
                available - n
            ),
            SafeTensorError::ValidationOverflow => "a tensor's shape overflows".into(),
            other => format!("invalid safetensors file: {other}"),
        })
    })?;
    Ok(st)
}

/// Converts a tensor of a supported float dtype to f32 values.
fn to_f32(key: &str, t: &TensorView<'_>) -> Result<Vec<f32>, String> {
    let d = t.data();
    Ok(match t.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b) as f32
            })
            .collect(),
        other => {
            return Err(format!(
                "'{key}' has dtype {other}; supported dtypes are F32, F16, BF16 and F64"
            ));
        }
    })
}
