//! Inspection jobs on the current text: the capture (with rules when any are in force), the
//! penalty threshold λ*, the theory curve, a comparison of two configurations, and generation.

use std::path::PathBuf;

use super::slot::{Compared, ModelSlot};
use super::Worker;
use crate::data::tokenizer::Tokenizer;
use crate::engine::compare::capture_side;
use crate::engine::protocol::{
    CompareSide, CompareView, Event, MeasuredOn, IMPORTED_CAPTURE_LIMIT,
};
use crate::engine::theory::theory_curve;
use crate::engine::threshold::estimate_threshold;
use crate::model::backend::AttentionModel;
use crate::model::capture::capture_attention;
use crate::model::capture_stream::{capture_streamed, CapturePlan, STUDIO_GRID};
use crate::model::transformer::ModelError;
use crate::rules::inject::capture_with_rules;
use crate::train::trainer::TrainConfig;

impl Worker {
    /// How many tokens of the text a capture takes on `model`.
    pub(super) fn capture_limit(&self, model: &dyn AttentionModel) -> usize {
        let max = model.dims().max_len;
        if matches!(self.slot, ModelSlot::Imported(_) | ModelSlot::Tune(_)) {
            max.min(IMPORTED_CAPTURE_LIMIT)
        } else {
            max
        }
    }

    /// The current text's ids, truncated to `max_len` positions; an empty result is reported.
    fn text_ids(&self, tok: &dyn Tokenizer, max_len: usize) -> Option<Vec<u32>> {
        let mut ids = tok.encode(&self.text);
        ids.truncate(max_len);
        if ids.is_empty() {
            self.sink.fail(crate::engine::jobs::capture::no_tokens(
                "the text", &self.text, tok, None,
            ));
            return None;
        }
        Some(ids)
    }

    /// Capture the current text under the current dial (and rules), when there is a text.
    ///
    /// A text of up to [`STUDIO_GRID`] tokens is captured densely. A longer one (a pretrained
    /// model takes up to its context, SmolLM2's 8,192) is streamed: every head's summaries and
    /// a pooled grid per head, with the progress in the status bar and a cancel button. Rules
    /// are measured on the first [`IMPORTED_CAPTURE_LIMIT`] tokens of an imported model's text.
    pub(super) fn recapture(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let Some((model, blocks, tok)) = self.slot.current() else {
            return;
        };
        let Some(mut ids) = self.text_ids(tok, model.dims().max_len) else {
            return;
        };
        if !self.rules.resolved.is_empty() {
            let limit = self.capture_limit(model);
            if ids.len() > limit {
                self.sink.emit(Event::Status(format!(
                    "rules are measured on the first {limit} of the text's {} tokens",
                    ids.len()
                )));
                ids.truncate(limit);
            }
        }
        let tokens: Vec<String> = ids.iter().map(|&i| tok.token_str(i)).collect();
        // Whatever is captured now is exact, unless it is a preview.
        self.exact_pending = false;
        if self.rules.resolved.is_empty() {
            let preview = match &self.slot {
                ModelSlot::Imported(i) if self.preview_next && ids.len() <= STUDIO_GRID => {
                    i.model.preview()
                }
                _ => None,
            };
            // A preview that fails is left out: the exact capture below says what is wrong.
            if let Some(Ok(cap)) = preview.map(|p| capture_attention(&p, blocks, &ids, &self.dial))
            {
                let on = MeasuredOn {
                    preview: true,
                    ..self.measured_on()
                };
                self.sink.emit(Event::Snapshot(Box::new(cap), tokens, on));
                self.exact_pending = true;
                return;
            }
            let result = if ids.len() <= STUDIO_GRID {
                capture_attention(model, blocks, &ids, &self.dial)
            } else {
                let _cancellable = self.sink.cancellable();
                let (t, layers, sink) = (ids.len(), model.dims().layers, &self.sink);
                let mut progress = |done: usize| {
                    sink.job_progress(
                        format!("capturing {t} tokens: layer {done} of {layers}…"),
                        done as f32 / layers.max(1) as f32,
                    )
                };
                let plan = CapturePlan::studio();
                capture_streamed(model, blocks, &ids, &self.dial, &plan, &mut progress)
            };
            match result {
                Ok(cap) => {
                    let on = self.measured_on();
                    self.sink.emit(Event::Snapshot(Box::new(cap), tokens, on));
                }
                Err(ModelError::Cancelled) => self.sink.emit(Event::Status(
                    "capture cancelled: the views show the previous capture".into(),
                )),
                Err(e) => self.sink.fail(format!("capture failed: {e}")),
            }
            return;
        }
        match capture_with_rules(model, blocks, &ids, &self.dial, &self.rules.resolved) {
            Ok(rc) => {
                let on = self.measured_on();
                self.sink.emit(Event::RuleReport(Box::new((
                    rc.reports,
                    rc.firings,
                    on.clone(),
                ))));
                self.sink
                    .emit(Event::Snapshot(Box::new(rc.capture), tokens, on));
            }
            Err(e) => self.sink.fail(format!("capture with rules failed: {e}")),
        }
    }

