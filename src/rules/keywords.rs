//! The words of the rule language, written once: the parser dispatches on them and lists them
//! in its errors, the printer quotes block names spelled like one, and the studio's editor
//! colours them.

/// How many of [`KEYWORDS`] open a clause inside a rule (they come first).
const CLAUSE_COUNT: usize = 10;

/// Every keyword of the language. The first ten open a clause inside a rule ([`CLAUSES`]);
/// the rest are `rule`/`end` and the words inside clauses.
pub const KEYWORDS: [&str; 21] = [
    "when",
    "target",
    "layers",
    "heads",
    "bias",
    "fidelity",
    "forbid",
    "boost",
    "new",
    "disabled",
    "rule",
    "end",
    "and",
    "by",
    "block",
    "all",
    "previous",
    "anchor",
    "positions",
    "token",
    "position",
];

/// The words that open a clause inside a rule, in the order the errors list them.
pub const CLAUSES: &[&str] = KEYWORDS.split_at(CLAUSE_COUNT).0;

/// The conditions of a `when` clause.
pub const CONDITIONS: [&str; 5] = [
    "query.token",
    "query.block",
    "earlier.token",
    "earlier.block",
    "position",
];

/// The kinds of `target` (`previous` is followed by `block`).
pub const TARGETS: [&str; 5] = ["block", "token", "previous block", "anchor", "positions"];

/// `a, b, c or d`.
fn or_list(words: &[&str]) -> String {
    match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => (*last).to_string(),
        None => String::new(),
    }
}

/// What the parser expects where a clause may start: "a clause (when, target, …) or `end`".
pub fn expected_clause() -> String {
    format!("a clause ({}) or `end`", CLAUSES.join(", "))
}

/// What the parser expects where a condition may start: "a condition (query.token, … or
/// position)".
pub fn expected_condition() -> String {
    format!("a condition ({})", or_list(&CONDITIONS))
}

/// What the parser expects after `target`: "a target (block, token, … or positions)".
pub fn expected_target() -> String {
    format!("a target ({})", or_list(&TARGETS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_read_as_the_errors_always_did() {
        assert_eq!(
            expected_clause(),
            "a clause (when, target, layers, heads, bias, fidelity, forbid, boost, new, \
             disabled) or `end`"
        );
        assert_eq!(
            expected_condition(),
            "a condition (query.token, query.block, earlier.token, earlier.block or position)"
        );
        assert_eq!(
            expected_target(),
            "a target (block, token, previous block, anchor or positions)"
        );
    }
}
