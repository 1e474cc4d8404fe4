//! Training jobs: set up a run, take one step (with a recruitment round when one is due),
//! report progress, measure the live held-out metrics, and finish with an evaluation.

use std::time::Instant;

use super::models::own_summary;
use super::recruitment::RoundOutcome;
use super::slot::ModelSlot;
use super::{RunState, Worker};
use crate::engine::best::{block_changes, grafted_blocks, BestState};
use crate::engine::corpus::CorpusSource;
use crate::engine::held_out::{push_thinned, HeldOutPoint};
use crate::engine::protocol::{Event, LivePoint, Progress, RecruitView};
use crate::engine::theory::theory_curve;
use crate::engine::train_job::{setup, Session, TrainJob};
use crate::model::dial::DialSetting;
use crate::train::trainer::StepStats;

impl Worker {
    /// Set up a run (without starting it) and make it the current model.
    pub(super) fn new_run(&mut self, job: TrainJob) {
        let session = match setup(&job, &self.device) {
            Ok(s) => s,
            Err(e) => {
                self.sink.fail(format!("{e:#}"));
                return;
            }
        };
        let mut summary = run_summary(&session, job.train.lambda_train);
        self.runs += 1;
        summary.model_id = self.new_model_id(None, format!("run {}", self.runs));
        let recruiter = session.recruiter.as_ref().map(RecruitView::from);
        self.slot = ModelSlot::Run(Box::new(session));
        self.state = RunState::Idle;
        self.sink.emit(Event::Loaded(Box::new(summary)));
        if let Some(r) = recruiter {
            self.sink.emit(Event::Recruitment(Box::new(r)));
        }
        self.refit_rules();
        self.recapture();
        self.threshold();
    }

    /// Take one training step, run a recruitment round when one is due, and report.
    pub(super) fn step(&mut self) {
        if self.slot.tune_mut().is_some() {
            self.tune_step();
            return;
        }
        let Some(session) = self.slot.session_mut() else {
            self.state = RunState::Idle;
            return;
        };
        let total = session.job.train.steps;
        if session.trainer.step >= total {
            self.state = RunState::Idle;
            self.finish();
            return;
        }
        let result = session.trainer.train_step();
        if let Ok(stats) = &result {
            session.history.push(stats.clone());
        }
        let round = match &result {
            Ok(_) => RoundOutcome::run(session, &self.sink),
            Err(_) => RoundOutcome::default(),
        };
        let finished = session.trainer.step >= total;
        self.publish_round(round);
        match result {
            Ok(stats) => self.stepped(stats, total, finished),
            Err(e) => {
                self.state = RunState::Idle;
                self.sink.fail(format!("{e}"));
            }
        }
    }

    /// After a good step: progress, then the end of the run or the live metrics.
    fn stepped(&mut self, stats: StepStats, total: usize, finished: bool) {
        self.report_step(stats, total);
        if finished {
            self.state = RunState::Idle;
            self.finish();
        } else {
            self.live(false);
        }
    }

    /// Progress of a step of a run of `total` steps (a training run's or a fine-tune's): speed
    /// since the run (re)started and the time left.
    pub(super) fn report_step(&mut self, stats: StepStats, total: usize) {
        let (t0, tok0) = self.run_started.unwrap_or((Instant::now(), 0));
        let done_tokens = tok0 + stats.tokens;
        self.run_started = Some((t0, done_tokens));
        let tps = done_tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        let remaining = total.saturating_sub(stats.step + 1) as f64;
        let eta_s = remaining * stats.tokens as f64 / tps.max(1e-9);
        self.sink.emit_progress(Event::Progress(Progress {
            stats,
            total_steps: total,
            tokens_per_s: tps,
            eta_s,
        }));
    }

    /// The end of a run: held-out metrics at λ_inf = 0, then the live metrics (or, with no
    /// run, a new capture).
    pub(super) fn finish(&mut self) {
        if self.slot.tune_mut().is_some() {
            self.finish_tune();
            return;
        }
        let report = self
            .slot
            .session()
            .map(|s| s.evaluate(&DialSetting::default()));
        match report {
            Some(Ok(r)) => {
                let on = self.measured_on();
                self.sink.emit(Event::Finished(Box::new(r), on));
            }
            Some(Err(e)) => self.sink.fail(format!("evaluation failed: {e:#}")),
            None => {}
        }
        if self.slot.session().is_some() {
            self.live(true);
        } else {
            self.recapture();
        }
    }

    /// Held-out metrics on a few windows, the current text against the bounds, and a new
    /// capture, at most about once a second while training runs.
    fn live(&mut self, force: bool) {
        if !force
            && self
                .last_live
                .is_some_and(|t| t.elapsed().as_secs_f64() < 1.0)
        {
            return;
        }
        self.last_live = Some(Instant::now());
        let Some(session) = self.slot.session_mut() else {
            return;
        };
        match live_point(session, &self.text, &self.dial) {
            Ok(p) => {
                // The run's held-out curve, kept in its checkpoint as the CLI keeps its own.
                let point = HeldOutPoint {
                    step: p.step,
                    ce_nats: p.eval.ce_nats,
                    tokens: p.eval.tokens,
                };
                push_thinned(&mut session.held_out, point);
                keep_if_best(session, point);
                self.sink.emit(Event::Live(Box::new(p)));
            }
            Err(e) => self.sink.fail(format!("live evaluation failed: {e:#}")),
        }
        self.recapture();
        self.threshold();
    }
}

