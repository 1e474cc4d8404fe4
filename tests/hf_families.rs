//! The model families of issue 17 and after (GPT-2, LLaMA-architecture, Mistral, Qwen2 and Qwen3
//! Hugging Face folders) against `transformers`, on the tiny random models of `tests/fixtures/families/` made by
//! `scripts/make_family_fixtures.py` (config, safetensors, tokenizer and reference.json: the
//! ids of a fixed text, the logits and every layer's attention as transformers computes them):
//! parity of ids, logits (1e-4) and attention (1e-5); the dial, generation with the KV cache
//! and streamed captures on each; and the errors of an unsupported or damaged folder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::{max_diff, open_imported as open, open_imported_err as open_err};

use common::st::{raw_tensors, split_into_shards, write_safetensors, RawTensor};

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use localist::data::tokenizer::Tokenizer;
use localist::hf::ImportedModel;
use localist::model::blocks::BlockMap;
use localist::model::capture::{capture, capture_attention, sequence_biases};
use localist::model::capture_stream::{capture_streamed, CapturePlan};
use localist::model::dial::DialSetting;

use common::DECODER_FOLDERS as FAMILIES;

fn fixture(name: &str) -> PathBuf {
    common::family_fixture(name)
}

/// Every decoder to run the path tests on, with the ids of its reference text: the five
/// folders and the GGUF files made from three of them (`scripts/make_gguf_fixture.py`: Qwen2
/// with its biases, Qwen3 with its q/k norms and wide heads, LLaMA-3 with a BOS token and
/// per-frequency RoPE factors), and a LLaMA GGUF with a SentencePiece vocabulary
/// (`scripts/make_spm_gguf_fixture.py`).
fn decoders() -> Vec<(String, PathBuf, Vec<u32>)> {
    let mut out: Vec<_> = FAMILIES
        .iter()
        .map(|&n| (n.to_string(), fixture(n), reference(n).ids))
        .collect();
    let gguf = |n: &str| common::root().join(format!("tests/fixtures/{n}.gguf"));
    out.push(("qwen2.gguf".into(), gguf("qwen2"), reference("qwen2").ids));
    out.push(("qwen3.gguf".into(), gguf("qwen3"), reference("qwen3").ids));
    out.push(("phi3.gguf".into(), gguf("phi3"), reference("phi3").ids));
    out.push((
        "phi3_longrope.gguf".into(),
        gguf("phi3_longrope"),
        reference("phi3_longrope").ids,
    ));
    // Gemma 2 and 3 as llama.cpp's converter writes them (caps, window, two RoPE bases, the
    // ×8 stretch of gemma-3-4b's global layers), OLMo 2 (no pre-norms, q/k norms over all
    // heads), StableLM and OLMo 1 (LayerNorms).
    for n in [
        "gemma2",
        "gemma3_text",
        "olmo2",
        "smollm3",
        "granite",
        "gemma3_vision",
        "stablelm",
        "olmo",
    ] {
        let file = common::root().join(format!("tests/fixtures/llamacpp/{n}.gguf"));
        out.push((format!("{n}.gguf"), file, reference(n).ids));
    }
    let llama3: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::root().join("tests/fixtures/llama3.json")).unwrap(),
    )
    .unwrap();
    let ids = serde_json::from_value(llama3["ids"].clone()).unwrap();
    out.push(("llama3.gguf".into(), gguf("llama3"), ids));
    let spm: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::root().join("tests/fixtures/spm.json")).unwrap(),
    )
    .unwrap();
    let ids = serde_json::from_value(spm["cases"][0]["ids"].clone()).unwrap();
    out.push(("spm.gguf".into(), gguf("spm"), ids));
    out
}

/// What transformers computed (reference.json).
struct Reference {
    text: String,
    ids: Vec<u32>,
    /// [T][V]
    logits: Vec<Vec<f32>>,
    /// [L][H][T][T]
    attention: Vec<Vec<Vec<Vec<f32>>>>,
}

