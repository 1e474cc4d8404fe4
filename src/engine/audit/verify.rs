//! Verifying a report, check by check: its own hash and the log's chain (accidental damage,
//! and which entry was touched), the signature against the public key it carries (deliberate
//! edits: the hashes can be re-computed by anyone, the signature only by the key's holder),
//! optionally that the signer is a trusted key, and that the model and corpus on disk still
//! have the hashes the report names. Each problem says which check failed.
//!
//! The report's paths are followed into regular files only, each under a size limit: a report
//! whose model path leads to `/dev/zero`, a FIFO or a folder of devices fails at once, naming
//! it, instead of hashing forever.

use std::path::{Path, PathBuf};

use crate::engine::audit::keys::{parse_public_key, to_hex, TrustedKeys};
use crate::engine::audit::page::page_figures;
use crate::engine::audit::report::{figure_digests, AuditReport, FigureDigest};
use crate::engine::audit::sign::{check_signature, SignatureCheck};
use crate::engine::corpus::sha256_hex;
use crate::files::{check_regular, read_bytes, MAX_CONFIG_BYTES, MAX_CORPUS_BYTES};

/// Largest model file hashed (a generous bound for a local model; a device is refused before).
const MAX_MODEL_BYTES: u64 = 1 << 40;

/// The files a model folder's hash may read ([`crate::hf::model_sha256`]).
const MODEL_FILES: [&str; 10] = [
    "config.json",
    "blocks.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
];

/// Check a report (hashes, chain, signature, model and corpus); see [`verify_report_with`].
/// Empty means intact.
pub fn verify_report(report: &AuditReport, base: &Path) -> Vec<String> {
    verify_report_with(report, &[base], None)
}

/// Check a report: its own hash and the log's chain; its signature against the public key it
/// carries (and, with `trusted`, that this key is one of them); then that the model and corpus
/// files still have the hashes it names. A relative path is looked for under each of `bases` in
/// turn (the CLI: the current folder, then the report's): the first that exists is hashed, so
/// a report moved with its model, or read from another folder, still finds it, and the hash
/// decides whether it is the same. Returns the problems, each naming the check that failed;
/// empty means intact.
///
/// A signature that does not match is named only when the hashes are consistent: then the
/// report was changed and its hashes re-computed by someone without the key. When a hash
/// already fails, that problem says what changed, and the report fails either way.
pub fn verify_report_with(
    report: &AuditReport,
    bases: &[&Path],
    trusted: Option<&TrustedKeys>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if report.compute_hash() != report.report_sha256 {
        problems.push(
            "the report's contents were altered after it was written (its SHA-256 does not match)"
                .to_string(),
        );
    }
    problems.extend(report.log.verify());
    let hashes_ok = problems.is_empty();
    if let Some(p) = signature_problem(report, trusted, hashes_ok) {
        problems.push(p);
    }
    problems.extend(report.log.signature_problems());
    problems.extend(log_signer_problems(report, trusted));
    if let Some(p) = &report.model_path {
        problems.extend(match locate(p, bases, "model") {
            Ok(p) => model_problem(&p, &report.model_sha256),
            Err(e) => Some(e),
        });
    }
    if let Some(p) = &report.corpus_path {
        problems.extend(match locate(p, bases, "corpus") {
            Ok(p) => corpus_problem(&p, &report.corpus_sha256),
            Err(e) => Some(e),
        });
    }
    problems
}

/// Where a report's path leads: itself when absolute, else the first of `bases` under which
/// something by that name exists (a link counts: the checks that follow name what it is).
fn locate(path: &Path, bases: &[&Path], what: &str) -> Result<PathBuf, String> {
    if path.is_absolute() || bases.is_empty() {
        return Ok(path.to_path_buf());
    }
    let mut tried: Vec<PathBuf> = Vec::new();
    for b in bases {
        let candidate = b.join(path);
        if !tried.contains(&candidate) {
            tried.push(candidate);
        }
    }
    if let Some(found) = tried.iter().find(|c| std::fs::symlink_metadata(c).is_ok()) {
        return Ok(found.clone());
    }
    if tried.len() == 1 {
        return Ok(tried.swap_remove(0));
    }
    let places: Vec<String> = tried.iter().map(|t| t.display().to_string()).collect();
    Err(format!(
        "the {what} named by the report ({}) is not found: looked for {}",
        path.display(),
        places.join(" and ")
    ))
}

