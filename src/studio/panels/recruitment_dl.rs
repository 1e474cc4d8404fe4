//! The Recruitment panel's description-length plots: the data bits L(D | M) and the model's own
//! bits DL(M) − L(D | M) side by side, each on its own scale (on one axis the model's few
//! hundred bits lay under a line of a million, and DL(M) hid L(D | M)).

use egui::Color32;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::engine::protocol::{RecruitView, RoundSummary};

/// The data's line and the model's, in colours of their own.
const DATA: Color32 = Color32::from_rgb(70, 130, 220);
const MODEL: Color32 = Color32::from_rgb(230, 140, 40);

/// One point per training step: the last of the rounds at that step (a round that accepted a
/// move goes on at the same step). Several points at one x made egui_plot shade the triangle
/// between them.
pub(super) fn per_step(rec: &RecruitView, y: impl Fn(&RoundSummary) -> f64) -> PlotPoints<'static> {
    let mut points: Vec<[f64; 2]> = Vec::new();
    for r in &rec.rounds {
        let p = [r.step as f64, y(r)];
        match points.last_mut() {
            Some(last) if last[0] == p[0] => *last = p,
            _ => points.push(p),
        }
    }
    points.into()
}

/// L(D | M) and DL(M) − L(D | M) after each round, side by side.
pub(super) fn dl_plots(ui: &mut egui::Ui, rec: &RecruitView) {
    let data = per_step(rec, |r| r.data_bits);
    let model = per_step(rec, |r| r.dl_bits - r.data_bits);
    ui.columns(2, |cols| {
        if let [left, right] = cols {
            Plot::new("recruit_data_bits")
                .height(150.0)
                .legend(Legend::default())
                .x_axis_label("training step")
                .y_axis_label("bits")
                .show(left, |plot| {
                    plot.line(Line::new("L(D | M)", data).color(DATA))
                })
                .response
                .on_hover_text(
                    "After each round, the data's code length L(D | M) on the held-out buffer at \
                     λ_rec. It falls as training proceeds, and every accepted move lowers \
                     DL(M) = L(D | M) + the model's bits (right) by more than δ against its \
                     control.",
                );
            Plot::new("recruit_model_bits")
                .height(150.0)
                .include_y(0.0)
                .legend(Legend::default())
                .x_axis_label("training step")
                .y_axis_label("bits")
                .show(right, |plot| {
                    plot.line(Line::new("DL(M) − L(D | M)", model).color(MODEL));
                })
                .response
                .on_hover_text(
                    "The model's own bits after each round: Σ_k [(p_k/2)·log₂ n + c_blk] + L(b), \
                     the blocks' parameters (when anchor keys are charged), headers and map. A \
                     block is kept only when the data bits it saves (left) exceed what it adds \
                     here by more than δ.",
                );
        }
    });
}
