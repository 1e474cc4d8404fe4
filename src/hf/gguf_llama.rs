//! LLaMA-family decoders from a `.gguf` file (e.g. SmolLM2-135M-Instruct in Q4_1), with the
//! tokenizer rebuilt from the file's metadata. The forward pass is ours, in candle: quantized
//! matrix products through `QMatMul`, grouped-query attention, RoPE in llama.cpp's layout (GGUF
//! stores Q and K rows permuted for it), RMSNorm and a SiLU-gated MLP. Every layer's attention
//! is returned, and the dial's and rules' biases enter exactly as in our model
//! ([`crate::model::backend::biased_attention`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::quantized::{gguf_file, QMatMul};
use candle_core::{DType, Device, Module, Tensor};

use crate::model::backend::{biased_attention, AttentionModel, KvCache, ModelDims};
use crate::model::dial::causal_bias;
use crate::model::transformer::{AttentionBias, ForwardOutput, ModelError};

/// Hyper-parameters read from the GGUF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Layers.
    pub layers: usize,
    /// Width d.
    pub d_model: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// MLP width.
    pub ff: usize,
    /// Vocabulary.
    pub vocab: usize,
    /// RMSNorm ε.
    pub rms_eps: f64,
    /// RoPE base.
    pub rope_base: f64,
    /// Context length.
    pub context: usize,
}

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

fn meta<'a>(c: &'a gguf_file::Content, key: &str, file: &Path) -> Result<&'a gguf_file::Value> {
    c.metadata
        .get(key)
        .with_context(|| format!("{}: metadata {key} is missing", file.display()))
}

fn meta_usize(c: &gguf_file::Content, key: &str, file: &Path) -> Result<usize> {
    Ok(meta(c, key, file)?
        .to_u32()
        .with_context(|| format!("{}: metadata {key} is not an integer", file.display()))?
        as usize)
}

fn meta_f32(c: &gguf_file::Content, key: &str, file: &Path) -> Result<f32> {
    meta(c, key, file)?
        .to_f32()
        .with_context(|| format!("{}: metadata {key} is not a number", file.display()))
}

/// Rebuild a byte-level BPE tokenizer from `tokenizer.ggml.*` metadata (`gpt2` models).
fn tokenizer_from_gguf(c: &gguf_file::Content, file: &Path) -> Result<tokenizers::Tokenizer> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::{AddedToken, PreTokenizerWrapper};
    let model = meta(c, "tokenizer.ggml.model", file)?.to_string()?;
    if model != "gpt2" {
        bail!(
            "{}: tokenizer model {model:?} is not supported (only byte-level BPE, \"gpt2\")",
            file.display()
        );
    }
    let tokens: Vec<String> = meta(c, "tokenizer.ggml.tokens", file)?
        .to_vec()?
        .iter()
        .map(|v| v.to_string().cloned())
        .collect::<candle_core::Result<_>>()?;
    let merges: Vec<(String, String)> = meta(c, "tokenizer.ggml.merges", file)?
        .to_vec()?
        .iter()
        .map(|v| {
            let s = v.to_string()?;
            match s.split_once(' ') {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => candle_core::bail!("bad merge {s:?}"),
            }
        })
        .collect::<candle_core::Result<_>>()?;
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().cloned().zip(0u32..).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| anyhow::anyhow!("{}: BPE from metadata: {e}", file.display()))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    // SmolLM's pre-tokenizer ("smollm"): digits one by one, then GPT-2's byte-level split.
    tok.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ]))));
    tok.with_decoder(Some(ByteLevel::default()));
    // Control tokens (type 3) are matched whole.
    if let Ok(types) = meta(c, "tokenizer.ggml.token_type", file).and_then(|v| Ok(v.to_vec()?)) {
        let special: Vec<AddedToken> = types
            .iter()
            .zip(&tokens)
            .filter(|(t, _)| {
                t.to_u32().map(|x| x == 3).unwrap_or(false)
                    || t.to_i32().map(|x| x == 3).unwrap_or(false)
            })
            .map(|(_, s)| AddedToken::from(s.clone(), true))
            .collect();
        let _added = tok.add_special_tokens(special);
    }
    Ok(tok)
}

