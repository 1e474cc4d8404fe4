//! What every Hugging Face folder model shares, whatever its family: finding its weights (one
//! `model.safetensors`, or the shards a `model.safetensors.index.json` names: [`shards`]; or
//! `pytorch_model.bin` and its shards, read weights-only by [`crate::hf::torch_bin`]), checking the tensors their headers declare against the shapes its config
//! implies before any weight is read, loading the weights as finite f32 tensors, and reading
//! its `tokenizer.json` within the size limit.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};

use crate::hf::safetensors_header::TensorDecl;

/// A decoder or encoder folder's weights: one file, or the shards an index names ([`shards`]).
#[derive(Clone, Debug)]
pub struct Weights {
    /// What errors about the weights as a whole name: the one file, or the index.
    pub path: PathBuf,
    /// The weight files (`.safetensors`, or `.bin` read weights-only), in the order read.
    pub files: Vec<PathBuf>,
}

/// The weights of `dir`, the first of: `model.safetensors`; the shards of
/// `model.safetensors.index.json`; `pytorch_model.bin`, read weights-only
/// ([`crate::hf::torch_bin`]: nothing in it is run); the shards of
/// `pytorch_model.bin.index.json`.
pub fn weights(dir: &Path) -> Result<Weights> {
    let kinds = [
        (
            "model.safetensors",
            "model.safetensors.index.json",
            "safetensors",
        ),
        ("pytorch_model.bin", "pytorch_model.bin.index.json", "bin"),
    ];
    for (single, index, ext) in kinds {
        let file = dir.join(single);
        if file.exists() {
            return Ok(Weights {
                path: file.clone(),
                files: vec![file],
            });
        }
        let index = dir.join(index);
        if index.exists() {
            let files = super::shards::shard_files(&index, ext)?;
            return Ok(Weights { path: index, files });
        }
    }
    bail!(
        "{}: no weights: neither model.safetensors (nor model.safetensors.index.json with its \
         shards) nor pytorch_model.bin (nor pytorch_model.bin.index.json)",
        dir.display()
    )
}

/// Whether the weights [`weights`] finds in `dir` are `pytorch_model.bin` (or its shards).
pub fn weights_are_bin(dir: &Path) -> bool {
    weights(dir).is_ok_and(|w| {
        w.files
            .iter()
            .all(|f| crate::hf::torch_bin::is_torch_bin(f))
    })
}

/// Check the tensors declared in the safetensors header of `file` (by name as the model reads
/// it) against `expected`: each one present, of a float dtype, with the expected shape.
pub fn check_declared(
    declared: &BTreeMap<String, TensorDecl>,
    expected: &[(String, Vec<usize>)],
    file: &Path,
) -> Result<()> {
    check_no_extra_layers(declared, expected, file)?;
    for (name, shape) in expected {
        let t = declared
            .get(name)
            .with_context(|| format!("{}: tensor {name} is missing", file.display()))?;
        if !matches!(t.dtype.as_str(), "F32" | "F16" | "BF16") {
            bail!(
                "{}: tensor {name} has dtype {}; weights must be F32, F16 or BF16",
                file.display(),
                t.dtype
            );
        }
        if &t.shape != shape {
            bail!(
                "{}: tensor {name} has shape {:?}, the config needs {shape:?}",
                file.display(),
                t.shape
            );
        }
    }
    Ok(())
}

/// The layer a tensor name belongs to, as (the name up to the index, the index):
/// `model.layers.7.mlp.up_proj.weight` → (`model.layers`, 7), GPT-2's `h.7…`, BERT's
/// `encoder.layer.7…`.
fn layer_of(name: &str) -> Option<(&str, usize)> {
    let mut start = 0;
    for part in name.split('.') {
        let end = start + part.len();
        let before = name.get(..start.saturating_sub(1)).unwrap_or("");
        let container = before.rsplit('.').next().unwrap_or("");
        if matches!(container, "layers" | "layer" | "h" | "blocks") {
            if let Ok(i) = part.parse::<usize>() {
                return Some((before, i));
            }
        }
        start = end + 1;
    }
    None
}

