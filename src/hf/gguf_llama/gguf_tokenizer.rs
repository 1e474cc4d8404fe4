//! A GGUF file's tokenizer, rebuilt from `tokenizer.ggml.*`: a byte-level BPE (vocabulary and
//! merges, the pre-tokenizer's split (SmolLM's, GPT-2's, Qwen2's, LLaMA-3's), control tokens,
//! and the BOS token a LLaMA-3 file begins every text with), or a SentencePiece vocabulary
//! ([`super::gguf_spm`]). Every error names the file and the metadata key.

use std::path::Path;

use anyhow::{bail, Result};
use candle_core::quantized::gguf_file;

use super::gguf_vocab::{
    add_typed, bos_token, check_vocab_size, read_tokens, token_types, with_bos,
};
use super::metadata::{meta, wrong_type};

/// The merges of a byte-level BPE, as pairs.
type Merges = Vec<(String, String)>;

/// The vocabulary and merges of a byte-level BPE in the metadata.
fn tokens_and_merges(c: &gguf_file::Content, file: &Path) -> Result<(Vec<String>, Merges)> {
    let tokens = read_tokens(c, file)?;
    let merges: Merges = (meta(c, "tokenizer.ggml.merges", file)?.to_vec())
        .map_err(|e| wrong_type(file, "tokenizer.ggml.merges", "an array of strings", &e))?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = v.to_string().ok();
            match s.and_then(|s| s.split_once(' ')) {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => Err(anyhow::anyhow!(
                    "{}: metadata tokenizer.ggml.merges[{i}] is not two tokens and a space ({v:?})",
                    file.display()
                )),
            }
        })
        .collect::<Result<_>>()?;
    Ok((tokens, merges))
}

/// Rebuild the tokenizer of a GGUF file from its `tokenizer.ggml.*` metadata: a byte-level
/// BPE (`tokenizer.ggml.model` "gpt2": SmolLM2, Qwen2, LLaMA-3) or a SentencePiece vocabulary
/// ("llama": TinyLlama, LLaMA-2, Mistral; [`super::gguf_spm`]).
pub fn tokenizer_from_gguf(
    c: &gguf_file::Content,
    arch: &str,
    file: &Path,
) -> Result<tokenizers::Tokenizer> {
    const MODEL: &str = "tokenizer.ggml.model";
    let model =
        (meta(c, MODEL, file)?.to_string()).map_err(|e| wrong_type(file, MODEL, "a string", &e))?;
    match model.as_str() {
        "gpt2" => byte_level(c, arch, file),
        "llama" => super::gguf_spm::sentencepiece(c, arch, file),
        _ => bail!(
            "{}: metadata {MODEL} = {model:?} is not supported (byte-level BPE \"gpt2\" and \
             SentencePiece \"llama\" are)",
            file.display()
        ),
    }
}

/// A byte-level BPE from the token list and merges, split first as `tokenizer.ggml.pre` says.
fn byte_level(c: &gguf_file::Content, arch: &str, file: &Path) -> Result<tokenizers::Tokenizer> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    let (tokens, merges) = tokens_and_merges(c, file)?;
    check_vocab_size(c, arch, tokens.len(), file)?;
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().cloned().zip(0u32..).collect();
    let (split, whole) = pre_tokenizer(c, file)?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(whole)
        .build()
        .map_err(|e| anyhow::anyhow!("{}: BPE from metadata: {e}", file.display()))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(split.build(file)?));
    // LLaMA-3's files begin every text with their BOS token (`add_bos_token`).
    with_bos(&mut tok, bos_token(c, &tokens, file, false)?, file)?;
    tok.with_decoder(Some(ByteLevel::default()));
    add_typed(
        &mut tok,
        &tokens,
        token_types(c, tokens.len(), file)?.as_deref(),
    );
    Ok(tok)
}

