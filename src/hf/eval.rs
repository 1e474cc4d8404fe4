//! The dial on an imported decoder, without retraining: blocks by k-means over its embedding
//! rows, the dial's biases (any mode and schedule) from our own dial code through the same
//! capture as our model, and per λ the perplexity, mean attention entropy and off-block mass ε
//! on a held-out text.

use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::kmeans::{kmeans_sampled, sample_rows};
use crate::analysis::metrics::{log_softmax, non_negative};
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::capture::capture;
use crate::model::dial::DialSetting;

/// One λ of the curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RealEvalRow {
    /// λ_inf.
    pub lambda: f64,
    /// Tokens scored.
    pub tokens: usize,
    /// 2^(bits per token) (a decoder; `None` for an encoder, which has no next-token head).
    pub perplexity: Option<f64>,
    /// Mean attention entropy, bits, over rows, heads and layers.
    pub entropy_bits: f64,
    /// Mean attention mass outside R(i).
    pub epsilon: f64,
}

/// A block map of `k` clusters of a model's input-embedding rows (SPEC §3, source 2). The rows
/// are centred (the mean row removed) and scaled to unit length first: raw rows of the frequent
/// tokens share one large common direction, and plain k-means puts nearly every common token
/// in one cluster. Each block is named after the first few whole words of its cluster (in id
/// order, which for BPE vocabularies is roughly frequency order; `decode` gives a token's
/// text).
pub fn kmeans_blocks(
    rows: Vec<Vec<f32>>,
    decode: impl Fn(u32) -> String,
    k: usize,
    seed: u64,
) -> BlockMap {
    let n_rows = rows.len();
    let d = rows.first().map(Vec::len).unwrap_or(0);
    let mut mean = vec![0f64; d];
    for r in &rows {
        for (m, &x) in mean.iter_mut().zip(r) {
            *m += f64::from(x);
        }
    }
    for m in &mut mean {
        *m /= n_rows.max(1) as f64;
    }
    // Centred in place (the rows of a 49k vocabulary take 113 MB).
    let mut centred = rows;
    for r in &mut centred {
        for (x, &m) in r.iter_mut().zip(&mean) {
            *x -= m as f32;
        }
    }
    // "All but the top": the leading principal directions carry frequency, not meaning.
    for _ in 0..TOP_DIRECTIONS.min(d) {
        let u = leading_direction_of(&centred, seed);
        centred.par_iter_mut().for_each(|r| {
            let p: f32 = r.iter().zip(&u).map(|(a, b)| a * b).sum();
            for (x, &ui) in r.iter_mut().zip(&u) {
                *x -= p * ui;
            }
        });
    }
    let mut unit = centred;
    unit.par_iter_mut().for_each(|r| {
        let n = r.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        for x in r.iter_mut() {
            *x /= n;
        }
    });
    let labels = kmeans_sampled(&unit, (k, 8, seed), DIRECTION_ROWS);
    // Byte-level vocabularies mark a word's start with a space; WordPiece marks the rest "##".
    let spaced = (0..n_rows.min(4096) as u32).any(|id| decode(id).starts_with(' '));
    let word = |id: u32| -> Option<String> {
        let t = decode(id);
        let w = t.trim();
        let starts = if spaced {
            t.starts_with(' ')
        } else {
            !t.starts_with("##")
        };
        (starts && w.chars().count() > 1 && w.chars().all(char::is_alphabetic))
            .then(|| w.to_string())
    };
    let mut names: Vec<Vec<String>> = vec![Vec::new(); k];
    for (id, &c) in labels.iter().enumerate() {
        if let Some(n) = names.get_mut(c) {
            if n.len() < 3 {
                if let Some(w) = word(id as u32) {
                    if !n.iter().any(|x| x.eq_ignore_ascii_case(&w)) {
                        n.push(w);
                    }
                }
            }
        }
    }
    let pairs: Vec<(u32, String)> = labels
        .iter()
        .enumerate()
        .map(|(id, &c)| {
            let label = names.get(c).map(|n| n.join("/")).unwrap_or_default();
            // A cluster with no whole word to name it is "c3", not "c3 ".
            (id as u32, format!("c{c} {label}").trim_end().to_string())
        })
        .collect();
    let mut map = BlockMap::from_assignments(n_rows, &pairs, &format!("k-means k={k}"));
    // Every token is in a cluster: nothing is "unassigned".
    map.isolate_unassigned = false;
    map
}

