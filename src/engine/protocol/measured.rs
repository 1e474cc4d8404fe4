//! What a result was measured on: the model, its block map, the text and the dial. The worker
//! attaches one to every derived result it sends (rule reports, λ*, theory curves, comparisons,
//! generations); the studio compares it with what it shows now and never presents a result
//! measured on something else as current.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::model::dial::DialSetting;

/// The model, block map, text and dial a result was measured on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasuredOn {
    /// The model's identity: its SHA-256 when it was opened from a file or folder, else a
    /// name for the unsaved training run (`run 3`).
    pub model: String,
    /// [`blocks_key`] of the block map.
    pub blocks: u64,
    /// The text.
    pub text: String,
    /// The dial.
    pub dial: DialSetting,
    /// Measured with bf16 weight products: a preview of a dial change, whose exact capture
    /// follows (not a difference in [`differs`](Self::differs): it is of the same model, text
    /// and dial).
    #[serde(default)]
    pub preview: bool,
}

/// Which parts of [`MeasuredOn`] a view depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depends {
    /// The model only (held-out metrics).
    Model,
    /// The model, its blocks and the text (λ*, theory curves: they sweep the dial themselves).
    Text,
    /// Everything, the dial included (rule reports, generations).
    Dial,
    /// The model, its blocks and the dial, not the text (results over a test set of their
    /// own: the auditor's pass/fail).
    DialNotText,
}

impl MeasuredOn {
    /// What differs between this measurement and `now`, among the parts `depends` names:
    /// "model", "block map", "text" or "dial"; `None` when the result is current.
    pub fn differs(&self, now: &Self, depends: Depends) -> Option<&'static str> {
        if self.model != now.model {
            return Some("model");
        }
        if depends == Depends::Model {
            return None;
        }
        if self.blocks != now.blocks {
            return Some("block map");
        }
        if depends != Depends::DialNotText && self.text != now.text {
            return Some("text");
        }
        if matches!(depends, Depends::Dial | Depends::DialNotText) && self.dial != now.dial {
            return Some("dial");
        }
        None
    }
}

/// A short key of a block map as both sides see it: its block names and the vocabulary tokens
/// in each (what [`crate::engine::protocol::ModelSummary`] and `Event::BlocksChanged` carry).
pub fn blocks_key(names: &[String], sizes: &[usize]) -> u64 {
    let mut h = DefaultHasher::new();
    names.hash(&mut h);
    sizes.hash(&mut h);
    h.finish()
}

/// A short key of the rules in force: the rule file's text and the ids switched off (what the
/// studio sent and the worker holds), so a result measured under other rules is known stale.
pub fn rules_key(text: &str, off: &[String]) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    off.hash(&mut h);
    h.finish()
}
