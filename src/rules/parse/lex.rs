//! The lexer of rule files: identifiers (letters, digits, `_`, `-` and `.`), quoted strings
//! with `\"`, `\\`, `\n` and `\t` escapes, numbers, `=`, `,` and `..`; `#` starts a comment.
//! Lexical errors are collected and the bad character skipped, so lexing never stops early.

use crate::files::hidden_in;
use crate::rules::ast::Pos;
use crate::rules::parse::error::{ErrorSink, RuleError};

/// One token of a rule file.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// A word: a keyword, a rule id, a block name or a condition such as `query.token`.
    Ident(String),
    /// A quoted string, escapes resolved.
    Str(String),
    /// A number as written.
    Num(String),
    /// `=`.
    Eq,
    /// `,`.
    Comma,
    /// `..`.
    DotDot,
    /// The end of the file.
    Eof,
}

impl Tok {
    /// The token as an error message names it.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("the string {s:?}"),
            Tok::Num(s) => format!("the number {s}"),
            Tok::Eq => "`=`".into(),
            Tok::Comma => "`,`".into(),
            Tok::DotDot => "`..`".into(),
            Tok::Eof => "the end of the file".into(),
        }
    }
}

fn ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// A place in the text, with its line and column.
struct Cursor {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
}

impl Cursor {
    fn new(text: &str) -> Self {
        Self {
            chars: text.chars().collect(),
            i: 0,
            line: 1,
            col: 1,
        }
    }

    /// The character `k` places ahead.
    fn at(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn peek(&self) -> Option<char> {
        self.at(0)
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    /// Step over the current character.
    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.i += 1;
            if c == '\n' {
                self.line += 1;
                self.col = 1;
            } else {
                self.col += 1;
            }
        }
    }

    /// Report the character here when it is hidden ([`hidden_in`]); true when it was.
    fn report_hidden(&self, errors: &mut ErrorSink) -> bool {
        let Some(found) = self
            .peek()
            .and_then(|c| hidden_in(c.encode_utf8(&mut [0; 4])))
        else {
            return false;
        };
        errors.push(RuleError {
            pos: self.pos(),
            message: format!(
                "{found}: it can make the rule read differently from what it does; remove it"
            ),
        });
        true
    }

    /// A comment, up to (not including) the end of the line.
    fn skip_comment(&mut self, errors: &mut ErrorSink) {
        while self.peek().is_some_and(|d| d != '\n') {
            self.report_hidden(errors);
            self.bump();
        }
    }

    /// A string from its opening quote; None when it is not closed on the same line.
    fn string(&mut self, errors: &mut ErrorSink) -> Option<String> {
        self.bump();
        let mut s = String::new();
        while let Some(d) = self.peek() {
            if d == '\n' {
                break;
            }
            let skip = self.report_hidden(errors);
            self.bump();
            if skip {
                continue;
            }
            match d {
                '"' => return Some(s),
                '\\' => self.escape(&mut s, errors),
                _ => s.push(d),
            }
        }
        None
    }

    /// The character after a backslash.
    fn escape(&mut self, s: &mut String, errors: &mut ErrorSink) {
        let e = self.peek();
        match e {
            Some('"') => s.push('"'),
            Some('\\') => s.push('\\'),
            Some('n') => s.push('\n'),
            Some('t') => s.push('\t'),
            other => errors.push(RuleError {
                pos: self.pos(),
                message: format!(
                    "unknown escape {}; expected \\\", \\\\, \\n or \\t",
                    other.map(|o| format!("\\{o}")).unwrap_or("\\".into())
                ),
            }),
        }
        if e.is_some_and(|e| e != '\n') {
            self.bump();
        }
    }

    /// Digits with an optional leading `-`, at most one `.` followed by a digit (it may come
    /// first: `.9`), and an optional exponent (`e`, an optional sign, digits).
    fn number(&mut self) -> String {
        let mut s = String::new();
        if let Some(c) = self.peek() {
            s.push(c);
            self.bump();
        }
        let mut seen_dot = s.starts_with('.');
        while let Some(d) = self.peek() {
            if d.is_ascii_digit() {
                s.push(d);
            } else if d == '.' && !seen_dot && self.at(1).is_some_and(|e| e.is_ascii_digit()) {
                seen_dot = true;
                s.push(d);
            } else if matches!(d, 'e' | 'E') && self.exponent_follows() {
                // Scientific notation (1e-3, -1e30): "bias -1e30" once read as -1 then
                // stopped at "e30" with a message that said nothing of exponents.
                s.push(d);
                self.bump();
                if let Some(sign) = self.peek().filter(|c| matches!(c, '-' | '+')) {
                    s.push(sign);
                    self.bump();
                }
                while let Some(e) = self.peek().filter(char::is_ascii_digit) {
                    s.push(e);
                    self.bump();
                }
                break;
            } else {
                break;
            }
            self.bump();
        }
        s
    }

    /// Whether an exponent's digits follow the `e` at the cursor (`e5`, `e-5`, `e+5`).
    fn exponent_follows(&self) -> bool {
        match self.at(1) {
            Some('-' | '+') => self.at(2).is_some_and(|c| c.is_ascii_digit()),
            Some(c) => c.is_ascii_digit(),
            None => false,
        }
    }

    /// An identifier; it stops before `..`.
    fn ident(&mut self) -> String {
        let mut s = String::new();
        while let Some(d) = self.peek() {
            if !ident_char(d) || (d == '.' && self.at(1) == Some('.')) {
                break;
            }
            s.push(d);
            self.bump();
        }
        s
    }

    /// `=`, `,` or `..`; None (nothing read) for anything else.
    fn punct(&mut self) -> Option<Tok> {
        let tok = match (self.peek(), self.at(1)) {
            (Some('='), _) => Tok::Eq,
            (Some(','), _) => Tok::Comma,
            (Some('.'), Some('.')) => {
                self.bump();
                Tok::DotDot
            }
            _ => return None,
        };
        self.bump();
        Some(tok)
    }
}

/// Split the text into tokens; lexical errors are collected and the bad character skipped.
pub(super) fn lex(text: &str, errors: &mut ErrorSink) -> Vec<(Tok, Pos)> {
    let mut cur = Cursor::new(text);
    let mut out = Vec::new();
    while let Some(c) = cur.peek() {
        let pos = cur.pos();
        if cur.report_hidden(errors) || c.is_whitespace() {
            cur.bump();
        } else if c == '#' {
            cur.skip_comment(errors);
        } else if c == '"' {
            match cur.string(errors) {
                Some(s) => out.push((Tok::Str(s), pos)),
                None => errors.push(RuleError {
                    pos,
                    message: "unterminated string; expected a closing `\"` on the same line".into(),
                }),
            }
        } else if c.is_ascii_digit()
            || (matches!(c, '-' | '.') && cur.at(1).is_some_and(|d| d.is_ascii_digit()))
        {
            // `.9` is read as 0.9: it was "unexpected character '.'" and then "found 9".
            out.push((Tok::Num(cur.number()), pos));
        } else if ident_start(c) {
            out.push((Tok::Ident(cur.ident()), pos));
        } else if let Some(tok) = cur.punct() {
            out.push((tok, pos));
        } else {
            errors.push(RuleError {
                pos,
                message: format!("unexpected character {c:?}"),
            });
            cur.bump();
        }
    }
    out.push((Tok::Eof, cur.pos()));
    out
}
