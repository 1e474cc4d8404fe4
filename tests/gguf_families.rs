//! GGUF files of the Qwen2, Qwen3 and LLaMA-3 kinds, written by `scripts/make_gguf_fixture.py` from
//! the tiny folders of `tests/fixtures/families/` as llama.cpp's converter writes them:
//! `qwen2.gguf` (architecture "qwen2", q/k/v biases, RoPE on halves, pre-tokenizer "qwen2"),
//! `qwen3.gguf` (architecture "qwen3", per-head q/k norms, a head width of its own) and
//! `llama3.gguf` (q/k permuted for the interleaved RoPE, pre-tokenizer "llama-bpe", a BOS token
//! first, "llama3" RoPE scaling as per-frequency factors in `rope_freqs.weight`). Each gives the
//! ids, logits and attention transformers computes for its folder (LLaMA-3: under that
//! scaling, `tests/fixtures/llama3.json`), and each pre-tokenizer splits text as its regular
//! expression does. Damaged ones: `tests/hostile/gguf-qwen2-*`, `gguf-qwen3-*`,
//! `gguf-rope-freqs-zero`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{max_diff, open_imported as open};

use std::path::PathBuf;

use candle_core::Device;
use localist::data::tokenizer::Tokenizer;
use localist::hf::ImportedModel;

fn gguf(name: &str) -> PathBuf {
    common::root().join(format!("tests/fixtures/{name}.gguf"))
}

/// The folder's reference.json: what transformers computed (text, ids, logits, attention).
#[test]
fn a_qwen2_gguf_matches_transformers() {
    gguf_matches_its_folder("qwen2", "Qwen2 decoder (GGUF");
}

/// Qwen3: `qwen3.attention.key_length` names a head width (16) other than width / heads (8),
/// and each head's queries and keys go through `attn_q_norm` / `attn_k_norm` before RoPE.
#[test]
fn a_qwen3_gguf_matches_transformers() {
    gguf_matches_its_folder("qwen3", "Qwen3 decoder (GGUF");
}

/// Phi-3: q, k and v fused in `attn_qkv`, gate and up in `ffn_up` (gate first), cut apart
/// at load; `phi3.attention.sliding_window` (96) taken as the context.
#[test]
fn a_phi3_gguf_matches_transformers() {
    gguf_matches_its_folder("phi3", "Phi-3 decoder (GGUF");
    assert_eq!(open(&gguf("phi3")).model().dims().max_len, 96);
}

/// Phi-3.5's and Phi-4-mini's RoPE in a GGUF file as llama.cpp's converter writes it: RoPE on
/// 12 of each head's 16 dimensions (`phi3.rope.dimension_count`; q and k reordered at load),
/// LongRoPE's `rope_factors_short.weight` and `phi3.rope.scaling.attn_factor`, and past the
/// original context (`phi3.rope.scaling.original_context_length`, 128 of 512) its
/// `rope_factors_long.weight` at every position.
#[test]
fn a_phi3_longrope_gguf_matches_transformers() {
    let m = open(&gguf("phi3_longrope"));
    assert_eq!(m.arch_label(), "phi3");
    let (dl, da) = against_reference(&m, "phi3_longrope");
    eprintln!("phi3_longrope GGUF: logits max |Δ| {dl:.2e}, attention max |Δ| {da:.2e}");
    assert_eq!(m.model().dims().max_len, 512);
    common::assert_matches_long_reference(&m, "phi3_longrope");
}

fn gguf_matches_its_folder(name: &str, label: &str) {
    let m = open(&gguf(name));
    assert_eq!(m.arch_label(), name);
    assert!(m.kind_label().starts_with(label), "{}", m.kind_label());
    let (dl, da) = against_reference(&m, name);
    eprintln!("{name} GGUF: logits max |Δ| {dl:.2e}, attention max |Δ| {da:.2e}");
}

