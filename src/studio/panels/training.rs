//! The Training panel: run settings, start / pause / resume / step / stop, and live curves.

use crate::engine::worker::Command;
use crate::model::config::PRESETS;
use crate::studio::export::training_csv;
/// Settings of the next run (defined in `studio::settings`, below the panels).
pub use crate::studio::settings::RunSettings;
use crate::studio::state::{StudioState, WorkerState};
use crate::studio::widgets::lambda_star_line;

use super::training_plots::{curves, enlarged};

/// Draw the training controls and curves.
pub fn show(ui: &mut egui::Ui, state: &mut StudioState, settings: &mut RunSettings) {
    ui.heading("Training");
    settings_grid(ui, state, settings);
    run_buttons(ui, state, settings);
    progress(ui, state);
    let (loss_rect, held_out_rect) = curves(ui, state);
    export_menu(ui, state, loss_rect, held_out_rect);
    enlarged(ui.ctx(), state);
    if let Some(r) = state.current_eval() {
        ui.label(format!(
            "held out: perplexity {:.3}, top-1 {:.1}%, entropy {:.3} bits, ε {:.4}",
            r.perplexity,
            100.0 * r.top1_accuracy,
            r.entropy_bits,
            r.off_block_mass
        ));
    }
}

/// The settings of the next run: corpus, preset, λ_train (with λ* when estimated), μ_rule,
/// learning rate, steps, seed, recruitment.
fn settings_grid(ui: &mut egui::Ui, state: &StudioState, settings: &mut RunSettings) {
    egui::Grid::new("run_settings")
        .num_columns(2)
        .show(ui, |ui| {
            let l = ui.label("corpus");
            ui.text_edit_singleline(&mut settings.corpus)
                .labelled_by(l.id)
                .on_hover_text(
                    "A UTF-8 text file, synthetic:RECORDS for the clinical/payments generator, or topics:K \
                     for text from K topics with disjoint vocabularies (for recruitment).",
                );
            ui.end_row();
            ui.label("");
            egui::ComboBox::from_label("preset")
                .selected_text(settings.preset.clone())
                .show_ui(ui, |ui| {
                    for p in PRESETS {
                        ui.selectable_value(&mut settings.preset, p.to_string(), p);
                    }
                });
            ui.end_row();
            ui.label("");
            ui.vertical(|ui| {
                let slider = ui
                    .add(egui::Slider::new(&mut settings.lambda_train, 0.0..=1.0).text("λ_train"))
                    .on_hover_text("Weight of the off-block group penalty during training.");
                let stale = state.threshold.is_some();
                lambda_star_line(
                    ui,
                    &slider,
                    state.current_threshold(),
                    stale,
                    settings.lambda_train,
                );
            });
            ui.end_row();
            loss_weight_rows(ui, settings);
            let l = ui.label("learning rate");
            // The schedule on the rate's row: the panel keeps a row for "windows until the
            // first block" without growing (its buttons stay in view at 1280×800).
            ui.horizontal(|ui| {
                ui.add(
                    egui::DragValue::new(&mut settings.lr)
                        .speed(1e-4)
                        .range(1e-6..=1e-1),
                )
                .labelled_by(l.id);
                ui.checkbox(&mut settings.lr_cosine, "warm-up + cosine decay")
                    .on_hover_text(
                        "Raise the learning rate from 0 over the first 5% of the steps, then \
                         lower it on a cosine to a tenth by the last step (train --lr-schedule \
                         cosine). Off: the same rate at every step, as the PyTorch reference.",
                    );
            });
            ui.end_row();
            let l = ui.label("steps");
            ui.add(egui::DragValue::new(&mut settings.steps).range(1..=1_000_000))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("seed");
            ui.add(egui::DragValue::new(&mut settings.seed))
                .labelled_by(l.id);
            ui.end_row();
            adapt_row(ui, state, settings);
            recruit_rows(ui, settings);
        });
}

