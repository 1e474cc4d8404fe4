//! R(i) for one sequence: which keys each query's relevant block holds (SPEC §1), derived from
//! a block map ([`crate::model::blocks::BlockMap::masks`]).

/// Masks for one sequence of length T, derived from a block map.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceMasks {
    /// b(x_j) per key.
    pub key_blocks: Vec<usize>,
    /// r(i) per query.
    pub relevant_blocks: Vec<usize>,
    /// K at the time of masking.
    pub num_blocks: usize,
    /// R(i) as a row-major T×T boolean table (only j ≤ i can be true).
    pub relevant: Vec<bool>,
    /// A block whose queries have no relevant keys besides S(i) (see `BlockMap::
    /// isolate_unassigned`); its rows count every group as off-block.
    pub isolated: Option<usize>,
    /// A block whose queries have every visible key in R(i) (see `BlockMap::open_unassigned`);
    /// its rows have no off-block group.
    pub open: Option<usize>,
    /// Causal visibility (j ≤ i); false for a bidirectional encoder, where every key is
    /// visible to every query.
    pub causal: bool,
}

impl SequenceMasks {
    /// Build R(i) = {j ≤ i : b(x_j) = r(i)} ∪ S(i), S(i) = {i, 0}.
    pub fn new(key_blocks: Vec<usize>, relevant_blocks: Vec<usize>, num_blocks: usize) -> Self {
        let t = key_blocks.len();
        let mut relevant = vec![false; t * t];
        for (i, &r) in relevant_blocks.iter().enumerate() {
            for (j, &kb) in key_blocks.iter().enumerate().take(i + 1) {
                let in_s = j == i || j == 0;
                if let Some(cell) = relevant.get_mut(i * t + j) {
                    *cell = in_s || kb == r;
                }
            }
        }
        Self {
            key_blocks,
            relevant_blocks,
            num_blocks,
            relevant,
            isolated: None,
            open: None,
            causal: true,
        }
    }

    /// The same blocks for a bidirectional encoder: every key visible, R(i) = {j : b(x_j) =
    /// r(i)} ∪ S(i) over the whole sequence.
    pub fn bidirectional(mut self) -> Self {
        let t = self.len();
        for (i, &r) in self.relevant_blocks.iter().enumerate() {
            for (j, &kb) in self.key_blocks.iter().enumerate() {
                if let Some(cell) = self.relevant.get_mut(i * t + j) {
                    *cell = j == i || j == 0 || kb == r;
                }
            }
        }
        self.causal = false;
        self
    }

    /// Whether key j is visible to query i.
    pub fn visible(&self, i: usize, j: usize) -> bool {
        !self.causal || j <= i
    }

    /// How many keys query i sees (N in the bounds).
    pub fn visible_count(&self, i: usize) -> usize {
        if self.causal {
            (i + 1).min(self.len())
        } else {
            self.len()
        }
    }

    /// Queries whose relevant block is `block` keep only S(i) = {i, 0} in R(i).
    pub fn isolate(mut self, block: usize) -> Self {
        self.set_rows_of(block, |i, j| j == i || j == 0);
        self.isolated = Some(block);
        self
    }

    /// Queries whose relevant block is `block` have every visible key in R(i).
    pub fn open(mut self, block: usize) -> Self {
        self.set_rows_of(block, |_, _| true);
        self.open = Some(block);
        self
    }

    /// Set R(i) of every query whose relevant block is `block` to the visible keys j with
    /// `keep(i, j)`.
    fn set_rows_of(&mut self, block: usize, keep: impl Fn(usize, usize) -> bool) {
        let t = self.len();
        let causal = self.causal;
        for (i, &r) in self.relevant_blocks.iter().enumerate() {
            if r != block {
                continue;
            }
            for j in 0..t {
                if let Some(cell) = self.relevant.get_mut(i * t + j) {
                    *cell = (j <= i || !causal) && keep(i, j);
                }
            }
        }
    }

    /// True when row i's query sees every visible key as relevant (its block is open).
    pub fn row_open(&self, i: usize) -> bool {
        self.open.is_some() && self.relevant_blocks.get(i).copied() == self.open
    }

    /// True when row i's query has no relevant block (its block is isolated).
    pub fn row_isolated(&self, i: usize) -> bool {
        self.isolated.is_some() && self.relevant_blocks.get(i).copied() == self.isolated
    }

    /// Sequence length T.
    pub fn len(&self) -> usize {
        self.key_blocks.len()
    }

    /// True for an empty sequence.
    pub fn is_empty(&self) -> bool {
        self.key_blocks.is_empty()
    }

    /// Row i of R(i) over keys 0..T.
    pub fn relevant_row(&self, i: usize) -> &[bool] {
        let t = self.len();
        self.relevant.get(i * t..(i + 1) * t).unwrap_or(&[])
    }

    /// Visibility of row i over keys 0..T (causal: j ≤ i).
    pub fn visible_row(&self, i: usize) -> Vec<bool> {
        (0..self.len()).map(|j| self.visible(i, j)).collect()
    }
}