/// `m` on the text of the `name` folder's reference.json: transformers' ids, then (logits,
/// attention) max |Δ|, asserted within 1e-4 and 1e-5.
fn against_reference(m: &ImportedModel, name: &str) -> (f32, f32) {
    let bytes = std::fs::read(common::family_fixture(name).join("reference.json")).unwrap();
    let r: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let text: String = serde_json::from_value(r["text"].clone()).unwrap();
    let ids: Vec<u32> = serde_json::from_value(r["ids"].clone()).unwrap();
    let logits: Vec<Vec<f32>> = serde_json::from_value(r["logits"].clone()).unwrap();
    let attention: Vec<Vec<Vec<Vec<f32>>>> =
        serde_json::from_value(r["attention"].clone()).unwrap();
    assert_eq!(m.tokenizer().encode(&text), ids, "{name}: token ids");
    let out = m.model().forward_biased(&ids, &[], false).unwrap();
    let ours = out.logits.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    let dl = max_diff(ours.iter().flatten(), logits.iter().flatten());
    let mut da = 0f32;
    assert_eq!(out.attention.len(), attention.len(), "{name}: layers");
    for (a, want) in out.attention.iter().zip(&attention) {
        let a = a.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        da = da.max(max_diff(
            a.iter().flatten().flatten(),
            want.iter().flatten().flatten(),
        ));
    }
    assert!(dl < 1e-4, "{name}: logits differ by {dl}");
    assert!(da < 1e-5, "{name}: attention differs by {da}");
    (dl, da)
}

/// The text of a piece in GPT-2's printable bytes (what a byte-level pre-tokenizer emits).
fn from_byte_level(s: &str) -> String {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut map = [0u32; 256];
    for &b in &printable {
        map[b as usize] = b;
    }
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            map[b as usize] = 256 + extra;
            extra += 1;
        }
    }
    printable.clear();
    let bytes: Vec<u8> = s
        .chars()
        .map(|c| map.iter().position(|&m| m == c as u32).unwrap() as u8)
        .collect();
    String::from_utf8(bytes).unwrap()
}

/// Qwen2's and LLaMA-3's pre-tokenizers split as their regular expressions do. The pieces
/// were computed by Python's `regex` module with the patterns of their tokenizer.json files
/// (not by the Rust library under test); GPT-2's split gives other pieces (`'`, `M`; ` 1234`;
/// `\n`, `\n`; …).
#[test]
fn qwen2_and_llama3_split_text_as_their_patterns_do() {
    // Pieces between bars ('|' is not in the text).
    let qwen2 = "I|'M| here|:| |1|2|3|4| THE|'LL| | x|\n\n|yes|!?\n| | «|Ünïcode|»| |3|.|1|4|\tend";
    assert_eq!(pieces("qwen2"), qwen2.split('|').collect::<Vec<_>>());
    // LLaMA-3's digits go in threes.
    let llama3 = "I|'M| here|:| |123|4| THE|'LL| | x|\n\n|yes|!?\n| | «|Ünïcode|»| |3|.|14|\tend";
    assert_eq!(pieces("llama3"), llama3.split('|').collect::<Vec<_>>());
}

/// The pieces `name`'s pre-tokenizer cuts the test text into, as text.
fn pieces(name: &str) -> Vec<String> {
    use tokenizers::PreTokenizer;
    let text = "I'M here: 1234 THE'LL  x\n\nyes!?\n  «Ünïcode» 3.14\tend";
    let m = localist::hf::gguf_llama::GgufLlama::open(&gguf(name), &Device::Cpu).unwrap();
    let pre = m.hf_tokenizer().get_pre_tokenizer().unwrap();
    let mut s = tokenizers::PreTokenizedString::from(text);
    pre.pre_tokenize(&mut s).unwrap();
    s.get_splits(
        tokenizers::OffsetReferential::Original,
        tokenizers::OffsetType::Byte,
    )
    .into_iter()
    .map(|(piece, _, _)| from_byte_level(piece))
    .collect()
}

