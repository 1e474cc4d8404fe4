//! Move 4 of the pool's growth (SPEC §10): merge a specialist into the others (each of its
//! documents goes to its next best) when that saves more than δ bits, and prune one that no
//! document is routed to. The children of a removed specialist then descend from its parent.

use crate::train::specialists::block_bits::reparented;
use crate::train::specialists::config::{PoolConfig, PoolMove};
use crate::train::specialists::documents::Document;
use crate::train::specialists::pool::Pool;
use crate::train::specialists::table::{removal_what, without_specialist};

impl Pool {
    /// Move 4 for every specialist but the base, last first. Returns whether a merge was
    /// accepted (a prune alone does not count as progress).
    pub(super) fn merge_moves(
        &mut self,
        round: usize,
        tokens: &[usize],
        docs: &[Document],
        cfg: &PoolConfig,
        on_move: &mut impl FnMut(&PoolMove),
    ) -> bool {
        let mut accepted_any = false;
        for j in (1..self.specialists.len()).rev() {
            accepted_any |= self.merge_move(j, round, tokens, docs, cfg, on_move);
        }
        accepted_any
    }

    /// Hand specialist `j`'s documents to the others (each to its best) and drop it, when that
    /// saves more than δ; a specialist nobody uses is pruned outright. Returns whether a merge
    /// (not a prune) was accepted.
    fn merge_move(
        &mut self,
        j: usize,
        round: usize,
        tokens: &[usize],
        docs: &[Document],
        cfg: &PoolConfig,
        on_move: &mut impl FnMut(&PoolMove),
    ) -> bool {
        let before = self.dl_total(docs, cfg);
        let unused = !self.assignment.contains(&j);
        let (bits, assignment) = without_specialist(&self.bits, &self.assignment, j);
        let mut costs = self.costs(cfg);
        costs.added_params.remove(j);
        let after = self.priced(
            &bits,
            tokens,
            &assignment,
            &costs,
            &self.block_bits_without(j, cfg),
        );
        let accept = unused || before - after > cfg.delta_bits;
        let name = self
            .specialists
            .get(j)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let what = removal_what(&name, unused);
        self.push(round, what, before, after, accept, on_move);
        if !accept {
            return false;
        }
        let removed = self.specialists.remove(j);
        // Children of the removed specialist now descend from its parent (with the same
        // trainable set, they still add the same parameters over it).
        for sp in &mut self.specialists {
            sp.parent = reparented(sp.parent, j, removed.parent);
        }
        self.bits = bits;
        self.assignment = assignment;
        !unused
    }
}
