//! The Training panel's plots, drawn like a training dashboard: loss and Ω per step, the
//! held-out perplexity, and the held-out entropy and PF_mass. Each has an "enlarge" button that
//! opens it in a large, resizable window with the same data, hover readout and zoom behaviour
//! (wheel zoom with Ctrl, double click to fit again).

use egui_plot::{Line, Plot, PlotPoints};

use crate::engine::held_out::{detect_overfit, open_queries_note, HeldOutPoint, OVERFIT_RATIO};
use crate::engine::worker::{Command, LivePoint};
use crate::studio::state::{CurvePoint, StudioState, TrainingPlot};

/// A plot as a training dashboard wants it in a scrolling side panel: the mouse wheel scrolls
/// the panel and zooms the plot only with Ctrl held (so the curves keep fitting their data
/// until the user zooms on purpose; a double click fits them again), the y axis keeps room for
/// its tick labels, and hovering reads out the nearest point.
fn dashboard_plot(ui: &egui::Ui, id: &str) -> Plot<'static> {
    let zoom = ui.input(|i| i.modifiers.command);
    Plot::new(id.to_string())
        .allow_zoom(zoom)
        .allow_scroll(zoom)
        .allow_double_click_reset(true)
        .y_axis_min_width(40.0)
        .legend(egui_plot::Legend::default())
}

/// One value per training step, as an exponential moving average when the plots are smoothed.
fn step_series(state: &StudioState, f: &dyn Fn(&CurvePoint) -> f64) -> PlotPoints<'static> {
    let mut avg: Option<f64> = None;
    state
        .curve
        .iter()
        .map(|c| {
            let v = f(c);
            let shown = if state.smooth_curves {
                let a = avg.map_or(v, |m| 0.95 * m + 0.05 * v);
                avg = Some(a);
                a
            } else {
                v
            };
            [c.step as f64 + 1.0, shown]
        })
        .collect()
}

/// A live held-out series.
fn live_series(state: &StudioState, f: &dyn Fn(&LivePoint) -> Option<f64>) -> PlotPoints<'static> {
    state
        .live
        .iter()
        .filter_map(|p| f(p).map(|v| [p.step as f64, v]))
        .collect()
}

/// What each plot shows when hovered.
fn hover_text(which: TrainingPlot) -> &'static str {
    match which {
        TrainingPlot::Loss => "Training loss and the locality penalty Ω per step.",
        TrainingPlot::Perplexity => {
            "Held-out perplexity at λ_inf = 0 on 8 windows, about once a second."
        }
        TrainingPlot::HeldOut => {
            "Held out, at λ_inf = 0, on 8 windows, about once a second while training: mean \
             attention entropy in bits, and pointer fidelity PF_mass (attention mass on each \
             query's relevant keys)."
        }
    }
}

/// Draw one plot, `id` apart (the enlarged copy zooms on its own), at `size`.
pub fn plot(
    ui: &mut egui::Ui,
    state: &StudioState,
    which: TrainingPlot,
    id: &str,
    size: egui::Vec2,
) -> egui::Response {
    let base = dashboard_plot(ui, id).width(size.x).height(size.y);
    let resp = match which {
        TrainingPlot::Loss => {
            let loss = step_series(state, &|c| c.loss_nats);
            let pen = step_series(state, &|c| c.penalty);
            base.x_axis_label("steps").show(ui, |plot| {
                plot.line(Line::new("loss (nats)", loss));
                plot.line(Line::new("Ω (mean)", pen));
            })
        }
        TrainingPlot::Perplexity => {
            let ppl = live_series(state, &|p| Some(p.eval.perplexity));
            base.show(ui, |plot| plot.line(Line::new("held-out perplexity", ppl)))
        }
        TrainingPlot::HeldOut => {
            let ent = live_series(state, &|p| Some(p.eval.entropy_bits));
            let pf = live_series(state, &|p| Some(p.eval.pf_mass));
            let pf_true = live_series(state, &|p| p.eval.pf_true_mass);
            let has_true = state.live.iter().any(|p| p.eval.pf_true_mass.is_some());
            base.x_axis_label("steps").show(ui, |plot| {
                plot.line(Line::new("entropy (bits)", ent));
                plot.line(Line::new("PF_mass vs R(i)", pf));
                if has_true {
                    plot.line(Line::new("PF_mass vs true targets", pf_true));
                }
            })
        }
    };
    resp.response.on_hover_text(hover_text(which))
}

/// A plot in the side panel with its "enlarge" button above it.
fn small_plot(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    which: TrainingPlot,
    height: f32,
) -> egui::Rect {
    // Wrapped: a button that does not fit goes below the title rather than widening the
    // panel's content past its edge (which clipped every line under it).
    ui.horizontal_wrapped(|ui| {
        ui.weak(which.title());
        if ui
            .small_button(format!("enlarge {}", which.title()))
            .on_hover_text("Open this plot large, in a window of its own")
            .clicked()
        {
            state.enlarged_plot = Some(which);
        }
    });
    let size = egui::vec2(ui.available_width(), height);
    plot(ui, state, which, which.id(), size).rect
}

