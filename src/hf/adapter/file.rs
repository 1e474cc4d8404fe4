//! The adapter folder on disk: written atomically, read back with every name, shape and value
//! checked, applied only to the base it was made for.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{param_name, Adapter, AdapterSpec, ChangeKind};
use crate::hf::ImportedModel;
use crate::model::blocks::BlockMap;
use crate::model::params::ParamStore;

/// The `format` of every `adapter.json`.
pub const ADAPTER_FORMAT: &str = "localist-adapter";

/// The base model an adapter was made for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaseRef {
    /// Where it was (absolute when it was written).
    pub path: PathBuf,
    /// Its SHA-256 ([`crate::hf::model_sha256`]).
    pub sha256: String,
    /// Its architecture ("llama", "qwen2").
    pub arch: String,
}

/// `adapter.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterInfo {
    /// Always [`ADAPTER_FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The base.
    pub base: BaseRef,
    /// What changed.
    pub spec: AdapterSpec,
    /// How it was trained (λ_train, steps, corpus and its hash, held-out metrics).
    #[serde(default)]
    pub training: serde_json::Value,
}

/// A base model with an adapter merged into it.
pub struct Adapted {
    /// The base, its weights changed by the adapter.
    pub base: ImportedModel,
    /// The adapter's folder.
    pub dir: PathBuf,
    /// Its `adapter.json`.
    pub info: AdapterInfo,
}

/// Write the adapter folder `dir` atomically (a temporary sibling renamed into place).
pub fn save_adapter(
    dir: &Path,
    info: &AdapterInfo,
    adapter: &Adapter,
    blocks: &BlockMap,
) -> Result<()> {
    crate::files::replace_dir(
        dir,
        |p, e| anyhow::anyhow!("{}: {e}", p.display()),
        |tmp| {
            let tensors: HashMap<String, Tensor> = adapter.params.tensors().into_iter().collect();
            crate::model::checkpoint::write_tensors(&tmp.join("adapter.safetensors"), &tensors)
                .with_context(|| format!("{}: writing adapter.safetensors", dir.display()))?;
            let write = |file: &str, text: String| {
                fs::write(tmp.join(file), text)
                    .with_context(|| format!("{}: writing {file}", dir.display()))
            };
            write("adapter.json", serde_json::to_string_pretty(info)?)?;
            write("blocks.json", serde_json::to_string_pretty(blocks)?)
        },
    )
}

/// Read `dir`'s `adapter.json`.
pub fn read_info(dir: &Path) -> Result<AdapterInfo> {
    let path = dir.join("adapter.json");
    let text = crate::files::read_text(&path, crate::files::MAX_CONFIG_BYTES, "an adapter.json")?;
    crate::files::check_single_keys(&text)
        .map_err(|m| anyhow::anyhow!("{}: {m}", path.display()))?;
    let info: AdapterInfo = serde_json::from_str(&text)
        .with_context(|| format!("{}: not an adapter description", path.display()))?;
    if info.format != ADAPTER_FORMAT {
        bail!(
            "{}: format is \"{}\", expected \"{ADAPTER_FORMAT}\"",
            path.display(),
            info.format
        );
    }
    Ok(info)
}

/// Where the base is: its recorded path, or (when that is relative and not found) the same
/// path from the adapter's folder.
fn base_path(dir: &Path, info: &AdapterInfo) -> Result<PathBuf> {
    let recorded = &info.base.path;
    if recorded.exists() {
        return Ok(recorded.clone());
    }
    let beside = dir.join(recorded);
    if recorded.is_relative() && beside.exists() {
        return Ok(beside);
    }
    bail!(
        "{}: its base model {} is not there (SHA-256 {}); put the base back at that path",
        dir.join("adapter.json").display(),
        recorded.display(),
        info.base.sha256
    )
}

