//! Exports a user can take away: a capture as CSV (through the one table writer) or JSON, and
//! files written atomically (temp file + rename) so a failed export never leaves a partial
//! file. Shared by the command line and the studio.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::engine::figures::TableWriter;
use crate::engine::head_summary::{HeadSummary, HeadsOnly};
use crate::model::capture::Capture;

/// The JSON document: the capture plus readable tokens and summary numbers.
#[derive(Serialize)]
pub struct CaptureDoc<'a> {
    /// Token strings.
    pub tokens: Vec<String>,
    /// Mean entropy in bits.
    pub mean_entropy_bits: f64,
    /// Mean off-block mass.
    pub mean_off_block_mass: f64,
    /// Each head's summary over its queries, where the capture's per-query rows were left out
    /// (`capture --summaries heads`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_summaries: Option<Vec<HeadSummary>>,
    /// The capture.
    pub capture: &'a Capture,
}

/// CSV rendering of a capture: one row per (layer, head, query, visible key) of every head
/// whose attention was kept (for a long text's pooled grid: one row per visible cell, named by
/// its first query and key).
pub fn capture_csv(cap: &Capture, tokens: &[String]) -> String {
    let mut out = TableWriter::csv([
        "layer",
        "head",
        "query",
        "key",
        "query_token",
        "key_token",
        "relevant_block",
        "key_block",
        "weight",
        "row_entropy_bits",
        "row_off_block_mass",
        "row_margin",
    ]);
    let tok = |i: usize| tokens.get(i).cloned().unwrap_or_default();
    let block = |b: Option<&usize>| {
        b.map(|&b| cap.block_names.get(b).cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    let lay = cap.attention_layout();
    let (gr, gc) = lay.grid();
    for hc in cap.heads.iter().filter(|hc| !hc.attention.is_empty()) {
        for r in 0..gr {
            for c in 0..gc {
                if lay.masked(r, c, (cap.causal, cap.window(hc.layer))) {
                    continue;
                }
                // At full resolution a cell is one weight; in a pooled grid it is named by
                // its first query and key, and holds their cells' mean row mass.
                let (i, j) = lay.origin(r, c);
                let w = hc.attention.get(r * gc + c).copied().unwrap_or(0.0);
                out.row([
                    hc.layer.to_string(),
                    hc.head.to_string(),
                    i.to_string(),
                    j.to_string(),
                    tok(i),
                    tok(j),
                    block(cap.relevant_blocks.get(i)),
                    block(cap.key_blocks.get(j)),
                    format!("{w:.6}"),
                    format!("{:.5}", hc.entropy_bits.get(i).copied().unwrap_or(0.0)),
                    format!("{:.5}", hc.off_block_mass.get(i).copied().unwrap_or(0.0)),
                    format!("{:.4}", hc.margin.get(i).copied().unwrap_or(0.0)),
                ]);
            }
        }
    }
    out.finish()
}

/// The JSON document of a capture (tokens, summary numbers and every head's matrices).
/// Indented when small; a capture whose indented text would pass [`PRETTY_JSON_BYTES`] is
/// written on one line (a number then takes about 12 bytes, not 24: indentation was most of
/// the 0.9 GB a review's 8,192-token capture wrote).
pub fn capture_json(cap: &Capture, tokens: &[String]) -> Result<String> {
    capture_json_with(cap, tokens, None)
}

/// [`capture_json`], with the per-head summaries of a capture whose per-query rows were taken
/// out ([`heads_only`](crate::engine::head_summary::heads_only)) when given.
pub fn capture_json_with(
    cap: &Capture,
    tokens: &[String],
    heads: Option<HeadsOnly>,
) -> Result<String> {
    let (mean_entropy_bits, mean_off_block_mass, head_summaries) = match heads {
        Some(h) => (h.mean_entropy_bits, h.mean_off_block_mass, Some(h.heads)),
        None => (
            cap.mean_entropy_bits(None),
            cap.mean_off_block_mass(None),
            None,
        ),
    };
    let doc = CaptureDoc {
        tokens: tokens.to_vec(),
        mean_entropy_bits,
        mean_off_block_mass,
        head_summaries,
        capture: cap,
    };
    Ok(if json_on_one_line(cap) {
        serde_json::to_string(&doc)?
    } else {
        serde_json::to_string_pretty(&doc)?
    })
}

/// Largest capture written as indented JSON (64 MiB, estimated by [`capture_text_bytes`]).
pub const PRETTY_JSON_BYTES: u64 = 64 << 20;

/// About how many bytes a capture's text takes: a CSV row per visible kept cell (its ids, two
/// tokens, two block names and four numbers: about 100 bytes), or in JSON about 24 bytes a
/// number indented, 12 on one line (every kept weight, per-row summary, block mass and logit).
pub fn capture_text_bytes(cap: &Capture, csv: bool) -> u64 {
    let n = |v: usize| v as u64;
    if csv {
        let lay = cap.attention_layout();
        let (gr, gc) = lay.grid();
        let kept = n(cap.heads.iter().filter(|h| !h.attention.is_empty()).count());
        let cells = kept.saturating_mul(n(gr)).saturating_mul(n(gc));
        let visible = if cap.causal { cells / 2 } else { cells };
        return visible.saturating_mul(100);
    }
    let numbers = json_numbers(cap);
    numbers.saturating_mul(if json_on_one_line(cap) { 12 } else { 24 })
}

/// Numbers in a capture's JSON: every kept weight, per-row summary, block mass and logit.
fn json_numbers(cap: &Capture) -> u64 {
    let n = |v: usize| v as u64;
    cap.heads.iter().fold(n(cap.logits.len()), |acc, h| {
        acc.saturating_add(n(h.attention.len()
            + h.block_mass.len()
            + h.off_block_mass.len()))
            .saturating_add(n(h.entropy_bits.len() + h.margin.len()))
    })
}

/// Whether a capture's JSON is written on one line: indented (about 24 bytes a number) it
/// would pass [`PRETTY_JSON_BYTES`]; on one line a number takes about 12 (`0.012345678,`).
fn json_on_one_line(cap: &Capture) -> bool {
    json_numbers(cap).saturating_mul(24) > PRETTY_JSON_BYTES
}

/// Refuse to build a capture's text above the capture memory limit
/// (`LOCALIST_CAPTURE_LIMIT_GIB`, 4 GiB by default): all heads of SmolLM2 at full resolution
/// on 1,356 tokens passed the capture's own check, and its CSV then aborted the process
/// asking for 4 GiB more, at a peak of 6.9 GB.
pub fn check_capture_text(cap: &Capture, csv: bool) -> Result<()> {
    let need = capture_text_bytes(cap, csv);
    let limit = crate::model::capture_memory::limit_bytes();
    if need > limit {
        anyhow::bail!(
            "the {} of this capture would take about {:.1} GiB ({} kept heads of {} tokens), over \
             the limit of {:.1} GiB: keep fewer heads (--heads 3.1,5.0), rows (--rows 0..256) \
             or a coarser grid (--grid 256), or raise the limit with {}",
            if csv { "CSV" } else { "JSON" },
            need as f64 / f64::from(1u32 << 30),
            cap.heads.iter().filter(|h| !h.attention.is_empty()).count(),
            cap.len(),
            limit as f64 / f64::from(1u32 << 30),
            crate::model::capture_memory::LIMIT_ENV
        );
    }
    Ok(())
}

/// Write `contents` to `path` whole or not at all ([`crate::files::write_atomic`]: a temporary
/// sibling and a rename; devices and FIFOs written in place, links followed, permissions kept),
/// the error naming `path`.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    crate::files::write_atomic(path, contents)
        .with_context(|| format!("writing {}", path.display()))
}

/// Write files that belong together all or none ([`crate::files::write_all_atomic`]); the
/// error names the file that failed.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> Result<()> {
    crate::files::write_all_atomic(files).map_err(|(k, e)| {
        let path = files
            .get(k)
            .map_or_else(String::new, |f| f.0.display().to_string());
        anyhow::Error::new(e).context(format!(
            "writing {path} (nothing of this output was written)"
        ))
    })
}
