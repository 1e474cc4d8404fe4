//! Whether a result still describes what the studio shows: each derived result keeps the
//! [`MeasuredOn`] the worker sent with it, and the panels ask here before presenting it as
//! current. A result measured on another model, block map, text or dial is hidden or marked
//! "not measured on this …", never shown as current.

use super::StudioState;
use crate::engine::protocol::{
    blocks_key, rules_key, Depends, MeasuredOn, RuleReport, ThresholdEstimate,
};

impl StudioState {
    /// What a result computed now would be measured on (`None` before a model has arrived).
    pub fn measured_now(&self) -> Option<MeasuredOn> {
        let s = self.summary.as_ref()?;
        Some(MeasuredOn {
            model: s.model_id.clone(),
            blocks: blocks_key(&s.blocks, &s.block_sizes),
            text: self.text.clone(),
            dial: self.dial.clone(),
            preview: false,
        })
    }

    /// Why a result measured on `on` is not current ("not measured on this model", …), or
    /// `None` when it is. A result with no record, or no model now, is not current.
    pub fn stale(&self, on: Option<&MeasuredOn>, depends: Depends) -> Option<String> {
        let Some(now) = self.measured_now() else {
            return Some("not measured on this model".into());
        };
        let Some(on) = on else {
            return Some("not measured on this model".into());
        };
        on.differs(&now, depends)
            .map(|what| format!("not measured on this {what}"))
    }

    /// Why the rule reports are not current, or `None` when they are (or there are none).
    pub fn stale_reports(&self) -> Option<String> {
        if self.rules.reports.is_empty() {
            return None;
        }
        self.stale(self.rules.reports_on.as_ref(), Depends::Dial)
    }

    /// Why the pass/fail over a test set is not current, or `None` when it is (or there is
    /// none): it depends on the model, its blocks, the dial, the rules in force and the test
    /// set, not on the text box.
    pub fn stale_test_audit(&self) -> Option<String> {
        let audit = self.rules.test_audit.as_ref()?;
        if audit.set != self.rules.test_set {
            return Some("not measured on this test set".into());
        }
        if audit.rules != rules_key(&self.rules.applied, &self.rules.off) {
            return Some("not measured under these rules".into());
        }
        self.stale(Some(&audit.on), Depends::DialNotText)
    }

    /// The rule reports when they were measured on what is shown now; empty otherwise.
    pub fn current_reports(&self) -> &[RuleReport] {
        if self.stale_reports().is_some() {
            return &[];
        }
        &self.rules.reports
    }

    /// λ* when it was estimated on the current model, blocks and text.
    pub fn current_threshold(&self) -> Option<&ThresholdEstimate> {
        let (est, on) = self.threshold.as_ref().zip(self.threshold_on.as_ref())?;
        self.stale(Some(on), Depends::Text).is_none().then_some(est)
    }

    /// Why the theory curve is not current, or `None` when it is (or there is none).
    pub fn stale_theory(&self) -> Option<String> {
        self.theory.as_ref()?;
        self.stale(self.theory_on.as_ref(), Depends::Text)
    }

    /// Why the heatmaps' capture is not of the current model, blocks and text (it stays on
    /// screen, marked, until the new one arrives), or `None` when it is. The dial is left
    /// out: a capture at the previous dial is replaced within a frame while the slider moves.
    pub fn stale_capture(&self) -> Option<String> {
        self.capture.as_ref()?;
        self.stale(self.capture_on.as_ref(), Depends::Text)
    }

    /// Why the comparison is not of the current model, blocks and text, or `None` when it is
    /// (or there is none).
    pub fn stale_compare(&self) -> Option<String> {
        self.compare.views.as_ref()?;
        self.stale(self.compare.views_on.as_ref(), Depends::Text)
    }

    /// The held-out metrics of the last run when they were measured on the current model.
    pub fn current_eval(&self) -> Option<&crate::engine::protocol::EvalReport> {
        let (r, on) = self.last_eval.as_ref()?;
        self.stale(Some(on), Depends::Model).is_none().then_some(r)
    }

    /// A new model has arrived: forget every result measured on the previous one at once.
    pub(super) fn forget_model_results(&mut self) {
        self.threshold = None;
        self.threshold_on = None;
        self.theory = None;
        self.theory_on = None;
        self.theory_pending = false;
        self.last_eval = None;
        self.rules.reports.clear();
        self.rules.firings.clear();
        self.rules.reports_on = None;
        self.compare.views = None;
        self.compare.views_on = None;
        self.compare.pending = false;
        self.generate.last = None;
        self.generate.pending = false;
        self.live.clear();
    }
}