fn reference(name: &str) -> Reference {
    let bytes = std::fs::read(fixture(name).join("reference.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    Reference {
        text: serde_json::from_value(v["text"].clone()).unwrap(),
        ids: serde_json::from_value(v["ids"].clone()).unwrap(),
        logits: serde_json::from_value(v["logits"].clone()).unwrap(),
        attention: serde_json::from_value(v["attention"].clone()).unwrap(),
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .unwrap()
}

/// Two blocks by token-id parity.
fn parity_blocks(vocab: usize) -> BlockMap {
    let pairs: Vec<(u32, String)> = (0..vocab as u32)
        .map(|id| (id, if id % 2 == 0 { "even" } else { "odd" }.to_string()))
        .collect();
    BlockMap::from_assignments(vocab, &pairs, "parity")
}

/// Logits and attention of `name` against transformers: (max logit diff, max attention diff).
fn parity(name: &str) -> (f32, f32) {
    parity_of(&fixture(name), name, name)
}

/// [`parity`] of the folder `dir`, of architecture `arch`, against fixture `name`'s reference.
fn parity_of(dir: &Path, name: &str, arch: &str) -> (f32, f32) {
    let m = open(dir);
    let r = reference(name);
    assert_eq!(m.arch_label(), arch);
    let ids = m.tokenizer().encode(&r.text);
    assert_eq!(ids, r.ids, "{name}: token ids");
    let out = m.model().forward_biased(&ids, &[], false).unwrap();
    let logits = out.logits.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(logits.len(), r.logits.len());
    let dl = max_diff(logits.iter().flatten(), r.logits.iter().flatten());
    assert_eq!(out.attention.len(), r.attention.len(), "{name}: layers");
    let mut da = 0f32;
    for (a, want) in out.attention.iter().zip(&r.attention) {
        let a = a.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(a.len(), want.len(), "{name}: heads");
        da = da.max(max_diff(
            a.iter().flatten().flatten(),
            want.iter().flatten().flatten(),
        ));
    }
    eprintln!("{name}: logits max |Δ| {dl:.2e}, attention max |Δ| {da:.2e}");
    assert!(dl < 1e-4, "{name}: logits differ by {dl}");
    assert!(da < 1e-5, "{name}: attention differs by {da}");
    (dl, da)
}

#[test]
fn gpt2_matches_transformers() {
    parity("gpt2");
}

#[test]
fn llama_matches_transformers() {
    parity("llama");
}

#[test]
fn qwen2_matches_transformers() {
    parity("qwen2");
}

/// Mistral: LLaMA's layout with a sliding window of 96 positions over 128; the reference text
/// (65 tokens) lies within it, where the window changes nothing. A longer text is refused, not
/// attended beyond the window.
#[test]
fn mistral_matches_transformers_within_its_window() {
    parity("mistral");
    let m = open(&fixture("mistral"));
    assert_eq!(m.model().dims().max_len, 96, "the window is the context");
    let ids = vec![5u32; 97];
    let err = m.model().forward_biased(&ids, &[], false).unwrap_err();
    assert!(err.to_string().contains("97 tokens"), "{err}");
}

/// Phi-3: q, k and v in one matrix and gate and up in one, cut apart at load; a sliding window
/// of 96 positions taken as the context.
#[test]
fn phi3_matches_transformers() {
    parity("phi3");
    let m = open(&fixture("phi3"));
    assert_eq!(m.kind_label(), "Phi-3 decoder (Hugging Face safetensors)");
    assert_eq!(m.model().dims().max_len, 96, "the window is the context");
}

/// Qwen with `use_sliding_window`: its window is the context, and within it the model is the
/// same as without the window.
#[test]
fn a_qwen_sliding_window_is_taken_as_the_context() {
    let dir = common::copy_family_fixture("qwen2");
    set_config(dir.path(), "use_sliding_window", true.into());
    set_config(dir.path(), "sliding_window", 40.into());
    let windowed = open(dir.path());
    assert_eq!(windowed.model().dims().max_len, 40);
    let plain = open(&fixture("qwen2"));
    let ids = &reference("qwen2").ids[..40];
    let a = windowed
        .model()
        .forward_biased(ids, &[], false)
        .unwrap()
        .logits;
    let b = plain
        .model()
        .forward_biased(ids, &[], false)
        .unwrap()
        .logits;
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    assert!(windowed
        .model()
        .forward_biased(&reference("qwen2").ids, &[], false)
        .is_err());
}

/// Qwen3: each head's queries and keys through an RMSNorm of their own before RoPE, and a head
/// width (16) that is not hidden_size / heads (8): q_proj 64×32, o_proj 32×64.
#[test]
fn qwen3_matches_transformers() {
    parity("qwen3");
    let m = open(&fixture("qwen3"));
    assert_eq!(m.kind_label(), "Qwen3 decoder (Hugging Face safetensors)");
}

/// GPT-NeoX (Pythia's architecture): q, k and v of each head side by side in one projection,
/// RoPE on the first quarter of each head (4 of 16 dimensions), attention and MLP both reading
/// the block's input, an untied head `embed_out`.
#[test]
fn gpt_neox_matches_transformers() {
    parity("gpt_neox");
    let m = open(&fixture("gpt_neox"));
    assert_eq!(
        m.kind_label(),
        "GPT-NeoX decoder (Hugging Face safetensors)"
    );
    // Pythia's config.json names RoPE as transformers 4 wrote it.
    let dir = common::copy_family_fixture("gpt_neox");
    set_config(dir.path(), "rope_parameters", serde_json::Value::Null);
    set_config(dir.path(), "rotary_pct", 0.25.into());
    set_config(dir.path(), "rotary_emb_base", 10_000.into());
    parity_of(dir.path(), "gpt_neox", "gpt_neox");
    set_config(dir.path(), "rotary_pct", 0.5.into());
    let (dl, _) = logit_diff(dir.path(), "gpt_neox");
    assert!(dl > 1e-3, "rotary_pct is read: {dl}");
}

/// GPT-NeoX as other checkpoints configure it: the MLP after attention, no attention biases,
/// RoPE on half of each head, the head tied to the embedding.
#[test]
fn sequential_gpt_neox_matches_transformers() {
    parity_of(
        &fixture("gpt_neox_sequential"),
        "gpt_neox_sequential",
        "gpt_neox",
    );
}

/// Largest logit difference of the folder `dir` against fixture `name`'s reference, and its
/// model.
fn logit_diff(dir: &Path, name: &str) -> (f32, ImportedModel) {
    let m = open(dir);
    let r = reference(name);
    let out = m.model().forward_biased(&r.ids, &[], false).unwrap();
    let logits = out.logits.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    (
        max_diff(logits.iter().flatten(), r.logits.iter().flatten()),
        m,
    )
}

/// Older Pythia exports carry buffers beside the weights: a boolean causal mask per layer
/// (`attention.bias`, dtype BOOL), `attention.masked_bias` and `rotary_emb.inv_freq`. They are
/// not weights and are not read (candle cannot read BOOL at all); the model is unchanged.
#[test]
fn pythia_buffers_in_the_weights_file_are_passed_over() {
    let dir = common::copy_family_fixture("gpt_neox");
    let file = dir.path().join("model.safetensors");
    let mut tensors = raw_tensors(&file);
    for l in 0..2 {
        for (name, dtype, shape, len) in [
            ("attention.bias", "BOOL", vec![1, 1, 128, 128], 128 * 128),
            ("attention.masked_bias", "F32", vec![], 4),
            ("attention.rotary_emb.inv_freq", "F32", vec![2], 8),
        ] {
            tensors.push((
                format!("gpt_neox.layers.{l}.{name}"),
                dtype.into(),
                serde_json::json!(shape),
                vec![1u8; len],
            ));
        }
    }
    write_safetensors(&file, &tensors);
    let (dl, _) = logit_diff(dir.path(), "gpt_neox");
    assert!(dl < 1e-4, "{dl}");
}

/// GPT-Neo (TinyStories' architecture): q, k and v apart without biases, scores not divided
/// by √d_h, a "local" layer attending to the last 96 positions of 128. Within the window it is
/// the model exactly; the window is the context, so nothing is attended beyond what the model
/// sees.
#[test]
fn gpt_neo_matches_transformers_within_its_window() {
    parity("gpt_neo");
    let m = open(&fixture("gpt_neo"));
    assert_eq!(m.kind_label(), "GPT-Neo decoder (Hugging Face safetensors)");
    assert_eq!(m.model().dims().max_len, 96, "the window is the context");
    let err = m
        .model()
        .forward_biased(&[5u32; 97], &[], false)
        .unwrap_err();
    assert!(err.to_string().contains("97 tokens"), "{err}");
    // Only global layers: the whole of max_position_embeddings.
    let dir = common::copy_family_fixture("gpt_neo");
    set_config(
        dir.path(),
        "attention_types",
        serde_json::json!([[["global"], 2]]),
    );
    assert_eq!(open(dir.path()).model().dims().max_len, 128);
    for (types, fragment) in [
        (
            serde_json::json!([[["global", "local"], 2]]),
            "gives 4 layers",
        ),
        (
            serde_json::json!([[["global"], 1000000000000u64]]),
            "num_layers is 2",
        ),
        (serde_json::json!([[["global", "sparse"], 1]]), "\"sparse\""),
    ] {
        set_config(dir.path(), "attention_types", types);
        let err = open_err(dir.path());
        assert!(
            err.contains("config.json") && err.contains(fragment),
            "{err}"
        );
    }
}

/// Phi (phi-1 to phi-2): one LayerNorm read by attention and the MLP side by side, q, k and v
/// apart with biases, RoPE on ⌊0.4 · 16⌋ = 6 dimensions of each head, a head with a bias.
#[test]
fn phi_matches_transformers() {
    parity("phi");
    let m = open(&fixture("phi"));
    assert_eq!(m.kind_label(), "Phi decoder (Hugging Face safetensors)");
    for (key, value, fragment) in [
        ("qk_layernorm", true.into(), "qk_layernorm"),
        ("num_key_value_heads", 2.into(), "num_key_value_heads 2"),
        (
            "rope_parameters",
            serde_json::json!({"partial_rotary_factor": 0.05}),
            "rotates pairs",
        ),
    ] {
        let dir = common::copy_family_fixture("phi");
        set_config(dir.path(), key, value);
        let err = open_err(dir.path());
        assert!(
            err.contains("config.json") && err.contains(fragment),
            "{key}: {err}"
        );
    }
    // The head is read from lm_head, not the embedding.
    let dir = common::copy_family_fixture("phi");
    set_config(dir.path(), "tie_word_embeddings", true.into());
    let (dl, _) = logit_diff(dir.path(), "phi");
    assert!(dl > 1e-3, "tying the head changes the logits: {dl}");
}

/// Weights split into shards (phi-2, Gemma-2, Qwen2.5-3B are published so) open as the one
/// file does, on a LLaMA-family and two GPT-2-family folders; the model's hash covers the
/// index and every shard.
#[test]
fn sharded_weights_open_as_one_file() {
    for name in ["llama", "gpt_neox", "phi"] {
        let dir = common::copy_family_fixture(name);
        let whole = localist::hf::model_sha256(dir.path()).unwrap();
        split_into_shards(dir.path(), 3);
        parity_of(dir.path(), name, name);
        let split = localist::hf::model_sha256(dir.path()).unwrap();
        assert_ne!(whole, split);
        let shard = dir.path().join("model-00002-of-00003.safetensors");
        let mut bytes = std::fs::read(&shard).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&shard, bytes).unwrap();
        assert_ne!(
            localist::hf::model_sha256(dir.path()).unwrap(),
            split,
            "{name}"
        );
    }
}

/// An index that names a file outside the folder, a shard that is not there, or a tensor two
/// shards both hold is refused naming the index, never read past.
#[test]
fn a_bad_shard_index_is_refused_naming_it() {
    let index_with = |map: serde_json::Value| {
        let dir = common::copy_family_fixture("gpt_neox");
        split_into_shards(dir.path(), 2);
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            serde_json::to_vec(&serde_json::json!({ "weight_map": map })).unwrap(),
        )
        .unwrap();
        dir
    };
    for (map, fragment) in [
        (
            serde_json::json!({"a": "model-00001-of-00002.safetensors", "b": "../x.safetensors"}),
            "\"../x.safetensors\" is not a .safetensors file name",
        ),
        (
            serde_json::json!({"a": "model-00001-of-00002.safetensors", "b": "/etc/passwd"}),
            "is not a .safetensors file name",
        ),
        (
            serde_json::json!({"a": "model-00001-of-00003.safetensors"}),
            "shard model-00001-of-00003.safetensors is missing",
        ),
        (serde_json::json!({}), "names no shard"),
    ] {
        let dir = index_with(map);
        let err = open_err(dir.path());
        assert!(
            err.contains("model.safetensors.index.json") && err.contains(fragment),
            "{err}"
        );
    }
    // One tensor in both shards.
    let dir = common::copy_family_fixture("gpt_neox");
    split_into_shards(dir.path(), 2);
    let first = raw_tensors(&dir.path().join("model-00001-of-00002.safetensors"));
    let second = dir.path().join("model-00002-of-00002.safetensors");
    let mut tensors = raw_tensors(&second);
    tensors.push(first[0].clone());
    write_safetensors(&second, &tensors);
    let err = open_err(dir.path());
    assert!(err.contains("declared by two shards"), "{err}");
}

/// Gemma: (1 + w) norms, embeddings ×√d, a GELU-gated MLP, <bos> first.
#[test]
fn gemma_matches_transformers() {
    parity("gemma");
    let m = open(&fixture("gemma"));
    assert_eq!(m.kind_label(), "Gemma decoder (Hugging Face safetensors)");
}

