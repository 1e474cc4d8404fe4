//! The Theory panel: the current text's measured ε and entropy over λ_inf beside the derived
//! bounds (SPEC §8, labelled "derived bounds"), the exact mode-A curve for layer 0, and a red
//! flag with the row when a measurement breaks a bound.

use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::engine::theory::TheoryPoint;
use crate::engine::worker::Command;
use crate::studio::state::StudioState;

/// λ grid of the curve.
pub fn grid() -> Vec<f64> {
    (0..=20).map(|k| k as f64 / 20.0).collect()
}

/// Draw the panel; asks the worker for a new curve when the capture has changed.
pub fn show(ui: &mut egui::Ui, state: &mut StudioState) {
    let stale = state
        .theory
        .as_ref()
        .is_none_or(|(gen, _)| *gen != state.capture_generation);
    if stale && !state.theory_pending && state.capture.is_some() {
        state.theory_pending = true;
        state.send(Command::TheoryCurve(grid()));
    }
    ui.label(format!(
        "Current text under mode {} (schedule as set), λ_inf from 0 to 1. Bounds are the derived \
         bounds of SPEC §8 at each row's margin; mode B mixes two softmaxes, so they are not drawn for it.",
        state.dial.params.mode.label()
    ));
    let Some((_, curve)) = &state.theory else {
        ui.label("computing…");
        return;
    };
    let curve = curve.clone();
    if let Some(why) = state.stale_theory() {
        ui.colored_label(
            crate::studio::widgets::WARNING,
            format!("{why}: the curve below is from before the last change (recomputing…)"),
        );
    }
    let mut want_png = false;
    ui.horizontal(|ui| {
        ui.label("off-block mass ε");
        ui.menu_button("Export", |ui| want_png = export_menu(ui, state, &curve));
    });
    let plots = lambda_plots(ui, &curve);
    if want_png {
        state.screenshot_request = Some(("theory.png".into(), plots));
    }
    over_training(ui, state);
    let Some((_, curve)) = &state.theory else {
        return;
    };
    violations(ui, curve);
}

/// The Export menu: the curve as CSV or JSON; returns true when the plots are wanted as PNG.
fn export_menu(ui: &mut egui::Ui, state: &mut StudioState, curve: &[TheoryPoint]) -> bool {
    let mut want_png = false;
    if ui.button("numbers as CSV…").clicked() {
        state.pending_export = Some(("theory.csv".into(), theory_csv(curve).into_bytes()));
        ui.close();
    }
    if ui.button("numbers as JSON…").clicked() {
        match serde_json::to_string_pretty(curve) {
            Ok(j) => state.pending_export = Some(("theory.json".into(), j.into_bytes())),
            Err(e) => state.error = Some(format!("export failed: {e}")),
        }
        ui.close();
    }
    if ui.button("plots as PNG…").clicked() {
        want_png = true;
        ui.close();
    }
    want_png
}

/// ε and entropy over λ_inf against the derived bounds; returns where both plots were drawn.
fn lambda_plots(ui: &mut egui::Ui, curve: &[TheoryPoint]) -> egui::Rect {
    let pts = |f: &dyn Fn(&TheoryPoint) -> Option<f64>| -> PlotPoints {
        curve
            .iter()
            .filter_map(|p| f(p).map(|v| [p.lambda, v]))
            .collect()
    };
    let eps_plot = Plot::new("theory_eps")
        .height(220.0)
        .legend(Legend::default())
        .include_y(0.0)
        .show(ui, |plot| {
            plot.line(Line::new("measured ε (all layers)", pts(&|p| Some(p.eps))));
            plot.line(Line::new(
                "measured ε, layer 0",
                pts(&|p| Some(p.eps_layer0)),
            ));
            plot.line(Line::new(
                "mode A closed form, layer 0 (exact)",
                pts(&|p| p.eps_layer0_closed_form),
            ));
            plot.line(Line::new(
                "derived bound 8.1 (mean over rows)",
                pts(&|p| p.eps_bound),
            ));
        });
    ui.label("attention entropy (bits)");
    let entropy_plot = Plot::new("theory_entropy")
        .height(220.0)
        .legend(Legend::default())
        .include_y(0.0)
        .show(ui, |plot| {
            plot.line(Line::new(
                "measured entropy",
                pts(&|p| Some(p.entropy_bits)),
            ));
            plot.line(Line::new(
                "derived bound 8.2 (mean over rows)",
                pts(&|p| p.entropy_bound_bits),
            ));
        });
    eps_plot.response.rect.union(entropy_plot.response.rect)
}

