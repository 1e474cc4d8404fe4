//! LLaMA-family decoders from a `.gguf` file (e.g. SmolLM2-135M-Instruct in Q4_1), with the
//! tokenizer rebuilt from the file's metadata. The forward pass is ours, in candle: quantized
//! matrix products through `QMatMul`, grouped-query attention, RoPE in llama.cpp's layout (GGUF
//! stores Q and K rows permuted for it), RMSNorm and a SiLU-gated MLP. Every layer's attention
//! is returned, and the dial's and rules' biases enter exactly as in our model
//! ([`crate::model::attention::biased_attention`]).

pub mod checks;
mod cursor;
mod forward;
pub mod gemma;
pub mod ggml_type;
mod gguf_spm;
pub mod gguf_tokenizer;
pub(crate) mod gguf_vocab;
mod granite;
pub mod header;
pub mod iq4;
pub(crate) mod meta_read;
pub mod metadata;
pub(crate) mod native;
mod native_block;
mod native_cols;
pub mod native_fast;
mod native_layer;
mod native_rows;
mod norm;
mod read_layer;
mod rope;
mod rope_meta;
mod train_forward;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};

use crate::hf::dense::Dense;
use crate::model::attention::AttentionBias;
use crate::model::backend::{AttentionModel, KvCache, ModelDims, RowStream};
use crate::model::transformer::{ForwardOutput, ModelError};

pub use crate::hf::trainable::{NoDelta, Projection, ProjectionDelta, TrainForward};
use gguf_tokenizer::tokenizer_from_gguf;
pub use metadata::LlamaConfig;
pub(crate) use rope::turned_qk;

/// One decoder layer's weights, dequantized to f32, the projections stored transposed
/// ([`Dense`]).
pub(crate) struct Layer {
    pub(crate) attn_norm: Tensor,
    pub(crate) q: Dense,
    pub(crate) k: Dense,
    pub(crate) v: Dense,
    /// Biases of the q, k and v projections (Qwen2 has them; LLaMA does not).
    pub(crate) qkv_bias: Option<[Tensor; 3]>,
    /// The RMSNorm weights [d_h] of each head's queries and keys (Qwen3's `q_norm`, `k_norm`).
    pub(crate) qk_norm: Option<[Tensor; 2]>,
    /// The RMSNorm weights [d] of attention's and the MLP's outputs before they join the
    /// residual stream (Gemma 2's and 3's `post_attention_layernorm`,
    /// `post_feedforward_layernorm`).
    pub(crate) post_norms: Option<[Tensor; 2]>,
    pub(crate) o: Dense,
    pub(crate) ffn_norm: Tensor,
    /// The biases of the two pre-norms where they are LayerNorms (StableLM; zeros for OLMo 1).
    pub(crate) norm_bias: Option<[Tensor; 2]>,
    pub(crate) gate: Dense,
    pub(crate) up: Dense,
    pub(crate) down: Dense,
}

/// Phi-3's fused matrices cut by rows, as transformers and llama.cpp cut their outputs: `qkv`
/// into q, k and v (`qd`, `kv` and `kv` rows), `gate_up` into gate and up (`ff` rows each).
pub(crate) fn split_fused(
    qkv: &Tensor,
    gate_up: &Tensor,
    (qd, kv, ff): (usize, usize, usize),
) -> candle_core::Result<[Tensor; 5]> {
    let rows = |w: &Tensor, at: usize, n: usize| w.narrow(0, at, n)?.contiguous();
    Ok([
        rows(qkv, 0, qd)?,
        rows(qkv, qd, kv)?,
        rows(qkv, qd + kv, kv)?,
        rows(gate_up, 0, ff)?,
        rows(gate_up, ff, ff)?,
    ])
}

/// What a LLaMA-family decoder is made of, however it was read (a GGUF file here, a Hugging
/// Face folder in [`crate::hf::hf_llama`]).
pub(crate) struct DecoderParts {
    pub(crate) config: LlamaConfig,
    pub(crate) path: PathBuf,
    pub(crate) parameters: usize,
    pub(crate) embed: Tensor,
    pub(crate) head: Dense,
    pub(crate) out_norm: Tensor,
    /// The final norm's bias where it is a LayerNorm.
    pub(crate) out_norm_bias: Option<Tensor>,
    pub(crate) layers: Vec<Layer>,
    pub(crate) tokenizer: tokenizers::Tokenizer,
    pub(crate) device: Device,
}

