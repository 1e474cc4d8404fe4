//! A Hugging Face tokenizer as one of ours ([`HfTokenizer`]), so that the blocks, captures and
//! views of an imported model read its tokens exactly as those of our own models.

use std::collections::HashMap;

use crate::data::tokenizer::Tokenizer;
use crate::hf::{decode_ids, encode_ids};

/// A Hugging Face tokenizer as one of ours: `encode` adds the model's special tokens when it
/// expects them (BERT's \[CLS\] … \[SEP\]); a token's surface string is its decoded text for
/// byte-level BPE (" Paris", not "ĠParis") and SentencePiece (" Paris", not "▁Paris"), and
/// its vocabulary entry otherwise ("##ing").
#[derive(Clone)]
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    add_special: bool,
    strs: Vec<String>,
    ids: HashMap<String, u32>,
}

impl HfTokenizer {
    /// Wrap `inner`; `byte_level` selects decoded surface strings.
    pub fn new(inner: tokenizers::Tokenizer, add_special: bool, byte_level: bool) -> Self {
        let n = inner.get_vocab_size(true);
        let strs: Vec<String> = (0..n as u32)
            .map(|i| {
                if byte_level {
                    let text = decode_ids(&inner, &[i]).unwrap_or_else(|_| format!("#{i}"));
                    // A SentencePiece piece ("▁the") decodes alone without its space (the
                    // decoder strips a text's first one), which is part of the token: " the",
                    // as byte-level BPE gives it, and not "the", another token.
                    match inner.id_to_token(i) {
                        Some(p) if p.starts_with('▁') && !text.starts_with(' ') => {
                            format!(" {text}")
                        }
                        _ => text,
                    }
                } else {
                    inner.id_to_token(i).unwrap_or_else(|| format!("#{i}"))
                }
            })
            .collect();
        let mut ids = HashMap::with_capacity(n);
        for (i, s) in strs.iter().enumerate() {
            ids.entry(s.clone()).or_insert(i as u32);
        }
        Self {
            inner,
            add_special,
            strs,
            ids,
        }
    }
}

impl Tokenizer for HfTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        encode_ids(&self.inner, text, self.add_special).unwrap_or_default()
    }

    fn decode(&self, ids: &[u32]) -> String {
        decode_ids(&self.inner, ids).unwrap_or_else(|e| format!("<undecodable: {e}>"))
    }

    fn vocab_size(&self) -> usize {
        self.strs.len()
    }

    fn token_str(&self, id: u32) -> String {
        self.strs
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    fn token_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    fn encode_error(&self, text: &str) -> Option<String> {
        encode_ids(&self.inner, text, self.add_special)
            .err()
            .map(|e| format!("{e:#}"))
    }
}
