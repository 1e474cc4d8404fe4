//! LLaMA-architecture, Mistral, Phi-3, Qwen2 and Qwen3 decoders from a Hugging Face folder
//! (`config.json`, `model.safetensors`, `tokenizer.json`): SmolLM2's or TinyLlama's own
//! release, Mistral, Qwen2, Qwen2.5 and Qwen3. They run through the same forward as the GGUF
//! decoder ([`GgufLlama`]: RMSNorm, grouped-query attention under the dial's biases,
//! SiLU-gated MLP, KV cache, streamed rows), with RoPE in Hugging Face's half-rotation layout,
//! Qwen2's q/k/v biases, Qwen3's per-head q/k norms and head width, Phi-3's fused q/k/v and
//! gate/up matrices (cut apart at load), Mistral's and Phi-3's window as the context, RoPE
//! scaling of every kind transformers knows and Phi-3's and StableLM's partial rotation
//! ([`rope`], [`rotary`]), StableLM's and OLMo 1's LayerNorms, and a tied or an untied output
//! head. The config is checked against the limits and the safetensors header before any weight
//! is read; every weight is checked finite.

mod config;
pub mod gemma;
mod gemma3;
mod olmo3;
mod rope;
mod rotary;
mod shape;
mod tensors;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};

pub use config::HfLlamaConfig;

use crate::hf::dense::Dense;
use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gguf_llama::{split_fused, turned_qk, DecoderParts, GgufLlama, Layer, LlamaConfig};

/// A LLaMA, Mistral, Phi-3, Qwen2, Qwen3 or Gemma decoder opened from a Hugging Face folder.
pub struct HfLlama {
    /// The folder it came from.
    pub dir: PathBuf,
    /// LLaMA, Mistral, Phi-3, Qwen2, Qwen3, Gemma, Gemma 2 or Gemma 3.
    pub family: Family,
    /// The forward pass.
    pub decoder: GgufLlama,
    /// Whether it is the text decoder of a multimodal checkpoint (Gemma 3's).
    pub multimodal: bool,
}

/// A family's config as the loader needs it.
enum FamilyConfig {
    /// LLaMA, Mistral, Phi-3, Qwen2, Qwen3.
    Llama(Box<HfLlamaConfig>),
    /// Gemma 1, 2, 3.
    Gemma(Box<gemma::GemmaConfig>),
}

impl FamilyConfig {
    /// The `config.json` at `path` of a `family` model, checked.
    fn read(path: &Path, family: Family) -> Result<Self> {
        let named = |e: String| anyhow::anyhow!("{}: {e}", path.display());
        Ok(if family.is_gemma() {
            let c = gemma::GemmaConfig::read(path, family)?;
            c.check(family).map_err(named)?;
            Self::Gemma(Box::new(c))
        } else {
            let c: HfLlamaConfig = folder::read_config(path, family.model_type())?;
            c.check().map_err(named)?;
            Self::Llama(Box::new(c))
        })
    }

    /// The decoder's hyper-parameters, the tensors to read, and whether the head is tied.
    fn plan(&self, family: Family) -> (LlamaConfig, Vec<(String, Vec<usize>)>, bool) {
        match self {
            Self::Llama(c) => (
                c.decoder_config(),
                c.expected_shapes(family),
                c.tie_word_embeddings,
            ),
            Self::Gemma(c) => (
                c.decoder_config(family),
                c.expected_shapes(family),
                c.tie_word_embeddings,
            ),
        }
    }
}

