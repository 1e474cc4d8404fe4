//! k-means over vectors (embedding rows), for block maps built by clustering (SPEC §3, source 2).
//!
//! k-means++ seeding from our own seeded RNG, then Lloyd iterations until assignments stop
//! changing. Deterministic for a seed, dependency-free, and fast enough for vocabularies of a
//! few tens of thousands of rows.

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

/// Cluster `rows` into `k` groups; returns the cluster of each row (empty input → empty).
pub fn kmeans(rows: &[Vec<f32>], k: usize, max_iter: usize, seed: u64) -> Vec<usize> {
    let n = rows.len();
    if n == 0 || k == 0 {
        return vec![0; n];
    }
    let k = k.min(n);
    let mut rng = SplitMix64::new(seed);
    let mut centres: Vec<Vec<f32>> = Vec::with_capacity(k);
    if let Some(first) = rows.get(rng.below(n)) {
        centres.push(first.clone());
    }
    let mut d2: Vec<f64> = rows
        .iter()
        .map(|r| dist2(r, centres.first().map(Vec::as_slice).unwrap_or(&[])))
        .collect();
    while centres.len() < k {
        let total: f64 = d2.iter().sum();
        let mut target = rng.next_f64() * total;
        let mut pick = n - 1;
        for (i, &d) in d2.iter().enumerate() {
            if target < d {
                pick = i;
                break;
            }
            target -= d;
        }
        let Some(c) = rows.get(pick) else { break };
        let c = c.clone();
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
            if *a != best {
                *a = best;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let dim = rows.first().map(Vec::len).unwrap_or(0);
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
    assign
}

#[cfg(test)]
mod tests {
    use super::*;

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
