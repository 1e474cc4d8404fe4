//! The lines above the heatmaps that say what they are not: views of another text or model
//! ([`stale_note`]) and texts the model mostly does not know.

use crate::engine::worker::Command;
use crate::studio::state::StudioState;

/// The orange line over a view that is not of what the studio shows now: why, and what to do
/// (a new text is measured with Capture; a new model's capture is on its way).
pub fn stale_note(ui: &mut egui::Ui, why: &str, what: &str) {
    let todo = if why.ends_with("text") {
        "press Capture to measure this text"
    } else {
        "recomputing…"
    };
    ui.colored_label(
        crate::studio::widgets::WARNING,
        format!("{why}: {what} are from before the last change ({todo})"),
    );
}

/// The line over a preview: its numbers come from bf16 weight products, and the exact
/// capture is on its way.
pub(super) fn preview_note(ui: &mut egui::Ui) {
    ui.label(
        egui::RichText::new("preview: bf16 weight products, the exact heatmaps follow…")
            .italics()
            .weak(),
    )
    .on_hover_text(
        "To follow the dial quickly, this capture ran the model's weight products in bf16 \
         (8 significant bits; attention within about 0.02 of the exact values). The exact \
         f32 capture replaces it as soon as it is done, unless the dial moves again first.",
    );
}

/// An orange line when most of the text is unknown to the model (`<unk>`), with a button that
/// puts the model's own sample in its place.
/// The notes on what the capture's text lets its numbers say: unknown tokens, and a block
/// map that puts nearly all of the text in one block (ε and PF then read near 0 and 1
/// whatever the model does).
pub(super) fn text_notes(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    cap: &crate::engine::Capture,
    tokens: &[String],
) {
    unknown_note(ui, state, tokens);
    if let Some(why) = &cap.weak_map {
        ui.colored_label(crate::studio::widgets::WARNING, format!("warning: {why}"))
            .on_hover_text(
                "ε is the attention outside each query's relevant block. When nearly every \
                 key is already in it, ε is near 0 and PF near 1 for any model, localist or \
                 not: the numbers below measure the map, not the model.",
            );
    }
}

fn unknown_note(ui: &mut egui::Ui, state: &mut StudioState, tokens: &[String]) {
    let unknown = tokens
        .iter()
        .filter(|t| t.as_str() == "<unk>" || t.as_str() == "\u{FFFD}")
        .count();
    if tokens.is_empty() {
        return;
    }
    if unknown * 2 <= tokens.len() {
        replaced_note(ui, &state.text, tokens);
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.colored_label(
            crate::studio::widgets::WARNING,
            format!(
                "{unknown} of {} tokens are unknown to this model (<unk>): its attention says \
                 little about this text",
                tokens.len()
            ),
        );
        let sample = state.summary.as_ref().and_then(|s| s.sample_text.clone());
        if let Some(t) = sample {
            if ui.button("Use the model's own sample").clicked() {
                state.text = t.clone();
                state.auto_text = Some(t.clone());
                state.send(Command::Capture(t));
            }
        }
    });
}

/// For a character model, a line when characters of the text are outside its 96 symbols and
/// were read as `?`: the `?` tokens the text did not have. (A word model's `?` tokens are the
/// text's own, so it gets none.)
fn replaced_note(ui: &mut egui::Ui, text: &str, tokens: &[String]) {
    let asked = text.chars().filter(|&c| c == '?').count();
    let read = tokens.iter().filter(|t| t.as_str() == "?").count();
    let replaced = read.saturating_sub(asked);
    if replaced == 0 {
        return;
    }
    let color = if replaced * 2 > tokens.len() {
        crate::studio::widgets::WARNING
    } else {
        ui.visuals().weak_text_color()
    };
    ui.colored_label(
        color,
        format!(
            "{replaced} of {} characters are outside this model's 96 symbols (printable ASCII \
             and newline) and were read as '?'",
            tokens.len()
        ),
    )
    .on_hover_text(
        "A character model (the reference vocabulary) sees every other character, accented \
         letters and other scripts included, as the same '?'; its attention on them is \
         attention on '?'.",
    );
}
