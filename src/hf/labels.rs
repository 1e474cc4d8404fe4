//! What an imported model is, in words: the studio's "kind" and a short architecture name.

use std::borrow::Cow;

use super::{bert, folder, Family, ImportedModel};

impl ImportedModel {
    /// What it is, in a phrase; a folder whose weights are `pytorch_model.bin` says so in
    /// place of safetensors.
    pub fn kind_label(&self) -> Cow<'static, str> {
        let label = self.base_label();
        let dir = match self {
            Self::Gpt2(m) if !m.from_gguf() => Some(&m.dir),
            Self::HfLlama(m) => Some(&m.dir),
            _ => None,
        };
        match dir {
            Some(dir) if folder::weights_are_bin(dir) => Cow::Owned(label.replace(
                "Hugging Face safetensors",
                "Hugging Face pytorch_model.bin, read weights-only",
            )),
            _ => Cow::Borrowed(label),
        }
    }

    fn base_label(&self) -> &'static str {
        match self {
            Self::Llama(m) => gguf_label(m.config.arch),
            Self::Bert(m) => match m.config.kind {
                bert::EncoderKind::Bert => {
                    "BERT-family encoder (bidirectional; no next-token head)"
                }
                bert::EncoderKind::Roberta => "RoBERTa encoder (bidirectional; no next-token head)",
                bert::EncoderKind::DistilBert => {
                    "DistilBERT encoder (bidirectional; no next-token head)"
                }
                bert::EncoderKind::ModernBert => {
                    "ModernBERT encoder (bidirectional, local layers; no next-token head)"
                }
            },
            Self::Gpt2(m) if m.from_gguf() => match m.family {
                Family::Phi => "Phi-2 decoder (GGUF, weights dequantized to f32)",
                Family::GptBigCode => "GPT-BigCode decoder (GGUF, weights dequantized to f32)",
                Family::GptNeox => "GPT-NeoX decoder (GGUF, weights dequantized to f32)",
                Family::Bloom => "BLOOM decoder (GGUF, weights dequantized to f32)",
                Family::Falcon => "Falcon decoder (GGUF, weights dequantized to f32)",
                Family::Mpt => "MPT decoder (GGUF, weights dequantized to f32)",
                Family::Starcoder2 => "StarCoder2 decoder (GGUF, weights dequantized to f32)",
                _ => "GPT-2 decoder (GGUF, weights dequantized to f32)",
            },
            Self::Gpt2(m) => m.family.folder_label(),
            Self::HfLlama(m) => m.label(),
            Self::Adapted(_) => "decoder fine-tuned by an adapter (merged into its base)",
        }
    }

    /// A short name of the architecture.
    pub fn arch_label(&self) -> &'static str {
        match self {
            Self::Llama(m) => m.config.arch,
            Self::Bert(m) => m.config.kind.name(),
            Self::Gpt2(m) => m.family.model_type(),
            Self::HfLlama(m) => m.family.model_type(),
            Self::Adapted(a) => a.base.arch_label(),
        }
    }
}

/// What a GGUF decoder of architecture `arch` is, in a phrase.
fn gguf_label(arch: &str) -> &'static str {
    match arch {
        "gemma" => "Gemma decoder (GGUF, weights dequantized to f32)",
        "gemma2" => "Gemma 2 decoder (GGUF, weights dequantized to f32)",
        "gemma3" => "Gemma 3 decoder (GGUF, weights dequantized to f32)",
        "granite" => "Granite decoder (GGUF, weights dequantized to f32)",
        "smollm3" => "SmolLM3 decoder (GGUF, weights dequantized to f32)",
        "olmo2" => "OLMo 2 decoder (GGUF, weights dequantized to f32)",
        "olmo" => "OLMo decoder (GGUF, weights dequantized to f32)",
        "stablelm" => "StableLM decoder (GGUF, weights dequantized to f32)",
        "qwen2" => "Qwen2 decoder (GGUF, weights dequantized to f32)",
        "qwen3" => "Qwen3 decoder (GGUF, weights dequantized to f32)",
        "phi3" => "Phi-3 decoder (GGUF, weights dequantized to f32)",
        _ => "LLaMA-family decoder (GGUF, weights dequantized to f32)",
    }
}