/// A LLaMA-family decoder with its tokenizer: from a GGUF file ([`GgufLlama::open`]), or the
/// forward of a Hugging Face LLaMA or Qwen2 folder ([`crate::hf::hf_llama::HfLlama`]).
pub struct GgufLlama {
    /// Hyper-parameters.
    pub config: LlamaConfig,
    /// The file it came from.
    pub path: PathBuf,
    /// Number of weights in the file.
    pub parameters: usize,
    embed: Tensor,
    head: Dense,
    out_norm: Tensor,
    out_norm_bias: Option<Tensor>,
    layers: Vec<Layer>,
    tokenizer: tokenizers::Tokenizer,
    /// Where the tensors live.
    pub device: Device,
    /// The layers' weights in bf16 for a preview, made on the first one (None inside: not
    /// offered on this machine).
    fast: std::sync::OnceLock<Option<native_fast::FastWeights>>,
}

impl GgufLlama {
    /// Open a `.gguf` file of a LLaMA-family model (`llama` or `qwen2`). The header is checked first
    /// ([`header::read_header`]), then the hyper-parameters against the limits and the tensors
    /// ([`checks::check_model`]), before candle reads anything or a vector is sized by them;
    /// every weight is checked finite after dequantization.
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        Self::from_read(read_gguf(path)?, path, device)
    }

    /// [`GgufLlama::open`] of the file `path` already read by [`read_gguf`].
    pub(crate) fn from_read(read: ReadGguf, path: &Path, device: &Device) -> Result<Self> {
        let (header, mut file, c) = read;
        let mut config = LlamaConfig::from_gguf(&c, path)?;
        gemma::from_gguf(&c, path, &mut config)?;
        granite::from_gguf(&c, path, &mut config)?;
        let vocab = checks::check_model(&config, &header, path)?;
        let weights =
            crate::hf::memory::weight_count(header.tensors.iter().map(|t| t.shape.as_slice()));
        // A tied head is a transposed copy of the embedding.
        let tied = match header.tensor("output.weight") {
            Some(_) => 0,
            None => (vocab * config.d_model) as u64 * 4,
        };
        crate::hf::memory::check_weights_fit(weights, tied, path)?;
        let tokenizer = metadata_tokenizer(&c, config.arch, vocab, path)?;
        let parameters = weights as usize;
        let mut q = |name: &str| read_tensor(&mut file, &header, &c, name, device, path);
        let (rope_factors, rope_long, context) = rope::factors(&header, &c, &config, path, &mut q)?;
        let embed = q("token_embd.weight")?;
        let head = match header.tensor("output.weight") {
            Some(_) => Dense::new(&q("output.weight")?)?,
            None => Dense::new(&embed)?,
        };
        let (out_norm, out_norm_bias) = read_layer::out_norm(&mut q, &config, device)?;
        let layers = (0..config.layers)
            .map(|l| Layer::read(&mut q, l, &config, device))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: LlamaConfig {
                vocab,
                rope_factors,
                rope_long,
                context,
                ..config
            },
            path: path.to_path_buf(),
            parameters,
            embed,
            head,
            out_norm,
            out_norm_bias,
            layers,
            tokenizer,
            device: device.clone(),
            fast: std::sync::OnceLock::new(),
        })
    }

    /// A decoder from its parts (read and checked by the caller).
    pub(crate) fn from_parts(p: DecoderParts) -> Self {
        Self {
            config: p.config,
            path: p.path,
            parameters: p.parameters,
            embed: p.embed,
            head: p.head,
            out_norm: p.out_norm,
            out_norm_bias: p.out_norm_bias,
            layers: p.layers,
            tokenizer: p.tokenizer,
            device: p.device,
            fast: std::sync::OnceLock::new(),
        }
    }

    /// The tokenizer rebuilt from the metadata.
    pub fn hf_tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text`, with the BOS token first where the metadata asks for it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        crate::hf::encode_ids(&self.tokenizer, text, true)
    }

    /// Text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        crate::hf::decode_ids(&self.tokenizer, ids)
    }

    /// The input-embedding rows (for blocks by k-means), one per vocabulary id.
    pub fn embedding_rows(&self) -> Result<Vec<Vec<f32>>> {
        Ok(self.embed.to_vec2::<f32>()?)
    }
}

impl AttentionModel for GgufLlama {
    fn dims(&self) -> ModelDims {
        let c = &self.config;
        ModelDims {
            layers: c.layers,
            heads: c.heads,
            max_len: c.context,
            vocab: c.vocab,
            causal: true,
            has_logits: true,
        }
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn forward_biased(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        self.forward_with(ids, biases, keep_scores)
    }

    fn forward_attention(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        match self.forward_native(ids, biases, keep_scores, false) {
            Some(out) => out,
            None => self.forward_attention_only(ids, biases, keep_scores),
        }
    }

    fn streams(&self) -> bool {
        true
    }

    fn forward_streamed(
        &self,
        ids: &[u32],
        chunk_rows: usize,
        stream: &mut dyn RowStream,
    ) -> Result<(), ModelError> {
        match self.forward_rows_native(ids, chunk_rows, stream) {
            Some(done) => done,
            None => self.forward_rows_candle(ids, chunk_rows, stream),
        }
    }

    fn step_cached(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        cache: &mut KvCache,
    ) -> Option<Result<Tensor, ModelError>> {
        Some(
            self.forward_cached(ids, biases, false, cache, true)
                .map(|out| out.logits),
        )
    }
}

/// A GGUF file read by [`read_gguf`]: its header, the file open, candle's reading of its
/// metadata and tensor table.
pub(crate) type ReadGguf = (
    header::GgufHeader,
    std::fs::File,
    candle_core::quantized::gguf_file::Content,
);

/// The GGUF file `path`: its header (checked, [`header::read_header`]), the file open, and
/// candle's reading of its metadata and tensor table.
pub(crate) fn read_gguf(path: &Path) -> Result<ReadGguf> {
    let header = header::read_header(path)?;
    let mut file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let c = iq4::content(&mut file, &header)
        .with_context(|| format!("{}: not a readable GGUF file", path.display()))?;
    Ok((header, file, c))
}

/// The tokenizer of `c`'s metadata for architecture `arch`, with no more words than the
/// embedding's `vocab` rows. Contained: the tokenizers crate may panic on metadata it does not
/// expect.
pub(crate) fn metadata_tokenizer(
    c: &candle_core::quantized::gguf_file::Content,
    arch: &str,
    vocab: usize,
    path: &Path,
) -> Result<tokenizers::Tokenizer> {
    let tokenizer =
        crate::contained::contained(|| tokenizer_from_gguf(c, arch, path)).map_err(|p| {
            anyhow::anyhow!(
                "{}: the tokenizer in its metadata failed ({p})",
                path.display()
            )
        })??;
    check_tokenizer(&tokenizer, vocab, path)?;
    Ok(tokenizer)
}

/// Tensor `name` of the GGUF file `path` (open as `file`, its header and candle's reading of
/// it given), dequantized to f32 on `device` and checked finite; an error names the tensor.
pub(crate) fn read_tensor(
    file: &mut std::fs::File,
    header: &header::GgufHeader,
    c: &candle_core::quantized::gguf_file::Content,
    name: &str,
    device: &Device,
    path: &Path,
) -> Result<Tensor> {
    let t = match header.tensor(name).filter(|t| t.dtype.candle().is_none()) {
        Some(ours) => iq4::read(file, ours, device),
        None => (c.tensor(file, name, device))
            .and_then(|t| t.dequantize(device))
            .map_err(anyhow::Error::from),
    }
    .with_context(|| format!("{}: tensor {name}", path.display()))?;
    ensure_finite(&t, name, path)?;
    Ok(t)
}

/// An error naming `file` and `name` when `t` holds a NaN or an infinity.
pub fn ensure_finite(t: &Tensor, name: &str, file: &Path) -> Result<()> {
    if !crate::hf::limits::all_finite(t)
        .with_context(|| format!("{}: tensor {name}", file.display()))?
    {
        anyhow::bail!(
            "{}: tensor {name} holds NaN or infinite weights; the model is damaged",
            file.display()
        );
    }
    Ok(())
}

/// An error when the tokenizer has more words than the embedding has rows (ids past the end
/// would fail deep inside the forward pass, naming nothing).
pub(crate) fn check_tokenizer(
    tok: &tokenizers::Tokenizer,
    vocab: usize,
    file: &Path,
) -> Result<()> {
    let words = tok.get_vocab_size(true);
    if words > vocab {
        anyhow::bail!(
            "{}: the tokenizer (tokenizer.ggml.tokens) has {words} words but token_embd.weight \
             only {vocab} rows",
            file.display()
        );
    }
    Ok(())
}

/// Indices of the `k` largest values, largest first.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx.truncate(k);
    idx
}
