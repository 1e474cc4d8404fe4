//! The Recruitment panel: blocks recruited, merged and pruned as training runs (SPEC §9), each
//! decision with its breakdown in bits, and the description length over training steps.

use egui::{Color32, RichText};
use egui_plot::{Legend, MarkerShape, Plot, PlotPoint, PlotPoints, Points};

use crate::engine::protocol::{
    Command, Decision, MoveKind, RecruitEvent, RecruitView, Verdict, WITHOUT_ITS_LOG,
};
use crate::studio::state::{StudioState, WorkerState};

const GREEN: Color32 = Color32::from_rgb(60, 170, 90);
const GREY: Color32 = Color32::from_rgb(150, 150, 150);
const BLUE: Color32 = Color32::from_rgb(70, 130, 220);
const ORANGE: Color32 = Color32::from_rgb(230, 140, 40);
const RED: Color32 = Color32::from_rgb(210, 60, 60);
const TEAL: Color32 = Color32::from_rgb(40, 170, 170);

/// The marker colour of an event: accepted recruit green, extension or reassignment teal, merge blue, prune orange, rejected
/// grey (as is a round not counted because the model was still learning), stop red.
pub fn event_color(e: &RecruitEvent) -> Color32 {
    let accepted = e
        .decision
        .as_ref()
        .is_some_and(|d| d.verdict == Verdict::Accepted);
    match (e.kind, accepted) {
        (MoveKind::Stop, _) => RED,
        (MoveKind::Wait, _) | (_, false) => GREY,
        (MoveKind::Recruit, true) => GREEN,
        (MoveKind::Extend | MoveKind::Reassign, true) => TEAL,
        (MoveKind::Merge, true) => BLUE,
        (MoveKind::Prune, true) => ORANGE,
    }
}

/// The breakdown of one decision, as the hover shows it.
pub fn breakdown(ui: &mut egui::Ui, e: &RecruitEvent) {
    let kind = format!("{:?}", e.kind).to_lowercase();
    ui.label(RichText::new(format!("step {} · {kind} · {}", e.step, e.block)).strong());
    match &e.decision {
        Some(d) => {
            egui::Grid::new(("breakdown", e.step, e.round, kind.as_str()))
                .num_columns(2)
                .show(ui, |ui| {
                    let row = |ui: &mut egui::Ui, k: &str, v: String| {
                        ui.label(k);
                        ui.monospace(v);
                        ui.end_row();
                    };
                    row(ui, "data bits before", format!("{:.1}", d.data_bits_before));
                    row(ui, "data bits after", format!("{:.1}", d.data_bits_after));
                    row(
                        ui,
                        "Δ data bits",
                        format!("{:+.1}", d.data_bits_after - d.data_bits_before),
                    );
                    row(
                        ui,
                        "parameter bits",
                        format!("{:+.1}", d.sign * d.model.parameter_bits),
                    );
                    row(
                        ui,
                        "header bits",
                        format!("{:+.1}", d.sign * d.model.header_bits),
                    );
                    row(ui, "map bits", format!("{:+.1}", d.sign * d.model.map_bits));
                    row(ui, "ΔDL", format!("{:+.1}", d.delta_dl));
                    row(ui, "δ (margin)", format!("{:.1}", d.delta_min));
                    if d.noise_bits > 0.0 {
                        row(
                            ui,
                            "standard error (kept only beyond δ + z·SE)",
                            format!("{:.1}", d.noise_bits),
                        );
                        row(
                            ui,
                            "z (grows with the removals tried)",
                            format!("{:.2}", d.noise_z),
                        );
                    }
                    row(
                        ui,
                        "verdict",
                        match d.verdict {
                            Verdict::Accepted => "accepted (saves more than δ)".into(),
                            Verdict::Rejected => "rejected (weights and map restored)".into(),
                        },
                    );
                });
        }
        None => {
            ui.label(format!("stopped: {}", e.note));
        }
    }
    if !e.tokens.is_empty() {
        ui.label(format!("tokens: {}", e.tokens.join(" ")));
    }
    if !e.note.is_empty() && e.decision.is_some() {
        ui.weak(&e.note);
    }
}

