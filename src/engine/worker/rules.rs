//! Rule jobs: parse a rule file and resolve it against the current model (the worker is the
//! only place rule text is parsed), put it in force, and check it again when the model or its
//! blocks change.

use super::Worker;
use crate::engine::anchors::recorded_anchor_tokens;
use crate::engine::protocol::Event;
use crate::engine::views::rules_in_force;
use crate::rules::ast::RuleSet;
use crate::rules::check::{resolve, ResolvedRule};
use crate::rules::parse::{parse_rules, RuleError, RuleErrors};

impl Worker {
    /// Anchor tokens per block of the current model, when it has them (a checkpoint's).
    fn anchor_tokens(&self) -> Vec<(String, Vec<String>)> {
        self.slot
            .checkpoint()
            .map(|l| recorded_anchor_tokens(&l.meta.training))
            .unwrap_or_default()
    }

    /// Parse and resolve a rule file against the current model.
    fn resolve_rules(
        &self,
        text: &str,
        off: &[String],
    ) -> Result<(RuleSet, Vec<ResolvedRule>), RuleErrors> {
        let set = parse_rules(text)?;
        let anchors = self.anchor_tokens();
        let Some((model, blocks, tok)) = self.slot.current() else {
            return Err(RuleErrors {
                errors: vec![RuleError {
                    pos: Default::default(),
                    message: "no model is loaded to check the rules against".into(),
                }],
                omitted: 0,
            });
        };
        crate::rules::check_shape(&set, crate::engine::jobs::rules::shape_of(&model.dims()))?;
        let mut rules = resolve(&set, blocks, tok, &anchors)?;
        for r in &mut rules {
            if off.contains(&r.id) {
                r.enabled = false;
            }
        }
        Ok((set, rules))
    }

    /// Put a rule file in force (a run in progress trains towards it), or reject it whole.
    pub(super) fn set_rules(&mut self, text: String, off: Vec<String>) {
        match self.resolve_rules(&text, &off) {
            Ok((set, rules)) => {
                // A run in progress trains towards the rules in force (weight μ_rule).
                if let Some(s) = self.slot.session_mut() {
                    s.trainer.rules = rules.clone();
                }
                if let Some(t) = self.slot.tune_mut() {
                    t.run.tuner.rules = rules.clone();
                }
                let in_force = rules_in_force(&set, &rules);
                self.rules.resolved = rules;
                self.rules.text = text;
                self.rules.off = off;
                self.sink.emit(Event::RulesApplied(Box::new(in_force)));
                self.recapture();
            }
            Err(e) => self.sink.emit(Event::RulesRejected(e)),
        }
    }

    /// After the model or its blocks changed: the rules in force, checked against the new
    /// model. When they resolve, the UI gets their views on it; when they do not, no rule is
    /// in force on this model (a run in progress stops training towards them) and the UI gets
    /// the errors. The rule text is kept, so a later model they fit puts them back in force.
    pub(super) fn refit_rules(&mut self) {
        if self.rules.text.trim().is_empty() {
            self.rules.resolved.clear();
            return;
        }
        let refit = match self.resolve_rules(&self.rules.text, &self.rules.off) {
            Ok((set, rules)) => {
                let in_force = rules_in_force(&set, &rules);
                self.rules.resolved = rules;
                Ok(Box::new(in_force))
            }
            Err(e) => {
                self.rules.resolved.clear();
                Err(e)
            }
        };
        let resolved = self.rules.resolved.clone();
        if let Some(t) = self.slot.tune_mut() {
            t.run.tuner.rules = resolved.clone();
        }
        if let Some(s) = self.slot.session_mut() {
            if s.job.rules.is_none() {
                s.trainer.rules = resolved;
            }
        }
        self.sink.emit(Event::RulesRefit(refit));
    }
}
