//! Characters a person cannot see: in rule files (the "Trojan Source" controls) and in names
//! (zero-width characters that make two names print alike).

/// A character that changes how the text around it is shown without being seen itself: a
/// bidirectional control (the "Trojan Source" characters, which can make a rule read in an
/// editor or a report differently from what it does) or a control character other than tab,
/// carriage return and newline (a terminal escape, say). Its name for the error, or None.
pub fn hidden_character(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{061C}' => "ARABIC LETTER MARK",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\t' | '\r' | '\n' => return None,
        c if c.is_control() => "a control character",
        _ => return None,
    })
}

/// The first [`hidden_character`] of `s`, named for an error: "the invisible character U+202E
/// (RIGHT-TO-LEFT OVERRIDE)".
pub fn hidden_in(s: &str) -> Option<String> {
    s.chars().find_map(|c| {
        let what = hidden_character(c)?;
        Some(format!(
            "the invisible character U+{:04X} ({what})",
            u32::from(c)
        ))
    })
}

/// [`hidden_in`] for a name (a block's): a tab or a line break is refused too, since a name
/// is one field of a table row (a lexicon's third column became part of `drug\textra`).
/// Invisible characters a name must not hold either: `me<U+200B>d` and `med` printed alike
/// and were two blocks, so a rule read "med to med" and acted on both. A zero-width joiner or
/// non-joiner stays allowed between two letters of a script that writes with it (Persian,
/// Hindi), where it is part of the word.
pub fn hidden_in_name(s: &str) -> Option<String> {
    let spaced = s.chars().find_map(|c| match c {
        '\t' => Some("a tab"),
        '\r' | '\n' => Some("a line break"),
        _ => None,
    });
    let chars: Vec<char> = s.chars().collect();
    let letter = |k: Option<&char>| k.is_some_and(|c| c.is_alphabetic() && !c.is_ascii());
    let invisible = chars.iter().enumerate().find_map(|(k, &c)| {
        let name = match c {
            '\u{00AD}' => "SOFT HYPHEN",
            '\u{180E}' => "MONGOLIAN VOWEL SEPARATOR",
            '\u{200B}' => "ZERO WIDTH SPACE",
            '\u{2060}' => "WORD JOINER",
            '\u{2061}'..='\u{2064}' => "an invisible operator",
            '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE",
            '\u{FE00}'..='\u{FE0F}' => "a variation selector",
            '\u{200C}' | '\u{200D}'
                if !(k > 0 && letter(chars.get(k - 1)) && letter(chars.get(k + 1))) =>
            {
                "a zero-width joiner or non-joiner outside a word"
            }
            _ => return None,
        };
        Some(format!(
            "the invisible character U+{:04X} ({name}): two names that print alike would be \
             two blocks",
            u32::from(c)
        ))
    });
    let long = (chars.len() > MAX_NAME_CHARS).then(|| {
        format!(
            "{} characters, more than the {MAX_NAME_CHARS} a name may have (a 100,000-character \
             name was printed whole)",
            chars.len()
        )
    });
    hidden_in(s)
        .or(invisible)
        .or_else(|| spaced.map(|what| format!("{what} (a name is one line)")))
        .or(long)
}

/// Longest block name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_an_invisible_character_is_refused_but_a_persian_word_is_not() {
        for name in [
            "me\u{200B}d",
            "med\u{2060}",
            "\u{00AD}med",
            "med\u{200D}",
            "a\u{200C}b",
        ] {
            let e = hidden_in_name(name).unwrap_or_else(|| panic!("{name:?} passed"));
            assert!(e.contains("invisible character U+"), "{e}");
        }
        // Persian "mi-khaham" is written with a zero-width non-joiner inside the word.
        assert_eq!(
            hidden_in_name("\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}"),
            None
        );
        assert_eq!(hidden_in_name("dose"), None);
    }
}
