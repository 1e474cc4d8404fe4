//! The growth loop of a pool of adapters (SPEC §10 on a pretrained base): each round
//! re-routes, recruits a specialist for a cluster at a specialist's largest gap in bits per
//! token (a fresh adapter on the base, fine-tuned on the cluster's documents; the side coded
//! worse first, then the other), then merges and prunes, every move kept only when
//! DL_total falls by more than δ; it stops after `patience` rounds without an accepted move.

use anyhow::{Context, Result};

use crate::analysis::mdl::{dl_total, parameter_bits, reroute};
use crate::hf::adapter::{Adapter, AdapterSpec};
use crate::train::finetune::{FineTuneConfig, FineTuner};
use crate::train::specialists::adapted::{AdaptedConfig, AdaptedPool, AdaptedSpecialist};
use crate::train::specialists::config::{PoolConfig, PoolMove};
use crate::train::specialists::documents::Document;
use crate::train::specialists::table::{
    removal_what, with_candidate, without_specialist, worst_coded_cluster,
};

/// Where a pool's growth reports to: every move as it is decided, and progress lines while a
/// candidate fine-tunes or documents are coded.
pub trait GrowthReport {
    /// A move, decided.
    fn on_move(&mut self, m: &PoolMove);
    /// A line of progress.
    fn progress(&mut self, line: &str);
    /// Whether growth should end now (the user stopped it).
    fn stopped(&self) -> bool {
        false
    }
}

impl AdaptedPool {
    /// Grow the pool until `patience` rounds pass without an accepted move or it is full.
    pub fn grow(
        &mut self,
        docs: &[Document],
        cfg: &AdaptedConfig,
        report: &mut dyn GrowthReport,
    ) -> Result<()> {
        let spec = self.spec(cfg)?;
        let tokens: Vec<usize> = docs.iter().map(|d| d.ids.len()).collect();
        let mut tabu: Vec<Vec<usize>> = Vec::new();
        let (mut round, mut idle) = (0usize, 0usize);
        while idle < cfg.pool.patience.max(1) && !report.stopped() {
            round += 1;
            let mut accepted = self.reroute_move(round, &tokens, &cfg.pool, report);
            // Both sides of a specialist's largest gap may be tried in one round: the side
            // coded worse, and when that is rejected, the side coded better.
            for _ in 0..2 {
                if self.specialists.len() >= cfg.pool.max_specialists || report.stopped() {
                    break;
                }
                match self.recruit(round, &tokens, docs, cfg, &spec, &mut tabu, report)? {
                    Some(true) => {
                        accepted = true;
                        break;
                    }
                    Some(false) => {}
                    None => break,
                }
            }
            for j in (1..self.specialists.len()).rev() {
                accepted |= self.merge_move(j, round, &tokens, &cfg.pool, report);
            }
            idle = if accepted { 0 } else { idle + 1 };
        }
        Ok(())
    }

    /// Record a move.
    fn push(&mut self, m: PoolMove, report: &mut dyn GrowthReport) {
        report.on_move(&m);
        self.log.push(m);
    }

    /// Move 1: every document to its shortest code, kept when DL_total falls.
    fn reroute_move(
        &mut self,
        round: usize,
        tokens: &[usize],
        cfg: &PoolConfig,
        report: &mut dyn GrowthReport,
    ) -> bool {
        let costs = self.costs(cfg);
        let before = dl_total(&self.bits, tokens, &self.assignment, &costs);
        let r = reroute(&self.bits, tokens, &costs, &self.assignment);
        let moved = r.assignment != self.assignment && r.dl_total < before;
        if moved {
            self.assignment = r.assignment;
        }
        let m = PoolMove {
            round,
            what: "re-route documents to their shortest code".into(),
            dl_before: before,
            dl_after: if moved { r.dl_total } else { before },
            accepted: moved,
            decision: None,
        };
        self.push(m, report);
        moved
    }

