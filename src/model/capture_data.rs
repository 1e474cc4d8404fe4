//! The capture's data: what one forward pass shows about attention per layer and head
//! (SPEC §2, §7), as plain values, with the masks and empty heads the capture paths fill in.
//! The dense capture is [`crate::model::capture`], the streamed one
//! [`crate::model::capture_stream`]; both fill these types.

use serde::{Deserialize, Serialize};

use crate::analysis::dial::{DialMode, DialParams};
use crate::analysis::metrics::argmax;
use crate::model::backend::AttentionModel;
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::capture_layout::AttentionLayout;
use crate::model::dial::DialSetting;

/// One head of one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadCapture {
    /// Layer index ℓ.
    pub layer: usize,
    /// Head index.
    pub head: usize,
    /// Attention weights a_ij, row-major T×T.
    pub attention: Vec<f32>,
    /// Block masses p_k(i), row-major T×K.
    pub block_mass: Vec<f32>,
    /// Off-block mass ε(i) per query.
    pub off_block_mass: Vec<f32>,
    /// Row entropy in bits per query.
    pub entropy_bits: Vec<f32>,
    /// Logit margin m(i) per query (+∞ when nothing is off-block).
    pub margin: Vec<f32>,
}

/// Everything captured for one sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    /// Token ids.
    pub ids: Vec<u32>,
    /// b(x_j) per key.
    pub key_blocks: Vec<usize>,
    /// r(i) per query.
    pub relevant_blocks: Vec<usize>,
    /// Block names (index = block).
    pub block_names: Vec<String>,
    /// Layers L.
    pub num_layers: usize,
    /// Heads per layer H.
    pub num_heads: usize,
    /// Heads, layer-major (index ℓ·H + h).
    pub heads: Vec<HeadCapture>,
    /// Next-token logits at every position, row-major T×V.
    pub logits: Vec<f32>,
    /// The dial the capture was taken under.
    pub dial: DialSetting,
    /// Causal attention (a decoder); false for a bidirectional encoder.
    #[serde(default = "yes")]
    pub causal: bool,
    /// Per layer, the distance |i − j| within which a local layer sees its keys (ModernBERT's
    /// local layers; [`crate::model::backend::AttentionModel::layer_windows`]); None or absent:
    /// every key its mask allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Option<usize>>,
    /// Where each head's kept attention lies when it is not the whole T×T table at full
    /// resolution (a streamed capture of a long text: [`crate::model::capture_stream`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<AttentionLayout>,
    /// Queries per row of [`HeadCapture::block_mass`] (1: one row per query; more: the mean
    /// over groups of this many queries, for long texts).
    #[serde(default = "one")]
    pub block_stride: usize,
    /// Why ε and PF of this capture say little of what the model does, when the block map
    /// puts nearly all of its text in one block ([`crate::model::blocks::BlockMap::weak_on`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weak_map: Option<String>,
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

impl Capture {
    /// Sequence length T.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for an empty capture.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The window of layer `layer` when it is a local one ([`Capture::windows`]).
    pub fn window(&self, layer: usize) -> Option<usize> {
        self.windows.get(layer).copied().flatten()
    }

    /// Whether cell (r, c) of layer `layer`'s heatmap ([`Capture::attention_layout`]'s grid)
    /// holds no weight the model can give: past the causal mask or outside a local window.
    pub fn masked(&self, layer: usize, r: usize, c: usize) -> bool {
        self.attention_layout()
            .masked(r, c, (self.causal, self.window(layer)))
    }

    /// Where each head's kept attention lies ([`AttentionLayout::full`] unless streamed).
    pub fn attention_layout(&self) -> AttentionLayout {
        self.layout
            .unwrap_or_else(|| AttentionLayout::full(self.len()))
    }

    /// Rows of each head's block masses.
    pub fn block_rows(&self) -> usize {
        self.len().div_ceil(self.block_stride.max(1))
    }