/// Open the adapter folder `dir`: its base (refused when its SHA-256 is not the recorded one),
/// with the changes merged in.
pub fn open_adapted(dir: &Path, device: &Device) -> Result<Adapted> {
    let info = read_info(dir)?;
    let base = base_path(dir, &info)?;
    let got = crate::hf::model_sha256(&base)?;
    if got != info.base.sha256 {
        bail!(
            "{}: made for the base {} with SHA-256 {}, but that model's SHA-256 is now {got}; \
             refusing to apply it to a different model",
            dir.display(),
            base.display(),
            info.base.sha256
        );
    }
    // An adapter's base may itself be an adapter (a specialist grown on a fine-tuned base),
    // opened by the same recursion; a chain of 1,000 ran the stack out, so depth is bounded.
    let _depth = Depth::enter().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: adapters stacked more than {MAX_DEPTH} levels deep (an adapter whose base, \
             {}, is an adapter, and so on); a chain this long is refused",
            dir.join("adapter.json").display(),
            base.display()
        )
    })?;
    let mut model = ImportedModel::open(&base, device)?;
    let arch = model.arch_label();
    let decoder = model.trainable_mut().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: its base {} is a {arch} model; adapters apply to decoders (LLaMA family, \
             GPT-2)",
            dir.display(),
            base.display()
        )
    })?;
    let adapter = read_adapter(dir, &info, decoder, device)?;
    adapter
        .merge_into(decoder)
        .with_context(|| format!("{}: applying the adapter", dir.display()))?;
    check_merged(dir, &info, decoder)?;
    Ok(Adapted {
        base: model,
        dir: dir.to_path_buf(),
        info,
    })
}

/// The adapter's tensors, checked against its spec and the base's shapes.
fn read_adapter(
    dir: &Path,
    info: &AdapterInfo,
    base: &dyn crate::hf::trainable::TrainableDecoder,
    device: &Device,
) -> Result<Adapter> {
    let file = dir.join("adapter.safetensors");
    let mut tensors = crate::model::checkpoint::read_tensors(&file, device)?;
    let mut params = ParamStore::new();
    let layers = base.num_layers();
    for (i, &(l, p)) in info.spec.targets.iter().enumerate() {
        if info
            .spec
            .targets
            .get(..i)
            .is_some_and(|seen| seen.contains(&(l, p)))
        {
            bail!(
                "{}: names the change to layer {l}'s {p:?} twice",
                dir.join("adapter.json").display()
            );
        }
        if l >= layers {
            bail!(
                "{}: names layer {l}, but the base has {layers} layers",
                dir.join("adapter.json").display()
            );
        }
        let (out, inp) = base.projection(l, p)?.dims2()?;
        let parts: Vec<(&str, (usize, usize))> = match info.spec.change {
            ChangeKind::Full => vec![("delta", (out, inp))],
            ChangeKind::Lora { rank, .. } => vec![("lora_a", (rank, inp)), ("lora_b", (out, rank))],
        };
        for (part, shape) in parts {
            let name = param_name(l, p, part);
            let t = tensors
                .remove(&name)
                .ok_or_else(|| anyhow::anyhow!("{}: tensor {name} is missing", file.display()))?;
            if t.dtype() != candle_core::DType::F32 {
                bail!(
                    "{}: tensor {name} is {:?}; adapters hold f32 tensors",
                    file.display(),
                    t.dtype()
                );
            }
            if t.dims2().ok() != Some(shape) {
                bail!(
                    "{}: tensor {name} is {:?}, expected {:?}",
                    file.display(),
                    t.dims(),
                    [shape.0, shape.1]
                );
            }
            params.insert(&name, &t)?;
        }
    }
    if let Some(extra) = tensors.keys().next() {
        bail!(
            "{}: tensor {extra} is not in adapter.json's list of changes",
            file.display()
        );
    }
    Ok(Adapter {
        spec: info.spec.clone(),
        params,
    })
}

/// Most adapters stacked on one another (an adapter whose base is an adapter, …).
const MAX_DEPTH: usize = 8;

thread_local! {
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One level of adapters being opened on this thread; the level is left when dropped.
struct Depth;

impl Depth {
    /// Enter a level, or `None` past [`MAX_DEPTH`].
    fn enter() -> Option<Self> {
        DEPTH.with(|d| {
            (d.get() < MAX_DEPTH).then(|| {
                d.set(d.get() + 1);
                Depth
            })
        })
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Every weight the adapter changed is finite once merged: a finite change can still overflow
/// f32 (a LoRA scale α/r of 1e39 is +∞), and the forward pass would then run on NaN.
fn check_merged(
    dir: &Path,
    info: &AdapterInfo,
    decoder: &dyn crate::hf::trainable::TrainableDecoder,
) -> Result<()> {
    for &(l, p) in &info.spec.targets {
        let w = decoder.projection(l, p)?;
        if !crate::hf::limits::all_finite(&w)? {
            bail!(
                "{}: merged into the base, its change to layer {l}'s {p:?} leaves weights that \
                 are not finite (NaN or beyond f32's range: check the adapter's tensors and its \
                 LoRA alpha)",
                dir.join("adapter.json").display()
            );
        }
    }
    Ok(())
}
