//! The grammar of one rule: its conditions, its target, and its clauses from `rule` to `end`
//! (any order, each at most once; `when`, `target` and a strength are required). After an
//! error the parser goes on at the next clause, so every error of a rule is reported.

use crate::rules::ast::{ClausePos, Condition, Name, Pos, Rule, Scope, Strength, Target};
use crate::rules::keywords::{expected_clause, expected_condition, expected_target};
use crate::rules::parse::lex::Tok;
use crate::rules::parse::parser::{Bail, Parser, P};

/// Largest logit a rule may add (`bias`, `boost ... by`): e^1000 is already far beyond single
/// precision, and a larger number (1e40 is finite in f64 but infinite in f32) turns the
/// attention into NaN.
pub const MAX_LOGIT: f64 = 1000.0;

/// Closest a `fidelity` target may come to 0 or 1: nearer, it rounds to 0 or 1 in single
/// precision and the bias solved for it is infinite.
pub const MIN_FIDELITY: f64 = 1e-6;

/// The message for a logit too large to compute with.
fn too_large(what: &str, v: f64) -> String {
    format!(
        "{what} {} is too large: a logit of at most {MAX_LOGIT} in size (larger ones overflow \
         single precision)",
        show(v)
    )
}

/// A number as a reader would write it: `1e40`, not forty digits.
fn show(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e6).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// The clauses of one rule as they are read.
#[derive(Default)]
struct Draft {
    when: Option<Vec<Condition>>,
    target: Option<Target>,
    layers: Option<Scope>,
    heads: Option<Scope>,
    strength: Option<Strength>,
    forbid: Option<Vec<Name>>,
    boost: Option<(Vec<Name>, f64)>,
    new_block: Option<(Name, Vec<Name>)>,
    disabled: bool,
    at: ClausePos,
}

