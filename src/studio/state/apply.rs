//! How each worker event changes what the studio shows.

use super::{short, CurvePoint, StudioState, WorkerState, SAMPLE_TEXT};
use crate::engine::protocol::{
    Command, Depends, Event, Generation, LivePoint, ModelSummary, Progress, RecruitView,
    RuleErrors, RulesInForce,
};

/// How the status bar's error about rules that do not fit the current model begins.
const NOT_IN_FORCE: &str = "the rules do not resolve on this model";

impl StudioState {
    /// Apply one worker event.
    pub fn apply(&mut self, ev: Event) {
        self.clear_failure_on_success(&ev);
        match ev {
            Event::Progress(p) => self.on_progress(p),
            Event::Loaded(s) => self.on_loaded(*s),
            Event::Recruitment(r) => self.on_recruitment(*r),
            Event::Status(text) => self.info = Some(text),
            Event::Generated(g) => self.on_generated(*g),
            Event::BlocksChanged(names, sizes) => {
                if let Some(s) = &mut self.summary {
                    s.blocks = names;
                    s.block_sizes = sizes;
                    s.anchors = None;
                    s.anchor_coherence.clear();
                }
            }
            Event::Snapshot(cap, tokens, on) => {
                let since = self.dial_sent.map(|t0| t0.elapsed().as_secs_f64() * 1e3);
                if on.preview {
                    self.dial_preview_ms = since.or(self.dial_preview_ms);
                } else if since.is_some() {
                    self.dial_latency_ms = since;
                    self.dial_sent = None;
                }
                self.capture = Some((*cap, tokens));
                self.capture_on = Some(on);
                self.capture_generation += 1;
            }
            Event::Finished(r, on) => {
                self.last_eval = Some((*r, on));
                self.worker = WorkerState::Idle;
                self.info = Some("training finished".into());
            }
            Event::Paused => self.worker = WorkerState::Paused,
            Event::Theory(curve, on) => {
                self.theory = Some((self.capture_generation, curve));
                self.theory_on = Some(on);
                self.theory_pending = false;
            }
            Event::Saved(p, hash) => {
                self.info = Some(format!("saved {}", p.display()));
                self.checkpoint = Some((p, hash));
            }
            Event::Live(p) => self.on_live(*p),
            Event::Threshold(t, on) => {
                self.threshold = Some(t);
                self.threshold_on = Some(on);
            }
            Event::RulesApplied(r) => self.on_rules_applied(*r),
            Event::RulesRejected(e) => self.on_rules_rejected(e),
            Event::RuleReport(r) => {
                let (reports, firings, on) = *r;
                self.rules.reports = reports;
                self.rules.firings = firings;
                self.rules.reports_on = Some(on);
            }
            Event::RulesRefit(refit) => self.on_rules_refit(refit),
            Event::Compare(views, on) => {
                let stale = self.stale(Some(&on), Depends::Model).is_some();
                self.compare.pending = false;
                if stale {
                    return;
                }
                self.compare.views =
                    Some((self.capture_generation, self.compare.sides.clone(), *views));
                self.compare.views_on = Some(on);
                self.compare.pending = false;
                self.compare.generation += 1;
            }
            Event::Pool(Ok(pool)) => self.pool_opened = Some(*pool),
            Event::Pool(Err(e)) => self.error = Some(e),
            Event::TestSetAudit(result) => {
                self.rules.test_pending = false;
                match result {
                    Ok(audit) => self.rules.test_audit = Some(*audit),
                    Err(e) => self.error = Some(e),
                }
            }
            Event::Failed(msg) => self.on_failed(msg),
        }
    }

    /// A result that succeeded takes the worker's last failure off the status bar.
    fn clear_failure_on_success(&mut self, ev: &Event) {
        let succeeded = matches!(
            ev,
            Event::Loaded(_)
                | Event::Snapshot(..)
                | Event::RulesApplied(_)
                | Event::Saved(..)
                | Event::Generated(_)
                | Event::Compare(..)
                | Event::Theory(..)
                | Event::TestSetAudit(Ok(_))
        );
        if succeeded {
            if let Some(f) = self.worker_failure.take() {
                if self.error.as_ref() == Some(&f) {
                    self.error = None;
                }
            }
        }
    }

    fn on_progress(&mut self, p: Progress) {
        // A step at or before the last one drawn: the run went back (Back to step N).
        if self.curve.back().is_some_and(|c| c.step >= p.stats.step) {
            self.curve.retain(|c| c.step < p.stats.step);
        }
        self.curve.push_back(CurvePoint {
            step: p.stats.step,
            loss_nats: p.stats.loss_nats,
            penalty: p.stats.penalty,
        });
        while self.curve.len() > 10_000 {
            self.curve.pop_front();
        }
        if self.worker != WorkerState::Paused {
            self.worker = WorkerState::Training;
        }
        self.progress = Some(p);
    }

    fn on_loaded(&mut self, s: ModelSummary) {
        self.info = Some(format!("loaded {}", s.source));
        // A model trained on the synthetic records cannot read Shakespeare: show one of its own
        // sentences instead of the default one.
        // So does a model opened after one whose sample the studio put there; a text the user
        // typed stays.
        if let Some(t) = &s.sample_text {
            if self.text == SAMPLE_TEXT || self.auto_text.as_deref() == Some(self.text.as_str()) {
                self.text = t.clone();
                self.auto_text = Some(t.clone());
                self.send(Command::Capture(t.clone()));
            }
        }
        self.checkpoint = s.checkpoint.clone();
        self.check_expected_checkpoint();
        self.summary = Some(s);
        self.recruitment = None;
        self.forget_model_results();
        self.curve.clear();
        self.progress = None;
        self.worker = WorkerState::Idle;
    }

