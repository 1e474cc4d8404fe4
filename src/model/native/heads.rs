//! One attention head of a view forward over feature-major activations, shared by our
//! transformer's ([`crate::model::native::infer`]) and the LLaMA family's
//! ([`crate::hf::gguf_llama`]) native passes: the scores q·kᵀ/√d_h under one layer's bias (the
//! dial's additive bias and temperature, mode B's mixture, the rules' per-head bias), the
//! softmax over each row's visible keys, and the head's output (attention·v)ᵀ.

use crate::model::fused::attention::biased_softmax_rows;
use crate::model::native::gemm::{matmul, View, ViewMut};
use crate::model::native::NativeError;

/// One layer's bias for n query rows over kt keys (n = kt = T for a whole sequence), as host
/// data.
#[derive(Clone, Debug)]
pub struct HostBias {
    /// Additive bias [n, kt] (−∞ on invisible keys).
    pub additive: Vec<f32>,
    /// Softmax temperature τ.
    pub tau: f32,
    /// Mode B: λ and the local-only bias [n, kt].
    pub mixture: Option<(f32, Vec<f32>)>,
    /// Rules: a per-head bias [H, n, kt] added before τ.
    pub extra: Option<Vec<f32>>,
}

/// Scratch of one head over T positions.
#[derive(Debug)]
pub(crate) struct HeadScratch {
    raw: Vec<f32>,
    bias: Vec<f32>,
    zrow: Vec<f32>,
    local: Vec<f32>,
}

impl HeadScratch {
    /// Scratch for T positions.
    pub(crate) fn new(t: usize) -> Self {
        Self::rows(t, t)
    }

    /// Scratch for up to n query rows over up to kt keys.
    pub(crate) fn rows(n: usize, kt: usize) -> Self {
        Self {
            raw: vec![0.0; n * kt],
            bias: vec![0.0; n * kt],
            zrow: vec![0.0; kt],
            local: vec![0.0; n * kt],
        }
    }

    /// Whether it holds n query rows over kt keys.
    pub(crate) fn fits(&self, n: usize, kt: usize) -> bool {
        self.raw.len() >= n * kt && self.zrow.len() >= kt
    }
}

/// A head's scratch kept on each thread between passes when it holds at most this many cells
/// per table (n·kt: 512 × 512, three tables of 1 MiB); a larger one is made for the call.
pub(crate) const KEEP_HEAD_CELLS: usize = 512 * 512;

thread_local! {
    /// This thread's kept head scratch (the view passes' heads and a long text's chunk parts).
    static KEPT_SCRATCH: std::cell::RefCell<Option<HeadScratch>> =
        const { std::cell::RefCell::new(None) };
}

/// `f` on this thread's kept head scratch for n rows over kt keys: reused when it fits, else
/// made, and kept when it holds at most `keep_cells` cells a table. (`f` must not come back
/// here on the same thread: the heads' products run on their own thread, `gemm`'s
/// `Parallelism::None`.)
pub(crate) fn with_kept_scratch<R>(
    (n, kt): (usize, usize),
    keep_cells: usize,
    f: impl FnOnce(&mut HeadScratch) -> R,
) -> R {
    KEPT_SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some(s) = slot.as_mut().filter(|s| s.fits(n, kt)) {
            return f(s);
        }
        let mut s = HeadScratch::rows(n, kt);
        if n * kt > keep_cells {
            return f(&mut s);
        }
        f(slot.insert(s))
    })
}

/// One head's operands, feature-major: the queries [d_h, n], keys [d_h, kt] and values
/// as views of their rows (n = kt = T for a whole sequence).
pub(crate) struct HeadViews<'a> {
    /// Queries, read as [n, d_h] (a transposed view).
    pub q: View<'a>,
    /// Keys [d_h, kt].
    pub k: View<'a>,
    /// Values, in either layout (which also sets the output's).
    pub v: Values<'a>,
    /// Gemma 2's soft cap on the scaled scores (`cap · tanh(s / cap)`, before the bias).
    pub softcap: Option<f32>,
}

