//! Function-like tokens that follow each other: a topic read as function words.
//!
//! A topic that fills about half of a text has neighbours much like the text's own, so its
//! words' neighbour divergence falls with the function words' and the split
//! ([`threshold`](super::split::threshold)) sets them apart together: that topic never gets a
//! block, and with its words out of the co-occurrence features a rarer topic can come as two
//! halves. Measured (four topics used 1 : 1/2 : 1/3 : 1/4, 20% function words, 4,000 documents):
//! 38 tokens set apart, the 18 function words and the 20 words of the commonest topic. What
//! tells them apart is how often a token's neighbours (±window) are in the set apart class
//! itself, over the class's share of all neighbours (its *lift*): a function word stands
//! between any words, about 1 (0.95–1.00 there), while a topic's words follow each other
//! within their segments, 1.23–1.25 there. Where the lifts fall in two tight groups with a
//! clear gap between them, the upper group is content again. Real function words also follow
//! each other ("of the"): on Shakespeare their lifts spread evenly over 0.63–1.33 with no such
//! gap, and nothing moves. A text with no function words at all has only that topic below the
//! cut: then the lifts form one tight group far above chance (1.41–1.50 on two such texts,
//! against 0.87–0.97 for function words alone), and the whole class is content again.

use super::split::spread;

/// Least gap between the two groups of lifts (a ratio: 1 is chance).
const MIN_LIFT_GAP: f64 = 0.1;

/// How many times each group's spread (standard deviation) the gap must be.
const LIFT_GAP_SPREADS: f64 = 4.0;

/// Fewest tokens of a cohesive group.
const MIN_GROUP: usize = 3;

/// The rows of `function_like` (by row of `co`, the symmetric co-occurrence table) to read as
/// content again: the upper group of the lifts of the function-like rows that are not `fixed`
/// (marks and capitalised forms, which follow what their writing says), when the lifts split
/// into two tight groups ([`MIN_LIFT_GAP`], [`LIFT_GAP_SPREADS`], at least [`MIN_GROUP`] rows
/// above), or all of them when they are one tight group that far above chance. Empty
/// otherwise.
pub(super) fn cohesive_rows(co: &[Vec<f64>], function_like: &[bool], fixed: &[bool]) -> Vec<usize> {
    let in_class: Vec<bool> = (0..co.len())
        .map(|r| function_like.get(r).copied().unwrap_or(false))
        .zip(fixed.iter().copied().chain(std::iter::repeat(true)))
        .map(|(f, x)| f && !x)
        .collect();
    let class: Vec<usize> = (0..co.len()).filter(|&r| in_class[r]).collect();
    if class.len() < 2 * MIN_GROUP {
        return Vec::new();
    }
    // How often each token is anyone's neighbour: `co` is symmetric, so its row totals are its
    // column totals.
    let totals: Vec<f64> = co.iter().map(|row| row.iter().sum()).collect();
    let total: f64 = totals.iter().sum();
    let share: f64 = class.iter().map(|&r| totals[r]).sum::<f64>() / total.max(1.0);
    if share <= 0.0 {
        return Vec::new();
    }
    let mut lifts: Vec<(f64, usize)> = class
        .iter()
        .filter_map(|&r| {
            let inside: f64 = (co.get(r)?.iter().enumerate())
                .filter(|&(b, _)| b != r && in_class.get(b).copied().unwrap_or(false))
                .map(|(_, v)| v)
                .sum();
            let all = totals[r];
            (all > 0.0).then(|| (inside / all / share, r))
        })
        .collect();
    lifts.sort_by(|a, b| b.0.total_cmp(&a.0));
    let values: Vec<f64> = lifts.iter().map(|l| l.0).collect();
    match two_tight_groups(&values).or_else(|| above_chance(&values)) {
        Some(cut) => lifts.iter().take(cut).map(|l| l.1).collect(),
        None => Vec::new(),
    }
}

