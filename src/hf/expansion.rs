//! What a tokenizer's normalizer may do to a text's length, checked before the tokenizers
//! crate builds it. A normalizer is user input that runs inside that crate over the whole text
//! at once, where no check of the text itself can stop it: a `Replace` of every character by
//! 100,000 characters once turned a short text into 2.4 GB, and 26 chained `Replace`s of "a"
//! by "aa" (each within any per-string limit) made the 8 characters "a banana" into 2²⁶ and
//! aborted the process on memory.

/// Longest text a normalizer or pre-tokenizer step may insert (Llama's "▁", BERT's none).
const MAX_INSERTED_CHARS: usize = 64;

/// Most a normalizer may multiply a text's length by, as bounded by [`growth`]. Real ones stay
/// far below: NFKC then lowercase is 54; Llama's and GPT-2's have none or a one-for-one
/// `Replace`, 1.
const MAX_GROWTH: f64 = 1000.0;

/// Refuse a normalizer or pre-tokenizer that inserts long strings, or a normalizer whose
/// steps together can multiply a text's length by more than [`MAX_GROWTH`].
pub(super) fn check_expansion(tokenizer: &serde_json::Value) -> Result<(), String> {
    for part in ["normalizer", "pre_tokenizer"] {
        if let Some(v) = tokenizer.get(part) {
            long_inserts(v, part)?;
        }
    }
    if let Some(v) = tokenizer.get("normalizer") {
        let g = growth(v);
        if g > MAX_GROWTH {
            return Err(format!(
                "its normalizer can multiply a text's length by up to {g:.3e} (each step's \
                 most, multiplied along its Sequence); at most {MAX_GROWTH} is accepted, as a \
                 text would not fit in memory"
            ));
        }
    }
    Ok(())
}

/// An error when a step of `v` inserts a string longer than [`MAX_INSERTED_CHARS`].
fn long_inserts(v: &serde_json::Value, part: &str) -> Result<(), String> {
    match v {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let inserted = matches!(key.as_str(), "content" | "prepend" | "replacement");
                if let (true, Some(text)) = (inserted, inner.as_str()) {
                    let n = text.chars().count();
                    if n > MAX_INSERTED_CHARS {
                        return Err(format!(
                            "its {part} inserts a string of {n} characters (\"{key}\"); at \
                             most {MAX_INSERTED_CHARS} are accepted, as longer ones can \
                             multiply a text's size without bound"
                        ));
                    }
                }
                long_inserts(inner, part)?;
            }
            Ok(())
        }
        serde_json::Value::Array(items) => items.iter().try_for_each(|i| long_inserts(i, part)),
        _ => Ok(()),
    }
}

/// An upper bound on how many times longer (in characters) normalizer `v` can make a text:
/// the product over a `Sequence`'s steps. A `Replace` of a string of m characters by n makes
/// each match at most n/m times longer; a regular expression may match the empty string, so
/// its n characters can come between any two (1 + n). Unicode forms expand a character into
/// at most 18 (NFKC/NFKD, and `Precompiled`, SentencePiece's NFKC table) or 4 (NFC/NFD);
/// lowercasing at most 3; byte-level spelling at most 4 (a character of four bytes); BERT's
/// normalizer spaces CJK characters and lowercases, 9. `Prepend` adds once, not per
/// character; the others (strip, strip accents) only shorten.
fn growth(v: &serde_json::Value) -> f64 {
    let text = |key: &str| v.get(key).and_then(serde_json::Value::as_str);
    let n = |key: &str| text(key).map_or(0, |t| t.chars().count()) as f64;
    match text("type").unwrap_or("") {
        "Sequence" => (v.get("normalizers").and_then(serde_json::Value::as_array))
            .map_or(1.0, |steps| steps.iter().map(growth).product()),
        "Replace" => {
            let inserted = n("content");
            let pattern = v.get("pattern");
            match pattern
                .and_then(|p| p.get("String"))
                .and_then(|s| s.as_str())
            {
                Some(s) if !s.is_empty() => (inserted / s.chars().count() as f64).max(1.0),
                _ if inserted == 0.0 => 1.0,
                _ => 1.0 + inserted,
            }
        }
        "NFKC" | "NFKD" | "Precompiled" => 18.0,
        "NFC" | "NFD" | "ByteLevel" => 4.0,
        "Lowercase" => 3.0,
        "BertNormalizer" => 9.0,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn replace(from: &str, to: &str) -> serde_json::Value {
        json!({"type": "Replace", "pattern": {"String": from}, "content": to})
    }

    #[test]
    fn chained_replaces_that_double_a_text_are_refused() {
        let chain = json!({"normalizer": {"type": "Sequence", "normalizers": vec![replace("a", "aa"); 26]}});
        let e = check_expansion(&chain).err().unwrap_or_default();
        assert!(
            e.contains("multiply a text's length by up to 6.711e7"),
            "{e}"
        );
        // Ten doublings are 1,024: refused; nine are 512: accepted.
        let ten = json!({"normalizer": {"type": "Sequence", "normalizers": vec![replace("a", "aa"); 10]}});
        assert!(check_expansion(&ten).is_err());
        let nine =
            json!({"normalizer": {"type": "Sequence", "normalizers": vec![replace("a", "aa"); 9]}});
        assert!(check_expansion(&nine).is_ok());
    }

    #[test]
    fn real_normalizers_pass() {
        // Llama's (a prepend and a one-for-one replace), BERT's, NFKC then lowercase, none.
        let llama = json!({"normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, replace(" ", "▁")]}});
        assert_eq!(growth(&llama["normalizer"]), 1.0);
        let bert = json!({"normalizer": {"type": "BertNormalizer", "lowercase": true}});
        let nfkc = json!({"normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFKC"}, {"type": "Lowercase"}]}});
        for t in [llama, bert, nfkc, json!({"normalizer": null}), json!({})] {
            assert_eq!(check_expansion(&t), Ok(()));
        }
        // A regular expression's replacement may fall between any two characters.
        let regex = json!({"type": "Replace", "pattern": {"Regex": "x*"}, "content": "ab"});
        assert_eq!(growth(&regex), 3.0);
        let long = json!({"normalizer": replace("a", &"b".repeat(65))});
        assert!(check_expansion(&long)
            .err()
            .unwrap_or_default()
            .contains("65 characters"));
    }
}
