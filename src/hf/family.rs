//! Which architecture a Hugging Face folder holds, from its `config.json`: `model_type`, or
//! else the first of `architectures`. Each supported family has its own loader; any other
//! (`mistral`, `t5`, ...) is refused with an error that names it and lists what is supported,
//! before anything else of the folder is read.

use std::path::Path;

/// The `model_type`s of Hugging Face folders this build opens, for error messages.
pub const SUPPORTED_TYPES: &str = "bert, roberta, xlm-roberta, camembert, distilbert and \
     modernbert (BERT-family encoders), bloom, codegen, falcon, gemma, gemma2, gemma3 and gemma3_text, gpt2, \
     gpt_bigcode (SantaCoder, StarCoderBase), gpt_neo (TinyStories), gpt_neox (Pythia), gptj, granite, \
     llama (LLaMA architecture: SmolLM2, TinyLlama, ...), mistral, mpt, olmo (OLMo 1), olmo2, olmo3, opt \
     (OPT-125m, 350m, 1.3b, ...), phi (phi-1 to phi-2), phi3, qwen2, qwen3, smollm3, stablelm \
     (StableLM 2) and starcoder2";

/// A family of Hugging Face models with a loader of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// BERT-family encoders (`bert`; `roberta`, `xlm-roberta`, `camembert`, `distilbert`,
    /// `modernbert`).
    Bert,
    /// GPT-2 decoders (`gpt2`).
    Gpt2,
    /// LLaMA-architecture decoders (`llama`).
    Llama,
    /// Qwen2 decoders (`qwen2`): LLaMA plus biases on the q, k and v projections.
    Qwen2,
    /// Mistral decoders (`mistral`): LLaMA's layout, attention within a sliding window.
    Mistral,
    /// Qwen3 decoders (`qwen3`): LLaMA plus an RMSNorm over each head's queries and keys,
    /// and a head width of their own.
    Qwen3,
    /// Phi-3 decoders (`phi3`): LLaMA's computation with q, k and v in one matrix and the
    /// MLP's gate and up in one, attention within a sliding window.
    Phi3,
    /// GPT-NeoX decoders (`gpt_neox`: EleutherAI's Pythia): GPT-2's block with RoPE on part of
    /// each head, and attention and MLP side by side.
    GptNeox,
    /// GPT-Neo decoders (`gpt_neo`: GPT-Neo, the TinyStories models): GPT-2's block with
    /// unscaled scores and local layers attending within a window.
    GptNeo,
    /// Phi decoders (`phi`: phi-1, phi-1.5, phi-2): GPT-NeoX's parallel block with one
    /// LayerNorm, RoPE on part of each head, a head with a bias.
    Phi,
    /// Gemma decoders (`gemma`): LLaMA with (1 + w) norms, embeddings ×√d, a GELU MLP.
    Gemma,
    /// Gemma 2 (`gemma2`): Gemma plus norms of each sub-layer's output, soft-capped scores and
    /// logits, sliding-window layers.
    Gemma2,
    /// Gemma 3 text decoders (`gemma3_text`): Gemma 2 without the caps, with per-head q/k norms
    /// and the sliding layers' RoPE at a base of their own.
    Gemma3,
    /// BLOOM decoders (`bloom`: BigScience's BLOOM and BLOOMZ, 560m to 176b): GPT-NeoX's fused
    /// projection, ALiBi for positions, a LayerNorm of the embeddings.
    Bloom,
    /// OPT decoders (`opt`: Meta's OPT-125m to 66b, Galactica): GPT-2's block with a ReLU MLP.
    Opt,
    /// IBM Granite decoders (`granite`: Granite 3.x): LLaMA with four multipliers (the
    /// embeddings', the scores', each sub-layer's output's, the logits' divisor).
    Granite,
    /// SmolLM3 decoders (`smollm3`: Hugging Face's SmolLM3-3B): LLaMA with every fourth layer
    /// turning no RoPE ("NoPE").
    SmolLm3,
    /// OLMo 2 decoders (`olmo2`, AllenAI's fully open models): LLaMA with norms of each
    /// sub-layer's output instead of its input, and q/k norms over all heads.
    Olmo2,
    /// OLMo 1 decoders (`olmo`: OLMo-1B-hf, OLMo-7B-hf): LLaMA with LayerNorms that have no
    /// weights or biases.
    Olmo,
    /// GPT-BigCode decoders (`gpt_bigcode`: SantaCoder, StarCoderBase, tiny_starcoder): GPT-2's
    /// block with `Linear` projections and one key and value head shared by all query heads.
    GptBigCode,
    /// Falcon decoders (`falcon`: falcon-rw-1b, falcon-7b, falcon-40b): GPT-2's block with a
    /// fused `Linear` q/k/v projection, ALiBi or RoPE, shared or grouped key/value heads.
    Falcon,
    /// StableLM decoders (`stablelm`: Stability AI's StableLM 2 1.6B, StableLM-3B-4E1T): LLaMA's
    /// gated MLP with LayerNorms (weights and biases), biases on q, k and v, and RoPE on the
    /// first quarter of each head.
    StableLm,
    /// MPT decoders (`mpt`: MosaicML's mpt-7b, mpt-30b): GPT-2's block without biases, ALiBi
    /// with MPT's slopes.
    Mpt,
    /// GPT-J decoders (`gptj`: GPT-J-6B): Phi's parallel block with q, k and v apart, RoPE on
    /// interleaved pairs, a head with a bias.
    GptJ,
    /// StarCoder2 decoders (`starcoder2`: StarCoder2-3B, 7B, 15B): GPT-2's block with q, k and
    /// v apart, grouped keys and values and RoPE.
    Starcoder2,
    /// CodeGen decoders (`codegen`: Salesforce's codegen-350M … 16B): GPT-J with q, k and v in
    /// one projection laid out for 4 shards.
    CodeGen,
    /// OLMo 3 decoders (`olmo3`: AllenAI's OLMo-3 7B, 32B): OLMo 2's block with sliding-window
    /// layers and RoPE per layer kind.
    Olmo3,
}