impl GgufLlama {
    /// Open a `.gguf` file of a LLaMA-family model.
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let c = gguf_file::Content::read(&mut file)
            .with_context(|| format!("{}: not a readable GGUF file", path.display()))?;
        let arch = meta(&c, "general.architecture", path)?.to_string()?.clone();
        if arch != "llama" {
            bail!(
                "{}: architecture {arch:?} is not supported (only LLaMA-family \"llama\")",
                path.display()
            );
        }
        let heads = meta_usize(&c, "llama.attention.head_count", path)?;
        let config = LlamaConfig {
            layers: meta_usize(&c, "llama.block_count", path)?,
            d_model: meta_usize(&c, "llama.embedding_length", path)?,
            heads,
            kv_heads: meta_usize(&c, "llama.attention.head_count_kv", path).unwrap_or(heads),
            ff: meta_usize(&c, "llama.feed_forward_length", path)?,
            vocab: 0,
            rms_eps: meta_f32(&c, "llama.attention.layer_norm_rms_epsilon", path)? as f64,
            rope_base: meta_f32(&c, "llama.rope.freq_base", path).unwrap_or(10_000.0) as f64,
            context: meta_usize(&c, "llama.context_length", path)?,
        };
        let parameters: usize = c.tensor_infos.values().map(|t| t.shape.elem_count()).sum();
        let mut q = |name: &str| -> Result<candle_core::quantized::QTensor> {
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
        let mut layers = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            let p = format!("blk.{l}");
            // Weights are dequantized to f32 once: the products then match the reference
            // (transformers on the dequantized weights), which quantized products with 8-bit
            // activations do not quite (top-5 order moved).
            let mm = |t: candle_core::quantized::QTensor| -> Result<QMatMul> {
                Ok(QMatMul::Tensor(t.dequantize(device)?))
            };
            layers.push(Layer {
                attn_norm: q(&format!("{p}.attn_norm.weight"))?.dequantize(device)?,
                q: mm(q(&format!("{p}.attn_q.weight"))?)?,
                k: mm(q(&format!("{p}.attn_k.weight"))?)?,
                v: mm(q(&format!("{p}.attn_v.weight"))?)?,
                o: mm(q(&format!("{p}.attn_output.weight"))?)?,
                ffn_norm: q(&format!("{p}.ffn_norm.weight"))?.dequantize(device)?,
                gate: mm(q(&format!("{p}.ffn_gate.weight"))?)?,
                up: mm(q(&format!("{p}.ffn_up.weight"))?)?,
                down: mm(q(&format!("{p}.ffn_down.weight"))?)?,
            });
        }
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

    /// Forward over `ids` with one [`AttentionBias`] per layer (an empty slice: the plain model,
    /// causal mask only): logits [1,T,V], attention per layer [1,H,T,T] and, when
    /// `keep_scores`, the biased scores.
    pub fn forward_with(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        let mut cache = KvCache::default();
        self.forward_cached(ids, biases, keep_scores, &mut cache)
    }