/// The LLaMA-3 file: `<s>` first (`add_bos_token`), the q/k rows permuted back by the
/// interleaved RoPE, and the frequencies divided by `rope_freqs.weight`: transformers' numbers
/// for the folder under the same "llama3" scaling (which moves its logits by up to 8.9).
#[test]
fn a_llama3_gguf_with_rope_factors_matches_transformers() {
    let r = common::llama3_reference();
    let m = open(&gguf("llama3"));
    assert_eq!(m.arch_label(), "llama");
    let got = m.tokenizer().encode(&r.text);
    assert_eq!(got, r.ids, "token ids (BOS first)");
    assert_eq!(m.tokenizer().token_str(got[0]), "<s>");
    common::assert_matches_llama3(m.model(), "llama3 GGUF");
}

/// A SentencePiece GGUF (`tokenizer.ggml.model` "llama", as TinyLlama's, LLaMA-2's and
/// Mistral's files are): `scripts/make_spm_gguf_fixture.py` trained a BPE of 512 pieces with
/// LLaMA's settings and wrote it as llama.cpp's converter does; each text gives exactly the
/// ids SentencePiece itself gives (BOS first), merges, spaces (leading, doubled, trailing),
/// tabs and newlines in byte pieces, and characters outside the vocabulary spelled in bytes
/// (`«Ünïcode»`, CJK, an emoji) included; decoding gives the text back.
#[test]
fn a_sentencepiece_gguf_tokenizes_as_sentencepiece_does() {
    let bytes = std::fs::read(common::root().join("tests/fixtures/spm.json")).unwrap();
    let r: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let m = open(&gguf("spm"));
    assert_eq!(m.arch_label(), "llama");
    let hf = m.decoder().unwrap().hf_tokenizer();
    let cases = r["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    let mut merged = 0;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(m.tokenizer().encode(text), want, "{text:?}");
        merged += case["pieces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                p.as_str().unwrap().chars().count() > 1 && !p.as_str().unwrap().starts_with("<0x")
            })
            .count();
        let back = hf.decode(&want, true).unwrap();
        assert_eq!(back, text, "decoded");
    }
    assert!(
        merged > 50,
        "the texts exercise the merges ({merged} merged pieces)"
    );
    // It runs as any LLaMA GGUF does.
    let ids = m.tokenizer().encode(cases[0]["text"].as_str().unwrap());
    let out = m.model().forward_biased(&ids, &[], false).unwrap();
    assert_eq!(out.logits.dims3().unwrap(), (1, ids.len(), 512));
}

/// The same SentencePiece model in a LLaMA folder's `tokenizer.json`, as Hugging Face converts
/// TinyLlama's (`make_spm_gguf_fixture.py`: a Prepend/Replace normalizer, byte fallback,
/// transformers' own merges, a decoder that strips the first space): SentencePiece's ids, and
/// surface strings that keep a piece's space (" the" — the decoder alone gives "the").
#[test]
fn a_sentencepiece_folder_tokenizes_as_sentencepiece_does() {
    let bytes = std::fs::read(common::root().join("tests/fixtures/spm.json")).unwrap();
    let r: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let m = open(&common::family_fixture("llama_spm"));
    for case in r["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(m.tokenizer().encode(text), want, "{text:?}");
    }
    let pieces: Vec<String> = serde_json::from_value(r["cases"][0]["pieces"].clone()).unwrap();
    let ids: Vec<u32> = serde_json::from_value(r["cases"][0]["ids"].clone()).unwrap();
    for (piece, want) in [("▁the", " the"), ("ght", "ght")] {
        let k = pieces.iter().position(|p| p == piece).unwrap();
        assert_eq!(m.tokenizer().token_str(ids[k + 1]), want, "{piece}");
    }
}