/// All of `sorted_desc` (its length) when it is one tight group whose lowest value stands
/// above chance (1) by a gap that [`two_tight_groups`] would count: chance is the lower group.
fn above_chance(sorted_desc: &[f64]) -> Option<usize> {
    let lowest = *sorted_desc.last()?;
    let gap = lowest - 1.0;
    (sorted_desc.len() >= 2 * MIN_GROUP
        && gap >= MIN_LIFT_GAP
        && gap >= LIFT_GAP_SPREADS * spread(sorted_desc))
    .then_some(sorted_desc.len())
}

/// The cut (how many above) of `sorted_desc` at its widest gap, when the gap is at least
/// [`MIN_LIFT_GAP`] and [`LIFT_GAP_SPREADS`] times each side's spread, with at least
/// [`MIN_GROUP`] values above and below.
fn two_tight_groups(sorted_desc: &[f64]) -> Option<usize> {
    let n = sorted_desc.len();
    let (cut, gap) = (MIN_GROUP..=n.saturating_sub(MIN_GROUP))
        .filter_map(|c| Some((c, sorted_desc.get(c - 1)? - sorted_desc.get(c)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let (upper, lower) = sorted_desc.split_at(cut);
    (gap >= MIN_LIFT_GAP
        && gap >= LIFT_GAP_SPREADS * spread(upper)
        && gap >= LIFT_GAP_SPREADS * spread(lower))
    .then_some(cut)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// Function words scattered between the words of a topic that fills most of the text: the
    /// topic's rows follow each other and come back as content; the function words, and a
    /// class of function words alone, stay.
    #[test]
    fn a_topic_read_as_function_words_comes_back_as_content() {
        // Rows 0–3: a topic whose words neighbour each other; rows 4–7: function words that
        // neighbour everything alike; rows 8–13: another topic (content).
        let m = 14;
        let group = |r: usize| [r < 4, (4..8).contains(&r), r >= 8];
        let cell = |a: usize, b: usize| {
            let (ga, gb) = (group(a), group(b));
            if a == b {
                0.0
            } else if ga[1] || gb[1] {
                8.0
            } else if ga == gb {
                20.0
            } else {
                1.0
            }
        };
        let co: Vec<Vec<f64>> = (0..m)
            .map(|a| (0..m).map(|b| cell(a, b)).collect())
            .collect();
        let function_like: Vec<bool> = (0..m).map(|r| r < 8).collect();
        let fixed = vec![false; m];
        assert_eq!(cohesive_rows(&co, &function_like, &fixed), vec![0, 1, 2, 3]);
        // Function words alone: no group.
        let only: Vec<bool> = (0..m).map(|r| (4..8).contains(&r)).collect();
        assert!(cohesive_rows(&co, &only, &fixed).is_empty());
        // The topic alone (a text without function words): all of it, far above chance.
        let topic: Vec<bool> = (0..m).map(|r| r >= 8).collect();
        assert_eq!(
            cohesive_rows(&co, &topic, &fixed),
            (8..14).collect::<Vec<_>>()
        );
        // Marks and capitalised forms are left as they are.
        let all_fixed = vec![true; m];
        assert!(cohesive_rows(&co, &function_like, &all_fixed).is_empty());
        // Lifts that spread evenly (real text) have no such gap.
        let even: Vec<f64> = (0..40).rev().map(|i| 0.6 + 0.02 * f64::from(i)).collect();
        assert_eq!(two_tight_groups(&even), None);
        let two: Vec<f64> = [1.25, 1.24, 1.24, 1.23, 1.0, 0.99, 0.97, 0.95].to_vec();
        assert_eq!(two_tight_groups(&two), Some(4));
        // One tight group: above chance it is content, at or below chance it stays.
        let high = [1.49, 1.47, 1.46, 1.45, 1.44, 1.41];
        assert_eq!(above_chance(&high), Some(6));
        let low = [0.97, 0.95, 0.95, 0.94, 0.93, 0.92];
        assert_eq!(above_chance(&low), None);
        let kjv = [1.127, 1.059, 1.043, 1.015, 0.995, 0.964, 0.935, 0.887];
        assert_eq!(above_chance(&kjv), None);
    }
}
