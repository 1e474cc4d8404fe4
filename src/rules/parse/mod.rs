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

mod error;
mod grammar;
mod lex;
mod parser;

pub use error::{RuleError, RuleErrors, MAX_KEPT_ERRORS, MAX_LISTED_ERRORS};

pub(crate) use error::ErrorSink;
pub use grammar::{MAX_LOGIT, MIN_FIDELITY};

use crate::rules::ast::{Rule, RuleSet};
use lex::{lex, Tok};
use parser::{Bail, Parser};

/// Parse a rule file. Every error is returned (up to [`MAX_KEPT_ERRORS`], the rest counted),
/// in file order; no rule is returned then. A leading byte-order mark is skipped.
pub fn parse_rules(text: &str) -> Result<RuleSet, RuleErrors> {
    // A file saved with a byte-order mark: the mark is no character of the rules, and columns
    // are counted after it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut errors = ErrorSink::default();
    let toks = lex(text, &mut errors);
    let mut p = Parser {
        toks,
        at: 0,
        errors,
    };
    let mut rules: Vec<Rule> = Vec::new();
    // Each id's first rule, indexed: a search of the earlier rules per rule took minutes on a
    // file of 276,000 rules (within the 16 MB limit).
    let mut first: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    while *p.peek() != Tok::Eof {
        let before = p.at;
        match p.rule() {
            Ok(r) => {
                let prev = first.get(&r.id.text).and_then(|&i| rules.get(i));
                if let Some(prev) = prev {
                    let (pos, prev_pos) = (r.id.pos, prev.id.pos);
                    p.errors.push(RuleError {
                        pos,
                        message: format!(
                            "rule id {} is used twice (first at {prev_pos})",
                            r.id.text
                        ),
                    });
                } else {
                    first.insert(r.id.text.clone(), rules.len());
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
    match p.errors.finish() {
        None => Ok(RuleSet { rules }),
        Some(e) => Err(e),
    }
}