/// A head's values, and so the layout of its output.
pub(crate) enum Values<'a> {
    /// [d_h, kt], feature-major: the output (attention·v)ᵀ [d_h, n] is v·attentionᵀ, whose
    /// product reads the attention across its rows. Cheap for short rows (64 keys: 85
    /// GFLOP/s on one Zen 4 thread, against 101 the other way) with nothing to transpose.
    Features(View<'a>),
    /// [kt, d_h], position-major: the output attention·v [n, d_h]. For long rows (a long
    /// text's chunks of 128 queries over up to 2,048 keys) v·attentionᵀ ran at 31 GFLOP/s
    /// against 108 this way: gemm packs the attention along its rows instead of across.
    Positions(View<'a>),
    /// Nothing reads this head's output (the last layer of a pass without logits): attention·v
    /// is not computed, and the output is left as it was.
    Unread,
}

/// Head `hh` of n query rows over kt keys (`(t, t)` for a whole sequence of T positions):
/// scores z = q·kᵀ/√d_h + bias (+ rules) into `zh` [n, kt], attention into `ah` [n, kt], and
/// its output into `y` ([d_h, n] or [n, d_h], as [`Values`] says).
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend(
    views: HeadViews<'_>,
    hh: usize,
    (n, kt): (usize, usize),
    bias: &HostBias,
    s: &mut HeadScratch,
    ah: &mut [f32],
    zh: &mut [f32],
    y: ViewMut<'_>,
) -> Result<(), NativeError> {
    let rows = bias.head_rows(hh, n, (0, n), kt)?;
    attend_rows(views, (n, kt), &rows, s, ah, zh, y)
}

/// Some query rows of one head's bias, borrowed from a [`HostBias`] ([`HostBias::head_rows`]).
pub(crate) struct HeadBias<'a> {
    /// Additive bias [n, kt].
    additive: &'a [f32],
    tau: f32,
    /// Mode B: λ and the local-only bias [n, kt].
    mixture: Option<(f32, &'a [f32])>,
    /// This head's rule bias [n, kt].
    extra: Option<&'a [f32]>,
}

impl HostBias {
    /// Rows `i0..i0 + n` of head `hh` over kt keys, of a bias over `rows` query rows.
    pub(crate) fn head_rows(
        &self,
        hh: usize,
        rows: usize,
        (i0, n): (usize, usize),
        kt: usize,
    ) -> Result<HeadBias<'_>, NativeError> {
        fn cut(v: &[f32], at: usize, (n, kt): (usize, usize)) -> Result<&[f32], NativeError> {
            v.get(at * kt..(at + n) * kt)
                .ok_or_else(|| NativeError::Shape("a bias smaller than its rows".into()))
        }
        Ok(HeadBias {
            additive: cut(&self.additive, i0, (n, kt))?,
            tau: self.tau,
            mixture: match &self.mixture {
                Some((lam, local)) => Some((*lam, cut(local, i0, (n, kt))?)),
                None => None,
            },
            extra: self
                .extra
                .as_deref()
                .and_then(|e| cut(e, hh * rows + i0, (n, kt)).ok()),
        })
    }
}

/// One head's n query rows over kt keys under `bias` (its rows): [`attend`]'s work.
pub(crate) fn attend_rows(
    views: HeadViews<'_>,
    (n, kt): (usize, usize),
    bias: &HeadBias<'_>,
    s: &mut HeadScratch,
    ah: &mut [f32],
    zh: &mut [f32],
    y: ViewMut<'_>,
) -> Result<(), NativeError> {
    let scale = 1.0 / (views.q.cols() as f32).sqrt();
    let cells = n * kt;
    let raw = s
        .raw
        .get_mut(..cells)
        .ok_or_else(|| NativeError::Shape("head scratch smaller than its rows".into()))?;
    matmul(ViewMut::full(raw, n, kt), views.q, views.k, false)?;
    if let Some(cap) = views.softcap {
        // Capped where the rows scale them: raw·scale becomes cap·tanh(raw·scale / cap).
        raw.iter_mut()
            .for_each(|r| *r = cap * (*r * scale / cap).tanh() / scale);
    }
    let extra = bias.extra;
    // The bias of this head: the layer's own, or with the rules' added into scratch.
    let with_extra = |base: &'_ [f32], out: &'_ mut Vec<f32>| -> bool {
        let Some(e) = extra else { return false };
        out.iter_mut()
            .zip(base)
            .zip(e)
            .for_each(|((o, a), x)| *o = a + x);
        true
    };
    let base = if with_extra(bias.additive, &mut s.bias) {
        &s.bias[..]
    } else {
        bias.additive
    };
    let rows = Rows {
        t: kt,
        scale,
        tau: bias.tau,
    };
    let raw = s.raw.get(..cells).unwrap_or_default();
    rows.softmax(raw, base, &mut s.zrow, Some(zh), ah);
    if let Some((lam, local)) = bias.mixture {
        let mut mixed = vec![0f32; cells];
        let local = if with_extra(local, &mut s.local) {
            &s.local[..]
        } else {
            local
        };
        rows.softmax(raw, local, &mut s.zrow, None, &mut mixed);
        for (a, m) in ah.iter_mut().zip(&mixed) {
            *a = *a * (1.0 - lam) + m * lam;
        }
    }
    match views.v {
        Values::Features(v) => matmul(y, v, View::full(ah, n, kt).t(), false),
        Values::Positions(v) => matmul(y, View::full(ah, n, kt), v, false),
        Values::Unread => Ok(()),
    }
}

/// Rows of `t` scores (one per key) under one head's scale and temperature.
struct Rows {
    t: usize,
    scale: f32,
    tau: f32,
}