/// Draw the panel.
pub fn show(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.heading("Recruitment");
    ui.label(
        "Blocks grow during training when the description length says they pay: a block is \
         kept when the data bits it saves on held-out text exceed the bits of its header and \
         map entries (and of its anchor keys, when they are charged) by more than δ. Merges \
         and prunes use the same test.",
    );
    let running = matches!(state.worker, WorkerState::Training | WorkerState::Paused)
        || state.progress.is_some();
    let mut on = state.recruitment.as_ref().is_some_and(|r| r.config.enabled);
    let toggle = ui
        .add_enabled(
            running,
            egui::Checkbox::new(&mut on, "recruit blocks while training"),
        )
        .on_hover_text(
            "Switch recruitment on or off in the current run; it takes effect at the next step. \
             Unassigned tokens keep all context; a recruited block narrows its own tokens' view.",
        )
        .on_disabled_hover_text("Set up a training run first (Training, on the left).");
    if toggle.changed() {
        state.send(Command::SetRecruitment(on));
    }
    let Some(rec) = state.recruitment.clone() else {
        let unread = (state.summary.iter())
            .flat_map(|s| &s.warnings)
            .filter(|w| w.ends_with(WITHOUT_ITS_LOG));
        for w in unread {
            ui.colored_label(crate::studio::widgets::WARNING, format!("warning: {w}"));
        }
        ui.label(
            "No recruitment here yet. Tick \"recruit blocks\" in Training and start a run \
             (corpus topics:3 is made for it), switch it on above during a run, or open \
             sample_models/tiny-topics-recruited.",
        );
        return;
    };
    let blocks_now = state.summary.as_ref().map(|s| s.blocks.len());
    status(ui, &rec, blocks_now);
    timeline(ui, &rec);
    super::recruitment_dl::dl_plots(ui, &rec);
    ui.horizontal(|ui| {
        if ui
            .button("Export log as JSON…")
            .on_hover_text("Every decision with its breakdown, the rounds and the settings")
            .clicked()
        {
            match rec.json.clone() {
                Ok(bytes) => state.pending_export = Some(("recruitment.json".into(), bytes)),
                Err(e) => state.error = Some(format!("could not write the log: {e}")),
            }
        }
    });
    ui.separator();
    table(ui, &rec);
}

/// The recruiter's line: rounds, accepted moves and blocks (the model's own count, `blocks_now`,
/// before the first round or after going back past it).
fn status(ui: &mut egui::Ui, rec: &RecruitView, blocks_now: Option<usize>) {
    let blocks = blocks_now
        .or_else(|| rec.rounds.last().map(|r| r.blocks))
        .unwrap_or(0);
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut line = format!(
        "{}, {}, {} (block 0 included)",
        plural(rec.rounds.len(), "round", "rounds"),
        plural(rec.accepted, "accepted move", "accepted moves"),
        plural(blocks, "block", "blocks")
    );
    match (&rec.stopped, rec.config.enabled) {
        (Some(why), true) => line.push_str(&format!(" · stopped: {why}")),
        // The switch is the user's: say it is off, and why rounds had stopped before.
        (Some(why), false) => line.push_str(&format!(" · switched off (it had stopped: {why})")),
        (None, false) => line.push_str(" · switched off"),
        (None, true) => {
            if let Some(next) = rec.next_due {
                line.push_str(&format!(" · next round at step {next}"));
            }
        }
    }
    ui.label(line);
    if !rec.renamed.is_empty() {
        let names: Vec<String> = (rec.renamed.iter())
            .map(|r| format!("{} → {}", r.from, r.to))
            .collect();
        ui.label(format!(
            "renamed by hand since (the log keeps the names decided under): {}",
            names.join(", ")
        ));
    }
    let c = &rec.config;
    let span = match c.patience_steps {
        0 => String::new(),
        n => format!(" spanning {n} steps"),
    };
    let mut detail = format!(
        "λ_rec {:.2}, δ {:.0} bits, K_max {}, every {} steps after {}, second look {} steps, \
         buffer {} tokens, stops after {} rounds{span} without an accepted move",
        c.lambda,
        c.delta_bits,
        c.k_max,
        c.every,
        c.warmup,
        c.second_look,
        c.buffer_tokens,
        c.patience,
    );
    if c.start_windows > 0 {
        let until = if c.windows_throughout {
            "for the unassigned queries throughout"
        } else {
            "until the first block"
        };
        detail.push_str(&format!(" · windows of {} {until}", c.start_windows));
    }
    detail.push_str(if c.function_words_inherit {
        " · function words read the block of the word before them"
    } else {
        " · function words isolated"
    });
    if let Some(f) = rec.cost_fraction() {
        detail.push_str(&format!(
            " · rounds cost {:.0}% of the training time between them",
            100.0 * f
        ));
    }
    ui.weak(detail).on_hover_text(
        "A round reads each candidate at once on the held-out buffer. A cluster that does not pay \
         read at once gets a second look: trained that many steps under the candidate map and \
         under the current one (the control), from the same state on the same batches. When \
         the look is rejected the run keeps the control, whose steps are ordinary training, so \
         a round costs the candidate's steps and its passes over the buffer. Recruitment stops \
         once the rounds without an accepted move reach both the count and the span of steps: \
         what a block is worth grows as the model trains. The data bits are read in the \
         localist view: a query sees its own block's keys; a function word (set apart by the \
         co-occurrence profile) sees the block of the content word before it, so a \
         block also earns the context it gives the function words in its text.",
    );
}

