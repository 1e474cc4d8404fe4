//! The Blocks & anchors panel: each block's name, vocabulary size and usage in the current
//! capture; the anchor tokens measured on the training text with PMI and purity, and the
//! coverage I(B;A); and the coherence matrix of the anchor keys (layer 0, head 0).

use egui::{Color32, Sense, Vec2};

use crate::engine::protocol::MAX_CLUSTERS;
use crate::engine::worker::{Command, ImportedBlocks, ModelSummary};
use crate::studio::state::{FileRequest, StudioState};

/// Mean block mass p_k over queries, heads and layers of the current capture.
pub fn block_usage(state: &StudioState) -> Vec<f64> {
    let Some((cap, _)) = &state.capture else {
        return Vec::new();
    };
    let k = cap.num_blocks();
    let mut sum = vec![0.0f64; k];
    let mut rows = 0usize;
    for hc in &cap.heads {
        for row in hc.block_mass.chunks(k.max(1)) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v as f64;
            }
            rows += 1;
        }
    }
    sum.iter().map(|s| s / rows.max(1) as f64).collect()
}

/// Draw the panel.
pub fn show(ui: &mut egui::Ui, state: &mut StudioState) {
    let Some(summary) = state.summary.clone() else {
        ui.label("no model loaded");
        return;
    };
    let usage = block_usage(state);
    // The visible part of this tab, for the PNG export.
    let view_rect = ui.clip_rect();
    let keys_in_text: Vec<usize> = match &state.capture {
        Some((cap, _)) => (0..cap.num_blocks())
            .map(|b| cap.key_blocks.iter().filter(|&&k| k == b).count())
            .collect(),
        None => Vec::new(),
    };
    ui.horizontal(|ui| {
        ui.heading("Blocks");
        ui.menu_button("Export", |ui| {
            export_menu(ui, state, &summary, &keys_in_text, &usage, view_rect)
        });
    });
    if let Some((_, source)) = &summary.imported {
        imported_controls(ui, state, summary.blocks.len(), source);
    }
    blocks_table(ui, state, &summary, &keys_in_text, &usage);
    ui.separator();
    ui.heading("Anchor tokens");
    anchors(ui, &summary);
    ui.separator();
    ui.heading("Anchor-key coherence (layer 0, head 0)");
    coherence(ui, state, &summary);
}

/// The Export menu: blocks, anchors and coherence as JSON, the coherence matrix as CSV, or
/// `view_rect` (the visible tab) as PNG.
fn export_menu(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    summary: &ModelSummary,
    keys_in_text: &[usize],
    usage: &[f64],
    view_rect: egui::Rect,
) {
    if ui
        .button("blocks, anchors and coherence as JSON…")
        .clicked()
    {
        let json = serde_json::json!({
            "blocks": summary.blocks.iter().enumerate().map(|(b, name)| serde_json::json!({
                "name": name,
                "vocabulary_tokens": summary.block_sizes.get(b),
                "keys_in_text": keys_in_text.get(b),
                "usage": usage.get(b),
            })).collect::<Vec<_>>(),
            "anchors": summary.anchors,
            "anchor_key_coherence_layer0_head0": summary.anchor_coherence,
        });
        match serde_json::to_string_pretty(&json) {
            Ok(j) => state.pending_export = Some(("blocks.json".into(), j.into_bytes())),
            Err(e) => state.error = Some(format!("export failed: {e}")),
        }
        ui.close();
    }
    if ui.button("coherence matrix as CSV…").clicked() {
        let mut csv = String::from("block");
        for n in &summary.blocks {
            csv.push(',');
            csv.push_str(n);
        }
        csv.push('\n');
        for (n, row) in summary.blocks.iter().zip(&summary.anchor_coherence) {
            csv.push_str(n);
            for v in row {
                csv.push_str(&format!(",{v}"));
            }
            csv.push('\n');
        }
        state.pending_export = Some(("coherence.csv".into(), csv.into_bytes()));
        ui.close();
    }
    if ui.button("this view as PNG…").clicked() {
        state.screenshot_request = Some(("blocks.png".into(), view_rect));
        ui.close();
    }
}

