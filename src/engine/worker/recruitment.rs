//! Recruitment jobs: a round after a training step when one is due, what it changed, and
//! switching recruitment on or off in the current run.

use super::sink::Sink;
use super::Worker;
use crate::engine::protocol::{Event, RecruitView};
use crate::engine::train_job::Session;
use crate::model::blocks::BlockKind;
use crate::train::recruit::{RecruitConfig, Recruiter};

/// What a recruitment round after a step has to report.
#[derive(Default)]
pub(super) struct RoundOutcome {
    /// The round failed: why.
    failed: Option<String>,
    /// The recruiter after a round that decided something.
    view: Option<RecruitView>,
    /// The block map changed: block names and vocabulary tokens per block.
    blocks: Option<(Vec<String>, Vec<usize>)>,
}

impl RoundOutcome {
    /// Run a round on `session` if one is due (saying so first: a round trains its probes
    /// for a few seconds, and the worker goes quiet meanwhile).
    pub(super) fn run(session: &mut Session, sink: &Sink) -> Self {
        let step = session.trainer.step;
        if !session.recruiter.as_ref().is_some_and(|r| r.due(step)) {
            return Self::default();
        }
        // The whole map, not its names: an extension adds tokens to a block and keeps its name.
        let before = session.trainer.blocks.clone();
        sink.emit(Event::Status(format!(
            "recruitment round at step {step}: probing candidate blocks…"
        )));
        let recruited = session.maybe_recruit().map_err(|e| format!("{e:#}"));
        let blocks = &session.trainer.blocks;
        let changed = *blocks != before;
        let decided = matches!(&recruited, Ok(e) if !e.is_empty());
        Self {
            failed: recruited.err(),
            view: session
                .recruiter
                .as_ref()
                .filter(|_| decided)
                .map(RecruitView::from),
            blocks: changed.then(|| (blocks.names.clone(), blocks.block_sizes())),
        }
    }
}

impl Worker {
    /// Report a round: its failure, the recruiter, and a changed block map (the rules are
    /// then checked again and the text captured).
    pub(super) fn publish_round(&mut self, round: RoundOutcome) {
        if let Some(e) = round.failed {
            self.sink.fail(e);
        }
        if let Some(r) = round.view {
            self.sink.emit(Event::Recruitment(Box::new(r)));
        }
        if let Some((names, sizes)) = round.blocks {
            self.sink.emit(Event::BlocksChanged(names, sizes));
            self.refit_rules();
            self.recapture();
        }
    }

    /// Switch recruitment on or off in the current run.
    pub(super) fn set_recruitment(&mut self, on: bool) {
        let Some(session) = self.slot.session_mut() else {
            self.sink
                .fail("recruitment runs while training: set up a run first");
            return;
        };
        if on && session.recruiter.is_none() {
            if session.trainer.blocks.kind != BlockKind::Semantic {
                self.sink
                    .fail("recruitment needs semantic blocks, not positional windows");
                return;
            }
            start_recruiter(session);
        }
        if let Some(rec) = session.recruiter.as_mut() {
            rec.config.enabled = on;
            if on && rec.stopped.is_some() {
                // Switching it back on after it stopped starts a fresh patience count.
                rec.resume(session.trainer.step);
            }
            let view = RecruitView::from(&*rec);
            self.sink.emit(Event::Recruitment(Box::new(view)));
        }
    }
}

/// Start a recruiter with default settings in a run set up without one: its first round is
/// due now, and unassigned tokens stay open (they keep all context).
fn start_recruiter(session: &mut Session) {
    let mut rec = Recruiter::new(RecruitConfig {
        warmup: session.trainer.step,
        ..RecruitConfig::default()
    });
    session.trainer.config.start_windows = rec.config.start_windows_width();
    session.trainer.config.windows_throughout = rec.config.windows_throughout;
    rec.next_due = Some(session.trainer.step);
    session.trainer.blocks.open_unassigned = true;
    session.trainer.blocks.isolate_unassigned = false;
    session.recruiter = Some(rec);
}
