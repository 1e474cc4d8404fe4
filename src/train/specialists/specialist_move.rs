//! Move 3 of the pool's growth (SPEC §10): recruit a specialist. The cluster is found by
//! splitting each specialist's documents at the largest gap in their bits per token (a
//! one-dimensional 2-means): the documents coded much worse than their peers are offered
//! first, and once those are on the tabu list, the ones coded better (`table.rs`). A copy of
//! their specialist (with its blocks) is fine-tuned on them with only a few parameters
//! trainable, so it adds only those over its parent; it joins the pool when DL_total falls by
//! more than δ, and a rejected cluster goes on a tabu list.

use anyhow::{Context, Result};

use crate::analysis::mdl::{parameter_bits, reroute};
use crate::model::transformer::LocalistModel;
use crate::train::dataset::TokenStream;
use crate::train::optimizer::AdamWConfig;
use crate::train::specialists::config::{PoolConfig, PoolMove};
use crate::train::specialists::documents::Document;
use crate::train::specialists::pool::{Pool, Specialist};
use crate::train::specialists::table::{with_candidate, worst_coded_cluster};
use crate::train::trainer::{TrainConfig, Trainer};

/// Parameters of `model` whose names start with one of `prefixes`.
fn count_params(model: &LocalistModel, prefixes: &[String]) -> usize {
    model
        .params
        .iter()
        .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p.as_str())))
        .map(|(_, v)| v.as_tensor().elem_count())
        .sum()
}

/// A candidate specialist priced: the bits table with its column, the routing after
/// re-routing, and DL_total.
struct Priced {
    bits: Vec<Vec<f64>>,
    assignment: Vec<usize>,
    dl_after: f64,
}

impl Pool {
    /// Move 3: fine-tune a copy of a specialist on the worst-coded cluster and keep it when
    /// DL_total falls by more than δ; a rejected cluster goes on `tabu`. Returns whether a
    /// specialist was recruited.
    pub(super) fn specialist_move(
        &mut self,
        round: usize,
        tokens: &[usize],
        docs: &[Document],
        cfg: &PoolConfig,
        tabu: &mut Vec<Vec<usize>>,
        on_move: &mut impl FnMut(&PoolMove),
    ) -> Result<bool> {
        let Some((from, cluster)) = worst_coded_cluster(
            &self.bits,
            &self.assignment,
            docs,
            self.specialists.len(),
            tabu,
        ) else {
            return Ok(false);
        };
        let before = self.dl_total(docs, cfg);
        let cand = self.probe(from, &cluster, docs, cfg)?;
        let priced = self.price_candidate(&cand, &cluster, tokens, docs, cfg)?;
        let accept = before - priced.dl_after > cfg.delta_bits;
        let what = format!(
            "recruit {} from {} for {} documents ({} parameters, {:.0} parameter bits)",
            cand.name,
            self.specialists
                .get(from)
                .map(|s| s.name.as_str())
                .unwrap_or("?"),
            cluster.len(),
            cand.added_params,
            parameter_bits(
                cand.added_params,
                cluster.iter().filter_map(|&d| tokens.get(d)).sum()
            )
        );
        self.push(round, what, before, priced.dl_after, accept, on_move);
        if accept {
            self.specialists.push(cand);
            self.bits = priced.bits;
            self.assignment = priced.assignment;
        } else {
            tabu.push(cluster);
        }
        Ok(accept)
    }

    /// The pool with `cand` added and `cluster` handed to it, then re-routed: its bits, its
    /// routing and DL_total (a copy adds no blocks over its parent).
    fn price_candidate(
        &self,
        cand: &Specialist,
        cluster: &[usize],
        tokens: &[usize],
        docs: &[Document],
        cfg: &PoolConfig,
    ) -> Result<Priced> {
        let column = docs
            .iter()
            .map(|d| self.code_bits(&cand.model, &cand.blocks, d))
            .collect::<Result<Vec<f64>>>()?;
        let (bits, assignment) = with_candidate(&self.bits, &column, &self.assignment, cluster);
        let mut costs = self.costs(cfg);
        costs.added_params.push(cand.added_params);
        let mut block_bits = self.block_bits(cfg);
        block_bits.push(0.0);
        let routed = reroute(&bits, tokens, &costs, &assignment);
        let dl_after = self.priced(&bits, tokens, &routed.assignment, &costs, &block_bits);
        Ok(Priced {
            bits,
            assignment: routed.assignment,
            dl_after,
        })
    }

    /// Fine-tune a copy of specialist `from` on `cluster`; the copy is not in the pool yet.
    fn probe(
        &mut self,
        from: usize,
        cluster: &[usize],
        docs: &[Document],
        cfg: &PoolConfig,
    ) -> Result<Specialist> {
        let parent = self.specialists.get(from).context("no such specialist")?;
        let mut model = parent.model.clone();
        model.params = model.params.deep_clone()?;
        let ids: Vec<u32> = cluster
            .iter()
            .filter_map(|&d| docs.get(d))
            .flat_map(|d| d.ids.iter().copied())
            .collect();
        let seq = cfg
            .seq_len
            .min(model.config.max_seq_len)
            .min(ids.len().saturating_sub(2))
            .max(1);
        let blocks = parent.blocks.clone();
        let mut tr = Trainer::new(
            model,
            blocks.clone(),
            TokenStream {
                ids,
                targets: Vec::new(),
            },
            TrainConfig {
                steps: cfg.probe_steps,
                batch_size: cfg.batch_size,
                seq_len: seq,
                seed: cfg.seed,
                trainable: cfg.trainable.clone(),
                optimizer: AdamWConfig {
                    lr: cfg.lr,
                    ..Default::default()
                },
                // Trained at the dial it is measured at (no change at λ = 0).
                forward_lambda: self.coding_lambda(),
                ..TrainConfig::default()
            },
        )?;
        for _ in 0..cfg.probe_steps {
            tr.train_step()?;
        }
        let added = count_params(&tr.model, &cfg.trainable);
        let name = format!("s{}", self.next_name);
        self.next_name += 1;
        Ok(Specialist {
            name,
            parent: Some(from),
            model: tr.model,
            blocks,
            added_params: added,
        })
    }
}
