//! The Tour: a short, dismissible first-start guide. Each step switches the central area to
//! the tab it is about and says in a sentence or two what to look at: the dial on the
//! λ_train = 0 sample (where moving λ changes the heatmaps most), Compare, Theory, Rules, and
//! the Audit's pass/fail over a test set. It opens on the first start (a flag kept in eframe
//! storage) and again from the menu bar's Tour button.

/// Whether the Tour is open (defined with the panels' state).
pub use crate::studio::state::TourState;
use crate::studio::state::{StudioState, Tab};

/// The bundled sample trained with λ_train = 0, where the dial's effect is plain to see.
pub const TOUR_SAMPLE: &str = "tiny-shakespeare-l0";

/// One step: its title, the tab it opens, and what to look at.
pub struct TourStep {
    /// A short title.
    pub title: &'static str,
    /// The tab the step switches to.
    pub tab: Tab,
    /// What to do and look at, in plain words.
    pub text: &'static str,
}

/// The steps, in order.
pub const STEPS: [TourStep; 5] = [
    TourStep {
        title: "1. The dial",
        tab: Tab::Attention,
        text: "Open the λ_train = 0 sample (button below), then drag λ in the Dial panel on the \
               left from 0 to 1. The heatmaps go from attention spread over the whole text to \
               attention kept inside each block.",
    },
    TourStep {
        title: "2. Compare",
        tab: Tab::Compare,
        text: "The same text under two settings, λ = 0 on the left and λ = 1 on the right. \
               Hover a cell to read both weights; 'difference B − A' shows in red where B \
               attends more and in blue where A does.",
    },
    TourStep {
        title: "3. Theory",
        tab: Tab::Theory,
        text: "Measured entropy and off-block mass at each λ, drawn against the bounds the \
               theory guarantees. The measured points should stay on the safe side of the \
               bound curves.",
    },
    TourStep {
        title: "4. Rules",
        tab: Tab::Rules,
        text: "A rule says which block a token must attend to ('a dose attends to its drug'). \
               Load example gives rules for the tiny-clinical sample; Apply puts them in force \
               and shows how much attention each rule's target gets (PF).",
    },
    TourStep {
        title: "5. Audit",
        tab: Tab::Audit,
        text: "Each rule's pass or fail, measured over many sentences (the model's held-out \
               text or your own file), the signed log of every rule change, and a report to \
               export. The Tour button in the menu bar brings this guide back.",
    },
];

/// Open the Tour at its first step, on that step's tab.
pub fn open(state: &mut StudioState) {
    state.tour.step = Some(0);
    state.tab = Tab::Attention;
}

/// What the Tour window asked for this frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TourAction {
    /// Open the λ_train = 0 sample.
    OpenSample,
}

/// Draw the Tour window when it is open; switches the tab when the step changes.
pub fn show(ctx: &egui::Context, state: &mut StudioState) -> Option<TourAction> {
    let step = state.tour.step?;
    let Some(s) = STEPS.get(step) else {
        state.tour.close();
        return None;
    };
    let mut action = None;
    let mut next = Some(step);
    egui::Window::new("Tour")
        .collapsible(false)
        .resizable(false)
        .default_width(340.0)
        .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-16.0, -40.0))
        .show(ctx, |ui| {
            ui.set_max_width(340.0);
            ui.strong(s.title);
            ui.label(s.text);
            if step == 0
                && ui
                    .button(format!("Open {TOUR_SAMPLE}"))
                    .on_hover_text("The bundled sample trained with λ_train = 0")
                    .clicked()
            {
                action = Some(TourAction::OpenSample);
            }
            ui.separator();
            ui.horizontal(|ui| {
                ui.label(format!("step {} of {}", step + 1, STEPS.len()));
                if ui
                    .add_enabled(step > 0, egui::Button::new("Back"))
                    .clicked()
                {
                    next = Some(step.saturating_sub(1));
                }
                let last = step + 1 == STEPS.len();
                if ui.button(if last { "Done" } else { "Next" }).clicked() {
                    next = (!last).then_some(step + 1);
                }
                if ui.button("Close tour").clicked() {
                    next = None;
                }
            });
        });
    match next {
        Some(n) if n != step => {
            state.tour.step = Some(n);
            if let Some(t) = STEPS.get(n) {
                state.tab = t.tab;
            }
        }
        Some(_) => {}
        None => state.tour.close(),
    }
    action
}
