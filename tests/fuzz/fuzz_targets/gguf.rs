//! A GGUF file (llama layout), opened and captured the way `localist capture` does it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use localist::engine::jobs::capture::capture_text;
use localist::model::dial::DialSetting;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = common::file("model.gguf", data);
    let _ = capture_text(&path, common::TEXT, &DialSetting::bias(2.0));
});