/// How a byte-level GGUF splits its text before BPE (`tokenizer.ggml.pre`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PreSplit {
    /// Digits one by one, then GPT-2's byte-level split (smollm, starcoder, refact; also when
    /// the key is absent, as in SmolLM's files before it was written).
    DigitsThenGpt2,
    /// GPT-2's byte-level split alone (gpt-2).
    Gpt2,
    /// Qwen2's split (qwen2): contractions in either case, a letter run with at most one
    /// other character before it, each digit alone, and line breaks kept with punctuation.
    Qwen2,
    /// LLaMA-3's split (llama-bpe): Qwen2's, but digits in runs of up to three.
    Llama3,
    /// GPT-4o's split (gpt-4o: Phi-4-mini's files): LLaMA-3's, with letter runs cut where a
    /// lower-case run ends (`HelloWorld` is two), contractions kept with their word, and `/`
    /// kept after punctuation.
    Gpt4o,
    /// Falcon's (falcon): punctuation runs apart, GPT-2's byte-level split, then digit runs
    /// cut into threes, as falcon-7b's `tokenizer.json` does it.
    Falcon,
    /// BLOOM's (bloom, gpt3-finnish): a space and a run of anything but white space and
    /// `.,!?…。，、।۔،()|`, or those alone; then the byte-level mapping.
    Bloom,
}

/// The split of each `tokenizer.ggml.pre` implemented here, grouped as llama.cpp groups them
/// (`llama-vocab.cpp`: each group one `LLAMA_VOCAB_PRE_TYPE_*`, one regular expression):
/// STARCODER/REFACT/SMOLLM/COMMAND_R/CODESHELL/EXAONE/MINERVA; GPT2/MPT/OLMO/JAIS/TRILLION;
/// QWEN2/STABLELM2; LLAMA3/DBRX/SMAUG; GPT4O; FALCON; BLOOM/GPT3_FINNISH.
fn pre_split(pre: &str) -> Option<PreSplit> {
    Some(match pre {
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            PreSplit::DigitsThenGpt2
        }
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais" | "trillion"
        | "granite-docling" | "exaone4" => PreSplit::Gpt2,
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "stablelm2" | "megrez" => {
            PreSplit::Qwen2
        }
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral" | "midm-2.0" | "dbrx"
        | "smaug-bpe" => PreSplit::Llama3,
        "gpt-4o" | "llama4" | "kanana2" | "talkie" => PreSplit::Gpt4o,
        "falcon" => PreSplit::Falcon,
        "bloom" | "gpt3-finnish" => PreSplit::Bloom,
        _ => return None,
    })
}

/// Qwen2's split as its `tokenizer.json` writes it (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_QWEN2`).
pub(crate) const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// LLaMA-3's split (its `tokenizer.json`; llama.cpp's `LLAMA_VOCAB_PRE_TYPE_LLAMA3`).
pub(crate) const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// BLOOM's split, as its `tokenizer.json` writes it (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_BLOOM`
/// writes the same class without the inner brackets).
const BLOOM_SPLIT: &str = " ?[^(\\s|[.,!?…。，、।۔،])]+";

/// GPT-4o's split, as its `tokenizer.json` writes it (llama.cpp quotes it for
/// `LLAMA_VOCAB_PRE_TYPE_GPT4O` and runs an equivalent without the case classes).
const GPT4O_SPLIT: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
);