impl Rows {
    /// softmax((raw·scale + bias)/τ) row by row into `out`, each row over its keys up to the
    /// last one its bias leaves visible (a causal row i: keys 0..=i, rounded up to whole
    /// vectors); later keys get weight 0, as the full softmax gives them (exp(−∞) = 0), without
    /// an exp each. `z`, when given, receives the scores raw·scale + bias (before τ).
    fn softmax(
        &self,
        raw: &[f32],
        bias: &[f32],
        zrow: &mut [f32],
        mut z: Option<&mut [f32]>,
        out: &mut [f32],
    ) {
        let t = self.t.max(1);
        let rows = raw.chunks(t).zip(bias.chunks(t)).zip(out.chunks_mut(t));
        for (i, ((r, bv), o)) in rows.enumerate() {
            let last = last_visible(bv);
            // Whole 16-lane groups (the extra keys are −∞ too, so they add exp(−∞) = 0).
            let vis = last.map_or(0, |j| (j + 1).next_multiple_of(16).min(t));
            let zr = z.as_deref_mut().and_then(|z| z.get_mut(i * t..(i + 1) * t));
            if let Some(zr) = zr {
                let z_tail = zr.get_mut(vis..).unwrap_or_default();
                let r_tail = r.get(vis..).unwrap_or_default();
                let b_tail = bv.get(vis..).unwrap_or_default();
                scaled_scores(z_tail, r_tail, b_tail, self.scale);
                if self.tau == 1.0 {
                    // softmax's own scratch is then z itself.
                    self.row(r, bv, vis, zr, o);
                    continue;
                }
                scaled_scores(zr, r.get(..vis).unwrap_or_default(), bv, self.scale);
            }
            self.row(r, bv, vis, zrow, o);
        }
    }

    /// One row's softmax over its first `vis` keys (`scratch` receives (raw·scale + bias)/τ
    /// there); the rest of `out` is 0.
    fn row(&self, r: &[f32], bv: &[f32], vis: usize, scratch: &mut [f32], out: &mut [f32]) {
        let (head, tail) = out.split_at_mut(vis.min(out.len()));
        tail.fill(0.0);
        let parts = (r.get(..vis), bv.get(..vis), scratch.get_mut(..vis));
        if let (true, (Some(r), Some(bv), Some(z))) = (vis > 0, parts) {
            biased_softmax_rows(r, bv, vis, self.scale, self.tau, z, head);
        }
    }
}

crate::model::fused::simd::simd_dispatch! {
    /// The last key of a bias row that is not −∞ (None when every key is).
    fn last_visible => last_visible_any(bv: &[f32]) -> Option<usize>
}

/// [`last_visible`]'s body: whole groups of 16 keys from the end tested at once (a causal row
/// of 64 keys has up to 63 invisible ones after its last visible key), then the last group
/// key by key.
#[inline(always)]
fn last_visible_any(bv: &[f32]) -> Option<usize> {
    let mut end = bv.len();
    while let Some(group) = end.checked_sub(16).and_then(|s| bv.get(s..end)) {
        let seen = group
            .iter()
            .fold(false, |any, x| any | (*x != f32::NEG_INFINITY));
        if seen {
            break;
        }
        end -= 16;
    }
    bv.get(..end)?.iter().rposition(|x| *x != f32::NEG_INFINITY)
}

crate::model::fused::simd::simd_dispatch! {
    /// z = raw·scale + bias, key by key.
    fn scaled_scores => scaled_scores_any(z: &mut [f32], raw: &[f32], bias: &[f32], scale: f32)
}

#[inline(always)]
fn scaled_scores_any(z: &mut [f32], raw: &[f32], bias: &[f32], scale: f32) {
    for ((zo, rv), b) in z.iter_mut().zip(raw).zip(bias) {
        *zo = rv * scale + b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last visible key is the one a plain scan from the end finds, in rows of every
    /// length around the 16-key groups, with NaN counted as visible.
    #[test]
    fn last_visible_is_the_last_key_that_is_not_minus_infinity() {
        let inf = f32::NEG_INFINITY;
        for n in [0usize, 1, 15, 16, 17, 33, 64] {
            for last in (0..n).map(Some).chain([None]) {
                let mut row = vec![inf; n];
                if let Some(j) = last {
                    row.iter_mut().take(j + 1).for_each(|x| *x = -0.5);
                    row[j] = if j % 3 == 0 { f32::NAN } else { 0.25 };
                }
                let plain = row.iter().rposition(|x| *x != inf);
                assert_eq!(last_visible(&row), plain, "n {n}, last {last:?}");
                assert_eq!(plain, last);
            }
        }
        // A visible key before a gap of invisible ones.
        let mut row = vec![inf; 40];
        row[2] = 1.0;
        assert_eq!(last_visible(&row), Some(2));
    }
}
