//! The growth loop (SPEC §10): each round tries the moves cheapest first — re-route, a block
//! inside the busiest specialist, a new specialist, merges and prunes — and the pool stops
//! after `patience` rounds without an accepted move.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::analysis::mdl::reroute;
use crate::train::recruit::Recruiter;
use crate::train::specialists::config::{PoolConfig, PoolMove};
use crate::train::specialists::documents::Document;
use crate::train::specialists::pool::Pool;

impl Pool {
    /// Grow the pool until `patience` rounds pass without an accepted move, the pool is full,
    /// or `stop` says so (checked before each round). `on_move` sees every move as it is
    /// decided.
    pub fn grow(
        &mut self,
        docs: &[Document],
        cfg: &PoolConfig,
        mut on_move: impl FnMut(&PoolMove),
        stop: &dyn Fn() -> bool,
    ) -> Result<()> {
        let tokens: Vec<usize> = docs.iter().map(|d| d.ids.len()).collect();
        let mut tabu: Vec<Vec<usize>> = Vec::new();
        // One block recruiter per specialist (by name): its tabu list outlives the rounds.
        let mut recruiters: BTreeMap<String, Recruiter> = BTreeMap::new();
        let (mut round, mut idle) = (0usize, 0usize);
        while idle < cfg.patience.max(1) && !stop() {
            round += 1;
            // 1. Re-route.
            let mut accepted_any = self.reroute_move(round, &tokens, docs, cfg, &mut on_move);
            // 2. Recruit a block inside the specialist that serves the most bits.
            if cfg.block_moves {
                if let Some((m, accepted)) = self.block_move(docs, cfg, &mut recruiters, round)? {
                    accepted_any |= accepted;
                    self.record(m, &mut on_move);
                }
            }
            // 3. Recruit a specialist for the worst-coded cluster.
            if self.specialists.len() < cfg.max_specialists {
                accepted_any |=
                    self.specialist_move(round, &tokens, docs, cfg, &mut tabu, &mut on_move)?;
            }
            // 4. Merge or prune specialists.
            accepted_any |= self.merge_moves(round, &tokens, docs, cfg, &mut on_move);
            if accepted_any {
                idle = 0;
            } else {
                idle += 1;
            }
        }
        Ok(())
    }

    /// Move 1: route every document to its shortest code, kept when DL_total falls. Returns
    /// whether it was accepted.
    fn reroute_move(
        &mut self,
        round: usize,
        tokens: &[usize],
        docs: &[Document],
        cfg: &PoolConfig,
        on_move: &mut impl FnMut(&PoolMove),
    ) -> bool {
        let before = self.dl_total(docs, cfg);
        let r = reroute(&self.bits, tokens, &self.costs(cfg), &self.assignment);
        // The blocks' bits count only for specialists with documents, so the routing is
        // priced again with them.
        let rerouted = self.priced(
            &self.bits,
            tokens,
            &r.assignment,
            &self.costs(cfg),
            &self.block_bits(cfg),
        );
        let moved = r.assignment != self.assignment && rerouted < before;
        if moved {
            self.assignment = r.assignment;
        }
        self.push(
            round,
            "re-route documents to their shortest code".into(),
            before,
            if moved { rerouted } else { before },
            moved,
            on_move,
        );
        moved
    }

    /// Log a move decided by DL_total alone (no block breakdown).
    pub(super) fn push(
        &mut self,
        round: usize,
        what: String,
        dl_before: f64,
        dl_after: f64,
        accepted: bool,
        on_move: &mut impl FnMut(&PoolMove),
    ) {
        let m = PoolMove {
            round,
            what,
            dl_before,
            dl_after,
            accepted,
            decision: None,
        };
        self.record(m, on_move);
    }

    /// Show a move to `on_move` and append it to the log.
    pub(super) fn record(&mut self, m: PoolMove, on_move: &mut impl FnMut(&PoolMove)) {
        on_move(&m);
        self.log.push(m);
    }
}
