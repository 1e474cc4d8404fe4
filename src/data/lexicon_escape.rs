//! The lexicon's word column: the escapes that let a word hold a tab, a newline, a space at
//! either end or a leading `#` (`\n \t \r \s \\ \#`).

/// Decode the escapes of the word column; `None` on an unknown or dangling escape.
pub(super) fn unescape(word: &str) -> Option<String> {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            's' => ' ',
            '\\' => '\\',
            '#' => '#',
            _ => return None,
        });
    }
    Some(out)
}

/// Encode a word for the word column: `unescape(escape(w)) == w` for every string, and the
/// result survives the parser's trimming unless `w` starts or ends with exotic Unicode spaces.
pub(super) fn escape(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '#' => out.push_str("\\#"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip() {
        for word in ["\n", " ", "#", "a\\b", "\t", "\r", "plain"] {
            assert_eq!(unescape(&escape(word)).as_deref(), Some(word));
        }
        assert_eq!(unescape("bad\\q"), None);
        assert_eq!(unescape("dangling\\"), None);
    }
}
