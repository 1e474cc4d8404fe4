//! The Dial panel: λ_inf, mode A–D, temperature and the per-layer schedule. Any change sends
//! the new setting to the worker, which re-captures the current text at once.

use crate::engine::worker::Command;
use crate::engine::{DialMode, DialSetting, LayerSchedule};
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
    changed |= schedule(ui, &mut dial, layers);
    let preview = if state.capture_is_preview() {
        " (preview)"
    } else {
        ""
    };
    if let Some(e) = state.mean_entropy_bits() {
        ui.label(format!("mean entropy {e:.3} bits{preview}"))
            .on_hover_text(
            "Mean attention entropy of the current text over queries, heads and layers, in bits \
             (marked preview while it comes from bf16 weight products, until the exact capture \
             arrives).",
        );
    }
    if let Some((cap, _)) = &state.capture {
        ui.label(format!(
            "mean ε {:.4}{preview}",
            cap.mean_off_block_mass(None)
        ))
        .on_hover_text("Mean off-block mass ε: attention outside each query's relevant keys R(i).");
    }
    if changed {
        state.dial = dial.clone();
        state.send(Command::SetDial(dial));
    }
}

/// Which of the three schedule choices `sch` is.
fn schedule_kind(sch: &LayerSchedule) -> usize {
    match sch {
        LayerSchedule::Uniform => 0,
        LayerSchedule::Power { .. } => 1,
        LayerSchedule::PerLayer(_) => 2,
    }
}

/// How λ is spread over the model's `layers` layers: the choice and its sliders. Returns true
/// when the user changed it.
fn schedule(ui: &mut egui::Ui, dial: &mut DialSetting, layers: usize) -> bool {
    let mut changed = false;
    let mut chosen = schedule_kind(&dial.schedule);
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
    if chosen != schedule_kind(&dial.schedule) {
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
    changed
}
