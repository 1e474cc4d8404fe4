//! The two sides of a comparison, as the Compare panel asks for them and gets them back.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::capture::Capture;
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
