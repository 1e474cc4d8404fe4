//! The sizes a pretrained model may declare, and the checks every loader in `hf` runs before
//! it builds a vector from them. A header or config is user input: `num_hidden_layers:
//! 1000000000` or a GGUF `block_count` of `u32::MAX` must be an error naming the file, never a
//! gigantic allocation. The limits are far above any model this studio runs on a desktop
//! (SmolLM2-135M: 30 layers, 9 heads, width 576, 49,152 words; MiniLM: 6 layers, 12 heads,
//! width 384) and far below what would take the machine's memory.

use candle_core::{DType, Tensor};

/// Most layers a model may declare.
pub const MAX_LAYERS: usize = 256;
/// Most attention heads per layer.
pub const MAX_HEADS: usize = 1024;
/// Largest width d.
pub const MAX_WIDTH: usize = 65_536;
/// Largest MLP width.
pub const MAX_FF: usize = 262_144;
/// Largest vocabulary.
pub const MAX_VOCAB: usize = 1 << 20;
/// Most positions (context length).
pub const MAX_POSITIONS: usize = 1 << 20;
/// Most k-means clusters of an imported model's embedding rows: the cost of k-means grows with
/// k (300 clusters of MiniLM take about 19 s), and more blocks than this say nothing a reader
/// could use. The one limit of every face: `eval --clusters`, `blocks --kmeans` and the
/// studio's k.
pub const MAX_CLUSTERS: usize = 256;

/// `value` of `key` if it lies in `min..=max`, else a sentence saying the allowed range.
pub fn in_range(key: &str, value: usize, min: usize, max: usize) -> Result<usize, String> {
    if value < min || value > max {
        return Err(format!("{key} = {value} is outside {min}..={max}"));
    }
    Ok(value)
}

/// A finite, positive ε (a norm's epsilon), at most 1.
pub fn positive_eps(key: &str, value: f64) -> Result<f64, String> {
    // The forward passes add ε in f32, where a positive f64 below f32's smallest normal
    // number (1e-320, say) is 0 or denormal: a row of zero variance then divides by zero.
    let least = f64::from(f32::MIN_POSITIVE);
    if !(value.is_finite() && value >= least && value <= 1.0) {
        return Err(format!(
            "{key} = {value:e} must be a number in [{least:e}, 1] (it is added in f32)"
        ));
    }
    Ok(value)
}

/// Whether every value of `t` is finite (no NaN, no ±inf), checked on its device in f32.
pub fn all_finite(t: &Tensor) -> candle_core::Result<bool> {
    if t.elem_count() == 0 {
        return Ok(true);
    }
    let t = match t.dtype() {
        DType::F32 => t.clone(),
        _ => t.to_dtype(DType::F32)?,
    };
    // NaN compares false and |±inf| > f32::MAX: the mask is 0 exactly where a value is not finite.
    let finite = t.abs()?.le(f64::from(f32::MAX))?;
    Ok(finite.flatten_all()?.min(0)?.to_scalar::<u8>()? == 1)
}

/// The number of clusters `k` for blocks of a vocabulary of `vocab` words, or why not.
pub fn check_clusters(k: usize, vocab: usize) -> Result<usize, String> {
    if k < 1 {
        return Err("--clusters must be at least 1".into());
    }
    if k > MAX_CLUSTERS {
        return Err(format!(
            "{k} clusters are more than the {MAX_CLUSTERS} allowed (k-means time grows with k); \
             choose at most {MAX_CLUSTERS}"
        ));
    }
    if k > vocab {
        return Err(format!(
            "{k} clusters are more than the model's {vocab} words; choose at most {vocab}"
        ));
    }
    Ok(k)
}

/// The problem of a [`crate::files::FileError`] without its path (the caller adds it once).
pub fn file_problem(e: &crate::files::FileError) -> String {
    use crate::files::FileError;
    match e {
        FileError::NotFound(_) => "no such file".into(),
        FileError::NotRegular { kind, .. } => format!("not a regular file ({kind})"),
        FileError::Io { cause, .. } => cause.to_string(),
        other => other.to_string(),
    }
}

/// Whether a width of `d` (`width_key`) splits into `h` heads (`heads_key`), or the sentence
/// saying it does not ("hidden_size 65 is not a multiple of 4 heads (num_attention_heads)").
pub fn heads_divide(
    (width_key, d): (&str, usize),
    (heads_key, h): (&str, usize),
) -> Result<(), String> {
    if d.is_multiple_of(h.max(1)) {
        return Ok(());
    }
    Err(format!(
        "{width_key} {d} is not a multiple of {h} heads ({heads_key})"
    ))
}

/// The key/value heads `kv` (`kv_key`) as groups of the `h` query heads: from 1 to `h`, and
/// dividing `h` (each key and value head shared by h/kv queries), or the first problem in a
/// sentence naming the keys.
pub fn kv_groups(kv_key: &str, kv: usize, h: usize) -> Result<usize, String> {
    let kv = in_range(kv_key, kv, 1, h)?;
    match h % kv {
        0 => Ok(kv),
        _ => Err(format!(
            "num_attention_heads {h} is not a multiple of {kv_key} {kv}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn non_finite_values_are_found_in_every_dtype() {
        let dev = Device::Cpu;
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let t = Tensor::new(&[1.0f32, bad, 2.0], &dev).unwrap_or_else(|e| panic!("{e}"));
            assert!(!all_finite(&t).unwrap_or(true), "{bad}");
            let h = t.to_dtype(DType::F16).unwrap_or_else(|e| panic!("{e}"));
            assert!(!all_finite(&h).unwrap_or(true), "f16 {bad}");
        }
        let ok =
            Tensor::new(&[[f32::MAX, -3.0], [0.0, 1e-30]], &dev).unwrap_or_else(|e| panic!("{e}"));
        assert!(all_finite(&ok).unwrap_or(false));
    }

    #[test]
    fn limits_name_the_key_and_range() {
        let msg = in_range("block_count", u32::MAX as usize, 1, MAX_LAYERS)
            .err()
            .unwrap_or_default();
        assert!(
            msg.contains("block_count = 4294967295") && msg.contains("1..=256"),
            "{msg}"
        );
        assert!(positive_eps("eps", -1.0).is_err() && positive_eps("eps", f64::NAN).is_err());
        assert!(check_clusters(1_000_000, 30_522)
            .err()
            .unwrap_or_default()
            .contains("256"));
        assert!(check_clusters(200, 150)
            .err()
            .unwrap_or_default()
            .contains("150 words"));
        assert_eq!(check_clusters(64, 30_522), Ok(64));
    }
}
