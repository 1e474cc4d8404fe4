//! The tensors a LLaMA-family folder's forward reads, with the shapes its config implies: what
//! is checked against the safetensors header before any weight is read.

use super::config::HfLlamaConfig;
use crate::hf::family::Family;

impl HfLlamaConfig {
    /// Every tensor the forward pass of `family` reads, with the shape this config implies.
    pub fn expected_shapes(&self, family: Family) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let dh = self.head_width();
        let (qd, kv) = (self.num_attention_heads * dh, self.kv_heads() * dh);
        let mut want = vec![("model.embed_tokens.weight".to_string(), vec![v, d])];
        // OLMo 1's LayerNorms have no weights; StableLM's have biases.
        match family {
            Family::Olmo => {}
            Family::StableLm => want.extend([
                ("model.norm.weight".to_string(), vec![d]),
                ("model.norm.bias".to_string(), vec![d]),
            ]),
            _ => want.push(("model.norm.weight".to_string(), vec![d])),
        }
        if !self.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        for l in 0..self.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let mut layer = vec![
                ("self_attn.o_proj.weight", vec![d, qd]),
                ("mlp.down_proj.weight", vec![d, f]),
            ];
            layer.extend(match family {
                // Norms of attention's and the MLP's outputs only; q/k norms over all heads.
                Family::Olmo2 | Family::Olmo3 => vec![
                    ("post_attention_layernorm.weight", vec![d]),
                    ("post_feedforward_layernorm.weight", vec![d]),
                    ("self_attn.q_norm.weight", vec![qd]),
                    ("self_attn.k_norm.weight", vec![kv]),
                ],
                Family::Olmo => vec![],
                Family::StableLm => vec![
                    ("input_layernorm.weight", vec![d]),
                    ("input_layernorm.bias", vec![d]),
                    ("post_attention_layernorm.weight", vec![d]),
                    ("post_attention_layernorm.bias", vec![d]),
                ],
                _ => vec![
                    ("input_layernorm.weight", vec![d]),
                    ("post_attention_layernorm.weight", vec![d]),
                ],
            });
            if family == Family::Phi3 {
                layer.extend([
                    ("self_attn.qkv_proj.weight", vec![qd + 2 * kv, d]),
                    ("mlp.gate_up_proj.weight", vec![2 * f, d]),
                ]);
            } else {
                layer.extend([
                    ("self_attn.q_proj.weight", vec![qd, d]),
                    ("self_attn.k_proj.weight", vec![kv, d]),
                    ("self_attn.v_proj.weight", vec![kv, d]),
                    ("mlp.gate_proj.weight", vec![f, d]),
                    ("mlp.up_proj.weight", vec![f, d]),
                ]);
            }
            if self.qkv_bias(family) {
                layer.extend([
                    ("self_attn.q_proj.bias", vec![qd]),
                    ("self_attn.k_proj.bias", vec![kv]),
                    ("self_attn.v_proj.bias", vec![kv]),
                ]);
            }
            if family == Family::Qwen3 {
                layer.extend([
                    ("self_attn.q_norm.weight", vec![dh]),
                    ("self_attn.k_norm.weight", vec![dh]),
                ]);
            }
            want.extend(layer.into_iter().map(|(n, s)| (format!("{p}.{n}"), s)));
        }
        want
    }

    /// Whether q, k and v have biases: Qwen2's always, StableLM's with `use_qkv_bias`.
    pub fn qkv_bias(&self, family: Family) -> bool {
        family == Family::Qwen2 || (family == Family::StableLm && self.use_qkv_bias)
    }
}
