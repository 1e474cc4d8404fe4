//! The audit trail: an append-only log of rule changes whose entries each carry the hash of
//! the one before, and the audit report (JSON, with a self-contained HTML twin) that holds the
//! model and corpus hashes, the dial, every rule with its measured fidelity, and the log,
//! signed with the user's Ed25519 key ([`keys`], [`sign`]). [`verify_report_with`] checks the
//! hashes, the chain, the signature (and the signer) and the files, and names what failed.

mod entry_sign;
mod html;
pub mod keys;
mod log;
mod page;
mod report;
pub mod sign;
mod time;
mod verify;

pub use html::{base64, report_html};
pub use keys::{user_public_key_hex, user_signing_key, KeyError, TrustedKeys};
pub use log::{AuditAction, AuditEntry, AuditLog, GENESIS};
pub use report::{
    figure_digests, make_report, read_report, rule_audits, AuditReport, FigureDigest, RuleAudit,
    TestSetRow, TestSetSection, REPORT_VERSION,
};
pub use sign::{check_signature, sign_report, signed_bytes, SignatureCheck};
pub use time::{iso8601_utc, now_iso8601_utc};
pub use verify::{html_twin_check, verify_report, verify_report_with};
