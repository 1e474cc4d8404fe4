//! k-means over vectors (embedding rows), for block maps built by clustering (SPEC §3, source 2).
//!
//! k-means++ seeding from our own seeded RNG, then Lloyd iterations until assignments stop
//! changing. Deterministic for a seed (whatever the threads of rayon's pool), and fast enough
//! for vocabularies of a few tens of thousands of rows.

use rayon::prelude::*;

use crate::analysis::rng::SplitMix64;

fn dist2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (*x - *y) as f64;
            d * d
        })
        .sum()
}

crate::model::fused::simd::simd_dispatch! {
    /// The squared distance of `row` to each of the k centres, stored transposed in `ct`
    /// [d][k]: each distance summed over the dimensions in order, exactly as [`dist2`] sums
    /// it, but the k sums side by side in vectors (a single sum waits on its previous add).
    fn dist2_to_all => dist2_to_all_any(row: &[f32], ct: &[f32], out: &mut [f64])
}

#[inline(always)]
fn dist2_to_all_any(row: &[f32], ct: &[f32], out: &mut [f64]) {
    let k = out.len().max(1);
    // Iterator::sum starts from −0.0; every term here is ≥ +0.0, so +0.0 gives the same sums.
    out.fill(0.0);
    for (&x, c) in row.iter().zip(ct.chunks_exact(k)) {
        for (o, &y) in out.iter_mut().zip(c) {
            let d = (x - y) as f64;
            *o += d * d;
        }
    }
}

/// The first centre at the smallest distance (as a strict `<` scan from (0, ∞) picks it).
fn nearest(d: &[f64]) -> usize {
    d.iter()
        .enumerate()
        .fold(
            (0, f64::INFINITY),
            |acc, (c, &x)| if x < acc.1 { (c, x) } else { acc },
        )
        .0
}

/// k-means++'s next seed: row i with probability d2[i] / Σ d2 (the last row when rounding
/// leaves the draw past the end).
fn weighted_pick(d2: &[f64], rng: &mut SplitMix64) -> usize {
    let total: f64 = d2.iter().sum();
    let mut target = rng.next_f64() * total;
    for (i, &d) in d2.iter().enumerate() {
        if target < d {
            return i;
        }
        target -= d;
    }
    d2.len().saturating_sub(1)
}

/// Cluster `rows` into `k` groups; returns the cluster of each row (empty input → empty).
/// Rows are measured on rayon's pool; every number is the one-thread computation's, so the
/// result does not depend on the threads.
pub fn kmeans(rows: &[Vec<f32>], k: usize, max_iter: usize, seed: u64) -> Vec<usize> {
    lloyd(rows, k, max_iter, seed).0
}

/// About `max_rows` of `rows`, each kept with probability `max_rows / n` by a generator seeded
/// with `seed` (a fixed stride would follow any period in the rows: every 9th of rows that
/// cycle through three kinds is one kind); all of them when there are no more than that.
pub fn sample_rows(rows: &[Vec<f32>], max_rows: usize, seed: u64) -> Vec<Vec<f32>> {
    if rows.len() <= max_rows {
        return rows.to_vec();
    }
    let p = max_rows as f64 / rows.len() as f64;
    let mut rng = SplitMix64::new(seed ^ 0x5a3c_1e07);
    rows.iter()
        .filter(|_| rng.next_f64() < p)
        .cloned()
        .collect()
}

/// [`kmeans`] fitted on a sample of about `max_rows` of `rows` ([`sample_rows`]), then every row
/// given to the nearest of the fitted centres: for vocabularies far larger than their clusters
/// need (Gemma's 262,144 rows). Up to `max_rows` rows it is [`kmeans`].
pub fn kmeans_sampled(
    rows: &[Vec<f32>],
    (k, max_iter, seed): (usize, usize, u64),
    max_rows: usize,
) -> Vec<usize> {
    if rows.len() <= max_rows.max(1) {
        return kmeans(rows, k, max_iter, seed);
    }
    let sample = sample_rows(rows, max_rows, seed);
    let (_, centres) = lloyd(&sample, k, max_iter, seed);
    let kc = centres.len();
    let ct = transposed(&centres, rows.first().map(Vec::len).unwrap_or(0));
    rows.par_iter()
        .map_init(
            || vec![0f64; kc],
            |dist, r| {
                dist2_to_all(r, &ct, dist);
                nearest(dist)
            },
        )
        .collect()
}