/// Whether every row respects the bounds over λ, or a red line per λ where some do not.
fn violations(ui: &mut egui::Ui, curve: &[TheoryPoint]) {
    let violations: usize = curve.iter().map(|p| p.violations).sum();
    if violations == 0 {
        ui.label(format!(
            "every row of every head respects bounds 8.1 and 8.2 at all {} values of λ",
            curve.len()
        ));
    } else {
        for p in curve.iter().filter(|p| p.violations > 0) {
            ui.colored_label(
                egui::Color32::LIGHT_RED,
                format!(
                    "λ = {:.2}: {} rows break a bound (a bug); first: {}",
                    p.lambda,
                    p.violations,
                    p.first_violation.clone().unwrap_or_default()
                ),
            );
        }
    }
}

/// The current text at the current dial, measured about once a second while training runs,
/// against the same bounds: how concentration develops with training.
fn over_training(ui: &mut egui::Ui, state: &StudioState) {
    let points: Vec<(usize, &TheoryPoint)> = state
        .live
        .iter()
        .filter_map(|l| l.theory.as_ref().map(|t| (l.step, t)))
        .collect();
    ui.separator();
    ui.strong("over training steps");
    if points.is_empty() {
        ui.label(
            "Start a run in the Training panel: while it trains, the current text is measured \
             against the bounds about once a second and plotted here.",
        );
        return;
    }
    let pts = |f: &dyn Fn(&TheoryPoint) -> Option<f64>| -> PlotPoints {
        points
            .iter()
            .filter_map(|(s, p)| f(p).map(|v| [*s as f64, v]))
            .collect()
    };
    ui.columns(2, |cols| {
        if let [left, right] = cols {
            Plot::new("theory_steps_eps")
                .height(180.0)
                .legend(Legend::default())
                .include_y(0.0)
                .x_axis_label("steps")
                .show(left, |plot| {
                    plot.line(Line::new("measured ε", pts(&|p| Some(p.eps))));
                    plot.line(Line::new("bound 8.1 on ε", pts(&|p| p.eps_bound)));
                });
            Plot::new("theory_steps_entropy")
                .height(180.0)
                .legend(Legend::default())
                .include_y(0.0)
                .x_axis_label("steps")
                .show(right, |plot| {
                    plot.line(Line::new(
                        "measured entropy (bits)",
                        pts(&|p| Some(p.entropy_bits)),
                    ));
                    plot.line(Line::new(
                        "bound 8.2 (bits)",
                        pts(&|p| p.entropy_bound_bits),
                    ));
                });
        }
    });
    let bad: Vec<_> = points.iter().filter(|(_, p)| p.violations > 0).collect();
    if bad.is_empty() {
        ui.label(format!(
            "every row respects bounds 8.1 and 8.2 at all {} measured steps",
            points.len()
        ));
    }
    for (step, p) in bad {
        ui.colored_label(
            egui::Color32::LIGHT_RED,
            format!(
                "step {step}: {} rows break a bound (a bug); first: {}",
                p.violations,
                p.first_violation.clone().unwrap_or_default()
            ),
        );
    }
}

/// The theory curve as CSV: one row per λ.
pub fn theory_csv(curve: &[TheoryPoint]) -> String {
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    let mut out = String::from(
        "lambda,eps,eps_layer0,eps_layer0_closed_form,eps_bound_8_1,entropy_bits,entropy_bound_8_2_bits,violations\n",
    );
    for p in curve {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            p.lambda,
            p.eps,
            p.eps_layer0,
            opt(p.eps_layer0_closed_form),
            opt(p.eps_bound),
            p.entropy_bits,
            opt(p.entropy_bound_bits),
            p.violations
        ));
    }
    out
}