impl HfLlama {
    /// Open the folder `dir` of a `family` model (LLaMA, Mistral, Phi-3, Qwen2, Qwen3 or
    /// Gemma).
    pub fn open(dir: &Path, family: Family, device: &Device) -> Result<Self> {
        let weights = folder::weights(dir)?;
        let read = FamilyConfig::read(&dir.join("config.json"), family)?;
        let (config, want, tied) = read.plan(family);
        // A multimodal Gemma 3's decoder is read from under its `language_model` prefix (the
        // vision tower is not read): the names checked and read less `model.`, kept with it.
        let multimodal = matches!(&read, FamilyConfig::Gemma(c) if c.multimodal);
        let (rename, file_want): (fn(&str) -> &str, Vec<_>) = match multimodal {
            true => (
                language_model,
                want.iter().map(|(n, s)| (unmodel(n), s.clone())).collect(),
            ),
            false => (same, want),
        };
        folder::check_declared(
            &folder::declared(&weights, rename)?,
            &file_want,
            &weights.path,
        )?;
        let mut t = folder::load_f32(&weights, device, rename, &file_want)?;
        if multimodal {
            t = t
                .into_iter()
                .map(|(k, v)| (format!("model.{k}"), v))
                .collect();
        }
        let tokenizer = folder::read_tokenizer(&dir.join("tokenizer.json"), config.vocab)?;
        let parameters = t.values().map(Tensor::elem_count).sum();
        let file = &weights.path;
        let layers = (0..config.layers)
            .map(|l| match &read {
                FamilyConfig::Llama(c) => read_layer(&mut t, l, (family, c), (file, device)),
                FamilyConfig::Gemma(_) => gemma::read_layer(&mut t, l, family, file),
            })
            .collect::<Result<Vec<_>>>()?;
        let embed = folder::take(&mut t, "model.embed_tokens.weight", file)?;
        let head = Dense::new(&if tied {
            embed.clone()
        } else {
            folder::take(&mut t, "lm_head.weight", file)?
        })?;
        let (out_norm, out_norm_bias) = match family {
            // OLMo 1's LayerNorm has no weight or bias.
            Family::Olmo => {
                let ones = Tensor::ones(config.d_model, DType::F32, device)?;
                (ones.clone(), Some(ones.zeros_like()?))
            }
            Family::StableLm => (
                folder::take(&mut t, "model.norm.weight", file)?,
                Some(folder::take(&mut t, "model.norm.bias", file)?),
            ),
            f if f.is_gemma() => (
                gemma::one_plus(folder::take(&mut t, "model.norm.weight", file)?)?,
                None,
            ),
            _ => (folder::take(&mut t, "model.norm.weight", file)?, None),
        };
        let decoder = GgufLlama::from_parts(DecoderParts {
            config,
            path: dir.to_path_buf(),
            parameters,
            embed,
            head,
            out_norm,
            out_norm_bias,
            layers,
            tokenizer,
            device: device.clone(),
        });
        Ok(Self {
            dir: dir.to_path_buf(),
            family,
            decoder,
            multimodal,
        })
    }

    /// What the folder holds, in a phrase (the studio's "kind").
    pub fn label(&self) -> &'static str {
        match self.multimodal {
            true => {
                "Gemma 3 decoder (the text part of a multimodal checkpoint; Hugging Face \
                     safetensors)"
            }
            false => self.family.folder_label(),
        }
    }

    /// Token ids of `text` as `transformers` gives them (with the special tokens its
    /// tokenizer adds, e.g. TinyLlama's `<s>`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        crate::hf::encode_ids(self.decoder.hf_tokenizer(), text, true)
    }
}

/// Names as written (LLaMA exports put no prefix on them).
fn same(name: &str) -> &str {
    name
}

/// A multimodal Gemma 3's decoder weight without its prefix (`language_model.model.` as the
/// published checkpoints name them, `model.language_model.` as others do).
fn language_model(name: &str) -> &str {
    ["language_model.model.", "model.language_model."]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name)
}

/// A decoder weight's name less its `model.`.
fn unmodel(name: &str) -> String {
    name.strip_prefix("model.").unwrap_or(name).to_string()
}

