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
/// between them. A round at an earlier step than the one before it starts a new branch: the
/// run went back to the weights of that step (it ended overfitting and was resumed), and the
/// rounds before are a branch its weights left.
pub(super) fn per_step(rec: &RecruitView, y: impl Fn(&RoundSummary) -> f64) -> Vec<Vec<[f64; 2]>> {
    let mut branches: Vec<Vec<[f64; 2]>> = vec![Vec::new()];
    for r in &rec.rounds {
        let p = [r.step as f64, y(r)];
        let last = branches.last().and_then(|b| b.last()).copied();
        match (last, branches.last_mut()) {
            (Some(l), Some(b)) if l[0] == p[0] => {
                b.pop();
                b.push(p);
            }
            (Some(l), _) if p[0] < l[0] => branches.push(vec![p]),
            (_, Some(b)) => b.push(p),
            (_, None) => branches.push(vec![p]),
        }
    }
    branches
}

/// Draw `branches` (of [`per_step`]) as lines named `name`: the last in `color`, the ones the
/// run went back from faded.
pub(super) fn branch_lines(
    plot: &mut egui_plot::PlotUi<'_>,
    name: &str,
    branches: Vec<Vec<[f64; 2]>>,
    color: Color32,
) {
    let n = branches.len();
    for (i, b) in branches.into_iter().enumerate() {
        if i + 1 == n {
            plot.line(Line::new(name.to_string(), PlotPoints::from(b)).color(color));
        } else {
            let faded = format!("{name}, before the run went back");
            plot.line(Line::new(faded, PlotPoints::from(b)).color(color.gamma_multiply(0.35)));
        }
    }
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
                .show(left, |plot| branch_lines(plot, "L(D | M)", data, DATA))
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
                    branch_lines(plot, "DL(M) − L(D | M)", model, MODEL)
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

#[cfg(test)]
mod tests {
    use super::per_step;
    use crate::engine::protocol::{RecruitConfig, RecruitView, RoundSummary};

    #[test]
    fn rounds_after_the_run_went_back_start_a_branch_of_their_own() {
        let rounds = [(50, 1), (75, 2), (75, 3), (100, 3), (40, 3), (65, 4)]
            .into_iter()
            .map(|(step, blocks)| RoundSummary {
                step,
                dl_bits: 0.0,
                data_bits: 0.0,
                blocks,
                round_ms: 0.0,
                train_ms: 0.0,
            })
            .collect();
        let view = RecruitView {
            config: RecruitConfig::default(),
            log: Vec::new(),
            rounds,
            stopped: None,
            renamed: Vec::new(),
            accepted: 0,
            next_due: None,
            cost_ms: (0.0, 0.0),
            json: Ok(Vec::new()),
        };
        let branches = per_step(&view, |r| r.blocks as f64);
        assert_eq!(
            branches,
            vec![
                vec![[50.0, 1.0], [75.0, 3.0], [100.0, 3.0]],
                vec![[40.0, 3.0], [65.0, 4.0]],
            ]
        );
    }
}
