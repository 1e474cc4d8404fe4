//! Fine-tuning jobs: take the imported decoder the worker holds (nothing is reloaded), tune it
//! a step at a time like a training run, keep the views on the tuned model, and finish with
//! the held-out metrics before and after.

use std::time::Instant;

use super::models::imported_summary;
use super::slot::{Imported, ModelSlot, Tune};
use super::{RunState, Worker};
use crate::engine::jobs::finetune::{prepare, FinetuneJob, FinetuneRun};
use crate::engine::protocol::Event;
use crate::hf::eval::RealEvalRow;

/// Held-out windows measured at the start and the end of a fine-tune.
const EVAL_WINDOWS: usize = 8;

/// Seconds between captures of the current text while a fine-tune runs (a capture of a
/// pretrained model costs a fraction of a second).
const LIVE_EVERY_S: f64 = 5.0;

impl Worker {
    /// Set up a fine-tune of the held decoder (with the blocks in force) without starting it.
    /// Everything is checked first; on any error the held model stays as it was.
    pub(super) fn new_finetune(&mut self, job: &FinetuneJob) {
        let prepared = match &self.slot {
            ModelSlot::Imported(i) => prepare(job, &i.model, &i.tokenizer),
            ModelSlot::Tune(t) => prepare(job, &t.run.tuner.base, &t.run.tokenizer),
            _ => {
                self.sink.fail(
                    "fine-tuning needs a pretrained decoder: open a .gguf file or a LLaMA, Mistral, Phi-3, Qwen2, Qwen3 \
                     or GPT-2 folder first (Model ▸ pretrained, or a path)",
                );
                return;
            }
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.sink.fail(format!("{e:#}; nothing was changed"));
                return;
            }
        };
        let held = match std::mem::replace(&mut self.slot, ModelSlot::Empty) {
            ModelSlot::Imported(i) => *i,
            // A second fine-tune starts again from the base (W₀; the file it records is the
            // base's): save the first one, and open it, to tune it further.
            ModelSlot::Tune(t) => {
                let tokenizer = t.run.tokenizer;
                let (model, blocks) = match t.run.tuner.into_base() {
                    Ok(parts) => parts,
                    Err(e) => {
                        self.sink
                            .fail(format!("{e:#}; reopen the model to continue"));
                        return;
                    }
                };
                Imported {
                    blocks,
                    model,
                    tokenizer,
                }
            }
            other => {
                self.slot = other;
                return;
            }
        };
        let Imported {
            model,
            blocks,
            tokenizer,
        } = held;
        let mut run = match FinetuneRun::start(model, tokenizer, blocks, prepared) {
            Ok(r) => r,
            Err(e) => {
                self.sink
                    .fail(format!("{e:#}; reopen the model to continue"));
                return;
            }
        };
        // The rules in force were resolved against these blocks; μ_rule weighs them.
        run.tuner.rules = self.rules.resolved.clone();
        self.started_tune(run);
    }

    /// Make a set-up fine-tune the current model: its summary, its held-out start, a capture.
    fn started_tune(&mut self, run: FinetuneRun) {
        let before = run.evaluate(EVAL_WINDOWS).ok();
        let mut summary = tune_summary(&run);
        self.runs += 1;
        summary.model_id = self.new_model_id(None, format!("fine-tune {}", self.runs));
        let said = format!(
            "fine-tuning {}{}",
            run.describe(),
            before
                .as_ref()
                .map(|b| held_out(" — held out before", b))
                .unwrap_or_default()
        );
        self.slot = ModelSlot::Tune(Box::new(Tune {
            run,
            before,
            last_eval: None,
        }));
        self.state = RunState::Idle;
        self.sink.emit(Event::Loaded(Box::new(summary)));
        self.sink.emit(Event::Status(said));
        self.refit_rules();
        self.recapture();
    }

    /// One fine-tuning step, reported as a training step is.
    pub(super) fn tune_step(&mut self) {
        let Some(tune) = self.slot.tune_mut() else {
            return;
        };
        let total = tune.run.tuner.config.steps;
        if tune.run.tuner.step >= total {
            self.state = RunState::Idle;
            self.finish_tune();
            return;
        }
        match tune.run.step() {
            Ok(stats) => {
                let finished = stats.step + 1 >= total;
                self.report_step(stats, total);
                if finished {
                    self.state = RunState::Idle;
                    self.finish_tune();
                } else if self
                    .last_live
                    .is_none_or(|t| t.elapsed().as_secs_f64() >= LIVE_EVERY_S)
                {
                    self.last_live = Some(Instant::now());
                    self.recapture();
                }
            }
            Err(e) => {
                self.state = RunState::Idle;
                self.sink.fail(format!(
                    "{e:#}; the adapter keeps its last good step (Save… writes it)"
                ));
            }
        }
    }

    /// The end of a fine-tune (or Stop): held-out metrics before and after, and a capture.
    pub(super) fn finish_tune(&mut self) {
        let Some(tune) = self.slot.tune_mut() else {
            return;
        };
        match tune.run.evaluate(EVAL_WINDOWS) {
            Ok(after) => {
                let line = format!(
                    "fine-tuned {} steps{}{}; Save… writes the adapter",
                    tune.run.tuner.step,
                    tune.before
                        .as_ref()
                        .map(|b| held_out(" — held out before", b))
                        .unwrap_or_default(),
                    held_out(", after", &after)
                );
                tune.last_eval = Some(after);
                self.sink.emit(Event::Status(line));
            }
            Err(e) => self.sink.fail(format!("evaluation failed: {e:#}")),
        }
        self.recapture();
    }
}

/// "{what}: perplexity P, ε E" of a held-out row.
fn held_out(what: &str, r: &RealEvalRow) -> String {
    format!(
        "{what}: perplexity {:.2}, ε {:.4}",
        r.perplexity.unwrap_or(f64::NAN),
        r.epsilon
    )
}

/// The summary of a fine-tune: its base, the λ_train it tunes under, and its blocks.
fn tune_summary(run: &FinetuneRun) -> crate::engine::protocol::ModelSummary {
    let t = &run.tuner;
    let mut summary = imported_summary(&t.base, &t.blocks);
    summary.source = format!("fine-tune of {}", t.base.path().display());
    summary.lambda_train = Some(t.config.lambda_train);
    summary.imported = Some((
        format!("{} ({})", t.base.kind_label(), t.adapter.spec.describe()),
        t.blocks.source.clone(),
    ));
    summary
}