/// Refuse weights of layers the config does not have: a config.json of 2 layers over a file
/// of 6 ran 2 layers and said nothing of the other 4.
fn check_no_extra_layers(
    declared: &BTreeMap<String, TensorDecl>,
    expected: &[(String, Vec<usize>)],
    file: &Path,
) -> Result<()> {
    let mut layers: HashMap<&str, usize> = HashMap::new();
    for (name, _) in expected {
        if let Some((prefix, i)) = layer_of(name) {
            let n = layers.entry(prefix).or_insert(0);
            *n = (*n).max(i + 1);
        }
    }
    for name in declared.keys() {
        let Some((prefix, i)) = layer_of(name) else {
            continue;
        };
        if let Some(&n) = layers.get(prefix).filter(|&&n| i >= n) {
            bail!(
                "{}: tensor {name} belongs to layer {i}, but config.json gives the model {n} \
                 layers (num_hidden_layers / n_layer); refusing to run on part of the weights",
                file.display()
            );
        }
    }
    Ok(())
}

/// The safetensors headers of `weights` (every shard's) with every name passed through
/// `rename` (which strips a prefix some exports put on every name); a name two shards both
/// declare is refused naming them.
pub fn declared(
    weights: &Weights,
    rename: fn(&str) -> &str,
) -> Result<BTreeMap<String, TensorDecl>> {
    let mut out = BTreeMap::new();
    let mut from: HashMap<String, &Path> = HashMap::new();
    for file in &weights.files {
        let headers = if crate::hf::torch_bin::is_torch_bin(file) {
            crate::hf::torch_bin::declared(file)?
        } else {
            crate::hf::safetensors_header::read_header(file)?
        };
        for (k, v) in headers {
            let name = rename(&k).to_string();
            if let Some(first) = from.insert(name.clone(), file) {
                bail!(
                    "{}: tensor {k} is declared by two shards, {} and {}",
                    weights.path.display(),
                    first.display(),
                    file.display()
                );
            }
            out.insert(name, v);
        }
    }
    Ok(out)
}

/// The weights of `weights` (their headers already checked) named by `rename`, as f32, each
/// one finite; only the names in `wanted` are read: buffers beside the weights (GPT-2's causal
/// masks, older Pythia exports' boolean `attention.bias`, of a dtype candle cannot read at
/// all) are passed over. Shards are read one at a time.
pub fn load_f32(
    weights: &Weights,
    device: &Device,
    rename: fn(&str) -> &str,
    wanted: &[(String, Vec<usize>)],
) -> Result<HashMap<String, Tensor>> {
    load_f32_copying(weights, device, rename, wanted, 0)
}

/// [`load_f32`] for a loader that will copy `copies` weights more than the file holds (key and
/// value heads repeated for the query heads that share them): they count in the memory check.
pub fn load_f32_copying(
    weights: &Weights,
    device: &Device,
    rename: fn(&str) -> &str,
    wanted: &[(String, Vec<usize>)],
    copies: u64,
) -> Result<HashMap<String, Tensor>> {
    // Each file is read whole, then each wanted tensor copied out of it and converted to f32.
    use crate::hf::memory::{check_weights_fit, file_len, weight_count};
    let count = weight_count(wanted.iter().map(|(_, s)| s.as_slice())) + copies;
    let largest = weights.files.iter().map(|f| file_len(f)).max().unwrap_or(0);
    check_weights_fit(count, largest.saturating_mul(2), &weights.path)?;
    let mut tensors = HashMap::with_capacity(wanted.len());
    for file in &weights.files {
        load_file_f32(file, device, rename, wanted, &mut tensors)?;
    }
    Ok(tensors)
}