/// The centres [k][d] transposed, [d][k], for [`dist2_to_all`] (a shorter centre is padded
/// with zeros).
fn transposed(centres: &[Vec<f32>], dim: usize) -> Vec<f32> {
    let kc = centres.len();
    let mut ct = vec![0f32; dim * kc];
    for (c, ctr) in centres.iter().enumerate() {
        for (i, &x) in ctr.iter().take(dim).enumerate() {
            ct[i * kc + c] = x;
        }
    }
    ct
}

/// k-means++ seeding and Lloyd iterations: (each row's cluster, the centres).
fn lloyd(rows: &[Vec<f32>], k: usize, max_iter: usize, seed: u64) -> (Vec<usize>, Vec<Vec<f32>>) {
    let n = rows.len();
    if n == 0 || k == 0 {
        return (vec![0; n], Vec::new());
    }
    let k = k.min(n);
    let mut rng = SplitMix64::new(seed);
    let mut centres: Vec<Vec<f32>> = Vec::with_capacity(k);
    if let Some(first) = rows.get(rng.below(n)) {
        centres.push(first.clone());
    }
    let first = centres.first().map(Vec::as_slice).unwrap_or(&[]);
    let mut d2: Vec<f64> = rows.par_iter().map(|r| dist2(r, first)).collect();
    while centres.len() < k {
        let Some(c) = rows.get(weighted_pick(&d2, &mut rng)) else {
            break;
        };
        let c = c.clone();
        d2.par_iter_mut()
            .zip(rows.par_iter())
            .for_each(|(d, r)| *d = d.min(dist2(r, &c)));
        centres.push(c);
    }
    let dim = rows.first().map(Vec::len).unwrap_or(0);
    let kc = centres.len();
    let mut assign = vec![usize::MAX; n];
    for _ in 0..max_iter.max(1) {
        // The centres transposed, [d][k], for `dist2_to_all` (rows are vectors of one length,
        // as embedding rows are; a shorter row is measured over its own length).
        let ct = transposed(&centres, dim);
        let changed = assign
            .par_iter_mut()
            .zip(rows.par_iter())
            .map_init(
                || vec![0f64; kc],
                |dist, (a, r)| {
                    dist2_to_all(r, &ct, dist);
                    let best = nearest(dist);
                    let moved = *a != best;
                    *a = best;
                    moved
                },
            )
            .reduce(|| false, |x, y| x || y);
        if !changed {
            break;
        }
        let mut sums = vec![vec![0f64; dim]; centres.len()];
        let mut counts = vec![0usize; centres.len()];
        for (&a, r) in assign.iter().zip(rows) {
            if let (Some(s), Some(c)) = (sums.get_mut(a), counts.get_mut(a)) {
                for (acc, &x) in s.iter_mut().zip(r) {
                    *acc += x as f64;
                }
                *c += 1;
            }
        }
        for ((ctr, s), &c) in centres.iter_mut().zip(&sums).zip(&counts) {
            if c > 0 {
                *ctr = s.iter().map(|v| (v / c as f64) as f32).collect();
            }
        }
    }
    (assign, centres)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The k-means before its distances ran side by side and on the pool, for comparison.
    fn kmeans_one_by_one(rows: &[Vec<f32>], k: usize, max_iter: usize, seed: u64) -> Vec<usize> {
        let n = rows.len();
        let k = k.min(n);
        let mut rng = SplitMix64::new(seed);
        let mut centres: Vec<Vec<f32>> = vec![rows[rng.below(n)].clone()];
        let mut d2: Vec<f64> = rows.iter().map(|r| dist2(r, &centres[0])).collect();
        while centres.len() < k {
            let c = rows[weighted_pick(&d2, &mut rng)].clone();
            for (d, r) in d2.iter_mut().zip(rows) {
                *d = d.min(dist2(r, &c));
            }
            centres.push(c);
        }
        let mut assign = vec![usize::MAX; n];
        for _ in 0..max_iter.max(1) {
            let mut changed = false;
            for (a, r) in assign.iter_mut().zip(rows) {
                let best = centres
                    .iter()
                    .enumerate()
                    .map(|(c, ctr)| (c, dist2(r, ctr)))
                    .fold(
                        (0, f64::INFINITY),
                        |acc, x| if x.1 < acc.1 { x } else { acc },
                    )
                    .0;
                changed |= *a != best;
                *a = best;
            }
            if !changed {
                break;
            }
            let dim = rows[0].len();
            let mut sums = vec![vec![0f64; dim]; centres.len()];
            let mut counts = vec![0usize; centres.len()];
            for (&a, r) in assign.iter().zip(rows) {
                for (acc, &x) in sums[a].iter_mut().zip(r) {
                    *acc += x as f64;
                }
                counts[a] += 1;
            }
            for ((ctr, s), &c) in centres.iter_mut().zip(&sums).zip(&counts) {
                if c > 0 {
                    *ctr = s.iter().map(|v| (v / c as f64) as f32).collect();
                }
            }
        }
        assign
    }

    /// Fitted on a sample, then every row to its nearest centre: planted clusters recovered
    /// whole (each sampled cluster's rows, and the rows outside the sample, in one cluster),
    /// and at or under the limit exactly [`kmeans`].
    #[test]
    fn a_sampled_fit_finds_the_planted_clusters() {
        let mut rng = SplitMix64::new(5);
        let rows: Vec<Vec<f32>> = (0..9000)
            .map(|i| {
                let c = (i % 3) as f32 * 10.0;
                (0..6).map(|_| c + rng.next_f64() as f32 - 0.5).collect()
            })
            .collect();
        let labels = kmeans_sampled(&rows, (3, 8, 1), 1000);
        for (i, &l) in labels.iter().enumerate() {
            assert_eq!(l, labels[i % 3], "row {i}");
        }
        let distinct: std::collections::BTreeSet<usize> = labels[..3].iter().copied().collect();
        assert_eq!(distinct.len(), 3);
        assert_eq!(
            kmeans_sampled(&rows[..900], (3, 8, 1), 1000),
            kmeans(&rows[..900], 3, 8, 1)
        );
    }

    /// The same assignments as the one-by-one k-means, bit for bit, at one thread and at
    /// three, on rows with duplicates (exact ties) and a zero row.
    #[test]
    fn side_by_side_and_pooled_distances_change_nothing() {
        let mut rng = SplitMix64::new(9);
        let mut rows: Vec<Vec<f32>> = (0..3000)
            .map(|_| (0..37).map(|_| rng.next_f64() as f32 - 0.5).collect())
            .collect();
        for i in 0..200 {
            rows[2000 + i] = rows[i].clone();
        }
        rows[5] = vec![0.0; 37];
        for (k, iters, seed) in [(1, 5, 1), (7, 8, 2), (16, 30, 3), (40, 100, 4)] {
            let want = kmeans_one_by_one(&rows, k, iters, seed);
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap_or_else(|e| panic!("{e}"));
                let got = pool.install(|| kmeans(&rows, k, iters, seed));
                assert_eq!(got, want, "k {k}, {threads} threads");
            }
        }
    }

    #[test]
    fn separates_two_obvious_clusters() {
        let rows = vec![
            vec![0.0, 0.1],
            vec![0.1, 0.0],
            vec![10.0, 10.1],
            vec![10.1, 10.0],
            vec![0.05, 0.05],
        ];
        let a = kmeans(&rows, 2, 50, 3);
        assert_eq!(a[0], a[1]);
        assert_eq!(a[0], a[4]);
        assert_eq!(a[2], a[3]);
        assert_ne!(a[0], a[2]);
    }
}
