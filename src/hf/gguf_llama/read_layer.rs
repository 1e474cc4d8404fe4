//! One layer's weights of a GGUF decoder, read by llama.cpp's names and dequantized to f32,
//! and the final norm.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};

use super::rope::turned_qk;
use super::{split_fused, Layer, LlamaConfig};
use crate::hf::dense::Dense;

impl Layer {
    /// Layer `l`'s weights through `read` (which reads a named tensor of the file). They are
    /// dequantized to f32 once: the products then match the reference (transformers on the
    /// dequantized weights), which quantized products with 8-bit activations do not quite
    /// (top-5 order moved).
    /// The q, k and v biases too where `c` has them (Qwen2, StableLM), the q/k norms (Qwen3),
    /// the post-norms (Gemma 2 and 3, OLMo 2), the LayerNorms' biases (StableLM; OLMo 1's
    /// LayerNorms have no weights: weight 1, bias 0).
    pub(super) fn read(
        read: &mut impl FnMut(&str) -> Result<Tensor>,
        l: usize,
        c: &LlamaConfig,
        device: &Device,
    ) -> Result<Self> {
        let mut f = |name: &str| read(&format!("blk.{l}.{name}"));
        let qkv_bias = match c.qkv_bias() {
            true => Some([f("attn_q.bias")?, f("attn_k.bias")?, f("attn_v.bias")?]),
            false => None,
        };
        let qk_norm = match c.qk_norm() {
            true => Some([f("attn_q_norm.weight")?, f("attn_k_norm.weight")?]),
            false => None,
        };
        let post_norms = match c.post_norms() {
            true => Some([f("post_attention_norm.weight")?, f("post_ffw_norm.weight")?]),
            false => None,
        };
        // OLMo 2 has no pre-norms: the slots are never read (`LlamaConfig::pre_norms`).
        let (attn_norm, ffn_norm, norm_bias) = match (c.pre_norms(), &post_norms, c.arch) {
            (false, Some([w, _]), _) => (w.ones_like()?, w.ones_like()?, None),
            (_, _, "olmo") => {
                let ones = Tensor::ones(c.d_model, DType::F32, device)?;
                let zeros = ones.zeros_like()?;
                (ones.clone(), ones, Some([zeros.clone(), zeros]))
            }
            (_, _, "stablelm") => {
                let bias = [f("attn_norm.bias")?, f("ffn_norm.bias")?];
                (f("attn_norm.weight")?, f("ffn_norm.weight")?, Some(bias))
            }
            _ => (f("attn_norm.weight")?, f("ffn_norm.weight")?, None),
        };
        let [wq, wk, wv, gate, up] = if c.fused() {
            let rows = (c.q_width(), c.kv_heads * c.head_dim, c.ff);
            split_fused(&f("attn_qkv.weight")?, &f("ffn_up.weight")?, rows)?
        } else {
            [
                f("attn_q.weight")?,
                f("attn_k.weight")?,
                f("attn_v.weight")?,
                f("ffn_gate.weight")?,
                f("ffn_up.weight")?,
            ]
        };
        // Phi-4-mini's and StableLM's partial rotation: each head's turned dimensions first in
        // each half, in the q and k rows and their biases alike.
        let (wq, wk, qkv_bias) = turned_qk((&wq, &wk), qkv_bias, (c.head_dim, c.rope_dims))?;
        Ok(Self {
            attn_norm,
            q: Dense::new(&wq)?,
            k: Dense::new(&wk)?,
            v: Dense::new(&wv)?,
            qkv_bias,
            qk_norm,
            post_norms,
            o: Dense::new(&f("attn_output.weight")?)?,
            ffn_norm,
            norm_bias,
            gate: Dense::new(&gate)?,
            up: Dense::new(&up)?,
            down: Dense::new(&f("ffn_down.weight")?)?,
        })
    }
}

/// The final norm's weight and (LayerNorm) bias: StableLM's `output_norm` with its bias, OLMo
/// 1's weight 1 and bias 0 (the file has none), every other model's RMSNorm weight.
pub(super) fn out_norm(
    q: &mut impl FnMut(&str) -> Result<Tensor>,
    c: &LlamaConfig,
    device: &Device,
) -> Result<(Tensor, Option<Tensor>)> {
    Ok(match c.arch {
        "olmo" => {
            let ones = Tensor::ones(c.d_model, DType::F32, device)?;
            (ones.clone(), Some(ones.zeros_like()?))
        }
        "stablelm" => (q("output_norm.weight")?, Some(q("output_norm.bias")?)),
        _ => (q("output_norm.weight")?, None),
    })
}
