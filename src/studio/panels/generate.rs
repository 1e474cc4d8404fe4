//! The Generate panel: a few tokens after the current text, each with the next-token
//! distribution it was chosen from under the current dial and rules, so a user sees what the
//! dial does to what the model says, not only to where it looks.

use egui::Color32;

use crate::engine::generate::Generation;
use crate::engine::protocol::Depends;
use crate::engine::worker::Command;
use crate::studio::state::StudioState;

/// Draw the panel.
pub fn show(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.heading("Generate");
    let Some(summary) = state.summary.clone() else {
        ui.label("no model loaded");
        return;
    };
    if !summary.generates {
        ui.label(
            "This model is an encoder: it has no next-token head, so it cannot generate. \
             Its attention and the dial work in the other tabs.",
        );
        return;
    }
    let on = state.rules.resolved.iter().filter(|r| r.enabled).count();
    ui.label(format!(
        "Greedy continuation of the current text under the dial (mode {}, λ = {:.2}){}.",
        state.dial.params.mode.label(),
        state.dial.params.lambda,
        if on > 0 {
            format!(" with {on} rules in force")
        } else {
            String::new()
        }
    ));
    if state.rules.not_in_force.is_some() {
        ui.colored_label(
            Color32::LIGHT_RED,
            "the rules are not in force on this model (they do not resolve on its blocks): \
             generation runs without them",
        );
    }
    controls(ui, state);
    let Some(g) = state.generate.last.clone() else {
        ui.label("Nothing generated yet.");
        return;
    };
    ui.separator();
    summary_line(ui, state, &g);
    continuation(ui, &g);
    actions(ui, state, &g);
    ui.separator();
    ui.label(
        "Next-token distribution at each step, most probable first (the chosen one outlined):",
    );
    steps_table(ui, &g);
}

/// The number of tokens and the Generate button, with a spinner while one is on its way.
fn controls(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.horizontal(|ui| {
        ui.add(
            egui::Slider::new(&mut state.generate.tokens, 1..=32)
                .text("tokens")
                .integer(),
        )
        .on_hover_text("How many tokens to generate.");
        let busy = state.generate.pending;
        if ui
            .add_enabled(!busy, egui::Button::new("Generate"))
            .on_hover_text("Generate after the current text under the current dial and rules")
            .clicked()
        {
            state.generate.pending = true;
            state.generate.asked = Some(std::time::Instant::now());
            let n = state.generate.tokens;
            state.send(Command::Generate(n));
        }
        if busy {
            ui.spinner();
            let secs = state
                .generate
                .asked
                .map(|t| t.elapsed().as_secs_f64())
                .unwrap_or(0.0);
            ui.label(format!("generating… {secs:.1} s"));
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(200));
        }
    });
}

/// What the last generation was: its length, dial and speed, and whether the dial has moved.
fn summary_line(ui: &mut egui::Ui, state: &StudioState, g: &Generation) {
    ui.horizontal(|ui| {
        ui.label(format!(
            "{} tokens at mode {}, λ = {:.2}, {:.0} ms per token",
            g.steps.len(),
            g.dial.params.mode.label(),
            g.dial.params.lambda,
            g.ms_per_token
        ))
        .on_hover_text(
            "The prompt's forward pass included. A decoder keeps a KV cache, so each further \
             token runs one position; with rules in force every token is a full pass (a rule \
             can move the whole row).",
        );
        if let Some(why) = state.stale(Some(&g.measured_on), Depends::Model) {
            ui.colored_label(crate::studio::widgets::WARNING, why);
        } else if (g.dial.params.lambda - state.dial.params.lambda).abs() > 1e-9
            || g.dial.params.mode != state.dial.params.mode
        {
            ui.colored_label(
                crate::studio::widgets::WARNING,
                "the dial has moved since: generate again to compare",
            );
        }
    });
}

