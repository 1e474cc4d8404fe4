//! The audit trail: an append-only log of rule changes whose entries each carry the hash of
//! the one before, and the audit report (JSON, with a self-contained HTML twin) that holds the
//! model and corpus hashes, the dial, every rule with its measured fidelity, and the log.
//! [`verify_report`] recomputes the hashes and the chain and names what was altered.

mod html;
mod log;
mod report;

pub use html::{base64, report_html};
pub use log::{AuditAction, AuditEntry, AuditLog, GENESIS};
pub use report::{
    make_report, read_report, rule_audits, verify_report, AuditReport, RuleAudit, REPORT_VERSION,
};
