//! The held-out curve of a training run, and what it says about overfitting.
//!
//! A run measures its held-out text every few steps (a bounded number of windows, at
//! λ_inf = 0). When the held-out perplexity has risen well above its best and stayed there,
//! the model is learning the training text by heart rather than the language: on a corpus of
//! 200 short documents, 800 steps of 16 × 64 tokens are about 180 passes over it, and the
//! held-out perplexity climbs from about 50 to the thousands. The run says so once, with the
//! step of the best and what to do; `--keep-best` keeps the weights of that step.

use serde::{Deserialize, Serialize};

use crate::train::recruit::RecruitConfig;

/// How far above its best the held-out perplexity must be, at each of the last
/// [`OVERFIT_POINTS`] measurements, to call the run overfitting (1.10: 10% above).
pub const OVERFIT_RATIO: f64 = 1.10;
/// How many measurements in a row must be that far above the best.
pub const OVERFIT_POINTS: usize = 2;
/// Held-out windows measured at each point of the curve (the final evaluation reads more).
pub const CURVE_WINDOWS: usize = 16;

/// One point of the held-out curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldOutPoint {
    /// Steps done when it was measured.
    pub step: usize,
    /// Mean cross-entropy, nats per token.
    pub ce_nats: f64,
    /// Tokens scored.
    pub tokens: usize,
}

impl HeldOutPoint {
    /// Perplexity, e^ce.
    pub fn perplexity(&self) -> f64 {
        self.ce_nats.exp()
    }
}

/// A run whose held-out perplexity rose well above its best and stayed there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Overfit {
    /// The best point so far.
    pub best: HeldOutPoint,
    /// The latest point.
    pub now: HeldOutPoint,
}

impl Overfit {
    /// What happened, in words. `passes` is how many times the run has read its training
    /// text (steps × rows × tokens per row ÷ training tokens), when known.
    pub fn message(&self, passes: Option<f64>, training_tokens: Option<usize>) -> String {
        let read = match (passes, training_tokens) {
            (Some(p), Some(n)) => format!(
                " ({} steps have read its {n} training tokens about {p:.0} times)",
                self.now.step
            ),
            _ => String::new(),
        };
        format!(
            "held-out perplexity rose from {:.1} at step {} to {:.1} at step {} ({:.1}×): the model \
             is learning the training text by heart, not the language{read}",
            self.best.perplexity(),
            self.best.step,
            self.now.perplexity(),
            self.now.step,
            self.now.perplexity() / self.best.perplexity(),
        )
    }
}

/// Why a run under recruitment may learn its text by heart where the same run without it does
/// not, when its unassigned queries have no positional windows (`blocks`: the block map's
/// count, the unassigned one included): they are open, and nothing pulls them towards windows
/// as the penalty of the run without recruitment does (README, Recruitment: on a 10,491-token
/// corpus 144 against 64.5 without `--recruit`, and 68.3 with `--recruit-start-windows 8`,
/// which found no block there). `None` while the start's windows are on, or recruitment off.
pub fn open_queries_note(cfg: &RecruitConfig, blocks: usize) -> Option<&'static str> {
    if !cfg.enabled || cfg.start_windows > 0 && (blocks <= 1 || cfg.windows_throughout) {
        return None;
    }
    Some(
        "under --recruit the unassigned queries are open, and nothing pulls them towards \
         positional windows as the penalty of the run without --recruit does \
         (--recruit-start-windows 8 keeps that penalty until the first block, with \
         --recruit-windows-throughout for the whole run, at the risk of finding fewer blocks)",
    )
}

/// Whether `points` (in step order) end overfitting: the last [`OVERFIT_POINTS`] points all
/// come after the best one and are each more than [`OVERFIT_RATIO`] times its perplexity.
/// Non-finite points are ignored (a diverged run is reported as such elsewhere).
pub fn detect_overfit(points: &[HeldOutPoint]) -> Option<Overfit> {
    let finite: Vec<&HeldOutPoint> = points.iter().filter(|p| p.ce_nats.is_finite()).collect();
    let best = **finite
        .iter()
        .min_by(|a, b| a.ce_nats.total_cmp(&b.ce_nats))?;
    let tail = finite.get(finite.len().checked_sub(OVERFIT_POINTS)?..)?;
    let margin = OVERFIT_RATIO.ln();
    let above = tail
        .iter()
        .all(|p| p.step > best.step && p.ce_nats > best.ce_nats + margin);
    let now = **tail.last()?;
    above.then_some(Overfit { best, now })
}

