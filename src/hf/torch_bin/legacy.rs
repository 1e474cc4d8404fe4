//! The format `torch.save` wrote before PyTorch 1.6 (and still writes with
//! `_use_new_zipfile_serialization=False`), as the models and fine-tunes of 2019–2020 on the
//! Hugging Face hub are saved: five pickles ([`pickle::legacy_head`]: the magic number, the
//! protocol version, the system's description, the state dict and the list of storage keys),
//! then each storage in that order as its element count (8 bytes, little-endian) and its bytes.
//! Every storage's count must equal what the pickle says and lie inside the file; each is read
//! from its place when a tensor needs it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Result;

use super::{pickle, TensorView, MAX_PICKLE_BYTES};
use crate::hf::safetensors_header::dtype_bytes;

/// An open checkpoint of the old format: where each storage's bytes begin, and how many.
pub(super) struct Legacy {
    file: File,
    storages: HashMap<String, (u64, u64)>,
}

/// The checkpoint at `path` (`f` open on it, `size` bytes), its pickles read from the first
/// [`MAX_PICKLE_BYTES`] and its storages located.
pub(super) fn open(
    path: &Path,
    mut f: File,
    size: u64,
) -> Result<(Legacy, Vec<(String, TensorView)>)> {
    let named = |e: String| anyhow::anyhow!("{}: {e}", path.display());
    let mut head = Vec::new();
    f.seek(SeekFrom::Start(0))
        .and_then(|_| (&mut f).take(MAX_PICKLE_BYTES).read_to_end(&mut head))
        .map_err(|e| named(format!("cannot read: {e}")))?;
    let read = pickle::legacy_head(&head).map_err(|e| {
        named(format!(
            "a PyTorch checkpoint in the format before PyTorch 1.6 (a bare pickle): {e}"
        ))
    })?;
    let named_storages = super::storages_by_key(&read.storages).map_err(named)?;
    let mut storages = HashMap::with_capacity(read.keys.len());
    let mut at = read.end as u64;
    for key in &read.keys {
        let s = named_storages.get(key.as_str()).ok_or_else(|| {
            named(format!(
                "storage {key} is listed but the pickle never names it"
            ))
        })?;
        let count = count_at(&mut f, at, size).map_err(|e| named(format!("storage {key}: {e}")))?;
        let bytes = dtype_bytes(s.dtype).and_then(|b| b.checked_mul(s.numel));
        let span = bytes.and_then(|b| Some((b, b.checked_add(at + 8)?)));
        match span {
            Some((bytes, end)) if count == s.numel && end <= size => {
                if storages.insert(key.clone(), (at + 8, bytes)).is_some() {
                    return Err(named(format!("storage {key} is listed twice")));
                }
                at = end;
            }
            _ => {
                return Err(named(format!(
                    "storage {key} at byte {at} holds {count} elements, the pickle says {} of \
                     {}; the file has {size} bytes (cut short, or damaged)",
                    s.numel, s.dtype
                )))
            }
        }
    }
    if let Some((name, t)) = read
        .tensors
        .iter()
        .find(|(_, t)| !storages.contains_key(&t.storage.key))
    {
        return Err(named(format!(
            "tensor {name}: storage {} is not in the file's list of storages",
            t.storage.key
        )));
    }
    Ok((Legacy { file: f, storages }, read.tensors))
}

/// The 8-byte little-endian element count at `at` of a file of `size` bytes.
fn count_at(f: &mut File, at: u64, size: u64) -> Result<u64, String> {
    if at.checked_add(8).is_none_or(|end| end > size) {
        return Err(format!(
            "the file ends at byte {size}, before its size at byte {at}"
        ));
    }
    let mut b = [0u8; 8];
    f.seek(SeekFrom::Start(at))
        .and_then(|_| f.read_exact(&mut b))
        .map_err(|e| e.to_string())?;
    Ok(u64::from_le_bytes(b))
}

impl Legacy {
    /// The bytes of the storage `key` (located at open).
    pub(super) fn storage_bytes(&mut self, key: &str) -> Result<Vec<u8>, String> {
        let &(start, len) = self
            .storages
            .get(key)
            .ok_or_else(|| format!("storage {key} is not in the file"))?;
        let mut out = vec![0u8; len as usize];
        self.file
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.file.read_exact(&mut out))
            .map_err(|e| format!("storage {key}: {e}"))?;
        Ok(out)
    }
}