impl Family {
    /// What a folder of this family holds, in a phrase (the studio's "kind").
    pub fn folder_label(self) -> &'static str {
        match self {
            Self::Bert => "BERT-family encoder (bidirectional; no next-token head)",
            Self::Gpt2 => "GPT-2 decoder (Hugging Face safetensors)",
            Self::Llama => "LLaMA-architecture decoder (Hugging Face safetensors)",
            Self::Qwen2 => "Qwen2 decoder (Hugging Face safetensors)",
            Self::Mistral => "Mistral decoder (Hugging Face safetensors)",
            Self::Qwen3 => "Qwen3 decoder (Hugging Face safetensors)",
            Self::Phi3 => "Phi-3 decoder (Hugging Face safetensors)",
            Self::GptNeox => "GPT-NeoX decoder (Hugging Face safetensors)",
            Self::GptNeo => "GPT-Neo decoder (Hugging Face safetensors)",
            Self::Phi => "Phi decoder (Hugging Face safetensors)",
            Self::Gemma => "Gemma decoder (Hugging Face safetensors)",
            Self::Gemma2 => "Gemma 2 decoder (Hugging Face safetensors)",
            Self::Gemma3 => "Gemma 3 decoder (Hugging Face safetensors)",
            Self::Olmo2 => "OLMo 2 decoder (Hugging Face safetensors)",
            Self::Olmo3 => "OLMo 3 decoder (Hugging Face safetensors)",
            Self::Opt => "OPT decoder (Hugging Face safetensors)",
            Self::Bloom => "BLOOM decoder (Hugging Face safetensors)",
            Self::SmolLm3 => "SmolLM3 decoder (Hugging Face safetensors)",
            Self::Granite => "Granite decoder (Hugging Face safetensors)",
            Self::Olmo => "OLMo decoder (Hugging Face safetensors)",
            Self::StableLm => "StableLM decoder (Hugging Face safetensors)",
            Self::GptBigCode => "GPT-BigCode decoder (Hugging Face safetensors)",
            Self::Falcon => "Falcon decoder (Hugging Face safetensors)",
            Self::Mpt => "MPT decoder (Hugging Face safetensors)",
            Self::GptJ => "GPT-J decoder (Hugging Face safetensors)",
            Self::Starcoder2 => "StarCoder2 decoder (Hugging Face safetensors)",
            Self::CodeGen => "CodeGen decoder (Hugging Face safetensors)",
        }
    }

    /// Gemma 1, 2 or 3.
    pub fn is_gemma(self) -> bool {
        matches!(self, Self::Gemma | Self::Gemma2 | Self::Gemma3)
    }

    /// Its `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Gpt2 => "gpt2",
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Mistral => "mistral",
            Self::Qwen3 => "qwen3",
            Self::Phi3 => "phi3",
            Self::GptNeox => "gpt_neox",
            Self::GptNeo => "gpt_neo",
            Self::Phi => "phi",
            Self::Gemma => "gemma",
            Self::Gemma2 => "gemma2",
            Self::Gemma3 => "gemma3_text",
            Self::Olmo2 => "olmo2",
            Self::Olmo3 => "olmo3",
            Self::Opt => "opt",
            Self::Bloom => "bloom",
            Self::Mpt => "mpt",
            Self::GptJ => "gptj",
            Self::Starcoder2 => "starcoder2",
            Self::CodeGen => "codegen",
            Self::SmolLm3 => "smollm3",
            Self::Granite => "granite",
            Self::Olmo => "olmo",
            Self::StableLm => "stablelm",
            Self::GptBigCode => "gpt_bigcode",
            Self::Falcon => "falcon",
        }
    }
}