/// Gemma, Gemma 2 and Gemma 3 GGUF files as llama.cpp's converter writes them (norm weights
/// with the 1 of (1 + w) added, Gemma 2's caps and window, Gemma 3's two RoPE bases, and the
/// linear stretch of gemma-3-4b's global layers (`gemma3.rope.scaling.type` linear, factor 8,
/// which llama.cpp leaves off the local layers: the text decoder of the tiny multimodal
/// `gemma3_vision`, converted as llama.cpp converts gemma-3-4b-it); the vocabulary written as
/// byte-level BPE, as the tiny folders' tokenizers are): transformers' ids, logits and
/// attention. llama.cpp scales Gemma 2's scores by d_h^-½ whatever the folder's
/// `query_pre_attn_scalar` (the converter does not write it; the released 2B and 9B have it
/// equal to d_h), so the Gemma 2 file matches its folder with that scalar set to d_h.
#[test]
fn gemma_files_from_llama_cpps_converter_match() {
    let file = |n: &str| common::root().join(format!("tests/fixtures/llamacpp/{n}.gguf"));
    for name in ["gemma", "gemma3_text", "gemma3_vision"] {
        let m = open(&file(name));
        assert!(
            m.kind_label().starts_with("Gemma") && m.kind_label().contains("decoder (GGUF"),
            "{}",
            m.kind_label()
        );
        let (dl, da) = against_reference(&m, name);
        eprintln!("llama.cpp's {name}.gguf: logits max |Δ| {dl:.2e}, attention max |Δ| {da:.2e}");
    }
    let m = open(&file("gemma2"));
    assert_eq!(m.model().dims().max_len, 96, "the window is the context");
    let dir = common::copy_family_fixture("gemma2");
    let cfg = dir.path().join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    c["query_pre_attn_scalar"] = 16.into();
    std::fs::write(&cfg, serde_json::to_vec(&c).unwrap()).unwrap();
    let folder = open(dir.path());
    let r: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::family_fixture("gemma2").join("reference.json")).unwrap(),
    )
    .unwrap();
    let ids: Vec<u32> = serde_json::from_value(r["ids"].clone()).unwrap();
    assert_eq!(m.tokenizer().encode(r["text"].as_str().unwrap()), ids);
    let (a, b) = (
        m.model().forward_biased(&ids, &[], false).unwrap(),
        folder.model().forward_biased(&ids, &[], false).unwrap(),
    );
    let diff = |x: &candle_core::Tensor, y: &candle_core::Tensor| {
        (x - y)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert!(
        diff(&a.logits, &b.logits) < 1e-5,
        "{}",
        diff(&a.logits, &b.logits)
    );
    for (x, y) in a.attention.iter().zip(&b.attention) {
        assert!(diff(x, y) < 1e-6);
    }
}

