//! Held-out text that repeats the training text word for word.
//!
//! A run measures its held-out tenth to say how the model does on text it has not read. A
//! corpus whose documents repeat (a file concatenated with itself, a scrape with duplicate
//! pages) puts copies of training text in that tenth, and its perplexity then says how well
//! the model recalls them: a review's corpus of one repeated document reached perplexity 1.006,
//! shown without a word. This module measures the share of held-out runs of [`RUN`] tokens
//! that occur in the training text, and a run warns above [`WARN_SHARE`].
//!
//! The held-out runs are sampled (at most [`SAMPLES`], evenly spaced) and kept by a rolling
//! hash; the training text is then read once, so time is linear in the corpus and memory
//! bounded by the sample, whatever the corpus size.

use std::collections::HashMap;

/// Tokens in a compared run (16 words, or 16 characters of a character model: long enough
/// that natural text rarely repeats one by chance).
pub const RUN: usize = 16;
/// Held-out runs sampled.
pub const SAMPLES: usize = 4096;
/// Share of sampled runs found in the training text above which a run warns.
pub const WARN_SHARE: f64 = 0.5;

const BASE: u64 = 0x9E37_79B9_7F4A_7C15;

/// The rolling hash of a run: Σ id·BASE^(RUN−1−i), wrapping.
fn hash(run: &[u32]) -> u64 {
    run.iter().fold(0u64, |h, &id| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(id) + 1)
    })
}

/// The hash of the run one token on: `out` leaves it, `inn` joins it (`top` is BASE^(RUN−1)).
fn roll(h: u64, top: u64, out: u32, inn: u32) -> u64 {
    let (out, inn) = (u64::from(out) + 1, u64::from(inn) + 1);
    h.wrapping_sub(out.wrapping_mul(top))
        .wrapping_mul(BASE)
        .wrapping_add(inn)
}

/// The share of held-out runs of [`RUN`] tokens (at most [`SAMPLES`] of them, evenly spaced)
/// that occur word for word in `train`. `None` when either part is shorter than a run.
pub fn copied_share(train: &[u32], held_out: &[u32]) -> Option<f64> {
    if train.len() < RUN || held_out.len() < RUN {
        return None;
    }
    let starts = held_out.len() - RUN + 1;
    let stride = starts.div_ceil(SAMPLES).max(1);
    // hash → sampled held-out starts (equal hashes are compared token by token).
    let mut wanted: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut sampled = 0usize;
    for s in (0..starts).step_by(stride) {
        let run = held_out.get(s..s + RUN)?;
        wanted.entry(hash(run)).or_default().push(s);
        sampled += 1;
    }
    let mut found = vec![false; starts];
    let mut hits = 0usize;
    let top = (0..RUN - 1).fold(1u64, |p, _| p.wrapping_mul(BASE));
    let mut h = hash(train.get(..RUN)?);
    for start in 0..=train.len() - RUN {
        if start > 0 {
            h = roll(h, top, train[start - 1], train[start + RUN - 1]);
        }
        let Some(list) = wanted.get(&h) else { continue };
        let run = &train[start..start + RUN];
        for &s in list {
            if !found[s] && held_out.get(s..s + RUN) == Some(run) {
                found[s] = true;
                hits += 1;
            }
        }
        if hits == sampled {
            break;
        }
    }
    Some(hits as f64 / sampled as f64)
}

/// The warning for a held-out part of which `share` repeats the training text (`what` names
/// the corpus), or `None` under [`WARN_SHARE`].
pub fn copy_warning(share: Option<f64>, what: &str) -> Option<String> {
    let share = share.filter(|&s| s >= WARN_SHARE)?;
    Some(format!(
        "{what}: {:.0}% of its held-out tenth repeats the training text word for word (runs of \
         {RUN} tokens found there): the held-out perplexity will measure how well the model \
         recalls copies, not how it does on text it has not read. Remove the repeated \
         documents, or measure on a text of your own with `eval --corpus`",
        100.0 * share
    ))
}

/// [`copy_warning`] for a corpus cut into `train` and `held_out`, printed to stderr and
/// returned (for the run's warnings, which the studio lists).
pub fn warn_copies(train: &[u32], held_out: &[u32], what: &str) -> Option<String> {
    let said = copy_warning(copied_share(train, held_out), what)?;
    eprintln!("warning: {said}");
    Some(said)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::analysis::rng::SplitMix64;

    fn random(n: usize, seed: u64, vocab: usize) -> Vec<u32> {
        let mut rng = SplitMix64::new(seed);
        (0..n).map(|_| rng.below(vocab) as u32).collect()
    }

    #[test]
    fn a_repeated_text_is_found_and_a_fresh_one_is_not() {
        let doc = random(5_000, 1, 50);
        // The training text holds the held-out text twice over: every run is found.
        let train: Vec<u32> = doc.iter().chain(doc.iter()).copied().collect();
        assert_eq!(copied_share(&train, &doc[1000..3000]), Some(1.0));
        // Fresh text of the same vocabulary: no 16-token run repeats by chance.
        let fresh = random(3_000, 2, 50);
        assert_eq!(copied_share(&train, &fresh), Some(0.0));
        // Half copied, half fresh.
        let half: Vec<u32> = doc[..2000].iter().chain(&fresh[..2000]).copied().collect();
        let share = copied_share(&train, &half).unwrap();
        assert!((share - 0.5).abs() < 0.01, "{share}");
        assert!(copy_warning(Some(0.6), "t").unwrap().contains("60%"));
        assert!(copy_warning(Some(0.2), "t").is_none());
        assert_eq!(copied_share(&train, &doc[..RUN - 1]), None);
    }

    #[test]
    fn a_long_held_out_part_is_sampled_and_the_rolling_hash_matches_the_direct_one() {
        let train = random(20_000, 3, 7);
        let held: Vec<u32> = train[5_000..15_000].to_vec();
        assert_eq!(copied_share(&train, &held), Some(1.0));
        let mut h = hash(&train[..RUN]);
        let top = (0..RUN - 1).fold(1u64, |p, _| p.wrapping_mul(BASE));
        for s in 1..100 {
            h = roll(h, top, train[s - 1], train[s + RUN - 1]);
            assert_eq!(h, hash(&train[s..s + RUN]));
        }
    }
}