/// The prompt followed by the generated tokens, each with its probability on hover.
fn continuation(ui: &mut egui::Ui, g: &Generation) {
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        ui.label(egui::RichText::new(&g.prompt).weak());
        for st in &g.steps {
            ui.label(
                egui::RichText::new(&st.text)
                    .strong()
                    .color(Color32::WHITE)
                    .background_color(Color32::from_rgb(40, 70, 110)),
            )
            .on_hover_text(format!(
                "p = {:.3}, entropy {:.2} bits",
                st.top.first().map(|c| c.prob).unwrap_or(0.0),
                st.entropy_bits
            ));
        }
    });
}

/// "Use as text" and "Export JSON…".
fn actions(ui: &mut egui::Ui, state: &mut StudioState, g: &Generation) {
    ui.horizontal(|ui| {
        if ui
            .button("Use as text")
            .on_hover_text("Make the prompt and its continuation the captured text")
            .clicked()
        {
            let t = g.full_text();
            state.text = t.clone();
            state.send(Command::Capture(t));
        }
        if ui.button("Export JSON…").clicked() {
            match serde_json::to_string_pretty(g) {
                Ok(j) => state.pending_export = Some(("generation.json".into(), j.into_bytes())),
                Err(e) => state.error = Some(format!("export failed: {e}")),
            }
        }
    });
}

/// One row per step and one column per rank: each candidate's token on a shade of its
/// probability (the chosen one outlined), the step's entropy first. About 22 points a step.
fn steps_table(ui: &mut egui::Ui, g: &Generation) {
    let ranks = g.steps.iter().map(|st| st.top.len()).max().unwrap_or(0);
    egui::ScrollArea::horizontal()
        .id_salt("generation_steps_scroll")
        .show(ui, |ui| {
            egui::Grid::new("generation_steps")
                .striped(true)
                .spacing([4.0, 2.0])
                .show(ui, |ui| {
                    ui.strong("step");
                    ui.strong("entropy")
                        .on_hover_text("Entropy of the whole next-token distribution, bits.");
                    for r in 1..=ranks {
                        ui.strong(format!("#{r}"));
                    }
                    ui.end_row();
                    for (k, st) in g.steps.iter().enumerate() {
                        ui.label(format!("{}", k + 1));
                        ui.label(format!("{:.2} bits", st.entropy_bits));
                        for c in &st.top {
                            candidate_cell(ui, c, c.id == st.id);
                        }
                        ui.end_row();
                    }
                });
        });
}

/// Text that reads on the blue shade of opacity `alpha`: white on a strong shade or in the
/// dark theme, the theme's dark text on a pale shade over a light background.
fn text_on(ui: &egui::Ui, alpha: u8) -> Color32 {
    if ui.visuals().dark_mode || alpha > 150 {
        Color32::WHITE
    } else {
        ui.visuals().strong_text_color()
    }
}

/// One candidate: its token on a blue shade as strong as its probability.
fn candidate_cell(ui: &mut egui::Ui, c: &crate::engine::protocol::Candidate, chosen: bool) {
    let alpha = (40.0 + 215.0 * c.prob.clamp(0.0, 1.0)) as u8;
    let fill = Color32::from_rgba_unmultiplied(60, 120, 200, alpha);
    let stroke = if chosen {
        egui::Stroke::new(1.5, Color32::from_rgb(240, 200, 80))
    } else {
        egui::Stroke::NONE
    };
    egui::Frame::new()
        .fill(fill)
        .stroke(stroke)
        .inner_margin(egui::Margin::symmetric(4, 1))
        .show(ui, |ui| {
            ui.add(egui::Label::new(
                egui::RichText::new(format!("{:?} {:.0}%", c.text, 100.0 * c.prob))
                    .monospace()
                    .color(text_on(ui, alpha)),
            ))
            .on_hover_text(format!(
                "token id {}, probability {:.4}{}",
                c.id,
                c.prob,
                if chosen { " (chosen)" } else { "" }
            ));
        });
}