/// A Gemma 2 file whose score cap is not a positive number is refused naming the key (a cap
/// of 0 divides by zero; a NaN would make every attention weight NaN).
#[test]
fn a_gemma_cap_that_is_not_positive_is_refused() {
    let bytes = std::fs::read(common::root().join("tests/fixtures/llamacpp/gemma2.gguf")).unwrap();
    let key = b"gemma2.attn_logit_softcapping";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()),
        6,
        "an f32"
    );
    for bad in [0.0f32, -2.0, f32::NAN] {
        let mut b = bytes.clone();
        b[at + 4..at + 8].copy_from_slice(&bad.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.gguf");
        std::fs::write(&file, b).unwrap();
        let err = match ImportedModel::open(&file, &candle_core::Device::Cpu) {
            Ok(_) => panic!("a cap of {bad} opened"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("gemma2.attn_logit_softcapping") && err.contains("model.gguf"),
            "{err}"
        );
    }
}

/// Files written by llama.cpp's own converter (`convert_hf_to_gguf.py` of the llama.cpp that
/// llama-cpp-python 0.3.36 vendors, `--outtype f32`, on the tiny folders; see
/// `scripts/llamacpp_convert.sh`) give transformers' ids, logits and attention for their
/// folders: the layout the fixtures above reproduce is the converter's.
#[test]
fn files_from_llama_cpps_converter_match_transformers() {
    // SmolLM3: interleaved RoPE (the converter permutes q and k as for LLaMA) and no RoPE in
    // every fourth layer, a step llama.cpp fixes at 4. Granite: four scales under llama.cpp's
    // names (granite.embedding_scale, …).
    // StableLM: LayerNorms with biases, q/k/v biases, RoPE on a quarter of each head (NEOX
    // pairs); OLMo 1: LayerNorms without weights (none in the file), q and k permuted.
    for name in [
        "llama", "mistral", "qwen2", "qwen3", "phi3", "olmo2", "smollm3", "granite", "stablelm",
        "olmo",
    ] {
        let m = open(&common::root().join(format!("tests/fixtures/llamacpp/{name}.gguf")));
        let (dl, da) = against_reference(&m, name);
        eprintln!("llama.cpp's {name}.gguf: logits max |Δ| {dl:.2e}, attention max |Δ| {da:.2e}");
    }
    // Its SentencePiece file (the SentencePiece folder with its tokenizer.model): SentencePiece's
    // ids, and the folder's logits.
    let bytes = std::fs::read(common::root().join("tests/fixtures/spm.json")).unwrap();
    let r: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let m = open(&common::root().join("tests/fixtures/llamacpp/llama_spm.gguf"));
    let folder = open(&common::family_fixture("llama_spm"));
    for case in r["cases"].as_array().unwrap() {
        let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(m.tokenizer().encode(case["text"].as_str().unwrap()), want);
    }
    let ids: Vec<u32> = serde_json::from_value(r["cases"][0]["ids"].clone()).unwrap();
    let a = m.model().forward_biased(&ids, &[], false).unwrap().logits;
    let b = folder
        .model()
        .forward_biased(&ids, &[], false)
        .unwrap()
        .logits;
    let d = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-5, "SentencePiece GGUF against its folder: {d}");
}

/// A Phi-3-architecture GGUF whose `sliding_window` is 0 has no window (llama.cpp's converter
/// writes 0 for Phi-4, which has none): its context is `context_length`.
#[test]
fn a_phi3_gguf_window_of_zero_means_none() {
    let m = open(&common::root().join("tests/fixtures/phi3-window0.gguf"));
    assert_eq!(m.model().dims().max_len, 128);
}