    /// Row `i` of head `hc`'s attention over keys 0..T, when the capture holds it at full
    /// resolution (a dense capture, or a streamed one whose kept rows and keys include it).
    pub fn dense_row<'a>(&self, hc: &'a HeadCapture, i: usize) -> Option<&'a [f32]> {
        let t = self.len();
        let lay = self.attention_layout();
        if lay.stride != 1 || lay.keys.0 != 0 || i < lay.rows.0 || i >= lay.rows.1 {
            return None;
        }
        let w = lay.keys.1;
        let r = i - lay.rows.0;
        let row = hc.attention.get(r * w..(r + 1) * w)?;
        Some(if w == t { row } else { row.get(..w)? })
    }

    /// Number of blocks K.
    pub fn num_blocks(&self) -> usize {
        self.block_names.len()
    }

    /// The head capture of layer `l`, head `h`.
    pub fn head(&self, l: usize, h: usize) -> Option<&HeadCapture> {
        self.heads.get(l * self.num_heads + h)
    }

    fn mean_over(&self, layer: Option<usize>, f: impl Fn(&HeadCapture) -> &[f32]) -> f64 {
        let (mut sum, mut n) = (0.0f64, 0usize);
        for hc in self
            .heads
            .iter()
            .filter(|hc| layer.is_none_or(|l| l == hc.layer))
        {
            for &v in f(hc) {
                sum += v as f64;
                n += 1;
            }
        }
        if n == 0 {
            0.0
        } else {
            sum / n as f64
        }
    }

    /// Mean attention entropy in bits over queries, heads and layers (or one layer).
    pub fn mean_entropy_bits(&self, layer: Option<usize>) -> f64 {
        self.mean_over(layer, |h| &h.entropy_bits)
    }

    /// Mean off-block mass ε (or one layer's).
    pub fn mean_off_block_mass(&self, layer: Option<usize>) -> f64 {
        self.mean_over(layer, |h| &h.off_block_mass)
    }

    /// Pointer fidelity against explicit targets: per query the earlier position it must point
    /// to. Returns (mean PF_mass, mean PF_top1) over queries with a target, heads and layers,
    /// or `None` when no query has a target.
    pub fn pointer_fidelity(&self, targets: &[Option<usize>]) -> Option<(f64, f64)> {
        let t = self.len();
        let (mut mass, mut top1, mut n) = (0.0f64, 0.0f64, 0usize);
        for hc in &self.heads {
            for (i, target) in targets.iter().enumerate().take(t) {
                let (Some(j), Some(row)) = (target, self.dense_row(hc, i)) else {
                    continue;
                };
                let Some(&aj) = row.get(*j) else { continue };
                mass += aj as f64;
                let seen = if self.causal { row.get(..=i) } else { None };
                let best = argmax(seen.unwrap_or(row));
                top1 += f64::from(u8::from(best == Some(*j)));
                n += 1;
            }
        }
        (n > 0).then(|| (mass / n as f64, top1 / n as f64))
    }
}

/// The masks of one sequence for this model (bidirectional for an encoder).
pub fn masks_for(model: &dyn AttentionModel, blocks: &BlockMap, ids: &[u32]) -> SequenceMasks {
    blocks.masks_with(ids, model.dims().causal)
}

/// Empty head captures of a `layers` × `heads` model for `t` tokens and `k` blocks: summaries
/// sized, block masses of ⌈t / block_stride⌉ rows, and a grid of `layout` for each kept head.
pub(crate) fn empty_heads(
    (layers, heads): (usize, usize),
    t: usize,
    k: usize,
    layout: &AttentionLayout,
    keep: &[bool],
    block_stride: usize,
) -> Vec<HeadCapture> {
    let (gr, gc) = layout.grid();
    (0..layers * heads)
        .map(|idx| HeadCapture {
            layer: idx / heads.max(1),
            head: idx % heads.max(1),
            attention: if keep.get(idx).copied().unwrap_or(false) {
                vec![0.0; gr * gc]
            } else {
                Vec::new()
            },
            block_mass: vec![0.0; t.div_ceil(block_stride.max(1)) * k],
            off_block_mass: vec![0.0; t],
            entropy_bits: vec![0.0; t],
            margin: vec![0.0; t],
        })
        .collect()
}

/// The temperature a layer's row is softmax(z/τ) under, or `None` for mode B's mixture (whose
/// row is not one softmax, so its entropy is taken term by term).
pub(crate) fn softmax_tau(p: Option<&DialParams>) -> Option<f64> {
    p.and_then(|p| {
        (p.mode != DialMode::Mixture || p.lambda <= 0.0)
            .then(|| crate::analysis::dial::temperature(p))
    })
}
