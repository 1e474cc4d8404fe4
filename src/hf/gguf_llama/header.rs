//! Our own first reading of a GGUF file's header, before candle's reader sees it. candle trusts
//! a few things a hostile file controls: `general.alignment = 0` divides by zero, and tensor
//! dims whose element count overflows (`[2^32, 2^32]`) panic in its slicing. So every count,
//! length, dim and offset is checked here against the file's actual size (every entry takes
//! bytes), with checked arithmetic, without building anything larger than the file; candle only
//! reads a file that passed.
//!
//! Layout (GGUF v1–v3, little-endian): magic "GGUF", version u32, tensor count and metadata
//! count (u64; u32 in v1), the metadata (key string, value type u32, value), the tensor infos
//! (name, n_dims u32, dims, ggml type u32, offset u64), then the tensor data from the next
//! multiple of the alignment. Strings are a length (u64; u32 in v1) and bytes.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::hf::gguf_llama::cursor::Cursor;
use crate::hf::gguf_llama::ggml_type::{tensor_type, TensorType};

/// The alignment of the tensor data when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most dims of a tensor (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// Longest metadata key.
const MAX_KEY_BYTES: u64 = 1 << 16;
/// Deepest nesting of arrays in the metadata (real files have none).
const MAX_ARRAY_DEPTH: usize = 2;
/// Most elements the metadata's arrays may hold together: a vocabulary of
/// [`crate::hf::limits::MAX_VOCAB`] words with its scores, token types and merges. candle's
/// reader builds a value of about 32 bytes for each, so a 140 MB file of one byte array asked
/// for 4 GB and aborted.
const MAX_METADATA_ELEMENTS: u64 = 4 * crate::hf::limits::MAX_VOCAB as u64;

/// A GGUF file that is not safe or not possible to read; names the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct GgufError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, in a sentence.
    pub problem: String,
}

/// One tensor of the file, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    /// Its name.
    pub name: String,
    /// Its shape, outermost first (candle's order: GGUF stores the innermost dim first).
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: TensorType,
    /// Where its type is written in the file (the IQ4 types are written over for candle's
    /// reader, which does not know them: [`super::iq4`] reads those).
    pub type_at: u64,
    /// First byte of its data in the file.
    pub start: u64,
    /// Bytes of its data.
    pub bytes: u64,
}

/// What the header says, every part checked against the file.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufHeader {
    /// Format version (1, 2 or 3).
    pub version: u32,
    /// Alignment of the tensor data.
    pub alignment: u64,
    /// The tensors, in file order.
    pub tensors: Vec<TensorEntry>,
    /// Where the tensor data starts (the header ends before it).
    pub data_offset: u64,
}

