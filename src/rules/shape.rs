//! Rules checked against the shape of the model they act on: a rule whose layers, heads or
//! positions the model does not have would act nowhere, and its measurements then read as a
//! rule that failed (fired on 8 rows, PF_mass 0.0000) when it in fact applied to nothing.

use crate::rules::ast::{Condition, RuleSet, Scope, Target};
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
}

/// Every rule of `set` that could act nowhere on a model of `shape`, as errors at the rule.
pub fn check_shape(set: &RuleSet, shape: ModelShape) -> Result<(), RuleErrors> {
    let mut errors = ErrorSink::default();
    for r in &set.rules {
        let mut say = |message: String| {
            errors.push(RuleError {
                pos: r.id.pos,
                message: format!("rule {} {message}", r.id.text),
            });
        };
        for (what, scope, n) in [
            ("layers", &r.layers, shape.layers),
            ("heads", &r.heads, shape.heads),
        ] {
            let past = matches!(scope, Scope::Ranges(r) if r.iter().any(|&(_, b)| b >= n));
            if scope.indices(n).is_empty() {
                say(format!(
                    "acts on {what} {}, but the model has {n} {what} (0..{}): it would act nowhere",
                    ranges(scope),
                    n.saturating_sub(1)
                ));
            } else if past {
                // Cut without a word, the rule would read as acting on more than it does.
                say(format!(
                    "acts on {what} {}, but the model has {n} {what} (0..{}): write `{what} all` \
                     or ranges within 0..{}",
                    ranges(scope),
                    n.saturating_sub(1),
                    n.saturating_sub(1)
                ));
            }
        }
        for c in &r.when {
            if let Condition::Position { from, to } = c {
                if *from >= shape.positions {
                    say(format!(
                        "fires at positions {from}..{to}, but the model reads {} positions \
                         (0..{}): it would never fire",
                        shape.positions,
                        shape.positions.saturating_sub(1)
                    ));
                }
            }
        }
        if let Target::Positions { positions } = &r.target {
            let past: Vec<String> = positions
                .iter()
                .filter(|&&p| p >= shape.positions)
                .map(|p| p.to_string())
                .collect();
            let last = shape.positions.saturating_sub(1);
            if !positions.is_empty() && past.len() == positions.len() {
                say(format!(
                    "targets positions past the model's {} (0..{last}): it would point nowhere",
                    shape.positions
                ));
            } else if !past.is_empty() {
                // Dropped without a word, the rule would read as pointing where it does not.
                say(format!(
                    "targets position(s) {} past the model's {} (0..{last}): write positions \
                     within 0..{last}",
                    past.join(", "),
                    shape.positions
                ));
            }
        }
    }
    match errors.finish() {
        None => Ok(()),
        Some(e) => Err(e),
    }
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
        };
        let ok = "rule a \"\" when position 0..3 target positions 0 layers 0..1 heads 1 bias 1 end";
        assert!(check_shape(&parse_rules(ok).unwrap(), shape).is_ok());
        let some_past =
            "rule a \"\" when position 0..3 target positions 0, 5000 layers 0..1 heads 1 bias 1 end";
        let e = check_shape(&parse_rules(some_past).unwrap(), shape).unwrap_err();
        assert!(e.to_string().contains("position(s) 5000 past"), "{e}");
        for (text, want) in [
            // Partly past the model: cut without a word, it read as acting on more than it does.
            (
                "rule a \"\" when position 0 target positions 0 layers 0..9 bias 1 end",
                "write `layers all`",
            ),
            (
                "rule b \"\" when position 0 target positions 0 layers 5..9 bias 1 end",
                "layers 5..9",
            ),
            (
                "rule c \"\" when position 0 target positions 0 heads 4..7 bias 1 end",
                "heads 4..7",
            ),
            (
                "rule d \"\" when position 1000..2000 target positions 0 bias 1 end",
                "never fire",
            ),
            (
                "rule e \"\" when position 0 target positions 70 bias 1 end",
                "point nowhere",
            ),
        ] {
            let e = check_shape(&parse_rules(text).unwrap(), shape).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want) && msg.contains("1:6"), "{text}: {msg}");
        }
    }
}