/// The loss and Ω curve, and the live held-out curves; returns where the loss plot and the
/// held-out plots were drawn (for the PNG export).
pub fn curves(ui: &mut egui::Ui, state: &mut StudioState) -> (egui::Rect, egui::Rect) {
    if !state.curve.is_empty() {
        ui.checkbox(&mut state.smooth_curves, "smooth")
            .on_hover_text(
                "Draw the loss and Ω as exponential moving averages over about 20 steps (the raw \
                 values stay in the CSV export)",
            );
    }
    if state.curve.is_empty() && state.live.is_empty() {
        // No axes without data: say what will be drawn here.
        let r = ui
            .weak(
                "The loss and Ω per step, the held-out perplexity and the held-out entropy and \
                 PF_mass appear here once a run starts (New run).",
            )
            .rect;
        return (r, r);
    }
    let loss = small_plot(ui, state, TrainingPlot::Loss, 140.0);
    let ppl = small_plot(ui, state, TrainingPlot::Perplexity, 110.0);
    let held = small_plot(ui, state, TrainingPlot::HeldOut, 120.0);
    if let Some(p) = state.live.last() {
        ui.label(format!(
            "held out at step {}: perplexity {:.3}, entropy {:.3} bits, PF_mass {:.3}",
            p.step, p.eval.perplexity, p.eval.entropy_bits, p.eval.pf_mass
        ))
        .on_hover_text(
            "Perplexity = 2^(bits per token); entropy in bits per attention row; PF_mass is the \
             fraction of attention on each query's relevant keys R(i), so 1 − ε.",
        );
    }
    overfit_note(ui, state);
    (loss, ppl.union(held))
}

/// The enlarged plot's window, when one is open: the same plot as in the side panel, filling a
/// resizable window.
pub fn enlarged(ctx: &egui::Context, state: &mut StudioState) {
    let Some(which) = state.enlarged_plot else {
        return;
    };
    let mut open = true;
    egui::Window::new(which.title())
        .open(&mut open)
        .default_size(egui::vec2(860.0, 520.0))
        .resizable(true)
        .collapsible(false)
        .show(ctx, |ui| {
            ui.weak("Ctrl + wheel zooms; drag to pan; double click fits the curves again.");
            let size = ui.available_size().max(egui::vec2(320.0, 200.0));
            plot(ui, state, which, &format!("{}_large", which.id()), size);
        });
    if !open {
        state.enlarged_plot = None;
    }
}

/// In a run that recruits blocks without windows for its unassigned queries: why it may
/// learn by heart where the run without recruitment does not (the CLI's note, as a sentence).
fn recruitment_note(state: &StudioState) -> String {
    let blocks = state.summary.as_ref().map_or(1, |s| s.blocks.len());
    state
        .recruitment
        .as_ref()
        .and_then(|r| open_queries_note(&r.config, blocks))
        .map(|note| {
            let mut s = note.to_string();
            if let Some(first) = s.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            format!(
                " {s}. In the studio: tick \"windows until the first block\" under \
                 \"recruit blocks\" (Training) for the next run."
            )
        })
        .unwrap_or_default()
}

/// A warning when the live held-out perplexity has risen well above its best and stayed there.
fn overfit_note(ui: &mut egui::Ui, state: &mut StudioState) {
    let points: Vec<HeldOutPoint> = state
        .live
        .iter()
        .map(|p| HeldOutPoint {
            step: p.step,
            ce_nats: p.eval.ce_nats,
            tokens: p.eval.tokens,
        })
        .collect();
    if let Some(o) = detect_overfit(&points) {
        ui.colored_label(
            crate::studio::widgets::WARNING,
            format!("Overfitting: {}.", o.message(None, None)),
        )
        .on_hover_text(format!(
            "Two held-out measurements in a row more than {:.0}% above the best. The corpus is \
             too small for this many steps: go back to the best step (the button below), stop the \
             run, or train on more text or for fewer steps (`localist train` ends such a run on \
             the weights of its best step under the blocks it ended with; `--keep-best` goes \
             back blocks and all).{}",
            100.0 * (OVERFIT_RATIO - 1.0),
            recruitment_note(state)
        ));
        let back = ui
            .button(format!("Back to step {}", o.best.step))
            .on_hover_text(
                "Put the run back on its state at its best held-out point and stop it there \
                 (Save… then keeps those weights; Train goes on from that step). In a run that \
                 recruits blocks, the block map and recruitment log go back too: blocks \
                 recruited after that step are dropped, and the status bar names them.",
            );
        if back.clicked() {
            state.send(Command::BackToBest);
        }
        // In a run that recruits, the weights can go back without the blocks found since.
        if state.recruitment.is_some() {
            let keep = ui
                .button(format!("Step {}'s weights, these blocks", o.best.step))
                .on_hover_text(
                    "Put the run on the weights of its best held-out point under the blocks it \
                     has now, and stop it there: every block and move found since stays, and \
                     a block recruited after that step keeps its last anchor keys (what \
                     `localist train` does with a run that ends overfitting). Its held-out \
                     metrics are measured again under these blocks.",
                );
            if keep.clicked() {
                state.send(Command::BestWeightsUnderTheseBlocks);
            }
        }
    }
}
