//! A short continuation of a prompt as the worker sends it back: each generated token with
//! the most probable candidates of the distribution it was chosen from.

use serde::{Deserialize, Serialize};

use super::measured::MeasuredOn;
use crate::model::dial::DialSetting;

/// One candidate of a next-token distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Token id.
    pub id: u32,
    /// Its text.
    pub text: String,
    /// Probability under the dial.
    pub prob: f32,
}

/// One generated token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenStep {
    /// The chosen token (the most probable).
    pub id: u32,
    /// Its text.
    pub text: String,
    /// The most probable candidates, most probable first.
    pub top: Vec<Candidate>,
    /// Entropy of the whole distribution, bits.
    pub entropy_bits: f64,
}

/// A short continuation of a prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The prompt's text (as the tokenizer gives it back).
    pub prompt: String,
    /// The dial it was generated under.
    pub dial: DialSetting,
    /// Rules in force (ids of those switched on).
    pub rules: Vec<String>,
    /// The tokens, in order.
    pub steps: Vec<GenStep>,
    /// Milliseconds per token (the prompt's forward included; a decoder with a KV cache then
    /// runs one position per token, unless rules are in force).
    pub ms_per_token: f64,
    /// The model, blocks, text and dial it was generated on.
    #[serde(default)]
    pub measured_on: MeasuredOn,
}

impl Generation {
    /// The prompt followed by the generated text.
    pub fn full_text(&self) -> String {
        let mut s = self.prompt.clone();
        for st in &self.steps {
            s.push_str(&st.text);
        }
        s
    }
}