/// Gemma 2: norms of each sub-layer's output, scores scaled by query_pre_attn_scalar and
/// soft-capped, logits soft-capped, a sliding-window layer whose window (96) is the context.
#[test]
fn gemma2_matches_transformers_within_its_window() {
    parity("gemma2");
    let m = open(&fixture("gemma2"));
    assert_eq!(m.model().dims().max_len, 96, "the window is the context");
    // The caps are read: without them the numbers move.
    let dir = common::copy_family_fixture("gemma2");
    set_config(
        dir.path(),
        "attn_logit_softcapping",
        serde_json::Value::Null,
    );
    set_config(
        dir.path(),
        "final_logit_softcapping",
        serde_json::Value::Null,
    );
    let (dl, _) = logit_diff(dir.path(), "gemma2");
    assert!(dl > 1e-3, "the caps change the logits: {dl}");
}

/// Gemma 3 (text): per-head q/k norms, no caps, sliding layers turning RoPE at 10,000 and the
/// global one at 1,000,000.
#[test]
fn gemma3_matches_transformers() {
    parity("gemma3_text");
    // The sliding layers' base is read: at the global base the numbers move.
    let dir = common::copy_family_fixture("gemma3_text");
    set_config(
        dir.path(),
        "rope_parameters",
        serde_json::json!({"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                           "sliding_attention": {"rope_type": "default", "rope_theta": 1e6}}),
    );
    let (dl, _) = logit_diff(dir.path(), "gemma3_text");
    assert!(dl > 1e-4, "the local base changes the logits: {dl}");
    for (key, value, fragment) in [
        (
            "rope_parameters",
            serde_json::json!({"full_attention": {"rope_type": "yarn", "factor": 8.0}}),
            "\"yarn\"",
        ),
        (
            "layer_types",
            serde_json::json!(["full_attention"]),
            "names 1 layers",
        ),
        (
            "use_bidirectional_attention",
            true.into(),
            "use_bidirectional_attention",
        ),
    ] {
        let dir = common::copy_family_fixture("gemma3_text");
        set_config(dir.path(), key, value);
        let err = open_err(dir.path());
        assert!(
            err.contains("config.json") && err.contains(fragment),
            "{key}: {err}"
        );
    }
}

/// Gemma 3's multimodal checkpoints (gemma-3-4b-it and up) run as text decoders: the decoder
/// under `text_config`, its weights under `language_model.model.` (or the newer
/// `model.language_model.`), the vision tower not read; the global layers' RoPE stretched
/// linearly (×8, gemma-3-4b's), the local layers' not (the stretch is read: without it the
/// logits move). The sparse `text_config` gemma-3-4b-it's own config.json has (only what
/// differs from transformers' defaults: no bases, no layer kinds, no ε) reads the same.
#[test]
fn gemma3_multimodal_checkpoints_run_as_text_decoders() {
    parity_of(&fixture("gemma3_vision"), "gemma3_vision", "gemma3_text");
    let m = open(&fixture("gemma3_vision"));
    assert_eq!(
        m.kind_label(),
        "Gemma 3 decoder (the text part of a multimodal checkpoint; Hugging Face safetensors)"
    );
    let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
        let dir = common::copy_family_fixture("gemma3_vision");
        common::edit_json(&dir.path().join("config.json"), |c| {
            edit(&mut c["text_config"])
        });
        dir
    };
    let sparse = edited(&|t| {
        let o = t.as_object_mut().unwrap();
        for k in [
            "rms_norm_eps",
            "hidden_activation",
            "layer_types",
            "rope_parameters",
            "attention_bias",
            "final_logit_softcapping",
            "attn_logit_softcapping",
            "use_bidirectional_attention",
            "_sliding_window_pattern",
        ] {
            o.remove(k);
        }
        o.insert(
            "rope_scaling".into(),
            serde_json::json!({"rope_type": "linear", "factor": 8.0}),
        );
    });
    let (dl, _) = logit_diff(sparse.path(), "gemma3_vision");
    assert!(dl < 1e-4, "the sparse form: {dl}");
    let unstretched = edited(&|t| {
        t["rope_parameters"]["full_attention"] =
            serde_json::json!({"rope_type": "default", "rope_theta": 1e6})
    });
    let (dl, _) = logit_diff(unstretched.path(), "gemma3_vision");
    assert!(dl > 1e-3, "the stretch is read: {dl}");
    let local = edited(&|t| {
        t["rope_parameters"]["sliding_attention"] =
            serde_json::json!({"rope_type": "linear", "factor": 8.0, "rope_theta": 1e4})
    });
    let err = open_err(local.path());
    assert!(err.contains("on the local layers"), "{err}");
    let dir = common::copy_family_fixture("gemma3_vision");
    common::edit_json(&dir.path().join("config.json"), |c| {
        c["text_config"] = "garbage".into();
    });
    let err = open_err(dir.path());
    assert!(
        err.contains("config.json") && err.contains("without a text_config object"),
        "{err}"
    );
    let renamed = common::copy_family_fixture("gemma3_vision");
    let file = renamed.path().join("model.safetensors");
    let tensors: Vec<RawTensor> = raw_tensors(&file)
        .into_iter()
        .map(|(n, d, s, b)| {
            let n = match n.strip_prefix("language_model.model.") {
                Some(rest) => format!("model.language_model.{rest}"),
                None => n,
            };
            (n, d, s, b)
        })
        .collect();
    write_safetensors(&file, &tensors);
    let (dl, _) = logit_diff(renamed.path(), "gemma3_vision");
    assert!(dl < 1e-4, "model.language_model. names: {dl}");
}

/// OLMo 2: no norm on what attention and the MLP read, a norm on what they write, and q/k
/// norms over the whole projection (all heads at once).
#[test]
fn olmo2_matches_transformers() {
    parity("olmo2");
    let m = open(&fixture("olmo2"));
    assert_eq!(m.kind_label(), "OLMo 2 decoder (Hugging Face safetensors)");
}

/// OLMo 3: OLMo 2's block with a sliding layer and a full one, RoPE per layer kind (YaRN on
/// the full layer, the plain rotation on the sliding one; the older top-level `rope_scaling`,
/// which transformers applies to the full layers only, gives the same model); the window is
/// the context. What the model cannot be is refused naming the key.
#[test]
fn olmo3_matches_transformers() {
    parity("olmo3");
    let m = open(&fixture("olmo3"));
    assert_eq!(m.kind_label(), "OLMo 3 decoder (Hugging Face safetensors)");
    assert_eq!(
        m.model().dims().max_len,
        96,
        "the sliding window is the context"
    );
    let dir = common::copy_family_fixture("olmo3");
    set_config(dir.path(), "rope_parameters", serde_json::Value::Null);
    set_config(dir.path(), "rope_theta", 500_000.0.into());
    let yarn = serde_json::json!({"rope_type": "yarn", "factor": 4.0,
        "original_max_position_embeddings": 32});
    set_config(dir.path(), "rope_scaling", yarn);
    let (older, _) = logit_diff(dir.path(), "olmo3");
    assert!(
        older < 1e-4,
        "rope_scaling as older configs write it: {older}"
    );
    set_config(dir.path(), "rope_scaling", serde_json::Value::Null);
    let (plain, _) = logit_diff(dir.path(), "olmo3");
    assert!(
        plain > 1e-3,
        "without YaRN on the full layer the logits move: {plain}"
    );
    let sliding_yarn = serde_json::json!({
        "full_attention": {"rope_type": "default", "rope_theta": 500000.0},
        "sliding_attention": {"rope_type": "yarn", "rope_theta": 500000.0, "factor": 4.0}});
    for (key, value, fragment) in [
        (
            "layer_types",
            serde_json::json!(["full_attention"]),
            "layer_types names 1 layers of 2",
        ),
        (
            "layer_types",
            serde_json::json!(["chunked_attention", "full_attention"]),
            "\"chunked_attention\"",
        ),
        ("sliding_window", serde_json::Value::Null, "sliding_window"),
        (
            "rope_parameters",
            sliding_yarn,
            "sliding_attention.rope_type \"yarn\"",
        ),
    ] {
        let dir = common::copy_family_fixture("olmo3");
        set_config(dir.path(), key, value);
        let err = open_err(dir.path());
        assert!(err.contains(fragment), "{key}: {err}");
    }
}

/// OPT: GPT-2's block with q, k and v apart with biases, a ReLU MLP, positions read two rows on
/// and `</s>` first in every text: from tokenizer.json, or from vocab.json + merges.txt with
/// tokenizer_config.json's `add_bos_token`, as OPT's own folders hold it.
#[test]
fn opt_matches_transformers() {
    parity("opt");
    let m = open(&fixture("opt"));
    assert_eq!(m.kind_label(), "OPT decoder (Hugging Face safetensors)");
    let r = reference("opt");
    let slow = |with_config: bool| {
        let dir = tempfile::tempdir().unwrap();
        let mut files = vec![
            "config.json",
            "model.safetensors",
            "vocab.json",
            "merges.txt",
        ];
        if with_config {
            files.push("tokenizer_config.json");
        }
        for f in files {
            std::fs::copy(fixture("opt").join(f), dir.path().join(f)).unwrap();
        }
        open(dir.path()).tokenizer().encode(&r.text)
    };
    assert_eq!(
        slow(true),
        r.ids,
        "vocab.json + merges.txt with add_bos_token"
    );
    assert_eq!(
        slow(false),
        r.ids[1..],
        "no tokenizer_config.json: no </s> first"
    );
    for (key, value, fragment) in [
        ("word_embed_proj_dim", 32.into(), "embed_tokens.weight"),
        ("activation_function", "silu".into(), "\"silu\""),
        (
            "layer_norm_elementwise_affine",
            false.into(),
            "elementwise_affine",
        ),
        ("max_position_embeddings", 64.into(), "embed_positions"),
    ] {
        let dir = common::copy_family_fixture("opt");
        set_config(dir.path(), key, value);
        let err = open_err(dir.path());
        assert!(err.contains(fragment), "{key}: {err}");
    }
}

/// OPT-350m's shape: LayerNorm after each sub-layer (so no final LayerNorm) and token
/// embeddings narrower than the blocks (32 against 64), projected in before the positions and
/// out before the tied head. A config that says otherwise of the file is refused naming the
/// tensor; an OPT folder whose config drops its final LayerNorm (`_remove_final_layer_norm`,
/// as old checkpoints do) runs without it, as transformers does.
#[test]
fn opt_350m_matches_transformers() {
    parity_of(&fixture("opt_350m"), "opt_350m", "opt");
    let m = open(&fixture("opt_350m"));
    assert_eq!(m.kind_label(), "OPT decoder (Hugging Face safetensors)");
    for (key, value, fragment) in [
        ("word_embed_proj_dim", 64.into(), "embed_tokens.weight"),
        (
            "do_layer_norm_before",
            true.into(),
            "final_layer_norm.weight",
        ),
        ("word_embed_proj_dim", 0.into(), "word_embed_proj_dim"),
    ] {
        let dir = common::copy_family_fixture("opt_350m");
        set_config(dir.path(), key, value);
        let err = open_err(dir.path());
        assert!(err.contains(fragment), "{key}: {err}");
    }
    let dir = common::copy_family_fixture("opt");
    set_config(dir.path(), "_remove_final_layer_norm", true.into());
    let (moved, _) = logit_diff(dir.path(), "opt");
    assert!(
        moved > 0.1,
        "the final LayerNorm left out moves the logits: {moved}"
    );
}

/// BLOOM: ALiBi for positions (six heads, so the slopes past the largest power of two are
/// used too), a LayerNorm of the embeddings, GPT-NeoX's fused projection interleaved per head;
/// its training length is the context.
#[test]
fn bloom_matches_transformers() {
    parity("bloom");
    let m = open(&fixture("bloom"));
    assert_eq!(m.kind_label(), "BLOOM decoder (Hugging Face safetensors)");
    assert_eq!(m.model().dims().max_len, 2048);
    let dir = common::copy_family_fixture("bloom");
    set_config(dir.path(), "seq_length", 96.into());
    assert_eq!(open(dir.path()).model().dims().max_len, 96);
    set_config(
        dir.path(),
        "apply_residual_connection_post_layernorm",
        true.into(),
    );
    let err = open_err(dir.path());
    assert!(
        err.contains("config.json") && err.contains("apply_residual_connection_post_layernorm"),
        "{err}"
    );
}

/// MPT: no biases, LayerNorms with a weight only, q;k;v in one `Wqkv`, the exact GELU, a tied
/// head, and ALiBi with MPT's slopes (six heads: the slopes past the largest power of two are
/// used too). What transformers' MPT would ignore is refused naming `config.json` and the key.
#[test]
fn mpt_matches_transformers() {
    parity("mpt");
    let m = open(&fixture("mpt"));
    assert_eq!(m.kind_label(), "MPT decoder (Hugging Face safetensors)");
    assert_eq!(m.model().dims().max_len, 128);
    // Each key by its place in config.json ("/attn_config/qk_ln"); all but the last are
    // refused by the config, the last by the weights' shapes.
    for (place, value, fragment) in [
        ("/no_bias", false.into(), "no_bias = false"),
        ("/logit_scale", 0.5.into(), "logit_scale"),
        ("/norm_type", "rmsnorm".into(), "norm_type \"rmsnorm\""),
        ("/attn_config/qk_ln", true.into(), "attn_config.qk_ln"),
        (
            "/attn_config/clip_qkv",
            8.0.into(),
            "attn_config.clip_qkv = 8",
        ),
        (
            "/attn_config/alibi",
            false.into(),
            "attn_config.alibi = false",
        ),
        ("/attn_config/softmax_scale", 0.5.into(), "softmax_scale"),
        (
            "/attn_config/alibi_bias_max",
            (-1.0).into(),
            "alibi_bias_max = -1",
        ),
        ("/expansion_ratio", 2.into(), "shape"),
    ] {
        let dir = common::copy_family_fixture("mpt");
        let path = dir.path().join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let (parent, key) = place.rsplit_once('/').unwrap();
        cfg.pointer_mut(parent).unwrap()[key] = value;
        std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
        let err = open_err(dir.path());
        let by_config = key != "expansion_ratio";
        assert!(
            err.contains(fragment) && (!by_config || err.contains("config.json")),
            "{place}: {err}"
        );
    }
}

/// CodeGen: GPT-J's block with q, k and v in one `qkv_proj` laid out for 4 shards (each its
/// two heads' queries, values, keys), RoPE on 4 of each head's 8 dimensions with neighbouring
/// pairs. Heads that do not fall evenly into the shards are refused naming the key.
#[test]
fn codegen_matches_transformers() {
    parity("codegen");
    let m = open(&fixture("codegen"));
    assert_eq!(m.kind_label(), "CodeGen decoder (Hugging Face safetensors)");
    let dir = common::copy_family_fixture("codegen");
    set_config(dir.path(), "n_head", 2.into());
    let err = open_err(dir.path());
    assert!(
        err.contains("n_head 2") && err.contains("4 shards"),
        "{err}"
    );
    // Read as GPT-J would (its model_type), the same folder is refused: no q_proj.
    let dir = common::copy_family_fixture("codegen");
    set_config(dir.path(), "model_type", "gptj".into());
    set_config(
        dir.path(),
        "architectures",
        serde_json::json!(["GPTJForCausalLM"]),
    );
    let err = open_err(dir.path());
    assert!(err.contains("q_proj"), "{err}");
}

/// StarCoder2: GPT-2's block with q, k and v apart with biases, 2 key/value heads for 4 query
/// heads, RoPE on whole heads at a base near 10⁶ (from `rope_parameters`, or the older
/// `rope_theta`: the same model), a tied head; its sliding window (96) is the context. What the
/// file or the method cannot be is refused naming the key or the tensor.
#[test]
fn starcoder2_matches_transformers() {
    parity("starcoder2");
    let m = open(&fixture("starcoder2"));
    assert_eq!(
        m.kind_label(),
        "StarCoder2 decoder (Hugging Face safetensors)"
    );
    assert_eq!(
        m.model().dims().max_len,
        96,
        "the sliding window is the context"
    );
    let dir = common::copy_family_fixture("starcoder2");
    set_config(dir.path(), "rope_parameters", serde_json::Value::Null);
    set_config(dir.path(), "rope_theta", 999_999.4.into());
    let (older, _) = logit_diff(dir.path(), "starcoder2");
    assert!(
        older < 1e-4,
        "rope_theta as older configs write it: {older}"
    );
    set_config(dir.path(), "rope_theta", 10_000.0.into());
    let (moved, _) = logit_diff(dir.path(), "starcoder2");
    assert!(moved > 1e-3, "another base moves the logits: {moved}");
    for (key, value, fragment) in [
        ("num_key_value_heads", 3.into(), "num_key_value_heads 3"),
        ("num_key_value_heads", 4.into(), "k_proj"),
        (
            "rope_scaling",
            serde_json::json!({"type": "linear", "factor": 2.0}),
            "rope_scaling",
        ),
        (
            "rope_parameters",
            serde_json::json!({"rope_type": "yarn", "rope_theta": 1e6}),
            "rope_type \"yarn\"",
        ),
        ("intermediate_size", 64.into(), "c_fc"),
        ("sliding_window", 0.into(), "sliding_window"),
    ] {
        let dir = common::copy_family_fixture("starcoder2");
        set_config(dir.path(), key, value);
        let err = open_err(dir.path());
        assert!(err.contains(fragment), "{key}: {err}");
    }
}

/// GPT-J: one LayerNorm read by attention and the MLP side by side, q, k and v without biases,
/// RoPE on 8 of each head's 16 dimensions with neighbouring pairs turned together (with NeoX's
/// halves instead, the logits move: the test sees the layout), a head with a bias. An odd
/// `rotary_dim`, or one wider than a head, is refused naming the key.
#[test]
fn gptj_matches_transformers() {
    parity("gptj");
    let m = open(&fixture("gptj"));
    assert_eq!(m.kind_label(), "GPT-J decoder (Hugging Face safetensors)");
    for (value, fragment) in [(7, "rotary_dim = 7 must be even"), (18, "rotary_dim")] {
        let dir = common::copy_family_fixture("gptj");
        set_config(dir.path(), "rotary_dim", value.into());
        let err = open_err(dir.path());
        assert!(
            err.contains("config.json") && err.contains(fragment),
            "{value}: {err}"
        );
    }
}

/// SmolLM3: LLaMA with its fourth layer turning no RoPE. Turning it (every layer with RoPE)
/// moves the logits: the test sees the NoPE layer.
#[test]
fn smollm3_matches_transformers() {
    parity("smollm3");
    let m = open(&fixture("smollm3"));
    assert_eq!(m.kind_label(), "SmolLM3 decoder (Hugging Face safetensors)");
    let dir = common::copy_family_fixture("smollm3");
    set_config(
        dir.path(),
        "no_rope_layers",
        serde_json::json!([1, 1, 1, 1]),
    );
    let (dl, _) = logit_diff(dir.path(), "smollm3");
    assert!(dl > 1e-3, "RoPE on the NoPE layer changes the logits: {dl}");
    for (value, fragment) in [
        (serde_json::json!([1, 1, 0]), "names 3 layers"),
        (serde_json::json!([1, 1, 2, 0]), "holds 2"),
    ] {
        let dir = common::copy_family_fixture("smollm3");
        set_config(dir.path(), "no_rope_layers", value);
        let err = open_err(dir.path());
        assert!(
            err.contains("config.json") && err.contains(fragment),
            "{err}"
        );
    }
}

/// Granite: LLaMA with granite-3.0-2b's four multipliers (embeddings ×12, scores ×1/64,
/// each sub-layer's output ×0.22, logits ÷8); each of them is read (set to 1, the logits move).
#[test]
fn granite_matches_transformers() {
    parity("granite");
    let m = open(&fixture("granite"));
    assert_eq!(m.kind_label(), "Granite decoder (Hugging Face safetensors)");
    for key in [
        "embedding_multiplier",
        "attention_multiplier",
        "residual_multiplier",
        "logits_scaling",
    ] {
        let dir = common::copy_family_fixture("granite");
        set_config(dir.path(), key, 1.0.into());
        let (dl, _) = logit_diff(dir.path(), "granite");
        assert!(dl > 1e-3, "{key} is read: {dl}");
    }
    let dir = common::copy_family_fixture("granite");
    set_config(dir.path(), "logits_scaling", 0.0.into());
    let err = open_err(dir.path());
    assert!(
        err.contains("config.json") && err.contains("logits_scaling = 0"),
        "{err}"
    );
}

/// Phi-4-mini's and Phi-3.5-mini's RoPE: each frequency divided by LongRoPE's short factor
/// within the original context (128 of 512 positions) and by its long factor at every position
/// of a longer text (195 tokens), cos and sin scaled by its attention factor, and RoPE on 12 of
/// each head's 16 dimensions; the positions are the context. The older form of the same
/// config (Phi-3.5-mini's own: `rope_scaling` with `type`, the original context and the
/// partial factor at the top level) reads the same; each setting is read. Without long factors
/// the original context is the context.
#[test]
fn phi3_longrope_matches_transformers() {
    parity_of(&fixture("phi3_longrope"), "phi3_longrope", "phi3");
    let m = open(&fixture("phi3_longrope"));
    assert_eq!(m.model().dims().max_len, 512, "the positions");
    common::assert_matches_long_reference(&m, "phi3_longrope");
    let old_form = |edit: &dyn Fn(&mut serde_json::Value)| {
        let dir = common::copy_family_fixture("phi3_longrope");
        common::edit_json(&dir.path().join("config.json"), |c| {
            let mut rope = c["rope_parameters"].take();
            let o = c.as_object_mut().unwrap();
            o.remove("rope_parameters");
            o.insert("rope_theta".into(), rope["rope_theta"].take());
            let r = rope.as_object_mut().unwrap();
            for k in ["rope_theta", "rope_type", "partial_rotary_factor"] {
                r.remove(k);
                r.remove("original_max_position_embeddings");
            }
            o.insert("rope_scaling".into(), rope);
            edit(c);
        });
        logit_diff(dir.path(), "phi3_longrope").0
    };
    let dl = old_form(&|_| {});
    assert!(dl < 1e-4, "the older form: {dl}");
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 3] = [
        ("the short factors", |c| {
            c["rope_scaling"]["short_factor"] = serde_json::json!([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
        }),
        ("the attention factor", |c| {
            c["rope_scaling"]["attention_factor"] = 1.0.into()
        }),
        ("the partial rotation", |c| {
            c["partial_rotary_factor"] = 0.5.into();
            c["rope_scaling"]["short_factor"] = serde_json::json!([1.0, 1.25, 1.9, 2.6]);
            c["rope_scaling"]["long_factor"] = serde_json::json!([3.0, 3.75, 5.7, 7.8]);
        }),
    ];
    for (what, edit) in edits {
        let dl = old_form(&edit);
        assert!(dl > 1e-3, "{what} is read: {dl}");
    }
    let dir = common::copy_family_fixture("phi3_longrope");
    common::edit_json(&dir.path().join("config.json"), |c| {
        c["rope_parameters"]["long_factor"] = serde_json::json!([1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    });
    let (dl, _) = common::long_reference_diff(&open(dir.path()), "phi3_longrope");
    assert!(dl > 1e-3, "the long factors are read: {dl}");
    common::edit_json(&dir.path().join("config.json"), |c| {
        c["rope_parameters"]
            .as_object_mut()
            .unwrap()
            .remove("long_factor");
    });
    assert_eq!(open(dir.path()).model().dims().max_len, 128);
}

/// YaRN (as Qwen2.5's and Qwen3's long-context settings turn it on) over a text longer than
/// its original context: the blended frequencies and the factor on cos and sin; each read.
#[test]
fn llama_yarn_matches_transformers() {
    parity_of(&fixture("llama_yarn"), "llama_yarn", "llama");
    for (key, value) in [
        ("factor", 2.0),
        ("attention_factor", 1.0),
        ("beta_slow", 0.25),
    ] {
        let dir = common::copy_family_fixture("llama_yarn");
        common::edit_json(&dir.path().join("config.json"), |c| {
            c["rope_parameters"][key] = value.into()
        });
        let (dl, _) = logit_diff(dir.path(), "llama_yarn");
        assert!(dl > 1e-3, "{key} is read: {dl}");
    }
    let dir = common::copy_family_fixture("llama_yarn");
    common::edit_json(&dir.path().join("config.json"), |c| {
        c["rope_parameters"]["rope_type"] = "longrope".into()
    });
    let err = open_err(dir.path());
    assert!(
        err.contains("config.json") && err.contains("needs short_factor"),
        "{err}"
    );
}

/// StableLM (StableLM 2 1.6B's form): LayerNorms with weights and biases, biases on q, k and v,
/// RoPE on the first quarter of each head (also when the config names no
/// `partial_rotary_factor`: transformers' default for StableLM). The LayerNorms' biases and
/// the q/k/v biases are read; the parallel block and per-head q/k norms are refused.
#[test]
fn stablelm_matches_transformers() {
    parity("stablelm");
    let m = open(&fixture("stablelm"));
    assert_eq!(
        m.kind_label(),
        "StableLM decoder (Hugging Face safetensors)"
    );
    let dir = common::copy_family_fixture("stablelm");
    common::edit_json(&dir.path().join("config.json"), |c| {
        c["rope_parameters"]
            .as_object_mut()
            .unwrap()
            .remove("partial_rotary_factor");
    });
    let (dl, _) = logit_diff(dir.path(), "stablelm");
    assert!(dl < 1e-4, "a quarter by default: {dl}");
    for tensor in [
        "model.layers.0.input_layernorm.bias",
        "model.layers.1.self_attn.k_proj.bias",
    ] {
        let dir = common::copy_family_fixture("stablelm");
        zero_tensor(&dir.path().join("model.safetensors"), tensor);
        let (dl, _) = logit_diff(dir.path(), "stablelm");
        assert!(dl > 1e-3, "{tensor} is read: {dl}");
    }
    for (key, fragment) in [
        ("use_parallel_residual", "use_parallel_residual = true"),
        ("qk_layernorm", "qk_layernorm = true"),
    ] {
        let dir = common::copy_family_fixture("stablelm");
        set_config(dir.path(), key, true.into());
        let err = open_err(dir.path());
        assert!(
            err.contains("config.json") && err.contains(fragment),
            "{err}"
        );
    }
}

/// OLMo 1: LayerNorms with no weights or biases (ε fixed at 1e-5; the config names none), and
/// q, k and v clipped as OLMo-7B-0424's are (`clip_qkv`, 1.5 here: a fifth of the values);
/// the clip is read (without it the logits move), and one that is not above 0 is refused.
#[test]
fn olmo_matches_transformers() {
    parity("olmo");
    let m = open(&fixture("olmo"));
    assert_eq!(m.kind_label(), "OLMo decoder (Hugging Face safetensors)");
    let dir = common::copy_family_fixture("olmo");
    set_config(dir.path(), "clip_qkv", serde_json::Value::Null);
    let (dl, _) = logit_diff(dir.path(), "olmo");
    assert!(dl > 1e-3, "the clip is read: {dl}");
    let dir = common::copy_family_fixture("olmo");
    set_config(dir.path(), "clip_qkv", (-1.0).into());
    let err = open_err(dir.path());
    assert!(
        err.contains("config.json") && err.contains("clip_qkv = -1"),
        "{err}"
    );
}

/// GPT-BigCode (SantaCoder, StarCoderBase): GPT-2's block with `Linear` projections; with
/// `multi_query` (every release, and transformers' default when the config names none) one key
/// and one value head shared by the query heads, repeated for each at load; without it,
/// `c_attn`'s rows are each head's q, k, v in turn. Both against transformers; the shared
/// value's bias is read (zeroed, the logits move); a config whose `multi_query` disagrees with the weights
/// is refused naming the tensor and both shapes.
#[test]
fn gpt_bigcode_matches_transformers() {
    parity("gpt_bigcode");
    parity_of(
        &fixture("gpt_bigcode_mha"),
        "gpt_bigcode_mha",
        "gpt_bigcode",
    );
    let m = open(&fixture("gpt_bigcode"));
    assert_eq!(
        m.kind_label(),
        "GPT-BigCode decoder (Hugging Face safetensors)"
    );
    // A config that does not name multi_query shares the key and value.
    let dir = common::copy_family_fixture("gpt_bigcode");
    let path = dir.path().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg.as_object_mut().unwrap().remove("multi_query");
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    assert!(
        logit_diff(dir.path(), "gpt_bigcode").0 < 1e-4,
        "default: shared"
    );
    let dir = common::copy_family_fixture("gpt_bigcode");
    let file = dir.path().join("model.safetensors");
    let mut tensors = raw_tensors(&file);
    let bias = tensors
        .iter_mut()
        .find(|t| t.0 == "transformer.h.0.attn.c_attn.bias")
        .unwrap();
    // The value's 12 values after the 48 of the queries and the 12 of the key, as f32 bytes
    // (a key's bias moves every score of a row alike: the softmax does not see it).
    bias.3[60 * 4..72 * 4].iter_mut().for_each(|b| *b = 0);
    write_safetensors(&file, &tensors);
    assert!(
        logit_diff(dir.path(), "gpt_bigcode").0 > 1e-3,
        "v bias read"
    );
    let dir = common::copy_family_fixture("gpt_bigcode");
    set_config(dir.path(), "multi_query", false.into());
    let err = open_err(dir.path());
    assert!(
        err.contains("model.safetensors") && err.contains("h.0.attn.c_attn.weight"),
        "{err}"
    );
}

/// Falcon in its three shapes against transformers: falcon-7b's (one key and value head,
/// RoPE, attention and MLP side by side on one LayerNorm), falcon-rw-1b's (ALiBi with
/// transformers' bf16 roundings, attention then MLP, biases, q/k/v interleaved per head) and
/// falcon-40b's (two key/value groups, a LayerNorm each). ALiBi without those roundings is
/// visibly off (they are transformers' numbers, not noise); configs it cannot run are named.
#[test]
fn falcon_matches_transformers() {
    for name in ["falcon", "falcon_rw", "falcon_new"] {
        parity_of(&fixture(name), name, "falcon");
    }
    let m = open(&fixture("falcon"));
    assert_eq!(m.kind_label(), "Falcon decoder (Hugging Face safetensors)");
    let refused: [(&str, serde_json::Value, &str); 4] = [
        (
            "num_kv_heads",
            3.into(),
            "num_attention_heads 4 is not a multiple of num_kv_heads 3",
        ),
        (
            "num_ln_in_parallel_attn",
            3.into(),
            "num_ln_in_parallel_attn = 3 is not supported",
        ),
        (
            "rope_scaling",
            serde_json::json!({"type": "linear", "factor": 2.0}),
            "rope_scaling is not supported for Falcon",
        ),
        (
            "activation",
            "swish".into(),
            "activation_function \"swish\"",
        ),
    ];
    for (key, value, fragment) in refused {
        let dir = common::copy_family_fixture("falcon_new");
        set_config(dir.path(), key, value);
        let err = open_err(dir.path());
        assert!(
            err.contains("config.json") && err.contains(fragment),
            "{key}: {err}"
        );
    }
    // A config that says ALiBi where the weights are RoPE's reads the same tensors: the
    // model runs, its logits far from transformers' (the setting is read).
    let dir = common::copy_family_fixture("falcon_rw");
    set_config(dir.path(), "alibi", false.into());
    assert!(logit_diff(dir.path(), "falcon_rw").0 > 1e-3);
}

/// Every value of `tensor` in the safetensors `file` set to 0.
fn zero_tensor(file: &Path, tensor: &str) {
    let mut tensors = raw_tensors(file);
    let t = tensors.iter_mut().find(|t| t.0 == tensor).unwrap();
    t.3.iter_mut().for_each(|b| *b = 0);
    write_safetensors(file, &tensors);
}

/// An OPT without biases (`enable_bias: false`) reads none, and runs as the same model with
/// zero biases.
#[test]
fn opt_without_biases_runs_as_zero_biases() {
    let file = fixture("opt").join("model.safetensors");
    let tensors = raw_tensors(&file);
    let is_bias = |n: &str| n.ends_with(".bias") && !n.contains("layer_norm");
    let zeroed: Vec<RawTensor> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            let b = if is_bias(n) {
                vec![0; b.len()]
            } else {
                b.clone()
            };
            (n.clone(), d.clone(), s.clone(), b)
        })
        .collect();
    let zero_dir = common::copy_family_fixture("opt");
    write_safetensors(&zero_dir.path().join("model.safetensors"), &zeroed);
    let without: Vec<RawTensor> = tensors.into_iter().filter(|t| !is_bias(&t.0)).collect();
    let none_dir = common::copy_family_fixture("opt");
    write_safetensors(&none_dir.path().join("model.safetensors"), &without);
    let err = open_err(none_dir.path());
    assert!(
        err.contains("q_proj.bias"),
        "biases declared but absent: {err}"
    );
    set_config(none_dir.path(), "enable_bias", false.into());
    let (changed, zero) = logit_diff(zero_dir.path(), "opt");
    assert!(
        changed > 1e-3,
        "zeroing the biases changes the model: {changed}"
    );
    let (_, none) = logit_diff(none_dir.path(), "opt");
    let ids = reference("opt").ids;
    let a = zero.model().forward_biased(&ids, &[], false).unwrap();
    let b = none.model().forward_biased(&ids, &[], false).unwrap();
    assert_eq!(max_abs_diff(&a.logits, &b.logits), 0.0);
}

/// What a GPT-NeoX config may not say, each refused naming the file and the field.
#[test]
fn gpt_neox_configs_it_cannot_run_are_refused_by_name() {
    for (key, value, fragment) in [
        (
            "rope_parameters",
            serde_json::json!({"rope_type": "linear", "factor": 2.0}),
            "linear",
        ),
        (
            "rope_parameters",
            serde_json::json!({"partial_rotary_factor": 0.1}),
            "rotates pairs",
        ),
        (
            "rope_parameters",
            serde_json::json!({"partial_rotary_factor": 1.5}),
            "(0, 1]",
        ),
        ("hidden_act", "relu".into(), "hidden_act"),
        ("num_attention_heads", 5.into(), "not a multiple of 5 heads"),
    ] {
        let dir = common::copy_family_fixture("gpt_neox");
        set_config(dir.path(), key, value);
        let err = open_err(dir.path());
        assert!(
            err.contains("config.json") && err.contains(fragment),
            "{key}: {err}"
        );
    }
    // A layer's weights missing: the file and the tensor named.
    let dir = common::copy_family_fixture("gpt_neox");
    set_config(dir.path(), "attention_bias", false.into());
    set_config(dir.path(), "num_hidden_layers", 1.into());
    let err = open_err(dir.path());
    assert!(
        err.contains("layers.1") && err.contains("model.safetensors"),
        "{err}"
    );
}

/// A GPT-2 folder with only the slow tokenizer's files (vocab.json + merges.txt) tokenizes as
/// transformers does.
#[test]
fn gpt2_opens_from_vocab_and_merges_alone() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "vocab.json",
        "merges.txt",
    ] {
        std::fs::copy(fixture("gpt2").join(f), dir.path().join(f)).unwrap();
    }
    let m = open(dir.path());
    let r = reference("gpt2");
    assert_eq!(m.tokenizer().encode(&r.text), r.ids);
    assert!(localist::hf::model_sha256(dir.path()).is_ok());
}