/// "recruit blocks" and "word tokens" on one row (the panel stays as tall as it was, its
/// buttons below in view on a small window), and under recruitment its start's windows.
fn recruit_rows(ui: &mut egui::Ui, settings: &mut RunSettings) {
    ui.label("");
    ui.horizontal(|ui| {
        ui.checkbox(&mut settings.recruit, "recruit blocks")
            .on_hover_text(
                "Start from one block and grow blocks by description length while \
                 training (see the Recruitment tab): try topics:3, or your own text with \
                 word tokens.",
            );
        ui.checkbox(&mut settings.word_tokens, "word tokens")
            .on_hover_text(
                "Cut a text file into words fitted on it (letters and digits of any \
                 script; Chinese, Japanese and Thai a character each) instead of the 96 \
                 printable ASCII characters (train --tokenizer word). Recruitment on \
                 your own text wants words; synthetic: and topics: always use them.",
            );
    });
    ui.end_row();
    // Only under recruitment, where it acts (one row more then).
    if settings.recruit {
        ui.label("");
        windows_first(ui, settings);
        ui.end_row();
    }
}

/// The weights of the rule penalty and of the anchor loss.
fn loss_weight_rows(ui: &mut egui::Ui, settings: &mut RunSettings) {
    let l = ui.label("μ_rule");
    ui.add(
        egui::DragValue::new(&mut settings.mu_rule)
            .speed(0.05)
            .range(0.0..=10.0),
    )
    .labelled_by(l.id)
    .on_hover_text(
        "Weight of the rule penalty in training: −log PF_mass on the rows where a rule \
             in force fires, in its layers and heads (0: rules act at inference only).",
    );
    ui.end_row();
    let l = ui.label("μ_anc");
    ui.add(
        egui::DragValue::new(&mut settings.mu_anchor)
            .speed(0.01)
            .range(0.0..=10.0),
    )
    .labelled_by(l.id)
    .on_hover_text(
        "Weight of the anchor loss (SPEC §5): each query classified onto its block's \
         anchor key. Our own models attend to their anchor keys; a fine-tuned \
         pretrained model has no slot for them, so there they only shape the queries \
         and are not saved (0: off).",
    );
    ui.end_row();
}

/// What a fine-tune trains (shown when the model held can be fine-tuned).
fn adapt_row(ui: &mut egui::Ui, state: &StudioState, settings: &mut RunSettings) {
    if state.summary.as_ref().is_some_and(|s| s.finetunes) {
        let l = ui.label("fine-tune");
        ui.text_edit_singleline(&mut settings.adapt)
            .labelled_by(l.id)
            .on_hover_text(
                "What Fine-tune trains in the pretrained decoder: lora:R (rank-R \
                 adapters on queries and keys), qk (full query and key changes), \
                 lora:R:NAMES or NAMES (e.g. attn_q,attn_v or blk.3.attn_k). The base \
                 stays frozen; Save… writes only the changes, as an adapter folder.",
            );
        ui.end_row();
    }
}