/// Files of the families built on GPT-2's block from llama.cpp's converter
/// (`scripts/llamacpp_convert.sh`): Phi-2 with q, k and v apart, as it writes them now, and
/// joined in one `attn_qkv`, as the converter of 2023 wrote the Phi-2 files most downloaded;
/// GPT-2; GPT-BigCode (`starcoder`: one key and value shared by every head); GPT-NeoX with
/// RoPE on a quarter of each head, side by side, and on half, in sequence without attention
/// biases; BLOOM (ALiBi, normed embeddings); Falcon as falcon-7b (one key and value shared, one
/// norm) and as falcon-40b (two key/value groups of four heads, a norm each); MPT (no biases,
/// ALiBi of `mpt.attention.max_alibi_bias`); StarCoder2 (q, k and v written apart, two
/// key/value heads for four, RoPE on whole heads at a base near 10⁶). Each gives
/// transformers' ids, logits and attention for the folder it was converted from; the label
/// says GGUF, and blocks are saved beside the file.
#[test]
fn gpt2_block_files_from_llama_cpps_converter_match_transformers() {
    for (name, folder, arch, label) in [
        ("phi2", "phi", "phi", "Phi-2 decoder (GGUF"),
        ("phi2_fused", "phi", "phi", "Phi-2 decoder (GGUF"),
        ("gpt2", "gpt2", "gpt2", "GPT-2 decoder (GGUF"),
        (
            "starcoder",
            "gpt_bigcode",
            "gpt_bigcode",
            "GPT-BigCode decoder (GGUF",
        ),
        ("gpt_neox", "gpt_neox", "gpt_neox", "GPT-NeoX decoder (GGUF"),
        (
            "gpt_neox_sequential",
            "gpt_neox_sequential",
            "gpt_neox",
            "GPT-NeoX decoder (GGUF",
        ),
        ("bloom", "bloom", "bloom", "BLOOM decoder (GGUF"),
        ("falcon", "falcon", "falcon", "Falcon decoder (GGUF"),
        ("falcon_new", "falcon_new", "falcon", "Falcon decoder (GGUF"),
        ("mpt", "mpt", "mpt", "MPT decoder (GGUF"),
        (
            "starcoder2",
            "starcoder2",
            "starcoder2",
            "StarCoder2 decoder (GGUF",
        ),
    ] {
        let path = common::root().join(format!("tests/fixtures/llamacpp/{name}.gguf"));
        let m = open(&path);
        assert!(m.kind_label().starts_with(label), "{}", m.kind_label());
        assert_eq!(m.arch_label(), arch);
        let beside = format!("{}.blocks.json", path.display());
        assert_eq!(m.blocks_path(), PathBuf::from(beside));
        let (dl, da) = against_reference(&m, folder);
        eprintln!("llama.cpp's {name}.gguf: logits max |Δ| {dl:.2e}, attention max |Δ| {da:.2e}");
    }
}