/// Log entries without a signature (a version 3 report signs each as it is logged: a missing
/// one was removed), and, with `trusted`, entries signed by a key not among them.
fn log_signer_problems(report: &AuditReport, trusted: Option<&TrustedKeys>) -> Vec<String> {
    let mut problems = Vec::new();
    for (k, e) in report.log.entries.iter().enumerate() {
        if e.signature.is_empty() {
            if report.version >= 3 {
                problems.push(format!(
                    "log entry {k} ({:?} {}) is not signed: its signature was removed, or it was \
                     logged before entries were signed (every entry of a version {} report is \
                     signed as it is logged)",
                    e.action, e.rule_id, report.version
                ));
            }
            continue;
        }
        let Some(t) = trusted else { continue };
        if let Ok(key) = parse_public_key(&e.signer) {
            if !t.contains(&key) {
                problems.push(format!(
                    "log entry {k} ({:?} {}) was signed by {}, which is not among the {} key(s) in {}",
                    e.action,
                    e.rule_id,
                    e.signer,
                    t.keys.len(),
                    t.source.display()
                ));
            }
        }
    }
    problems
}

/// What is wrong with the signature, if anything (`hashes_ok`: the hashes passed).
fn signature_problem(
    report: &AuditReport,
    trusted: Option<&TrustedKeys>,
    hashes_ok: bool,
) -> Option<String> {
    match check_signature(report) {
        SignatureCheck::Valid(key) => match trusted {
            Some(t) if !t.contains(&key) => Some(format!(
                "the signer is not a trusted key: the report was signed by {}, which is not among the {} key(s) in {}",
                to_hex(key.as_bytes()),
                t.keys.len(),
                t.source.display()
            )),
            _ => None,
        },
        SignatureCheck::Unsigned if report.version < 2 => Some(format!(
            "the report is not signed: an old-format report (version {}, written before reports were \
             signed); anyone can re-compute its hashes, so nothing proves it unchanged; export it again to sign it",
            report.version
        )),
        SignatureCheck::Unsigned => Some(
            "the report is not signed: its public key and signature were removed".to_string(),
        ),
        SignatureCheck::Malformed(m) => Some(format!("the signature cannot be checked: {m}")),
        SignatureCheck::Mismatch => hashes_ok.then(|| {
            "signature does not match: the report was changed after it was signed \
             (its hashes were re-computed to hide the change)"
                .to_string()
        }),
    }
}

/// Refuse a model path that is not a regular file or a folder whose model files are regular.
fn model_files_regular(path: &Path) -> Result<(), String> {
    let named = |e: crate::files::FileError| format!("the model named by the report: {e}");
    let meta = std::fs::metadata(path).ok();
    if !meta.as_ref().is_some_and(|m| m.is_dir()) {
        return check_regular(path, MAX_MODEL_BYTES, "a model")
            .map(|_| ())
            .map_err(named);
    }
    let mut files: Vec<PathBuf> = MODEL_FILES.iter().map(|n| path.join(n)).collect();
    if let Ok(entries) = std::fs::read_dir(path) {
        // GGUF files, and the shards of split weights (safetensors or pytorch_model.bin).
        files.extend(entries.flatten().map(|e| e.path()).filter(|p| {
            p.extension().is_some_and(|x| {
                ["gguf", "safetensors", "bin"]
                    .iter()
                    .any(|k| x.eq_ignore_ascii_case(k))
            })
        }));
    }
    for f in files
        .iter()
        .filter(|f| std::fs::symlink_metadata(f).is_ok())
    {
        // A tokenizer's JSON files may be large; configs and indexes are small.
        let vocabulary = f.ends_with("tokenizer.json") || f.ends_with("vocab.json");
        let limit = if f.extension().is_some_and(|x| x == "json") && !vocabulary {
            MAX_CONFIG_BYTES
        } else {
            MAX_MODEL_BYTES
        };
        check_regular(f, limit, "a model file").map_err(named)?;
    }
    Ok(())
}