/// λ = 0 leaves the logits as they are; λ = 1 in mode A leaves no attention off the blocks
/// and no NaN.
#[test]
fn the_dial_acts_on_every_family() {
    for name in FAMILIES {
        let m = open(&fixture(name));
        let model = m.model();
        let ids = reference(name).ids;
        let blocks = parity_blocks(model.dims().vocab);
        let plain = model.forward_biased(&ids, &[], false).unwrap();
        let zero = sequence_biases(
            model,
            &blocks.masks(&ids),
            &DialSetting::bias(0.0),
            &Device::Cpu,
        )
        .unwrap();
        let dialled = model.forward_biased(&ids, &zero, false).unwrap();
        let diff = max_abs_diff(&plain.logits, &dialled.logits);
        assert!(diff < 1e-5, "{name}: λ = 0 changed the logits by {diff}");
        let base = capture(model, &blocks, &ids, &DialSetting::bias(0.0)).unwrap();
        let full = capture(model, &blocks, &ids, &DialSetting::bias(1.0)).unwrap();
        let (e0, e1) = (
            base.mean_off_block_mass(None),
            full.mean_off_block_mass(None),
        );
        eprintln!("{name}: ε {e0:.4} at λ = 0, {e1:.2e} at λ = 1");
        assert!(e0 > 0.1, "{name}: ε at λ = 0 is {e0}");
        assert!(e1 < 1e-6, "{name}: ε at λ = 1 is {e1}");
        assert!(full
            .heads
            .iter()
            .all(|h| h.attention.iter().all(|a| a.is_finite())));
    }
}

