//! Each side's controls: which model (the current one, a bundled sample, a fetched pretrained
//! model, or any path typed or browsed to: a checkpoint folder, a `.gguf` file or a Hugging
//! Face folder), its λ and its dial mode; and the request for new views when they change.

use std::path::PathBuf;

use crate::engine::compare::CompareSide;
use crate::engine::worker::Command;
use crate::engine::DialMode;
use crate::studio::state::{FileRequest, StudioState};

/// The two sides' controls; asks the worker for new views when they or the text changed.
pub(super) fn configure(ui: &mut egui::Ui, state: &mut StudioState, models: &[(String, PathBuf)]) {
    let mut sides = state.compare.sides.clone();
    let mut paths = state.compare.paths.clone();
    let mut browse = None;
    ui.columns(2, |cols| {
        for (k, ui) in cols.iter_mut().enumerate() {
            if let (Some(side), Some(path)) = (sides.get_mut(k), paths.get_mut(k)) {
                if let Some(req) = side_controls(ui, k, side, path, models) {
                    browse = Some(req);
                }
            }
        }
    });
    state.compare.paths = paths;
    if browse.is_some() {
        state.file_request = browse;
    }
    if sides != state.compare.sides {
        state.compare.sides = sides;
    }
    let stale =
        state.compare.views.as_ref().is_none_or(|(gen, s, _)| {
            *gen != state.capture_generation || s != &state.compare.sides
        });
    if stale && !state.compare.pending && state.capture.is_some() {
        state.compare.pending = true;
        state.send(Command::Compare(Box::new(state.compare.sides.clone())));
    }
}

/// The model's name for the menu: its name in `models`, else its path.
fn model_name(side: &CompareSide, models: &[(String, PathBuf)]) -> String {
    match &side.checkpoint {
        None => "current model".to_string(),
        Some(p) => models
            .iter()
            .find(|(_, q)| q == p)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| p.display().to_string()),
    }
}

/// One side: model menu, typed path with its browse buttons, λ and mode. Returns the file
/// dialog asked for, if any.
fn side_controls(
    ui: &mut egui::Ui,
    k: usize,
    side: &mut CompareSide,
    path: &mut String,
    models: &[(String, PathBuf)],
) -> Option<FileRequest> {
    let name = if k == 0 { "A" } else { "B" };
    ui.strong(format!("side {name}"));
    egui::ComboBox::from_label(format!("model {name}"))
        .selected_text(model_name(side, models))
        .width(220.0)
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut side.checkpoint, None, "current model");
            for (n, p) in models {
                ui.selectable_value(&mut side.checkpoint, Some(p.clone()), n);
            }
        });
    let mut browse = None;
    ui.horizontal_wrapped(|ui| {
        let l = ui.label(format!("path {name}"));
        let edit = egui::TextEdit::singleline(path)
            .hint_text("checkpoint folder, .gguf or HF folder")
            .desired_width(110.0);
        let resp = ui.add(edit).labelled_by(l.id);
        if resp.lost_focus() && !path.trim().is_empty() {
            side.checkpoint = Some(PathBuf::from(path.trim()));
        }
        if ui
            .small_button(format!("folder {name}…"))
            .on_hover_text("Browse to a checkpoint folder or a Hugging Face folder")
            .clicked()
        {
            browse = Some(FileRequest::CompareFolder(k));
        }
        if ui
            .small_button(format!(".gguf {name}…"))
            .on_hover_text("Browse to a .gguf file (LLaMA family)")
            .clicked()
        {
            browse = Some(FileRequest::CompareFile(k));
        }
    });
    ui.add(egui::Slider::new(&mut side.dial.params.lambda, 0.0..=1.0).text(format!("λ {name}")))
        .on_hover_text("The inference dial λ_inf of this side (all layers).");
    egui::ComboBox::from_label(format!("mode {name}"))
        .selected_text(side.dial.params.mode.label())
        .show_ui(ui, |ui| {
            for m in DialMode::ALL {
                ui.selectable_value(&mut side.dial.params.mode, m, m.label());
            }
        });
    browse
}
