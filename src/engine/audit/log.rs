//! The audit log: an append-only list of rule changes whose entries each carry the hash of
//! the one before, so an edit, removal or insertion after the fact breaks the chain.

use serde::{Deserialize, Serialize};

use crate::engine::corpus::sha256_hex;
use crate::engine::protocol::RuleView;

/// The hash a first entry points back to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened to a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A rule appeared.
    Added,
    /// A rule's text changed.
    Edited,
    /// A rule was taken out.
    Removed,
    /// A rule was switched on.
    Enabled,
    /// A rule was switched off.
    Disabled,
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Seconds since the Unix epoch.
    pub time_unix: u64,
    /// What happened.
    pub action: AuditAction,
    /// The rule's id.
    pub rule_id: String,
    /// The rule's text after the change (before it, for removals).
    pub rule_text: String,
    /// SHA-256 of the model checkpoint the rule ran against ("unsaved" when it had none).
    pub model_sha256: String,
    /// SHA-256 of the model's training corpus ("unknown" when not recorded).
    pub corpus_sha256: String,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 of this entry's other fields and `prev_hash`.
    pub hash: String,
}

impl AuditEntry {
    /// The hash this entry should carry.
    pub fn compute_hash(&self) -> String {
        let body = serde_json::json!({
            "seq": self.seq,
            "time_unix": self.time_unix,
            "action": self.action,
            "rule_id": self.rule_id,
            "rule_text": self.rule_text,
            "model_sha256": self.model_sha256,
            "corpus_sha256": self.corpus_sha256,
            "prev_hash": self.prev_hash,
        });
        sha256_hex(body.to_string().as_bytes())
    }
}

/// The log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLog {
    /// Entries, oldest first.
    pub entries: Vec<AuditEntry>,
}

impl AuditLog {
    /// Append an entry, chained to the last one.
    pub fn append(
        &mut self,
        action: AuditAction,
        rule_id: &str,
        rule_text: &str,
        model_sha256: &str,
        corpus_sha256: &str,
    ) {
        let time_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut e = AuditEntry {
            seq: self.entries.len() as u64,
            time_unix,
            action,
            rule_id: rule_id.into(),
            rule_text: rule_text.into(),
            model_sha256: model_sha256.into(),
            corpus_sha256: corpus_sha256.into(),
            prev_hash: self
                .entries
                .last()
                .map(|e| e.hash.clone())
                .unwrap_or_else(|| GENESIS.into()),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        self.entries.push(e);
    }

    /// Log the difference between two rule lists (by id): additions, edits, removals and
    /// switches. Returns how many entries were added.
    pub fn record_change(
        &mut self,
        before: &[RuleView],
        after: &[RuleView],
        model_sha256: &str,
        corpus_sha256: &str,
    ) -> usize {
        let n0 = self.entries.len();
        for r in after {
            match before.iter().find(|b| b.id == r.id) {
                None => self.append(
                    AuditAction::Added,
                    &r.id,
                    &r.text,
                    model_sha256,
                    corpus_sha256,
                ),
                Some(b) => {
                    if b.text != r.text {
                        self.append(
                            AuditAction::Edited,
                            &r.id,
                            &r.text,
                            model_sha256,
                            corpus_sha256,
                        );
                    }
                    if b.enabled != r.enabled {
                        let action = if r.enabled {
                            AuditAction::Enabled
                        } else {
                            AuditAction::Disabled
                        };
                        self.append(action, &r.id, &r.text, model_sha256, corpus_sha256);
                    }
                }
            }
        }
        for b in before {
            if !after.iter().any(|r| r.id == b.id) {
                self.append(
                    AuditAction::Removed,
                    &b.id,
                    &b.text,
                    model_sha256,
                    corpus_sha256,
                );
            }
        }
        self.entries.len() - n0
    }

    /// Check every hash and link; each problem names its entry.
    pub fn verify(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut prev = GENESIS.to_string();
        for (k, e) in self.entries.iter().enumerate() {
            if e.seq != k as u64 {
                problems.push(format!(
                    "log entry {k}: sequence number is {} (entries removed or reordered)",
                    e.seq
                ));
            }
            if e.prev_hash != prev {
                problems.push(format!(
                    "log entry {k} ({:?} {}): its link to entry {} does not match (an entry before it was altered, removed or inserted)",
                    e.action,
                    e.rule_id,
                    k.saturating_sub(1)
                ));
            }
            if e.compute_hash() != e.hash {
                problems.push(format!(
                    "log entry {k} ({:?} {}): its contents were altered after it was written",
                    e.action, e.rule_id
                ));
            }
            prev = e.hash.clone();
        }
        problems
    }
}
