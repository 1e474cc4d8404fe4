//! One text through a checkpoint or an imported model under a dial: the capture and the token
//! strings, for `localist capture`.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::engine::jobs::model::OpenModel;
use crate::engine::protocol::default_clusters;
use crate::model::capture::{capture, Capture};
use crate::model::capture_stream::{capture_streamed, CapturePlan, STUDIO_GRID};
use crate::model::dial::DialSetting;

/// A capture with its tokens.
#[derive(Clone, Debug)]
pub struct TextCapture {
    /// Attention and metrics of every head.
    pub capture: Capture,
    /// The token strings.
    pub tokens: Vec<String>,
    /// The text's length in tokens when it was cut to the model's positions.
    pub truncated_from: Option<usize>,
    /// A warning when part of the text is unreadable to the model's tokenizer (`?`, `<unk>`),
    /// after a note when CR LF line endings were read as LF.
    pub note: Option<String>,
}

/// Capture `text` (cut to the model's positions) on the model at `path`: a checkpoint with its
/// blocks, or an imported model with the blocks saved beside it or k-means blocks.
pub fn capture_text(path: &Path, text: &str, dial: &DialSetting) -> Result<TextCapture> {
    capture_text_with(path, text, dial, None)
}

/// [`capture_text`] keeping what `plan` asks for (streamed: summaries of every head, the
/// attention of the chosen heads, rows and keys; no logits). Without a plan, a text of up to
/// [`STUDIO_GRID`] tokens is captured densely with its logits, and a longer one streamed with
/// [`CapturePlan::studio`] (every head pooled to a grid of at most that side), so the output
/// stays bounded.
pub fn capture_text_with(
    path: &Path,
    text: &str,
    dial: &DialSetting,
    plan: Option<&CapturePlan>,
) -> Result<TextCapture> {
    let opened = OpenModel::open(path)?;
    let blocks = opened.saved_or_kmeans_blocks(default_clusters(opened.model().dims().vocab))?;
    let (model, tok) = (opened.model(), opened.tokenizer());
    // CR LF line endings are newlines, as in a corpus file (a lone CR or a tab stays, and a
    // character tokenizer counts it unreadable).
    let crlf = text.matches("\r\n").count();
    let text = text.replace("\r\n", "\n");
    let mut ids = tok.encode(&text);
    if ids.is_empty() {
        bail!("--text is empty after tokenization");
    }
    let readable_note = match &opened {
        OpenModel::Checkpoint { checkpoint, .. } => {
            readable(&text, &checkpoint.meta.tokenizer, &ids)?
        }
        OpenModel::Imported { .. } => None,
    };
    let crlf_note =
        (crlf > 0).then(|| format!("note: the text's {crlf} CR LF line endings read as LF"));
    let note = match (crlf_note, readable_note) {
        (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
        (a, b) => a.or(b),
    };
    let max = model.dims().max_len;
    let truncated_from = (ids.len() > max).then_some(ids.len());
    ids.truncate(max);
    let studio = CapturePlan::studio();
    let plan = plan.or((ids.len() > STUDIO_GRID).then_some(&studio));
    let cap = match plan {
        Some(plan) => {
            let layers = model.dims().layers;
            let t = ids.len();
            let mut progress = |done: usize| {
                if t > STUDIO_GRID {
                    eprint!("\rcapturing {t} tokens: layer {done} of {layers}");
                    if done == layers {
                        eprintln!();
                    }
                }
                true
            };
            capture_streamed(model, &blocks, &ids, dial, plan, &mut progress)
        }
        None => capture(model, &blocks, &ids, dial),
    }
    .with_context(|| format!("capturing with {}", path.display()))?;
    let tokens = ids.iter().map(|&i| tok.token_str(i)).collect();
    Ok(TextCapture {
        capture: cap,
        tokens,
        truncated_from,
        note,
    })
}

/// The text refused when most of it is unreadable to a checkpoint's tokenizer (as `train` and
/// `eval` refuse it: a capture of `?` or `<unk>` only says nothing of the text), and a warning
/// when part of it is.
pub(crate) fn readable(
    text: &str,
    spec: &serde_json::Value,
    ids: &[u32],
) -> Result<Option<String>> {
    let Ok(spec) = serde_json::from_value::<crate::data::tokenizer::TokenizerSpec>(spec.clone())
    else {
        return Ok(None);
    };
    let said = crate::engine::coverage::judge(text, &spec, ids, "the text", false)
        .map_err(anyhow::Error::msg)?;
    Ok(said.map(|s| format!("warning: {s}")))
}