/// Why a folder's family is not one this build opens.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}: model_type {model_type:?} is not supported; supported Hugging Face model types: \
     {SUPPORTED_TYPES} (or a .gguf file of a LLaMA-family decoder)",
    path.display()
)]
pub struct UnsupportedFamily {
    /// The `config.json`.
    pub path: std::path::PathBuf,
    /// What it says the model is.
    pub model_type: String,
}

/// The family of the folder `dir` from its `config.json`. A config that cannot be read or
/// names no type at all is taken for BERT, whose loader reports what is wrong with it in the
/// words it always has; a type of no supported family is an [`UnsupportedFamily`].
pub fn family_of(dir: &Path) -> Result<Family, UnsupportedFamily> {
    let path = dir.join("config.json");
    let Ok(text) = crate::files::read_text(&path, crate::files::MAX_CONFIG_BYTES, "a config.json")
    else {
        return Ok(Family::Bert);
    };
    let Ok(json) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text) else {
        return Ok(Family::Bert);
    };
    let model_type = json.get("model_type").and_then(|v| v.as_str());
    let arch = json
        .get("architectures")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_str());
    let family = match (model_type, arch) {
        (Some(t), _) => by_type(t),
        (None, Some(a)) => by_architecture(a),
        (None, None) => Some(Family::Bert),
    };
    family.ok_or_else(|| UnsupportedFamily {
        path,
        model_type: model_type.or(arch).unwrap_or_default().to_string(),
    })
}

