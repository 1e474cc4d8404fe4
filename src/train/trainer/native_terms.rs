//! The loss terms the native pass adds to cross-entropy, as one [`AttentionTerm`]: the
//! off-block group lasso on the attention weights (SPEC §4.1) and the anchor loss on the
//! queries (SPEC §5), each with its gradient.

use std::sync::Mutex;

use crate::model::native::{AttentionTerm, Workspace};
use crate::train::group_lasso::PenaltyHost;

/// The off-block group lasso: factor·Ω summed over (b, h, i), over one partition of the keys
/// or two ([`super::Trainer::penalty_windows`]: each row has groups in one of them).
pub(super) struct Penalty {
    pub(super) hosts: Vec<PenaltyHost>,
    pub(super) eps: f32,
    /// d loss / d Σ Ω: the shard's weight · η·λ / (L · B·H·T).
    pub(super) factor: f64,
    /// Per host, per layer, the gradient's scales kept by [`Penalty::measure`].
    pub(super) scales: Vec<Vec<Vec<f32>>>,
}

impl Penalty {
    /// factor·Σ Ω of every layer's attention, keeping what the gradient needs.
    pub(super) fn measure(&mut self, ws: &Workspace, heads: usize) -> f64 {
        let mut total = 0.0;
        self.scales.resize_with(self.hosts.len(), Vec::new);
        for (host, per_layer) in self.hosts.iter().zip(self.scales.iter_mut()) {
            per_layer.resize_with(ws.layers.len(), Vec::new);
            for (acts, scales) in ws.layers.iter().zip(per_layer.iter_mut()) {
                scales.resize(acts.att.len() / host.t.max(1) * host.k, 0.0);
                total += host.omega_sum_with_scales(&acts.att, heads, self.eps, scales);
            }
        }
        self.factor * total
    }
}

/// The anchor loss: per layer, −log softmax(q·A_lᵀ/√d_h) at each query's relevant block,
/// summed over (b, h, i) and scaled by `factor`.
pub(super) struct Anchors {
    /// Per layer, the anchor keys [H, K, d_h].
    pub(super) keys: Vec<Vec<f32>>,
    /// The relevant block of each query row [B·T] (below K).
    pub(super) relevant: Vec<usize>,
    /// d loss / d Σ: the shard's weight · μ_anc / (L · B·H·T).
    pub(super) factor: f64,
    /// Heads H, blocks K, head width d_h, model width d.
    pub(super) dims: (usize, usize, usize, usize),
    /// Per layer, factor·(softmax − onehot) [B·T·H·K], kept for the queries' gradient.
    pub(super) g: Mutex<Vec<Vec<f32>>>,
}

impl Anchors {
    /// factor·Σ of every layer's loss; the keys' gradient goes into `key_grads` (one [H,K,d_h]
    /// vector per layer, overwritten) and the queries' is kept for the backward pass.
    pub(super) fn measure(&mut self, ws: &Workspace, key_grads: &mut Vec<Vec<f32>>) -> f64 {
        let (h, k, dh, d) = self.dims;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut total = 0.0;
        let mut all_g = Vec::with_capacity(ws.layers.len());
        key_grads.resize_with(ws.layers.len(), Vec::new);
        for ((acts, keys), dk) in ws.layers.iter().zip(&self.keys).zip(key_grads.iter_mut()) {
            dk.clear();
            dk.resize(h * k * dh, 0.0);
            let mut g = vec![0f32; self.relevant.len() * h * k];
            let mut logits = vec![0f32; k];
            for (row, (&r, grow)) in self.relevant.iter().zip(g.chunks_mut(h * k)).enumerate() {
                let qrow = acts.qkv.get(row * 3 * d..row * 3 * d + d).unwrap_or(&[]);
                for (hh, gh) in grow.chunks_mut(k).enumerate() {
                    let q = qrow.get(hh * dh..(hh + 1) * dh).unwrap_or(&[]);
                    let kh = keys.get(hh * k * dh..(hh + 1) * k * dh).unwrap_or(&[]);
                    for (l, key) in logits.iter_mut().zip(kh.chunks(dh)) {
                        *l = q.iter().zip(key).map(|(a, b)| a * b).sum::<f32>() * scale;
                    }
                    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
                    let picked = logits.get(r).copied().unwrap_or(max);
                    total += f64::from(sum.ln() + max - picked);
                    for (j, (gv, l)) in gh.iter_mut().zip(&logits).enumerate() {
                        let p = (l - max).exp() / sum;
                        let y = if j == r { 1.0 } else { 0.0 };
                        *gv = self.factor as f32 * (p - y);
                    }
                    // dA[h, j] += g_j·q/√d_h
                    let dkh = dk
                        .get_mut(hh * k * dh..(hh + 1) * k * dh)
                        .unwrap_or_default();
                    for (gj, dkey) in gh.iter().zip(dkh.chunks_mut(dh)) {
                        for (o, qv) in dkey.iter_mut().zip(q) {
                            *o += gj * qv * scale;
                        }
                    }
                }
            }
            all_g.push(g);
        }
        *self
            .g
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = all_g;
        self.factor * total
    }
}

/// The terms a native step adds, as one [`AttentionTerm`].
pub(super) struct Terms {
    pub(super) penalty: Option<Penalty>,
    pub(super) anchors: Option<Anchors>,
}

impl AttentionTerm for Terms {
    fn add_grad(&self, layer: usize, att: &[f32], heads: usize, out: &mut [f32]) {
        let Some(p) = &self.penalty else { return };
        for (host, per_layer) in p.hosts.iter().zip(&p.scales) {
            if let Some(scales) = per_layer.get(layer) {
                host.add_grad_from_scales(att, heads, scales, p.factor as f32, out);
            }
        }
    }

    fn add_query_grad(&self, layer: usize, dqkv: &mut [f32]) {
        let Some(a) = &self.anchors else { return };
        let (h, k, dh, d) = a.dims;
        let scale = 1.0 / (dh as f32).sqrt();
        let all =
            a.g.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (Some(g), Some(keys)) = (all.get(layer), a.keys.get(layer)) else {
            return;
        };
        // dq[h] += Σ_j g_j·A[h, j]/√d_h
        for (drow, grow) in dqkv.chunks_mut(3 * d).zip(g.chunks(h * k)) {
            for (hh, gh) in grow.chunks(k).enumerate() {
                let kh = keys.get(hh * k * dh..(hh + 1) * k * dh).unwrap_or(&[]);
                let dq = drow.get_mut(hh * dh..(hh + 1) * dh).unwrap_or_default();
                for (gj, key) in gh.iter().zip(kh.chunks(dh)) {
                    for (o, kv) in dq.iter_mut().zip(key) {
                        *o += gj * kv * scale;
                    }
                }
            }
        }
    }
}
