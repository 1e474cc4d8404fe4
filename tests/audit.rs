//! The signed audit trail through the real binary: a signed report verifies; an edit whose
//! hashes are re-computed, a swapped model with its hash updated, a report signed by another
//! key (with --key) and a report whose model path leads to /dev/zero each fail, naming the
//! check; the key file is private (0600) and an exposed one is refused. Every test keeps its
//! key in a temporary config folder (`LOCALIST_CONFIG_DIR`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_fails_with, stderr};

use ed25519_dalek::SigningKey;
use localist::engine::audit::keys::{read_signing_key, to_hex};
use localist::engine::audit::{sign_report, AuditReport};

fn localist(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_localist"))
        .args(args)
        .env("CANDLE_NUM_THREADS", "1")
        .env("LOCALIST_CONFIG_DIR", config)
        .output()
        .unwrap()
}

/// A copy of tiny-clinical, its signed report (JSON twin) and the config folder with the key.
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    ck: PathBuf,
    config: PathBuf,
    json: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let ck = dir.join("ck");
    std::fs::create_dir_all(&ck).unwrap();
    for e in std::fs::read_dir(common::sample("tiny-clinical")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), ck.join(e.file_name())).unwrap();
    }
    let config = dir.join("config");
    let out = dir.join("report.html");
    let rules = common::root().join("assets/rules/clinical_payments.rules");
    let o = localist(
        &config,
        &[
            "audit",
            "report",
            "-c",
            ck.to_str().unwrap(),
            "-r",
            rules.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    Fixture {
        json: out.with_extension("json"),
        _tmp: tmp,
        dir,
        ck,
        config,
    }
}

fn read(path: &Path) -> AuditReport {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(f: &Fixture, name: &str, report: &AuditReport) -> PathBuf {
    let p = f.dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(report).unwrap()).unwrap();
    p
}

/// Re-compute every hash the way the tool does: each log entry's, the chain, the report's.
fn rehash(mut r: AuditReport) -> AuditReport {
    let mut prev = localist::engine::audit::GENESIS.to_string();
    for e in &mut r.log.entries {
        e.prev_hash = prev.clone();
        e.hash = e.compute_hash();
        prev = e.hash.clone();
    }
    r.seal()
}

/// The HTML page is what an auditor reads, and it was not covered: a FAIL written as a pass
/// in the page alone verified as intact. The page is now rendered again from the signed JSON
/// and compared; without a page beside it, verify says it checked the JSON alone. Then the
/// figures: a verifier that left their section out passed a page with a `<style>` hiding
/// every table, a script or a caption "ALL RULES PASS" placed there, or a picture swapped.
#[test]
fn an_edited_html_page_fails_verification_and_names_the_page() {
    let f = fixture();
    let html_path = f.json.with_extension("html");
    let ok = localist(&f.config, &["audit", "verify", f.json.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let said = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(
        said.contains("reads the same") && said.contains("figure(s) as signed"),
        "{said}"
    );
    let page = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        page.contains("<h2>Figures</h2>"),
        "the fixture's page has its figures"
    );
    let figure = page.find("<figure>").unwrap();
    let figure_end = page[figure..].find("</figure>").unwrap() + figure + "</figure>".len();
    let injected = "<figure><style>table{display:none}</style><h1>ALL RULES PASS</h1></figure>";
    let data = page.find("base64,").unwrap() + "base64,".len();
    // A picture swapped for another PNG of the same length (one base64 character changed).
    let swapped_char = if &page[data + 8..data + 9] == "A" {
        "B"
    } else {
        "A"
    };
    for (what, edited, expect) in [
        (
            "a figure replaced by a style and a headline",
            format!("{}{injected}{}", &page[..figure], &page[figure_end..]),
            "does not read as its signed JSON renders",
        ),
        (
            "a script after the figures",
            page.replacen(
                "<h2>Audit log</h2>",
                "<script>document.title='PASS'</script><h2>Audit log</h2>",
                1,
            ),
            "does not read as its signed JSON renders",
        ),
        (
            "a picture swapped",
            format!("{}{swapped_char}{}", &page[..data + 8], &page[data + 9..]),
            "the page's figures are not the ones the report signs",
        ),
        (
            "a figure removed",
            format!("{}{}", &page[..figure], &page[figure_end..]),
            "the page's figures are not the ones the report signs",
        ),
    ] {
        std::fs::write(&html_path, edited).unwrap();
        let o = localist(&f.config, &["audit", "verify", f.json.to_str().unwrap()]);
        assert!(!o.status.success(), "{what}: verified");
        assert_fails_with(&o, &["report.html", expect]);
    }
    std::fs::write(&html_path, &page).unwrap();
    for (from, to) in [
        ("class=\"pass\">pass<", "class=\"pass\">FAIL<"),
        ("Audit log", "Audit l0g"),
    ] {
        if !page.contains(from) {
            continue;
        }
        std::fs::write(&html_path, page.replacen(from, to, 1)).unwrap();
        let o = localist(&f.config, &["audit", "verify", f.json.to_str().unwrap()]);
        assert_fails_with(
            &o,
            &["report.html", "does not read as its signed JSON renders"],
        );
    }
    std::fs::remove_file(&html_path).unwrap();
    let o = localist(&f.config, &["audit", "verify", f.json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("the JSON checked alone"));
}

#[test]
fn a_signed_report_verifies_and_every_tampering_names_its_check() {
    let f = fixture();
    let ok = localist(&f.config, &["audit", "verify", f.json.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let out = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(out.contains("intact") && out.contains("signed by"), "{out}");
    let report = read(&f.json);
    assert_eq!(report.version, 4);
    assert!(
        !report.figures.is_empty(),
        "the figures' digests are signed"
    );
    assert_eq!(report.signature.len(), 128);
    // Every log entry is signed, by the same key as the report.
    assert!(!report.log.entries.is_empty());
    for e in &report.log.entries {
        assert_eq!(e.signer, report.public_key);
        assert_eq!(e.signature.len(), 128);
    }
    // ISO 8601 UTC times in the report and its log.
    assert!(report.generated_utc.ends_with('Z') && report.generated_unix.is_none());
    assert!(report.log.entries.iter().all(|e| e.time_utc.len() == 20));
    // `audit key` prints the key the report carries.
    let key = localist(&f.config, &["audit", "key"]);
    assert!(key.status.success(), "{}", stderr(&key));
    assert_eq!(
        String::from_utf8_lossy(&key.stdout).trim(),
        report.public_key
    );

    // A measured number, a description and a logged rule text edited, every hash re-computed.
    let mut edited = report.clone();
    edited.rules[0].report.pf_mass = Some(0.99);
    edited.rules[0].description = "something else".into();
    edited.log.entries[1].rule_text = "rule x\nend\n".into();
    let p = write(&f, "edited.json", &rehash(edited));
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert_fails_with(
        &o,
        &[
            "signature does not match: the report was changed after it was signed",
            "log entry 1 (Added unit_to_dose): its signature does not match",
            "(4 later entries fail too)",
            "2 problem(s)",
        ],
    );

    // A key written twice: through a JSON value the last one was kept unsaid, and the report
    // verified as intact, while a reader that keeps the first is shown another number.
    let text = std::fs::read_to_string(&f.json).unwrap();
    let at = text.find("\"pf_mass\": ").unwrap();
    let twice = format!("{}\"pf_mass\": 0.1,\n{}", &text[..at], &text[at..]);
    let p = f.dir.join("twice.json");
    std::fs::write(&p, twice).unwrap();
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert_fails_with(
        &o,
        &["twice.json", "duplicate field `pf_mass`", "written twice"],
    );

    // The model swapped and its new hash written into the report.
    let cfg = f.ck.join("config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text} ")).unwrap();
    let o = localist(&f.config, &["audit", "verify", f.json.to_str().unwrap()]);
    assert_fails_with(&o, &["the model at", "has changed"]);
    let mut swapped = report.clone();
    swapped.model_sha256 = localist::model::checkpoint::checkpoint_sha256(&f.ck).unwrap();
    let p = write(&f, "swapped.json", &rehash(swapped));
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert_fails_with(&o, &["signature does not match", "1 problem(s)"]);
    std::fs::write(&cfg, text).unwrap();

    // A logged rule text edited and re-hashed, and the whole report re-signed with another
    // key: the report's signature holds, the entry's does not.
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let mut relogged = report.clone();
    relogged.log.entries[1].rule_text = "rule x\nend\n".into();
    let p = write(&f, "relogged.json", &sign_report(rehash(relogged), &other));
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert_fails_with(
        &o,
        &[
            "log entry 1",
            "its signature does not match: it was changed and re-hashed after it was logged",
        ],
    );
    // The same with the entry's signature removed instead: named as unsigned.
    let mut stripped = report.clone();
    stripped.log.entries[1].rule_text = "rule x\nend\n".into();
    stripped.log.entries[1].signature.clear();
    stripped.log.entries[1].signer.clear();
    let p = write(&f, "stripped.json", &sign_report(rehash(stripped), &other));
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert_fails_with(
        &o,
        &["log entry 1", "is not signed: its signature was removed"],
    );

    // The signature removed: said so.
    let mut bare = report.clone();
    bare.signature.clear();
    bare.public_key.clear();
    let p = write(&f, "bare.json", &bare.seal());
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert_fails_with(&o, &["the report is not signed"]);

    // A field the report does not have, anywhere: outside the hash and the signature, so a
    // reader of the JSON would see unsigned text in a "verified" report.
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.json).unwrap()).unwrap();
    value["log"]["entries"][1]["note"] = "approved by the board".into();
    let p = f.dir.join("extra.json");
    std::fs::write(&p, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert_fails_with(
        &o,
        &["holds `log.entries[1].note`", "not part of an audit report"],
    );

    // A field of the wrong type is named by its path, not only by the type expected.
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f.json).unwrap()).unwrap();
    value["rules"][0]["report"]["pf_mass"] = "high".into();
    let p = f.dir.join("typed.json");
    std::fs::write(&p, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert_fails_with(
        &o,
        &[
            "typed.json: not an audit report: `rules[0].report.pf_mass`",
            "invalid type",
        ],
    );
}

#[test]
fn a_report_signed_by_another_key_fails_with_key_or_trusted_keys() {
    let f = fixture();
    let mine = f.dir.join("mine.pub");
    let o = localist(
        &f.config,
        &["audit", "key", "--out", mine.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = localist(
        &f.config,
        &[
            "audit",
            "verify",
            f.json.to_str().unwrap(),
            "--key",
            mine.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("a trusted key from"));

    // Someone else re-signs the edited report with their own key: the signature holds, the
    // signer does not.
    let other = SigningKey::from_bytes(&[7u8; 32]);
    let mut forged = read(&f.json);
    forged.rules[0].report.pf_mass = Some(0.99);
    let p = write(&f, "forged.json", &sign_report(forged, &other));
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "without --key the signature alone holds"
    );
    let o = localist(
        &f.config,
        &[
            "audit",
            "verify",
            p.to_str().unwrap(),
            "--key",
            mine.to_str().unwrap(),
        ],
    );
    let other_hex = to_hex(other.verifying_key().as_bytes());
    assert_fails_with(
        &o,
        &["the signer is not a trusted key", &other_hex, "mine.pub"],
    );
    // The same through the config folder's trusted_keys.
    std::fs::copy(&mine, f.config.join("trusted_keys")).unwrap();
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert_fails_with(&o, &["the signer is not a trusted key", "trusted_keys"]);
    let o = localist(&f.config, &["audit", "verify", f.json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A malformed key file is named.
    let bad = f.dir.join("bad.pub");
    std::fs::write(&bad, "abcd\n").unwrap();
    let o = localist(
        &f.config,
        &[
            "audit",
            "verify",
            f.json.to_str().unwrap(),
            "--key",
            bad.to_str().unwrap(),
        ],
    );
    assert_fails_with(&o, &["bad.pub", "line 1", "2 bytes"]);
}

#[test]
fn a_report_whose_model_leads_to_dev_zero_fails_fast_naming_it() {
    let f = fixture();
    let key = read_signing_key(&f.config.join("signing_key")).unwrap();
    let mut r = read(&f.json);
    r.model_path = Some(PathBuf::from("/dev/zero"));
    let p = write(&f, "zero.json", &sign_report(r.clone(), &key));
    let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
    assert_fails_with(&o, &["/dev/zero", "not a regular file", "character device"]);
    // A model folder whose weights are a link to /dev/zero.
    #[cfg(unix)]
    {
        let linked = f.dir.join("linked");
        std::fs::create_dir_all(&linked).unwrap();
        for n in ["config.json", "blocks.json"] {
            std::fs::copy(f.ck.join(n), linked.join(n)).unwrap();
        }
        std::os::unix::fs::symlink("/dev/zero", linked.join("model.safetensors")).unwrap();
        r.model_path = Some(linked);
        let p = write(&f, "linked.json", &sign_report(r, &key));
        let o = localist(&f.config, &["audit", "verify", p.to_str().unwrap()]);
        assert_fails_with(&o, &["model.safetensors", "not a regular file"]);
    }
    // The report itself from a device.
    let o = localist(&f.config, &["audit", "verify", "/dev/zero"]);
    assert_fails_with(&o, &["/dev/zero", "not a regular file"]);
}

#[cfg(unix)]
#[test]
fn the_key_file_is_private_and_an_exposed_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("fresh").join("config");
    let o = localist(&config, &["audit", "key"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let hex = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(hex.len(), 64);
    let key = config.join("signing_key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Used again: the same key.
    let again = localist(&config, &["audit", "key"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), hex);
    // Readable by others: refused, saying so.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = localist(&config, &["audit", "key"]);
    assert_fails_with(
        &o,
        &["signing_key", "readable by others", "644", "chmod 600"],
    );
}

/// Writes the crafted cases under `tests/hostile/audit-*/` (run by `tests/hostile.rs`):
/// `cargo test --test audit -- --ignored craft_hostile_audit_cases`. Their reports name no
/// model or corpus path (but the /dev/zero one), and are signed with a fixed throwaway key.
#[test]
#[ignore = "regenerates committed files"]
fn craft_hostile_audit_cases() {
    let f = fixture();
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let mut base = read(&f.json);
    base.model_path = None;
    base.corpus_path = None;
    let signed = sign_report(base.clone(), &key);
    let hostile = common::root().join("tests/hostile");
    let case = |name: &str, why: &str, args: &[&str], expect: &[&str], files: &[(&str, String)]| {
        let dir = hostile.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (n, body) in files {
            std::fs::write(dir.join(n), body).unwrap();
        }
        let spec = serde_json::json!({ "why": why, "args": args, "expect": expect });
        std::fs::write(
            dir.join("case.json"),
            serde_json::to_string_pretty(&spec).unwrap() + "\n",
        )
        .unwrap();
    };
    let pretty = |r: &AuditReport| serde_json::to_string_pretty(r).unwrap();
    let verify = ["audit", "verify", "{case}/report.json"];

    let mut tampered = signed.clone();
    tampered.rules[0].report.pf_mass = Some(0.99);
    case(
        "audit-tampered-rehashed",
        "a measured PF_mass edited and every hash re-computed the way the tool does",
        &verify,
        &["report.json", "signature does not match"],
        &[("report.json", pretty(&rehash(tampered)))],
    );

    let mut old = base.clone();
    old.version = 1;
    old.public_key.clear();
    old.signature.clear();
    old.generated_utc.clear();
    old.generated_unix = Some(1_796_037_605);
    for e in &mut old.log.entries {
        e.time_utc.clear();
        e.time_unix = Some(1_796_037_605);
        e.signer.clear();
        e.signature.clear();
    }
    case(
        "audit-old-unsigned",
        "a report of the old format (version 1, Unix times, no signature), hashes intact",
        &verify,
        &["report.json", "not signed", "old-format report (version 1"],
        &[("report.json", pretty(&rehash(old)))],
    );

    let mut zero = base.clone();
    zero.model_path = Some(PathBuf::from("/dev/zero"));
    case(
        "audit-model-dev-zero",
        "a signed report whose model path is /dev/zero (hashing it would never end)",
        &verify,
        &["/dev/zero", "not a regular file"],
        &[("report.json", pretty(&sign_report(zero, &key)))],
    );

    let full = pretty(&signed);
    case(
        "audit-truncated-json",
        "a signed report cut in half",
        &verify,
        &["report.json", "not valid JSON"],
        &[("report.json", full.chars().take(full.len() / 2).collect())],
    );

    let mut short = signed.clone();
    short.signature.truncate(126);
    case(
        "audit-signature-wrong-length",
        "a signature of 63 bytes instead of 64",
        &verify,
        &["report.json", "63 bytes", "64"],
        &[("report.json", pretty(&short))],
    );

    let other = SigningKey::from_bytes(&[8u8; 32]);
    case(
        "audit-untrusted-signer",
        "a report signed by a key other than the one given with --key",
        &[
            "audit",
            "verify",
            "{case}/report.json",
            "--key",
            "{case}/expected.pub",
        ],
        &["not a trusted key", "expected.pub"],
        &[
            ("report.json", full.clone()),
            (
                "expected.pub",
                format!(
                    "# the key we expect\n{}\n",
                    to_hex(other.verifying_key().as_bytes())
                ),
            ),
        ],
    );

    let mut relogged = base.clone();
    relogged.log.entries[1].rule_text = "rule unit_to_dose \"anything\"\nend\n".into();
    case(
        "audit-log-entry-resigned",
        "a logged rule text edited, every hash re-computed and the report re-signed with \
         another key: only the entry's own signature can tell",
        &verify,
        &["report.json", "log entry 1", "its signature does not match"],
        &[("report.json", pretty(&sign_report(rehash(relogged), &key)))],
    );

    let mut stripped = base.clone();
    stripped.log.entries[1].signature.clear();
    stripped.log.entries[1].signer.clear();
    case(
        "audit-log-entry-unsigned",
        "a log entry's signature removed, the report re-signed",
        &verify,
        &["report.json", "log entry 1", "is not signed"],
        &[("report.json", pretty(&sign_report(stripped.seal(), &key)))],
    );
}

/// A report written with a relative model path verifies from another folder too: the path is
/// looked for from the current folder, then beside the report; the hash decides the rest. A
/// path found in neither place names both.
#[test]
fn a_relative_model_path_is_found_beside_the_report() {
    let f = fixture();
    let run_in = |cwd: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_localist"))
            .current_dir(cwd)
            .args(args)
            .env("CANDLE_NUM_THREADS", "1")
            .env("LOCALIST_CONFIG_DIR", &f.config)
            .output()
            .unwrap()
    };
    let rules = common::root().join("assets/rules/clinical_payments.rules");
    let o = run_in(
        &f.dir,
        &[
            "audit",
            "report",
            "-c",
            "ck",
            "-r",
            rules.to_str().unwrap(),
            "--out",
            "rel.html",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report = f.dir.join("rel.json");
    assert_eq!(read(&report).model_path, Some(PathBuf::from("ck")));
    let elsewhere = tempfile::tempdir().unwrap();
    let o = run_in(
        elsewhere.path(),
        &["audit", "verify", report.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Gone from both places: both are named.
    std::fs::rename(&f.ck, f.dir.join("moved")).unwrap();
    let o = run_in(
        elsewhere.path(),
        &["audit", "verify", report.to_str().unwrap()],
    );
    assert_fails_with(
        &o,
        &[
            "the model named by the report (ck) is not found: looked for",
            " and ",
        ],
    );
}
