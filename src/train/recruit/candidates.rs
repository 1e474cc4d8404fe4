//! Where recruitment's moves come from: a candidate cluster of unassigned tokens that cost
//! the most bits, the co-occurrence community of the most expensive one; the pair of
//! recruited blocks whose co-occurrence profiles are most alike; and a new block's name.

use std::collections::BTreeMap;

use crate::data::tokenizer::Tokenizer;
use crate::model::blocks::BlockMap;
use crate::train::recruit::buffer::BufferStats;
use crate::train::recruit::cluster::{cosine, ppmi_rows, symmetric_cooccurrence};
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

    /// The pair of recruited blocks whose co-occurrence profiles are most alike (cosine
    /// between the mean PPMI rows of their tokens), among the pairs whose tokens are
    /// neighbours more often than chance ([`block_lifts`] > 1), if any.
    ///
    /// Why the lift: a merge mends a topic recruited as two halves, whose tokens follow each
    /// other as a topic's do. Two topics' tokens stand apart, yet a merge of two topics can pay
    /// a little (its queries see where the other topic's segment begins): measured on 8,000
    /// one- and two-segment documents of five topics (segments of 2–6 words), fruit and water
    /// merged at −817 and −399 bits of 320,000, their tokens neighbours 0.4× as often as
    /// chance against 3.2–3.4× within a topic (ARI 0.776). Such a pair is not a candidate.
    pub(super) fn merge_pair(&self, stats: &BufferStats, blocks: &BlockMap) -> Option<MergePair> {
        let k = blocks.num_blocks();
        if k < 3 {
            return None;
        }
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for &id in &stats.query_ids {
            *counts.entry(id).or_insert(0) += 1;
        }
        let member_blocks: Vec<(u32, usize)> = counts
            .iter()
            .filter(|&(_, &c)| c >= self.config.min_count.max(1))
            .filter_map(|(&id, _)| {
                let b = blocks.token_block.get(id as usize).copied()?;
                (b > 0).then_some((id, b))
            })
            .collect();
        let index: BTreeMap<u32, usize> = member_blocks
            .iter()
            .enumerate()
            .map(|(i, &(id, _))| (id, i))
            .collect();
        let of: Vec<usize> = member_blocks.iter().map(|&(_, b)| b).collect();
        let co = symmetric_cooccurrence(&stats.query_ids, &index, self.config.window);
        let lifts = block_lifts(&stats.query_ids, &blocks.token_block, k, self.config.window);
        let vectors = ppmi_rows(&co);
        let mut centroid = vec![vec![0f64; of.len()]; k];
        for (&b, v) in of.iter().zip(&vectors) {
            if let Some(c) = centroid.get_mut(b) {
                for (x, y) in c.iter_mut().zip(v) {
                    *x += y;
                }
            }
        }
        let mut best: Option<(f64, MergePair)> = None;
        for keep in 1..k {
            for gone in keep + 1..k {
                let lift = lifts[keep][gone];
                let score = cosine(&centroid[keep], &centroid[gone]);
                if lift > 1.0 && best.as_ref().is_none_or(|x| score > x.0) {
                    best = Some((score, MergePair { keep, gone, lift }));
                }
            }
        }
        best.map(|(_, pair)| pair)
    }
}

/// Two recruited blocks to try as one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct MergePair {
    /// The block that takes the other's tokens.
    pub keep: usize,
    /// The block that goes.
    pub gone: usize,
    /// How many times as often as chance their tokens are neighbours ([`block_lifts`]).
    pub lift: f64,
}

