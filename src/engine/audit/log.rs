//! The audit log: an append-only list of rule changes whose entries each carry the hash of
//! the one before, so an edit, removal or insertion after the fact breaks the chain.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::engine::audit::entry_sign::{check_entry, sign_entry};
use crate::engine::audit::time::{iso8601_utc, now_iso8601_utc};
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
    /// When, as ISO 8601 UTC (`2026-11-30T11:20:05Z`); empty in entries of old logs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub time_utc: String,
    /// Seconds since the Unix epoch: only in entries written before times were ISO 8601
    /// (their hash covers this field, so it is kept as it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_unix: Option<u64>,
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
    /// Hex Ed25519 public key of whoever logged the entry (empty when unsigned).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signer: String,
    /// Hex Ed25519 signature of [`hash`](Self::hash) by `signer`: an entry edited and
    /// re-hashed by someone without the key no longer matches it (empty when unsigned).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
}

impl AuditEntry {
    /// The hash this entry should carry.
    pub fn compute_hash(&self) -> String {
        let Some(time_unix) = self.time_unix else {
            let body = serde_json::json!({
                "seq": self.seq,
                "time_utc": self.time_utc,
                "action": self.action,
                "rule_id": self.rule_id,
                "rule_text": self.rule_text,
                "model_sha256": self.model_sha256,
                "corpus_sha256": self.corpus_sha256,
                "prev_hash": self.prev_hash,
            });
            return sha256_hex(body.to_string().as_bytes());
        };
        // An entry of an old log: the body it was hashed with.
        let body = serde_json::json!({
            "seq": self.seq,
            "time_unix": time_unix,
            "action": self.action,
            "rule_id": self.rule_id,
            "rule_text": self.rule_text,
            "model_sha256": self.model_sha256,
            "corpus_sha256": self.corpus_sha256,
            "prev_hash": self.prev_hash,
        });
        sha256_hex(body.to_string().as_bytes())
    }

    /// When, as ISO 8601 UTC (old entries' Unix times converted).
    pub fn time_label(&self) -> String {
        match self.time_unix {
            Some(t) if self.time_utc.is_empty() => iso8601_utc(t),
            _ => self.time_utc.clone(),
        }
    }
}

