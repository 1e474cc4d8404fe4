//! Non-finite values at run time: a model whose weights are all finite can still overflow in
//! f32 on some text (weights of 1e20, an extreme temperature, a huge rule bias), and softmax
//! then turns the overflow into NaN attention. Metrics computed from such rows are meaningless
//! (NaN entropy once read as 0 showed a broken model as perfectly localist), so a capture or an
//! evaluation refuses them and names where they first appear: the layer and head whose
//! attention first holds a NaN or ±∞, or the logits when every attention row is finite.

/// Where a forward pass first produced NaN or ±∞.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NonFinite {
    /// An attention weight of one layer and head.
    #[error(
        "the attention of layer {layer}, head {head} is not finite ({value} at query {query}, \
         key {key}; every earlier layer was finite): the model overflows f32 on this text \
         (weights, activations, the temperature or a rule bias too large)"
    )]
    Attention {
        /// Layer ℓ (0-based).
        layer: usize,
        /// Head (0-based).
        head: usize,
        /// Query row i.
        query: usize,
        /// Key column j.
        key: usize,
        /// The value found (NaN or ±∞).
        value: f32,
    },
    /// A next-token logit, with every layer's attention finite.
    #[error(
        "the logits are not finite ({value} at position {position}, token {token}) although \
         every layer's attention is finite: the overflow is after the last attention (an MLP, \
         the final norm or the output head)"
    )]
    Logits {
        /// Position in the sequence.
        position: usize,
        /// Token id (the logit's column).
        token: usize,
        /// The value found.
        value: f32,
    },
    /// The mean cross-entropy of an evaluation batch.
    #[error(
        "the loss is not finite ({value}) although every layer's attention is finite: the \
         logits overflow (an MLP, the final norm or the output head)"
    )]
    Loss {
        /// The value found.
        value: f64,
    },
}

/// The first non-finite weight of one head's attention rows ([T][T]), as (query, key, value).
pub fn first_non_finite(rows: &[Vec<f32>]) -> Option<(usize, usize, f32)> {
    rows.iter().enumerate().find_map(|(i, row)| {
        row.iter()
            .position(|a| !a.is_finite())
            .and_then(|j| row.get(j).map(|&v| (i, j, v)))
    })
}

/// Check one layer's attention, heads × rows × keys: the first head holding a NaN or ±∞.
pub fn check_attention(layer: usize, heads: &[Vec<Vec<f32>>]) -> Result<(), NonFinite> {
    for (head, rows) in heads.iter().enumerate() {
        if let Some((query, key, value)) = first_non_finite(rows) {
            return Err(NonFinite::Attention {
                layer,
                head,
                query,
                key,
                value,
            });
        }
    }
    Ok(())
}

/// Check next-token logits, row-major T×`vocab`: the first NaN or ±∞.
pub fn check_logits(logits: &[f32], vocab: usize) -> Result<(), NonFinite> {
    match logits.iter().position(|z| !z.is_finite()) {
        None => Ok(()),
        Some(at) => Err(NonFinite::Logits {
            position: at / vocab.max(1),
            token: at % vocab.max(1),
            value: logits.get(at).copied().unwrap_or(f32::NAN),
        }),
    }
}

/// Check an evaluation's mean cross-entropy.
pub fn check_loss(value: f64) -> Result<(), NonFinite> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(NonFinite::Loss { value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_bad_head_and_cell() {
        let good = vec![vec![1.0f32, 0.0], vec![0.5, 0.5]];
        let bad = vec![vec![1.0f32, 0.0], vec![0.5, f32::NAN]];
        assert_eq!(check_attention(3, &[good.clone(), good.clone()]), Ok(()));
        match check_attention(3, &[good, bad]) {
            Err(NonFinite::Attention {
                layer: 3,
                head: 1,
                query: 1,
                key: 1,
                value,
            }) => assert!(value.is_nan()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn logits_and_loss() {
        assert_eq!(check_logits(&[0.0, 1.0, 2.0, 3.0], 2), Ok(()));
        assert_eq!(
            check_logits(&[0.0, 1.0, 2.0, f32::INFINITY], 2),
            Err(NonFinite::Logits {
                position: 1,
                token: 1,
                value: f32::INFINITY
            })
        );
        assert!(check_loss(f64::NAN).is_err());
        assert!(check_loss(2.5).is_ok());
        let msg = check_loss(f64::INFINITY).err().map(|e| e.to_string());
        assert!(msg.is_some_and(|m| m.contains("loss is not finite")));
    }
}
