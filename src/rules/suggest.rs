//! "Did you mean": the names closest to a misspelt one, for errors that would otherwise list
//! every block a model has (SmolLM2's k-means map has dozens; a rule file with fifteen typos
//! once repeated all of them fifteen times).

/// Edit distance (insertions, deletions, substitutions; an adjacent swap counts one) between
/// `a` and `b`, compared without case.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (i, row) in d.chunks_mut(w).enumerate() {
        row[0] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// Up to three of `names` close to `name` (within a third of its length, at least 2 edits,
/// or one containing the other), closest first.
pub fn closest<'a>(name: &str, names: &'a [String]) -> Vec<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    let lower = name.to_lowercase();
    let mut scored: Vec<(usize, &str)> = names
        .iter()
        .filter_map(|n| {
            let d = distance(name, n);
            let l = n.to_lowercase();
            let contains = !l.is_empty() && (lower.contains(&l) || l.contains(&lower));
            (d <= limit || contains).then_some((d, n.as_str()))
        })
        .collect();
    scored.sort_by_key(|&(d, n)| (d, n.len()));
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// "did you mean "a" or "b"? " for the closest names, or "" when none is close; then how many
/// names there are in all.
pub fn did_you_mean(name: &str, names: &[String], what: &str) -> String {
    let close = closest(name, names);
    let quoted: Vec<String> = close.iter().map(|n| format!("{n:?}")).collect();
    let hint = match quoted.as_slice() {
        [] => String::new(),
        [one] => format!("did you mean {one}? "),
        [init @ .., last] => format!("did you mean {} or {last}? ", init.join(", ")),
    };
    format!("{hint}(this model has {} {what}", names.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_names_come_first_and_far_ones_are_left_out() {
        assert_eq!(distance("dosage", "dose"), 2);
        assert_eq!(distance("Drug", "durg"), 1);
        assert_eq!(distance("", "abc"), 3);
        let names: Vec<String> = ["unassigned", "drug", "dose", "date", "currency", "amount"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("dosage", &names), ["dose"]);
        assert_eq!(closest("durg", &names), ["drug"]);
        assert_eq!(closest("dat", &names), ["date"]);
        assert!(closest("zebra", &names).is_empty());
        assert_eq!(closest("amounts", &names), ["amount"]);
        assert_eq!(
            did_you_mean("curency", &names, "blocks"),
            "did you mean \"currency\"? (this model has 6 blocks"
        );
    }
}