/// New model, New run, Pause / Resume, Step, Stop.
fn run_buttons(ui: &mut egui::Ui, state: &mut StudioState, settings: &RunSettings) {
    ui.horizontal(|ui| {
        if ui
            .button("New model")
            .on_hover_text(
                "Set up a fresh, untrained model from the preset and corpus above without \
                 training it (its attention is the random initialisation's)",
            )
            .clicked()
        {
            match settings.job() {
                Ok(job) => state.send(Command::NewRun(Box::new(job))),
                Err(e) => state.error = Some(format!("{e:#}")),
            }
        }
        if ui
            .button("New run")
            .on_hover_text("Set up a fresh model with these settings and train it")
            .clicked()
        {
            match settings.job() {
                Ok(job) => {
                    state.send(Command::NewRun(Box::new(job)));
                    state.send(Command::Train);
                }
                Err(e) => state.error = Some(format!("{e:#}")),
            }
        }
        let tunable = state
            .summary
            .as_ref()
            .filter(|s| s.finetunes)
            .map(|s| s.source.trim_start_matches("fine-tune of ").to_string());
        if let Some(from) = tunable {
            if ui
                .button("Fine-tune")
                .on_hover_text(
                    "Train this pretrained decoder towards its blocks: cross-entropy on the \
                     corpus above plus λ_train times the off-block penalty, through the changes \
                     named in \"fine-tune\" (the base stays frozen). Curves, Pause and Stop work \
                     as for a run; the views show the tuned model as it trains.",
                )
                .clicked()
            {
                state.send(Command::Finetune(Box::new(settings.finetune_job(&from))));
                state.send(Command::Train);
            }
        }
        let pause = state.worker == WorkerState::Training
            && ui.button("Pause").on_hover_text("Space").clicked();
        let resume = state.worker == WorkerState::Paused
            && ui.button("Resume").on_hover_text("Space").clicked();
        if pause {
            state.send(Command::Pause);
        }
        if resume {
            state.send(Command::Resume);
        }
        if ui
            .button("Step")
            .on_hover_text("One optimizer step")
            .clicked()
        {
            state.send(Command::Step);
        }
        if ui.button("Stop").clicked() {
            state.send(Command::Stop);
        }
    });
}

/// The step, loss, speed and ETA of the run, with a progress bar.
fn progress(ui: &mut egui::Ui, state: &StudioState) {
    if let Some(p) = &state.progress {
        let speed = if p.tokens_per_s > 0.0 {
            format!("  {:.0} tok/s  ETA {:.0} s", p.tokens_per_s, p.eta_s)
        } else {
            String::new()
        };
        ui.label(format!(
            "step {}/{}  loss {:.4} nats{speed}",
            p.stats.step + 1,
            p.total_steps,
            p.stats.loss_nats,
        ))
        .on_hover_text("Loss is cross-entropy plus η·λ·Ω plus the anchor term, in nats per token.");
        ui.add(egui::ProgressBar::new(
            (p.stats.step + 1) as f32 / p.total_steps.max(1) as f32,
        ));
    }
}

/// Export the curves: the numbers as CSV, or the loss or held-out plots as PNG.
fn export_menu(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    loss_rect: egui::Rect,
    held_out_rect: egui::Rect,
) {
    ui.horizontal(|ui| {
        ui.menu_button("Export curves", |ui| {
            if ui.button("numbers as CSV…").clicked() {
                let curve: Vec<_> = state.curve.iter().copied().collect();
                state.pending_export = Some((
                    "training.csv".into(),
                    training_csv(&curve, &state.live).into_bytes(),
                ));
                ui.close();
            }
            if ui.button("loss plot as PNG…").clicked() {
                state.screenshot_request = Some(("loss.png".into(), loss_rect));
                ui.close();
            }
            if ui.button("held-out plots as PNG…").clicked() {
                state.screenshot_request = Some(("held-out.png".into(), held_out_rect));
                ui.close();
            }
        });
    });
}

/// "windows until the first block": under recruitment, the penalty's positional windows until
/// the first block (shown only with "recruit blocks" ticked).
fn windows_first(ui: &mut egui::Ui, settings: &mut RunSettings) {
    let width = crate::studio::settings::START_WINDOWS;
    ui.checkbox(&mut settings.windows_first, "windows until the first block")
        .on_hover_text(format!(
            "Until the first block is recruited, train every query towards positional windows of \
         {width} tokens, as a run without recruitment does (train --recruit-start-windows \
         {width}); every key stays visible. Off (the default): the queries start open. On a \
         small text that a run learns by heart it keeps the held-out perplexity near the run \
         without recruitment (68.3 against 64.5 on 10,491 tokens, 144 with open queries), but \
         fewer blocks may pay later (README, Recruitment)."
        ));
}
