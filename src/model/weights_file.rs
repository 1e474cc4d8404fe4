//! Reading a safetensors file defensively: the header is parsed and checked by us before any
//! tensor is built, so a hostile file gives an error naming the tensor instead of a panic, a
//! huge allocation or a riddle ("invalid offset for tensor anchors.0.keys").
//!
//! The format is an 8-byte little-endian header length, a JSON header mapping each tensor name
//! to `{dtype, shape, data_offsets}` (plus an optional `__metadata__`), then the data. We refuse
//! a header longer than the file or than [`MAX_HEADER_BYTES`], a tensor named twice (JSON
//! parsers keep the last one silently), a dtype that is not a float, a shape whose element
//! count overflows, offsets that leave the data or disagree with the shape, and, once the data
//! is read, any NaN or ±inf weight.

use std::collections::HashMap;
use std::fmt;

use candle_core::{DType, Device, Tensor};
use serde::de::{Deserializer, MapAccess, Visitor};

/// Largest safetensors header accepted (the format's own reader allows 100 MB).
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

/// What is wrong with a safetensors file (the caller adds the file's path).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WeightsError {
    /// Shorter than its own header says.
    #[error("truncated or damaged: {0}")]
    Truncated(String),
    /// The header is not the JSON object the format requires.
    #[error("invalid header: {0}")]
    Header(String),
    /// The same tensor name appears twice in the header.
    #[error("tensor '{0}' is named twice in the header")]
    Duplicate(String),
    /// A dtype that is not one of the float types allowed here.
    #[error("tensor '{name}' has dtype {dtype}; the weights must be {allowed}")]
    Dtype {
        /// Tensor name.
        name: String,
        /// Its dtype as written.
        dtype: String,
        /// The dtypes allowed, in words.
        allowed: String,
    },
    /// Offsets outside the data, overlapping, or not matching the shape.
    #[error("tensor '{name}': {problem}")]
    Layout {
        /// Tensor name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A weight that is NaN or infinite.
    #[error("tensor '{name}' holds a non-finite value ({value}) at flat index {index}")]
    NonFinite {
        /// Tensor name.
        name: String,
        /// Index into the flattened tensor.
        index: usize,
        /// The value ("NaN", "inf", "-inf").
        value: String,
    },
}

/// One tensor as the header describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    /// Its name.
    pub name: String,
    /// Its dtype.
    pub dtype: DType,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Start and end of its bytes within the data section.
    pub offsets: (usize, usize),
}

/// The checked header of a safetensors file.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Tensors in header order.
    pub entries: Vec<TensorEntry>,
    /// Where the data section starts in the file.
    pub data_start: usize,
}

/// The header's entries in file order, keeping duplicates so that they can be reported.
struct RawEntries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for RawEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of tensors")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    out.push(entry);
                }
                Ok(RawEntries(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// Length of the header that `bytes` (the file's first bytes) announce, checked against the
/// file's size on disk and [`MAX_HEADER_BYTES`].
pub fn header_len(prefix: &[u8], file_size: u64) -> Result<u64, WeightsError> {
    let Some(len_bytes) = prefix.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return Err(WeightsError::Truncated(format!(
            "{file_size} bytes cannot hold the 8-byte header length"
        )));
    };
    let n = u64::from_le_bytes(len_bytes);
    if n > MAX_HEADER_BYTES {
        return Err(WeightsError::Header(format!(
            "a header of {n} bytes is more than the {MAX_HEADER_BYTES} allowed"
        )));
    }
    if n.saturating_add(8) > file_size {
        return Err(WeightsError::Truncated(format!(
            "the header says it is {n} bytes long, which with the 8-byte length before it \
             needs {}, but the file has only {file_size}",
            n.saturating_add(8)
        )));
    }
    Ok(n)
}

/// Parse and check the header at the start of `bytes` (the whole file, or at least its header:
/// `file_size` is the size on disk). Each tensor's dtype must be in `allowed`, and its offsets
/// must lie inside the data, match its shape and not overlap another tensor's.
pub fn parse_header(
    bytes: &[u8],
    file_size: u64,
    allowed: &[DType],
) -> Result<Header, WeightsError> {
    let n = header_len(bytes, file_size)?;
    let data_start = usize::try_from(8 + n).map_err(|_| WeightsError::Header("too long".into()))?;
    let text = bytes
        .get(8..data_start)
        .ok_or_else(|| WeightsError::Truncated("the header is cut short".into()))?;
    let raw: RawEntries =
        serde_json::from_slice(text).map_err(|e| WeightsError::Header(e.to_string()))?;
    let data_len = usize::try_from(file_size - 8 - n).unwrap_or(usize::MAX);
    let mut seen = std::collections::HashSet::new();
    let mut entries = Vec::new();
    for (name, value) in raw.0 {
        if !seen.insert(name.clone()) {
            return Err(WeightsError::Duplicate(name));
        }
        if name == "__metadata__" {
            continue;
        }
        entries.push(entry(name, value, allowed, data_len)?);
    }
    check_layout(&mut entries, data_len)?;
    Ok(Header {
        entries,
        data_start,
    })
}

/// One header entry checked on its own.
fn entry(
    name: String,
    value: serde_json::Value,
    allowed: &[DType],
    data_len: usize,
) -> Result<TensorEntry, WeightsError> {
    let layout = |problem: String| WeightsError::Layout {
        name: name.clone(),
        problem,
    };
    let info: RawInfo = serde_path_to_error::deserialize(value)
        .map_err(|e| layout(format!("`{}`: {}", e.path(), e.inner())))?;
    let dtype = parse_dtype(&info.dtype)
        .filter(|d| allowed.contains(d))
        .ok_or_else(|| WeightsError::Dtype {
            name: name.clone(),
            dtype: info.dtype.clone(),
            allowed: allowed_words(allowed),
        })?;
    let count = info
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| layout(format!("shape {:?} has too many elements", info.shape)))?;
    let want = count
        .checked_mul(dtype.size_in_bytes())
        .ok_or_else(|| layout(format!("shape {:?} has too many bytes", info.shape)))?;
    let (start, end) = info.data_offsets;
    if start > end || end > data_len {
        return Err(layout(format!(
            "bytes {start}..{end} lie outside the {data_len} bytes of data (truncated file?)"
        )));
    }
    if end - start != want {
        return Err(layout(format!(
            "shape {:?} of {} needs {want} bytes but its offsets {start}..{end} hold {}",
            info.shape,
            info.dtype,
            end - start
        )));
    }
    Ok(TensorEntry {
        name,
        dtype,
        shape: info.shape,
        offsets: (start, end),
    })
}

