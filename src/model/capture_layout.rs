//! What a streamed capture keeps of each head's attention ([`CapturePlan`]) and where it lies
//! ([`AttentionLayout`]): chosen heads, a row and key range, pooled into a grid.

use serde::{Deserialize, Serialize};

use crate::model::transformer::ModelError;

/// The grid side the studio asks for: a text of up to this many tokens is kept at full
/// resolution, a longer one pooled.
pub const STUDIO_GRID: usize = 256;

/// What a streamed capture keeps besides every head's summaries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapturePlan {
    /// Heads whose attention is kept, as (layer, head); `None`: every head.
    pub heads: Option<Vec<(usize, usize)>>,
    /// Query rows whose attention is kept (start, end); `None`: every row.
    pub rows: Option<(usize, usize)>,
    /// Keys whose attention is kept (start, end); `None`: every key the rows can see.
    pub keys: Option<(usize, usize)>,
    /// Largest side of a kept head's grid; a longer side is pooled (0: full resolution).
    pub max_grid: usize,
    /// At most this many query rows per chunk (`None`: as many as the memory budget allows).
    pub chunk_rows: Option<usize>,
}

impl CapturePlan {
    /// Every head, pooled to at most [`STUDIO_GRID`] cells a side: what the studio shows.
    pub fn studio() -> Self {
        Self {
            max_grid: STUDIO_GRID,
            ..Self::default()
        }
    }

    /// Where the kept attention lies in a sequence of `t` tokens (`causal`: a decoder, whose
    /// rows see no later key). Ranges are cut to the sequence; an empty one is an error.
    pub fn layout(&self, t: usize, causal: bool) -> Result<AttentionLayout, ModelError> {
        let asked_rows = self.rows.unwrap_or((0, t));
        let (r0, r1) = (asked_rows.0.min(t), asked_rows.1.min(t));
        let kmax = if causal { r1 } else { t };
        let asked_keys = self.keys.unwrap_or((0, kmax));
        let (k0, k1) = (asked_keys.0.min(kmax), asked_keys.1.min(kmax));
        if r1 <= r0 {
            return Err(ModelError::Input(format!(
                "the rows {}..{} asked for lie outside a text of {t} tokens (rows run 0..{t})",
                asked_rows.0, asked_rows.1
            )));
        }
        if k1 <= k0 {
            let why = if causal {
                ": a decoder's row sees only the keys up to itself"
            } else {
                ""
            };
            return Err(ModelError::Input(format!(
                "the keys {}..{} asked for hold no attention of rows {r0}..{r1} in a text of \
                 {t} tokens (their keys run 0..{kmax}{why})",
                asked_keys.0, asked_keys.1
            )));
        }
        let side = (r1 - r0).max(k1 - k0);
        let stride = if self.max_grid == 0 {
            1
        } else {
            side.div_ceil(self.max_grid).max(1)
        };
        Ok(AttentionLayout {
            rows: (r0, r1),
            keys: (k0, k1),
            stride,
        })
    }
}

/// Where a capture's kept attention lies: query rows, keys and the pooling stride. Each head's
/// [`HeadCapture::attention`] is then row-major ⌈rows/stride⌉ × ⌈keys/stride⌉.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionLayout {
    /// Query rows (start, end).
    pub rows: (usize, usize),
    /// Keys (start, end).
    pub keys: (usize, usize),
    /// Queries and keys per cell side.
    pub stride: usize,
}

impl AttentionLayout {
    /// The whole T×T table, one cell per weight.
    pub fn full(t: usize) -> Self {
        Self {
            rows: (0, t),
            keys: (0, t),
            stride: 1,
        }
    }

    /// Grid rows and columns.
    pub fn grid(&self) -> (usize, usize) {
        let s = self.stride.max(1);
        (
            (self.rows.1 - self.rows.0).div_ceil(s),
            (self.keys.1 - self.keys.0).div_ceil(s),
        )
    }

    /// The first query of grid row `r` and the first key of grid column `c`.
    pub fn origin(&self, r: usize, c: usize) -> (usize, usize) {
        let s = self.stride.max(1);
        (self.rows.0 + r * s, self.keys.0 + c * s)
    }

    /// Queries in grid row `r`.
    pub(crate) fn rows_in(&self, r: usize) -> usize {
        let s = self.stride.max(1);
        s.min(self.rows.1.saturating_sub(self.rows.0 + r * s))
    }

    /// True when cell (r, c) holds no visible weight: every key later than every query
    /// (`causal`), or every key farther than `window` from every query (a local layer).
    pub fn masked(&self, r: usize, c: usize, (causal, window): (bool, Option<usize>)) -> bool {
        let (q, k) = self.origin(r, c);
        let s = self.stride.max(1);
        let last_q = q + self.rows_in(r).max(1) - 1;
        let last_k = k + s.min(self.keys.1.saturating_sub(k)).max(1) - 1;
        let outside =
            window.is_some_and(|w| k > last_q.saturating_add(w) || q > last_k.saturating_add(w));
        (causal && k > last_q) || outside
    }

    /// True for the whole table at full resolution.
    pub fn is_full(&self, t: usize) -> bool {
        *self == Self::full(t)
    }
}