/// A rule as the log last recorded it.
struct KnownRule {
    id: String,
    text: String,
    /// Switched on or off (`None`: the log never switched it).
    enabled: Option<bool>,
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
        let mut e = AuditEntry {
            seq: self.entries.len() as u64,
            time_utc: now_iso8601_utc(),
            time_unix: None,
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
            signer: String::new(),
            signature: String::new(),
        };
        e.hash = e.compute_hash();
        self.entries.push(e);
    }

    /// Log the difference between two rule lists (by id): additions, edits, removals and
    /// switches. Returns how many entries were added.
    ///
    /// When `before` is empty but the log already records rules (a session restored after a
    /// crash, whose log came back with it), the rules the log shows in force stand in for
    /// `before`: re-applying them logs nothing, only what really differs.
    pub fn record_change(
        &mut self,
        before: &[RuleView],
        after: &[RuleView],
        model_sha256: &str,
        corpus_sha256: &str,
    ) -> usize {
        let before: Vec<KnownRule> = if before.is_empty() {
            self.in_force()
        } else {
            before
                .iter()
                .map(|r| KnownRule {
                    id: r.id.clone(),
                    text: r.text.clone(),
                    enabled: Some(r.enabled),
                })
                .collect()
        };
        let n0 = self.entries.len();
        let log = |s: &mut Self, action, id: &str, text: &str| {
            s.append(action, id, text, model_sha256, corpus_sha256);
        };
        for r in after {
            let Some(b) = before.iter().find(|b| b.id == r.id) else {
                log(self, AuditAction::Added, &r.id, &r.text);
                continue;
            };
            if b.text != r.text {
                log(self, AuditAction::Edited, &r.id, &r.text);
            }
            if b.enabled.is_some_and(|on| on != r.enabled) {
                let action = if r.enabled {
                    AuditAction::Enabled
                } else {
                    AuditAction::Disabled
                };
                log(self, action, &r.id, &r.text);
            }
        }
        for b in &before {
            if !after.iter().any(|r| r.id == b.id) {
                log(self, AuditAction::Removed, &b.id, &b.text);
            }
        }
        self.entries.len() - n0
    }

    /// The rules the log shows in force, replayed from its entries, in the order they were
    /// added; whether each is switched on is known only once the log has switched it.
    fn in_force(&self) -> Vec<KnownRule> {
        let mut rules: Vec<KnownRule> = Vec::new();
        for e in &self.entries {
            let pos = rules.iter().position(|r| r.id == e.rule_id);
            match (e.action, pos) {
                (AuditAction::Removed, Some(k)) => {
                    rules.remove(k);
                }
                (AuditAction::Removed, None) => {}
                (_, None) => rules.push(KnownRule {
                    id: e.rule_id.clone(),
                    text: e.rule_text.clone(),
                    enabled: None,
                }),
                (action, Some(k)) => {
                    if let Some(r) = rules.get_mut(k) {
                        r.text = e.rule_text.clone();
                        match action {
                            AuditAction::Enabled => r.enabled = Some(true),
                            AuditAction::Disabled => r.enabled = Some(false),
                            _ => {}
                        }
                    }
                }
            }
        }
        rules
    }

    /// Sign the entries from position `from` on (those just logged) with `key`. Earlier
    /// entries are never signed after the fact: one whose signature was removed stays
    /// unsigned, and a report names it. Returns how many were signed.
    pub fn sign_from(&mut self, from: usize, key: &SigningKey) -> usize {
        let mut n = 0;
        let new = self.entries.get_mut(from..).unwrap_or_default();
        for e in new.iter_mut().filter(|e| e.signature.is_empty()) {
            let (signer, signature) = sign_entry(&e.hash, key);
            e.signer = signer;
            e.signature = signature;
            n += 1;
        }
        n
    }

    /// The first entry whose signature does not match its hash (with how many later ones
    /// fail too: re-hashing an entry changes the links, so the hashes, of all after it), or a
    /// malformed signature; empty when every signed entry matches. Unsigned entries pass here
    /// (logs of old sessions have them); a report says whether it allows them.
    pub fn signature_problems(&self) -> Vec<String> {
        let failing: Vec<(usize, &AuditEntry, String)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(k, e)| {
                check_entry(&e.hash, &e.signer, &e.signature)
                    .err()
                    .map(|why| (k, e, why))
            })
            .collect();
        let Some((k, e, why)) = failing.first() else {
            return Vec::new();
        };
        let later = match failing.len() - 1 {
            0 => String::new(),
            n => format!(
                " ({n} later entr{} fail too)",
                if n == 1 { "y" } else { "ies" }
            ),
        };
        vec![format!(
            "log entry {k} ({:?} {}): {why}{later}",
            e.action, e.rule_id
        )]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, text: &str, enabled: bool) -> RuleView {
        RuleView {
            id: id.into(),
            description: String::new(),
            enabled,
            text: text.into(),
            trigger_label: String::new(),
            target_label: String::new(),
            layers: String::new(),
            heads: String::new(),
        }
    }

    #[test]
    fn a_restored_log_is_not_re_logged_when_its_rules_are_applied_again() {
        let (a, b) = (rule("a", "rule a", true), rule("b", "rule b", true));
        let mut log = AuditLog::default();
        assert_eq!(log.record_change(&[], &[a.clone(), b.clone()], "m", "c"), 2);
        let b_off = rule("b", "rule b", false);
        let before = [a.clone(), b.clone()];
        assert_eq!(
            log.record_change(&before, &[a.clone(), b_off.clone()], "m", "c"),
            1
        );
        // A crash, then restore: the log comes back, nothing is in force yet, and the same
        // rules are applied again: nothing to log.
        let mut restored = log.clone();
        let same = [a.clone(), b_off.clone()];
        assert_eq!(restored.record_change(&[], &same, "m", "c"), 0);
        assert_eq!(restored, log);
        // What differs from the log's own record still is logged.
        let a2 = rule("a", "rule a2", true);
        assert_eq!(restored.record_change(&[], &[a2, b.clone()], "m", "c"), 2);
        let actions: Vec<_> = restored.entries.iter().skip(3).map(|e| e.action).collect();
        assert_eq!(actions, [AuditAction::Edited, AuditAction::Enabled]);
        assert!(restored.verify().is_empty());
        // A fresh log logs every rule as added.
        assert_eq!(AuditLog::default().record_change(&[], &same, "m", "c"), 2);
    }

    #[test]
    fn entries_carry_iso8601_times_and_old_unix_entries_still_verify() {
        let mut log = AuditLog::default();
        log.append(AuditAction::Added, "a", "rule a", "m", "c");
        let e = &log.entries[0];
        assert!(e.time_unix.is_none());
        assert_eq!(e.time_utc.len(), "2026-11-30T11:20:05Z".len());
        assert!(e.time_utc.ends_with('Z') && e.time_utc.contains('T'));
        // An entry as version 1 wrote it (hash computed over `time_unix`).
        let mut old = e.clone();
        old.time_utc = String::new();
        old.time_unix = Some(1_796_037_605);
        old.hash = old.compute_hash();
        let json = serde_json::to_string(&old).unwrap_or_default();
        assert!(json.contains("\"time_unix\":1796037605") && !json.contains("time_utc"));
        let back: AuditEntry = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.compute_hash(), back.hash);
        assert_eq!(back.time_label(), "2026-11-30T11:20:05Z");
    }
}
