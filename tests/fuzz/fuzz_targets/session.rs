//! A studio session file, opened the way File → Open session and the autosave do it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use localist::studio::session::load_session;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::file("fuzz.localist-session.json", data);
    let _ = load_session(&path);
});