/// Layer `l`'s weights out of `t` (checked present and shaped by the header check).
fn read_layer(
    t: &mut std::collections::HashMap<String, Tensor>,
    l: usize,
    (family, config): (Family, &HfLlamaConfig),
    (file, device): (&Path, &Device),
) -> Result<Layer> {
    let p = format!("model.layers.{l}");
    let mut take = |name: &str| {
        folder::take(t, &format!("{p}.{name}"), file).with_context(|| format!("layer {l}"))
    };
    let qkv_bias = match config.qkv_bias(family) {
        true => Some([
            take("self_attn.q_proj.bias")?,
            take("self_attn.k_proj.bias")?,
            take("self_attn.v_proj.bias")?,
        ]),
        false => None,
    };
    let qk_norm = match family {
        Family::Qwen3 | Family::Olmo2 | Family::Olmo3 => Some([
            take("self_attn.q_norm.weight")?,
            take("self_attn.k_norm.weight")?,
        ]),
        _ => None,
    };
    let (attn_norm, ffn_norm, post_norms, norm_bias) =
        layer_norms(&mut take, family, (config.hidden_size, device))?;
    let [q, k, v, gate, up] = match family {
        Family::Phi3 => {
            let dh = config.head_width();
            let rows = (
                config.num_attention_heads * dh,
                config.kv_heads() * dh,
                config.intermediate_size,
            );
            let qkv = take("self_attn.qkv_proj.weight")?;
            split_fused(&qkv, &take("mlp.gate_up_proj.weight")?, rows)?
        }
        _ => [
            take("self_attn.q_proj.weight")?,
            take("self_attn.k_proj.weight")?,
            take("self_attn.v_proj.weight")?,
            take("mlp.gate_proj.weight")?,
            take("mlp.up_proj.weight")?,
        ],
    };
    // Phi-3's and StableLM's partial rotation: each head's turned dimensions first in each
    // half, in the q and k rows and their biases alike.
    let dims = config.rotary_dims().map_err(anyhow::Error::msg)?;
    let dh = config.head_width();
    let (q, k, qkv_bias) = turned_qk((&q, &k), qkv_bias, (dh, dims))?;
    Ok(Layer {
        attn_norm,
        q: Dense::new(&q)?,
        k: Dense::new(&k)?,
        v: Dense::new(&v)?,
        qkv_bias,
        qk_norm,
        post_norms,
        o: Dense::new(&take("self_attn.o_proj.weight")?)?,
        ffn_norm,
        norm_bias,
        gate: Dense::new(&gate)?,
        up: Dense::new(&up)?,
        down: Dense::new(&take("mlp.down_proj.weight")?)?,
    })
}

/// A layer's pre-norm weights [d] (attention's, the MLP's), its post-norms and its pre-norms'
/// biases.
type Norms = (Tensor, Tensor, Option<[Tensor; 2]>, Option<[Tensor; 2]>);

/// A layer's norms as `family` has them, read through `take` (a tensor of the layer by its
/// name); `d`: the width, for OLMo 1's made ones.
fn layer_norms(
    take: &mut impl FnMut(&str) -> Result<Tensor>,
    family: Family,
    (d, device): (usize, &Device),
) -> Result<Norms> {
    // OLMo 2 norms only the sub-layers' outputs: its pre-norm slots are never read
    // (`LlamaConfig::pre_norms`), and hold ones.
    Ok(match family {
        Family::Olmo2 | Family::Olmo3 => {
            let post = [
                take("post_attention_layernorm.weight")?,
                take("post_feedforward_layernorm.weight")?,
            ];
            let ones = post[0].ones_like()?;
            (ones.clone(), ones, Some(post), None)
        }
        // OLMo 1's LayerNorms have no weights or biases: weight 1, bias 0.
        Family::Olmo => {
            let ones = Tensor::ones(d, DType::F32, device)?;
            let zeros = ones.zeros_like()?;
            (ones.clone(), ones, None, Some([zeros.clone(), zeros]))
        }
        Family::StableLm => (
            take("input_layernorm.weight")?,
            take("post_attention_layernorm.weight")?,
            None,
            Some([
                take("input_layernorm.bias")?,
                take("post_attention_layernorm.bias")?,
            ]),
        ),
        _ => (
            take("input_layernorm.weight")?,
            take("post_attention_layernorm.weight")?,
            None,
            None,
        ),
    })
}
