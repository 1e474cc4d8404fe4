//! Signing one audit-log entry: an Ed25519 signature over its hash (which covers its contents
//! and its link to the entry before), so an entry edited and re-hashed by someone without the
//! key no longer matches.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};

use crate::engine::audit::keys::{from_hex, parse_public_key, to_hex};

/// Prefixed to a log entry's hash before signing it.
const ENTRY_DOMAIN: &[u8] = b"localist-audit-log/entry/v1\n";

/// The signer (hex public key) and signature (hex) of a log entry whose hash is `hash`.
pub fn sign_entry(hash: &str, key: &SigningKey) -> (String, String) {
    let mut bytes = ENTRY_DOMAIN.to_vec();
    bytes.extend_from_slice(hash.as_bytes());
    (
        to_hex(key.verifying_key().as_bytes()),
        to_hex(&key.sign(&bytes).to_bytes()),
    )
}

/// Check the signature of a log entry whose hash is `hash` against its signer: `Ok` when it matches or the entry is
/// unsigned, else why not.
pub fn check_entry(hash: &str, signer: &str, signature: &str) -> Result<(), String> {
    if signature.is_empty() && signer.is_empty() {
        return Ok(());
    }
    let key = parse_public_key(signer).map_err(|m| format!("its signer's key: {m}"))?;
    let bytes = from_hex(signature.trim()).map_err(|m| format!("its signature: {m}"))?;
    let arr = <[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "its signature is {} bytes long; an Ed25519 signature has 64",
            bytes.len()
        )
    })?;
    let mut signed = ENTRY_DOMAIN.to_vec();
    signed.extend_from_slice(hash.as_bytes());
    key.verify(&signed, &Signature::from_bytes(&arr))
        .map_err(|_| {
            "its signature does not match: it was changed and re-hashed after it was logged (or an \
         entry before it was)"
                .to_string()
        })
}
