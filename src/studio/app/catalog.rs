//! The models the studio offers as buttons: the bundled sample checkpoints and the pretrained
//! models `scripts/fetch_models.sh` unpacks.

use std::path::PathBuf;

use crate::engine::corpus::bundled_path;

/// Bundled sample checkpoints.
pub fn sample_models() -> Vec<(String, PathBuf)> {
    [
        "tiny-shakespeare-l1",
        "tiny-shakespeare-l0",
        "tiny-clinical",
        "tiny-topics-recruited",
    ]
    .iter()
    .map(|n| {
        (
            n.to_string(),
            bundled_path(&PathBuf::from("sample_models").join(n)),
        )
    })
    .collect()
}

/// The pretrained models `scripts/fetch_models.sh` unpacked (none before it has run).
pub fn pretrained_models() -> Vec<(String, PathBuf)> {
    PRETRAINED
        .iter()
        .map(|(name, rel)| (name.to_string(), bundled_path(&PathBuf::from(rel))))
        .filter(|(_, p)| p.exists())
        .collect()
}

/// The pretrained models of `scripts/fetch_models.sh`: button label and path.
pub const PRETRAINED: [(&str, &str); 2] = [
    (
        "SmolLM2-135M (GGUF)",
        "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    ("all-MiniLM-L6-v2", "models/all-MiniLM-L6-v2"),
];
