//! The checks `load_checkpoint` runs on each file of a checkpoint folder before trusting it.
//!
//! `config.json` is checked first, before anything is sized from it: the model's shape within
//! [`LIMITS`](crate::model::config::LIMITS), the saved dial finite and in range, the recorded
//! tokenizer of `vocab_size` tokens. `model.safetensors` is then checked by its header
//! alone (read without the data): F32 tensors, each named once, exactly the tensors and shapes
//! the config implies, offsets inside the file. Only then is the data read, and every value
//! must be finite.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::analysis::dial::LayerSchedule;
use crate::model::checkpoint_error::{io_err, CheckpointError, CHECKPOINT_VERSION};
use crate::model::config::ModelConfig;
use crate::model::dial::{DialSetting, MAX_GAMMA, MAX_TAU, MIN_TAU};
use crate::model::transformer::{anchor_name, expected_shapes, ModelError};
use crate::model::weights_file::{header_len, load_tensors, parse_header, Header};

/// Largest safetensors file [`read_tensors`](crate::model::checkpoint::read_tensors) reads.
pub const MAX_WEIGHTS_BYTES: u64 = 4 << 30;

/// Number of tokens of the tokenizer a checkpoint's `config.json` records, as the checkpoint
/// format writes it: `{"kind": "Char"}` is the fixed 96-id character vocabulary, `{"kind":
/// "Word", "vocab": [...]}` lists its tokens. `None` for a kind this check does not know (the
/// tokenizer's own builder reports it). `data::tokenizer::TokenizerSpec::num_tokens` gives the
/// same count from the parsed spec (a test keeps the two in step).
pub fn recorded_token_count(tokenizer: &serde_json::Value) -> Option<usize> {
    match tokenizer.get("kind")?.as_str()? {
        "Char" => Some(96),
        "Word" => Some(tokenizer.get("vocab")?.as_array()?.len()),
        _ => None,
    }
}

/// Check `config.json` as parsed: version, model shape, dial, tokenizer size.
pub(crate) fn check_meta(
    model: &ModelConfig,
    dial: &DialSetting,
    tokenizer: &serde_json::Value,
    version: u32,
    path: &Path,
) -> Result<(), CheckpointError> {
    let invalid = |message: String| CheckpointError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    if version > CHECKPOINT_VERSION {
        return Err(CheckpointError::Version {
            path: path.to_path_buf(),
            found: version,
        });
    }
    model.validate().map_err(|e| invalid(e.to_string()))?;
    check_dial(dial, model.num_layers).map_err(|m| invalid(format!("dial: {m}")))?;
    if let Some(tokens) = recorded_token_count(tokenizer) {
        if tokens > model.vocab_size {
            return Err(invalid(format!(
                "the tokenizer it records has {tokens} tokens but model.vocab_size is {}: \
                 ids past {} have no embedding row",
                model.vocab_size,
                model.vocab_size.saturating_sub(1)
            )));
        }
        // A model is trained with its tokenizer's vocabulary: fewer tokens means another
        // model's tokenizer (a character one on a word model captured nonsense unsaid).
        if tokens < model.vocab_size {
            return Err(invalid(format!(
                "the tokenizer it records has {tokens} tokens but model.vocab_size is {}: it is \
                 not the tokenizer this model was trained with",
                model.vocab_size
            )));
        }
    }
    Ok(())
}

/// The dial saved with a model of `num_layers` layers, held to the command line's ranges: λ in
/// [0, 1], τ and τ_min in [[`MIN_TAU`], [`MAX_TAU`]], σ positive, γ in [0, [`MAX_GAMMA`]], one λ
/// per layer for a per-layer schedule; all finite. (A τ of 1e300 overflowed the logits and was
/// blamed on the weights; a per-layer schedule one entry short read the missing layer as λ 0.)
pub fn check_dial(dial: &DialSetting, num_layers: usize) -> Result<(), String> {
    let p = &dial.params;
    let within = |name: &str, v: f64, lo: f64, hi: f64| {
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(())
        } else {
            // 1e300 written out in full is 301 digits.
            let v = if v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-4) {
                format!("{v:e}")
            } else {
                format!("{v}")
            };
            Err(format!(
                "{name} = {v} must be a finite number in [{lo}, {hi}]"
            ))
        }
    };
    let unit = |name: &str, v: f64| within(name, v, 0.0, 1.0);
    unit("lambda", p.lambda)?;
    within("tau", p.tau, MIN_TAU, MAX_TAU)?;
    within("tau_min", p.tau_min, MIN_TAU, MAX_TAU)?;
    if !(p.sigma.is_finite() && p.sigma > 0.0) {
        return Err(format!(
            "sigma = {} must be a finite positive number",
            p.sigma
        ));
    }
    match &dial.schedule {
        LayerSchedule::Uniform => Ok(()),
        LayerSchedule::Power { gamma } => within("schedule gamma", *gamma, 0.0, MAX_GAMMA),
        LayerSchedule::PerLayer(values) if values.len() != num_layers => Err(format!(
            "the per-layer schedule gives {} values for the model's {num_layers} layers",
            values.len()
        )),
        LayerSchedule::PerLayer(values) => values
            .iter()
            .enumerate()
            .try_for_each(|(l, &v)| unit(&format!("schedule layer {l} lambda"), v)),
    }
}

