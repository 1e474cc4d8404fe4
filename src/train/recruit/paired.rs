//! Paired comparisons of two readings of the held-out buffer, position by position: which
//! positions a map change acts on ([`changed_views`]), the difference over them, and the
//! standard error of a difference read at once.

use candle_core::Tensor;

use crate::model::blocks::BlockMap;
use crate::train::recruit::maps::changed_views;
use crate::train::recruit::recruiter::Positions;
use crate::train::recruit::round::RoundCtx;
use crate::train::trainer::{TrainError, Trainer};

impl RoundCtx<'_> {
    /// A merge or prune judged at once (0 steps).
    pub fn at_once(
        &self,
        trainer: &mut Trainer,
        change: (BlockMap, Vec<Tensor>),
    ) -> Result<f64, TrainError> {
        self.trial(trainer, Some(change), 0)
    }

    /// The standard error (bits, scaled like the data bits) of the difference between the
    /// round's measurement and the last trial's, read at once: over the buffer positions
    /// whose view the trial's map changes, paired position by position (same model, same
    /// text, only the view differs), √(N/(N−1)·Σ(d − d̄)²). 0 when there is nothing to pair.
    pub fn at_once_noise(&self) -> f64 {
        let Some(trial) = self.last_positions() else {
            return 0.0;
        };
        let base = (
            &self.base_blocks,
            &self.stats.query_ids[..],
            &self.stats.loss_bits[..],
        );
        let d = changed_differences(base, &trial, &self.inheriting);
        let n = d.len() as f64;
        if d.len() < 2 {
            return 0.0;
        }
        let mean = d.iter().sum::<f64>() / n;
        let ss: f64 = d.iter().map(|x| (x - mean).powi(2)).sum();
        self.scale * (ss * n / (n - 1.0)).sqrt()
    }

    /// The per-position bits of the last trial measured, with its queries and map.
    pub fn last_positions(&self) -> Option<Positions> {
        self.measured.borrow().last().map(|m| Positions {
            blocks: m.blocks.clone(),
            query_ids: m.stats.query_ids.clone(),
            loss_bits: m.stats.loss_bits.clone(),
        })
    }
}

/// Σ (after − control) loss bits over the buffer positions whose query sees different keys
/// under the candidate's map than under the control's (unscaled), and how many there are.
pub(super) fn changed_difference(
    control: &Positions,
    after: &Positions,
    inheriting: &[bool],
) -> (f64, usize) {
    let control = (
        &control.blocks,
        &control.query_ids[..],
        &control.loss_bits[..],
    );
    let d = changed_differences(control, after, inheriting);
    (d.iter().sum(), d.len())
}

/// after − before loss bits at each buffer position whose query sees different keys under
/// `after`'s map than under `before`'s (map, query ids, loss bits), in buffer order.
fn changed_differences(
    before: (&BlockMap, &[u32], &[f32]),
    after: &Positions,
    inheriting: &[bool],
) -> Vec<f64> {
    let (map, query_ids, loss_bits) = before;
    let mut changed = changed_views(map, &after.blocks);
    // A token that reads the block of the recruited token before it may see other keys
    // whenever any block changes.
    if changed.iter().any(|&c| c) {
        for (c, &inherits) in changed.iter_mut().zip(inheriting) {
            *c |= inherits;
        }
    }
    query_ids
        .iter()
        .zip(loss_bits)
        .zip(&after.loss_bits)
        .filter(|((&q, _), _)| changed.get(q as usize).copied().unwrap_or(true))
        .map(|((_, &b), &a)| f64::from(a) - f64::from(b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recruiting token 1 changes the view of its own queries and, when any view changes, of
    /// the function words (token 3), which read the block before them; token 2 stays as it was.
    #[test]
    fn a_change_of_any_block_counts_the_function_words_as_changed() {
        let base = BlockMap::single(4);
        let after = Positions {
            blocks: BlockMap::from_assignments(4, &[(1, "a".into())], "t"),
            query_ids: vec![3, 1, 2, 3],
            loss_bits: vec![1.0, 2.0, 4.0, 8.0],
        };
        let before = (&base, &[3u32, 1, 2, 3][..], &[2.0f32, 4.0, 8.0, 16.0][..]);
        let isolated = changed_differences(before, &after, &[false; 4]);
        assert_eq!(isolated, [-2.0]);
        let inheriting = changed_differences(before, &after, &[false, false, false, true]);
        assert_eq!(inheriting, [-1.0, -2.0, -8.0]);
        // No change of any block: nothing counts, the function words included.
        let same = Positions {
            blocks: base.clone(),
            ..after
        };
        assert!(changed_differences(before, &same, &[true; 4]).is_empty());
    }
}
