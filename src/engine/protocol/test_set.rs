//! The auditor's test set: which sentences the rules' pass/fail is measured over, and the
//! result as the Audit panel shows it. A pass/fail on the one sentence in the text box says
//! little (most rules do not fire on it); over the model's held-out windows or a file of
//! sentences it says how often each rule fires and how often it meets its target.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::measured::MeasuredOn;
use crate::engine::jobs::rules::RuleEval;

/// What the rules are measured over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestSet {
    /// Windows of the model's held-out text: the held-out tenth of a checkpoint's (or the
    /// run's) training corpus, or for a pretrained model the bundled Shakespeare.
    #[default]
    HeldOut,
    /// A text file of sentences, one per line (empty lines skipped).
    Sentences(PathBuf),
}

impl TestSet {
    /// A short description: "held-out windows" or the file's name.
    pub fn label(&self) -> String {
        match self {
            Self::HeldOut => "the model's held-out windows".into(),
            Self::Sentences(p) => format!("the sentences of {}", p.display()),
        }
    }
}

/// Each rule's pass/fail over a test set, under the dial and rules in force.
#[derive(Clone, Debug, PartialEq)]
pub struct TestSetAudit {
    /// The test set asked for.
    pub set: TestSet,
    /// What was measured, in words ("32 held-out windows of 64 tokens").
    pub described: String,
    /// Sentences (or windows) measured.
    pub sentences: usize,
    /// One row per rule, in file order: sentences it fired on (`windows_fired`), pass rate
    /// and mean PF over them.
    pub rows: Vec<RuleEval>,
    /// [`rules_key`](super::rules_key) of the rules in force it was measured under.
    pub rules: u64,
    /// The model, blocks and dial it was measured on (the text box's text plays no part).
    pub on: MeasuredOn,
}
