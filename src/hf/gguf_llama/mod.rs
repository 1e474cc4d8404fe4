//! LLaMA-family decoders from a `.gguf` file (e.g. SmolLM2-135M-Instruct in Q4_1), with the
//! tokenizer rebuilt from the file's metadata. The forward pass is ours, in candle: quantized
//! matrix products through `QMatMul`, grouped-query attention, RoPE in llama.cpp's layout (GGUF
//! stores Q and K rows permuted for it), RMSNorm and a SiLU-gated MLP. Every layer's attention
//! is returned, and the dial's and rules' biases enter exactly as in our model
//! ([`crate::model::attention::biased_attention`]).

mod forward;
pub mod metadata;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{Device, Tensor};

use crate::model::attention::AttentionBias;
use crate::model::backend::{AttentionModel, KvCache, ModelDims};
use crate::model::transformer::{ForwardOutput, ModelError};

use metadata::tokenizer_from_gguf;
pub use metadata::LlamaConfig;

/// One decoder layer's weights, dequantized to f32.
struct Layer {
    attn_norm: Tensor,
    q: QMatMul,
    k: QMatMul,
    v: QMatMul,
    o: QMatMul,
    ffn_norm: Tensor,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

impl Layer {
    /// Layer `l`'s weights through `q` (which reads a named tensor of the file). They are
    /// dequantized to f32 once: the products then match the reference (transformers on the
    /// dequantized weights), which quantized products with 8-bit activations do not quite
    /// (top-5 order moved).
    fn read(
        q: &mut impl FnMut(&str) -> Result<QTensor>,
        l: usize,
        device: &Device,
    ) -> Result<Self> {
        let mut f = |name: &str| -> Result<Tensor> {
            Ok(q(&format!("blk.{l}.{name}.weight"))?.dequantize(device)?)
        };
        Ok(Self {
            attn_norm: f("attn_norm")?,
            q: QMatMul::Tensor(f("attn_q")?),
            k: QMatMul::Tensor(f("attn_k")?),
            v: QMatMul::Tensor(f("attn_v")?),
            o: QMatMul::Tensor(f("attn_output")?),
            ffn_norm: f("ffn_norm")?,
            gate: QMatMul::Tensor(f("ffn_gate")?),
            up: QMatMul::Tensor(f("ffn_up")?),
            down: QMatMul::Tensor(f("ffn_down")?),
        })
    }
}

/// A quantized LLaMA-family decoder with its tokenizer.
pub struct GgufLlama {
    /// Hyper-parameters.
    pub config: LlamaConfig,
    /// The file it came from.
    pub path: PathBuf,
    /// Number of weights in the file.
    pub parameters: usize,
    embed: Tensor,
    head: QMatMul,
    out_norm: Tensor,
    layers: Vec<Layer>,
    tokenizer: tokenizers::Tokenizer,
    /// Where the tensors live.
    pub device: Device,
}

impl GgufLlama {
    /// Open a `.gguf` file of a LLaMA-family model.
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let c = gguf_file::Content::read(&mut file)
            .with_context(|| format!("{}: not a readable GGUF file", path.display()))?;
        let config = LlamaConfig::from_gguf(&c, path)?;
        let parameters: usize = c.tensor_infos.values().map(|t| t.shape.elem_count()).sum();
        let mut q = |name: &str| -> Result<QTensor> {
            c.tensor(&mut file, name, device)
                .with_context(|| format!("{}: tensor {name}", path.display()))
        };
        let embed_q = q("token_embd.weight")?;
        let embed = embed_q.dequantize(device)?;
        let vocab = embed.dim(0)?;
        drop(embed_q);
        let head = match q("output.weight") {
            Ok(t) => QMatMul::Tensor(t.dequantize(device)?),
            Err(_) => QMatMul::Tensor(embed.clone()),
        };
        let out_norm = q("output_norm.weight")?.dequantize(device)?;
        let layers = (0..config.layers)
            .map(|l| Layer::read(&mut q, l, device))
            .collect::<Result<Vec<_>>>()?;
        let tokenizer = tokenizer_from_gguf(&c, path)?;
        Ok(Self {
            config: LlamaConfig { vocab, ..config },
            path: path.to_path_buf(),
            parameters,
            embed,
            head,
            out_norm,
            layers,
            tokenizer,
            device: device.clone(),
        })
    }

    /// The tokenizer rebuilt from the metadata.
    pub fn hf_tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text` (no BOS is added: the model's metadata says so).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        crate::hf::encode_ids(&self.tokenizer, text, false)
    }

    /// Text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| anyhow::anyhow!("decoding: {e}"))
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

    fn step_cached(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        cache: &mut KvCache,
    ) -> Option<Result<Tensor, ModelError>> {
        Some(
            self.forward_cached(ids, biases, false, cache)
                .map(|out| out.logits),
        )
    }
}

/// Indices of the `k` largest values, largest first.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx.truncate(k);
    idx
}
