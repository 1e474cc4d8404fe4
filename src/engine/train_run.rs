//! The step loop of a training run: steps, recruitment rounds, periodic checkpoints, the
//! held-out curve with its overfitting warning (and `keep_best`), and the final evaluation.

use anyhow::{bail, Context, Result};
use candle_core::Device;

use crate::engine::best::BestState;
use crate::engine::held_out::{
    default_every, detect_overfit, open_queries_note, passes, push_thinned, HeldOutPoint, Overfit,
    PairedGain, CURVE_WINDOWS, MIN_CONFIRM_TOKENS, OVERFIT_RATIO,
};
use crate::engine::train_job::{setup, Outcome, Session, TrainJob};
use crate::model::dial::DialSetting;
use crate::train::eval::token_losses;
use crate::train::recruit::RecruitEvent;
use crate::train::trainer::StepStats;

/// What a run reports besides its steps.
#[derive(Clone, Debug)]
pub enum RunEvent {
    /// A recruitment decision.
    Recruit(RecruitEvent),
    /// A point of the held-out curve.
    HeldOut(HeldOutPoint),
    /// The held-out perplexity rose well above its best (said once a run), in words.
    Overfit(String),
    /// `keep_best` put back the weights of an earlier step: that step, and the held-out
    /// perplexity of the curve there and at the last step.
    KeptBest {
        /// The step whose weights were kept.
        step: usize,
        /// The held-out perplexity of the weights kept (on the curve's windows).
        perplexity: f64,
        /// The curve's held-out perplexity at the last step.
        last: f64,
        /// Blocks recruited after that step, dropped with the weights.
        dropped: Vec<String>,
        /// Blocks merged or removed after that step, back with the weights.
        back: Vec<String>,
        /// Kept by `keep_best_on_overfit` (overfitting, or `measured`), not on request:
        /// then the blocks stay the last step's, and `dropped` and `back` are empty.
        on_overfit: bool,
        /// With `on_overfit`: the blocks recruited after that step, which keep their anchor
        /// keys of the last step.
        later: Vec<String>,
        /// With `on_overfit`, when the curve did not end overfitting: how much better those
        /// weights code the held-out tokens the curve never read than the last step's (the
        /// reason they were kept).
        measured: Option<PairedGain>,
    },
}

/// Run a job to the end. `on_step` sees each step and returns `false` to stop early.
/// On a non-finite loss the run stops with an error naming the step; checkpoints already
/// written are left as they were.
pub fn run(
    job: &TrainJob,
    device: &Device,
    on_step: impl FnMut(&StepStats) -> bool,
) -> Result<Outcome> {
    run_with_events(job, device, on_step, |_| {})
}

/// [`run`], also reporting each recruitment event as it is decided.
pub fn run_with_recruitment(
    job: &TrainJob,
    device: &Device,
    on_step: impl FnMut(&StepStats) -> bool,
    mut on_event: impl FnMut(&RecruitEvent),
) -> Result<Outcome> {
    run_with_events(job, device, on_step, |e| {
        if let RunEvent::Recruit(r) = e {
            on_event(r)
        }
    })
}

/// The held-out curve as a run builds it, and the best weights when the job keeps them.
struct Tracker {
    every: usize,
    /// `step / every` at the last point: a recruitment round's second look moves the step on
    /// by several, past a multiple of `every`, so a point is due when the step passes one.
    bucket: usize,
    warned: bool,
    /// The state at the curve's best point, with `keep_best` or `keep_best_on_overfit`.
    best: Option<BestState>,
}

/// Models up to this many parameters keep a copy of their best state for
/// `keep_best_on_overfit` (weights and optimizer moments: 12 bytes a parameter, 240 MB here);
/// a larger one (a pretrained model's) only warns, as without it.
const KEEP_ON_OVERFIT_MAX_PARAMS: usize = 20_000_000;

impl Tracker {
    fn new(job: &TrainJob) -> Self {
        let every = job
            .eval_every
            .unwrap_or_else(|| default_every(job.train.steps));
        Self {
            every,
            bucket: usize::MAX,
            warned: false,
            best: None,
        }
    }

