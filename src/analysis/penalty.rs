//! The off-block group-sparsity penalty of training (SPEC §4.1) on one attention row:
//! Ω_i = Σ_{k≠r(i)} w_k·‖a_{i,B_k}‖₂, and its gradient with respect to the row.
//!
//! ℓ2 inside a block and ℓ1 across blocks (a group lasso) pushes whole blocks to zero rather
//! than single keys. The relevant block is left out on purpose: summed over *all* blocks the
//! penalty cannot tell one active block from eight and only flattens attention inside blocks.
//! The trainer computes Ω on tensors; this is the slice-level reference its gradient is
//! checked against (SPEC §11.7) and the quantity in the penalty sandwich (bound 8.5).
//!
//! Which keys are penalised is decided by the caller through `groups`: `groups[j] = Some(k)`
//! puts key j in penalised block k, `None` leaves it out (it is in R(i) ∪ S(i), or invisible).

/// How block weights w_k are chosen (SPEC §4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BlockWeighting {
    /// w_k = 1 (the default): Ω is then at most ε (bound 8.5).
    #[default]
    Unit,
    /// w_k = √n_k: large blocks pay more, and Ω equals ε on rows uniform within blocks.
    SqrtSize,
}

impl BlockWeighting {
    /// The weight of each block, given its size n_k (number of penalised keys in it).
    pub fn weights(self, group_sizes: &[usize]) -> Vec<f64> {
        group_sizes
            .iter()
            .map(|&n| match self {
                BlockWeighting::Unit => 1.0,
                BlockWeighting::SqrtSize => (n as f64).sqrt(),
            })
            .collect()
    }
}

/// Number of penalised keys in each group: entry k counts the j with `groups[j] == Some(k)`.
/// The result has one entry per group up to the largest index used.
pub fn group_sizes(groups: &[Option<usize>]) -> Vec<usize> {
    let num_groups = groups.iter().flatten().map(|&k| k + 1).max().unwrap_or(0);
    let mut sizes = vec![0; num_groups];
    for &k in groups.iter().flatten() {
        if let Some(s) = sizes.get_mut(k) {
            *s += 1;
        }
    }
    sizes
}

/// ‖a_{B_k}‖₂ for every group k, over the keys present in both `row` and `groups`.
fn group_norms(row: &[f32], groups: &[Option<usize>]) -> Vec<f64> {
    let mut sums = vec![0.0f64; group_sizes(groups).len()];
    for (&a, g) in row.iter().zip(groups) {
        if let Some(s) = g.and_then(|k| sums.get_mut(k)) {
            *s += f64::from(a) * f64::from(a);
        }
    }
    sums.into_iter().map(f64::sqrt).collect()
}

/// The weight of group `k`: `weights[k]`, or the default 1 when `weights` has no entry.
fn weight_of(weights: &[f64], k: usize) -> f64 {
    weights.get(k).copied().unwrap_or(1.0)
}

/// Ω = Σ_k w_k‖a_{B_k}‖₂ over the penalised groups of one row.
///
/// `groups[j]` is key j's penalised block (`None`: not penalised); a group without an entry in
/// `weights` gets the default weight 1.
pub fn group_lasso(row: &[f32], groups: &[Option<usize>], weights: &[f64]) -> f64 {
    group_norms(row, groups)
        .iter()
        .enumerate()
        .map(|(k, &norm)| weight_of(weights, k) * norm)
        .sum()
}

/// ∂Ω/∂a_j = w_k·a_j/‖a_{B_k}‖₂ for key j in penalised group k; 0 for unpenalised keys and
/// for groups whose norm is 0 (the subgradient we pick at the kink). Same length as `row`.
pub fn group_lasso_grad(row: &[f32], groups: &[Option<usize>], weights: &[f64]) -> Vec<f64> {
    let norms = group_norms(row, groups);
    row.iter()
        .enumerate()
        .map(|(j, &a)| {
            let Some(k) = groups.get(j).copied().flatten() else {
                return 0.0;
            };
            match norms.get(k) {
                Some(&norm) if norm > 0.0 => weight_of(weights, k) * f64::from(a) / norm,
                _ => 0.0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // Group 0 holds (0.3, 0.4): norm 0.5; group 1 holds (0.2): norm 0.2; key 3 unpenalised.
        let row = [0.3f32, 0.4, 0.2, 0.1];
        let groups = [Some(0), Some(0), Some(1), None];
        assert_eq!(group_sizes(&groups), vec![2, 1]);
        assert!((group_lasso(&row, &groups, &[]) - 0.7).abs() < 1e-7);
        let w = BlockWeighting::SqrtSize.weights(&group_sizes(&groups));
        // √2·0.5 + 1·0.2.
        assert!((group_lasso(&row, &groups, &w) - (2f64.sqrt() * 0.5 + 0.2)).abs() < 1e-7);
        let g = group_lasso_grad(&row, &groups, &[]);
        let want = [0.6, 0.8, 1.0, 0.0];
        assert!(
            g.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{g:?}"
        );
    }
}