/// The model's hash against the report's, or why it could not be checked.
fn model_problem(path: &Path, expected: &str) -> Option<String> {
    if let Err(e) = model_files_regular(path) {
        return Some(e);
    }
    match crate::hf::model_sha256(path) {
        Ok(h) if h == expected => None,
        Ok(h) => Some(format!(
            "the model at {} has changed: SHA-256 {h}, the report says {expected}",
            path.display()
        )),
        Err(e) => Some(format!("the model could not be re-hashed: {e:#}")),
    }
}

/// The corpus's hash against the report's, or why it could not be checked.
fn corpus_problem(path: &Path, expected: &str) -> Option<String> {
    match read_bytes(path, MAX_CORPUS_BYTES, "a corpus") {
        Ok(bytes) => {
            let h = sha256_hex(&bytes);
            (h != expected).then(|| {
                format!(
                    "the corpus at {} has changed: SHA-256 {h}, the report says {expected}",
                    path.display()
                )
            })
        }
        Err(e) => Some(format!("the corpus named by the report: {e}")),
    }
}

/// The HTML twin of a signed report against what the report renders: the JSON is what the
/// signature covers, and the HTML page is what an auditor reads, so an edit to the page alone
/// (a FAIL made a pass, a number changed) passed verification. The page is rendered again
/// from the verified JSON, with the figures read back from the page ([`page_figures`]), and
/// compared byte for byte (so the figures section holds figures and nothing else: a style,
/// script or caption placed there is a difference); then each figure's
/// title and picture against the digests the JSON signs (version 4 on). Ok: a note on what
/// was checked; Err: the problem.
pub fn html_twin_check(report: &AuditReport, html: &str) -> Result<String, String> {
    let figures = page_figures(html);
    let expected = crate::engine::audit::report_html(report, &figures);
    if html != expected {
        let at = (html.bytes().zip(expected.bytes()))
            .position(|(a, b)| a != b)
            .unwrap_or(html.len().min(expected.len()));
        return Err(format!(
            "the HTML twin does not read as its signed JSON renders (first difference at byte \
             {at}: \"…{}…\"): the page was edited after it was written, or written by another \
             version of Localist Studio; read the JSON, or export the report again",
            context_at(html, at.saturating_sub(30))
        ));
    }
    if report.version < 4 {
        return Ok(match figures.len() {
            0 => String::new(),
            n => format!(
                " (its {n} figure(s) are pictures only; a report before version 4 does not \
                 sign what they show)"
            ),
        });
    }
    let found = figure_digests(&figures);
    if found != report.figures {
        let k = (found.iter().zip(&report.figures))
            .position(|(a, b)| a != b)
            .unwrap_or(found.len().min(report.figures.len()));
        return Err(format!(
            "the page's figures are not the ones the report signs: {} on the page, {} signed; \
             figure {} differs (on the page: {}; signed: {}): the page was edited after it was \
             written; read the JSON, or export the report again",
            found.len(),
            report.figures.len(),
            k + 1,
            describe(found.get(k)),
            describe(report.figures.get(k))
        ));
    }
    Ok(match figures.len() {
        0 => String::new(),
        n => format!(" ({n} figure(s) as signed)"),
    })
}

/// Sixty characters of `html` from byte `at` (or the nearest character boundary after it).
fn context_at(html: &str, at: usize) -> String {
    let start = (at..=html.len())
        .find(|&i| html.is_char_boundary(i))
        .unwrap_or(html.len());
    html.get(start..).unwrap_or("").chars().take(60).collect()
}

/// A figure digest in words.
fn describe(d: Option<&FigureDigest>) -> String {
    d.map_or_else(
        || "none".into(),
        |d| format!("\"{}\", SHA-256 {}", d.title, d.png_sha256),
    )
}
