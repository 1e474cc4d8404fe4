//! The Specialists tab's Grow form: a base (one of our checkpoints, or a pretrained decoder
//! whose specialists are then adapters), a documents file or folder and a folder to save the
//! pool in; Grow runs `localist specialists`' search with its defaults in the worker, as a
//! cancellable job, and the tab then shows the pool it saved.

use std::path::{Path, PathBuf};

use egui::Color32;

use crate::engine::protocol::{GrowPool, PoolJob};

/// What the form holds between frames.
#[derive(Clone, Debug, Default)]
pub struct GrowForm {
    /// The base: a checkpoint folder, a `.gguf` file or a Hugging Face folder.
    pub base: String,
    /// Documents: a folder (one per file) or a file (blank-line separated).
    pub docs: String,
    /// The folder to save the pool in (new, or empty).
    pub out: String,
    /// Why the last Grow was not sent.
    pub error: Option<String>,
}

impl GrowForm {
    /// The job the form describes, or (in `error`) why it cannot be sent: every field filled,
    /// the base and documents present, and the folder to save in new or empty (a pool never
    /// overwrites what is there).
    pub fn request(&mut self) -> Option<GrowPool> {
        self.error = self.check().err();
        if self.error.is_some() {
            return None;
        }
        Some(GrowPool {
            job: PoolJob::defaults(self.base.trim().into(), self.docs.trim().into()),
            out: PathBuf::from(self.out.trim()),
        })
    }

    fn check(&self) -> Result<(), String> {
        let (base, docs, out) = (self.base.trim(), self.docs.trim(), self.out.trim());
        for (what, v) in [("base", base), ("documents", docs), ("save in", out)] {
            if v.is_empty() {
                return Err(format!("{what}: empty"));
            }
        }
        for (what, v) in [("base", base), ("documents", docs)] {
            if !Path::new(v).exists() {
                return Err(format!("{what}: {v} does not exist"));
            }
        }
        let out = Path::new(out);
        crate::engine::outputs::check_new_or_empty(out)
            .map_err(|m| format!("save in: {}: {m}", out.display()))
    }
}

/// A path field (laid out 480 points wide: a grid cell would clamp it to its column).
fn field<'a>(text: &'a mut String, hint: &'a str) -> egui::TextEdit<'a> {
    egui::TextEdit::singleline(text).hint_text(hint)
}

/// Draw the form; `held` is the path of the model the studio holds, when it has one. Returns
/// the pool to grow when Grow was pressed and the form is complete.
pub fn show(ui: &mut egui::Ui, form: &mut GrowForm, held: Option<&str>) -> Option<GrowPool> {
    let mut request = None;
    egui::CollapsingHeader::new("Grow a pool…")
        .id_salt("pool_grow")
        .show(ui, |ui| {
            egui::Grid::new("pool_grow_grid").num_columns(3).show(ui, |ui| {
                let l = ui.label("base");
                ui.add_sized([480.0, 20.0], field(&mut form.base, "a checkpoint folder, .gguf file or HF folder"))
                    .labelled_by(l.id)
                    .on_hover_text(
                        "One of our checkpoints (specialists fine-tune its output bias), or a \
                         pretrained decoder: a .gguf file or a LLaMA, Mistral, Phi-3, Qwen2, Qwen3, GPT-2, GPT-Neo, GPT-NeoX, Phi or Gemma folder \
                         (specialists are then rank-1 adapters on its last attention output).",
                    );
                if let Some(h) = held.filter(|h| Path::new(h).exists()) {
                    if ui.button("the model held").on_hover_text(h).clicked() {
                        form.base = h.to_string();
                    }
                }
                ui.end_row();
                let l = ui.label("documents");
                ui.add_sized([480.0, 20.0], field(&mut form.docs, "a text file or a folder of documents"))
                    .labelled_by(l.id)
                    .on_hover_text("A folder (one document per file) or a text file (documents separated by blank lines).");
                ui.end_row();
                let l = ui.label("save in");
                ui.add_sized([480.0, 20.0], field(&mut form.out, "a new or empty folder"))
                    .labelled_by(l.id)
                    .on_hover_text("A new or empty folder: the pool's manifest, one checkpoint or adapter folder per specialist, and the documents.");
                ui.end_row();
            });
            ui.horizontal(|ui| {
                if ui
                    .button("Grow")
                    .on_hover_text(
                        "Grow the pool by description length (SPEC §10), as `localist \
                         specialists` does with its defaults: route, recruit a specialist for \
                         the documents coded worst, merge or prune, until a round accepts \
                         nothing. The status bar follows the moves; Cancel keeps what was \
                         accepted so far and saves it.",
                    )
                    .clicked()
                {
                    request = form.request();
                }
                if let Some(e) = &form.error {
                    ui.colored_label(Color32::from_rgb(230, 90, 80), e);
                }
            });
        });
    request
}