/// The tensors of `wanted` that `file` holds, into `tensors`.
fn load_file_f32(
    file: &Path,
    device: &Device,
    rename: fn(&str) -> &str,
    wanted: &[(String, Vec<usize>)],
    tensors: &mut HashMap<String, Tensor>,
) -> Result<()> {
    let is_wanted = |name: &str| wanted.iter().any(|(w, _)| w == rename(name));
    let mut keep = |name: &str, t: Tensor| -> Result<()> {
        crate::hf::gguf_llama::ensure_finite(&t, name, file)?;
        let t = t
            .to_dtype(DType::F32)
            .with_context(|| format!("{}: tensor {name}", file.display()))?;
        tensors.insert(rename(name).to_string(), t);
        Ok(())
    };
    if crate::hf::torch_bin::is_torch_bin(file) {
        for (name, t) in crate::hf::torch_bin::load(file, device, is_wanted)? {
            keep(&name, t)?;
        }
        return Ok(());
    }
    let bytes = std::fs::read(file).with_context(|| format!("{}: cannot read", file.display()))?;
    let st = candle_core::safetensors::SliceSafetensors::new(&bytes)
        .with_context(|| format!("{}: not a readable safetensors file", file.display()))?;
    let mut names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
    names.sort();
    for name in names.into_iter().filter(|n| is_wanted(n)) {
        let t = st
            .load(&name, device)
            .with_context(|| format!("{}: tensor {name}", file.display()))?;
        keep(&name, t)?;
    }
    Ok(())
}

/// The tensor `name` of `tensors` (checked present by [`check_declared`] before loading).
pub fn take(tensors: &mut HashMap<String, Tensor>, name: &str, file: &Path) -> Result<Tensor> {
    tensors
        .remove(name)
        .with_context(|| format!("{}: tensor {name} is missing", file.display()))
}

/// Read the `config.json` at `path` (a regular file within the size limit) as `T`; `what`
/// names the family in the error ("not a GPT-2 config").
pub fn read_config<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = crate::files::read_text(path, crate::files::MAX_CONFIG_BYTES, "a config.json")?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a readable {what} config.json", path.display()))
}

/// The tokenizer at `path` (a regular file within [`crate::files::MAX_TOKENIZER_BYTES`]), with
/// no padding or truncation, and no more words than the model's `vocab` rows.
pub fn read_tokenizer(path: &Path, vocab: usize) -> Result<tokenizers::Tokenizer> {
    let text =
        crate::files::read_text(path, crate::files::MAX_TOKENIZER_BYTES, "a tokenizer.json")?;
    // JSON first (its errors say where), then the tokenizer, contained: the tokenizers
    // crate panics on some malformed parts instead of returning an error.
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!("{}: not a tokenizer: not valid JSON ({e})", path.display())
    })?;
    super::expansion::check_expansion(&value)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let tokenizer: tokenizers::Tokenizer =
        crate::contained::contained(|| serde_json::from_value(value))
            .map_err(|p| {
                anyhow::anyhow!(
                    "{}: not a tokenizer the tokenizers crate accepts ({p})",
                    path.display()
                )
            })?
            .map_err(|e| anyhow::anyhow!("{}: not a tokenizer: {e}", path.display()))?;
    plain_tokenizer(tokenizer, vocab, path)
}

/// `tokenizer` without padding or truncation, refused (naming `path`) when it has more words
/// than the model's `vocab` rows: ids past the end would fail deep inside the forward pass.
pub fn plain_tokenizer(
    mut tokenizer: tokenizers::Tokenizer,
    vocab: usize,
    path: &Path,
) -> Result<tokenizers::Tokenizer> {
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let words = tokenizer.get_vocab_size(true);
    if words > vocab {
        bail!(
            "{}: the tokenizer has {words} words but config.json's vocab_size is {vocab}",
            path.display()
        );
    }
    // Fewer words than rows, but one numbered past the last row, fails deep inside the forward
    // pass ("index-select invalid index") the first time a text holds it.
    let past = tokenizer
        .get_vocab(true)
        .into_iter()
        .filter(|(_, id)| *id as usize >= vocab)
        .max_by_key(|(_, id)| *id);
    if let Some((word, id)) = past {
        bail!(
            "{}: the tokenizer numbers {word:?} as {id}, past the model's {vocab} rows \
             (config.json's vocab_size)",
            path.display()
        );
    }
    Ok(tokenizer)
}