    /// Estimate λ* on the current text with the penalty settings the model is (or was)
    /// trained under; a text too short to measure, or a model not of ours, sends nothing.
    pub(super) fn threshold(&mut self) {
        let config = match &self.slot {
            ModelSlot::Run(s) => s.job.train.clone(),
            ModelSlot::Checkpoint(l) => l
                .meta
                .training
                .get("config")
                .and_then(|c| serde_json::from_value::<TrainConfig>(c.clone()).ok())
                .unwrap_or_default(),
            ModelSlot::Imported(_) | ModelSlot::Tune(_) | ModelSlot::Empty => return,
        };
        let Some((model, blocks, tok)) = self.slot.current_own() else {
            return;
        };
        let mut ids = tok.encode(&self.text);
        ids.truncate(model.config.max_seq_len);
        if ids.len() < 2 {
            return;
        }
        match estimate_threshold(model, blocks, &ids, config.eta, config.weights) {
            Ok(est) => self.sink.emit(Event::Threshold(est, self.measured_on())),
            Err(e) => self.sink.fail(format!("λ* estimate failed: {e}")),
        }
    }

    /// Measure the current text against the derived bounds at each λ.
    pub(super) fn theory(&mut self, lambdas: &[f64]) {
        let Some((model, blocks, tok)) = self.slot.current() else {
            self.sink.fail("no model loaded");
            return;
        };
        let Some(ids) = self.text_ids(tok, self.capture_limit(model)) else {
            return;
        };
        match theory_curve(model, blocks, &ids, &self.dial, lambdas) {
            Ok(curve) => self.sink.emit(Event::Theory(curve, self.measured_on())),
            Err(e) => self.sink.fail(format!("theory curve failed: {e}")),
        }
    }

    /// Capture the current text under both sides of a comparison.
    pub(super) fn compare(&mut self, sides: &[CompareSide; 2]) {
        let errors = self.open_compared(sides);
        let views = sides.clone().map(|side| self.compare_side(&side, &errors));
        self.sink
            .emit(Event::Compare(Box::new(views), self.measured_on()));
    }

    /// Keep the compared models loaded while they are compared, drop the others; returns
    /// the ones that could not be opened, with why.
    fn open_compared(&mut self, sides: &[CompareSide; 2]) -> Vec<(PathBuf, String)> {
        let wanted: Vec<PathBuf> = sides.iter().filter_map(|s| s.checkpoint.clone()).collect();
        self.compare_models.retain(|c| wanted.contains(&c.path));
        let mut errors: Vec<(PathBuf, String)> = Vec::new();
        for p in &wanted {
            if self.compare_models.iter().any(|c| &c.path == p)
                || errors.iter().any(|(q, _)| q == p)
            {
                continue;
            }
            match Compared::open(p) {
                Ok(c) => self.compare_models.push(c),
                Err(e) => {
                    errors.push((p.clone(), format!("could not open {}: {e:#}", p.display())))
                }
            }
        }
        errors
    }

    /// One side's capture: the current model or a compared one.
    fn compare_side(
        &self,
        side: &CompareSide,
        errors: &[(PathBuf, String)],
    ) -> Result<CompareView, String> {
        let found = match &side.checkpoint {
            None => self
                .slot
                .current()
                .map(|(m, b, t)| (m, b, t, self.capture_limit(m))),
            Some(p) => self
                .compare_models
                .iter()
                .find(|c| &c.path == p)
                .map(Compared::parts),
        };
        let error = side
            .checkpoint
            .as_ref()
            .and_then(|p| errors.iter().find(|(q, _)| q == p))
            .map(|(_, e)| e.clone());
        match (found, error) {
            (Some((model, blocks, tok, limit)), _) => {
                capture_side(model, blocks, tok, &self.text, side, limit)
            }
            (None, Some(e)) => Err(e),
            (None, None) => Err("no model loaded".to_string()),
        }
    }

    /// Generate `n` tokens (1 to 64) after the current text under the current dial and rules.
    pub(super) fn generate(&mut self, n: usize) {
        let Some((model, blocks, tok)) = self.slot.current() else {
            self.sink.fail("no model loaded");
            return;
        };
        let Some(ids) = self.text_ids(tok, self.capture_limit(model)) else {
            return;
        };
        let out = crate::engine::generate::generate(
            model,
            blocks,
            tok,
            &ids,
            &self.dial,
            &self.rules.resolved,
            n.clamp(1, 64),
            10,
        );
        match out {
            Ok(mut g) => {
                g.measured_on = self.measured_on();
                self.sink.emit(Event::Generated(Box::new(g)));
            }
            Err(e) => self.sink.fail(format!("generation failed: {e:#}")),
        }
    }
}