/// Principal directions removed before clustering.
const TOP_DIRECTIONS: usize = 3;

/// Most rows the leading directions are estimated from, and the k-means clusters fitted on: a
/// vocabulary larger than this (Gemma's 262,144 rows, Qwen's 151,936) is sampled (seeded,
/// [`sample_rows`]), and every row then goes to its nearest fitted centre. 30 power iterations
/// over all of gemma-3-270m's rows took about 20 s of a 30 s `capture`; the vocabularies of
/// SmolLM2, GPT-2, Pythia and MiniLM are under it and unchanged.
const DIRECTION_ROWS: usize = 65_536;

/// [`leading_direction`] of `rows`, from a sample of about [`DIRECTION_ROWS`] of them.
fn leading_direction_of(rows: &[Vec<f32>], seed: u64) -> Vec<f32> {
    if rows.len() <= DIRECTION_ROWS {
        return leading_direction(rows, seed);
    }
    leading_direction(&sample_rows(rows, DIRECTION_ROWS, seed), seed)
}

/// The unit vector of largest variance of centred rows (power iteration). Each row's
/// projection is summed in order, eight rows side by side and the rows on rayon's pool; the
/// projections are then added up row by row as before, so the result does not depend on the
/// threads.
fn leading_direction(rows: &[Vec<f32>], seed: u64) -> Vec<f32> {
    let d = rows.first().map(Vec::len).unwrap_or(0);
    let mut rng = crate::analysis::rng::SplitMix64::new(seed ^ 0x9e37);
    let mut u: Vec<f32> = (0..d).map(|_| rng.next_f64() as f32 - 0.5).collect();
    let mut p = vec![0f32; rows.len()];
    for _ in 0..30 {
        p.par_chunks_mut(8)
            .zip(rows.par_chunks(8))
            .for_each(|(p, rows)| projections(rows, &u, p));
        let mut next = vec![0f32; d];
        for (r, &p) in rows.iter().zip(&p) {
            add_scaled(&mut next, p, r);
        }
        let norm = next.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        u = next.into_iter().map(|x| x / norm).collect();
    }
    u
}

crate::model::fused::simd::simd_dispatch! {
    /// next[i] += p · r[i] (each element on its own: vectors change no sum's order).
    fn add_scaled => add_scaled_any(next: &mut [f32], p: f32, r: &[f32])
}

#[inline(always)]
fn add_scaled_any(next: &mut [f32], p: f32, r: &[f32]) {
    for (n, &x) in next.iter_mut().zip(r) {
        *n += p * x;
    }
}

crate::model::fused::simd::simd_dispatch! {
    /// p[j] = Σ_i rows[j][i]·u[i] for a few rows, each sum in the order of i from −0.0 (as
    /// `Iterator::sum` takes it), the rows side by side.
    fn projections => projections_any(rows: &[Vec<f32>], u: &[f32], p: &mut [f32])
}

#[inline(always)]
fn projections_any(rows: &[Vec<f32>], u: &[f32], p: &mut [f32]) {
    p.fill(-0.0);
    for (i, &ui) in u.iter().enumerate() {
        for (pj, r) in p.iter_mut().zip(rows) {
            if let Some(&x) = r.get(i) {
                *pj += x * ui;
            }
        }
    }
}

