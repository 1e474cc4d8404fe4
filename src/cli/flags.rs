//! Numeric flags, checked where they are parsed: every float flag is finite (never NaN or ±∞)
//! and inside a stated range, and every count that sizes an allocation has a stated limit, so
//! a typo or a hostile value is refused with the flag named before any work starts.
//!
//! Clap names the flag in its error (`invalid value 'nan' for '--tau <TAU>': ...`), so the
//! parsers here say only what is wrong with the value and what range is allowed.

use std::ops::RangeInclusive;

// The dial's ranges are the model's: a saved dial is held to the same ones.
pub use crate::engine::{MAX_GAMMA, MAX_TAU, MIN_TAU};
/// Largest loss weight (η, μ_anc, μ_rule): beyond it the loss overflows f32 in a few steps.
pub const MAX_WEIGHT: f64 = 1e6;
/// Largest learning rate.
pub const MAX_LR: f64 = 1e6;
/// Largest margin in bits (δ of recruitment and of specialists).
pub const MAX_BITS: f64 = 1e15;
/// Most k-means clusters (`eval --clusters`, `blocks --kmeans`): the engine's one limit.
pub use crate::engine::protocol::MAX_CLUSTERS;
/// Most specialists in a pool (`specialists --max`): each is a copy of the base model.
pub use crate::engine::specialists::MAX_SPECIALISTS;
/// Most evaluation windows (`eval --windows`).
pub const MAX_WINDOWS: usize = 100_000;

/// A finite float in `range`, with `lo_open` excluding the lower end; `what` names the quantity
/// in the message ("τ").
pub fn finite_in(
    s: &str,
    range: RangeInclusive<f64>,
    lo_open: bool,
    what: &str,
) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{what}: '{s}' is not a number"))?;
    if !v.is_finite() {
        return Err(format!("{what} must be a finite number, got {v}"));
    }
    let (lo, hi) = (*range.start(), *range.end());
    let below = if lo_open { v <= lo } else { v < lo };
    if below || v > hi {
        let open = if lo_open { "(" } else { "[" };
        return Err(format!(
            "{what} must lie in {open}{lo}, {hi}], got {}",
            show(v)
        ));
    }
    // −0 is 0: it printed as `-0.00` in tables and `-0` in a sweep's CSV.
    Ok(v + 0.0)
}

/// A number as a reader would write it: `1e-300`, not three hundred digits.
fn show(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e6).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// λ in [0, 1].
pub fn unit(s: &str) -> Result<f64, String> {
    finite_in(s, 0.0..=1.0, false, "λ")
}

/// A fraction in [0, 1].
pub fn fraction(s: &str) -> Result<f64, String> {
    finite_in(s, 0.0..=1.0, false, "the fraction")
}

/// The temperature τ in [`MIN_TAU`], [`MAX_TAU`].
pub fn tau(s: &str) -> Result<f64, String> {
    finite_in(s, MIN_TAU..=MAX_TAU, false, "τ")
}

/// A loss weight (η, μ) in [0, [`MAX_WEIGHT`]].
pub fn weight(s: &str) -> Result<f64, String> {
    finite_in(s, 0.0..=MAX_WEIGHT, false, "the weight")
}

/// A learning rate in (0, [`MAX_LR`]].
pub fn learning_rate(s: &str) -> Result<f64, String> {
    let lr = finite_in(s, 0.0..=MAX_LR, true, "the learning rate")?;
    // Training runs in f32: 1e-300 became 0 there, and the run trained nothing, unsaid.
    if (lr as f32) < f32::MIN_POSITIVE {
        return Err(format!(
            "the learning rate {s} is 0 in the 32-bit floats training uses (the smallest is \
             about {:e})",
            f32::MIN_POSITIVE
        ));
    }
    Ok(lr)
}

/// A margin in bits in [0, [`MAX_BITS`]].
pub fn bits(s: &str) -> Result<f64, String> {
    finite_in(s, 0.0..=MAX_BITS, false, "the margin in bits")
}

/// The exponent γ of a `power:GAMMA` schedule, in [0, [`MAX_GAMMA`]].
pub fn gamma(s: &str) -> Result<f64, String> {
    finite_in(s, 0.0..=MAX_GAMMA, false, "γ")
}