/// Generation with the KV cache computes what full forwards compute, under the dial (modes A
/// and B), one position per step (the folders and the GGUF files).
#[test]
fn kv_cache_generation_equals_full_forwards() {
    use localist::analysis::dial::{DialMode, DialParams, LayerSchedule};
    use localist::engine::generate::next_distribution;
    use localist::model::backend::KvCache;
    let mixture = DialSetting {
        params: DialParams {
            mode: DialMode::Mixture,
            lambda: 0.5,
            ..DialParams::default()
        },
        schedule: LayerSchedule::Power { gamma: 1.0 },
    };
    for (name, path, ref_ids) in decoders() {
        let m = open(&path);
        let model = m.model();
        let blocks = parity_blocks(model.dims().vocab);
        for dial in [
            DialSetting::bias(0.0),
            DialSetting::bias(0.7),
            mixture.clone(),
        ] {
            let mut ids = ref_ids[..6].to_vec();
            let mut cache = KvCache::default();
            for step in 0..4 {
                let cached =
                    next_distribution(model, &blocks, &ids, &dial, &[], Some(&mut cache)).unwrap();
                assert_eq!(cache.len(), ids.len());
                let full = next_distribution(model, &blocks, &ids, &dial, &[], None).unwrap();
                let diff = max_diff(&cached, &full);
                assert!(diff < 1e-5, "{name} step {step} at {dial:?}: {diff}");
                ids.push(localist::hf::gguf_llama::top_k(&full, 1)[0] as u32);
            }
        }
        // The engine's generation runs on the cache too.
        let tok = m.tokenizer();
        let g = localist::engine::generate::generate(
            model,
            &blocks,
            &tok,
            &ref_ids[..4],
            &DialSetting::bias(0.5),
            &[],
            5,
            3,
        )
        .unwrap();
        assert_eq!(g.steps.len(), 5, "{name}");
    }
}

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a == b) || (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// A capture streamed in chunks of 7 query rows holds the dense capture's summaries and
/// attention (the folders and the GGUF files).
#[test]
fn streamed_captures_equal_dense_captures() {
    for (name, path, ids) in decoders() {
        let m = open(&path);
        let model = m.model();
        let t = ids.len();
        let blocks = parity_blocks(model.dims().vocab);
        let dial = DialSetting::bias(0.6);
        let dense = capture_attention(model, &blocks, &ids, &dial).unwrap();
        let plan = CapturePlan {
            chunk_rows: Some(7),
            ..CapturePlan::default()
        };
        let mut layers = Vec::new();
        let streamed = capture_streamed(model, &blocks, &ids, &dial, &plan, &mut |l| {
            layers.push(l);
            true
        })
        .unwrap();
        assert_eq!(layers, (1..=model.dims().layers).collect::<Vec<_>>());
        assert_eq!(dense.heads.len(), streamed.heads.len());
        for (d, s) in dense.heads.iter().zip(&streamed.heads) {
            let at = format!("{name} {}.{}", d.layer, d.head);
            for (a, b) in d.entropy_bits.iter().zip(&s.entropy_bits) {
                assert!(close(*a, *b, 2e-4), "{at} entropy: {a} vs {b}");
            }
            for (a, b) in d.off_block_mass.iter().zip(&s.off_block_mass) {
                assert!(close(*a, *b, 1e-4), "{at} ε: {a} vs {b}");
            }
            for i in 0..t {
                for j in 0..=i {
                    let (a, b) = (d.attention[i * t + j], s.attention[i * t + j]);
                    assert!(close(a, b, 1e-4), "{at} ({i},{j}): {a} vs {b}");
                }
            }
        }
    }
}

/// Rewrite `key` of the folder's config.json.
fn set_config(dir: &Path, key: &str, value: serde_json::Value) {
    let path = dir.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg[key] = value;
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
}

#[test]
fn an_unsupported_model_type_is_named_with_what_is_supported() {
    for (model_type, arch) in [("mamba", "MambaForCausalLM"), ("t5", "T5Model")] {
        let dir = common::copy_family_fixture("llama");
        set_config(dir.path(), "model_type", model_type.into());
        set_config(dir.path(), "architectures", serde_json::json!([arch]));
        let err = open_err(dir.path());
        assert!(
            err.contains(&format!("model_type \"{model_type}\"")),
            "{err}"
        );
        for supported in [
            "bert", "gpt2", "llama", "mistral", "qwen2", "qwen3", ".gguf",
        ] {
            assert!(err.contains(supported), "{supported} missing: {err}");
        }
        assert_eq!(err.matches("config.json").count(), 1, "{err}");
    }
}

#[test]
fn a_truncated_safetensors_file_is_named() {
    for name in FAMILIES {
        let dir = common::copy_family_fixture(name);
        let file = dir.path().join("model.safetensors");
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let err = open_err(dir.path());
        assert_eq!(err.matches("model.safetensors").count(), 1, "{err}");
        assert!(err.contains("do not hold"), "{err}");
    }
}

/// The first weight of `tensor` in the folder's model.safetensors set to NaN.
fn poison(dir: &Path, tensor: &str) {
    let file = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let begin = header[tensor]["data_offsets"][0].as_u64().unwrap() as usize + 8 + n;
    bytes[begin..begin + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&file, bytes).unwrap();
}

#[test]
fn damaged_folders_are_refused_naming_the_file_and_tensor() {
    let dir = common::copy_family_fixture("gpt2");
    poison(dir.path(), "transformer.h.1.attn.c_attn.weight");
    let err = open_err(dir.path());
    assert!(
        err.contains("tensor transformer.h.1.attn.c_attn.weight holds NaN"),
        "{err}"
    );
    let dir = common::copy_family_fixture("qwen2");
    poison(dir.path(), "model.layers.0.self_attn.k_proj.bias");
    assert!(open_err(dir.path()).contains("k_proj.bias holds NaN"));
    // A config that does not fit the weights is caught before any weight is read.
    let dir = common::copy_family_fixture("llama");
    set_config(dir.path(), "num_key_value_heads", 4.into());
    let err = open_err(dir.path());
    assert!(
        err.contains("tensor model.layers.0.self_attn.k_proj.weight has shape [16, 32], the config needs [32, 32]"),
        "{err}"
    );
    let dir = common::copy_family_fixture("gpt2");
    set_config(dir.path(), "n_layer", 1_000_000_000.into());
    assert!(open_err(dir.path()).contains("n_layer = 1000000000 is outside 1..=256"));
    let dir = common::copy_family_fixture("qwen2");
    set_config(dir.path(), "use_sliding_window", true.into());
    assert!(open_err(dir.path()).contains("use_sliding_window = true without a sliding_window"));
    let dir = common::copy_family_fixture("gpt2");
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    std::fs::remove_file(dir.path().join("merges.txt")).unwrap();
    assert!(open_err(dir.path()).contains("neither tokenizer.json nor vocab.json"));
}

/// The CLI opens a family folder where it takes a model path.
#[test]
fn the_cli_captures_a_family_folder() {
    let dir = common::copy_family_fixture("qwen2");
    let out = dir.path().join("cap.json");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_localist"))
        .args(["capture", "--checkpoint"])
        .arg(dir.path())
        .args(["--text", "But soft, what light", "--lambda", "0.5", "--out"])
        .arg(&out)
        .env("CANDLE_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(json.is_object());
}

/// The worker opens a family folder as the studio's Open… does, captures a text and
/// generates under the dial.
#[test]
fn the_worker_loads_captures_and_generates_on_every_family() {
    use localist::engine::worker::{Command, Event, WorkerHandle};
    let next = |w: &WorkerHandle| loop {
        match w.wait_event(std::time::Duration::from_secs(60)) {
            Some(Event::Threshold(..) | Event::Status(_)) => continue,
            Some(ev) => return ev,
            None => panic!("the worker did not answer"),
        }
    };
    for name in FAMILIES {
        let dir = common::copy_family_fixture(name);
        let w = WorkerHandle::spawn(Box::new(|| {})).unwrap();
        assert!(w.send(Command::Load(dir.path().to_path_buf())));
        match next(&w) {
            Event::Loaded(s) => assert!(s.generates, "{name}: {s:?}"),
            other => panic!("{name}: expected Loaded, got {other:?}"),
        }
        w.send(Command::Capture("But soft, what light".into()));
        match next(&w) {
            Event::Snapshot(cap, _, _) => {
                assert_eq!(cap.num_layers, reference(name).attention.len(), "{name}");
            }
            other => panic!("{name}: expected a snapshot, got {other:?}"),
        }
        w.send(Command::Generate(3));
        match next(&w) {
            Event::Generated(g) => assert_eq!(g.steps.len(), 3, "{name}"),
            other => panic!("{name}: expected a generation, got {other:?}"),
        }
    }
}

/// Weights stored as F16 or BF16 (as real releases are) are read and computed in f32: the
/// logits stay within the rounding of the weights of transformers' f32 ones.
#[test]
fn half_precision_weights_open_and_stay_close() {
    use candle_core::DType;
    let r = reference("qwen2");
    for (dtype, tol) in [(DType::F16, 0.05f32), (DType::BF16, 0.5)] {
        let dir = common::copy_family_fixture("qwen2");
        let file = dir.path().join("model.safetensors");
        let half: std::collections::HashMap<String, Tensor> =
            candle_core::safetensors::load(&file, &Device::Cpu)
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k, v.to_dtype(dtype).unwrap()))
                .collect();
        candle_core::safetensors::save(&half, &file).unwrap();
        let m = open(dir.path());
        let out = m.model().forward_biased(&r.ids, &[], false).unwrap();
        assert_eq!(out.logits.dtype(), DType::F32);
        let logits = out.logits.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        let d = max_diff(logits.iter().flatten(), r.logits.iter().flatten());
        eprintln!("qwen2 in {dtype:?}: logits max |Δ| {d:.3e}");
        assert!(d > 0.0 && d < tol, "{dtype:?}: {d}");
    }
}