    /// Forward over the new tokens `ids` at positions P..P+n, where P is what `cache` already
    /// holds (0 for an empty cache), appending their keys and values to it. Each bias covers
    /// rows P..P+n and keys 0..P+n ([`AttentionBias::rows`] cuts them from a whole sequence's).
    /// Returns logits [1,n,V] and attention [1,H,n,P+n] per layer. Over one step at a time
    /// this is the same computation as one forward over the whole sequence (rows are causal),
    /// at a fraction of the cost.
    pub fn forward_cached(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
        cache: &mut KvCache,
    ) -> Result<ForwardOutput, ModelError> {
        let c = &self.config;
        let n = ids.len();
        let p = cache.len();
        let t = p + n;
        if n == 0 {
            return Err(ModelError::Input("empty input".into()));
        }
        if t > c.context {
            return Err(ModelError::TooLong(t, c.context));
        }
        let (h, kvh) = (c.heads, c.kv_heads);
        let dh = c.d_model / h;
        let dev = &self.device;
        let input = Tensor::from_vec(ids.to_vec(), n, dev)?;
        let mut x = self.embed.embedding(&input)?.unsqueeze(0)?; // [1,n,d]
        let (cos, sin) = self.rope_tables(p, n)?;
        let causal = if biases.len() < c.layers {
            let full = causal_bias(t);
            let rows = full.get(p * t..).unwrap_or_default().to_vec();
            Some(Tensor::from_vec(rows, (1, 1, n, t), dev)?)
        } else {
            None
        };
        let scale = 1.0 / (dh as f64).sqrt();
        let mut out = ForwardOutput {
            logits: x.clone(),
            attention: Vec::with_capacity(c.layers),
            scores: Vec::new(),
            queries: Vec::new(),
        };
        cache.layers.resize_with(c.layers, || None);
        for ((l, layer), slot) in self.layers.iter().enumerate().zip(&mut cache.layers) {
            let hx = candle_nn::ops::rms_norm(&x, &layer.attn_norm, c.rms_eps as f32)?;
            let split = |m: &QMatMul, heads: usize| -> candle_core::Result<Tensor> {
                m.forward(&hx)?
                    .reshape((1, n, heads, dh))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = candle_nn::rotary_emb::rope_i(&split(&layer.q, h)?, &cos, &sin)?;
            let k_new = candle_nn::rotary_emb::rope_i(&split(&layer.k, kvh)?, &cos, &sin)?;
            let v_new = split(&layer.v, kvh)?;
            let (k, v) = match slot.take() {
                Some((k0, v0)) => (
                    Tensor::cat(&[&k0, &k_new], 2)?,
                    Tensor::cat(&[&v0, &v_new], 2)?,
                ),
                None => (k_new, v_new),
            };
            *slot = Some((k.clone(), v.clone()));
            // Grouped-query attention: each key/value head serves h / kvh query heads.
            let rep = h / kvh.max(1);
            let expand = |x: Tensor| -> candle_core::Result<Tensor> {
                if rep == 1 {
                    return Ok(x);
                }
                x.unsqueeze(2)?
                    .expand((1, kvh, rep, t, dh))?
                    .reshape((1, h, t, dh))
            };
            let (k, v) = (expand(k)?, expand(v)?);
            let s = (q.matmul(&k.t()?)? * scale)?;
            let (a, z) = biased_attention(&s, biases.get(l), causal.as_ref(), |z| {
                candle_nn::ops::softmax_last_dim(z)
            })?;
            let y = a
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((1, n, c.d_model))?;
            x = (x + layer.o.forward(&y)?)?;
            let hx = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, c.rms_eps as f32)?;
            let g = candle_nn::ops::silu(&layer.gate.forward(&hx)?)?;
            let f = layer.down.forward(&(g * layer.up.forward(&hx)?)?)?;
            x = (x + f)?;
            out.attention.push(a);
            if keep_scores {
                out.scores.push(z);
            }
        }
        cache.len = t;
        let x = candle_nn::ops::rms_norm(&x, &self.out_norm, c.rms_eps as f32)?;
        out.logits = self.head.forward(&x)?;
        Ok(out)
    }

    /// RoPE tables (cos, sin) [n, d_h/2] of positions p..p+n.
    fn rope_tables(&self, p: usize, n: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let c = &self.config;
        let dh = c.d_model / c.heads;
        let dev = &self.device;
        let inv: Vec<f32> = (0..dh / 2)
            .map(|i| 1.0 / c.rope_base.powf(2.0 * i as f64 / dh as f64) as f32)
            .collect();
        let inv = Tensor::from_vec(inv, (1, dh / 2), dev)?;
        let pos = Tensor::arange(p as u32, (p + n) as u32, dev)?
            .to_dtype(DType::F32)?
            .reshape((n, 1))?;
        let freqs = pos.broadcast_mul(&inv)?;
        Ok((freqs.cos()?, freqs.sin()?))
    }

    /// The input-embedding rows (for blocks by k-means), one per vocabulary id.
    pub fn embedding_rows(&self) -> Result<Vec<Vec<f32>>> {
        Ok(self.embed.to_vec2::<f32>()?)
    }

    /// The logits of the token after `ids` [V] (the plain model).
    pub fn next_logits(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let out = self.forward_with(ids, &[], false)?;
        let t = ids.len();
        Ok(out
            .logits
            .squeeze(0)?
            .narrow(0, t - 1, 1)?
            .squeeze(0)?
            .to_vec1::<f32>()?)
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
