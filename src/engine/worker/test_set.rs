//! The auditor's pass/fail over a test set: the windows of the test set asked for, cut for the
//! model held, and each rule in force measured over them under the current dial, with the
//! progress in the status bar and a cancel button.

use std::path::Path;

use anyhow::{bail, Result};

use super::slot::ModelSlot;
use super::Worker;
use crate::engine::jobs::eval::held_out_stream;
use crate::engine::jobs::test_set::{
    audit_windows, imported_windows, read_sentences, sentence_windows, stream_windows,
    HELD_OUT_WINDOWS,
};
use crate::engine::protocol::{rules_key, Event, TestSet, TestSetAudit};

impl Worker {
    /// Measure the rules in force over `set` and send the result (or why it failed).
    pub(super) fn audit_test_set(&mut self, set: TestSet) {
        let result = self
            .test_set_audit(set)
            .map(Box::new)
            .map_err(|e| format!("audit over the test set failed: {e:#}"));
        self.sink.emit(Event::TestSetAudit(result));
    }

    fn test_set_audit(&self, set: TestSet) -> Result<TestSetAudit> {
        let (windows, described) = self.test_windows(&set)?;
        let Some((model, blocks, _)) = self.slot.current() else {
            bail!("no model is loaded");
        };
        let _cancellable = self.sink.cancellable();
        let (n, sink) = (windows.len(), &self.sink);
        let mut watch = |done: usize| {
            sink.job_progress(
                format!("auditing the rules: sentence {done} of {n}…"),
                done as f32 / n.max(1) as f32,
            )
        };
        let rows = audit_windows(
            model,
            blocks,
            &self.rules.resolved,
            &windows,
            &self.dial,
            &mut watch,
        )?;
        Ok(TestSetAudit {
            set,
            described,
            sentences: windows.len(),
            rows,
            rules: rules_key(&self.rules.text, &self.rules.off),
            on: self.measured_on(),
        })
    }

    /// The token windows of `set` for the model held, and what they are, in words.
    fn test_windows(&self, set: &TestSet) -> Result<(Vec<Vec<u32>>, String)> {
        let Some((model, _, tok)) = self.slot.current() else {
            bail!("no model is loaded");
        };
        let limit = self.capture_limit(model);
        match set {
            TestSet::Sentences(path) => {
                let (sentences, left_out) = read_sentences(path)?;
                let windows = sentence_windows(&sentences, tok, limit);
                let more = if left_out > 0 {
                    format!(" (the first {}; {left_out} more left out)", sentences.len())
                } else {
                    String::new()
                };
                let name = path.file_name().unwrap_or(path.as_os_str());
                let described = format!(
                    "{} sentences of {}{more}",
                    windows.len(),
                    name.to_string_lossy()
                );
                Ok((windows, described))
            }
            TestSet::HeldOut => {
                let windows = match &self.slot {
                    ModelSlot::Run(s) => {
                        let len = s.job.train.seq_len.min(limit);
                        stream_windows(&s.val, len, HELD_OUT_WINDOWS)
                    }
                    ModelSlot::Checkpoint(l) => {
                        let max = l.model.config.max_seq_len;
                        let (stream, seq) =
                            held_out_stream(&l.meta, max, None, Path::new("the checkpoint"))?;
                        stream_windows(&stream, seq.min(limit), HELD_OUT_WINDOWS)
                    }
                    ModelSlot::Imported(_) | ModelSlot::Tune(_) => imported_windows(tok)?,
                    ModelSlot::Empty => bail!("no model is loaded"),
                };
                let len = windows.first().map_or(0, Vec::len);
                let described = format!("{} held-out windows of {len} tokens", windows.len());
                Ok((windows, described))
            }
        }
    }
}
