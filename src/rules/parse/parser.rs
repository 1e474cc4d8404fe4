//! The parser's reading primitives over the token list: looking ahead, stepping, recording an
//! error, and the small pieces every clause is built from (names, numbers, ranges, scopes),
//! plus the two recoveries after an error.

use crate::rules::ast::{Name, Pos, Scope};
use crate::rules::keywords::CLAUSES;
use crate::rules::parse::error::{ErrorSink, RuleError};
use crate::rules::parse::lex::Tok;

/// The tokens of a file, where the parser stands and the errors found so far.
pub(super) struct Parser {
    /// The tokens with where each starts; the last is [`Tok::Eof`].
    pub(super) toks: Vec<(Tok, Pos)>,
    /// Index of the next token.
    pub(super) at: usize,
    /// Errors in the order found.
    pub(super) errors: ErrorSink,
}

/// A parse failure inside one rule (already recorded); the parser skips to its `end`.
pub(super) struct Bail;

/// The result of one parsing step.
pub(super) type P<T> = Result<T, Bail>;

impl Parser {
    pub(super) fn peek(&self) -> &Tok {
        self.toks.get(self.at).map(|(t, _)| t).unwrap_or(&Tok::Eof)
    }

    pub(super) fn pos(&self) -> Pos {
        self.toks
            .get(self.at)
            .or(self.toks.last())
            .map(|(_, p)| *p)
            .unwrap_or_default()
    }

    pub(super) fn bump(&mut self) -> (Tok, Pos) {
        let t = self
            .toks
            .get(self.at)
            .cloned()
            .unwrap_or((Tok::Eof, self.pos()));
        if self.at < self.toks.len() {
            self.at += 1;
        }
        t
    }

    pub(super) fn fail<T>(&mut self, pos: Pos, message: String) -> P<T> {
        self.errors.push(RuleError { pos, message });
        Err(Bail)
    }

    pub(super) fn expected<T>(&mut self, what: &str) -> P<T> {
        let (found, pos) = (self.peek().describe(), self.pos());
        self.fail(pos, format!("expected {what}, found {found}"))
    }

    pub(super) fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == w)
    }

    pub(super) fn word(&mut self, w: &str) -> P<()> {
        if self.is_word(w) {
            self.bump();
            Ok(())
        } else {
            self.expected(&format!("`{w}`"))
        }
    }

    pub(super) fn eq(&mut self) -> P<()> {
        if *self.peek() == Tok::Eq {
            self.bump();
            Ok(())
        } else {
            self.expected("`=`")
        }
    }

    /// A block name: an identifier or a quoted string.
    pub(super) fn block_name(&mut self) -> P<Name> {
        match self.peek().clone() {
            Tok::Ident(s) | Tok::Str(s) => {
                let (_, pos) = self.bump();
                Ok(Name { text: s, pos })
            }
            _ => self.expected("a block name"),
        }
    }

    pub(super) fn token_name(&mut self) -> P<Name> {
        match self.peek().clone() {
            Tok::Str(s) => {
                let (_, pos) = self.bump();
                Ok(Name { text: s, pos })
            }
            Tok::Ident(s) => {
                let pos = self.pos();
                self.fail(
                    pos,
                    format!("expected a quoted token, found `{s}`; write it as \"{s}\""),
                )
            }
            _ => self.expected("a quoted token"),
        }
    }

    pub(super) fn tokens(&mut self) -> P<Vec<Name>> {
        let mut out = vec![self.token_name()?];
        while matches!(self.peek(), Tok::Str(_)) {
            out.push(self.token_name()?);
        }
        Ok(out)
    }

    pub(super) fn number(&mut self, what: &str) -> P<f64> {
        match self.peek().clone() {
            Tok::Num(s) => {
                let pos = self.pos();
                self.bump();
                if let Some(frac) = self.decimal_comma(pos, &s) {
                    return self.fail(
                        pos,
                        format!(
                            "`{s},{frac}` has a decimal comma; write it with a point: {s}.{frac}"
                        ),
                    );
                }
                match s.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => self.fail(pos, format!("{s} is not a finite number")),
                }
            }
            _ => self.expected(what),
        }
    }

    /// The digits after a comma written right after the number `s` at `pos` (`0,9`), where a
    /// single value is read: a decimal comma, which would otherwise read as the number before it
    /// and a stray `,` (`fidelity 0,9` was "must lie between 0 and 1, found 0").
    fn decimal_comma(&self, pos: Pos, s: &str) -> Option<String> {
        let (comma, cpos) = self.toks.get(self.at)?;
        let (next, npos) = self.toks.get(self.at + 1)?;
        let end = pos.col + s.chars().count();
        match (comma, next) {
            (Tok::Comma, Tok::Num(frac))
                if cpos.line == pos.line
                    && cpos.col == end
                    && npos.line == pos.line
                    && npos.col == end + 1 =>
            {
                Some(frac.clone())
            }
            _ => None,
        }
    }

    pub(super) fn index(&mut self, what: &str) -> P<usize> {
        match self.peek().clone() {
            Tok::Num(s) => {
                let pos = self.pos();
                self.bump();
                match s.parse::<usize>() {
                    Ok(v) => Ok(v),
                    Err(_) => self.fail(
                        pos,
                        format!("expected {what} (a whole number ≥ 0), found {s}"),
                    ),
                }
            }
            _ => self.expected(what),
        }
    }

    /// `N` or `N..M` (inclusive).
    pub(super) fn range(&mut self, what: &str) -> P<(usize, usize)> {
        let pos = self.pos();
        let a = self.index(what)?;
        if *self.peek() == Tok::DotDot {
            self.bump();
            let b = self.index(&format!("the last {what} of the range"))?;
            if b < a {
                return self.fail(
                    pos,
                    format!("empty range {a}..{b}; write the smaller end first"),
                );
            }
            Ok((a, b))
        } else {
            Ok((a, a))
        }
    }

    pub(super) fn scope(&mut self, what: &str) -> P<Scope> {
        if self.is_word("all") {
            self.bump();
            return Ok(Scope::All);
        }
        let mut ranges = vec![self.range(what)?];
        while *self.peek() == Tok::Comma {
            self.bump();
            ranges.push(self.range(what)?);
        }
        Ok(Scope::Ranges(ranges))
    }

    /// After an error inside a rule: skip to the next clause keyword or `end`; false when the
    /// next `rule` or the end of the file comes first (the rule cannot be closed).
    pub(super) fn skip_to_clause(&mut self) -> bool {
        // The token that failed may itself be a clause word (a duplicate clause): step past it.
        let first = self.at;
        loop {
            match self.peek() {
                Tok::Eof => return false,
                Tok::Ident(s) if s == "rule" => return false,
                Tok::Ident(s)
                    if (CLAUSES.contains(&s.as_str()) || s == "end") && self.at > first =>
                {
                    return true
                }
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// Skip to just after the next `end` (or to the next `rule`, or the end of the file).
    pub(super) fn recover(&mut self) {
        loop {
            match self.peek() {
                Tok::Eof => return,
                Tok::Ident(s) if s == "end" => {
                    self.bump();
                    return;
                }
                Tok::Ident(s) if s == "rule" => return,
                _ => {
                    self.bump();
                }
            }
        }
    }
}
