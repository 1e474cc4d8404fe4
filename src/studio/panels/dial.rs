//! The Dial panel: λ_inf, mode A–D, temperature and the per-layer schedule. Any change sends
//! the new setting to the worker, which re-captures the current text at once.

use crate::engine::threshold::ThresholdEstimate;
use crate::engine::worker::Command;
use crate::engine::{DialMode, LayerSchedule};
use crate::studio::state::StudioState;

/// Draw the dial controls.
pub fn show(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.heading("Dial");
    let mut dial = state.dial.clone();
    let mut changed = false;
    let slider = ui
        .add(egui::Slider::new(&mut dial.params.lambda, 0.0..=1.0).text("λ"))
        .on_hover_text(
            "Inference dial λ_inf: 0 is the model's own (distributed) attention, 1 confines each \
             query to its relevant block. Moving it never retrains.",
        );
    changed |= slider.changed();
    if let Some(est) = &state.threshold {
        mark_lambda_star(ui, &slider, est);
    }
    egui::ComboBox::from_label("mode")
        .selected_text(dial.params.mode.label())
        .show_ui(ui, |ui| {
            for m in DialMode::ALL {
                changed |= ui
                    .selectable_value(&mut dial.params.mode, m, m.label())
                    .changed();
            }
        });
    changed |= ui
        .add(egui::Slider::new(&mut dial.params.tau, 0.05..=4.0).text("τ"))
        .on_hover_text("Softmax temperature τ₀ (mode D lowers it towards τ_min as λ rises).")
        .changed();
    let layers = state
        .summary
        .as_ref()
        .map(|s| s.shape.0)
        .unwrap_or(1)
        .max(1);
    let kind = |sch: &LayerSchedule| match sch {
        LayerSchedule::Uniform => 0,
        LayerSchedule::Power { .. } => 1,
        LayerSchedule::PerLayer(_) => 2,
    };
    let mut chosen = kind(&dial.schedule);
    ui.horizontal(|ui| {
        ui.label("layers")
            .on_hover_text("How λ is spread over the layers.");
        ui.selectable_value(&mut chosen, 0, "uniform")
            .on_hover_text("Every layer gets λ.");
        ui.selectable_value(&mut chosen, 1, "schedule γ")
            .on_hover_text("λ of layer l is λ·(l/(L-1))^γ.");
        ui.selectable_value(&mut chosen, 2, "per layer")
            .on_hover_text("One slider per layer; the λ slider above is not applied.");
    });
    if chosen != kind(&dial.schedule) {
        changed = true;
        dial.schedule = match chosen {
            1 => LayerSchedule::Power { gamma: 3.0 },
            2 => LayerSchedule::PerLayer(vec![dial.params.lambda; layers]),
            _ => LayerSchedule::Uniform,
        };
    }
    match &mut dial.schedule {
        LayerSchedule::Power { gamma } => {
            changed |= ui
                .add(egui::Slider::new(gamma, 1.0..=5.0).text("γ"))
                .on_hover_text(
                    "λ of layer l is λ·(l/(L-1))^γ. Large γ: only the late layers are localist.",
                )
                .changed();
        }
        LayerSchedule::PerLayer(values) => {
            values.resize(layers, dial.params.lambda);
            for (l, v) in values.iter_mut().enumerate() {
                changed |= ui
                    .add(egui::Slider::new(v, 0.0..=1.0).text(format!("λ layer {l}")))
                    .on_hover_text(format!("The dial of layer {l} alone."))
                    .changed();
            }
        }
        LayerSchedule::Uniform => {}
    }
    if let Some(e) = state.mean_entropy_bits() {
        ui.label(format!("mean entropy {e:.3} bits")).on_hover_text(
            "Mean attention entropy of the current text over queries, heads and layers, in bits.",
        );
    }
    if let Some((cap, _)) = &state.capture {
        ui.label(format!("mean ε {:.4}", cap.mean_off_block_mass(None)))
            .on_hover_text(
                "Mean off-block mass ε: attention outside each query's relevant keys R(i).",
            );
    }
    if changed {
        state.dial = dial.clone();
        state.send(Command::SetDial(dial));
    }
}

/// Draw λ* (SPEC §8.4, estimated on the current text) as a red tick under a [0, 1] λ slider,
/// with its value; a tick at the right end with "λ* > 1" when it lies beyond the scale.
pub fn mark_lambda_star(ui: &mut egui::Ui, slider: &egui::Response, est: &ThresholdEstimate) {
    let height = slider.rect.height();
    let width = ui.spacing().slider_width;
    let handle = height / 2.5;
    let left = slider.rect.left() + handle;
    let span = (width - 2.0 * handle).max(1.0);
    let x = left + span * est.lambda_star.clamp(0.0, 1.0) as f32;
    let y = slider.rect.bottom();
    let red = egui::Color32::from_rgb(230, 80, 80);
    ui.painter()
        .line_segment([egui::pos2(x, y - 6.0), egui::pos2(x, y + 2.0)], (2.0, red));
    let text = if est.lambda_star > 1.0 {
        format!("λ* = {:.2} (beyond the scale)", est.lambda_star)
    } else {
        format!("λ* = {:.2}", est.lambda_star)
    };
    ui.colored_label(red, text).on_hover_text(format!(
        "Penalty threshold λ* of SPEC 8.4, estimated on the current text: with the training \
         penalty weight λ above λ* = G·max √n_k/w_k, the only stationary point of the \
         block-mass model puts all attention on the relevant block. G = {:.3} is the largest \
         task-gradient advantage of another block over the relevant one, measured per unit of \
         penalty weight over {} rows (layer, head, query); the 95th-percentile row gives \
         λ* = {:.3}.",
        est.grad_bound, est.rows, est.lambda_star_q95
    ));
}
