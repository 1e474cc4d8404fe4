//! The pool's bookkeeping that does not depend on what a specialist is (one of our own models
//! or an adapter on a pretrained base): the worst-coded cluster a new specialist could serve,
//! the bits table without one specialist, and the routing table.

use crate::train::specialists::documents::Document;

/// Documents a specialist must serve before a new one can be split off from it: two on each
/// side of the gap in bits per token (fewer, and no specialist move is ever tried).
pub const MIN_SPLIT_DOCUMENTS: usize = 4;

/// A cluster a new specialist could serve: per specialist, its documents split at the largest
/// gap in bits per token (needs two documents on each side); the side coded worse is offered
/// first and, once that is on `tabu`, the side coded better (a specialist that already codes a
/// domain well can still gain from one of its own). Returns the specialist with the largest
/// such gap that still has a side to offer, and that side (sorted).
pub(crate) fn worst_coded_cluster(
    bits: &[Vec<f64>],
    assignment: &[usize],
    docs: &[Document],
    specialists: usize,
    tabu: &[Vec<usize>],
) -> Option<(usize, Vec<usize>)> {
    let mut best: Option<(f64, usize, Vec<usize>)> = None;
    for j in 0..specialists {
        let mut rate: Vec<(f64, usize)> = assignment
            .iter()
            .enumerate()
            .filter(|(_, &a)| a == j)
            .filter_map(|(d, _)| {
                let n = docs.get(d)?.ids.len().saturating_sub(1).max(1) as f64;
                Some((bits.get(d)?.get(j)? / n, d))
            })
            .collect();
        if rate.len() < MIN_SPLIT_DOCUMENTS {
            continue;
        }
        rate.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (gap, at) = rate
            .windows(2)
            .enumerate()
            .filter(|(k, _)| *k >= 1 && *k + 2 < rate.len())
            .map(|(k, w)| (w[1].0 - w[0].0, k + 1))
            .fold((0.0, 0), |b, x| if x.0 > b.0 { x } else { b });
        if at == 0 {
            continue;
        }
        let side = |part: &[(f64, usize)]| {
            let mut c: Vec<usize> = part.iter().map(|&(_, d)| d).collect();
            c.sort_unstable();
            c
        };
        let Some(cluster) = [side(&rate[at..]), side(&rate[..at])]
            .into_iter()
            .find(|c| !tabu.contains(c))
        else {
            continue;
        };
        if best.as_ref().is_none_or(|b| gap > b.0) {
            best = Some((gap, j, cluster));
        }
    }
    best.map(|(_, j, c)| (j, c))
}

/// The bits table without specialist `j`'s column, and the routing with `j`'s documents sent
/// to their best remaining specialist (later indices shifted down by one).
pub(crate) fn without_specialist(
    bits: &[Vec<f64>],
    assignment: &[usize],
    j: usize,
) -> (Vec<Vec<f64>>, Vec<usize>) {
    let mut bits = bits.to_vec();
    for row in &mut bits {
        row.remove(j);
    }
    let assignment: Vec<usize> = assignment
        .iter()
        .enumerate()
        .map(|(d, &a)| {
            if a == j {
                bits.get(d)
                    .and_then(|row| {
                        row.iter()
                            .enumerate()
                            .min_by(|x, y| x.1.total_cmp(y.1))
                            .map(|(k, _)| k)
                    })
                    .unwrap_or(0)
            } else if a > j {
                a - 1
            } else {
                a
            }
        })
        .collect();
    (bits, assignment)
}

/// The routing table (Markdown): for each document, its bits under each specialist (named by
/// `names`) and where it is routed.
pub(crate) fn routing_markdown(
    names: &[String],
    docs: &[Document],
    bits: &[Vec<f64>],
    assignment: &[usize],
) -> String {
    let mut s = String::from("| document | tokens |");
    for name in names {
        s.push_str(&format!(" {name} (bits) |"));
    }
    s.push_str(" routed to |\n|---|---|");
    for _ in names {
        s.push_str("---|");
    }
    s.push_str("---|\n");
    for (d, doc) in docs.iter().enumerate() {
        s.push_str(&format!("| {} | {} |", cell(&doc.name), doc.ids.len()));
        for b in bits.get(d).into_iter().flatten() {
            s.push_str(&format!(" {b:.0} |"));
        }
        let to = assignment
            .get(d)
            .and_then(|&j| names.get(j))
            .map(String::as_str)
            .unwrap_or("?");
        s.push_str(&format!(" {to} |\n"));
    }
    s
}

/// A file name as a Markdown table cell: `|` escaped, control characters (a newline, a
/// terminal escape) written as escapes, so a name cannot break the table or the terminal.
fn cell(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '|' => "\\|".to_string(),
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// What a merge or prune of specialist `name` says in the log (a prune when no document is
/// routed to it).
pub(crate) fn removal_what(name: &str, unused: bool) -> String {
    if unused {
        format!("prune {name} (no document routed to it)")
    } else {
        format!("merge {name} into the others (its documents to their next best)")
    }
}

/// The bits table with a candidate specialist's `column` added, and the routing with
/// `cluster` handed to it (before re-routing): how every candidate is priced.
pub(crate) fn with_candidate(
    bits: &[Vec<f64>],
    column: &[f64],
    assignment: &[usize],
    cluster: &[usize],
) -> (Vec<Vec<f64>>, Vec<usize>) {
    let j = bits.first().map_or(0, Vec::len);
    let mut bits = bits.to_vec();
    for (row, b) in bits.iter_mut().zip(column) {
        row.push(*b);
    }
    let mut assignment = assignment.to_vec();
    for &d in cluster {
        if let Some(a) = assignment.get_mut(d) {
            *a = j;
        }
    }
    (bits, assignment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_name_cannot_break_the_routing_table() {
        assert_eq!(cell("a|b\nc\u{1b}[31m"), "a\\|b\\nc\\u{1b}[31m");
        let docs = [Document {
            name: "x|y".into(),
            ids: vec![1, 2],
        }];
        let table = routing_markdown(&["base".into()], &docs, &[vec![3.0]], &[0]);
        assert!(table.contains("| x\\|y | 2 | 3 | base |"), "{table}");
        assert_eq!(table.lines().count(), 3);
    }
}
