//! Where recruitment's moves come from: a candidate cluster of unassigned tokens that cost
//! the most bits, the co-occurrence community of the most expensive one; the pair of
//! recruited blocks whose co-occurrence profiles are most alike; and a new block's name.

use std::collections::BTreeMap;

use crate::data::tokenizer::Tokenizer;
use crate::model::blocks::BlockMap;
use crate::train::recruit::buffer::BufferStats;
use crate::train::recruit::cluster::{cosine, ppmi_vectors};
use crate::train::recruit::profile::SEPARABILITY;
use crate::train::recruit::recruiter::Recruiter;

impl Recruiter {
    /// A new block's name: its two most frequent tokens in the buffer, each as [`name_part`]
    /// writes it (a block named after a newline token printed a line break into the log).
    pub(super) fn name_for(
        tokens: &[u32],
        counts: &BTreeMap<u32, usize>,
        tok: &dyn Tokenizer,
    ) -> String {
        let mut ranked: Vec<u32> = tokens.to_vec();
        ranked.sort_by_key(|id| std::cmp::Reverse(counts.get(id).copied().unwrap_or(0)));
        let words: Vec<String> = ranked
            .iter()
            .take(2)
            .map(|&id| name_part(&tok.decode(&[id])))
            .collect();
        words.join("·")
    }

    /// A candidate cluster of unassigned content tokens (the co-occurrence profile's, function
    /// words left out): the unassigned tokens of a seed's community. Seeds are the content
    /// tokens whose mean loss + entropy on the buffer is at least the median, the one that
    /// costs the most bits first. None when every cluster is on the tabu list.
    pub(super) fn candidate(&self, stats: &BufferStats, blocks: &BlockMap) -> Option<Vec<u32>> {
        let profile = self.profile.as_ref()?;
        let unassigned = |id: u32| blocks.token_block.get(id as usize) == Some(&0);
        let (pool, boundary): (Vec<u32>, Vec<u32>) = profile
            .index
            .keys()
            .copied()
            .filter(|&id| unassigned(id) && profile.is_content(id))
            .partition(|&id| !profile.is_boundary(id));
        for seed in seeds(stats, &pool) {
            let Some(community) = profile.community_of(seed) else {
                continue;
            };
            let mut cluster: Vec<u32> = pool
                .iter()
                .copied()
                .filter(|&id| profile.community_of(id) == Some(community))
                .collect();
            cluster.sort_unstable();
            if !self.tabu.contains(&cluster) {
                return Some(cluster);
            }
        }
        // Boundary tokens, each alone.
        seeds(stats, &boundary)
            .into_iter()
            .map(|id| vec![id])
            .find(|c| !self.tabu.contains(c))
    }

    /// Where a cluster came from, for the log: the co-occurrence profile and the function-like
    /// tokens it kept out of every candidate.
    pub(super) fn profile_note(&self, tok: &dyn Tokenizer) -> String {
        let Some(p) = self.profile.as_ref() else {
            return String::new();
        };
        let words = p.function_tokens();
        if words.is_empty() {
            return format!(
                "co-occurrence community; no function-like tokens (separability {:.2})",
                p.separability
            );
        }
        let shown: Vec<String> = words
            .iter()
            .take(8)
            .map(|&id| format!("{:?}", tok.decode(&[id])))
            .collect();
        let more = if words.len() > shown.len() {
            " …"
        } else {
            ""
        };
        let how = match p.threshold_bits {
            Some(t) => {
                let gap = if p.by_occurrences {
                    ", split over the running text: each token weighed by its count"
                } else if p.separability < SEPARABILITY {
                    ", set apart by a gap"
                } else {
                    ""
                };
                format!(
                    "neighbour divergence < {t:.2} bits, separability {:.2}{gap}; with \
                     punctuation and capitalised forms",
                    p.separability
                )
            }
            None => format!(
                "punctuation; no clear split of the divergences, separability {:.2}",
                p.separability
            ),
        };
        let cohesive = match p.cohesive {
            0 => String::new(),
            n => format!("; {n} below the cut follow each other and are read as content"),
        };
        format!(
            "co-occurrence community; {} function-like tokens kept out ({how}{cohesive}): \
             {}{more}",
            words.len(),
            shown.join(" ")
        )
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

/// The pool's tokens in the order they seed clusters: those whose mean loss + entropy on the
/// buffer is at least the median, by total loss bits (most first), then the rest of the pool.
fn seeds(stats: &BufferStats, pool: &[u32]) -> Vec<u32> {
    let in_pool: BTreeMap<u32, ()> = pool.iter().map(|&id| (id, ())).collect();
    let mut sums: BTreeMap<u32, (f64, f64, usize)> = BTreeMap::new();
    for ((&id, &l), &e) in stats
        .query_ids
        .iter()
        .zip(&stats.loss_bits)
        .zip(&stats.entropy_bits)
    {
        if in_pool.contains_key(&id) {
            let s = sums.entry(id).or_insert((0.0, 0.0, 0));
            s.0 += f64::from(l);
            s.1 += f64::from(e);
            s.2 += 1;
        }
    }
    let mut scores: Vec<f64> = sums
        .values()
        .map(|&(l, e, c)| (l + e) / c.max(1) as f64)
        .collect();
    scores.sort_by(f64::total_cmp);
    let median = scores
        .get(scores.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0.0);
    let mut hot: Vec<(f64, u32)> = sums
        .iter()
        .filter(|(_, &(l, e, c))| (l + e) / c.max(1) as f64 >= median)
        .map(|(&id, &(l, _, _))| (l, id))
        .collect();
    hot.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out: Vec<u32> = hot.into_iter().map(|(_, id)| id).collect();
    let rest: Vec<u32> = pool
        .iter()
        .copied()
        .filter(|id| !out.contains(id))
        .collect();
    out.extend(rest);
    out
}

/// A token as part of a block name, on one line: trimmed, control characters left out; a
/// token of whitespace alone written with escapes (`\n`, `\t`) and a space as `␣`.
pub fn name_part(token: &str) -> String {
    let t = token.trim();
    if t.is_empty() {
        return token.escape_debug().to_string().replace(' ', "␣");
    }
    t.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::name_part;

    #[test]
    fn block_names_stay_on_one_line() {
        assert_eq!(name_part("\n"), "\\n");
        assert_eq!(name_part(" "), "␣");
        assert_eq!(name_part("\t\n"), "\\t\\n");
        assert_eq!(name_part(" zuka"), "zuka");
        assert_eq!(name_part("a\u{7}b"), "ab");
        assert_eq!(name_part(","), ",");
    }
}