/// The summary of a run just set up: its model, and its corpus's file and hash.
fn run_summary(session: &Session, lambda_train: f64) -> crate::engine::protocol::ModelSummary {
    let mut summary = own_summary(
        &session.trainer.model,
        &session.trainer.blocks,
        &session.corpus.source.label(),
        Some(lambda_train),
    );
    summary.corpus = Some((
        match &session.corpus.source {
            CorpusSource::File { path } => Some(path.clone()),
            CorpusSource::Synthetic { .. } | CorpusSource::Topics { .. } => None,
        },
        session.corpus.sha256.clone(),
    ));
    summary.warnings.clone_from(&session.corpus.warnings);
    summary
}

/// Held-out metrics at λ_inf = 0 on 8 windows, and `text` under `dial` against the bounds.
fn live_point(session: &Session, text: &str, dial: &DialSetting) -> anyhow::Result<LivePoint> {
    let eval = session.evaluate_windows(&DialSetting::default(), 8)?;
    let model = &session.trainer.model;
    let mut ids = session.corpus.tokenizer.encode(text);
    ids.truncate(model.config.max_seq_len);
    let theory = (!ids.is_empty())
        .then(|| {
            theory_curve(
                model,
                &session.trainer.blocks,
                &ids,
                dial,
                &[dial.params.lambda],
            )
            .ok()
            .and_then(|mut c| c.pop())
        })
        .flatten();
    Ok(LivePoint {
        step: session.trainer.step,
        eval,
        theory,
    })
}

/// Keep the run's state when `point` is the best of the curve so far (a snapshot that fails
/// is simply not kept).
fn keep_if_best(session: &mut Session, point: HeldOutPoint) {
    if BestState::improves(session.best.as_ref(), &point) {
        if let Ok(best) = BestState::of(&session.trainer, session.recruiter.as_ref(), point) {
            session.best = Some(best);
        }
    }
}

impl Worker {
    /// Put the run back on its state at its best held-out point and stop it there; blocks
    /// recruited after that point are dropped, and the recruitment log goes back with them.
    /// With `keep_blocks`, only the weights go back: the blocks, the log and every move found
    /// since stay (the recruiter's clock goes back with the weights).
    pub(super) fn back_to_best(&mut self, keep_blocks: bool) {
        let Some(session) = self.slot.session_mut() else {
            self.sink.fail("no training run is set up");
            return;
        };
        let Some(best) = session.best.take() else {
            self.sink.fail("no held-out point to go back to yet");
            return;
        };
        let step = best.point.step;
        // The whole map, not its names: an extension after that step kept its block's name.
        let blocks_before = session.trainer.blocks.clone();
        let end = session.trainer.step;
        let went_back = if keep_blocks {
            best.graft(&mut session.trainer).map(|later| {
                if let Some(rec) = session.recruiter.as_mut() {
                    rec.rebase(end, step);
                }
                format!("; under the blocks of now{}", grafted_blocks(&later))
            })
        } else {
            (best.restore(&mut session.trainer, &mut session.recruiter))
                .map(|(dropped, back)| block_changes(&dropped, &back))
        };
        let changes = match went_back {
            Ok(changes) => changes,
            Err(e) => {
                session.best = Some(best);
                self.sink
                    .fail(format!("could not go back to step {step}: {e:#}"));
                return;
            }
        };
        session.held_out.retain(|p| p.step <= step);
        session.history.retain(|s| s.step < step);
        let last = session.history.last().cloned();
        let total = session.job.train.steps;
        let perplexity = best.point.perplexity();
        session.best = Some(best);
        let blocks = &session.trainer.blocks;
        let blocks_changed =
            (*blocks != blocks_before).then(|| (blocks.names.clone(), blocks.block_sizes()));
        let recruiter = session.recruiter.as_ref().map(RecruitView::from);
        // The loss curve and the step shown go back too (on the progress channel, after the
        // progress of the steps dropped).
        // No speed: the run is not running (0 tokens/s is shown as no speed and no ETA).
        if let Some(stats) = last {
            self.sink.emit_progress(Event::Progress(Progress {
                stats,
                total_steps: total,
                tokens_per_s: 0.0,
                eta_s: 0.0,
            }));
        }
        if let Some(r) = recruiter {
            self.sink.emit(Event::Recruitment(Box::new(r)));
        }
        if let Some((names, sizes)) = blocks_changed {
            self.sink.emit(Event::BlocksChanged(names, sizes));
            self.refit_rules();
        }
        // The run stops there, and its held-out metrics are measured again as at the end of a
        // run: the ones shown were of the weights just dropped. What happened is said last, so
        // that it is what the status bar shows (not "training finished").
        self.state = RunState::Idle;
        self.finish();
        let what = if keep_blocks {
            "the weights of step"
        } else {
            "back to step"
        };
        self.sink.emit(Event::Status(format!(
            "{what} {step} (held-out perplexity {perplexity:.1} on the curve){changes}; Train goes \
             on from there"
        )));
    }
}
