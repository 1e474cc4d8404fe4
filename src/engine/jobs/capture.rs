//! One text through a checkpoint or an imported model under a dial: the capture and the token
//! strings, for `localist capture`.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::data::tokenizer::Tokenizer;
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

/// Why `text` gave `tok` no tokens: it is empty, the tokenizer failed on it (an imported
/// tokenizer file can), or it reads nothing in it — a tokenizer without the text's pieces and
/// without an unknown token, say. `model` names the model where the caller knows it.
pub fn no_tokens(what: &str, text: &str, tok: &dyn Tokenizer, model: Option<&Path>) -> String {
    if text.trim().is_empty() {
        return format!("{what} is empty");
    }
    let by = match model {
        Some(p) => format!("the tokenizer of {}", p.display()),
        None => "the model's tokenizer".to_string(),
    };
    match tok.encode_error(text) {
        Some(e) => format!("{what} could not be read: {by} failed on it ({e})"),
        None => format!(
            "{what} ({} characters) gives no tokens: {by} reads nothing in it (a tokenizer \
             without the text's pieces and without an unknown token, or a text in another \
             script)",
            text.chars().count()
        ),
    }
}

/// Capture `text` (cut to the model's positions) on the model at `path`: a checkpoint with its
/// blocks, or an imported model with the blocks saved beside it or k-means blocks.
pub fn capture_text(path: &Path, text: &str, dial: &DialSetting) -> Result<TextCapture> {
    capture_text_with(path, text, dial, None)
}

/// [`capture_text`] keeping what `plan` asks for (streamed: summaries of every head, the
/// attention of the chosen heads, rows and keys; no logits). Without a plan, a text of up to
/// [`STUDIO_GRID`] tokens is captured densely with its logits, and a longer one streamed
/// (every head pooled to a grid of at most [`default_grid`] a side), so the output stays
/// bounded.
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
    let text = crate::files::without_bom(text);
    let crlf = text.matches("\r\n").count();
    let text = text.replace("\r\n", "\n");
    let mut ids = tok.encode(&text);
    if ids.is_empty() {
        bail!(no_tokens("--text", &text, tok, Some(path)));
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
    let long = CapturePlan {
        max_grid: default_grid(model.dims().layers * model.dims().heads),
        ..CapturePlan::studio()
    };
    let defaulted = plan.is_none() && ids.len() > STUDIO_GRID;
    let plan = plan.or(defaulted.then_some(&long));
    let note = match (defaulted, note) {
        (true, n) => Some(n.map_or(String::new(), |n| n + "\n") + &long_note(ids.len(), &long)),
        (false, n) => n,
    };
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
    .with_context(|| {
        // A range past the model's context names the text's own length too: "a text of 64
        // tokens" alone misread a 760-token text.
        let cut = truncated_from.map_or(String::new(), |n| {
            format!(
                " (it reads the first {} of the text's {n} tokens)",
                ids.len()
            )
        });
        format!("capturing with {}{cut}", path.display())
    })?;
    let tokens = ids.iter().map(|&i| tok.token_str(i)).collect();
    Ok(TextCapture {
        capture: cap,
        tokens,
        truncated_from,
        note,
    })
}

/// Attention cells a capture of a long text keeps over all heads when no option chose what to
/// keep (2²² ≈ 4.2 million: the tiny models keep 256 × 256 a head, SmolLM2's 270 heads 124 ×
/// 124, so its JSON at 8,192 tokens is mostly the per-row summaries every head keeps).
pub const DEFAULT_CELLS: usize = 1 << 22;

/// The grid side of a long text's default capture for a model of `heads` heads in all: at most
/// [`STUDIO_GRID`], at least 32, and about [`DEFAULT_CELLS`] cells over all heads.
pub fn default_grid(heads: usize) -> usize {
    let side = (DEFAULT_CELLS as f64 / heads.max(1) as f64).sqrt() as usize;
    side.clamp(32, STUDIO_GRID)
}

/// What a long text's default capture kept, and how to choose otherwise.
fn long_note(t: usize, plan: &CapturePlan) -> String {
    format!(
        "note: {t} tokens: every head's summaries kept, one row a query, and its attention \
         pooled to at most {g} × {g} cells; --heads, --rows, --keys and --grid choose what to \
         keep, and --summaries heads writes one summary a head",
        g = plan.max_grid
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_texts_default_grid_keeps_about_the_same_cells_whatever_the_heads() {
        assert_eq!(default_grid(8), STUDIO_GRID);
        assert_eq!(default_grid(64), STUDIO_GRID);
        // SmolLM2: 30 layers of 9 heads.
        assert_eq!(default_grid(270), 124);
        assert!(270 * default_grid(270).pow(2) <= DEFAULT_CELLS);
        assert_eq!(default_grid(1_000_000), 32);
        assert_eq!(default_grid(0), STUDIO_GRID);
        let note = long_note(
            8192,
            &CapturePlan {
                max_grid: 124,
                ..CapturePlan::studio()
            },
        );
        assert!(
            note.contains("124 × 124") && note.contains("--grid"),
            "{note}"
        );
    }
}