fn timeline(ui: &mut egui::Ui, rec: &RecruitView) {
    let line = super::recruitment_dl::per_step(rec, |r| r.blocks as f64);
    let mut hovered: Option<usize> = None;
    let top = rec.log.iter().map(|e| e.blocks_after).max().unwrap_or(1);
    let resp = Plot::new("recruit_timeline")
        .height(170.0)
        .include_y(0.0)
        .include_y(top as f64 + 1.0)
        .legend(Legend::default())
        .x_axis_label("training step")
        .y_axis_label("blocks")
        .show(ui, |plot| {
            super::recruitment_dl::branch_lines(plot, "blocks", line, Color32::from_gray(120));
            let series = [
                ("recruited", MarkerShape::Up, GREEN),
                ("extended/moved", MarkerShape::Circle, TEAL),
                ("merged", MarkerShape::Diamond, BLUE),
                ("pruned", MarkerShape::Down, ORANGE),
                ("rejected", MarkerShape::Cross, GREY),
                ("stopped", MarkerShape::Square, RED),
            ];
            for (name, shape, color) in series {
                let pts: PlotPoints = rec
                    .log
                    .iter()
                    .filter(|e| event_color(e) == color)
                    .map(|e| [e.step as f64, e.blocks_after as f64])
                    .collect();
                plot.points(
                    Points::new(name, pts)
                        .shape(shape)
                        .color(color)
                        .radius(6.0)
                        .filled(true),
                );
            }
            if let Some(p) = plot.pointer_coordinate() {
                let at = plot.screen_from_plot(p);
                hovered = rec
                    .log
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let s = plot
                            .screen_from_plot(PlotPoint::new(e.step as f64, e.blocks_after as f64));
                        (i, s.distance(at))
                    })
                    .filter(|&(_, d)| d < 14.0)
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(i, _)| i);
            }
        })
        .response;
    if let Some(e) = hovered.and_then(|i| rec.log.get(i)) {
        resp.on_hover_ui(|ui| breakdown(ui, e));
    } else {
        resp.on_hover_text("Each marker is one decision; hover it for its bits.");
    }
}

/// Most decisions the table draws, newest first: a grid is laid out whole every frame (15,000
/// entries took 104 ms a frame); the exported log holds them all.
const MOST_ROWS: usize = 1000;

fn table(ui: &mut egui::Ui, rec: &RecruitView) {
    ui.label(RichText::new("Decisions").strong());
    if rec.log.len() > MOST_ROWS {
        ui.label(format!(
            "the newest {MOST_ROWS} of {} decisions; \"Export log as JSON\" writes them all",
            rec.log.len()
        ));
    }
    egui::Grid::new("recruit_table")
        .striped(true)
        .num_columns(7)
        .show(ui, |ui| {
            for h in [
                "step",
                "move",
                "block",
                "data bits before, after",
                "model bits",
                "ΔDL",
                "verdict",
            ] {
                ui.label(RichText::new(h).strong());
            }
            ui.end_row();
            for e in rec.log.iter().rev().take(MOST_ROWS) {
                let color = event_color(e);
                ui.label(e.step.to_string());
                ui.label(RichText::new(format!("{:?}", e.kind).to_lowercase()).color(color));
                let block = ui.label(&e.block);
                block.on_hover_ui(|ui| breakdown(ui, e));
                match &e.decision {
                    Some(d) => {
                        ui.monospace(format!(
                            "{:.0}, {:.0}",
                            d.data_bits_before, d.data_bits_after
                        ));
                        ui.monospace(format!("{:+.0}", d.sign * d.model.total()))
                            .on_hover_text(format!(
                                "parameters {:+.1}, header {:+.1}, map {:+.1}",
                                d.sign * d.model.parameter_bits,
                                d.sign * d.model.header_bits,
                                d.sign * d.model.map_bits
                            ));
                        delta_cell(ui, d);
                        ui.label(RichText::new(e.verdict_words(d)).color(color))
                            .on_hover_ui(|ui| breakdown(ui, e));
                    }
                    None => {
                        ui.label("");
                        ui.label("");
                        ui.label("");
                        ui.label(RichText::new(format!("stop: {}", e.note)).color(color));
                    }
                }
                ui.end_row();
            }
        });
}

/// ΔDL, with ± SE where the move was read at once, and the saving it needed on hover.
fn delta_cell(ui: &mut egui::Ui, d: &Decision) {
    if d.noise_bits > 0.0 {
        let need = d.margin();
        ui.monospace(format!("{:+.0} ± {:.0}", d.delta_dl, d.noise_bits))
            .on_hover_text(format!(
                "read at once: kept only when it saves more than δ + z·SE = {:.0} + {:.2} × \
                 {:.1} = {need:.0} bits (z grows with the merges and prunes tried in the run)",
                d.delta_min, d.noise_z, d.noise_bits
            ));
    } else {
        ui.monospace(format!("{:+.0}", d.delta_dl));
    }
}
