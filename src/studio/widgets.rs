//! Small widgets that more than one panel draws. Panels never import each other; what two of
//! them share lives here, below them.

use crate::engine::threshold::ThresholdEstimate;

/// The colour of a warning (a stale number, a refused input, overfitting) in every panel.
pub const WARNING: egui::Color32 = egui::Color32::from_rgb(230, 160, 60);

/// λ* under the λ_train slider: the current estimate in words ([`mark_lambda_star`]), or,
/// before the first estimate and while one of an earlier text waits for its replacement, a
/// placeholder line; either in two rows' height, so the controls below do not jump under the
/// pointer when the estimate arrives.
pub fn lambda_star_line(
    ui: &mut egui::Ui,
    slider: &egui::Response,
    current: Option<&ThresholdEstimate>,
    stale: bool,
    lambda_train: f64,
) {
    // Two rows whatever is drawn: the estimate's words take two in the narrow panel
    // ("… full locality above 53.33; the slider ends at 1"), the placeholder one.
    let rows = 2.0 * ui.text_style_height(&egui::TextStyle::Body);
    ui.vertical(|ui| {
        ui.set_min_height(rows);
        star_or_placeholder(ui, slider, current, stale, lambda_train);
    });
}

fn star_or_placeholder(
    ui: &mut egui::Ui,
    slider: &egui::Response,
    current: Option<&ThresholdEstimate>,
    stale: bool,
    lambda_train: f64,
) {
    match current {
        Some(est) => mark_lambda_star(ui, slider, est, lambda_train),
        None if stale => {
            ui.weak("λ* = … (estimating on this text)").on_hover_text(
                "The penalty threshold λ* is being estimated again for the current text.",
            );
        }
        None => {
            ui.weak("λ* = … (estimated on the text in view)")
                .on_hover_text(
                    "The penalty threshold λ* (SPEC §8.4) is estimated on the current text once a \
                 model is loaded; it shows here when measured.",
                );
        }
    }
}

/// What λ* means for a penalty weight of `lambda_train`, in words, and whether that weight
/// already reaches it.
pub fn lambda_star_words(lambda_star: f64, lambda_train: f64) -> (String, bool) {
    let reached = lambda_train > 0.0 && lambda_train >= lambda_star;
    let text = if lambda_star <= 1e-9 {
        "any penalty weight above 0 gives full locality on this text (λ* = 0)".to_string()
    } else if reached {
        format!(
            "λ_train = {lambda_train:.2} reaches λ* = {lambda_star:.2}: full locality on this text"
        )
    } else if lambda_star > 1.0 {
        format!(
            "the penalty guarantees full locality above λ* = {lambda_star:.2}; the slider ends at 1"
        )
    } else {
        format!("the penalty guarantees full locality above λ* = {lambda_star:.2}")
    };
    (text, reached)
}

/// Draw λ* (SPEC §8.4, estimated on the current text) under the λ_train slider: a tick where it
/// lies when it is on the scale, and a line saying what it means in plain words, in the normal
/// text colour (green when λ_train reaches it), with a "why" on hover.
pub fn mark_lambda_star(
    ui: &mut egui::Ui,
    slider: &egui::Response,
    est: &ThresholdEstimate,
    lambda_train: f64,
) {
    let (text, reached) = lambda_star_words(est.lambda_star, lambda_train);
    let colour = if reached {
        egui::Color32::from_rgb(90, 180, 90)
    } else {
        ui.visuals().weak_text_color()
    };
    if (0.0..=1.0).contains(&est.lambda_star) {
        let height = slider.rect.height();
        let width = ui.spacing().slider_width;
        let handle = height / 2.5;
        let left = slider.rect.left() + handle;
        let span = (width - 2.0 * handle).max(1.0);
        let x = left + span * est.lambda_star as f32;
        let y = slider.rect.bottom();
        ui.painter().line_segment(
            [egui::pos2(x, y - 2.0), egui::pos2(x, y + 4.0)],
            (2.0, colour),
        );
    }
    ui.add(egui::Label::new(egui::RichText::new(text).color(colour)).wrap())
        .on_hover_text(format!(
            "Why: during training, the penalty pushes each query's attention back into its own \
             block, while the task may pull it towards other blocks. λ* is the penalty weight \
             above which the push always wins on this text, so trained attention ends up fully \
             inside the blocks. Below λ* some queries may keep looking outside their block. \
             It is estimated from how strongly the task pulls, measured on {} rows \
             (layer, head, query) of the current text; it is a bound, so locality often comes \
             sooner.\n\nTechnically (SPEC 8.4): λ* = G·max √n_k/w_k with G = {:.3}, the largest \
             task-gradient advantage of another block; the 95th-percentile row gives {:.3}.",
            est.rows, est.grad_bound, est.lambda_star_q95
        ));
}

/// Green for a pass and red for a fail that read in both themes (egui's LIGHT_GREEN is pale on
/// a white background).
pub fn verdict_colour(ui: &egui::Ui, pass: bool) -> egui::Color32 {
    match (pass, ui.visuals().dark_mode) {
        (true, true) => egui::Color32::LIGHT_GREEN,
        (true, false) => egui::Color32::from_rgb(0, 110, 0),
        (false, true) => egui::Color32::LIGHT_RED,
        (false, false) => egui::Color32::from_rgb(180, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::lambda_star_words;

    #[test]
    fn lambda_star_is_said_in_words() {
        assert!(lambda_star_words(53.2, 1.0)
            .0
            .contains("above λ* = 53.20; the slider ends at 1"));
        assert!(lambda_star_words(0.4, 0.5).1);
        assert!(lambda_star_words(0.4, 0.2).0.contains("above λ* = 0.40"));
        assert!(lambda_star_words(0.0, 0.0)
            .0
            .starts_with("any penalty weight above 0"));
    }
}
