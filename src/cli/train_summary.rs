//! What `localist train` shows: its progress bar, its events as they happen (recruitment
//! decisions, the held-out curve, overfitting) and the summary it prints at the end.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::best::{block_changes, grafted_blocks};
use crate::engine::jobs::train::{RunEvent, TrainSummary};

/// A progress bar showing step, ETA, tokens/s and loss.
pub fn progress_bar(steps: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(steps as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps, ETA {eta}  {msg}",
    ) {
        pb.set_style(style);
    }
    pb
}

/// Print one event of a run above the progress bar (or plainly when it is hidden).
pub fn print_event(pb: &ProgressBar, e: &RunEvent) {
    let line = match e {
        RunEvent::Recruit(r) => r.line(),
        RunEvent::HeldOut(p) => format!(
            "step {:>5}  held-out perplexity {:.3} ({} tokens)",
            p.step,
            p.perplexity(),
            p.tokens
        ),
        RunEvent::Overfit(m) => format!("warning: {m}"),
        RunEvent::KeptBest {
            step,
            perplexity,
            last,
            dropped,
            back,
            on_overfit: false,
            ..
        } => format!(
            "--keep-best: ending on the weights of step {step} (held-out perplexity {perplexity:.3} \
             on the curve, against {last:.3} at the last step){}",
            block_changes(dropped, back)
        ),
        RunEvent::KeptBest {
            step,
            perplexity,
            last,
            on_overfit: true,
            later,
            measured,
            ..
        } => format!(
            "{}: ending on the weights of step {step}, its best point, under the blocks it \
             ended with (held-out perplexity {perplexity:.3} under them, against {last:.3} at \
             the last step; --keep-last ends on the last step's){}",
            measured.map_or_else(
                || "the run ended overfitting".to_owned(),
                |g| format!(
                    "the last step's weights code the {} held-out tokens the curve does not read \
                     {:.4} ± {:.4} nats a token worse than step {step}'s ({:.1} standard errors)",
                    g.tokens,
                    g.mean_nats,
                    g.se_nats,
                    g.mean_nats / g.se_nats.max(f64::MIN_POSITIVE)
                )
            ),
            grafted_blocks(later)
        ),
    };
    if pb.is_hidden() {
        println!("{line}");
    } else {
        pb.println(line);
    }
}

/// What a failed run left behind.
pub fn failure_context(out: &Path) -> String {
    let steps = std::fs::read(out.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|v| v["training"]["steps_done"].as_u64());
    let kept = match steps {
        Some(Some(n)) => format!("the checkpoint there, after {n} steps, is kept as it was"),
        Some(None) => "the checkpoint there is kept as it was".to_string(),
        None => "no checkpoint written".to_string(),
    };
    format!("training for {} ({kept})", out.display())
}

/// Print the end of a run: device, speed, held-out metrics, recruitment, checkpoint.
pub fn print_summary(
    out: &Path,
    s: &TrainSummary,
    steady_tps: Option<f64>,
    overall_tps: f64,
    secs: f64,
) {
    let e = &s.eval;
    // A run that went back to an earlier point of its curve: whose weights the numbers are.
    let ended_on = if s.steps < s.steps_run {
        format!(" (of the weights of step {}, where the run ended)", s.steps)
    } else {
        String::new()
    };
    println!("device: {}", s.device);
    if let Some(tps) = steady_tps {
        println!("steady-state training speed: {tps:.0} tokens/s (after 10 warm-up steps)");
    }
    println!(
        "trained {} step{}{} in {secs:.1} s ({overall_tps:.0} tokens/s overall); held-out: perplexity {:.3}, top-1 {:.1}%, \
         entropy {:.3} bits, ε {:.4}, PF_mass {:.4}{}{}",
        s.steps_run.saturating_sub(s.started_at),
        if s.steps_run.saturating_sub(s.started_at) == 1 { "" } else { "s" },
        if s.started_at > 0 {
            format!(" (resumed at step {}, {} in all)", s.started_at, s.steps_run)
        } else {
            String::new()
        },
        e.perplexity,
        100.0 * e.top1_accuracy,
        e.entropy_bits,
        e.off_block_mass,
        e.pf_mass,
        e.pf_true_mass
            .map(|p| format!(", PF vs true targets {p:.4}"))
            .unwrap_or_default(),
        ended_on
    );
    if let Some(why) = &s.degenerate {
        eprintln!("warning: {}: {why}", out.display());
    }
    if let Some(rec) = &s.recruitment {
        println!(
            "recruitment: {} rounds, {} accepted moves, {} blocks: {}{}",
            rec.rounds,
            rec.accepted,
            rec.blocks.len(),
            rec.blocks.join(", "),
            rec.stopped
                .as_ref()
                .map(|r| format!(" (stopped: {r})"))
                .unwrap_or_default()
        );
        if rec.train_ms > 0.0 {
            println!(
                "recruitment cost: {:.0} ms in rounds against {:.0} ms of training between them ({:.0}%)",
                rec.round_ms,
                rec.train_ms,
                100.0 * rec.round_ms / rec.train_ms
            );
        }
        println!(
            "recruitment log: {}",
            out.join("recruitment.json").display()
        );
    }
    println!("checkpoint: {}", out.display());
}
