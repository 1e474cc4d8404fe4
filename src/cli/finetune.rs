//! `localist train --from MODEL`: fine-tune an imported decoder towards its blocks and write
//! an adapter folder, with a progress bar, checkpoints and the held-out metrics before and
//! after.

use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::train::TrainArgs;
use super::train_summary::progress_bar;
use crate::engine::jobs::finetune::{setup, FinetuneJob, FinetuneRun};

/// Held-out windows measured before and after.
const EVAL_WINDOWS: usize = 16;

/// The engine job of `args` (with `--from` set).
fn job(args: &TrainArgs) -> Result<FinetuneJob> {
    let b = &args.basics;
    if args.rules.is_some()
        || args.recruitment.recruit
        || args.resume.is_some()
        || args.init.is_some()
    {
        bail!(
            "--from fine-tunes a pretrained decoder; --rules, --recruit, --resume and --init \
             apply to our own models only"
        );
    }
    Ok(FinetuneJob {
        from: args.from.clone().context("--from")?,
        corpus: b.corpus_or_default().into(),
        blocks: b.blocks.clone().unwrap_or_else(|| "kmeans:16".into()),
        adapt: args.adapt.clone().unwrap_or_else(|| "lora:8".into()),
        lambda_train: args.lambda_train,
        eta: args.eta,
        lr: args.lr,
        steps: args.steps,
        seq_len: args.seq,
        batch_size: b.batch,
        seed: b.seed,
        rules: args.rules.clone(),
        mu_rule: if args.rules.is_some() {
            args.mu_rule
        } else {
            0.0
        },
        penalty: args.penalty.map(super::flags::PenaltyArg::locality),
        mu_anchor: args.mu_anchor.unwrap_or(0.0),
    })
}

/// Run the fine-tune.
pub fn run(args: &TrainArgs) -> Result<()> {
    crate::cli::output::check_model_out(&args.out)?;
    // An adapter tuned again into its own folder named itself as its base and could never
    // be opened again.
    if let Some(from) = &args.from {
        crate::cli::output::check_file_out("--out", &args.out, &[from])?;
    }
    let job = job(args)?;
    let _lock = crate::engine::out_lock::OutLock::take(&args.out)
        .map_err(|m| anyhow::anyhow!("--out {}: {m}", args.out.display()))?;
    let t0 = Instant::now();
    let mut run = setup(&job)?;
    println!(
        "fine-tuning {} ({}) on {}: {}; {} blocks ({}); set up in {:.1} s",
        job.from.display(),
        run.tuner.base_ref.arch,
        run.corpus.0.display(),
        run.describe(),
        run.tuner.blocks.num_blocks(),
        run.tuner.blocks.source,
        t0.elapsed().as_secs_f64()
    );
    untuned(&mut run, &args.dial_curve)?;
    let pb = progress_bar(job.steps, args.quiet);
    let started = Instant::now();
    let mut tokens = 0usize;
    for step in 0..job.steps {
        let s = run.step().with_context(|| {
            format!(
                "fine-tuning step {step} (adapter at {} kept as it was)",
                args.out.display()
            )
        })?;
        tokens += s.tokens;
        let tps = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
        pb.set_position(step as u64 + 1);
        pb.set_message(format!(
            "{tps:.0} tok/s  loss {:.4} nats  (ce {:.4}, Ω {:.4}, rules {:.4}, λ {:.2})",
            s.loss_nats, s.ce_nats, s.penalty, s.rule_nats, s.lambda
        ));
        if args.quiet && (step + 1) % 10 == 0 {
            println!(
                "step {}: loss {:.4} (ce {:.4}, Ω {:.4}, λ {:.2}), {tps:.0} tok/s",
                step + 1,
                s.loss_nats,
                s.ce_nats,
                s.penalty,
                s.lambda
            );
        }
        if args.checkpoint_every > 0 && (step + 1) % args.checkpoint_every == 0 {
            run.save(&args.out, None)?;
        }
    }
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let after = run.evaluate(EVAL_WINDOWS)?;
    run.save(&args.out, Some(&after))?;
    println!(
        "fine-tuned {} steps in {secs:.1} s ({:.0} tokens/s); held-out after: perplexity {:.2}, \
         entropy {:.3} bits, ε {:.4}",
        job.steps,
        tokens as f64 / secs.max(1e-9),
        after.perplexity.unwrap_or(f64::NAN),
        after.entropy_bits,
        after.epsilon
    );
    println!(
        "adapter: {} (open it like a model; it applies itself to its base)",
        args.out.display()
    );
    Ok(())
}

/// The untuned model's held-out metrics at λ_inf = 0, then under the dial at each λ of `curve`.
fn untuned(run: &mut FinetuneRun, curve: &[f64]) -> Result<()> {
    let before = run.evaluate(EVAL_WINDOWS)?;
    println!(
        "held-out before (λ_inf = 0, {} tokens): perplexity {:.2}, entropy {:.3} bits, ε {:.4}",
        before.tokens,
        before.perplexity.unwrap_or(f64::NAN),
        before.entropy_bits,
        before.epsilon
    );
    // Before any step the adapter changes nothing, so λ_inf = 0 of the curve is `before`:
    // measured once.
    let dialled: Vec<f64> = curve.iter().copied().filter(|&l| l != 0.0).collect();
    let mut measured = run.dial_curve(&dialled, EVAL_WINDOWS)?.into_iter();
    let rows = curve.iter().filter_map(|&l| {
        if l == 0.0 {
            Some(before.clone())
        } else {
            measured.next()
        }
    });
    for row in rows {
        println!(
            "untuned under the dial λ_inf = {:.2} (mode A): perplexity {:.2}, entropy {:.3} bits, ε {:.4}",
            row.lambda,
            row.perplexity.unwrap_or(f64::NAN),
            row.entropy_bits,
            row.epsilon
        );
    }
    Ok(())
}