impl Parser {
    fn condition(&mut self) -> P<Condition> {
        let pos = self.pos();
        let Tok::Ident(w) = self.peek().clone() else {
            return self.expected(&expected_condition());
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
                    format!("expected {}, found `{w}`", expected_condition()),
                )
            }
        })
    }

    /// COND (`and` COND)*.
    fn conditions(&mut self) -> P<Vec<Condition>> {
        let mut conds = vec![self.condition()?];
        while self.is_word("and") {
            self.bump();
            conds.push(self.condition()?);
        }
        Ok(conds)
    }

    fn target(&mut self) -> P<Target> {
        let pos = self.pos();
        let Tok::Ident(w) = self.peek().clone() else {
            return self.expected(&expected_target());
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
            _ => return self.fail(pos, format!("expected {}, found `{w}`", expected_target())),
        })
    }

    /// `bias RHO` or `fidelity F`, from the keyword `w` at `pos`.
    fn strength(&mut self, w: &str, pos: Pos, seen: bool, id: &Name) -> P<Strength> {
        if seen {
            return self.fail(
                pos,
                format!(
                    "rule {} has two strengths; give either `bias` or `fidelity`",
                    id.text
                ),
            );
        }
        self.bump();
        let vpos = self.pos();
        let v = self.number("a number")?;
        if w == "bias" {
            if v < 0.0 {
                return self.fail(vpos, format!("bias must be ≥ 0, found {v}"));
            }
            if v > MAX_LOGIT {
                return self.fail(vpos, too_large("bias", v));
            }
            Ok(Strength::Bias { rho: v })
        } else {
            if !(v > 0.0 && v < 1.0) {
                return self.fail(
                    vpos,
                    format!("fidelity must lie strictly between 0 and 1, found {v}"),
                );
            }
            if !(MIN_FIDELITY..=1.0 - MIN_FIDELITY).contains(&v) {
                return self.fail(
                    vpos,
                    format!(
                        "fidelity {} is too close to 0 or 1 to compute with (single precision): \
                         give a value in [{MIN_FIDELITY}, {}]",
                        show(v),
                        1.0 - MIN_FIDELITY
                    ),
                );
            }
            Ok(Strength::Fidelity { target: v })
        }
    }

    /// `"w" ... by X` after `boost`.
    fn boost(&mut self) -> P<(Vec<Name>, f64)> {
        let toks = self.tokens()?;
        self.word("by")?;
        let vpos = self.pos();
        let by = self.number("the boost (a number)")?;
        if by.abs() > MAX_LOGIT {
            return self.fail(vpos, too_large("boost", by));
        }
        Ok((toks, by))
    }

    /// `block B = "w" ...` after `new`.
    fn new_block(&mut self) -> P<(Name, Vec<Name>)> {
        self.word("block")?;
        let name = self.block_name()?;
        self.eq()?;
        Ok((name, self.tokens()?))
    }

    /// Steps over clause keyword `w` (at `pos`) unless the rule has it already (`seen`).
    fn open_clause(&mut self, seen: bool, pos: Pos, w: &str, id: &Name) -> P<()> {
        if seen {
            return self.fail(pos, format!("`{w}` appears twice in rule {}", id.text));
        }
        self.bump();
        Ok(())
    }

    /// One clause into `d`; true once `end` is read.
    fn clause(&mut self, d: &mut Draft, id: &Name) -> P<bool> {
        let pos = self.pos();
        let Tok::Ident(w) = self.peek().clone() else {
            return self.expected(&expected_clause());
        };
        match w.as_str() {
            "end" => {
                self.bump();
                return Ok(true);
            }
            "rule" => {
                let msg = format!(
                    "expected `end` to close rule {} before the next rule",
                    id.text
                );
                return self.fail(pos, msg);
            }
            "when" => {
                self.open_clause(d.when.is_some(), pos, &w, id)?;
                d.at.when = pos;
                d.when = Some(self.conditions()?);
            }
            "target" => {
                self.open_clause(d.target.is_some(), pos, &w, id)?;
                d.at.target = pos;
                d.target = Some(self.target()?);
            }
            "layers" => {
                self.open_clause(d.layers.is_some(), pos, &w, id)?;
                d.at.layers = pos;
                d.layers = Some(self.scope("a layer")?);
            }
            "heads" => {
                self.open_clause(d.heads.is_some(), pos, &w, id)?;
                d.at.heads = pos;
                d.heads = Some(self.scope("a head")?);
            }
            "bias" | "fidelity" => {
                d.strength = Some(self.strength(&w, pos, d.strength.is_some(), id)?)
            }
            "forbid" => {
                self.open_clause(d.forbid.is_some(), pos, &w, id)?;
                d.forbid = Some(self.tokens()?);
            }
            "boost" => {
                self.open_clause(d.boost.is_some(), pos, &w, id)?;
                d.boost = Some(self.boost()?);
            }
            "new" => {
                self.open_clause(d.new_block.is_some(), pos, &w, id)?;
                d.new_block = Some(self.new_block()?);
            }
            "disabled" => {
                self.open_clause(d.disabled, pos, &w, id)?;
                d.disabled = true;
            }
            _ => return self.fail(pos, format!("expected {}, found `{w}`", expected_clause())),
        }
        Ok(false)
    }

    /// `rule ID ["description"]`.
    fn rule_head(&mut self) -> P<(Name, String)> {
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
        Ok((id, description))
    }

    /// One rule, from `rule` to `end`.
    pub(super) fn rule(&mut self) -> P<Rule> {
        let start = self.pos();
        let (id, description) = self.rule_head()?;
        let mut d = Draft::default();
        let mut failed = false;
        loop {
            match self.clause(&mut d, &id) {
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
        self.finish(d, id, description, start)
    }

    /// The rule read, or an error at `start` naming the clauses it lacks.
    fn finish(&mut self, d: Draft, id: Name, description: String, start: Pos) -> P<Rule> {
        let mut missing = Vec::new();
        if d.when.is_none() {
            missing.push("`when`");
        }
        if d.target.is_none() {
            missing.push("`target`");
        }
        if d.strength.is_none() {
            missing.push("a strength (`bias` or `fidelity`)");
        }
        if !missing.is_empty() {
            return self.fail(
                start,
                format!("rule {} is missing {}", id.text, missing.join(" and ")),
            );
        }
        match (d.when, d.target, d.strength) {
            (Some(when), Some(target), Some(strength)) => Ok(Rule {
                id,
                description,
                enabled: !d.disabled,
                when,
                target,
                layers: d.layers.unwrap_or_default(),
                heads: d.heads.unwrap_or_default(),
                strength,
                forbid: d.forbid.unwrap_or_default(),
                boost: d.boost,
                new_block: d.new_block,
                at: d.at,
            }),
            _ => Err(Bail),
        }
    }
}