/// A rule written against a family's own vocabulary takes effect at run time: "?" attends to
/// "ut" (of "But") with the mass its fidelity asks for, far more than without the rule.
#[test]
fn a_rule_points_every_family_at_its_target() {
    let text = "ROMEO: But soft, what light through yonder window breaks?";
    let rule = r#"rule question_to_but "the question mark attends to But"
  when query.token = "?"
  target token "ut"
  layers all
  heads all
  fidelity 0.9
end
"#;
    for name in FAMILIES {
        let m = open(&fixture(name));
        let tok = m.tokenizer();
        let ids = tok.encode(text);
        let (q, k) = (
            ids.len() - 1,
            ids.iter().position(|&i| tok.token_str(i) == "ut"),
        );
        let k = k.unwrap();
        let blocks = parity_blocks(tok.vocab_size());
        let set = localist::rules::parse::parse_rules(rule).unwrap();
        let rules = localist::rules::check::resolve(&set, &blocks, &tok, &[]).unwrap();
        let rc = localist::rules::inject::capture_with_rules(
            m.model(),
            &blocks,
            &ids,
            &DialSetting::bias(0.0),
            &rules,
        )
        .unwrap();
        let rep = &rc.reports[0];
        eprintln!("{name}: fired {:?} PF_mass {:?}", rep.fired, rep.pf_mass);
        assert_eq!(rep.fired, vec![q], "{name}");
        assert!(rep.pf_mass.is_some_and(|p| p >= 0.9 - 1e-3), "{name}");
        let plain = capture(m.model(), &blocks, &ids, &DialSetting::bias(0.0)).unwrap();
        let t = ids.len();
        let before = plain
            .heads
            .iter()
            .map(|h| f64::from(h.attention[q * t + k]))
            .sum::<f64>()
            / plain.heads.len() as f64;
        assert!(before < 0.5, "{name}: already {before}");
    }
}

