//! The parser of `.rules` files. It reads the whole file, recovers at the next `end` after an
//! error so that every error is reported at once, each with its line:column and what was
//! expected, and never panics (fuzzed in `tests/rules.rs`).
//!
//! ```text
//! # Doses point at the drug they belong to.
//! rule dose_to_drug "A dose attends to its drug"
//!   when query.block = dose and earlier.block = drug
//!   target previous block drug
//!   layers 1
//!   heads all
//!   fidelity 0.95
//! end
//! ```
//!
//! Clauses (any order, each at most once; `when`, `target` and a strength are required):
//! - `when` COND (`and` COND)*, with COND one of `query.token = "w"`, `query.block = B`,
//!   `earlier.token = "w"`, `earlier.block = B`, `position N` or `position N..M`;
//! - `target block B` | `target token "w"` | `target previous block B` | `target anchor B` |
//!   `target positions N, M, ...`;
//! - `layers` / `heads`: `all`, or `N`, `N..M` (inclusive) separated by commas;
//! - `bias RHO` (a logit bias ≥ 0) or `fidelity F` (a PF target in (0, 1), ρ solved by 8.3);
//! - `forbid "w" ...`, `boost "w" ... by X`;
//! - `new block B = "w" ...` declares a block made of those tokens;
//! - `disabled` keeps the rule but switches it off.
//!
//! Block names are identifiers or quoted strings; tokens are always quoted (`\"`, `\\`, `\n`
//! and `\t` escapes). `#` starts a comment.

use crate::rules::ast::{Condition, Name, Pos, Rule, RuleSet, Scope, Strength, Target};

/// One error in a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// Where.
    pub pos: Pos,
    /// What is wrong, and what was expected.
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

/// Every error of a rule file; the file is rejected whole when there is any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleErrors {
    /// The errors in file order.
    pub errors: Vec<RuleError>,
}

impl std::fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.errors.len();
        write!(f, "{n} error{}", if n == 1 { "" } else { "s" })?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