/// A damaged file is refused naming the file and what is wrong: of Phi-2, a tensor missing (its
/// name written over), a size missing from the metadata, and RoPE over an odd number of a
/// head's dimensions; of GPT-BigCode, key/value heads neither one nor one per head.
#[test]
fn a_damaged_gpt2_block_file_is_refused_naming_what_is_wrong() {
    let good = std::fs::read(common::root().join("tests/fixtures/llamacpp/phi2.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let patched = |from: &[u8], to: &[u8]| {
        let at = good.windows(from.len()).position(|w| w == from).unwrap();
        let mut b = good.clone();
        b[at..at + to.len()].copy_from_slice(to);
        b
    };
    // rope.dimension_count is a u32 (type 4) of 6 after its name: 5 is odd.
    let key = b"phi2.rope.dimension_count";
    let at = good.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(&good[at..at + 8], &[4, 0, 0, 0, 6, 0, 0, 0]);
    let mut odd = good.clone();
    odd[at + 4] = 5;
    for (name, bytes, want) in [
        (
            "tensor",
            patched(b"blk.1.ffn_up.weight", b"blk.1.ffn_uq.weight"),
            "tensor blk.1.ffn_up.weight is missing",
        ),
        (
            "eps",
            patched(
                b"phi2.attention.layer_norm_epsilon",
                b"phi2.attention.layer_norm_epsilox",
            ),
            "metadata phi2.attention.layer_norm_epsilon is missing",
        ),
        ("rope", odd, "rope.dimension_count = 5"),
    ] {
        let path = dir.path().join(format!("{name}.gguf"));
        std::fs::write(&path, bytes).unwrap();
        let err = common::open_imported_err(&path);
        assert!(err.contains(&format!("{name}.gguf")), "{err}");
        assert!(err.contains(want), "{name}: {err}");
    }
    // GPT-BigCode with two key/value heads of four: its projection's order is not known here.
    let sc = std::fs::read(common::root().join("tests/fixtures/llamacpp/starcoder.gguf")).unwrap();
    let key = b"starcoder.attention.head_count_kv";
    let at = sc.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(&sc[at..at + 8], &[4, 0, 0, 0, 1, 0, 0, 0]);
    let mut two = sc.clone();
    two[at + 4] = 2;
    let path = dir.path().join("kv.gguf");
    std::fs::write(&path, two).unwrap();
    let err = common::open_imported_err(&path);
    assert!(
        err.contains("kv.gguf") && err.contains("head_count_kv = 2"),
        "{err}"
    );
}

/// A damaged GPT-NeoX, BLOOM, Falcon, MPT or StarCoder2 file is refused naming the file and
/// what is wrong: Falcon's and StarCoder2's key/value groups must divide the heads (3 of 4 do
/// not); BLOOM's heads each have their own key and value; GPT-NeoX's parallel-residual flag is
/// a boolean; MPT without ALiBi (`max_alibi_bias` 0: learned positions, which transformers'
/// MPT does not run); StarCoder2 without one of its values (its name written over).
#[test]
fn a_damaged_neox_bloom_falcon_mpt_or_starcoder2_file_is_refused_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let mpt = std::fs::read(common::root().join("tests/fixtures/llamacpp/mpt.gguf")).unwrap();
    let key = b"mpt.attention.max_alibi_bias";
    let at = mpt.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(&mpt[at..at + 8], &[6, 0, 0, 0, 0, 0, 0, 0x41]);
    let mut b = mpt.clone();
    b[at + 7] = 0;
    let path = dir.path().join("mpt_alibi.gguf");
    std::fs::write(&path, b).unwrap();
    let err = common::open_imported_err(&path);
    assert!(
        err.contains("mpt_alibi.gguf") && err.contains("mpt.attention.max_alibi_bias = 0"),
        "{err}"
    );
    for (name, key, from, to) in [
        ("falcon_new", "falcon.attention.head_count_kv", 2u8, 3u8),
        ("bloom", "bloom.attention.head_count_kv", 6, 3),
        ("starcoder2", "starcoder2.attention.head_count_kv", 2, 3),
    ] {
        let b = std::fs::read(common::root().join(format!("tests/fixtures/llamacpp/{name}.gguf")));
        let mut b = b.unwrap();
        let at = b
            .windows(key.len())
            .position(|w| w == key.as_bytes())
            .unwrap()
            + key.len();
        assert_eq!(&b[at..at + 8], &[4, 0, 0, 0, from, 0, 0, 0], "{name}");
        b[at + 4] = to;
        let path = dir.path().join(format!("{name}_kv.gguf"));
        std::fs::write(&path, b).unwrap();
        let err = common::open_imported_err(&path);
        assert!(
            err.contains(&format!("{name}_kv.gguf"))
                && err.contains(&format!("head_count_kv = {to}")),
            "{err}"
        );
    }
    // GPT-NeoX's parallel residual is a boolean (type 7); a u8 (type 0) in its place is named.
    let neox = std::fs::read(common::root().join("tests/fixtures/llamacpp/gpt_neox.gguf")).unwrap();
    let key = b"gptneox.use_parallel_residual";
    let at = neox.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(&neox[at..at + 5], &[7, 0, 0, 0, 1]);
    let mut b = neox.clone();
    b[at] = 0;
    let path = dir.path().join("neox_bool.gguf");
    std::fs::write(&path, b).unwrap();
    let err = common::open_imported_err(&path);
    assert!(
        err.contains("neox_bool.gguf") && err.contains("use_parallel_residual is not a boolean"),
        "{err}"
    );
    let sc2 = common::root().join("tests/fixtures/llamacpp/starcoder2.gguf");
    let mut b = std::fs::read(sc2).unwrap();
    let name = b"blk.1.attn_v.weight";
    let at = b.windows(name.len()).position(|w| w == name).unwrap();
    b[at + 11] = b'x';
    let path = dir.path().join("starcoder2_no_v.gguf");
    std::fs::write(&path, b).unwrap();
    let err = common::open_imported_err(&path);
    assert!(
        err.contains("starcoder2_no_v.gguf") && err.contains("blk.1.attn_v.weight"),
        "{err}"
    );
}
