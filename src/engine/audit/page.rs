//! The HTML page read back for `audit verify`: its figures section, figure by figure, in
//! exactly the markup [`report_html`](super::report_html) writes. The rest of the page is
//! compared with a fresh rendering byte for byte; the figures could not be, as the JSON did
//! not hold their pictures, and a verifier that skipped the section let anything placed in it
//! pass (a `<style>` that hides every rule table, a `<script>`, a caption "ALL RULES PASS").
//! Now the figures are read back, the page is rendered again with them and compared whole
//! (so the section holds figures and nothing else), and (version 4 on) each picture's SHA-256
//! and title must be the ones the JSON signs.

use crate::engine::audit::html::{
    FIGURES_HEADING, FIGURE_CAPTION, FIGURE_CLOSE, FIGURE_OPEN, FIGURE_SRC,
};

/// The figures at the start of `page`'s figures section (title, PNG bytes), as many as read
/// whole in exactly the markup written; none without a figures heading. Whatever follows
/// them is left to the byte-for-byte comparison with the page rendered from these figures.
pub(super) fn page_figures(page: &str) -> Vec<(String, Vec<u8>)> {
    let mut figures = Vec::new();
    let Some(start) = page.find(FIGURES_HEADING) else {
        return figures;
    };
    let mut rest = page.get(start + FIGURES_HEADING.len()..).unwrap_or("");
    while let Some((title, png, used)) = one_figure(rest) {
        figures.push((title, png));
        rest = rest.get(used..).unwrap_or("");
    }
    figures
}

/// The figure at the start of `rest`: its title, its PNG and how many bytes it takes.
fn one_figure(rest: &str) -> Option<(String, Vec<u8>, usize)> {
    let r = rest.strip_prefix(FIGURE_OPEN)?;
    let (alt, r) = r.split_at(r.find('"')?);
    let r = r.strip_prefix(FIGURE_SRC)?;
    let (data, r) = r.split_at(r.find('"')?);
    let r = r.strip_prefix(FIGURE_CAPTION)?;
    let close = r.find(FIGURE_CLOSE)?;
    let used = rest.len() - r.len() + close + FIGURE_CLOSE.len();
    Some((unescape(alt), decode_base64(data)?, used))
}

/// The text that `esc` wrote as `s`.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Standard base64 with padding, as [`super::base64`] writes it; None for anything else.
pub(super) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(u32::from(v))
    };
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, quad) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in quad.get(..4 - pad)? {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(three.get(..3 - pad)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::audit::base64;

    #[test]
    fn base64_comes_back() {
        for n in 0..20u8 {
            let bytes: Vec<u8> = (0..n)
                .map(|i| i.wrapping_mul(37).wrapping_add(200))
                .collect();
            assert_eq!(decode_base64(&base64(&bytes)), Some(bytes));
        }
        for bad in ["abc", "a===", "ab=c", "ab==abcd", "ab c", "ab<>"] {
            assert_eq!(decode_base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn figures_are_read_back_as_written_and_reading_stops_at_anything_else() {
        let fig = |t: &str, png: &[u8]| {
            format!(
                "{FIGURE_OPEN}{t}{FIGURE_SRC}{}{FIGURE_CAPTION}{t}{FIGURE_CLOSE}",
                base64(png)
            )
        };
        let page = |section: &str| format!("<p>x</p>{FIGURES_HEADING}{section}<h2>Audit log</h2>");
        let two = page(&format!(
            "{}{}",
            fig("a &amp; b", b"\x89PNG1"),
            fig("c", b"PNG2")
        ));
        let read = vec![
            ("a & b".to_string(), b"\x89PNG1".to_vec()),
            ("c".into(), b"PNG2".to_vec()),
        ];
        assert_eq!(page_figures(&two), read);
        assert!(page_figures("<p>no figures</p>").is_empty());
        // A style before the figures, text between them, a remote picture, bad base64.
        let styled = page(&format!(
            "<style>table{{display:none}}</style>{}",
            fig("c", b"P")
        ));
        assert!(page_figures(&styled).is_empty());
        let between = page(&format!(
            "{}<h1>PASS</h1>{}",
            fig("c", b"P"),
            fig("d", b"Q")
        ));
        assert_eq!(page_figures(&between).len(), 1);
        let remote = page(&fig("c\" src=\"https://example.com/x.png", b"P"));
        assert!(page_figures(&remote).is_empty());
        let bad = page(&fig("c", b"P").replace("UA==", "U*=="));
        assert!(page_figures(&bad).is_empty());
    }
}
