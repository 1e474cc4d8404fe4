//! A rules file: read, parsed, resolved against the bundled tiny-clinical checkpoint, and when
//! it resolves, applied to a capture (the path `localist rules check` and the studio take).
#![no_main]

use libfuzzer_sys::fuzz_target;
use localist::data::tokenizer::Tokenizer;
use localist::engine::jobs::model::{checkpoint_anchors, open_checkpoint};
use localist::engine::jobs::rules::load_rules;
use localist::model::checkpoint::Checkpoint;
use localist::model::AttentionModel;
use localist::model::dial::DialSetting;
use localist::rules::inject::capture_with_rules;

#[path = "common.rs"]
mod common;

/// A text the clinical model knows, for the capture under the rules.
const CLINICAL: &str = "patient paid 40 euros for the visit and the invoice";

thread_local! {
    static MODEL: (Checkpoint, Box<dyn Tokenizer>) = {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../sample_models/tiny-clinical");
        open_checkpoint(&dir).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()))
    };
}

fuzz_target!(|data: &[u8]| {
    let path = common::file("fuzz.rules", data);
    MODEL.with(|(ck, tok)| {
        let anchors = checkpoint_anchors(ck);
        if let Ok(rules) = load_rules(&path, &ck.blocks, tok.as_ref(), &anchors) {
            let mut ids = tok.encode(CLINICAL);
            ids.truncate(ck.model.dims().max_len);
            let _ = capture_with_rules(&ck.model, &ck.blocks, &ids, &DialSetting::bias(2.0), &rules);
        }
    });
});
