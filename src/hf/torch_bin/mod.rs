//! A Hugging Face folder's `pytorch_model.bin` (or its shards), read without running it. Since
//! PyTorch 1.6 `torch.save` writes a zip archive: `NAME/data.pkl`, a pickle of the state dict
//! whose tensors point at storages by key, and each storage's raw bytes uncompressed in
//! `NAME/data/KEY`. The pickle is read by [`pickle`], which accepts only what a state dict is
//! made of and runs nothing; every storage entry is checked to exist, be stored uncompressed and
//! hold exactly the elements the pickle says, and every tensor to lie inside its storage, before
//! anything is sized by them. Files saved in PyTorch's format before 1.6 (not a zip archive)
//! are refused by name, as is a big-endian archive.

mod pickle;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};

use crate::hf::safetensors_header::{dtype_bytes, TensorDecl};
pub use pickle::{StorageRef, TensorView};

/// Largest `data.pkl` read (a 7-billion-weight model's is under 100 KB).
const MAX_PICKLE_BYTES: u64 = 64 << 20;

type Archive = zip::ZipArchive<BufReader<File>>;

/// A PyTorch zip checkpoint, its state dict read and checked against its entries.
pub struct Checkpoint {
    archive: Archive,
    /// The file's length: no entry can hold more.
    len: u64,
    /// The folder inside the archive that holds `data.pkl` and `data/` ("" or "NAME/").
    prefix: String,
    /// The tensors, by name, in the order written.
    pub tensors: Vec<(String, TensorView)>,
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
    if n < 4 || head != *b"PK\x03\x04" {
        if n >= 2 && head[0] == 0x80 {
            bail!(
                "{}: a PyTorch checkpoint in the format written before PyTorch 1.6 (a bare \
                 pickle, not a zip archive), which is not read here: load it in Python and \
                 save it again with save_pretrained (or torch.save)",
                path.display()
            );
        }
        bail!(
            "{}: not a PyTorch checkpoint (a zip archive written by torch.save), or a damaged \
             one ({size} bytes)",
            path.display()
        );
    }
    let reader = BufReader::new(f);
    let archive = crate::contained::contained(|| zip::ZipArchive::new(reader))
        .map_err(|p| anyhow::anyhow!("{}: a damaged zip archive ({p})", path.display()))?
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: a damaged zip archive ({e}); a download cut short ends this way",
                path.display()
            )
        })?;
    let mut ck = Checkpoint {
        archive,
        len: size,
        prefix: String::new(),
        tensors: Vec::new(),
    };
    ck.prefix =
        pickle_prefix(&ck.archive).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    ck.check_byteorder()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let pkl = ck
        .entry_bytes("data.pkl", MAX_PICKLE_BYTES)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    ck.tensors = pickle::state_dict(&pkl)
        .map_err(|e| anyhow::anyhow!("{}: {}data.pkl: {e}", path.display(), ck.prefix))?;
    ck.check_storages()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(ck)
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

impl Checkpoint {
    /// The bytes of the entry `name` (under the prefix), stored uncompressed, at most `limit`.
    fn entry_bytes(&mut self, name: &str, limit: u64) -> Result<Vec<u8>, String> {
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
    /// the pickle's element count needs; one key used with two dtypes is refused.
    fn check_storages(&mut self) -> Result<(), String> {
        let Checkpoint {
            archive,
            len,
            prefix,
            tensors,
        } = self;
        let mut seen: BTreeMap<&str, &StorageRef> = BTreeMap::new();
        for (name, t) in tensors.iter() {
            let s = &t.storage;
            if let Some(first) = seen.insert(&s.key, s) {
                if first != s {
                    return Err(format!(
                        "tensor {name}: storage {} is declared twice, differently",
                        s.key
                    ));
                }
                continue;
            }
            let full = format!("{prefix}data/{}", s.key);
            let file = archive
                .by_name(&full)
                .map_err(|e| format!("tensor {name}: entry {full}: {e}"))?;
            let want = dtype_bytes(s.dtype)
                .and_then(|b| b.checked_mul(s.numel))
                .ok_or_else(|| format!("tensor {name}: storage {} is too large", s.key))?;
            let stored = file.compression() == zip::CompressionMethod::Stored;
            if !stored || file.size() != want || want > *len {
                return Err(format!(
                    "tensor {name}: entry {full} holds {} bytes ({}), but its storage of {} {} \
                     elements needs {want} stored uncompressed",
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
                .entry_bytes(&format!("data/{key}"), u64::MAX)
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
    let dtype = match v.storage.dtype {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "I64" => DType::I64,
        "U8" => DType::U8,
        other => bail!("dtype {other} is not read as a weight"),
    };
    let es = dtype.size_in_bytes();
    let n = v.numel() as usize;
    let bytes: Vec<u8> = if v.is_contiguous() {
        let start = v.offset as usize * es;
        storage[start..start + n * es].to_vec()
    } else {
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
        out
    };
    Ok(Tensor::from_raw_buffer(&bytes, dtype, &v.shape, device)?)
}
