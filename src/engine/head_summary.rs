//! Per-head summaries of a capture (`capture --summaries heads`): each head's entropy, ε, worst
//! margin and block masses as means over its queries, in place of one row of numbers per query.
//! A long text's capture of a model of many heads was mostly those rows (SmolLM2's 270 heads:
//! about 40 MB of JSON per 1,000 tokens); a head's summary is K + 6 numbers whatever the length.

use serde::Serialize;

use crate::model::capture::{Capture, HeadCapture};

/// One head's summary over every query of the capture.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeadSummary {
    /// Layer index ℓ.
    pub layer: usize,
    /// Head index.
    pub head: usize,
    /// Mean attention entropy over queries, in bits.
    pub mean_entropy_bits: f64,
    /// Mean off-block mass ε over queries.
    pub mean_off_block_mass: f64,
    /// The smallest finite logit margin m(i) over queries (`None` when no query has one: each
    /// sees no key off its block, +∞, or none in it, −∞).
    pub min_margin: Option<f64>,
    /// Queries that see keys off their block but none in it (margin −∞, which JSON cannot
    /// write): no bias on the block can reach them.
    pub queries_without_block_keys: usize,
    /// Mean block masses over queries, one per block (the order of `block_names`).
    pub block_mass: Vec<f64>,
}

/// Mean of `v` (0 when empty).
fn mean(v: &[f32]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64
}

/// The summary of head `hc` of `cap`: block-mass rows that pool a group of queries weigh by
/// the group's size (the last group of a long text may be short).
pub fn summarise(cap: &Capture, hc: &HeadCapture) -> HeadSummary {
    let k = cap.num_blocks().max(1);
    let (t, stride) = (cap.len(), cap.block_stride.max(1));
    let mut block_mass = vec![0.0f64; cap.num_blocks()];
    let mut weight = 0.0f64;
    for (r, row) in hc.block_mass.chunks_exact(k).enumerate() {
        let w = stride.min(t.saturating_sub(r * stride)).max(1) as f64;
        for (acc, &p) in block_mass.iter_mut().zip(row) {
            *acc += w * f64::from(p);
        }
        weight += w;
    }
    if weight > 0.0 {
        block_mass.iter_mut().for_each(|m| *m /= weight);
    }
    let min_margin = hc
        .margin
        .iter()
        .filter(|m| m.is_finite())
        .map(|&m| f64::from(m))
        .reduce(f64::min);
    HeadSummary {
        layer: hc.layer,
        head: hc.head,
        mean_entropy_bits: mean(&hc.entropy_bits),
        mean_off_block_mass: mean(&hc.off_block_mass),
        min_margin,
        queries_without_block_keys: hc
            .margin
            .iter()
            .filter(|m| **m == f32::NEG_INFINITY)
            .count(),
        block_mass,
    }
}

/// A capture's per-head summaries, with the means over every head the document heads with.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadsOnly {
    /// Mean entropy over queries, heads and layers, in bits (before the rows went).
    pub mean_entropy_bits: f64,
    /// Mean off-block mass over queries, heads and layers.
    pub mean_off_block_mass: f64,
    /// Every head's summary, layer-major.
    pub heads: Vec<HeadSummary>,
}

/// Every head's summary, leaving the capture without its per-query rows (entropy, ε, margin
/// and block masses emptied; the kept attention stays).
pub fn heads_only(cap: &mut Capture) -> HeadsOnly {
    let heads = cap.heads.iter().map(|hc| summarise(cap, hc)).collect();
    let out = HeadsOnly {
        mean_entropy_bits: cap.mean_entropy_bits(None),
        mean_off_block_mass: cap.mean_off_block_mass(None),
        heads,
    };
    for hc in &mut cap.heads {
        for v in [
            &mut hc.entropy_bits,
            &mut hc.off_block_mass,
            &mut hc.margin,
            &mut hc.block_mass,
        ] {
            *v = Vec::new();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dial::DialSetting;

    /// Five queries, block masses pooled in groups of two (rows of 2, 2 and 1 queries): the
    /// last, short group weighs half as much.
    #[test]
    fn pooled_block_mass_rows_weigh_by_their_queries() {
        let hc = HeadCapture {
            layer: 1,
            head: 2,
            attention: Vec::new(),
            block_mass: vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
            off_block_mass: vec![0.0, 0.1, 0.2, 0.3, 0.4],
            entropy_bits: vec![1.0, 1.0, 2.0, 2.0, 4.0],
            margin: vec![f32::INFINITY, 3.0, -1.5, f32::NEG_INFINITY, 2.0],
        };
        let mut cap = Capture {
            ids: vec![0; 5],
            key_blocks: vec![0; 5],
            relevant_blocks: vec![0; 5],
            block_names: vec!["a".into(), "b".into()],
            num_layers: 2,
            num_heads: 3,
            heads: vec![hc],
            logits: Vec::new(),
            dial: DialSetting::default(),
            causal: true,
            windows: Vec::new(),
            layout: None,
            block_stride: 2,
            weak_map: None,
        };
        let got = heads_only(&mut cap);
        let s = &got.heads[0];
        assert_eq!((s.layer, s.head), (1, 2));
        assert!((s.block_mass[0] - 0.8).abs() < 1e-12, "{s:?}");
        assert!((s.block_mass[1] - 0.2).abs() < 1e-12, "{s:?}");
        assert!((s.mean_entropy_bits - 2.0).abs() < 1e-12);
        assert!((s.mean_off_block_mass - 0.2).abs() < 1e-6);
        assert_eq!(
            (s.min_margin, s.queries_without_block_keys),
            (Some(-1.5), 1)
        );
        assert!((got.mean_entropy_bits - 2.0).abs() < 1e-12);
        assert!(cap.heads[0].entropy_bits.is_empty() && cap.heads[0].block_mass.is_empty());
    }
}
