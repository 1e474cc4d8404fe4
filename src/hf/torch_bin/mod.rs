//! A Hugging Face folder's `pytorch_model.bin` (or its shards), read without running it. Since
//! PyTorch 1.6 `torch.save` writes a zip archive ([`zipped`]): `NAME/data.pkl`, a pickle of the
//! state dict whose tensors point at storages by key, and each storage's raw bytes
//! uncompressed in `NAME/data/KEY`; before, a file of pickles followed by the storages
//! ([`legacy`]). The pickles are read by [`pickle`], which accepts only what a state dict is
//! made of and runs nothing; every storage is checked to exist and hold exactly the elements
//! the pickle says, and every tensor to lie inside its storage, before anything is sized by
//! them. A big-endian file is refused by name.

mod legacy;
mod pickle;
mod zipped;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};

use crate::hf::safetensors_header::TensorDecl;
pub use pickle::{StorageRef, TensorView};

/// Largest `data.pkl` read (a 7-billion-weight model's is under 100 KB).
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// A PyTorch checkpoint, its state dict read and checked against its storages.
pub struct Checkpoint {
    source: Source,
    /// The tensors, by name, in the order written.
    pub tensors: Vec<(String, TensorView)>,
}

/// Where the storages' bytes are.
enum Source {
    /// A zip archive (PyTorch 1.6 and later).
    Zip(zipped::Zipped),
    /// The format before 1.6: pickles, then the storages one after another.
    Legacy(legacy::Legacy),
}

/// Whether `path` names a pickled PyTorch file that [`open`] reads (a `.bin`).
pub fn is_torch_bin(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("bin"))
}

/// The checkpoint at `path`, every error naming it.
pub fn open(path: &Path) -> Result<Checkpoint> {
    let size = crate::files::check_regular(path, u64::MAX, "a PyTorch checkpoint")?;
    let mut head = [0u8; 4];
    let mut f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let n = f.read(&mut head).unwrap_or(0);
    if n == 4 && head == *b"PK\x03\x04" {
        let (z, tensors) = zipped::open(path, f, size)?;
        return Ok(Checkpoint {
            source: Source::Zip(z),
            tensors,
        });
    }
    if n >= 2 && head[0] == 0x80 {
        let (l, tensors) = legacy::open(path, f, size)?;
        return Ok(Checkpoint {
            source: Source::Legacy(l),
            tensors,
        });
    }
    bail!(
        "{}: not a PyTorch checkpoint (a zip archive or pickle written by torch.save), or a \
         damaged one ({size} bytes)",
        path.display()
    );
}

/// The storages named, by key, each once: a key named again with another dtype or element
/// count is refused.
fn storages_by_key<'a>(
    named: impl IntoIterator<Item = &'a StorageRef>,
) -> Result<BTreeMap<&'a str, &'a StorageRef>, String> {
    let mut out: BTreeMap<&str, &StorageRef> = BTreeMap::new();
    for s in named {
        if out.insert(&s.key, s).is_some_and(|first| first != s) {
            return Err(format!("storage {} is declared twice, differently", s.key));
        }
    }
    Ok(out)
}

impl Checkpoint {
    /// The bytes of the storage `key` (checked at open to hold its elements).
    fn storage_bytes(&mut self, key: &str) -> Result<Vec<u8>, String> {
        match &mut self.source {
            Source::Zip(z) => z.entry_bytes(&format!("data/{key}"), u64::MAX),
            Source::Legacy(l) => l.storage_bytes(key),
        }
    }
}

/// The tensors `path` declares, by name, as a safetensors header would declare them.
pub fn declared(path: &Path) -> Result<BTreeMap<String, TensorDecl>> {
    let ck = open(path)?;
    Ok(ck
        .tensors
        .into_iter()
        .map(|(name, t)| {
            let decl = TensorDecl {
                dtype: t.storage.dtype.to_string(),
                shape: t.shape,
            };
            (name, decl)
        })
        .collect())
}

/// The tensors of `path` whose names `wanted` accepts, in their own dtype, contiguous, on
/// `device`; each storage is read once for all the tensors that view it.
pub fn load(
    path: &Path,
    device: &Device,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<(String, Tensor)>> {
    let mut ck = open(path)?;
    let mut todo: Vec<(String, TensorView)> = std::mem::take(&mut ck.tensors)
        .into_iter()
        .filter(|(n, _)| wanted(n))
        .collect();
    todo.sort_by(|a, b| (&a.1.storage.key, &a.0).cmp(&(&b.1.storage.key, &b.0)));
    let mut held: Option<(String, Vec<u8>)> = None;
    let mut out = Vec::with_capacity(todo.len());
    for (name, view) in todo {
        let key = &view.storage.key;
        if held.as_ref().is_none_or(|(k, _)| k != key) {
            // The storage held is let go before the next is read.
            held.take();
            let bytes = ck
                .storage_bytes(key)
                .map_err(|e| anyhow::anyhow!("{}: tensor {name}: {e}", path.display()))?;
            held = Some((key.clone(), bytes));
        }
        let storage = held.as_ref().map(|(_, b)| b.as_slice()).unwrap_or(&[]);
        let t = to_tensor(storage, &view, device)
            .with_context(|| format!("{}: tensor {name}", path.display()))?;
        out.push((name, t));
    }
    Ok(out)
}

/// The view `v` of `storage` (its bytes, checked to hold the view) as a contiguous tensor.
fn to_tensor(storage: &[u8], v: &TensorView, device: &Device) -> Result<Tensor> {
    let Some(dtype) = crate::model::weights_file::parse_dtype(v.storage.dtype) else {
        bail!("dtype {} is not read as a weight", v.storage.dtype);
    };
    let es = dtype.size_in_bytes();
    let n = v.numel() as usize;
    if v.is_contiguous() {
        let start = v.offset as usize * es;
        let bytes = &storage[start..start + n * es];
        return Ok(Tensor::from_raw_buffer(bytes, dtype, &v.shape, device)?);
    }
    let mut out = Vec::with_capacity(n * es);
    let mut index = vec![0usize; v.shape.len()];
    for _ in 0..n {
        let at = v.offset as usize
            + index
                .iter()
                .zip(&v.stride)
                .map(|(&i, &s)| i * s as usize)
                .sum::<usize>();
        out.extend_from_slice(&storage[at * es..(at + 1) * es]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < v.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(Tensor::from_raw_buffer(&out, dtype, &v.shape, device)?)
}
