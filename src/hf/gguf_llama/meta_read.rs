//! Reading a GGUF file's metadata values: each error names the file and the key (candle's
//! own say neither).

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::quantized::gguf_file;

/// The value of `key`, or an error naming it as missing.
pub(crate) fn meta<'a>(
    c: &'a gguf_file::Content,
    key: &str,
    file: &Path,
) -> Result<&'a gguf_file::Value> {
    c.metadata
        .get(key)
        .with_context(|| format!("{}: metadata {key} is missing", file.display()))
}

/// An integer of any of GGUF's integer types, non-negative and within `usize`.
pub(crate) fn meta_usize(c: &gguf_file::Content, key: &str, file: &Path) -> Result<usize> {
    use gguf_file::Value;
    let v = meta(c, key, file)?;
    let n: Option<u64> = match v {
        Value::U8(x) => Some(u64::from(*x)),
        Value::U16(x) => Some(u64::from(*x)),
        Value::U32(x) => Some(u64::from(*x)),
        Value::U64(x) => Some(*x),
        Value::I8(x) => u64::try_from(*x).ok(),
        Value::I16(x) => u64::try_from(*x).ok(),
        Value::I32(x) => u64::try_from(*x).ok(),
        Value::I64(x) => u64::try_from(*x).ok(),
        _ => None,
    };
    n.and_then(|n| usize::try_from(n).ok()).with_context(|| {
        format!(
            "{}: metadata {key} is not a non-negative integer ({v:?})",
            file.display()
        )
    })
}

/// A number stored as F32 or F64 (or an integer).
pub(crate) fn meta_f64(c: &gguf_file::Content, key: &str, file: &Path) -> Result<f64> {
    use gguf_file::Value;
    let v = meta(c, key, file)?;
    match v {
        Value::F32(x) => Ok(f64::from(*x)),
        Value::F64(x) => Ok(*x),
        _ => meta_usize(c, key, file).map(|n| n as f64).map_err(|_| {
            anyhow::anyhow!("{}: metadata {key} is not a number ({v:?})", file.display())
        }),
    }
}

/// The error for metadata `key` of `file` that is not `expected` (candle said only "not a
/// vec U32(9)", naming neither the file nor the key).
pub(crate) fn wrong_type(
    file: &Path,
    key: &str,
    expected: &str,
    e: &candle_core::Error,
) -> anyhow::Error {
    // candle's message, without the backtrace it appends under RUST_BACKTRACE.
    let e = e.to_string();
    let e = e.lines().next().unwrap_or_default();
    anyhow::anyhow!("{}: metadata {key} is not {expected} ({e})", file.display())
}

/// `key` read by `read` when the metadata has it, `None` when it does not.
pub(crate) fn optional<T>(
    c: &gguf_file::Content,
    key: &str,
    file: &Path,
    read: fn(&gguf_file::Content, &str, &Path) -> Result<T>,
) -> Result<Option<T>> {
    if c.metadata.contains_key(key) {
        read(c, key, file).map(Some)
    } else {
        Ok(None)
    }
}
