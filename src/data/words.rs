//! How text is cut into word tokens: the rule shared by [`WordTokenizer`](super::WordTokenizer),
//! the synthetic corpus and the topic generators.
//!
//! Two versions of the rule exist, and a word vocabulary records which one it was fitted with
//! ([`WordSplit`]), so a model always reads text the way it was trained:
//!
//! - [`WordSplit::Ascii`], the first rule: a word is a run of ASCII letters and digits. Every
//!   other character is a token of its own, so `Größe` came out as `Gr`, `ö`, `ß`, `e`, and a
//!   corpus in French, German, Russian or made-up words with accents was cut into letters (its
//!   blocks were named `ø·ß`). Vocabularies stored before [`WordSplit`] existed use it.
//! - [`WordSplit::Unicode`], what a new vocabulary is fitted with: a word is a run of letters and
//!   digits of any script (Unicode general categories L* and N*), carrying the combining marks
//!   that follow them (`cafe\u{301}`, Arabic vowel signs, Devanagari matras). Scripts written
//!   without spaces between words (Chinese, Japanese kana, Thai, Lao, Khmer, Myanmar) have no
//!   word ends to find without a dictionary, so each of their characters is a token, as before.
//!   On ASCII text the two rules give the same tokens.
//!
//! In both, single `.` `,` `-` `:` `/` `'` characters *between two word characters* stay inside
//! the word (so `250.00`, `1,250.50`, `2024-03-05`, `ACC-4821` and `don't` are one token each,
//! and a sentence-final `.` is its own token); the Unicode rule also keeps `’` (typographic
//! apostrophe, `don’t`), `‐` (hyphen), the soft hyphen and the zero-width (non-)joiner.
//! `'\n'` is a token; any other whitespace separates tokens and is dropped; every other
//! character is a one-character token. No token is empty.

use serde::{Deserialize, Serialize};
use unicode_general_category::{get_general_category, GeneralCategory as Gc};

/// ASCII characters that may join two word runs inside one word token (`250.00`, `don't`).
const JOINERS: [char; 6] = ['.', ',', '-', ':', '/', '\''];

/// Further joiners of the Unicode rule: the typographic apostrophe, the hyphen, the soft
/// hyphen (left inside words by text taken from PDFs) and the zero-width non-joiner and joiner
/// (inside Persian and Indic words).
const UNICODE_JOINERS: [char; 5] = ['\u{2019}', '\u{2010}', '\u{00AD}', '\u{200C}', '\u{200D}'];

/// Which version of the word rule a vocabulary was fitted with (see the module note).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WordSplit {
    /// Words are ASCII letters and digits; the rule of vocabularies stored without a `split`.
    #[default]
    Ascii,
    /// Words are letters and digits of any script, with their combining marks.
    Unicode,
}

/// Split `text` into word tokens by the ASCII rule (borrowed slices of `text`, in order).
pub fn split_words(text: &str) -> Vec<&str> {
    split_words_with(text, WordSplit::Ascii)
}

/// Split `text` into word tokens by `rule` (borrowed slices of `text`, in order).
pub fn split_words_with(text: &str, rule: WordSplit) -> Vec<&str> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() && c != '\n' {
            continue;
        }
        let end = if starts_word(c, rule) {
            word_end(text, start + c.len_utf8(), rule)
        } else {
            start + c.len_utf8()
        };
        // Skip the characters the word consumed.
        while chars.peek().is_some_and(|&(i, _)| i < end) {
            chars.next();
        }
        if let Some(token) = text.get(start..end) {
            out.push(token);
        }
    }
    out
}

/// End (exclusive byte offset) of the word whose first character ends at `end`.
fn word_end(text: &str, mut end: usize, rule: WordSplit) -> usize {
    loop {
        let mut rest = text.get(end..).unwrap_or_default().chars();
        match (rest.next(), rest.next()) {
            (Some(a), _) if continues_word(a, rule) => end += a.len_utf8(),
            (Some(j), Some(a)) if is_joiner(j, rule) && starts_word(a, rule) => {
                end += j.len_utf8() + a.len_utf8();
            }
            _ => return end,
        }
    }
}

/// True when `c` opens (and continues) a word.
fn starts_word(c: char, rule: WordSplit) -> bool {
    match rule {
        WordSplit::Ascii => c.is_ascii_alphanumeric(),
        WordSplit::Unicode => {
            c.is_ascii_alphanumeric()
                || (!c.is_ascii() && is_letter_or_number(c) && !is_unspaced_script(c))
        }
    }
}

/// True when `c` may continue a word that has started (a word character or a combining mark).
fn continues_word(c: char, rule: WordSplit) -> bool {
    starts_word(c, rule)
        || (rule == WordSplit::Unicode
            && matches!(
                get_general_category(c),
                Gc::NonspacingMark | Gc::SpacingMark | Gc::EnclosingMark
            ))
}

fn is_joiner(c: char, rule: WordSplit) -> bool {
    JOINERS.contains(&c) || (rule == WordSplit::Unicode && UNICODE_JOINERS.contains(&c))
}

fn is_letter_or_number(c: char) -> bool {
    matches!(
        get_general_category(c),
        Gc::UppercaseLetter
            | Gc::LowercaseLetter
            | Gc::TitlecaseLetter
            | Gc::ModifierLetter
            | Gc::OtherLetter
            | Gc::DecimalNumber
            | Gc::LetterNumber
            | Gc::OtherNumber
    )
}

/// Scripts written without spaces between words: each character is a token of its own.
fn is_unspaced_script(c: char) -> bool {
    matches!(
        u32::from(c),
        0x0E00..=0x0EFF          // Thai, Lao
            | 0x1000..=0x109F    // Myanmar
            | 0x1780..=0x17FF    // Khmer
            | 0x19E0..=0x19FF    // Khmer symbols
            | 0x2E80..=0x2FDF    // CJK radicals
            | 0x3005..=0x3007    // CJK iteration marks, ideographic zero
            | 0x3021..=0x3029    // Hangzhou numerals
            | 0x3040..=0x30FF    // Hiragana, Katakana
            | 0x31F0..=0x31FF    // Katakana extensions
            | 0x3400..=0x4DBF    // CJK extension A
            | 0x4E00..=0x9FFF    // CJK unified ideographs
            | 0xF900..=0xFAFF    // CJK compatibility ideographs
            | 0xFF66..=0xFF9F    // half-width Katakana
            | 0x20000..=0x3FFFF // CJK extensions B and on
    )
}

/// Join word tokens back into text: single spaces between tokens, none around `"\n"`.
///
/// `split_words_with(&join_words(ws), rule) == ws` whenever every `w` is itself a single token
/// of `rule`.
pub fn join_words<S: AsRef<str>>(words: &[S]) -> String {
    let mut text = String::new();
    let mut after_newline = true;
    for word in words {
        let word = word.as_ref();
        if word == super::NEWLINE_TOKEN {
            after_newline = true;
        } else {
            if !after_newline {
                text.push(' ');
            }
            after_newline = false;
        }
        text.push_str(word);
    }
    text
}