/// An imported model's block controls: k-means with its k, or a lexicon file.
fn imported_controls(ui: &mut egui::Ui, state: &mut StudioState, blocks: usize, source: &str) {
    ui.horizontal_wrapped(|ui| {
        ui.label(format!("{blocks} blocks from {source}."));
        ui.add(
            egui::DragValue::new(&mut state.kmeans_k)
                .range(2..=MAX_CLUSTERS)
                .prefix("k = "),
        )
        .on_hover_text("Clusters of the k-means over the model's embedding rows");
        if ui
            .button("Rebuild by k-means")
            .on_hover_text("Cluster the input-embedding rows again with this k (a few seconds)")
            .clicked()
        {
            let k = state.kmeans_k;
            state.send(Command::SetImportedBlocks(ImportedBlocks::KMeans(k)));
        }
        if ui
            .button("From a lexicon…")
            .on_hover_text(
                "A file of word<TAB>block lines; each word also takes its form after a space",
            )
            .clicked()
        {
            state.file_request = Some(FileRequest::Lexicon);
        }
    });
    ui.label(
        egui::RichText::new(
            "Block maps of imported models are saved beside the model whenever they change.",
        )
        .weak(),
    );
}

/// One row per block: name (with rename), vocabulary size, keys in the text, usage.
fn blocks_table(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    summary: &ModelSummary,
    keys_in_text: &[usize],
    usage: &[f64],
) {
    egui::Grid::new("blocks_table").striped(true).num_columns(4).show(ui, |ui| {
        ui.strong("block");
        ui.strong("vocabulary tokens").on_hover_text("Tokens the block map assigns to the block (0 for positional windows).");
        ui.strong("keys in text").on_hover_text("Keys of the current text in this block.");
        ui.strong("usage").on_hover_text("Mean attention mass p_k(i) on the block over queries, heads and layers of the current text.");
        ui.end_row();
        for (b, name) in summary.blocks.iter().enumerate() {
            name_cell(ui, state, b, name);
            ui.label(summary.block_sizes.get(b).map(|n| n.to_string()).unwrap_or_default());
            ui.label(keys_in_text.get(b).map(|n| n.to_string()).unwrap_or_default());
            ui.label(usage.get(b).map(|u| format!("{:.1}%", 100.0 * u)).unwrap_or_default());
            ui.end_row();
        }
    });
}

/// The anchor tokens of each block with PMI and purity, and the coverage I(B;A): one row per
/// anchor (at most [`ANCHORS_SHOWN`] per block), in a table that scrolls sideways rather than
/// running off the panel.
fn anchors(ui: &mut egui::Ui, summary: &ModelSummary) {
    let Some(rep) = &summary.anchors else {
        ui.label("this checkpoint carries no anchor statistics");
        return;
    };
    ui.label(format!("coverage I(B;A) = {:.4} bits", rep.coverage_bits))
        .on_hover_text("Mutual information between a position's block and the anchor token it holds (or none), in bits.");
    egui::ScrollArea::horizontal()
        .id_salt("anchors_scroll")
        .show(ui, |ui| {
            egui::Grid::new("anchors_table")
                .striped(true)
                .num_columns(5)
                .show(ui, |ui| {
                    ui.strong("block");
                    ui.strong("anchor token");
                    ui.strong("PMI").on_hover_text(ANCHOR_PMI_HELP);
                    ui.strong("purity").on_hover_text(ANCHOR_PURITY_HELP);
                    ui.strong("n")
                        .on_hover_text("How often the token occurs in the training text.");
                    ui.end_row();
                    for (block, rows) in &rep.blocks {
                        anchor_rows(ui, block, rows);
                    }
                });
        });
}

/// Anchors listed per block in the Blocks tab; the rest are counted.
const ANCHORS_SHOWN: usize = 6;

const ANCHOR_PMI_HELP: &str = "Pointwise mutual information between the token and its block, \
in bits: how much more often the token occurs in this block than overall. Higher is a \
stronger anchor.";

const ANCHOR_PURITY_HELP: &str = "Purity H(B | token), in bits: the entropy of the blocks the \
token is seen in. 0 bits is the best value: the token is always in this one block. A token \
counts as an anchor only at 0.2 bits or less (SPEC §5), so every value here is at most 0.2.";

