//! Where recruitment's moves come from: a candidate cluster of unassigned tokens that cost
//! the most bits, grouped by co-occurrence around the most expensive one; the pair of
//! recruited blocks whose co-occurrence profiles are most alike; and a new block's name.

use std::collections::BTreeMap;

use crate::data::tokenizer::Tokenizer;
use crate::model::blocks::BlockMap;
use crate::train::recruit::buffer::BufferStats;
use crate::train::recruit::cluster::{cosine, otsu_cut, ppmi_vectors};
use crate::train::recruit::recruiter::Recruiter;

impl Recruiter {
    /// A new block's name: its two most frequent tokens in the buffer.
    pub(super) fn name_for(
        tokens: &[u32],
        counts: &BTreeMap<u32, usize>,
        tok: &dyn Tokenizer,
    ) -> String {
        let mut ranked: Vec<u32> = tokens.to_vec();
        ranked.sort_by_key(|id| std::cmp::Reverse(counts.get(id).copied().unwrap_or(0)));
        let words: Vec<String> = ranked.iter().take(2).map(|&id| tok.decode(&[id])).collect();
        words.join("·")
    }

    /// A candidate cluster: unassigned tokens whose mean loss + entropy is at least the median,
    /// grouped by co-occurrence around the one that costs the most bits; None when every
    /// cluster is on the tabu list.
    pub(super) fn candidate(
        &self,
        stats: &BufferStats,
        blocks: &BlockMap,
        counts: &BTreeMap<u32, usize>,
    ) -> Option<Vec<u32>> {
        let cfg = &self.config;
        let mut loss: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
        for ((&id, &l), &e) in stats
            .query_ids
            .iter()
            .zip(&stats.loss_bits)
            .zip(&stats.entropy_bits)
        {
            if blocks.token_block.get(id as usize) != Some(&0) {
                continue;
            }
            let s = loss.entry(id).or_insert((0.0, 0.0));
            s.0 += f64::from(l);
            s.1 += f64::from(e);
        }
        let mut scored: Vec<(u32, f64, f64)> = loss
            .iter()
            .filter_map(|(&id, &(l, e))| {
                let c = counts.get(&id).copied().unwrap_or(0);
                (c >= cfg.min_count.max(1)).then(|| (id, (l + e) / c as f64, l))
            })
            .collect();
        if scored.len() < 2 {
            return None;
        }
        let mut by_score: Vec<f64> = scored.iter().map(|s| s.1).collect();
        by_score.sort_by(f64::total_cmp);
        let median = by_score[(by_score.len() - 1) / 2];
        // Every eligible unassigned token can join a cluster; the hot ones (loss + entropy at
        // least the median) seed it.
        let pool: Vec<u32> = scored.iter().map(|s| s.0).collect();
        let index: BTreeMap<u32, usize> = pool.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let vectors = ppmi_vectors(&stats.query_ids, &index, cfg.window);
        scored.retain(|s| s.1 >= median);
        // Seeds by total bits, most expensive first.
        scored.sort_by(|a, b| b.2.total_cmp(&a.2));
        for &(seed, _, _) in &scored {
            let Some(&si) = index.get(&seed) else {
                continue;
            };
            let mut sims: Vec<(f64, u32)> = pool
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != si)
                .map(|(i, &id)| (cosine(&vectors[si], &vectors[i]), id))
                .collect();
            sims.sort_by(|a, b| b.0.total_cmp(&a.0));
            let values: Vec<f64> = sims.iter().map(|s| s.0).collect();
            let cut = otsu_cut(&values);
            // Otsu always splits; when the lower class is still close to the upper one (the pool
            // is one topic), keep every token within half the upper class's mean similarity.
            let upper_mean = values.iter().take(cut).sum::<f64>() / cut.max(1) as f64;
            let cut = cut.max(values.iter().filter(|&&v| v >= 0.5 * upper_mean).count());
            let mut cluster: Vec<u32> = std::iter::once(seed)
                .chain(sims.iter().take(cut).map(|s| s.1))
                .collect();
            cluster.sort_unstable();
            if !self.tabu.contains(&cluster) {
                return Some(cluster);
            }
        }
        None
    }

    /// The pair of recruited blocks (keep, gone) whose co-occurrence profiles are most alike
    /// (cosine between the mean PPMI rows of their tokens), if there are two.
    pub(super) fn merge_pair(
        &self,
        stats: &BufferStats,
        blocks: &BlockMap,
    ) -> Option<(usize, usize)> {
        let k = blocks.num_blocks();
        if k < 3 {
            return None;
        }
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for &id in &stats.query_ids {
            *counts.entry(id).or_insert(0) += 1;
        }
        let members: Vec<u32> = counts
            .iter()
            .filter(|&(&id, &c)| {
                c >= self.config.min_count.max(1)
                    && blocks.token_block.get(id as usize).is_some_and(|&b| b > 0)
            })
            .map(|(&id, _)| id)
            .collect();
        let index: BTreeMap<u32, usize> =
            members.iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let vectors = ppmi_vectors(&stats.query_ids, &index, self.config.window);
        let dim = members.len();
        let mut centroid = vec![vec![0f64; dim]; k];
        for (&id, &i) in &index {
            let b = blocks.token_block.get(id as usize).copied().unwrap_or(0);
            if let (Some(c), Some(v)) = (centroid.get_mut(b), vectors.get(i)) {
                for (x, y) in c.iter_mut().zip(v) {
                    *x += y;
                }
            }
        }
        let mut best: Option<(f64, usize, usize)> = None;
        for a in 1..k {
            for b in a + 1..k {
                let score = cosine(&centroid[a], &centroid[b]);
                if best.is_none_or(|x| score > x.0) {
                    best = Some((score, a, b));
                }
            }
        }
        best.map(|(_, a, b)| (a, b))
    }
}