/// `[a][b]`: how many times as often as chance a token of block a has one of block b within
/// `window` positions, over every token of `ids` (the unassigned ones as block 0 of
/// `token_block`, so chance is the whole text's): C_ab · T / (R_a · R_b), with C the symmetric
/// counts of such pairs, R the blocks' neighbour totals and T theirs. 0 where a block has no
/// neighbours.
///
/// Why the whole text: over the recruited tokens alone chance is theirs, and where they are
/// all one topic (the rest of the text unassigned) two halves of it are neighbours no more
/// often than its tokens are of each other. Measured: two topics used 2 : 1, the commoner
/// unassigned and the rarer recruited as 14 and 6 tokens; over the recruited tokens their lift
/// was under 1, so they were never tried as one (ARI 0.783); over the whole text it is 2.0.
pub(super) fn block_lifts(
    ids: &[u32],
    token_block: &[usize],
    k: usize,
    window: usize,
) -> Vec<Vec<f64>> {
    let of: Vec<usize> = (ids.iter())
        .map(|&id| token_block.get(id as usize).copied().unwrap_or(0))
        .collect();
    let mut c = vec![vec![0f64; k]; k];
    for (i, &a) in of.iter().enumerate() {
        for &b in of.iter().skip(i + 1).take(window) {
            if a < k && b < k {
                c[a][b] += 1.0;
                c[b][a] += 1.0;
            }
        }
    }
    let totals: Vec<f64> = c.iter().map(|r| r.iter().sum()).collect();
    let all: f64 = totals.iter().sum();
    c.iter()
        .zip(&totals)
        .map(|(r, &ra)| {
            r.iter()
                .zip(&totals)
                .map(|(&x, &rb)| {
                    if ra * rb > 0.0 {
                        x * all / (ra * rb)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
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
    use super::*;

    /// Segments of 3–6 words of one of two topics, 1 opening each (a function word); topic
    /// one's words are 2–7, topic two's 8–13.
    fn two_topics(segments: usize) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut x = 17u64;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        for _ in 0..segments {
            let first = if next(2) == 0 { 2 } else { 8 };
            let words = 3 + next(4);
            ids.extend(std::iter::once(1).chain((0..words).map(|_| first + next(6) as u32)));
        }
        ids
    }

    fn map(pairs: &[(u32, &str)]) -> BlockMap {
        let pairs: Vec<(u32, String)> = pairs.iter().map(|&(i, n)| (i, n.to_string())).collect();
        BlockMap::from_assignments(14, &pairs, "test")
    }

    /// Two halves of a topic are a merge candidate, their tokens neighbours more often than
    /// chance; two topics are not, however alike their profiles.
    #[test]
    fn only_blocks_whose_tokens_follow_each_other_are_tried_as_one() {
        let stats = BufferStats {
            query_ids: two_topics(600),
            ..BufferStats::default()
        };
        let r = Recruiter::default();
        let halves: Vec<(u32, &str)> = (2..14)
            .map(|i| {
                (
                    i,
                    ["one-a", "one-b", "two"][usize::from(i >= 5) + usize::from(i >= 8)],
                )
            })
            .collect();
        let pair = r.merge_pair(&stats, &map(&halves));
        let pair = pair.unwrap_or_else(|| panic!("the halves of topic one are a candidate"));
        assert_eq!((pair.keep, pair.gone), (1, 2));
        assert!(pair.lift > 1.5, "{pair:?}");
        let topics: Vec<(u32, &str)> = (2..14)
            .map(|i| (i, if i < 8 { "one" } else { "two" }))
            .collect();
        assert_eq!(r.merge_pair(&stats, &map(&topics)), None);
        let of: Vec<usize> = (0..14)
            .map(|r| usize::from(r >= 2) + usize::from(r >= 8))
            .collect();
        let lifts = block_lifts(&stats.query_ids, &of, 3, 4);
        assert!(
            lifts[1][2] < 0.7 && lifts[1][1] > 1.3 && lifts[2][2] > 1.3,
            "{lifts:?}"
        );
        assert_eq!(lifts[1][2], lifts[2][1]);
        // The unassigned token (1, opening each segment) counts in chance.
        assert!(lifts[0][1] > 1.0 && lifts[0][2] > 1.0, "{lifts:?}");
    }

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