/// One block's anchor rows (or "none").
fn anchor_rows(ui: &mut egui::Ui, block: &str, rows: &[crate::engine::anchors::AnchorRow]) {
    if rows.is_empty() {
        ui.label(block);
        ui.weak("none");
        ui.end_row();
        return;
    }
    for (n, r) in rows.iter().take(ANCHORS_SHOWN).enumerate() {
        ui.label(if n == 0 { block } else { "" });
        ui.monospace(format!("{:?}", r.token));
        ui.label(format!("{:.2} bits", r.pmi_bits));
        let purity = ui.label(format!("{:.2} bits", r.purity_bits));
        if r.purity_bits == 0.0 {
            purity.on_hover_text(
                "0 bits: the token was only ever seen in this block (the best value).",
            );
        }
        ui.label(r.count.to_string());
        ui.end_row();
    }
    if rows.len() > ANCHORS_SHOWN {
        ui.label("");
        ui.weak(format!("… and {} more", rows.len() - ANCHORS_SHOWN));
        ui.end_row();
    }
}

/// The anchor keys' |cos| matrix against the Welch bound, coloured, with a hover readout.
fn coherence(ui: &mut egui::Ui, state: &StudioState, summary: &ModelSummary) {
    let m = &summary.anchor_coherence;
    let k = m.len();
    if k == 0 {
        ui.label("no anchor keys");
        return;
    }
    let d_h = summary.shape.2 / summary.shape.1.max(1);
    let max_off = m
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            r.iter()
                .enumerate()
                .filter(move |(j, _)| *j != i)
                .map(|(_, v)| *v)
        })
        .fold(0.0f64, f64::max);
    ui.label(format!(
        "largest |cos| between different anchors: {max_off:.3}; Welch bound for K = {k} in d_h = {d_h}: {:.3}",
        summary.anchor_welch_bound
    ))
    .on_hover_text("Orthonormal anchors (K ≤ d_h) give 0. Above d_h dimensions no set of K unit vectors can beat the Welch bound.");
    let cell = (240.0 / k as f32).clamp(6.0, 24.0);
    let (rect, resp) = ui.allocate_exact_size(Vec2::splat(cell * k as f32), Sense::hover());
    for (i, row) in m.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let [r, g, b] = state.colormap.rgb(v as f32);
            let min = rect.min + Vec2::new(j as f32 * cell, i as f32 * cell);
            ui.painter().rect_filled(
                egui::Rect::from_min_size(min, Vec2::splat(cell)),
                0.0,
                Color32::from_rgb(r, g, b),
            );
        }
    }
    if let Some(pos) = resp.hover_pos() {
        let i = (((pos.y - rect.top()) / cell) as usize).min(k - 1);
        let j = (((pos.x - rect.left()) / cell) as usize).min(k - 1);
        let v = m.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0.0);
        let name = |b: usize| summary.blocks.get(b).cloned().unwrap_or_default();
        resp.on_hover_text_at_pointer(format!("|cos({}, {})| = {v:.4}", name(i), name(j)));
    }
}

/// A block's name, with a rename button (block 0, "unassigned", keeps its name); Enter applies,
/// Escape cancels.
fn name_cell(ui: &mut egui::Ui, state: &mut StudioState, b: usize, name: &str) {
    let editing = state.block_rename.as_ref().is_some_and(|(k, _)| *k == b);
    ui.horizontal(|ui| {
        if editing {
            let mut apply = false;
            let mut cancel = false;
            if let Some((_, text)) = state.block_rename.as_mut() {
                let l = ui.label("new name");
                let resp = ui
                    .add(egui::TextEdit::singleline(text).desired_width(140.0))
                    .labelled_by(l.id);
                resp.request_focus();
                apply = ui.input(|i| i.key_pressed(egui::Key::Enter));
                cancel = ui.input(|i| i.key_pressed(egui::Key::Escape));
            }
            if ui.small_button("OK").clicked() {
                apply = true;
            }
            if ui.small_button("Cancel").clicked() {
                cancel = true;
            }
            if apply {
                if let Some((k, text)) = state.block_rename.take() {
                    if text.trim() != name {
                        state.send(Command::RenameBlock(k, text));
                    }
                }
            } else if cancel {
                state.block_rename = None;
            }
        } else {
            ui.label(name);
            if b > 0
                && ui
                    .small_button("rename")
                    .on_hover_text(format!("Rename block {b}"))
                    .clicked()
            {
                state.block_rename = Some((b, name.to_string()));
            }
        }
    });
}