impl GgufHeader {
    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorEntry> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Read and check the header of the GGUF file at `path`.
pub fn read_header(path: &Path) -> Result<GgufHeader, GgufError> {
    let err = |problem: String| GgufError {
        path: path.to_path_buf(),
        problem,
    };
    let size = crate::files::check_regular(path, u64::MAX, "a GGUF file")
        .map_err(|e| err(crate::hf::limits::file_problem(&e)))?;
    let file = File::open(path).map_err(|e| err(e.to_string()))?;
    let mut r = Cursor {
        inner: BufReader::new(file),
        pos: 0,
        size,
        wide: true,
    };
    parse(&mut r).map_err(err)
}

/// Bytes of one value of a fixed-size metadata type, or None for strings and arrays.
fn fixed_size(value_type: u32) -> Option<u64> {
    match value_type {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

const STRING: u32 = 8;
const ARRAY: u32 = 9;

fn parse<R: Read>(r: &mut Cursor<R>) -> Result<GgufHeader, String> {
    if &r.array::<4>("the magic bytes")? != b"GGUF" {
        return Err("does not start with the GGUF magic bytes".into());
    }
    let version = r.u32("the version")?;
    if !(1..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (1, 2 or 3)"
        ));
    }
    r.wide = version >= 2;
    let tensor_count = r.len("the tensor count")?;
    let kv_count = r.len("the metadata count")?;
    // Each metadata entry takes at least a key length, a type and one byte; each tensor info a
    // name length, n_dims, one dim, a type and an offset.
    let min_kv = r.len_size() + 4 + 1;
    let min_tensor = r.len_size() * 2 + 4 + 4 + 8;
    let needed = kv_count
        .checked_mul(min_kv)
        .and_then(|a| tensor_count.checked_mul(min_tensor).map(|b| (a, b)))
        .and_then(|(a, b)| a.checked_add(b));
    if needed.is_none_or(|n| n > r.left()) {
        return Err(format!(
            "the header declares {tensor_count} tensors and {kv_count} metadata entries, more \
             than the {} bytes of the file can hold",
            r.size
        ));
    }
    let alignment = read_metadata(r, kv_count)?;
    let infos = read_tensor_infos(r, tensor_count)?;
    let data_offset = r
        .pos
        .checked_next_multiple_of(alignment)
        .ok_or("the tensor data offset overflows")?;
    let tensors = infos
        .into_iter()
        .map(|(info, offset)| place(info, offset, data_offset, r.size))
        .collect::<Result<Vec<_>, String>>()?;
    check_layout(&tensors, data_offset, alignment)?;
    Ok(GgufHeader {
        version,
        alignment,
        tensors,
        data_offset,
    })
}

/// Read the metadata, checking every key and value against the file; returns the alignment.
fn read_metadata<R: Read>(r: &mut Cursor<R>, count: u64) -> Result<u64, String> {
    let mut keys = HashSet::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    let mut budget = MAX_METADATA_ELEMENTS;
    for i in 0..count {
        let key = r.string(&format!("metadata key #{i}"), MAX_KEY_BYTES)?;
        let value_type = r.u32(&format!("the type of metadata {key}"))?;
        if key == "general.alignment" {
            alignment = read_alignment(r, value_type)?;
        } else {
            skip_value(r, value_type, &key, 0, &mut budget)?;
        }
        if !keys.insert(key.clone()) {
            return Err(format!("metadata {key} appears twice"));
        }
    }
    Ok(alignment)
}

/// `general.alignment`: an unsigned integer, a power of two.
fn read_alignment<R: Read>(r: &mut Cursor<R>, value_type: u32) -> Result<u64, String> {
    const KEY: &str = "metadata general.alignment";
    let v: i64 = match value_type {
        0 => i64::from(r.array::<1>(KEY)?[0]),
        1 => i64::from(i8::from_le_bytes(r.array(KEY)?)),
        2 => i64::from(u16::from_le_bytes(r.array(KEY)?)),
        3 => i64::from(i16::from_le_bytes(r.array(KEY)?)),
        4 => i64::from(r.u32(KEY)?),
        5 => i64::from(i32::from_le_bytes(r.array(KEY)?)),
        t => {
            return Err(format!(
                "{KEY} has type {t}; it must be an unsigned 32-bit integer"
            ))
        }
    };
    match u64::try_from(v) {
        Ok(a) if a.is_power_of_two() => Ok(a),
        _ => Err(format!(
            "{KEY} = {v} must be a power of two (1, 2, 4, ... 32)"
        )),
    }
}

fn skip_value<R: Read>(
    r: &mut Cursor<R>,
    value_type: u32,
    key: &str,
    depth: usize,
    budget: &mut u64,
) -> Result<(), String> {
    let what = format!("metadata {key}");
    if let Some(n) = fixed_size(value_type) {
        return r.skip(n, &what);
    }
    match value_type {
        STRING => r.skip_string(&what),
        ARRAY if depth < MAX_ARRAY_DEPTH => skip_array(r, key, depth, budget),
        ARRAY => Err(format!(
            "{what}: arrays nested deeper than {MAX_ARRAY_DEPTH}"
        )),
        t => Err(format!("{what} has unknown value type {t}")),
    }
}

fn skip_array<R: Read>(
    r: &mut Cursor<R>,
    key: &str,
    depth: usize,
    budget: &mut u64,
) -> Result<(), String> {
    let what = format!("metadata {key}");
    let elem_type = r.u32(&what)?;
    let len = r.len(&what)?;
    *budget = budget.checked_sub(len).ok_or_else(|| {
        format!(
            "{what}: the metadata's arrays hold more than {MAX_METADATA_ELEMENTS} elements in \
             all (four times the largest vocabulary a model may have); reading them would take \
             gigabytes"
        )
    })?;
    let min = fixed_size(elem_type).unwrap_or(r.len_size());
    if len.checked_mul(min).is_none_or(|n| n > r.left()) {
        return Err(format!(
            "{what}: an array of {len} elements does not fit in the {} bytes left in the file",
            r.left()
        ));
    }
    match fixed_size(elem_type) {
        Some(n) => r.skip(len * n, &what),
        None => (0..len).try_for_each(|_| skip_value(r, elem_type, key, depth + 1, budget)),
    }
}

/// A tensor info as read: name, shape (outermost first), type, byte count, where the type is.
type Info = (String, Vec<usize>, TensorType, u64, u64);

fn read_tensor_infos<R: Read>(r: &mut Cursor<R>, count: u64) -> Result<Vec<(Info, u64)>, String> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for i in 0..count {
        let name = r.string(&format!("the name of tensor #{i}"), MAX_KEY_BYTES)?;
        let what = format!("tensor {name}");
        let n_dims = r.u32(&what)?;
        if !(1..=MAX_DIMS).contains(&n_dims) {
            return Err(format!(
                "{what} has {n_dims} dims (1 to {MAX_DIMS} allowed)"
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(r.len(&what)?);
        }
        let type_at = r.pos;
        let dtype = tensor_type(r.u32(&what)?).map_err(|e| format!("{what} {e}"))?;
        let offset = r.u64(&what)?;
        let (shape, bytes) = shape_and_bytes(&dims, dtype).map_err(|e| format!("{what}: {e}"))?;
        if !names.insert(name.clone()) {
            return Err(format!("{what} appears twice"));
        }
        out.push(((name, shape, dtype, bytes, type_at), offset));
    }
    Ok(out)
}

/// The shape (outermost first) and data bytes of a tensor of `dims` (innermost first).
fn shape_and_bytes(dims: &[u64], dtype: TensorType) -> Result<(Vec<usize>, u64), String> {
    if dims.contains(&0) {
        return Err(format!("dims {dims:?} include 0"));
    }
    let elems = dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("dims {dims:?}: the element count overflows"))?;
    let block = dtype.block_size() as u64;
    if elems % block != 0 || dims.first().is_some_and(|d| d % block != 0) {
        return Err(format!(
            "dims {dims:?} do not split into blocks of {block} of {dtype}"
        ));
    }
    let bytes = (elems / block)
        .checked_mul(dtype.type_size() as u64)
        .ok_or_else(|| format!("dims {dims:?}: the byte count overflows"))?;
    let shape = dims
        .iter()
        .rev()
        .map(|&d| usize::try_from(d).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((shape, bytes))
}

/// The tensor with its data placed in the file, or why it does not fit.
fn place(info: Info, offset: u64, data_offset: u64, size: u64) -> Result<TensorEntry, String> {
    let (name, shape, dtype, bytes, type_at) = info;
    let start = data_offset.checked_add(offset);
    match start.and_then(|s| s.checked_add(bytes).map(|e| (s, e))) {
        Some((start, end)) if end <= size => Ok(TensorEntry {
            name,
            shape,
            dtype,
            type_at,
            start,
            bytes,
        }),
        _ => Err(format!(
            "tensor {name}: its data ({bytes} bytes at offset {offset} of the data, which starts \
             at byte {data_offset}) runs past the end of the file ({size} bytes)"
        )),
    }
}

/// Every tensor's data starts at a multiple of the alignment (GGUF requires it) and no two
/// overlap: a file breaking either was read before (one byte array as two weights), where the
/// safetensors reader refuses the same.
fn check_layout(tensors: &[TensorEntry], data_offset: u64, alignment: u64) -> Result<(), String> {
    if let Some(t) = tensors
        .iter()
        .find(|t| !(t.start - data_offset).is_multiple_of(alignment))
    {
        return Err(format!(
            "tensor {}: its data starts at offset {} of the data, not a multiple of the \
             alignment {alignment} (general.alignment, default {DEFAULT_ALIGNMENT})",
            t.name,
            t.start - data_offset
        ));
    }
    let mut by_start: Vec<&TensorEntry> = tensors.iter().filter(|t| t.bytes > 0).collect();
    by_start.sort_by_key(|t| t.start);
    for pair in by_start.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b.start < a.start + a.bytes {
            return Err(format!(
                "tensors {} and {} overlap: bytes {}..{} and {}..{} of the file",
                a.name,
                b.name,
                a.start,
                a.start + a.bytes,
                b.start,
                b.start + b.bytes
            ));
        }
    }
    Ok(())
}
