//! What a fine-tune trains: full changes of named projections, or low-rank adapters on them.

use serde::{Deserialize, Serialize};

use crate::hf::trainable::{Projection, TrainableDecoder};

/// How a projection is changed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKind {
    /// A full matrix Δ [out, in] added to the weight.
    Full,
    /// A low-rank change (α/r)·B·A with A [r, in] and B [out, r] (LoRA; B starts at zero, so
    /// the fine-tune starts at the base model).
    Lora {
        /// Rank r.
        rank: usize,
        /// Scale numerator α.
        alpha: f64,
    },
}

/// Which projections of which layers train, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterSpec {
    /// How each target changes.
    pub change: ChangeKind,
    /// (layer, projection) pairs, sorted.
    pub targets: Vec<(usize, Projection)>,
}

/// Largest LoRA rank accepted.
pub const MAX_RANK: usize = 1024;

impl AdapterSpec {
    /// Parse `--adapt` for a decoder of `layers` layers:
    /// - `qk`: full changes of the query and key projections of every layer;
    /// - `lora:R`: rank-R adapters on the query and key projections of every layer;
    /// - `lora:R:NAMES` or `NAMES`: rank-R adapters, or full changes, of the named projections,
    ///   NAMES being comma-separated `attn_q`, `k_proj`, `v`, ... (every layer) or `blk.3.attn_q`
    ///   (one layer; `blk.last.attn_q` for the last).
    pub fn parse(text: &str, layers: usize) -> Result<Self, String> {
        let text = text.trim();
        let (change, names) = if text == "qk" {
            (ChangeKind::Full, "attn_q,attn_k")
        } else if let Some(rest) = text.strip_prefix("lora:") {
            let (rank, names) = rest.split_once(':').unwrap_or((rest, "attn_q,attn_k"));
            let rank: usize = rank
                .parse()
                .map_err(|_| format!("--adapt {text}: the rank '{rank}' is not a whole number"))?;
            if rank == 0 || rank > MAX_RANK {
                return Err(format!("--adapt {text}: the rank must be 1 to {MAX_RANK}"));
            }
            (
                ChangeKind::Lora {
                    rank,
                    alpha: rank as f64,
                },
                names,
            )
        } else {
            (ChangeKind::Full, text)
        };
        let mut targets = Vec::new();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            targets.extend(parse_target(name, layers).map_err(|e| format!("--adapt {text}: {e}"))?);
        }
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            return Err(format!("--adapt {text}: names no projection"));
        }
        Ok(Self { change, targets })
    }

    /// An error naming the first target `model` does not have (GPT-2 has no `ffn_gate`).
    pub fn check_on(&self, model: &dyn TrainableDecoder) -> Result<(), String> {
        let mut seen = Vec::new();
        for &(l, p) in &self.targets {
            if seen.contains(&p) {
                continue;
            }
            seen.push(p);
            model
                .projection(l, p)
                .map_err(|e| format!("--adapt: {e}"))?;
        }
        Ok(())
    }

    /// Short description ("LoRA rank 8 on attn_q, attn_k of 30 layers").
    pub fn describe(&self) -> String {
        let mut projections: Vec<Projection> = self.targets.iter().map(|t| t.1).collect();
        projections.sort();
        projections.dedup();
        let names: Vec<&str> = projections.iter().map(|p| p.gguf_name()).collect();
        let mut layers: Vec<usize> = self.targets.iter().map(|t| t.0).collect();
        layers.dedup();
        let what = match self.change {
            ChangeKind::Full => "full changes".to_string(),
            ChangeKind::Lora { rank, .. } => format!("LoRA rank {rank}"),
        };
        format!(
            "{what} of {} in {} layer{}",
            names.join(", "),
            layers.len(),
            if layers.len() == 1 { "" } else { "s" }
        )
    }
}

/// The targets one name gives: `attn_q` (every layer) or `blk.L.attn_q` /
/// `model.layers.L.self_attn.q_proj` (one layer).
fn parse_target(name: &str, layers: usize) -> Result<Vec<(usize, Projection)>, String> {
    let known = "attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down (or q_proj, \
                 k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)";
    let layered = name
        .strip_prefix("blk.")
        .or_else(|| name.strip_prefix("model.layers."));
    let Some(rest) = layered else {
        let p = Projection::parse(name)
            .ok_or_else(|| format!("unknown projection '{name}'; known: {known}"))?;
        return Ok((0..layers).map(|l| (l, p)).collect());
    };
    let (l, p) = rest
        .split_once('.')
        .ok_or_else(|| format!("'{name}': expected blk.LAYER.NAME"))?;
    let l: usize = if l == "last" {
        layers.saturating_sub(1)
    } else {
        l.parse()
            .map_err(|_| format!("'{name}': the layer '{l}' is not a number (or 'last')"))?
    };
    if l >= layers {
        return Err(format!(
            "'{name}': layer {l} does not exist (the model has {layers})"
        ));
    }
    let p = p
        .rsplit('.')
        .find_map(Projection::parse)
        .ok_or_else(|| format!("'{name}': unknown projection; known: {known}"))?;
    Ok(vec![(l, p)])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_are_named() {
        let s = AdapterSpec::parse("qk", 3).unwrap();
        assert_eq!(s.change, ChangeKind::Full);
        assert_eq!(s.targets.len(), 6);
        let s = AdapterSpec::parse("lora:4", 2).unwrap();
        assert_eq!(
            s.change,
            ChangeKind::Lora {
                rank: 4,
                alpha: 4.0
            }
        );
        assert_eq!(
            s.targets,
            vec![
                (0, Projection::Q),
                (0, Projection::K),
                (1, Projection::Q),
                (1, Projection::K)
            ]
        );
        let s = AdapterSpec::parse("lora:2:blk.1.attn_v,o_proj", 2).unwrap();
        assert_eq!(
            s.targets,
            vec![(0, Projection::O), (1, Projection::V), (1, Projection::O)]
        );
        let s = AdapterSpec::parse("lora:1:blk.last.attn_output", 30).unwrap();
        assert_eq!(s.targets, vec![(29, Projection::O)]);
        let s = AdapterSpec::parse("model.layers.0.self_attn.k_proj", 2).unwrap();
        assert_eq!(s.targets, vec![(0, Projection::K)]);
        for (bad, says) in [
            ("lora:0", "rank"),
            ("lora:x", "rank"),
            ("attn_z", "unknown projection 'attn_z'"),
            ("blk.9.attn_q", "layer 9 does not exist"),
            ("", "names no projection"),
        ] {
            let e = AdapterSpec::parse(bad, 2).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
