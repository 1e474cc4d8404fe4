//! Side-by-side comparison for teaching: the same text under two configurations — the current
//! model at two dial settings (λ = 0 against λ = 1), or two checkpoints — captured by the
//! worker and shown next to each other by the studio's Compare panel.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::tokenizer::Tokenizer;
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::capture::{capture, Capture};
use crate::model::dial::DialSetting;

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareSide {
    /// A checkpoint directory, or `None` for the model loaded in the worker.
    pub checkpoint: Option<PathBuf>,
    /// The dial this side is captured under.
    pub dial: DialSetting,
}

impl CompareSide {
    /// The current model under `λ` (mode A, uniform).
    pub fn current_at(lambda: f64) -> Self {
        Self {
            checkpoint: None,
            dial: DialSetting::bias(lambda),
        }
    }

    /// A short description: the model and the dial.
    pub fn label(&self) -> String {
        let model = match &self.checkpoint {
            None => "current model".to_string(),
            Some(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
        };
        format!(
            "{model}, mode {}, λ = {:.2}",
            self.dial.params.mode.label(),
            self.dial.params.lambda
        )
    }
}

/// One side's capture of the text.
#[derive(Clone, Debug)]
pub struct CompareView {
    /// What was captured ([`CompareSide::label`]).
    pub label: String,
    /// The capture.
    pub capture: Capture,
    /// Token strings, one per position.
    pub tokens: Vec<String>,
}

/// Capture `text` with one model under `dial` (truncated to the model's positions).
pub fn capture_side(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    tokenizer: &dyn Tokenizer,
    text: &str,
    side: &CompareSide,
) -> Result<CompareView, String> {
    let mut ids = tokenizer.encode(text);
    ids.truncate(model.dims().max_len);
    if ids.is_empty() {
        return Err(format!(
            "{}: the text is empty after tokenization",
            side.label()
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
