//! A Hugging Face folder (config.json, tokenizer.json, model.safetensors of a tiny BERT), one
//! file fuzzed at a time, opened and captured (k-means blocks) like `localist capture`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use localist::engine::jobs::capture::capture_text;
use localist::model::dial::DialSetting;

#[path = "common.rs"]
mod common;

const BASE: [(&str, &[u8]); 3] = [
    ("config.json", include_bytes!("../seeds/base/hf/config.json")),
    ("tokenizer.json", include_bytes!("../seeds/base/hf/tokenizer.json")),
    ("model.safetensors", include_bytes!("../seeds/base/hf/model.safetensors")),
];

fuzz_target!(|data: &[u8]| {
    if let Some(dir) = common::folder("hf", &BASE, data) {
        let _ = capture_text(&dir, common::TEXT, &DialSetting::bias(2.0));
    }
});
