//! BERT-family encoders from a Hugging Face folder: `config.json`, `model.safetensors` (or its
//! shards, or `pytorch_model.bin` read weights-only) and `tokenizer.json`. BERT, RoBERTa (XLM-RoBERTa, CamemBERT)
//! and DistilBERT are one post-LayerNorm block read from their own names ([`config`]);
//! ModernBERT's pre-LayerNorm block with RoPE and local layers has a forward of its own
//! ([`modern`]). The forward pass is ours, in candle, and returns every
//! layer's attention; an optional additive bias per layer ([B,1,T,T] or [B,H,T,T]) enters the
//! scores before the softmax exactly as the dial and rule biases do in our own model
//! ([`crate::model::attention::biased_attention`]); the dial sees it as bidirectional.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{DType, Device, Tensor, D};

mod config;
mod distil;
mod modern;

pub use config::{BertConfig, EncoderKind};
pub use distil::{bert_name, DistilBertConfig};

use crate::hf::folder;
use crate::model::attention::{biased_attention, AttentionBias};
use crate::model::backend::{AttentionModel, ModelDims};
use crate::model::transformer::{ForwardOutput, ModelError};

/// A BERT encoder with its tokenizer.
pub struct Bert {
    /// Its configuration.
    pub config: BertConfig,
    /// The folder it came from.
    pub dir: PathBuf,
    tensors: HashMap<String, Tensor>,
    tokenizer: tokenizers::Tokenizer,
    /// Where the tensors live.
    pub device: Device,
}

impl Bert {
    /// Open a Hugging Face folder. Missing files, a damaged or hostile `pytorch_model.bin`, or
    /// another architecture are errors that name the file and say what is supported. The config
    /// is checked against the limits and the safetensors header before any weight is loaded;
    /// every weight is checked finite.
    pub fn open(dir: &Path, device: &Device) -> Result<Self> {
        let weights = folder::weights(dir)?;
        let config = BertConfig::read(&dir.join("config.json"))?;
        // Checked and read by the names the file has (less a model's prefix); kept by the
        // names BERT's forward reads (DistilBERT's renamed).
        let want = config.file_shapes();
        folder::check_declared(
            &folder::declared(&weights, unprefixed)?,
            &want,
            &weights.path,
        )?;
        let tensors = folder::load_f32(&weights, device, unprefixed, &want)?
            .into_iter()
            .map(|(k, t)| (bert_name(&k), t))
            .collect();
        let tokenizer =
            crate::hf::folder::read_tokenizer(&dir.join("tokenizer.json"), config.vocab_size)?;
        Ok(Self {
            config,
            dir: dir.to_path_buf(),
            tensors,
            tokenizer,
            device: device.clone(),
        })
    }

    fn t(&self, name: &str) -> Result<&Tensor, ModelError> {
        self.tensors
            .get(name)
            .ok_or_else(|| ModelError::Missing(name.to_string()))
    }

    /// Its tokenizer.
    pub fn hf_tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Number of weights.
    pub fn parameters(&self) -> usize {
        self.tensors.values().map(|t| t.elem_count()).sum()
    }

    /// The word-embedding rows, one per vocabulary id.
    pub fn embedding_rows(&self) -> Result<Vec<Vec<f32>>> {
        let name = match self.config.kind {
            EncoderKind::ModernBert => "embeddings.tok_embeddings.weight",
            _ => "embeddings.word_embeddings.weight",
        };
        Ok(self.t(name)?.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }

    /// Token ids of `text` with the tokenizer's special tokens ([CLS] … [SEP]).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        crate::hf::encode_ids(&self.tokenizer, text, true)
    }