fn by_type(t: &str) -> Option<Family> {
    Some(match t {
        "bert" | "roberta" | "xlm-roberta" | "camembert" | "distilbert" | "modernbert" => {
            Family::Bert
        }
        "gpt2" => Family::Gpt2,
        "llama" => Family::Llama,
        "qwen2" => Family::Qwen2,
        "mistral" => Family::Mistral,
        "qwen3" => Family::Qwen3,
        "phi3" => Family::Phi3,
        "gpt_neox" => Family::GptNeox,
        "gpt_neo" => Family::GptNeo,
        "phi" => Family::Phi,
        "gemma" => Family::Gemma,
        "gemma2" => Family::Gemma2,
        // A multimodal Gemma 3 (gemma-3-4b-it and up): its text decoder.
        "gemma3_text" | "gemma3" => Family::Gemma3,
        "olmo2" => Family::Olmo2,
        "olmo3" => Family::Olmo3,
        "opt" => Family::Opt,
        "bloom" => Family::Bloom,
        "gpt_bigcode" => Family::GptBigCode,
        "falcon" => Family::Falcon,
        "mpt" => Family::Mpt,
        "gptj" => Family::GptJ,
        "starcoder2" => Family::Starcoder2,
        "codegen" => Family::CodeGen,
        "smollm3" => Family::SmolLm3,
        "granite" => Family::Granite,
        "olmo" => Family::Olmo,
        "stablelm" => Family::StableLm,
        _ => return None,
    })
}

fn by_architecture(a: &str) -> Option<Family> {
    [
        ("Bert", Family::Bert),
        ("Roberta", Family::Bert),
        ("XLMRoberta", Family::Bert),
        ("Camembert", Family::Bert),
        ("DistilBert", Family::Bert),
        ("ModernBert", Family::Bert),
        ("GPT2", Family::Gpt2),
        ("Llama", Family::Llama),
        ("Qwen2For", Family::Qwen2),
        ("Qwen2Model", Family::Qwen2),
        ("MistralFor", Family::Mistral),
        ("MistralModel", Family::Mistral),
        ("Qwen3For", Family::Qwen3),
        ("Qwen3Model", Family::Qwen3),
        ("Phi3For", Family::Phi3),
        ("Phi3Model", Family::Phi3),
        ("GPTNeoXFor", Family::GptNeox),
        ("GPTNeoXModel", Family::GptNeox),
        ("GPTNeoFor", Family::GptNeo),
        ("GPTNeoModel", Family::GptNeo),
        ("PhiFor", Family::Phi),
        ("PhiModel", Family::Phi),
        ("GemmaFor", Family::Gemma),
        ("GemmaModel", Family::Gemma),
        ("Gemma2For", Family::Gemma2),
        ("Gemma2Model", Family::Gemma2),
        ("Gemma3ForCausalLM", Family::Gemma3),
        ("Gemma3ForConditionalGeneration", Family::Gemma3),
        ("Gemma3TextModel", Family::Gemma3),
        ("Olmo2For", Family::Olmo2),
        ("Olmo2Model", Family::Olmo2),
        ("Olmo3For", Family::Olmo3),
        ("Olmo3Model", Family::Olmo3),
        ("OPTFor", Family::Opt),
        ("GPTBigCode", Family::GptBigCode),
        ("FalconFor", Family::Falcon),
        ("FalconModel", Family::Falcon),
        ("MptFor", Family::Mpt),
        ("MptModel", Family::Mpt),
        ("GPTJFor", Family::GptJ),
        ("GPTJModel", Family::GptJ),
        ("Starcoder2For", Family::Starcoder2),
        ("Starcoder2Model", Family::Starcoder2),
        ("CodeGenFor", Family::CodeGen),
        ("CodeGenModel", Family::CodeGen),
        ("OPTModel", Family::Opt),
        ("BloomFor", Family::Bloom),
        ("BloomModel", Family::Bloom),
        ("SmolLM3For", Family::SmolLm3),
        ("SmolLM3Model", Family::SmolLm3),
        ("GraniteFor", Family::Granite),
        ("GraniteModel", Family::Granite),
        ("OlmoFor", Family::Olmo),
        ("OlmoModel", Family::Olmo),
        ("StableLmFor", Family::StableLm),
        ("StableLmModel", Family::StableLm),
    ]
    .into_iter()
    .find(|(prefix, _)| a.starts_with(prefix))
    .map(|(_, f)| f)
}
