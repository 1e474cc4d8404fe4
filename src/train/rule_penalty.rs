//! The rule penalty (SPEC §6 in training): mean −log PF_mass over the rows where a rule fires,
//! in that rule's layers and heads, on any model's attention [B,H,T,T] per layer (our own
//! training and the fine-tune of a pretrained decoder share it).

use candle_core::{Tensor, D};

use crate::rules::check::{Firing, ResolvedRule};

/// The mean over layers of [`rule_layer_term`], over the layers where a rule fires (None when
/// none fires). `firings` holds each window's firings.
pub fn rule_penalty(
    rules: &[ResolvedRule],
    attention: &[Tensor],
    firings: &[Vec<Firing>],
) -> candle_core::Result<Option<Tensor>> {
    let mut acc = Vec::new();
    for (l, a) in attention.iter().enumerate() {
        if let Some(term) = rule_layer_term(rules, l, a, firings)? {
            acc.push(term);
        }
    }
    if acc.is_empty() {
        return Ok(None);
    }
    let k = acc.len() as f64;
    Ok(Some((Tensor::stack(&acc, 0)?.sum_all()? / k)?))
}

/// The rule penalty of layer `layer`'s attention [B,H,T,T]: mean −log PF_mass over the rows
/// where a rule fires, in that rule's heads (None when no rule fires in this layer).
pub fn rule_layer_term(
    rules: &[ResolvedRule],
    layer: usize,
    attention: &Tensor,
    firings: &[Vec<Firing>],
) -> candle_core::Result<Option<Tensor>> {
    let (b, h, t, _) = attention.dims4()?;
    let mut target = vec![0f32; b * h * t * t];
    let mut rows = vec![0f32; b * h * t];
    let mut n = 0usize;
    for (bi, fs) in firings.iter().enumerate().take(b) {
        for f in fs.iter().filter(|f| !f.targets.is_empty()) {
            let Some(rule) = rules.get(f.rule) else {
                continue;
            };
            if !rule.layers.contains(layer) {
                continue;
            }
            for hi in rule.heads.indices(h) {
                let row = (bi * h + hi) * t + f.query;
                if let Some(r) = rows.get_mut(row) {
                    if *r == 0.0 {
                        n += 1;
                    }
                    *r = 1.0;
                }
                for &j in &f.targets {
                    if let Some(c) = target.get_mut(row * t + j) {
                        *c = 1.0;
                    }
                }
            }
        }
    }
    if n == 0 {
        return Ok(None);
    }
    let dev = attention.device();
    let target = Tensor::from_vec(target, (b, h, t, t), dev)?;
    let rows = Tensor::from_vec(rows, (b, h, t), dev)?;
    let pf = (attention * target)?.sum(D::Minus1)?;
    let nll = ((pf + 1e-9)?.log()? * rows)?.sum_all()?.neg()?;
    Ok(Some((nll / n as f64)?))
}
