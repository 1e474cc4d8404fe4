//! Inputs the structured fuzzers (`scripts/fuzz_json_files.py`, `scripts/fuzz_gguf_metadata.py`)
//! found to abort or panic, or to fail with an error that named nothing, each made again from a
//! bundled fixture with the one value the fuzzer changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use localist::engine::jobs::capture::capture_text;
use localist::model::dial::DialSetting;

const TEXT: &str = "the quick brown fox jumps over the lazy dog";

/// Overwrite the u32 value of GGUF metadata key `key` in the file at `path` (same length, so
/// nothing after it moves).
fn set_gguf_u32(path: &Path, key: &str, value: u32) {
    let mut b = std::fs::read(path).unwrap();
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    let at = b
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap_or_else(|| panic!("{key} not in {}", path.display()));
    let t = at + needle.len();
    assert_eq!(&b[t..t + 4], &4u32.to_le_bytes(), "{key} is not a u32");
    b[t + 4..t + 8].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, b).unwrap();
}

/// Gemma's GGUF reader sized its per-layer sliding-window list by `block_count` before the
/// checks refused it: u32::MAX aborted with "memory allocation of 4294967295 bytes failed".
#[test]
fn a_gemma_gguf_with_four_billion_layers_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (name, arch) in [
        ("gemma", "gemma"),
        ("gemma2", "gemma2"),
        ("gemma3_text", "gemma3"),
    ] {
        let file = dir.path().join(format!("{name}.gguf"));
        std::fs::copy(
            common::root().join(format!("tests/fixtures/llamacpp/{name}.gguf")),
            &file,
        )
        .unwrap();
        set_gguf_u32(&file, &format!("{arch}.block_count"), u32::MAX);
        let err = common::open_imported_err(&file);
        assert!(
            err.contains(&format!("{name}.gguf"))
                && err.contains(&format!(
                    "{arch}.block_count = 4294967295 is outside 1..=256"
                )),
            "{err}"
        );
    }
}

/// A tokenizer.json whose `Strip` decoder strips more than a token has: the tokenizers crate
/// panics decoding such a token, and opening the folder (which decodes every token for its
/// label) panicked. Now the token is labelled by its id and the text is captured.
#[test]
fn a_strip_decoder_that_strips_too_much_does_not_panic() {
    let dir = common::copy_family_fixture("llama_spm");
    common::edit_json(&dir.path().join("tokenizer.json"), |t| {
        let strip = &mut t["decoder"]["decoders"][3];
        assert_eq!(strip["type"], "Strip");
        strip["stop"] = 3.into();
    });
    let cap = capture_text(dir.path(), TEXT, &DialSetting::bias(0.0)).unwrap();
    assert!(cap.tokens.len() > 5);
}

/// A tokenizer that fails on the text (a post-processor whose special tokens are gone) was
/// reported as "--text is empty after tokenization", naming neither the failure nor the model.
#[test]
fn a_tokenizer_that_fails_on_the_text_is_named_with_its_error() {
    let dir = common::copy_family_fixture("llama");
    common::edit_json(&dir.path().join("tokenizer.json"), |t| {
        t["post_processor"]["special_tokens"] = serde_json::json!({});
    });
    let err = match capture_text(dir.path(), TEXT, &DialSetting::bias(0.0)) {
        Ok(_) => panic!("captured"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("--text could not be read")
            && err.contains(&dir.path().display().to_string())
            && err.contains("failed on it"),
        "{err}"
    );
    // An empty text says so, not that the tokenizer failed.
    let err = capture_text(dir.path(), " \n ", &DialSetting::bias(0.0))
        .err()
        .unwrap();
    assert_eq!(format!("{err:#}"), "--text is empty");
}

/// A GGUF of llama.cpp's IQ quantizations said "unknown ggml type 21": it names the
/// quantization and what to use instead (IQ4_NL and IQ4_XS are read: `tests/gguf_iq4.rs`).
#[test]
fn a_gguf_of_an_iq_quantization_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("llama.gguf");
    let mut b = std::fs::read(common::root().join("tests/fixtures/llamacpp/llama.gguf")).unwrap();
    let t = common::gguf_tensor_type_at(&b, "output.weight");
    b[t..t + 4].copy_from_slice(&21u32.to_le_bytes());
    std::fs::write(&file, b).unwrap();
    let err = common::open_imported_err(&file);
    assert!(
        err.contains("llama.gguf")
            && err.contains("tensor output.weight is stored as IQ3_S (ggml type 21)")
            && err.contains("use a Q4_K_M, IQ4_XS, Q8_0 or F16 file"),
        "{err}"
    );
}
