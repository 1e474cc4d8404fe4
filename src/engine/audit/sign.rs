//! Signing a report: an Ed25519 signature over a canonical serialization of everything in it
//! but the signature itself (the model's and corpus's hashes, the measured numbers, the rules,
//! the log, the report's own hash and the public key), so that re-computing the hashes after
//! an edit, which anyone can do, no longer passes: only the holder of the key can re-sign.
//!
//! Canonical form: the report as JSON with object keys sorted at every level and no
//! whitespace, prefixed by a domain tag. Numbers are written by serde_json (shortest
//! round-trip form), and reports are parsed with `float_roundtrip`, so a report read back
//! serializes to the same bytes it was signed as.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::Value;

use crate::engine::audit::keys::{from_hex, parse_public_key, to_hex};
use crate::engine::audit::report::AuditReport;

/// Prefixed to the canonical report before signing, so a signature on anything else (another
/// format signed with the same key) can never pass for a report's.
const DOMAIN: &[u8] = b"localist-audit-report/signature/v1\n";

/// What a signature check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Signed, and the signature matches the embedded public key.
    Valid(VerifyingKey),
    /// No signature (an old-format report, or the signature was removed).
    Unsigned,
    /// The public key or signature field is not well formed; says which and why.
    Malformed(String),
    /// Well formed, but the signature does not match the contents.
    Mismatch,
}

/// `value` written with its object keys sorted, without whitespace.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (k, key) in keys.into_iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (k, v) in items.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The bytes a report's signature covers: the domain tag, then the canonical JSON of the
/// report without its `signature` field.
pub fn signed_bytes(report: &AuditReport) -> Vec<u8> {
    let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("signature");
    }
    let mut text = String::new();
    canonical(&value, &mut text);
    let mut bytes = DOMAIN.to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// Sign a report with `key`: set its public key, seal its hash, then sign.
pub fn sign_report(report: AuditReport, key: &SigningKey) -> AuditReport {
    let mut report = AuditReport {
        public_key: to_hex(key.verifying_key().as_bytes()),
        signature: String::new(),
        ..report
    }
    .seal();
    report.signature = to_hex(&key.sign(&signed_bytes(&report)).to_bytes());
    report
}

/// Check a report's signature against the public key it carries.
pub fn check_signature(report: &AuditReport) -> SignatureCheck {
    if report.signature.is_empty() && report.public_key.is_empty() {
        return SignatureCheck::Unsigned;
    }
    let key = match parse_public_key(&report.public_key) {
        Ok(k) => k,
        Err(e) => return SignatureCheck::Malformed(format!("the report's public key: {e}")),
    };
    let bytes = match from_hex(report.signature.trim()) {
        Ok(b) => b,
        Err(e) => return SignatureCheck::Malformed(format!("the report's signature: {e}")),
    };
    let Ok(arr) = <[u8; 64]>::try_from(bytes.as_slice()) else {
        return SignatureCheck::Malformed(format!(
            "the report's signature is {} bytes long; an Ed25519 signature has 64 (128 hex digits)",
            bytes.len()
        ));
    };
    let signature = Signature::from_bytes(&arr);
    match key.verify(&signed_bytes(report), &signature) {
        Ok(()) => SignatureCheck::Valid(key),
        Err(_) => SignatureCheck::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v: Value =
            serde_json::from_str(r#"{"b":[{"z":1,"a":2.5}],"a":"x\"y"}"#).unwrap_or(Value::Null);
        let mut s = String::new();
        canonical(&v, &mut s);
        assert_eq!(s, r#"{"a":"x\"y","b":[{"a":2.5,"z":1}]}"#);
    }
}