    /// Measure the curve at the session's step when it is due (or `force`), and report it.
    fn measure(
        &mut self,
        session: &mut Session,
        force: bool,
        on_event: &mut impl FnMut(&RunEvent),
    ) -> Result<()> {
        let step = session.trainer.step;
        let done = session.held_out.last().is_some_and(|p| p.step >= step);
        if self.every == 0 || done {
            return Ok(());
        }
        let bucket = step / self.every;
        if self.bucket == usize::MAX {
            // The first call: a resumed run's curve goes on from the step it was at.
            self.bucket = session.held_out.last().map_or(0, |p| p.step / self.every);
        }
        if !force && bucket <= self.bucket {
            return Ok(());
        }
        self.bucket = bucket;
        let e = session.evaluate_windows(&DialSetting::default(), CURVE_WINDOWS)?;
        let point = HeldOutPoint {
            step,
            ce_nats: e.ce_nats,
            tokens: e.tokens,
        };
        push_thinned(&mut session.held_out, point);
        on_event(&RunEvent::HeldOut(point));
        if session.job.keep_best || keeps_on_overfit(session) {
            keep_if_better(&mut self.best, session, point)?;
        }
        if let (false, Some(o)) = (self.warned, detect_overfit(&session.held_out)) {
            self.warned = true;
            let kept = self.best.as_ref().map(|b| b.point.step);
            on_event(&RunEvent::Overfit(overfit_message(session, &o, kept)));
        }
        Ok(())
    }

    /// Put back the best weights when the last point of the curve is worse than them: with
    /// `keep_best` the whole state there (blocks and recruiter too); a run that ends overfitting,
    /// or whose best weights code the held-out windows past the curve's measurably better than
    /// the last step's ([`PairedGain::confirmed`]), the weights there under the blocks it ended
    /// with (`keep_best_on_overfit`).
    fn keep_best(self, session: &mut Session, on_event: &mut impl FnMut(&RunEvent)) -> Result<()> {
        let (Some(best), Some(last)) = (self.best, session.held_out.last().copied()) else {
            return Ok(());
        };
        if best.point.step == last.step || last.ce_nats <= best.point.ce_nats {
            return Ok(());
        }
        if session.job.keep_best {
            let (dropped, back) = best.restore(&mut session.trainer, &mut session.recruiter)?;
            on_event(&RunEvent::KeptBest {
                step: best.point.step,
                perplexity: best.point.perplexity(),
                last: last.perplexity(),
                dropped,
                back,
                on_overfit: false,
                later: Vec::new(),
                measured: None,
            });
            return Ok(());
        }
        // When the curve ends overfitting (its best clearly better than the last point, by the
        // warning's own margin), or when the best point's weights code the held-out text the
        // curve never read better than the last step's, by more than the noise (a constant
        // learning rate leaves the last step's weights a few percent off their best either way).
        let overfit = last.ce_nats > best.point.ce_nats + OVERFIT_RATIO.ln()
            && detect_overfit(&session.held_out).is_some();
        let unread = CURVE_WINDOWS..session.job.eval_windows.max(CURVE_WINDOWS);
        let last_losses = if overfit {
            Vec::new()
        } else {
            held_out_losses(session, unread.clone())?
        };
        if !overfit && last_losses.len() < MIN_CONFIRM_TOKENS {
            return Ok(());
        }
        let (now, end) = (session.trainer.snapshot()?, session.trainer.step);
        let later = best.graft(&mut session.trainer)?;
        // The blocks found after the best point change which anchor key a query sees: the
        // weights are measured again under the final blocks, and kept only when better.
        let e = session.evaluate_windows(&DialSetting::default(), CURVE_WINDOWS)?;
        // (A NaN measure is no better.)
        let mut kept = !e.ce_nats.is_nan() && e.ce_nats < last.ce_nats;
        let mut measured = None;
        if kept && !overfit {
            let gain = PairedGain::of(&last_losses, &held_out_losses(session, unread)?);
            kept = gain.is_some_and(|g| g.confirmed());
            measured = gain;
        }
        if !kept {
            session.trainer.restore(&now)?;
            return Ok(());
        }
        if let Some(rec) = session.recruiter.as_mut() {
            rec.rebase(end, best.point.step);
        }
        on_event(&RunEvent::KeptBest {
            step: best.point.step,
            perplexity: e.ce_nats.exp(),
            last: last.perplexity(),
            dropped: Vec::new(),
            back: Vec::new(),
            on_overfit: true,
            later,
            measured,
        });
        Ok(())
    }
}

/// Each next token's cross-entropy (nats) over the held-out windows `windows` at λ_inf = 0,
/// under the session's weights and blocks now.
fn held_out_losses(session: &Session, windows: std::ops::Range<usize>) -> Result<Vec<f32>> {
    Ok(token_losses(
        &session.trainer.model,
        &session.trainer.blocks,
        &session.val,
        &DialSetting::default(),
        session.job.train.seq_len,
        windows,
    )?)
}

