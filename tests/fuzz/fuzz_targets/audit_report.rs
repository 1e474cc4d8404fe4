//! An audit report: read and verified the way `localist audit verify` does it (hashes, log
//! chain, signature, and the model and corpus files it names, relative to the scratch folder).
#![no_main]

use libfuzzer_sys::fuzz_target;
use localist::engine::audit::read_report;
use localist::engine::audit::verify_report;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::file("report.json", data);
    if let Ok(report) = read_report(&path) {
        let _ = verify_report(&report, common::scratch());
    }
});