/// Whether the weights of a checkpoint are past the best of the held-out curve its training
/// recorded (`config.json`'s `training`): the overfitting message when the curve up to its
/// step ends well above its best, else `None` (no curve, or weights at or near their best, as
/// `--keep-best` leaves them).
pub fn recorded_overfit(training: &serde_json::Value) -> Option<String> {
    let points: Vec<HeldOutPoint> =
        serde_json::from_value(training.get("held_out")?.clone()).ok()?;
    let step = training.get("steps_done")?.as_u64()?;
    let upto: Vec<HeldOutPoint> = points
        .into_iter()
        .filter(|p| p.step as u64 <= step)
        .collect();
    let o = detect_overfit(&upto)?;
    Some(format!(
        "its training overfit: {}; these are the weights of step {step}",
        o.message(None, None)
    ))
}

/// Most points a curve keeps (a checkpoint's `config.json` holds it).
pub const MAX_POINTS: usize = 1000;

/// Add `point` to `points` (a point at or before the last step replaces the points from it
/// on, as after a rollback); past [`MAX_POINTS`] every other point is dropped, the first and
/// the last kept, so the curve keeps its shape over a long run.
pub fn push_thinned(points: &mut Vec<HeldOutPoint>, point: HeldOutPoint) {
    points.retain(|p| p.step < point.step);
    points.push(point);
    if points.len() > MAX_POINTS {
        let last = points.len() - 1;
        let mut i = 0;
        points.retain(|_| {
            i += 1;
            (i - 1) % 2 == 0 || i - 1 == last
        });
    }
}

/// Fewest held-out tokens past the curve's windows that a run's ending may be confirmed on
/// ([`PairedGain`]); a held-out text with fewer (a corpus of a few hundred short documents,
/// whose curve reads all of it) ends on its best point only when it ends overfitting.
pub const MIN_CONFIRM_TOKENS: usize = 512;
/// Standard errors by which the best point's weights must code those tokens better than the
/// last step's for the run to end on them (one-sided, about 2.3% by chance).
pub const CONFIRM_Z: f64 = 2.0;

/// How much better one model codes the same tokens than another, token by token: the mean of
/// the differences (nats per token) and its standard error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairedGain {
    /// Tokens compared.
    pub tokens: usize,
    /// Mean of (worse − better), nats per token: positive when the second codes them better.
    pub mean_nats: f64,
    /// Standard error of that mean.
    pub se_nats: f64,
}

impl PairedGain {
    /// The gain of `better` over `worse` (each token's cross-entropy in nats, the same tokens
    /// in the same order); `None` for fewer than two tokens or lists of different lengths.
    pub fn of(worse: &[f32], better: &[f32]) -> Option<Self> {
        let n = worse.len();
        if n < 2 || better.len() != n {
            return None;
        }
        let d: Vec<f64> = worse
            .iter()
            .zip(better)
            .map(|(&w, &b)| f64::from(w) - f64::from(b))
            .collect();
        let mean = d.iter().sum::<f64>() / n as f64;
        let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        Some(Self {
            tokens: n,
            mean_nats: mean,
            se_nats: (var / n as f64).sqrt(),
        })
    }

    /// Whether the gain is more than [`CONFIRM_Z`] standard errors above 0, on at least
    /// [`MIN_CONFIRM_TOKENS`] tokens.
    pub fn confirmed(&self) -> bool {
        self.tokens >= MIN_CONFIRM_TOKENS
            && self.mean_nats.is_finite()
            && self.mean_nats > CONFIRM_Z * self.se_nats
    }
}

/// The default spacing of the curve for a run of `steps`: about twenty points, at least ten
/// steps apart.
pub fn default_every(steps: usize) -> usize {
    (steps / 20).max(10)
}