    fn on_recruitment(&mut self, r: RecruitView) {
        let last = r
            .rounds
            .last()
            .filter(|_| self.worker == WorkerState::Training);
        if let Some(last) = last {
            self.info = Some(format!(
                "recruitment round at step {} done in {:.1} s: {} blocks",
                last.step,
                last.round_ms / 1e3,
                last.blocks
            ));
        }
        self.recruitment = Some(r);
    }

    fn on_generated(&mut self, g: Generation) {
        self.generate.pending = false;
        if self.stale(Some(&g.measured_on), Depends::Model).is_some() {
            // Generated on a model that is no longer loaded.
            return;
        }
        self.info = Some(format!(
            "generated {} tokens ({:.0} ms per token)",
            g.steps.len(),
            g.ms_per_token
        ));
        self.generate.last = Some(g);
        self.generate.pending = false;
    }

    fn on_live(&mut self, p: LivePoint) {
        if self.live.last().is_some_and(|l| l.step >= p.step) {
            self.live.retain(|l| l.step < p.step);
        }
        self.live.push(p);
        if self.live.len() > 5_000 {
            // Keep the curve's shape: drop every other point.
            let mut k = 0;
            self.live.retain(|_| {
                k += 1;
                k % 2 == 1
            });
        }
    }

    fn on_rules_applied(&mut self, in_force: RulesInForce) {
        let resolved = in_force.rules;
        let (model, corpus) = self.hashes();
        let before = std::mem::take(&mut self.rules.resolved);
        let n0 = self.rules.log.entries.len();
        self.rules
            .log
            .record_change(&before, &resolved, &model, &corpus);
        self.sign_log_from(n0);
        let n = resolved.len();
        let on = resolved.iter().filter(|r| r.enabled).count();
        self.rules.resolved = resolved;
        self.rules.json = Some(in_force.json);
        self.rules.errors = None;
        self.rules.not_in_force = None;
        if let Some((text, off)) = self.rules.pending.take() {
            self.rules.applied = text.clone();
            self.rules.off = off.clone();
            let state = (text, off);
            if self.rules.history.get(self.rules.cursor) != Some(&state) {
                self.rules.history.truncate(self.rules.cursor + 1);
                self.rules.history.push(state);
                self.rules.cursor = self.rules.history.len() - 1;
            }
        }
        if n == 0 {
            self.rules.reports.clear();
            self.rules.firings.clear();
        }
        self.info = Some(format!("{n} rules in force ({on} on)"));
    }

    /// The rules in force were checked against a new model (or block map): their views on
    /// it, or why they are not in force on it.
    fn on_rules_refit(&mut self, refit: Result<Box<RulesInForce>, RuleErrors>) {
        // Errors of an earlier apply or model are about something no longer shown.
        self.rules.errors = None;
        match refit {
            Ok(in_force) => {
                self.rules.resolved = in_force.rules;
                self.rules.json = Some(in_force.json);
                self.rules.not_in_force = None;
                // The status bar's word that they did not resolve on the previous model no
                // longer holds.
                if self
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains(NOT_IN_FORCE))
                {
                    self.error = None;
                }
            }
            Err(e) => {
                self.rules.resolved.clear();
                self.rules.reports.clear();
                self.rules.firings.clear();
                self.rules.reports_on = None;
                self.error = Some(format!(
                    "{NOT_IN_FORCE} ({} error(s), first: {}); no rule is in force on it",
                    e.total(),
                    e.errors.first().map(|x| x.to_string()).unwrap_or_default()
                ));
                self.rules.not_in_force = Some(e);
            }
        }
    }

    fn on_rules_rejected(&mut self, e: RuleErrors) {
        self.rules.pending = None;
        self.error = Some(format!(
            "the rules were not applied ({} error(s), first: {}); the previous rules stay in \
             force",
            e.total(),
            e.errors.first().map(|x| x.to_string()).unwrap_or_default()
        ));
        self.rules.errors = Some(e);
    }

    fn on_failed(&mut self, msg: String) {
        self.generate.pending = false;
        if msg.contains("crashed") {
            self.worker = WorkerState::Crashed;
        } else if self.worker == WorkerState::Training {
            self.worker = WorkerState::Idle;
        }
        self.worker_failure = Some(msg.clone());
        self.error = Some(msg);
    }

    /// After a session restore: warn when the checkpoint that arrived is not the one the
    /// session was saved with.
    fn check_expected_checkpoint(&mut self) {
        let Some((path, want)) = self.expected_checkpoint.take() else {
            return;
        };
        match &self.checkpoint {
            Some((p, got)) if p == &path && got != &want => {
                self.error = Some(format!(
                    "{} has changed since the session was saved (SHA-256 {} now, {} in the session); \
                     the numbers may differ from the ones you saw",
                    path.display(),
                    short(got),
                    short(&want)
                ));
            }
            Some((p, _)) if p == &path => {
                self.info = Some(format!(
                    "session restored; {} matches its hash",
                    path.display()
                ));
            }
            _ => self.expected_checkpoint = Some((path, want)),
        }
    }
}
