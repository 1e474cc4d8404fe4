//! The Model panel: what is loaded, opening another checkpoint and saving the current one.

use std::path::PathBuf;

use crate::engine::worker::Command;
use crate::studio::state::StudioState;

/// Draw the model summary and the open/save buttons; `open_dialog` and `save_dialog` start
/// the file pickers.
pub fn show(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    open_dialog: &mut dyn FnMut(),
    save_dialog: &mut dyn FnMut(),
    samples: &[(String, PathBuf)],
) {
    ui.heading("Model");
    match &state.summary {
        Some(s) => {
            egui::Grid::new("model_summary")
                .num_columns(2)
                .show(ui, |ui| {
                    ui.label("source");
                    ui.label(&s.source);
                    ui.end_row();
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
                    ui.label("λ_train");
                    ui.label(
                        s.lambda_train
                            .map(|l| format!("{l:.2}"))
                            .unwrap_or_else(|| "?".into()),
                    )
                    .on_hover_text("The penalty weight the weights were trained under.");
                    ui.end_row();
                    ui.label("blocks");
                    ui.label(format!("{}", s.blocks.len()))
                        .on_hover_text(s.blocks.join(", "));
                    ui.end_row();
                });
        }
        None => {
            ui.label("no model loaded");
        }
    }
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Open…")
            .on_hover_text("Open a checkpoint folder (Ctrl+O)")
            .clicked()
        {
            open_dialog();
        }
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
