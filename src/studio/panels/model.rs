//! The Model panel: what is loaded, opening another checkpoint or a pretrained model (a `.gguf`
//! file or a Hugging Face folder) and saving the current one.

use std::path::PathBuf;

use crate::engine::worker::{Command, ModelSummary};
use crate::studio::state::{FileRequest, StudioState};

/// Draw the model summary and the open/save buttons; `open_dialog` and `save_dialog` start
/// the file pickers.
pub fn show(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    open_dialog: &mut dyn FnMut(),
    save_dialog: &mut dyn FnMut(),
    samples: &[(String, PathBuf)],
    pretrained: &[(String, PathBuf)],
) {
    ui.heading("Model");
    match &state.summary {
        Some(s) => summary_grid(ui, s),
        None => {
            ui.label("no model loaded");
        }
    }
    open_buttons(ui, state, open_dialog, save_dialog, samples);
    pretrained_buttons(ui, state, pretrained);
    path_field(ui, state);
}

/// What is loaded: source, kind, preset and shape, parameters, λ_train, blocks.
fn summary_grid(ui: &mut egui::Ui, s: &ModelSummary) {
    egui::Grid::new("model_summary")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("source");
            // A long path or kind is cut at the panel's edge: the hover shows it whole.
            ui.label(&s.source).on_hover_text(&s.source);
            ui.end_row();
            if let Some((kind, blocks)) = &s.imported {
                ui.label("kind");
                ui.label(kind).on_hover_text(format!(
                    "{kind}\n\nA pretrained model run by our own forward pass: the dial and \
                     the rules act on it without retraining."
                ));
                ui.end_row();
                ui.label("blocks from");
                ui.label(blocks).on_hover_text(
                    "Rebuild them (k-means or a lexicon) or rename them in the Blocks tab.",
                );
                ui.end_row();
            }
            ui.label("preset");
            ui.label(format!(
                "{} (L={}, H={}, d={}, T={})",
                s.preset, s.shape.0, s.shape.1, s.shape.2, s.shape.3
            ));
            ui.end_row();
            ui.label("parameters");
            ui.label(format!("{}", s.parameters))
                .on_hover_text("Trainable scalars, anchor keys included.");
            ui.end_row();
            if s.imported.is_none() {
                ui.label("λ_train");
                ui.label(
                    s.lambda_train
                        .map(|l| format!("{l:.2}"))
                        .unwrap_or_else(|| "?".into()),
                )
                .on_hover_text("The penalty weight the weights were trained under.");
                ui.end_row();
            }
            ui.label("blocks");
            ui.label(format!("{}", s.blocks.len()))
                .on_hover_text(s.blocks.join(", "));
            ui.end_row();
        });
    for w in &s.warnings {
        ui.colored_label(crate::studio::widgets::WARNING, format!("warning: {w}"));
    }
}

/// Open…, Open model…, Save… and the bundled samples.
fn open_buttons(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    open_dialog: &mut dyn FnMut(),
    save_dialog: &mut dyn FnMut(),
    samples: &[(String, PathBuf)],
) {
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Open…")
            .on_hover_text("Open a checkpoint folder (Ctrl+O)")
            .clicked()
        {
            open_dialog();
        }
        ui.menu_button("Open model…", |ui| {
            if ui
                .button("a .gguf file (LLaMA family)…")
                .on_hover_text("e.g. SmolLM2-135M-Instruct.Q4_1.gguf; its tokenizer is read from the file")
                .clicked()
            {
                state.file_request = Some(FileRequest::ModelFile);
                ui.close();
            }
            if ui
                .button("a Hugging Face folder (BERT, GPT-2, LLaMA, Qwen2)…")
                .on_hover_text("config.json + model.safetensors (or pytorch_model.bin, read weights-only: nothing in it is run) + tokenizer.json")
                .clicked()
            {
                state.file_request = Some(FileRequest::ModelFolder);
                ui.close();
            }
        })
        .response
        .on_hover_text("Open a pretrained model and dial it without retraining");
        if ui
            .button("Save…")
            .on_hover_text("Save the current model, with the dial, as a checkpoint folder (Ctrl+S)")
            .clicked()
        {
            save_dialog();
        }
        for (name, path) in samples {
            if ui
                .small_button(name)
                .on_hover_text(path.display().to_string())
                .clicked()
            {
                state.send(Command::Load(path.clone()));
            }
        }
    });
}

/// The pretrained models fetched into models/, when any.
fn pretrained_buttons(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    pretrained: &[(String, PathBuf)],
) {
    if !pretrained.is_empty() {
        ui.horizontal_wrapped(|ui| {
            ui.label("pretrained:")
                .on_hover_text("Fetched by scripts/fetch_models.sh into models/");
            for (name, path) in pretrained {
                if ui
                    .small_button(name)
                    .on_hover_text(path.display().to_string())
                    .clicked()
                {
                    state.send(Command::Load(path.clone()));
                }
            }
        });
    }
}

/// A path typed by hand: a checkpoint folder, a .gguf file or a Hugging Face folder.
fn path_field(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.horizontal(|ui| {
        let l = ui.label("path");
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut state.model_path)
                    .hint_text("checkpoint, .gguf or HF folder")
                    .desired_width(190.0),
            )
            .labelled_by(l.id);
        let go = ui
            .add_enabled(!state.model_path.trim().is_empty(), egui::Button::new("Open"))
            .on_hover_text("Open the path typed: a Localist checkpoint folder, a .gguf file or a Hugging Face folder");
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (go.clicked() || enter) && !state.model_path.trim().is_empty() {
            let p = PathBuf::from(state.model_path.trim());
            state.send(Command::Load(p));
        }
    });
}