impl RuleErrors {
    /// The errors, each prefixed with `file:` (for command-line output).
    pub fn with_file(&self, file: &str) -> String {
        self.errors
            .iter()
            .map(|e| format!("{file}:{e}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Eq,
    Comma,
    DotDot,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
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

/// Split the text into tokens; lexical errors are collected and the bad character skipped.
fn lex(text: &str, errors: &mut Vec<RuleError>) -> Vec<(Tok, Pos)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        let pos = Pos { line, col };
        let advance = |i: &mut usize, line: &mut usize, col: &mut usize, c: char| {
            *i += 1;
            if c == '\n' {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
        };
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut col, c);
        } else if c == '#' {
            while let Some(d) = at(i) {
                if d == '\n' {
                    break;
                }
                advance(&mut i, &mut line, &mut col, d);
            }
        } else if c == '"' {
            advance(&mut i, &mut line, &mut col, c);
            let mut s = String::new();
            let mut closed = false;
            while let Some(d) = at(i) {
                if d == '\n' {
                    break;
                }
                advance(&mut i, &mut line, &mut col, d);
                match d {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        let e = at(i);
                        match e {
                            Some('"') => s.push('"'),
                            Some('\\') => s.push('\\'),
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            other => errors.push(RuleError {
                                pos: Pos { line, col },
                                message: format!(
                                    "unknown escape {}; expected \\\", \\\\, \\n or \\t",
                                    other.map(|o| format!("\\{o}")).unwrap_or("\\".into())
                                ),
                            }),
                        }
                        if let Some(e) = e {
                            if e != '\n' {
                                advance(&mut i, &mut line, &mut col, e);
                            }
                        }
                    }
                    _ => s.push(d),
                }
            }
            if closed {
                out.push((Tok::Str(s), pos));
            } else {
                errors.push(RuleError {
                    pos,
                    message: "unterminated string; expected a closing `\"` on the same line".into(),
                });
            }
        } else if c.is_ascii_digit() || (c == '-' && at(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut s = String::new();
            s.push(c);
            advance(&mut i, &mut line, &mut col, c);
            let mut seen_dot = false;
            while let Some(d) = at(i) {
                if d.is_ascii_digit() {
                    s.push(d);
                } else if d == '.' && !seen_dot && at(i + 1).is_some_and(|e| e.is_ascii_digit()) {
                    seen_dot = true;
                    s.push(d);
                } else {
                    break;
                }
                advance(&mut i, &mut line, &mut col, d);
            }
            out.push((Tok::Num(s), pos));
        } else if ident_start(c) {
            let mut s = String::new();
            while let Some(d) = at(i) {
                if !ident_char(d) || (d == '.' && at(i + 1) == Some('.')) {
                    break;
                }
                s.push(d);
                advance(&mut i, &mut line, &mut col, d);
            }
            out.push((Tok::Ident(s), pos));
        } else if c == '=' {
            advance(&mut i, &mut line, &mut col, c);
            out.push((Tok::Eq, pos));
        } else if c == ',' {
            advance(&mut i, &mut line, &mut col, c);
            out.push((Tok::Comma, pos));
        } else if c == '.' && at(i + 1) == Some('.') {
            advance(&mut i, &mut line, &mut col, c);
            advance(&mut i, &mut line, &mut col, '.');
            out.push((Tok::DotDot, pos));
        } else {
            errors.push(RuleError {
                pos,
                message: format!("unexpected character {c:?}"),
            });
            advance(&mut i, &mut line, &mut col, c);
        }
    }
    out.push((Tok::Eof, Pos { line, col }));
    out
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    at: usize,
    errors: Vec<RuleError>,
}

/// A parse failure inside one rule (already recorded); the parser skips to its `end`.
struct Bail;

type P<T> = Result<T, Bail>;

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.at).map(|(t, _)| t).unwrap_or(&Tok::Eof)
    }

    fn pos(&self) -> Pos {
        self.toks
            .get(self.at)
            .or(self.toks.last())
            .map(|(_, p)| *p)
            .unwrap_or_default()
    }

    fn bump(&mut self) -> (Tok, Pos) {
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

    fn fail<T>(&mut self, pos: Pos, message: String) -> P<T> {
        self.errors.push(RuleError { pos, message });
        Err(Bail)
    }

    fn expected<T>(&mut self, what: &str) -> P<T> {
        let (found, pos) = (self.peek().describe(), self.pos());
        self.fail(pos, format!("expected {what}, found {found}"))
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == w)
    }

    fn word(&mut self, w: &str) -> P<()> {
        if self.is_word(w) {
            self.bump();
            Ok(())
        } else {
            self.expected(&format!("`{w}`"))
        }
    }

    fn eq(&mut self) -> P<()> {
        if *self.peek() == Tok::Eq {
            self.bump();
            Ok(())
        } else {
            self.expected("`=`")
        }
    }

    /// A block name: an identifier or a quoted string.
    fn block_name(&mut self) -> P<Name> {
        match self.peek().clone() {
            Tok::Ident(s) | Tok::Str(s) => {
                let (_, pos) = self.bump();
                Ok(Name { text: s, pos })
            }
            _ => self.expected("a block name"),
        }
    }

    fn token_name(&mut self) -> P<Name> {
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

    fn tokens(&mut self) -> P<Vec<Name>> {
        let mut out = vec![self.token_name()?];
        while matches!(self.peek(), Tok::Str(_)) {
            out.push(self.token_name()?);
        }
        Ok(out)
    }

    fn number(&mut self, what: &str) -> P<f64> {
        match self.peek().clone() {
            Tok::Num(s) => {
                let pos = self.pos();
                self.bump();
                match s.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => self.fail(pos, format!("{s} is not a finite number")),
                }
            }
            _ => self.expected(what),
        }
    }

    fn index(&mut self, what: &str) -> P<usize> {
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
    fn range(&mut self, what: &str) -> P<(usize, usize)> {
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

    fn scope(&mut self, what: &str) -> P<Scope> {
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

    fn condition(&mut self) -> P<Condition> {
        let pos = self.pos();
        let Tok::Ident(w) = self.peek().clone() else {
            return self.expected(
                "a condition (query.token, query.block, earlier.token, earlier.block or position)",
            );
        };
        self.bump();
        Ok(match w.as_str() {
            "query.token" => {
                self.eq()?;
                Condition::QueryToken {
                    token: self.token_name()?,
                }
            }
            "query.block" => {
                self.eq()?;
                Condition::QueryBlock {
                    block: self.block_name()?,
                }
            }
            "earlier.token" => {
                self.eq()?;
                Condition::EarlierToken {
                    token: self.token_name()?,
                }
            }
            "earlier.block" => {
                self.eq()?;
                Condition::EarlierBlock {
                    block: self.block_name()?,
                }
            }
            "position" => {
                let (from, to) = self.range("a position")?;
                Condition::Position { from, to }
            }
            _ => {
                return self.fail(
                    pos,
                    format!(
                        "expected a condition (query.token, query.block, earlier.token, \
                         earlier.block or position), found `{w}`"
                    ),
                )
            }
        })
    }

    fn target(&mut self) -> P<Target> {
        let pos = self.pos();
        let Tok::Ident(w) = self.peek().clone() else {
            return self.expected("a target (block, token, previous block, anchor or positions)");
        };
        self.bump();
        Ok(match w.as_str() {
            "block" => Target::Block {
                block: self.block_name()?,
            },
            "token" => Target::Token {
                token: self.token_name()?,
            },
            "previous" => {
                self.word("block")?;
                Target::PreviousBlock {
                    block: self.block_name()?,
                }
            }
            "anchor" => Target::Anchor {
                block: self.block_name()?,
            },
            "positions" => {
                let mut positions = vec![self.index("a position")?];
                while *self.peek() == Tok::Comma {
                    self.bump();
                    positions.push(self.index("a position")?);
                }
                Target::Positions { positions }
            }
            _ => {
                return self.fail(
                    pos,
                    format!(
                        "expected a target (block, token, previous block, anchor or positions), \
                         found `{w}`"
                    ),
                )
            }
        })
    }

    /// One rule, from `rule` to `end`.
    fn rule(&mut self) -> P<Rule> {
        let start = self.pos();
        self.word("rule")?;
        let id = match self.peek().clone() {
            Tok::Ident(s) => {
                let (_, pos) = self.bump();
                Name { text: s, pos }
            }
            _ => return self.expected("a rule id (letters, digits, _ and -)"),
        };
        let description = match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                s
            }
            _ => String::new(),
        };
        let mut when: Option<Vec<Condition>> = None;
        let mut target = None;
        let (mut layers, mut heads) = (None, None);
        let mut strength = None;
        let mut forbid = None;
        let mut boost = None;
        let mut new_block = None;
        let mut enabled = true;
        let mut seen_disabled = false;
        // One clause per call; true once `end` is read. After an error the parser skips to the
        // next clause and goes on, so every error of the rule is reported.
        let mut clause = |p: &mut Parser| -> P<bool> {
            let pos = p.pos();
            let Tok::Ident(w) = p.peek().clone() else {
                return p.expected(
                    "a clause (when, target, layers, heads, bias, fidelity, forbid, boost, new, \
                     disabled) or `end`",
                );
            };
            let dup = |seen: bool, p: &mut Parser| -> P<()> {
                if seen {
                    p.fail(pos, format!("`{w}` appears twice in rule {}", id.text))
                } else {
                    Ok(())
                }
            };
            match w.as_str() {
                "end" => {
                    p.bump();
                    return Ok(true);
                }
                "rule" => {
                    return p.fail(
                        pos,
                        format!(
                            "expected `end` to close rule {} before the next rule",
                            id.text
                        ),
                    )
                }
                "when" => {
                    dup(when.is_some(), p)?;
                    p.bump();
                    let mut conds = vec![p.condition()?];
                    while p.is_word("and") {
                        p.bump();
                        conds.push(p.condition()?);
                    }
                    when = Some(conds);
                }
                "target" => {
                    dup(target.is_some(), p)?;
                    p.bump();
                    target = Some(p.target()?);
                }
                "layers" => {
                    dup(layers.is_some(), p)?;
                    p.bump();
                    layers = Some(p.scope("a layer")?);
                }
                "heads" => {
                    dup(heads.is_some(), p)?;
                    p.bump();
                    heads = Some(p.scope("a head")?);
                }
                "bias" | "fidelity" => {
                    if strength.is_some() {
                        return p.fail(
                            pos,
                            format!(
                                "rule {} has two strengths; give either `bias` or `fidelity`",
                                id.text
                            ),
                        );
                    }
                    p.bump();
                    let vpos = p.pos();
                    let v = p.number("a number")?;
                    strength = Some(if w == "bias" {
                        if v < 0.0 {
                            return p.fail(vpos, format!("bias must be ≥ 0, found {v}"));
                        }
                        Strength::Bias { rho: v }
                    } else {
                        if !(v > 0.0 && v < 1.0) {
                            return p.fail(
                                vpos,
                                format!("fidelity must lie strictly between 0 and 1, found {v}"),
                            );
                        }
                        Strength::Fidelity { target: v }
                    });
                }
                "forbid" => {
                    dup(forbid.is_some(), p)?;
                    p.bump();
                    forbid = Some(p.tokens()?);
                }
                "boost" => {
                    dup(boost.is_some(), p)?;
                    p.bump();
                    let toks = p.tokens()?;
                    p.word("by")?;
                    let by = p.number("the boost (a number)")?;
                    boost = Some((toks, by));
                }
                "new" => {
                    dup(new_block.is_some(), p)?;
                    p.bump();
                    p.word("block")?;
                    let name = p.block_name()?;
                    p.eq()?;
                    new_block = Some((name, p.tokens()?));
                }
                "disabled" => {
                    dup(seen_disabled, p)?;
                    p.bump();
                    seen_disabled = true;
                    enabled = false;
                }
                _ => {
                    return p.fail(
                        pos,
                        format!(
                            "expected a clause (when, target, layers, heads, bias, fidelity, \
                             forbid, boost, new, disabled) or `end`, found `{w}`"
                        ),
                    )
                }
            }
            Ok(false)
        };
        let mut failed = false;
        loop {
            match clause(self) {
                Ok(true) => break,
                Ok(false) => {}
                Err(Bail) => {
                    failed = true;
                    if !self.skip_to_clause() {
                        return Err(Bail);
                    }
                }
            }
        }
        if failed {
            return Err(Bail);
        }
        let mut missing = Vec::new();
        if when.is_none() {
            missing.push("`when`");
        }
        if target.is_none() {
            missing.push("`target`");
        }
        if strength.is_none() {
            missing.push("a strength (`bias` or `fidelity`)");
        }
        if !missing.is_empty() {
            return self.fail(
                start,
                format!("rule {} is missing {}", id.text, missing.join(" and ")),
            );
        }
        match (when, target, strength) {
            (Some(when), Some(target), Some(strength)) => Ok(Rule {
                id,
                description,
                enabled,
                when,
                target,
                layers: layers.unwrap_or_default(),
                heads: heads.unwrap_or_default(),
                strength,
                forbid: forbid.unwrap_or_default(),
                boost,
                new_block,
            }),
            _ => Err(Bail),
        }
    }

    /// After an error inside a rule: skip to the next clause keyword or `end`; false when the
    /// next `rule` or the end of the file comes first (the rule cannot be closed).
    fn skip_to_clause(&mut self) -> bool {
        const CLAUSES: [&str; 11] = [
            "when", "target", "layers", "heads", "bias", "fidelity", "forbid", "boost", "new",
            "disabled", "end",
        ];
        // The token that failed may itself be a clause word (a duplicate clause): step past it.
        let first = self.at;
        loop {
            match self.peek() {
                Tok::Eof => return false,
                Tok::Ident(s) if s == "rule" => return false,
                Tok::Ident(s) if CLAUSES.contains(&s.as_str()) && self.at > first => return true,
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// Skip to just after the next `end` (or to the next `rule`, or the end of the file).
    fn recover(&mut self) {
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

/// Parse a rule file. Every error is returned, in file order; no rule is returned then.
pub fn parse_rules(text: &str) -> Result<RuleSet, RuleErrors> {
    let mut errors = Vec::new();
    let toks = lex(text, &mut errors);
    let mut p = Parser {
        toks,
        at: 0,
        errors,
    };
    let mut rules: Vec<Rule> = Vec::new();
    while *p.peek() != Tok::Eof {
        let before = p.at;
        match p.rule() {
            Ok(r) => {
                if let Some(prev) = rules.iter().find(|q| q.id.text == r.id.text) {
                    let (pos, prev_pos) = (r.id.pos, prev.id.pos);
                    p.errors.push(RuleError {
                        pos,
                        message: format!(
                            "rule id {} is used twice (first at {prev_pos})",
                            r.id.text
                        ),
                    });
                }
                rules.push(r);
            }
            Err(Bail) => {
                p.recover();
                if p.at == before {
                    // Make progress on input that is not a rule at all.
                    p.bump();
                }
            }
        }
    }
    if p.errors.is_empty() {
        Ok(RuleSet { rules })
    } else {
        p.errors.sort_by_key(|e| e.pos);
        p.errors.dedup();
        Err(RuleErrors { errors: p.errors })
    }
}
