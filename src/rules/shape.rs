//! Rules checked against the shape of the model they act on: a rule whose layers, heads or
//! positions the model does not have would act nowhere, and its measurements then read as a
//! rule that failed (fired on 8 rows, PF_mass 0.0000) when it in fact applied to nothing.

use crate::rules::ast::{Condition, Pos, RuleSet, Scope, Target};
use crate::rules::parse::{ErrorSink, RuleError, RuleErrors};

/// The sizes a rule's scope is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelShape {
    /// Layers.
    pub layers: usize,
    /// Heads per layer.
    pub heads: usize,
    /// Positions the model reads.
    pub positions: usize,
    /// A decoder: a query sees no later key.
    pub causal: bool,
}

/// Every rule of `set` that could act nowhere on a model of `shape`, as errors at the rule.
pub fn check_shape(set: &RuleSet, shape: ModelShape) -> Result<(), RuleErrors> {
    let mut errors = ErrorSink::default();
    for r in &set.rules {
        // At the clause that says it, else (a rule from JSON) at the rule's id.
        let mut say = |at: Pos, message: String| {
            errors.push(RuleError {
                pos: if at == Pos::default() { r.id.pos } else { at },
                message: format!("rule {} {message}", r.id.text),
            });
        };
        for (what, scope, n, at) in [
            ("layers", &r.layers, shape.layers, r.at.layers),
            ("heads", &r.heads, shape.heads, r.at.heads),
        ] {
            if let Some(message) = scope_problem(what, scope, n) {
                say(at, message);
            }
        }
        for c in &r.when {
            if let Condition::Position { from, to } = c {
                if *from >= shape.positions {
                    say(
                        r.at.when,
                        format!(
                            "fires at positions {from}..{to}, but the model reads {} positions \
                         (0..{}): it would never fire",
                            shape.positions,
                            shape.positions.saturating_sub(1)
                        ),
                    );
                }
            }
        }
        if let Some(message) = future_target(r, shape) {
            say(r.at.target, message);
        }
        if let Target::Positions { positions } = &r.target {
            let past: Vec<String> = positions
                .iter()
                .filter(|&&p| p >= shape.positions)
                .map(|p| p.to_string())
                .collect();
            let last = shape.positions.saturating_sub(1);
            if !positions.is_empty() && past.len() == positions.len() {
                say(
                    r.at.target,
                    format!(
                        "targets positions past the model's {} (0..{last}): it would point nowhere",
                        shape.positions
                    ),
                );
            } else if !past.is_empty() {
                // Dropped without a word, the rule would read as pointing where it does not.
                say(
                    r.at.target,
                    format!(
                        "targets position(s) {} past the model's {} (0..{last}): write positions \
                     within 0..{last}",
                        past.join(", "),
                        shape.positions
                    ),
                );
            }
        }
    }
    match errors.finish() {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// What is wrong with a rule's `what` (layers or heads) `scope` on a model of `n` of them.
fn scope_problem(what: &str, scope: &Scope, n: usize) -> Option<String> {
    let last = n.saturating_sub(1);
    if scope.indices(n).is_empty() {
        return Some(format!(
            "acts on {what} {}, but the model has {n} {what} (0..{last}): it would act nowhere",
            ranges(scope)
        ));
    }
    // Cut without a word, the rule would read as acting on more than it does.
    let past = matches!(scope, Scope::Ranges(r) if r.iter().any(|&(_, b)| b >= n));
    past.then(|| {
        format!(
            "acts on {what} {}, but the model has {n} {what} (0..{last}): write `{what} all` or \
             ranges within 0..{last}",
            ranges(scope)
        )
    })
}

/// A decoder's rule whose target positions all lie after every query it can fire at (`when
/// position 5`, `target positions 10`): it would point at keys its queries never see, and read
/// "0 fired" in every table.
fn future_target(r: &crate::rules::ast::Rule, shape: ModelShape) -> Option<String> {
    let Target::Positions { positions } = &r.target else {
        return None;
    };
    let last_query = r
        .when
        .iter()
        .filter_map(|c| match c {
            Condition::Position { to, .. } => Some(*to),
            _ => None,
        })
        .min()?;
    let first_target = positions.iter().min()?;
    (shape.causal && *first_target > last_query).then(|| {
        format!(
            "targets position(s) from {first_target} on, after every query it fires at (at most \
             {last_query}): a decoder's query sees no later key, so it would point nowhere"
        )
    })
}

fn ranges(scope: &Scope) -> String {
    match scope {
        Scope::All => "all".into(),
        Scope::Ranges(r) => r
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}..{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::rules::parse_rules;

    #[test]
    fn rules_outside_the_models_layers_heads_or_positions_are_errors_at_the_rule() {
        let shape = ModelShape {
            layers: 2,
            heads: 4,
            positions: 64,
            causal: true,
        };
        let ok = "rule a \"\" when position 0..3 target positions 0 layers 0..1 heads 1 bias 1 end";
        assert!(check_shape(&parse_rules(ok).unwrap(), shape).is_ok());
        let some_past =
            "rule a \"\" when position 0..3 target positions 0, 5000 layers 0..1 heads 1 bias 1 end";
        let e = check_shape(&parse_rules(some_past).unwrap(), shape).unwrap_err();
        assert!(e.to_string().contains("position(s) 5000 past"), "{e}");
        // Each error is at the clause that says it (line:column), the rule's id otherwise.
        let rule = |name: &str, when: &str, target: &str, scope: &str| {
            format!("rule {name} \"\"\n  when {when}\n  target {target}\n  {scope}\n  bias 1\nend")
        };
        for (text, want, at) in [
            // Partly past the model: cut without a word, it read as acting on more than it does.
            (
                rule("a", "position 0", "positions 0", "layers 0..9"),
                "write `layers all`",
                "4:3",
            ),
            (
                rule("b", "position 0", "positions 0", "layers 5..9"),
                "layers 5..9",
                "4:3",
            ),
            (
                rule("c", "position 0", "positions 0", "heads 4..7"),
                "heads 4..7",
                "4:3",
            ),
            (
                rule("d", "position 1000..2000", "positions 0", "heads 1"),
                "never fire",
                "2:3",
            ),
            (
                rule("e", "position 0", "positions 70", "heads 1"),
                "point nowhere",
                "3:3",
            ),
            (
                rule("g", "position 5", "positions 10", "heads 1"),
                "no later key",
                "3:3",
            ),
        ] {
            let e = check_shape(&parse_rules(&text).unwrap(), shape).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want) && msg.contains(at), "{text}: {msg}");
        }
        // A rule from JSON has no clause positions: the error falls back to the id's (0:0).
        let json = serde_json::to_string(
            &parse_rules(&rule("f", "position 0", "positions 0", "layers 7")).unwrap(),
        )
        .unwrap();
        let from_json: RuleSet = serde_json::from_str(&json).unwrap();
        let e = check_shape(&from_json, shape).unwrap_err();
        assert!(e.to_string().contains("layers 7"), "{e}");
    }
}