/// The CLI's errors for a family folder name the file once, and the CLI's eval reports a
/// perplexity on one.
#[test]
fn the_cli_evaluates_a_family_folder_and_names_an_unsupported_one() {
    let bin = env!("CARGO_BIN_EXE_localist");
    let dir = common::copy_family_fixture("gpt2");
    let o = std::process::Command::new(bin)
        .args([
            "eval",
            "--json",
            "--windows",
            "2",
            "--clusters",
            "4",
            "--lambda",
            "0,1",
        ])
        .arg("--checkpoint")
        .arg(dir.path())
        .env("CANDLE_NUM_THREADS", "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("perplexity"), "{out}");
    set_config(dir.path(), "model_type", "mamba".into());
    let o = std::process::Command::new(bin)
        .args(["capture", "--text", "hello", "--checkpoint"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains("model_type \"mamba\" is not supported"),
        "{err}"
    );
    assert_eq!(err.matches("config.json").count(), 1, "{err}");
}

/// The theory curve on every family: no row breaks a derived bound, and mode A's closed form
/// matches the measured layer-0 off-block mass at every λ.
#[test]
fn the_theory_curve_holds_on_every_family() {
    use localist::engine::theory::theory_curve;
    let lambdas: Vec<f64> = (0..=5).map(|k| k as f64 / 5.0).collect();
    for name in FAMILIES {
        let m = open(&fixture(name));
        let ids = reference(name).ids;
        let blocks = parity_blocks(m.model().dims().vocab);
        let curve =
            theory_curve(m.model(), &blocks, &ids, &DialSetting::bias(0.0), &lambdas).unwrap();
        for p in &curve {
            assert_eq!(
                p.violations, 0,
                "{name} λ={}: {:?}",
                p.lambda, p.first_violation
            );
            let cf = p.eps_layer0_closed_form.unwrap();
            assert!(
                (cf - p.eps_layer0).abs() < 1e-5,
                "{name} λ={}: {cf} vs {}",
                p.lambda,
                p.eps_layer0
            );
        }
    }
}

/// A LLaMA-3.1/3.2 folder's "llama3" RoPE scaling, as transformers 5 writes it
/// (`rope_parameters`) and as older configs do (`rope_theta` + `rope_scaling`): the numbers
/// transformers computes under it (`tests/fixtures/llama3.json`, made by
/// `scripts/make_gguf_fixture.py`). A scaling transformers does not know, and a llama3 one
/// that cannot be computed, are refused by name (the others: `tests/hf_rope.rs`).
#[test]
fn llama3_rope_scaling_matches_transformers_and_others_are_refused() {
    let r = common::llama3_reference();
    let scaling = r.scaling.clone();
    let mut new_style = scaling.clone();
    new_style["rope_type"] = "llama3".into();
    new_style["rope_theta"] = 10_000.0.into();
    let mut old_style = scaling.clone();
    old_style["rope_type"] = "llama3".into();
    for (key, value) in [("rope_parameters", new_style), ("rope_scaling", old_style)] {
        let dir = common::copy_family_fixture("llama");
        set_config(dir.path(), key, value);
        let m = open(dir.path());
        assert_eq!(m.tokenizer().encode(&r.text), r.ids);
        common::assert_matches_llama3(m.model(), &format!("llama3 scaling in {key}"));
    }
    let mut equal = scaling.clone();
    equal["rope_type"] = "llama3".into();
    equal["high_freq_factor"] = 1.0.into();
    for (value, needle) in [
        (
            serde_json::json!({"type": "ntk-by-parts", "factor": 2.0}),
            "rope_type \"ntk-by-parts\" is not supported",
        ),
        (
            serde_json::json!({"factor": 2.0}),
            "rope_scaling without a rope_type",
        ),
        (equal, "high_freq_factor 1 must be above low_freq_factor 1"),
    ] {
        let dir = common::copy_family_fixture("llama");
        set_config(dir.path(), "rope_scaling", value);
        let err = open_err(dir.path());
        assert!(err.contains(needle) && err.contains("config.json"), "{err}");
    }
}
