//! Whether a pretrained model's weights fit in the memory this machine has free, checked from
//! its header before any weight is read. Every loader computes in f32, so a model takes 4
//! bytes a weight (plus what its file holds in memory while it is converted): an 8-billion-
//! weight GGUF needs 32 GB. Without this check such a file was read until memory ran out,
//! with nothing said about the file or its size.

use std::path::Path;

use anyhow::{bail, Result};

use crate::files::human_bytes;

/// Refuse `file` when its `weights` in f32, plus `extra` bytes held while they are read, need
/// more than the memory available now ([`available_bytes`]; not checked where unknown).
pub fn check_weights_fit(weights: u64, extra: u64, file: &Path) -> Result<()> {
    weights_fit(weights, extra, available_bytes(), file)
}

/// The weights of tensors of `shapes` (a header's declarations).
pub fn weight_count<'a>(shapes: impl IntoIterator<Item = &'a [usize]>) -> u64 {
    shapes
        .into_iter()
        .map(|s| s.iter().product::<usize>() as u64)
        .sum()
}

/// The size of `file` in bytes (0 when it cannot be read: the reader then says why).
pub fn file_len(file: &Path) -> u64 {
    std::fs::metadata(file).map(|m| m.len()).unwrap_or(0)
}

fn weights_fit(weights: u64, extra: u64, available: Option<u64>, file: &Path) -> Result<()> {
    let Some(available) = available else {
        return Ok(());
    };
    let need = weights.saturating_mul(4).saturating_add(extra);
    if need > available {
        bail!(
            "{}: its {} weights need about {} in f32 (every model here computes in f32), and \
             only {} of memory is available to this process; close other programs or use a \
             smaller model (about {} weights fit now)",
            file.display(),
            count(weights),
            human_bytes(need),
            human_bytes(available),
            count(available.saturating_sub(extra) / 4)
        );
    }
    Ok(())
}

/// A number of weights in words: "8.03 billion", "135 million".
fn count(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.2} billion", n as f64 / 1e9)
    } else {
        format!("{:.0} million", n as f64 / 1e6)
    }
}

/// The memory available now, in bytes (Linux): `MemAvailable` of `/proc/meminfo`, or less when
/// the process runs under an address-space limit (`ulimit -v`): what the limit leaves beside
/// its present size. `None` elsewhere or unreadable.
pub(crate) fn available_bytes() -> Option<u64> {
    let free = kib_field(
        &std::fs::read_to_string("/proc/meminfo").ok()?,
        "MemAvailable:",
    )?;
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("Max address space"))?;
            line.split_whitespace().nth(3)?.parse::<u64>().ok()
        });
    let used = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| kib_field(&t, "VmSize:"));
    Some(match (limit, used) {
        (Some(limit), Some(used)) => free.min(limit.saturating_sub(used)),
        _ => free,
    })
}

/// The value of a `NAME: N kB` line, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_model_larger_than_free_memory_is_refused_naming_its_size() {
        let file = Path::new("big.gguf");
        let gib = 1u64 << 30;
        let err = weights_fit(8_030_000_000, 0, Some(20 * gib), file).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("big.gguf") && msg.contains("8.03 billion"),
            "{msg}"
        );
        assert!(msg.contains("5.37 billion weights fit"), "{msg}");
        let small = weights_fit(135_000_000, 0, Some(gib / 4), file).unwrap_err();
        assert!(
            format!("{small:#}").contains("135 million weights need"),
            "{small:#}"
        );
        // SmolLM2-135M fits; an unknown amount of memory is not a refusal.
        assert!(weights_fit(135_000_000, 0, Some(20 * gib), file).is_ok());
        assert!(weights_fit(u64::MAX, u64::MAX, None, file).is_ok());
        // The file's own bytes count while it is converted.
        assert!(weights_fit(gib, 17 * gib, Some(20 * gib), file).is_err());
    }

    #[test]
    fn this_machine_reports_its_free_memory() {
        if cfg!(target_os = "linux") {
            assert!(available_bytes().is_some_and(|b| b > 0));
        }
    }
}
