//! Our own reading of a `.safetensors` file's header, before any weight is loaded: an 8-byte
//! little-endian header length, a JSON object naming each tensor's dtype, shape and byte range,
//! then the data. The header length, every shape (with checked multiplication) and every byte
//! range are checked against the file's actual size, so a model's config can be compared with
//! the tensors that are really there before anything is sized by it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest header read (real ones are tens of KB; the safetensors crate allows 100 MB).
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

/// A safetensors file whose header is damaged or hostile; names the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct SafetensorsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

/// One tensor as the header declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorDecl {
    /// Its dtype as written ("F32", "F16", "I32", ...).
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

#[derive(Deserialize)]
struct RawDecl {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// Bytes per element of a safetensors dtype, or None for one we do not know.
pub fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" => 8,
        _ => return None,
    })
}

/// The tensors declared by the safetensors file at `path`, by name, every one checked to lie
/// inside the file with as many bytes as its dtype and shape need.
pub fn read_header(path: &Path) -> Result<BTreeMap<String, TensorDecl>, SafetensorsError> {
    let err = |problem: String| SafetensorsError {
        path: path.to_path_buf(),
        problem,
    };
    let size = crate::files::check_regular(path, u64::MAX, "a safetensors file")
        .map_err(|e| err(crate::hf::limits::file_problem(&e)))?;
    let mut file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut len = [0u8; 8];
    if size < 8 {
        return Err(err(format!(
            "{size} bytes: too short for a safetensors header"
        )));
    }
    file.read_exact(&mut len).map_err(|e| err(e.to_string()))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES || n > size - 8 {
        return Err(err(format!(
            "the header length {n} is more than the file ({size} bytes) or the {MAX_HEADER_BYTES} \
             allowed; not a safetensors file, or a damaged one"
        )));
    }
    let mut text = Vec::new();
    file.take(n)
        .read_to_end(&mut text)
        .map_err(|e| err(e.to_string()))?;
    let mut raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&text)
        .map_err(|e| err(format!("the header is not a JSON object: {e}")))?;
    raw.remove("__metadata__");
    let data = size - 8 - n;
    raw.into_iter()
        .map(|(name, v)| {
            let decl = serde_path_to_error::deserialize::<_, RawDecl>(v)
                .map_err(|e| format!("tensor {name}: `{}`: {}", e.path(), e.inner()))
                .and_then(|d| check_decl(&name, d, data))
                .map_err(err)?;
            Ok((name, decl))
        })
        .collect()
}

/// The declaration if its bytes match its dtype and shape and lie within `data` bytes.
fn check_decl(name: &str, d: RawDecl, data: u64) -> Result<TensorDecl, String> {
    let unit = dtype_bytes(&d.dtype)
        .ok_or_else(|| format!("tensor {name}: unknown dtype {:?}", d.dtype))?;
    let bytes = d
        .shape
        .iter()
        .try_fold(unit, |a, &x| a.checked_mul(x))
        .ok_or_else(|| format!("tensor {name}: shape {:?} overflows", d.shape))?;
    let [begin, end] = d.data_offsets;
    if begin > end || end > data || end - begin != bytes {
        return Err(format!(
            "tensor {name}: bytes {begin}..{end} do not hold a {} tensor of shape {:?} ({bytes} \
             bytes) inside the {data} bytes of data",
            d.dtype, d.shape
        ));
    }
    let shape = d
        .shape
        .iter()
        .map(|&x| usize::try_from(x).map_err(|e| format!("tensor {name}: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(TensorDecl {
        dtype: d.dtype,
        shape,
    })
}