/// A count of at least 1 and at most `max`; `flag` names it in the message.
pub fn count_in(flag: &str, n: usize, max: usize) -> anyhow::Result<usize> {
    if n == 0 {
        anyhow::bail!("{flag} must be at least 1, got 0");
    }
    if n > max {
        anyhow::bail!("{flag} {n} is more than the limit of {max}");
    }
    Ok(n)
}

/// `--lr-schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LrScheduleArg {
    /// The same rate at every step.
    Constant,
    /// 5% linear warm-up, then cosine decay to a tenth.
    Cosine,
}

impl LrScheduleArg {
    /// The trainer's schedule.
    pub fn schedule(self) -> crate::engine::LrSchedule {
        match self {
            Self::Constant => crate::engine::LrSchedule::default(),
            Self::Cosine => crate::engine::LrSchedule::WARMUP_COSINE,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn minus_zero_is_read_as_zero() {
        // It printed as `-0.00` in tables and `-0` in a sweep's CSV.
        assert!(unit("-0").unwrap().is_sign_positive());
        assert!(weight("-0.0").unwrap().is_sign_positive());
    }

    #[test]
    fn non_finite_and_out_of_range_values_are_refused_with_the_range() {
        for bad in ["nan", "NaN", "inf", "-inf", "1e400"] {
            let e = tau(bad).unwrap_err();
            assert!(e.contains("finite"), "{bad}: {e}");
        }
        let e = tau("1e-300").unwrap_err();
        assert!(e.contains("0.001") && e.contains("1e-300"), "{e}");
        assert!(tau("0").is_err() && tau("-1").is_err() && tau("abc").is_err());
        assert_eq!(tau("0.5"), Ok(0.5));
        assert!(learning_rate("0").unwrap_err().contains("(0, 1000000]"));
        assert_eq!(weight("0"), Ok(0.0));
        assert!(weight("nan").is_err() && gamma("-1").is_err() && unit("1.5").is_err());
        assert!(count_in("--windows", 0, 10).is_err());
        let e = count_in("--kmeans", 11, 10).unwrap_err().to_string();
        assert!(e.contains("--kmeans 11") && e.contains("10"), "{e}");
    }
}

/// The locality penalty on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PenaltyArg {
    /// SPEC's group lasso, w_k = 1.
    Group,
    /// The group lasso with w_k = √n_k.
    GroupSqrt,
    /// The off-block mass ε itself (fine-tuning only).
    Mass,
    /// The mass outside the query's own block and itself: attention on the sequence start
    /// counts as off-block unless the first token is in the block (fine-tuning only).
    MassOwnBlock,
    /// The mass not on other keys of the query's own block: itself and the sequence start
    /// count as off-block too (rows with no earlier key of their block are left out;
    /// fine-tuning only).
    MassBlockKeys,
}

impl PenaltyArg {
    /// The group weights of our own training (the mass is refused, saying why).
    pub fn weighting(self) -> anyhow::Result<crate::engine::protocol::GroupWeights> {
        match self {
            Self::Group => Ok(crate::engine::protocol::GroupWeights::Unit),
            Self::GroupSqrt => Ok(crate::engine::protocol::GroupWeights::SqrtSize),
            Self::Mass | Self::MassOwnBlock | Self::MassBlockKeys => anyhow::bail!("--penalty mass, mass-own-block and mass-block-keys apply to fine-tuning (--from); our own models train with group or group-sqrt"),
        }
    }

    /// The locality term of a fine-tune.
    pub fn locality(self) -> crate::engine::protocol::LocalityPenalty {
        use crate::engine::protocol::{GroupWeights, LocalityPenalty};
        match self {
            Self::Group => LocalityPenalty::Group(GroupWeights::Unit),
            Self::GroupSqrt => LocalityPenalty::Group(GroupWeights::SqrtSize),
            Self::Mass => LocalityPenalty::Mass,
            Self::MassOwnBlock => LocalityPenalty::MassOwnBlock,
            Self::MassBlockKeys => LocalityPenalty::MassBlockKeys,
        }
    }
}
