//! Side-by-side comparison for teaching: the same text under two configurations — the current
//! model at two dial settings (λ = 0 against λ = 1), or two checkpoints — captured by the
//! worker and shown next to each other by the studio's Compare panel.

use crate::data::tokenizer::Tokenizer;
pub use crate::engine::protocol::{CompareSide, CompareView};
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::capture::capture;

/// Capture `text` with one model under `dial` (truncated to `limit` tokens and the model's
/// positions).
pub fn capture_side(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    tokenizer: &dyn Tokenizer,
    text: &str,
    side: &CompareSide,
    limit: usize,
) -> Result<CompareView, String> {
    let mut ids = tokenizer.encode(text);
    ids.truncate(model.dims().max_len.min(limit));
    if ids.is_empty() {
        return Err(format!(
            "{}: {}",
            side.label(),
            crate::engine::jobs::capture::no_tokens("the text", text, tokenizer, None)
        ));
    }
    let tokens = ids.iter().map(|&i| tokenizer.token_str(i)).collect();
    let cap = capture(model, blocks, &ids, &side.dial)
        .map_err(|e| format!("{}: capture failed: {e}", side.label()))?;
    Ok(CompareView {
        label: side.label(),
        capture: cap,
        tokens,
    })
}
