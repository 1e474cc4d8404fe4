//! A checkpoint folder (config.json, blocks.json, model.safetensors), one file fuzzed at a
//! time, opened and captured the way `localist capture` does it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use localist::engine::jobs::capture::capture_text;
use localist::model::dial::DialSetting;

#[path = "common.rs"]
mod common;

const BASE: [(&str, &[u8]); 3] = [
    ("config.json", include_bytes!("../../hostile/ck-control-good/model/config.json")),
    ("blocks.json", include_bytes!("../../hostile/ck-control-good/model/blocks.json")),
    ("model.safetensors", include_bytes!("../../hostile/ck-control-good/model/model.safetensors")),
];

fuzz_target!(|data: &[u8]| {
    if let Some(dir) = common::folder("checkpoint", &BASE, data) {
        let _ = capture_text(&dir, common::TEXT, &DialSetting::bias(2.0));
    }
});
