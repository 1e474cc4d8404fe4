//! Small widgets that more than one panel draws. Panels never import each other; what two of
//! them share lives here, below them.

use crate::engine::threshold::ThresholdEstimate;

/// λ* under a slider: the current estimate with [`mark_lambda_star`], or, while an estimate
/// of an earlier text waits for its replacement, a placeholder line of the same height, so the
/// controls below never jump under the pointer.
pub fn lambda_star_line(
    ui: &mut egui::Ui,
    slider: &egui::Response,
    current: Option<&ThresholdEstimate>,
    stale: bool,
) {
    match current {
        Some(est) => mark_lambda_star(ui, slider, est),
        None if stale => {
            ui.weak("λ* = … (estimating on this text)").on_hover_text(
                "The penalty threshold λ* is being estimated again for the current text.",
            );
        }
        None => {}
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
