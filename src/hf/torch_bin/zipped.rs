//! The zip archive `torch.save` writes since PyTorch 1.6: `NAME/data.pkl` and each storage's
//! bytes uncompressed in `NAME/data/KEY`, read by the `zip` crate (without compression).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::Result;

use super::{pickle, TensorView, MAX_PICKLE_BYTES};
use crate::hf::safetensors_header::dtype_bytes;

type Archive = zip::ZipArchive<BufReader<File>>;

/// An open archive.
pub(super) struct Zipped {
    archive: Archive,
    /// The file's length: no entry can hold more.
    len: u64,
    /// The folder inside the archive that holds `data.pkl` and `data/` ("" or "NAME/").
    prefix: String,
}

/// The archive at `path` (its zip magic already seen; `f` open on it, `size` bytes) and its
/// state dict, every storage checked against its entry.
pub(super) fn open(path: &Path, f: File, size: u64) -> Result<(Zipped, Vec<(String, TensorView)>)> {
    let named = |e: String| anyhow::anyhow!("{}: {e}", path.display());
    let reader = BufReader::new(f);
    let archive = crate::contained::contained(|| zip::ZipArchive::new(reader))
        .map_err(|p| anyhow::anyhow!("{}: a damaged zip archive ({p})", path.display()))?
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: a damaged zip archive ({e}); a download cut short ends this way",
                path.display()
            )
        })?;
    let prefix = pickle_prefix(&archive).map_err(named)?;
    let mut z = Zipped {
        archive,
        len: size,
        prefix,
    };
    z.check_byteorder().map_err(named)?;
    let pkl = z.entry_bytes("data.pkl", MAX_PICKLE_BYTES).map_err(named)?;
    let tensors = pickle::state_dict(&pkl)
        .map_err(|e| anyhow::anyhow!("{}: {}data.pkl: {e}", path.display(), z.prefix))?;
    z.check_storages(&tensors).map_err(named)?;
    Ok((z, tensors))
}

/// The folder in the archive holding `data.pkl`: exactly one entry may end so.
fn pickle_prefix(archive: &Archive) -> Result<String, String> {
    let found: Vec<&[u8]> = archive
        .file_names_raw()
        .filter(|n| *n == b"data.pkl" || n.ends_with(b"/data.pkl"))
        .collect();
    match found.as_slice() {
        [one] => {
            let name = std::str::from_utf8(one).map_err(|_| "a data.pkl entry not UTF-8")?;
            Ok(name.trim_end_matches("data.pkl").to_string())
        }
        [] => Err("a zip archive without data.pkl: not a checkpoint written by torch.save".into()),
        many => Err(format!(
            "a zip archive with {} data.pkl entries (torch.save writes one)",
            many.len()
        )),
    }
}

impl Zipped {
    /// The bytes of the entry `name` (under the prefix), stored uncompressed, at most `limit`.
    pub(super) fn entry_bytes(&mut self, name: &str, limit: u64) -> Result<Vec<u8>, String> {
        let full = format!("{}{name}", self.prefix);
        let mut file = self
            .archive
            .by_name(&full)
            .map_err(|e| format!("entry {full}: {e}"))?;
        if file.compression() != zip::CompressionMethod::Stored {
            return Err(format!(
                "entry {full} is compressed ({}); torch.save stores its entries uncompressed",
                file.compression()
            ));
        }
        if file.size() > limit.min(self.len) {
            return Err(format!(
                "entry {full} says it has {} bytes, more than the {} read here",
                file.size(),
                limit.min(self.len)
            ));
        }
        let mut out = Vec::with_capacity(file.size() as usize);
        let read = crate::contained::contained(|| file.read_to_end(&mut out))
            .map_err(|p| format!("entry {full}: {p}"))?;
        read.map_err(|e| format!("entry {full}: {e}"))?;
        if out.len() as u64 != file.size() {
            return Err(format!("entry {full} is truncated"));
        }
        Ok(out)
    }

    /// Refuse a big-endian archive (an archive without `byteorder` is little-endian).
    fn check_byteorder(&mut self) -> Result<(), String> {
        let name = format!("{}byteorder", self.prefix);
        if self.archive.index_for_name(&name).is_none() {
            return Ok(());
        }
        let order = self.entry_bytes("byteorder", 16)?;
        if order != b"little" {
            return Err(format!(
                "byteorder {:?}: only little-endian checkpoints are read",
                String::from_utf8_lossy(&order)
            ));
        }
        Ok(())
    }

    /// Every storage the tensors use: its entry present, uncompressed, with as many bytes as
    /// the pickle's element count needs ([`super::storages_by_key`] refuses one key of two
    /// kinds).
    fn check_storages(&mut self, tensors: &[(String, TensorView)]) -> Result<(), String> {
        let Zipped {
            archive,
            len,
            prefix,
        } = self;
        for s in super::storages_by_key(tensors.iter().map(|(_, t)| &t.storage))?.into_values() {
            let full = format!("{prefix}data/{}", s.key);
            let file = archive
                .by_name(&full)
                .map_err(|e| format!("storage {}: entry {full}: {e}", s.key))?;
            let want = dtype_bytes(s.dtype)
                .and_then(|b| b.checked_mul(s.numel))
                .ok_or_else(|| format!("storage {} is too large", s.key))?;
            let stored = file.compression() == zip::CompressionMethod::Stored;
            if !stored || file.size() != want || want > *len {
                return Err(format!(
                    "entry {full} holds {} bytes ({}), but its storage of {} {} elements needs \
                     {want} stored uncompressed",
                    file.size(),
                    file.compression(),
                    s.numel,
                    s.dtype
                ));
            }
        }
        Ok(())
    }
}
