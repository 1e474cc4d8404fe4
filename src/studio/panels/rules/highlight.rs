//! Syntax colouring of the rule language in the Rules panel's editor.

use egui::text::{LayoutJob, TextFormat};
use egui::{Color32, FontId};

use crate::engine::protocol::{RuleErrors, RULE_KEYWORDS};

/// The kinds of piece the editor colours.
#[derive(Clone, Copy)]
enum Piece {
    Plain,
    Keyword,
    Condition,
    Str,
    Number,
    Comment,
}

/// The editor's colours, in dark or light mode.
struct Palette {
    plain: Color32,
    keyword: Color32,
    condition: Color32,
    string: Color32,
    number: Color32,
    comment: Color32,
    error_line: Color32,
}

impl Palette {
    fn new(dark: bool) -> Self {
        if dark {
            Self {
                plain: Color32::from_gray(220),
                keyword: Color32::from_rgb(110, 170, 255),
                condition: Color32::from_rgb(200, 150, 255),
                string: Color32::from_rgb(240, 180, 100),
                number: Color32::from_rgb(140, 220, 140),
                comment: Color32::from_gray(130),
                error_line: Color32::from_rgb(90, 30, 30),
            }
        } else {
            Self {
                plain: Color32::from_gray(30),
                keyword: Color32::from_rgb(20, 80, 200),
                condition: Color32::from_rgb(120, 40, 170),
                string: Color32::from_rgb(170, 90, 0),
                number: Color32::from_rgb(20, 120, 40),
                comment: Color32::from_gray(120),
                error_line: Color32::from_rgb(255, 215, 215),
            }
        }
    }

    fn colour(&self, piece: Piece) -> Color32 {
        match piece {
            Piece::Plain => self.plain,
            Piece::Keyword => self.keyword,
            Piece::Condition => self.condition,
            Piece::Str => self.string,
            Piece::Number => self.number,
            Piece::Comment => self.comment,
        }
    }
}

/// The piece of `chars` that starts at `start`, and where it ends.
fn piece_at(chars: &[char], start: usize) -> (Piece, usize) {
    let at = |i: usize| chars.get(i).copied().unwrap_or('\n');
    let mut i = start;
    let c = at(i);
    if c == '#' {
        return (Piece::Comment, chars.len());
    }
    if c == '"' {
        i += 1;
        while i < chars.len() && at(i) != '"' && at(i) != '\n' {
            if at(i) == '\\' {
                i += 1;
            }
            i += 1;
        }
        return (Piece::Str, (i + 1).min(chars.len()));
    }
    if c.is_ascii_digit() {
        while i < chars.len() && (at(i).is_ascii_digit() || at(i) == '.') {
            i += 1;
        }
        return (Piece::Number, i);
    }
    if c.is_alphabetic() || c == '_' {
        while i < chars.len() && (at(i).is_alphanumeric() || "_-.".contains(at(i))) {
            i += 1;
        }
        let w: String = chars.get(start..i).unwrap_or_default().iter().collect();
        let piece = if RULE_KEYWORDS.contains(&w.as_str()) {
            Piece::Keyword
        } else if w.starts_with("query.") || w.starts_with("earlier.") {
            Piece::Condition
        } else {
            Piece::Plain
        };
        return (piece, i);
    }
    (Piece::Plain, i + 1)
}

/// Colour the rule language: keywords, condition names, strings, numbers, comments; lines
/// with an error get a red background.
pub fn highlight(text: &str, errors: Option<&RuleErrors>, dark: bool) -> LayoutJob {
    let font = FontId::monospace(13.0);
    let palette = Palette::new(dark);
    let bad_lines: Vec<usize> = errors
        .map(|e| e.errors.iter().map(|x| x.pos.line).collect())
        .unwrap_or_default();
    let mut job = LayoutJob::default();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let background = if bad_lines.contains(&(n + 1)) {
            palette.error_line
        } else {
            Color32::TRANSPARENT
        };
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let (piece, end) = piece_at(&chars, i);
            let text: String = chars
                .get(i..end.min(chars.len()))
                .unwrap_or_default()
                .iter()
                .collect();
            let format = TextFormat {
                font_id: font.clone(),
                color: palette.colour(piece),
                background,
                ..Default::default()
            };
            job.append(&text, 0.0, format);
            i = end;
        }
    }
    job
}