/// Evaluate `ids` in consecutive windows of `window` tokens (at most `windows` of them) at each
/// dial setting of `dials` (any mode and schedule): entropy and ε on any model, perplexity on a
/// decoder with next-token logits.
pub fn eval_imported(
    m: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    dials: &[DialSetting],
    window: usize,
    windows: usize,
) -> Result<Vec<RealEvalRow>> {
    let dims = m.dims();
    let scored = dims.has_logits && dims.causal;
    let t = window.max(2);
    let starts: Vec<usize> = (0..windows)
        .map(|w| w * t)
        .take_while(|&s| s + t < ids.len())
        .collect();
    if starts.is_empty() {
        bail!(
            "the text has {} tokens; need more than {} for one window",
            ids.len(),
            t
        );
    }
    let mut out = Vec::with_capacity(dials.len());
    for dial in dials {
        let (mut bits, mut n) = (0.0f64, 0usize);
        let (mut ent, mut eps, mut rows) = (0.0f64, 0.0f64, 0usize);
        for &s in &starts {
            let x = &ids[s..s + t];
            let y = &ids[s + 1..s + t + 1];
            let cap = capture(m, blocks, x, dial)?;
            let v = dims.vocab;
            if scored {
                for (i, &target) in y.iter().enumerate() {
                    let row = cap.logits.get(i * v..(i + 1) * v).unwrap_or(&[]);
                    let lp = log_softmax(row)
                        .get(target as usize)
                        .copied()
                        .unwrap_or(f64::NEG_INFINITY);
                    bits -= lp / std::f64::consts::LN_2;
                }
            }
            n += t;
            ent += cap.mean_entropy_bits(None) * (t * cap.heads.len()) as f64;
            eps += cap.mean_off_block_mass(None) * (t * cap.heads.len()) as f64;
            rows += t * cap.heads.len();
        }
        out.push(RealEvalRow {
            lambda: dial.params.lambda,
            tokens: n,
            perplexity: scored.then(|| 2f64.powf(bits / n.max(1) as f64)),
            entropy_bits: ent / rows.max(1) as f64,
            epsilon: non_negative(eps / rows.max(1) as f64),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vocabulary past [`DIRECTION_ROWS`] rows: the direction from the even sample is the
    /// direction from all of them (a planted one, under noise).
    #[test]
    fn a_sampled_large_vocabulary_finds_its_leading_direction() {
        let mut rng = crate::analysis::rng::SplitMix64::new(11);
        let d = 24;
        let planted: Vec<f32> = (0..d).map(|i| if i % 3 == 0 { 1.0 } else { 0.2 }).collect();
        let norm = planted.iter().map(|x| x * x).sum::<f32>().sqrt();
        let rows: Vec<Vec<f32>> = (0..DIRECTION_ROWS + 9_000)
            .map(|_| {
                let a = (rng.next_f64() as f32 - 0.5) * 6.0;
                planted
                    .iter()
                    .map(|&p| a * p / norm + rng.next_f64() as f32 - 0.5)
                    .collect()
            })
            .collect();
        let cos = |u: &[f32]| {
            u.iter()
                .zip(&planted)
                .map(|(a, b)| a * b)
                .sum::<f32>()
                .abs()
                / norm
        };
        let full = leading_direction(&rows, 3);
        let sampled = leading_direction_of(&rows, 3);
        assert!(
            cos(&full) > 0.99 && cos(&sampled) > 0.99,
            "{} {}",
            cos(&full),
            cos(&sampled)
        );
        let agree: f32 = full.iter().zip(&sampled).map(|(a, b)| a * b).sum();
        assert!(agree.abs() > 0.999, "{agree}");
        // At or under the limit, the sample is every row: the same bits.
        let small = &rows[..1000];
        assert_eq!(leading_direction_of(small, 3), leading_direction(small, 3));
    }

    /// The power iteration before its projections ran side by side and on the pool.
    fn leading_direction_one_by_one(rows: &[Vec<f32>], seed: u64) -> Vec<f32> {
        let d = rows[0].len();
        let mut rng = crate::analysis::rng::SplitMix64::new(seed ^ 0x9e37);
        let mut u: Vec<f32> = (0..d).map(|_| rng.next_f64() as f32 - 0.5).collect();
        for _ in 0..30 {
            let mut next = vec![0f32; d];
            for r in rows {
                let p: f32 = r.iter().zip(&u).map(|(a, b)| a * b).sum();
                for (n, &x) in next.iter_mut().zip(r) {
                    *n += p * x;
                }
            }
            let norm = next.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            u = next.into_iter().map(|x| x / norm).collect();
        }
        u
    }

    /// Bit for bit the one-by-one result, at one thread and at three, with a zero row and a
    /// number of rows that is not a multiple of eight.
    #[test]
    fn the_leading_direction_does_not_depend_on_the_threads() {
        let mut rng = crate::analysis::rng::SplitMix64::new(4);
        let mut rows: Vec<Vec<f32>> = (0..1001)
            .map(|_| (0..29).map(|_| rng.next_f64() as f32 - 0.3).collect())
            .collect();
        rows[3] = vec![0.0; 29];
        let want = leading_direction_one_by_one(&rows, 7);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            let got = pool.install(|| leading_direction(&rows, 7));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{threads} threads");
        }
    }
}