impl PreSplit {
    /// The pre-tokenizer doing this split, then the byte-level mapping.
    pub(crate) fn build(self, file: &Path) -> Result<tokenizers::PreTokenizerWrapper> {
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        use tokenizers::pre_tokenizers::digits::Digits;
        use tokenizers::pre_tokenizers::punctuation::Punctuation;
        use tokenizers::pre_tokenizers::sequence::Sequence;
        use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
        use tokenizers::{PreTokenizerWrapper as P, SplitDelimiterBehavior};
        let gpt2 = P::ByteLevel(ByteLevel::new(false, true, true));
        let isolated = |regex: &str| {
            Split::new(
                SplitPattern::Regex(regex.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| anyhow::anyhow!("{}: the split {self:?}: {e}", file.display()))
        };
        Ok(match self {
            Self::Gpt2 => gpt2,
            Self::Falcon => P::Sequence(Sequence::new(vec![
                P::Punctuation(Punctuation::new(SplitDelimiterBehavior::Contiguous)),
                gpt2,
                P::Digits(Digits::new(false)),
                P::Split(isolated(r"[0-9][0-9][0-9]")?),
            ])),
            Self::Bloom => P::Sequence(Sequence::new(vec![
                P::Split(isolated(BLOOM_SPLIT)?),
                P::ByteLevel(ByteLevel::new(false, true, false)),
            ])),
            Self::DigitsThenGpt2 => {
                P::Sequence(Sequence::new(vec![P::Digits(Digits::new(true)), gpt2]))
            }
            Self::Qwen2 | Self::Llama3 | Self::Gpt4o => {
                let regex = match self {
                    Self::Qwen2 => QWEN2_SPLIT,
                    Self::Llama3 => LLAMA3_SPLIT,
                    _ => GPT4O_SPLIT,
                };
                P::Sequence(Sequence::new(vec![
                    P::Split(isolated(regex)?),
                    P::ByteLevel(ByteLevel::new(false, false, false)),
                ]))
            }
        })
    }
}

/// Whether a piece found whole in the vocabulary is taken whole, its merges not applied
/// (llama.cpp's `ignore_merges` for the LLaMA-3 names, as LLaMA-3's `tokenizer.json` has it;
/// not for `dbrx` or `smaug-bpe`, which share the split).
fn takes_whole_pieces(pre: &str) -> bool {
    matches!(
        pre,
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral" | "midm-2.0"
    )
}

/// The file's pre-tokenizer (`tokenizer.ggml.pre`), and whether its BPE takes a piece found
/// whole in the vocabulary whole ([`takes_whole_pieces`]). Any other than those of
/// [`PreSplit`] is refused: every byte-level GGUF was once split as SmolLM's, so a LLaMA-3 file
/// ("llama-bpe") was measured on a tokenization that was not its own.
fn pre_tokenizer(c: &gguf_file::Content, file: &Path) -> Result<(PreSplit, bool)> {
    const PRE: &str = "tokenizer.ggml.pre";
    let Some(v) = c.metadata.get(PRE) else {
        return Ok((PreSplit::DigitsThenGpt2, false));
    };
    let pre = v
        .to_string()
        .map_err(|e| wrong_type(file, PRE, "a string", &e))?;
    match pre_split(pre) {
        Some(split) => Ok((split, takes_whole_pieces(pre))),
        None => bail!(
            "{}: metadata {PRE} = {pre:?}: this pre-tokenizer is not implemented here (those of \
             llama.cpp's GPT-2, StarCoder, Qwen2, LLaMA-3, GPT-4o, Falcon and BLOOM splits are: \
             gpt-2, phi-2, olmo, smollm, starcoder, refact, qwen2, deepseek-r1-qwen, stablelm2, \
             llama-bpe, dbrx, smaug-bpe, gpt-4o, falcon, bloom …), and splitting its text another way would measure the \
             model on a tokenization that is not its own",
            file.display()
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    #[test]
    fn names_llama_cpp_groups_together_split_alike() {
        for (names, split) in [
            (&["gpt-2", "phi-2", "olmo", "mpt"][..], PreSplit::Gpt2),
            (
                &["smollm", "starcoder", "refact", "command-r"],
                PreSplit::DigitsThenGpt2,
            ),
            (&["qwen2", "deepseek-r1-qwen", "stablelm2"], PreSplit::Qwen2),
            (
                &["llama-bpe", "llama3", "falcon3", "dbrx", "smaug-bpe"],
                PreSplit::Llama3,
            ),
            (&["gpt-4o", "llama4"], PreSplit::Gpt4o),
            (&["falcon"], PreSplit::Falcon),
            (&["bloom", "gpt3-finnish"], PreSplit::Bloom),
        ] {
            for n in names {
                assert_eq!(pre_split(n), Some(split), "{n}");
            }
        }
        // Their own expressions or flags (Mistral Nemo's tekken; RoBERTa's with a separator).
        for n in [
            "tekken",
            "roberta-bpe",
            "jina-v1-en",
            "deepseek-llm",
            "chatglm-4",
        ] {
            assert_eq!(pre_split(n), None, "{n}");
        }
    }

    /// A piece in the vocabulary that its merges do not build ("ab" with no merge a+b): the
    /// LLaMA-3 names take it whole, as llama.cpp does; the others build it from its merges.
    #[test]
    fn llama_3_names_take_a_piece_found_whole_in_the_vocabulary_whole() {
        use tokenizers::models::bpe::BPE;
        use tokenizers::Model;
        let ids = |pre: &str| {
            let vocab = [("a".to_string(), 0u32), ("b".into(), 1), ("ab".into(), 2)];
            let bpe = BPE::builder()
                .vocab_and_merges(
                    vocab
                        .into_iter()
                        .collect::<tokenizers::models::bpe::Vocab>(),
                    Vec::new(),
                )
                .ignore_merges(takes_whole_pieces(pre))
                .build()
                .unwrap();
            let toks = bpe.tokenize("ab").unwrap();
            toks.iter().map(|t| t.id).collect::<Vec<_>>()
        };
        assert_eq!(ids("llama-bpe"), [2]);
        assert_eq!(ids("falcon3"), [2]);
        assert_eq!(ids("dbrx"), [0, 1]);
        assert_eq!(ids("qwen2"), [0, 1]);
    }

    fn pieces(split: PreSplit, text: &str) -> Vec<String> {
        let pre = split.build(Path::new("t.gguf")).unwrap();
        let mut s = PreTokenizedString::from(text);
        pre.pre_tokenize(&mut s).unwrap();
        (s.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter())
        .map(|(piece, _, _)| piece.to_string())
        .collect()
    }

    #[test]
    fn gpt_4o_cuts_case_runs_and_keeps_contractions_with_their_word() {
        let text = "HelloWorld's 12345 a/b\n";
        assert_eq!(
            pieces(PreSplit::Gpt4o, text),
            ["Hello", "World's", "Ġ", "123", "45", "Ġa", "/b", "Ċ"]
        );
        assert_eq!(
            pieces(PreSplit::Llama3, text),
            ["HelloWorld", "'s", "Ġ", "123", "45", "Ġa", "/b", "Ċ"]
        );
    }

    /// Falcon's and BLOOM's splits cut text as the `pre_tokenizer` of falcon-7b's and
    /// bloom-560m's `tokenizer.json` (quoted verbatim) does, on text with punctuation runs,
    /// digit runs, contractions, brackets and non-Latin script; and, written out, as expected.
    #[test]
    fn falcon_and_bloom_split_as_their_tokenizer_json_does() {
        const FALCON: &str = r#"{"type": "Sequence", "pretokenizers": [{"type": "Punctuation", "behavior": "Contiguous"}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}, {"type": "Digits", "individual_digits": false}, {"type": "Split", "pattern": {"Regex": "[0-9][0-9][0-9]"}, "behavior": "Isolated", "invert": false}]}"#;
        const BLOOM: &str = r#"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": " ?[^(\\s|[.,!?…。，、।۔،])]+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}"#;
        let texts = [
            "Don't stop at 3.14159265!",
            "hello, world!! ...ok (555) 123-4567 ext. 89",
            "  leading and  multiple   spaces\ttabs\nnew line 42   ",
            "«Ünïcode» мир 999 — 你好，世界。 x²y ½6789",
        ];
        for (split, json) in [(PreSplit::Falcon, FALCON), (PreSplit::Bloom, BLOOM)] {
            let theirs: tokenizers::PreTokenizerWrapper = serde_json::from_str(json).unwrap();
            for text in texts {
                let mut s = PreTokenizedString::from(text);
                theirs.pre_tokenize(&mut s).unwrap();
                let want: Vec<String> = (s
                    .get_splits(OffsetReferential::Original, OffsetType::Byte))
                .into_iter()
                .map(|(p, _, _)| p.to_string())
                .collect();
                assert_eq!(pieces(split, text), want, "{split:?} {text:?}");
            }
        }
        let text = "Don't stop at 3.14159265!";
        let falcon = [
            "Don", "'", "t", "Ġstop", "Ġat", "Ġ", "3", ".", "141", "592", "65", "!",
        ];
        assert_eq!(pieces(PreSplit::Falcon, text), falcon);
        let bloom = ["Don't", "Ġstop", "Ġat", "Ġ3", ".", "14159265", "!"];
        assert_eq!(pieces(PreSplit::Bloom, text), bloom);
    }
}
