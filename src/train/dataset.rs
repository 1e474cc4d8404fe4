//! Token streams for training and evaluation, with optional pointer targets.
//!
//! The trainer sees token ids only (tokenizers live in `data`). Batches are windows of T + 1
//! tokens; the sequential schedule reproduces the PyTorch reference exactly (row b of step s
//! starts at ((s·B + b)·T) mod (N − T − 1)), the random one draws offsets from the seed.

use crate::analysis::rng::SplitMix64;
use crate::data::corpus::sequential_offsets;

/// A token stream with, per position, the earlier position it must point to (if any).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenStream {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Ground-truth pointer target per position (global index), or empty when unknown.
    pub targets: Vec<Option<usize>>,
}

impl TokenStream {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Split at `n` into (head, tail); targets are re-based for the tail and dropped when they
    /// would point across the split.
    pub fn split_at(&self, n: usize) -> (Self, Self) {
        let n = n.min(self.ids.len());
        let head_ids = self.ids.get(..n).unwrap_or(&[]).to_vec();
        let tail_ids = self.ids.get(n..).unwrap_or(&[]).to_vec();
        let (ht, tt) = if self.targets.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let ht = self.targets.get(..n).unwrap_or(&[]).to_vec();
            let tt = self
                .targets
                .get(n..)
                .unwrap_or(&[])
                .iter()
                .map(|t| t.and_then(|g| g.checked_sub(n)))
                .collect();
            (ht, tt)
        };
        (
            Self {
                ids: head_ids,
                targets: ht,
            },
            Self {
                ids: tail_ids,
                targets: tt,
            },
        )
    }

    /// Input window at `offset` of length `t`, the next-token labels, and window-relative
    /// targets (targets before the window are dropped).
    pub fn window(&self, offset: usize, t: usize) -> Option<Window> {
        let x = self.ids.get(offset..offset + t)?.to_vec();
        let y = self.ids.get(offset + 1..offset + t + 1)?.to_vec();
        let targets = if self.targets.is_empty() {
            Vec::new()
        } else {
            self.targets
                .get(offset..offset + t)?
                .iter()
                .map(|tg| tg.and_then(|g| g.checked_sub(offset)))
                .collect()
        };
        Some(Window { x, y, targets })
    }
}

/// One training row.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Input ids (T).
    pub x: Vec<u32>,
    /// Labels (T).
    pub y: Vec<u32>,
    /// Window-relative pointer targets (T) or empty.
    pub targets: Vec<Option<usize>>,
}

/// How batch offsets are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub enum Sampling {
    /// The reference's deterministic schedule.
    Sequential,
    /// Seeded uniform offsets.
    #[default]
    Random,
}

/// Offsets of a batch for `step` (empty when the stream is too short for one window).
pub fn batch_offsets(
    sampling: Sampling,
    step: usize,
    batch: usize,
    t: usize,
    n: usize,
    rng: &mut SplitMix64,
) -> Vec<usize> {
    match sampling {
        Sampling::Sequential => sequential_offsets(step, batch, t, n),
        Sampling::Random => {
            let span = n.saturating_sub(t + 1);
            if span == 0 {
                return Vec::new();
            }
            (0..batch).map(|_| rng.below(span)).collect()
        }
    }
}

/// The reference's train/validation split point: Python's `int(0.9 * n)`.
pub use crate::data::corpus::train_val_split as train_split;