/// The shapes `model.safetensors` must hold for `cfg` with `num_blocks` blocks, anchors last.
fn wanted_shapes(cfg: &ModelConfig, num_blocks: usize) -> Vec<(String, Vec<usize>)> {
    let mut out = expected_shapes(cfg);
    let anchors = [cfg.num_heads, num_blocks, cfg.head_dim()];
    out.extend((0..cfg.num_layers).map(|l| (anchor_name(l), anchors.to_vec())));
    out
}

/// Read only the header of a safetensors file (at most the header limit), checked against
/// the file's size on disk.
fn read_header(path: &Path, limit: u64, allowed: &[DType]) -> Result<Header, CheckpointError> {
    let size = crate::files::check_regular(path, limit, "a weights file")?;
    let tensors = |message: String| CheckpointError::Tensors {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut prefix = vec![0u8; usize::try_from(size.min(8)).unwrap_or(8)];
    file.read_exact(&mut prefix).map_err(io_err(path))?;
    let n = header_len(&prefix, size).map_err(|e| tensors(e.to_string()))?;
    let mut rest = Vec::new();
    file.take(n).read_to_end(&mut rest).map_err(io_err(path))?;
    prefix.extend(rest);
    parse_header(&prefix, size, allowed).map_err(|e| tensors(e.to_string()))
}

/// SHA-256 of `bytes` as lowercase hex (what `sha256sum` prints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Read the data of a checked header and build its tensors (values must be finite); then,
/// when `sha256` is given, the file's bytes must hash to it (checked after the structure, so a
/// truncated file or a NaN is named as such, and the hash catches what they cannot).
fn read_data(
    path: &Path,
    header: &Header,
    sha256: Option<&str>,
    device: &Device,
) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let bytes = crate::files::read_bytes(path, MAX_WEIGHTS_BYTES.max(1), "a weights file")?;
    let tensors = load_tensors(&bytes, header, device).map_err(|e| CheckpointError::Tensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if let Some(recorded) = sha256 {
        let found = sha256_hex(&bytes);
        if !found.eq_ignore_ascii_case(recorded.trim()) {
            return Err(CheckpointError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "its SHA-256 ({}…) is not the one config.json recorded when it was saved \
                     ({}…): the weights were changed or damaged since. Restore the file from a \
                     copy, or delete \"weights_sha256\" from config.json if the change was on \
                     purpose",
                    found.get(..12).unwrap_or(&found),
                    recorded.get(..12).unwrap_or(recorded)
                ),
            });
        }
    }
    Ok(tensors)
}

/// Read a safetensors file whose tensors must have one of the `allowed` dtypes.
pub(crate) fn read_float_tensors(
    path: &Path,
    device: &Device,
    allowed: &[DType],
) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let header = read_header(path, MAX_WEIGHTS_BYTES, allowed)?;
    read_data(path, &header, None, device)
}

/// Read a checkpoint's `model.safetensors` for `cfg` (already validated): the header must
/// list exactly the tensors the config implies (anchor keys for `num_blocks` blocks optional,
/// but all layers or none), in F32 with the config's shapes, before the data is read; the
/// file must hash to `sha256` when config.json recorded one.
pub(crate) fn read_model_weights(
    path: &Path,
    cfg: &ModelConfig,
    num_blocks: usize,
    sha256: Option<&str>,
    device: &Device,
) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let header = read_header(path, MAX_WEIGHTS_BYTES, &[DType::F32])?;
    let model_err = |cause| CheckpointError::Model {
        path: path.to_path_buf(),
        cause,
    };
    let found: HashMap<&str, &[usize]> = header
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.shape.as_slice()))
        .collect();
    let wanted = wanted_shapes(cfg, num_blocks);
    let has_anchors = found.contains_key(anchor_name(0).as_str());
    for (name, shape) in &wanted {
        let is_anchor = name.starts_with("anchors.");
        match found.get(name.as_str()) {
            None if is_anchor && !has_anchors => {}
            None => return Err(model_err(ModelError::Missing(name.clone()))),
            Some(dims) if *dims != shape.as_slice() => {
                return Err(model_err(ModelError::Shape {
                    name: name.clone(),
                    found: dims.to_vec(),
                    expected: shape.clone(),
                }))
            }
            Some(_) => {}
        }
    }
    let known: HashSet<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(extra) = header
        .entries
        .iter()
        .find(|e| !known.contains(e.name.as_str()))
    {
        return Err(CheckpointError::Tensors {
            path: path.to_path_buf(),
            message: format!(
                "unexpected tensor '{}': the model config.json describes has no such weight",
                extra.name
            ),
        });
    }
    read_data(path, &header, sha256, device)
}