    /// The token strings of `ids`.
    pub fn tokens(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&i| {
                self.tokenizer
                    .id_to_token(i)
                    .unwrap_or_else(|| format!("#{i}"))
            })
            .collect()
    }

    fn linear(&self, x: &Tensor, prefix: &str) -> Result<Tensor, ModelError> {
        let w = self.t(&format!("{prefix}.weight"))?;
        let b = self.t(&format!("{prefix}.bias"))?;
        let (bsz, t, din) = x.dims3()?;
        let y = x
            .reshape((bsz * t, din))?
            .matmul(&w.t()?)?
            .broadcast_add(b)?;
        Ok(y.reshape((bsz, t, w.dim(0)?))?)
    }

    fn layer_norm(&self, x: &Tensor, prefix: &str) -> Result<Tensor, ModelError> {
        let w = self.t(&format!("{prefix}.weight"))?;
        let b = self.t(&format!("{prefix}.bias"))?;
        Ok(candle_nn::ops::layer_norm(
            x,
            w,
            b,
            self.config.layer_norm_eps as f32,
        )?)
    }

    /// Encode one sequence of ids [T] (no padding) with one [`AttentionBias`] per layer (an
    /// empty slice: the plain model; the encoder has no mask). Returns the last hidden states
    /// [1,T,d], and the attention (and, when `keep_scores`, biased scores) per layer [1,H,T,T]
    /// in a [`ForwardOutput`] whose logits are empty [1,T,0]: there is no LM head.
    pub fn forward_with(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<(Tensor, ForwardOutput), ModelError> {
        let c = &self.config;
        let t = ids.len();
        if t == 0 {
            return Err(ModelError::Input("empty input".into()));
        }
        if t > c.max_len() {
            return Err(ModelError::TooLong(t, c.max_len()));
        }
        if let Some(m) = &c.modern {
            return self.forward_modern(ids, biases, keep_scores, m);
        }
        let (d, h) = (c.hidden_size, c.num_attention_heads);
        let dh = d / h;
        let input = Tensor::from_vec(ids.to_vec(), t, &self.device)?;
        let word = self
            .t("embeddings.word_embeddings.weight")?
            .embedding(&input)?;
        let rows = Tensor::from_vec(c.position_ids(ids), t, &self.device)?;
        let pos = self
            .t("embeddings.position_embeddings.weight")?
            .embedding(&rows)?;
        let mut x = word.broadcast_add(&pos)?;
        if c.kind != EncoderKind::DistilBert {
            let typ = self
                .t("embeddings.token_type_embeddings.weight")?
                .narrow(0, 0, 1)?;
            x = x.broadcast_add(&typ)?;
        }
        let x = x.unsqueeze(0)?;
        let mut x = self.layer_norm(&x, "embeddings.LayerNorm")?;
        let scale = 1.0 / (dh as f64).sqrt();
        let mut out = self.encoder_output(t)?;
        for l in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let heads = |m: &str| -> Result<Tensor, ModelError> {
                Ok(self
                    .linear(&x, &format!("{p}.attention.self.{m}"))?
                    .reshape((1, t, h, dh))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let (q, k, v) = (heads("query")?, heads("key")?, heads("value")?);
            let s = (q.matmul(&k.t()?)? * scale)?;
            let (a, z) = biased_attention(&s, biases.get(l), None, |z| {
                crate::model::fused::softmax_rows(z)
            })?;
            let ctx = a
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((1, t, d))?;
            let attn_out = self.linear(&ctx, &format!("{p}.attention.output.dense"))?;
            let y = self.layer_norm(
                &(attn_out + &x)?,
                &format!("{p}.attention.output.LayerNorm"),
            )?;
            let f = self
                .linear(&y, &format!("{p}.intermediate.dense"))?
                .gelu_erf()?;
            let f = self.linear(&f, &format!("{p}.output.dense"))?;
            x = self.layer_norm(&(f + &y)?, &format!("{p}.output.LayerNorm"))?;
            out.attention.push(a);
            if keep_scores {
                out.scores.push(z);
            }
        }
        Ok((x, out))
    }

    /// What a forward over `t` tokens fills: every layer's attention (and scores), under
    /// logits that are empty [1,T,0] (an encoder has no head).
    fn encoder_output(&self, t: usize) -> Result<ForwardOutput, ModelError> {
        Ok(ForwardOutput {
            logits: Tensor::zeros((1, t, 0), DType::F32, &self.device)?,
            attention: Vec::with_capacity(self.config.num_hidden_layers),
            scores: Vec::new(),
            queries: Vec::new(),
        })
    }

    /// The sentence embedding of sentence-transformers: the mean of the last hidden states over
    /// the tokens. Returns (the mean vector, its L2 norm); divide by the norm for the normalised
    /// embedding.
    pub fn mean_pooled(&self, ids: &[u32], biases: &[AttentionBias]) -> Result<(Vec<f32>, f32)> {
        let (hidden, _) = self.forward_with(ids, biases, false)?;
        let mean = hidden.mean(1)?.squeeze(0)?.to_dtype(DType::F32)?;
        let norm = mean.sqr()?.sum(D::Minus1)?.sqrt()?.to_scalar::<f32>()?;
        Ok((mean.to_vec1::<f32>()?, norm))
    }
}

/// A tensor name without the model's prefix some exports put on every name (`bert.`,
/// `roberta.` — XLM-RoBERTa's and CamemBERT's too —, `distilbert.`, ModernBERT's `model.`).
fn unprefixed(name: &str) -> &str {
    ["bert.", "roberta.", "distilbert.", "model."]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name)
}

impl AttentionModel for Bert {
    fn dims(&self) -> ModelDims {
        let c = &self.config;
        ModelDims {
            layers: c.num_hidden_layers,
            heads: c.num_attention_heads,
            max_len: c.max_len(),
            vocab: c.vocab_size,
            causal: false,
            has_logits: false,
        }
    }

    fn layer_windows(&self) -> Vec<Option<usize>> {
        match &self.config.modern {
            Some(m) => (m.sliding.iter())
                .map(|&local| local.then_some(m.window))
                .collect(),
            None => Vec::new(),
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
        Ok(self.forward_with(ids, biases, keep_scores)?.1)
    }
}