/// Put the run's state at `point` in `slot` when `point` is better than what it holds.
fn keep_if_better(
    slot: &mut Option<BestState>,
    session: &Session,
    point: HeldOutPoint,
) -> Result<()> {
    if BestState::improves(slot.as_ref(), &point) {
        let rec = session.recruiter.as_ref();
        *slot = Some(BestState::of(&session.trainer, rec, point)?);
    }
    Ok(())
}

/// Whether a run keeps its best weights for an end overfitting, under its final block map
/// (`keep_best_on_overfit`, a model small enough to copy, and not `keep_best`, which keeps its own).
fn keeps_on_overfit(session: &Session) -> bool {
    let job = &session.job;
    job.keep_best_on_overfit
        && !job.keep_best
        && (session.trainer.model.params.tensors().values())
            .map(candle_core::Tensor::elem_count)
            .sum::<usize>()
            <= KEEP_ON_OVERFIT_MAX_PARAMS
}

/// The warning and what to do about it; `kept`: the step of the curve's best point, whose
/// weights `keep_best_on_overfit` will end the run on unless the curve recovers.
fn overfit_message(session: &Session, o: &Overfit, kept: Option<usize>) -> String {
    let n = session.trainer.train.ids.len();
    let c = &session.trainer.config;
    let mut what = o.message(passes(o.now.step, c.batch_size, c.seq_len, n), Some(n));
    let blocks = session.trainer.blocks.num_blocks();
    if let Some(note) =
        (session.recruiter.as_ref()).and_then(|r| open_queries_note(&r.config, blocks))
    {
        what.push_str("; ");
        what.push_str(note);
    }
    if session.job.keep_best {
        format!("{what}. --keep-best will end on the weights of this run's best point of the curve")
    } else if let (Some(step), true) = (kept, keeps_on_overfit(session)) {
        format!(
            "{what}. Unless the curve comes back, the run will end on the weights of step {step}, \
             its best, under the blocks it ends with (--keep-last to end on the last step's; \
             fewer --steps or more text to spend the steps on learning)"
        )
    } else {
        format!(
            "{what}. Fewer --steps, more text, or --keep-best (to end on the weights of step {})",
            o.best.step
        )
    }
}

/// [`run`], reporting recruitment decisions, the held-out curve and overfitting as they happen.
pub fn run_with_events(
    job: &TrainJob,
    device: &Device,
    mut on_step: impl FnMut(&StepStats) -> bool,
    mut on_event: impl FnMut(&RunEvent),
) -> Result<Outcome> {
    if job.keep_best && job.eval_every == Some(0) {
        bail!(
            "--keep-best goes back to the best point of the held-out curve, and --eval-every 0 \
             turns the curve off; leave --eval-every out (about twenty points a run) or give it \
             a number of steps"
        );
    }
    let mut session = setup(job, device)?;
    let mut tracker = Tracker::new(job);
    let mut stopped = false;
    // Checkpoints are written when the step passes a multiple of `checkpoint_every`: a
    // recruitment round may move it on by a second look's steps, past the multiple itself.
    let every = job.checkpoint_every.max(1);
    let mut saved = session.trainer.step / every;
    while session.trainer.step < job.train.steps {
        let stats = session.trainer.train_step()?;
        let keep_going = on_step(&stats);
        session.history.push(stats);
        for e in session.maybe_recruit()? {
            on_event(&RunEvent::Recruit(e));
        }
        tracker.measure(&mut session, false, &mut on_event)?;
        if let Some(dir) = &job.out {
            let s = session.trainer.step;
            if job.checkpoint_every > 0 && s / every > saved && s < job.train.steps {
                session.trainer.check_updated_weights()?;
                session
                    .save(dir, None)
                    .with_context(|| format!("the checkpoint after step {s}"))?;
                saved = s / every;
            }
        }
        if !keep_going {
            stopped = true;
            break;
        }
    }
    if job.train.steps == 0
        && session.trainer.step == 0
        && job.resume.is_none()
        && job.init_weights.is_none()
    {
        bail!("--steps 0: nothing to train");
    }
    tracker.measure(&mut session, true, &mut on_event)?;
    tracker.keep_best(&mut session, &mut on_event)?;
    let step = session.trainer.step;
    let eval = session
        .evaluate(&DialSetting::default())
        .with_context(|| format!("the held-out evaluation after step {step}"))?;
    if let Some(dir) = &job.out {
        session
            .save(dir, Some(eval.clone()))
            .with_context(|| format!("the checkpoint after step {step}"))?;
    }
    Ok(Outcome {
        session,
        eval,
        stopped,
    })
}

#[cfg(test)]
#[path = "train_run_tests.rs"]
mod tests;