    /// Move 3: fine-tune a fresh adapter on a cluster at a specialist's largest gap and keep it
    /// when DL_total, its parameters charged, falls by more than δ; a rejected cluster goes on
    /// `tabu`. Returns whether it was kept (`None`: no cluster left to try).
    #[allow(clippy::too_many_arguments)]
    fn recruit(
        &mut self,
        round: usize,
        tokens: &[usize],
        docs: &[Document],
        cfg: &AdaptedConfig,
        spec: &AdapterSpec,
        tabu: &mut Vec<Vec<usize>>,
        report: &mut dyn GrowthReport,
    ) -> Result<Option<bool>> {
        let Some((from, cluster)) = worst_coded_cluster(
            &self.bits,
            &self.assignment,
            docs,
            self.specialists.len(),
            tabu,
        ) else {
            return Ok(None);
        };
        let name = format!("s{}", self.next_name);
        self.next_name += 1;
        let adapter = self.fine_tune(&name, &cluster, docs, cfg, spec, report)?;
        report.progress(&format!("{name}: coding {} documents", docs.len()));
        let column = self.code_column(Some(&adapter), docs)?;
        let (bits, assignment) = with_candidate(&self.bits, &column, &self.assignment, &cluster);
        let mut costs = self.costs(&cfg.pool);
        let added = adapter.num_scalars();
        costs.added_params.push(added);
        let routed = reroute(&bits, tokens, &costs, &assignment);
        let before = self.dl_total(docs, &cfg.pool);
        let accept = before - routed.dl_total > cfg.pool.delta_bits;
        let n_cluster: usize = cluster.iter().filter_map(|&d| tokens.get(d)).sum();
        let m = PoolMove {
            round,
            what: format!(
                "recruit {name} for {} documents of {} ({}: {added} parameters, {:.0} \
                 parameter bits)",
                cluster.len(),
                self.specialists
                    .get(from)
                    .map(|s| s.name.as_str())
                    .unwrap_or("?"),
                spec.describe(),
                parameter_bits(added, n_cluster)
            ),
            dl_before: before,
            dl_after: routed.dl_total,
            accepted: accept,
            decision: None,
        };
        self.push(m, report);
        if accept {
            self.specialists.push(AdaptedSpecialist {
                name,
                adapter: Some(adapter),
                added_params: added,
                steps: cfg.pool.probe_steps.max(1),
            });
            self.bits = bits;
            self.assignment = routed.assignment;
        } else {
            tabu.push(cluster);
        }
        Ok(Some(accept))
    }

    /// A fresh adapter fine-tuned on the documents of `cluster` (their tokens in order; the
    /// fine-tune holds out its last tenth as it always does). The base comes back at W₀, also
    /// when a step fails.
    fn fine_tune(
        &mut self,
        name: &str,
        cluster: &[usize],
        docs: &[Document],
        cfg: &AdaptedConfig,
        spec: &AdapterSpec,
        report: &mut dyn GrowthReport,
    ) -> Result<Adapter> {
        let ids: Vec<u32> = cluster
            .iter()
            .filter_map(|&d| docs.get(d))
            .flat_map(|d| d.ids.iter().copied())
            .collect();
        let context = self.base()?.trainable().map(|d| d.context()).unwrap_or(2);
        let steps = cfg.pool.probe_steps.max(1);
        let config = FineTuneConfig {
            lambda_train: cfg.lambda_train,
            lr: cfg.pool.lr,
            steps,
            // At most a fifth of the cluster per window, so its held-out tenth and the windows
            // fit a small cluster.
            seq_len: cfg.pool.seq_len.min(context).min(ids.len() / 5).max(2),
            batch_size: cfg.pool.batch_size,
            seed: cfg.pool.seed ^ self.next_name as u64,
            ..FineTuneConfig::new(spec.clone())
        };
        config.check_for(context, ids.len()).map_err(|e| {
            anyhow::anyhow!("fine-tuning {name} on {} documents: {e}", cluster.len())
        })?;
        let base = self.base.take().context("the base is being fine-tuned")?;
        let mut tuner = FineTuner::new(
            base,
            self.base_ref.clone(),
            self.blocks.clone(),
            ids,
            config,
        )?;
        let mut result = Ok(());
        for k in 0..steps {
            if report.stopped() {
                report.progress(&format!("{name}: stopped after {k} of {steps} steps"));
                break;
            }
            match tuner.train_step() {
                Ok(s) if (k + 1) % 10 == 0 || k + 1 == steps => report.progress(&format!(
                    "{name}: fine-tuning step {}/{steps}, cross-entropy {:.3} nats",
                    k + 1,
                    s.ce_nats
                )),
                Ok(_) => {}
                Err(e) => {
                    result = Err(anyhow::Error::from(e).context(format!("fine-tuning {name}")));
                    break;
                }
            }
        }
        let (base, _, adapter) = tuner.into_parts()?;
        self.base = Some(base);
        result.map(|()| adapter)
    }

    /// Move 4 for specialist `j`: hand its documents to the others (each to its best) when
    /// that saves more than δ; one nobody uses is pruned outright. Returns whether a merge
    /// (not a prune) was accepted.
    fn merge_move(
        &mut self,
        j: usize,
        round: usize,
        tokens: &[usize],
        cfg: &PoolConfig,
        report: &mut dyn GrowthReport,
    ) -> bool {
        let costs = self.costs(cfg);
        let before = dl_total(&self.bits, tokens, &self.assignment, &costs);
        let unused = !self.assignment.contains(&j);
        let (bits, assignment) = without_specialist(&self.bits, &self.assignment, j);
        let mut costs = costs;
        costs.added_params.remove(j);
        let after = dl_total(&bits, tokens, &assignment, &costs);
        let accept = unused || before - after > cfg.delta_bits;
        let name = self
            .specialists
            .get(j)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let what = removal_what(&name, unused);
        let m = PoolMove {
            round,
            what,
            dl_before: before,
            dl_after: after,
            accepted: accept,
            decision: None,
        };
        self.push(m, report);
        if accept {
            self.specialists.remove(j);
            self.bits = bits;
            self.assignment = assignment;
        }
        accept && !unused
    }
}
