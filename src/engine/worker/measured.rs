//! What the worker's results are measured on: the identity of the model it holds, its block
//! map, the text and the dial, as one [`MeasuredOn`] attached to every derived result.

use super::Worker;
use crate::engine::protocol::{blocks_key, MeasuredOn};

impl Worker {
    /// The model, blocks, text and dial a result computed now is measured on.
    pub(super) fn measured_on(&self) -> MeasuredOn {
        let blocks = self
            .slot
            .current()
            .map(|(_, b, _)| blocks_key(&b.names, &b.block_sizes()))
            .unwrap_or(0);
        MeasuredOn {
            model: self.model_id.clone(),
            blocks,
            text: self.text.clone(),
            dial: self.dial.clone(),
            preview: false,
        }
    }

    /// A new model is in place: remember its identity (its SHA-256, or `fallback` when it has
    /// none) and return it for its summary.
    pub(super) fn new_model_id(&mut self, sha256: Option<&str>, fallback: String) -> String {
        self.model_id = sha256.map_or(fallback, str::to_string);
        self.model_id.clone()
    }
}