/// How many passes over `training_tokens` a run of `steps` × `rows` × `seq` tokens is.
pub fn passes(steps: usize, rows: usize, seq: usize, training_tokens: usize) -> Option<f64> {
    (training_tokens > 0).then(|| steps as f64 * rows as f64 * seq as f64 / training_tokens as f64)
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_open_queries_note_is_there_only_without_windows_for_them() {
        let mut c = RecruitConfig::default();
        assert!(open_queries_note(&c, 1).is_some());
        assert!(open_queries_note(&c, 4).is_some());
        c.start_windows = 8;
        assert_eq!(open_queries_note(&c, 1), None);
        // Past the first block the start's windows are gone, unless kept throughout.
        assert!(open_queries_note(&c, 4).is_some());
        c.windows_throughout = true;
        assert_eq!(open_queries_note(&c, 4), None);
        // Recruitment switched off (the studio's switch): nothing to say.
        let off = RecruitConfig {
            enabled: false,
            ..RecruitConfig::default()
        };
        assert_eq!(open_queries_note(&off, 4), None);
    }

    fn p(step: usize, ppl: f64) -> HeldOutPoint {
        HeldOutPoint {
            step,
            ce_nats: ppl.ln(),
            tokens: 1024,
        }
    }

    #[test]
    fn a_falling_curve_is_not_overfitting() {
        let c = [p(0, 100.0), p(50, 60.0), p(100, 50.0), p(150, 49.0)];
        assert_eq!(detect_overfit(&c), None);
    }

    #[test]
    fn one_bad_point_is_noise_two_in_a_row_are_overfitting() {
        let mut c = vec![p(0, 100.0), p(50, 52.0), p(100, 60.0)];
        assert_eq!(detect_overfit(&c), None);
        c.push(p(150, 58.0));
        let o = detect_overfit(&c).expect("two points 10% above the best");
        assert_eq!((o.best.step, o.now.step), (50, 150));
        // Back near the best: no longer overfitting.
        c.push(p(200, 53.0));
        assert_eq!(detect_overfit(&c), None);
    }

    #[test]
    fn a_rise_within_ten_percent_is_not_overfitting() {
        let c = [p(0, 100.0), p(50, 50.0), p(100, 54.0), p(150, 54.9)];
        assert_eq!(detect_overfit(&c), None);
    }

    #[test]
    fn non_finite_points_are_ignored_and_the_message_names_both_steps() {
        let c = [
            p(0, 100.0),
            p(100, 52.6),
            HeldOutPoint {
                step: 150,
                ce_nats: f64::NAN,
                tokens: 0,
            },
            p(200, 60.0),
            p(400, 95.8),
        ];
        let o = detect_overfit(&c).expect("overfitting");
        let m = o.message(passes(400, 16, 64, 8100), Some(8100));
        assert!(m.contains("52.6 at step 100"), "{m}");
        assert!(m.contains("95.8 at step 400"), "{m}");
        assert!(m.contains("about 51 times"), "{m}");
    }

    #[test]
    fn a_long_curve_is_thinned_and_keeps_its_ends() {
        let mut c = Vec::new();
        for s in 0..5000 {
            push_thinned(&mut c, p(s, 100.0 - s as f64 / 100.0));
        }
        assert!(
            c.len() <= MAX_POINTS && c.len() > MAX_POINTS / 2,
            "{}",
            c.len()
        );
        assert_eq!(c.first().map(|p| p.step), Some(0));
        assert_eq!(c.last().map(|p| p.step), Some(4999));
        assert!(c.windows(2).all(|w| w[0].step < w[1].step));
        // A point at an earlier step (a run restored to it) replaces what came after.
        push_thinned(&mut c, p(10, 99.0));
        assert_eq!(c.last().map(|p| p.step), Some(10));
    }

    #[test]
    fn a_checkpoint_past_its_best_point_is_said_and_one_kept_at_its_best_is_not() {
        let curve = [p(100, 51.3), p(200, 60.0), p(300, 90.0)];
        let training = |steps: u64| serde_json::json!({ "steps_done": steps, "held_out": serde_json::to_value(curve).ok() });
        let said = recorded_overfit(&training(300)).expect("past its best");
        assert!(
            said.contains("51.3 at step 100") && said.contains("step 300"),
            "{said}"
        );
        // --keep-best went back to step 100: the points after it are not these weights'.
        assert_eq!(recorded_overfit(&training(100)), None);
        assert_eq!(
            recorded_overfit(&serde_json::json!({ "steps_done": 3 })),
            None
        );
    }

    #[test]
    fn a_paired_gain_is_confirmed_only_beyond_its_noise_and_on_enough_tokens() {
        // The same tokens, the better model 0.05 nats lower on each, with noise of ±0.3.
        let worse: Vec<f32> = (0..1024).map(|i| 3.0 + (i as f32 * 0.37).sin()).collect();
        let noise = |i: usize| 0.3 * (i as f32 * 1.91).cos();
        let better: Vec<f32> = (0..1024).map(|i| worse[i] - 0.05 + noise(i)).collect();
        let g = PairedGain::of(&worse, &better).expect("two lists of one length");
        assert!((g.mean_nats - 0.05).abs() < 0.01, "{g:?}");
        assert!(g.se_nats > 0.005 && g.se_nats < 0.02, "{g:?}");
        assert!(g.confirmed(), "{g:?}");
        // The same difference on 300 tokens: too few to end a run on.
        let short = PairedGain::of(&worse[..300], &better[..300]).expect("same length");
        assert!(!short.confirmed(), "{short:?}");
        // No difference beyond the noise.
        let same: Vec<f32> = (0..1024).map(|i| worse[i] + noise(i)).collect();
        let g0 = PairedGain::of(&worse, &same).expect("same length");
        assert!(!g0.confirmed(), "{g0:?}");
        // Worse, not better.
        assert!(!PairedGain::of(&better, &worse)
            .expect("same length")
            .confirmed());
        assert_eq!(PairedGain::of(&worse, &better[..10]), None);
        assert_eq!(PairedGain::of(&[1.0], &[0.5]), None);
    }

    #[test]
    fn the_default_spacing_gives_about_twenty_points() {
        assert_eq!(default_every(800), 40);
        assert_eq!(default_every(50), 10);
        assert_eq!(passes(10, 16, 64, 0), None);
    }
}
