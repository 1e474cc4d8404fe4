//! The printer: rules back to the text form, such that parse → print → parse gives the same
//! rules (checked with proptest in `tests/rules.rs`).

use crate::rules::ast::{Condition, Name, Rule, RuleSet, Scope, Strength, Target};

/// The language's keywords ([`crate::rules::keywords`]): block names spelled like one are
/// printed quoted, and the studio's editor colours them.
pub use crate::rules::keywords::KEYWORDS;

/// A string literal with escapes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `s` can be written bare (as the lexer would read it back as one identifier).
fn bare(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    first_ok
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !s.contains("..")
        && !s.ends_with('.')
        && !KEYWORDS.contains(&s)
        && !s.starts_with("query.")
        && !s.starts_with("earlier.")
}

fn block(n: &Name) -> String {
    if bare(&n.text) {
        n.text.clone()
    } else {
        quote(&n.text)
    }
}

fn tokens(ts: &[Name]) -> String {
    ts.iter()
        .map(|t| quote(&t.text))
        .collect::<Vec<_>>()
        .join(" ")
}

fn number(x: f64) -> String {
    // Rust's Display of f64 is the shortest text that reads back to the same value, and never
    // uses exponent notation, which the rule lexer does not read.
    format!("{x}")
}

/// A scope as written: `all`, or `N` and `N..M` joined by commas.
pub fn print_scope(s: &Scope) -> String {
    match s {
        Scope::All => "all".into(),
        Scope::Ranges(r) => r
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    format!("{a}")
                } else {
                    format!("{a}..{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn condition(c: &Condition) -> String {
    match c {
        Condition::QueryToken { token } => format!("query.token = {}", quote(&token.text)),
        Condition::QueryBlock { block: b } => format!("query.block = {}", block(b)),
        Condition::EarlierToken { token } => format!("earlier.token = {}", quote(&token.text)),
        Condition::EarlierBlock { block: b } => format!("earlier.block = {}", block(b)),
        Condition::Position { from, to } if from == to => format!("position {from}"),
        Condition::Position { from, to } => format!("position {from}..{to}"),
    }
}

fn target(t: &Target) -> String {
    match t {
        Target::Block { block: b } => format!("block {}", block(b)),
        Target::Token { token } => format!("token {}", quote(&token.text)),
        Target::PreviousBlock { block: b } => format!("previous block {}", block(b)),
        Target::Anchor { block: b } => format!("anchor {}", block(b)),
        Target::Positions { positions } => format!("positions {}", print_positions(positions)),
    }
}

/// One rule as text (ends with a newline).
pub fn print_rule(r: &Rule) -> String {
    let mut out = format!("rule {}", r.id.text);
    if !r.description.is_empty() {
        out.push(' ');
        out.push_str(&quote(&r.description));
    }
    out.push('\n');
    if let Some((name, toks)) = &r.new_block {
        out.push_str(&format!("  new block {} = {}\n", block(name), tokens(toks)));
    }
    out.push_str(&format!(
        "  when {}\n",
        r.when
            .iter()
            .map(condition)
            .collect::<Vec<_>>()
            .join(" and ")
    ));
    out.push_str(&format!("  target {}\n", target(&r.target)));
    out.push_str(&format!("  layers {}\n", print_scope(&r.layers)));
    out.push_str(&format!("  heads {}\n", print_scope(&r.heads)));
    out.push_str(&match r.strength {
        Strength::Bias { rho } => format!("  bias {}\n", number(rho)),
        Strength::Fidelity { target } => format!("  fidelity {}\n", number(target)),
    });
    if !r.forbid.is_empty() {
        out.push_str(&format!("  forbid {}\n", tokens(&r.forbid)));
    }
    if let Some((toks, by)) = &r.boost {
        out.push_str(&format!("  boost {} by {}\n", tokens(toks), number(*by)));
    }
    if !r.enabled {
        out.push_str("  disabled\n");
    }
    out.push_str("end\n");
    out
}

/// A whole rule file, rules separated by blank lines.
pub fn print_rules(set: &RuleSet) -> String {
    set.rules
        .iter()
        .map(print_rule)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Positions joined by ", ".
pub fn print_positions(positions: &[usize]) -> String {
    positions
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