/// The tensors tile the data exactly, as the safetensors format requires: two sharing bytes, a
/// gap between two or bytes after the last are a crafted or damaged file, never one we wrote
/// (4 bytes inserted in the middle were read as every later tensor shifted by one value).
fn check_layout(entries: &mut [TensorEntry], data_len: usize) -> Result<(), WeightsError> {
    entries.sort_by_key(|e| e.offsets);
    let mut at = 0;
    let mut before: Option<&str> = None;
    for e in entries.iter() {
        let (start, end) = e.offsets;
        if start < at {
            return Err(WeightsError::Layout {
                name: e.name.clone(),
                problem: format!(
                    "its bytes overlap those of '{}'",
                    before.unwrap_or_default()
                ),
            });
        }
        if start > at {
            let after = before.map_or("the header".to_string(), |b| format!("'{b}'"));
            return Err(WeightsError::Layout {
                name: e.name.clone(),
                problem: format!(
                    "{} unused bytes ({at}..{start}) lie between {after} and it (damaged file?)",
                    start - at
                ),
            });
        }
        at = end;
        before = Some(&e.name);
    }
    if at != data_len {
        return Err(WeightsError::Truncated(format!(
            "{} bytes follow the last tensor's data (which ends at {at} of {data_len}): the \
             file was extended or damaged",
            data_len - at
        )));
    }
    Ok(())
}

/// The candle dtype of a safetensors dtype name, for those candle reads.
pub(crate) fn parse_dtype(s: &str) -> Option<DType> {
    Some(match s {
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F32" => DType::F32,
        "F64" => DType::F64,
        "U8" => DType::U8,
        "U32" => DType::U32,
        "I64" => DType::I64,
        _ => return None,
    })
}

fn allowed_words(allowed: &[DType]) -> String {
    let names: Vec<String> = allowed
        .iter()
        .map(|d| format!("{d:?}").to_uppercase())
        .collect();
    names.join(" or ")
}

/// The float dtypes a weights file may hold.
pub const FLOAT_DTYPES: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::F64];

/// Every dtype a general tensor file may hold: the floats, and the integer types of token
/// batches and indices (integers are always finite).
pub const ANY_DTYPES: [DType; 7] = [
    DType::F32,
    DType::F16,
    DType::BF16,
    DType::F64,
    DType::I64,
    DType::U32,
    DType::U8,
];

/// Build the tensors of a checked header from the file's bytes on `device`, refusing any
/// non-finite weight.
pub fn load_tensors(
    bytes: &[u8],
    header: &Header,
    device: &Device,
) -> Result<HashMap<String, Tensor>, WeightsError> {
    let mut out = HashMap::with_capacity(header.entries.len());
    for e in &header.entries {
        let layout = |problem: String| WeightsError::Layout {
            name: e.name.clone(),
            problem,
        };
        let (start, end) = (
            header.data_start + e.offsets.0,
            header.data_start + e.offsets.1,
        );
        let raw = bytes
            .get(start..end)
            .ok_or_else(|| layout("its bytes lie past the end of the file".into()))?;
        let t = Tensor::from_raw_buffer(raw, e.dtype, &e.shape, &Device::Cpu)
            .map_err(|err| layout(err.to_string()))?;
        if FLOAT_DTYPES.contains(&e.dtype) {
            check_finite(&e.name, &t)?;
        }
        let t = t.to_device(device).map_err(|err| layout(err.to_string()))?;
        out.insert(e.name.clone(), t);
    }
    Ok(out)
}

/// Refuse a tensor holding NaN or ±inf, naming it and the first bad position.
pub fn check_finite(name: &str, t: &Tensor) -> Result<(), WeightsError> {
    let values = t
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| WeightsError::Layout {
            name: name.to_string(),
            problem: e.to_string(),
        })?;
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(WeightsError::NonFinite {
            name: name.to_string(),
            index,
            value: values.get(index).map(|v| v.to_string()).unwrap_or_default(),
        }),
    }
}
