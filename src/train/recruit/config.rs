//! The settings of block-level recruitment (SPEC §9): when rounds run, the buffer and dial the
//! data bits are measured at, the acceptance margin and the limits.

use serde::{Deserialize, Serialize};

/// Recruitment settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecruitConfig {
    /// Run rounds at all (the studio switches this while training).
    pub enabled: bool,
    /// Steps before the first round.
    pub warmup: usize,
    /// E_rec: steps between rounds.
    pub every: usize,
    /// n: held-out tokens in the buffer the data bits are measured on.
    pub buffer_tokens: usize,
    /// λ_rec: the mode-A dial the data bits are measured at, in the localist view (unassigned
    /// tokens isolated; see `buffer::localist_view`). Training sets no dial of its own.
    pub lambda: f64,
    /// δ_rec: a move must save more than this many bits.
    pub delta_bits: f64,
    /// K_max: most blocks, block 0 included.
    pub k_max: usize,
    /// P: stop after this many rounds without an accepted move, counting only rounds at which
    /// the model had settled (see `settle`), once they also span `patience_steps`.
    pub patience: usize,
    /// The counted rounds without an accepted move must also span this many training steps
    /// (from the first of them to the step the next would be due) before recruitment stops.
    /// A candidate's value is what the model can make of it, and that grows with training, not
    /// with the number of rounds: with rounds every 25 steps, 3 rounds span 75 steps, and on a
    /// 4-topic corpus without markers the first block that paid came 25 steps after such a
    /// stop (ΔDL +207, +172, +8.6, then −265 bits at step 125). The default, 500, was 300 (the
    /// span of P rounds at the default spacing) until 2026-12-03: with rounds every 25 steps,
    /// 5 topics without markers came within reach at steps 350–500, after a 300-step span had
    /// stopped the run at step 325 (on two random sweeps of 12 corpora with the README's
    /// command, 9 and 11 reach ARI 0.9 against 8 and 10). A log
    /// written before this setting reads it as 0 (the field's own default, not the struct's):
    /// its run stopped on the count of rounds alone.
    #[serde(default)]
    pub patience_steps: usize,
    /// A round without an accepted move counts towards `patience` only when the training
    /// cross-entropy (its moving average) fell by less than this fraction since the previous
    /// round; 0 (the default) counts every such round. While the model is still learning, a
    /// candidate it cannot use yet may pay later (measured: a 5-topic corpus trained 1,500 steps
    /// stopped at step 300 with 2 of 5 blocks), but the rounds that go on then also let merges of
    /// two true topics through on a few bits of noise (topics:5 merged colours and tools at step
    /// 250, ΔDL −117 bits), so it is off until merges are judged more carefully.
    pub settle: f64,
    /// While nothing is recruited, a round that accepts nothing counts towards `patience` only
    /// when the model uses context: the buffer coded with every key visible takes at least this
    /// fraction fewer bits than in the localist view, where every token is isolated. A block's
    /// value is the context it gives its tokens, so before the model reads context (a small
    /// model sits on a plateau at its unigram loss for a few hundred steps) no candidate can
    /// show one, and rejecting them says nothing about the text. Measured on the 8-topic
    /// real-word corpus: 0.1–0.6% on the plateau, 3.5% as it leaves it, 11–16% after (0: off).
    pub min_context_gain: f64,
    /// c_min: a token must occur this often in the buffer to join a candidate.
    pub min_count: usize,
    /// Probe: training steps run under the candidate map and, from the same state with the
    /// same batches, under the current map (the control).
    pub probe_steps: usize,
    /// Second look: when `probe_steps` is 0 and a cluster of two or more tokens judged at once
    /// does not pay, train this many steps under it and under the current map (the control)
    /// and decide again (0: never). See `second_look.rs`.
    pub second_look: usize,
    /// Prune a block used by fewer than this fraction of buffer positions.
    pub prune_usage: f64,
    /// Co-occurrence window (± positions) for clustering candidates.
    pub window: usize,
    /// Charge each block for its anchor keys (p_k = L·H·d_h). Off by default: in this model the
    /// anchor keys do not enter the forward pass, so L(D | M) does not depend on them and a
    /// two-part code that transmits the data need not transmit them (p_k = 0; the header and
    /// map bits are still paid). See the module notes.
    pub charge_anchor_keys: bool,
    /// Most accepted moves in one round: after an accepted move the round tries the next
    /// candidate from the new map (a try judged at once costs one pass over the buffer).
    pub moves_per_round: usize,
    /// Scale the buffer's data bits to the whole corpus (training text plus buffer): L(D | M) =
    /// n × bits per buffer token (SPEC §9), since model bits are paid once for all the data.
    /// Off where the buffer is the text trained on (the specialists' block move).
    pub scale_to_corpus: bool,
    /// Probe-train merges and prunes too (default off: they are judged on what the current
    /// model loses at once; see the module notes).
    pub merge_probe: bool,
    /// Until the first block is recruited, the penalty trains every query towards positional
    /// windows of this width, as the default map of a run without recruitment does (0, the
    /// default: no penalty until then). Every key stays visible (the forward pass has no
    /// dial), so context still reaches every query (SPEC §9); the windows only give the
    /// penalty's locality. Measured (README, Recruitment): on the 8-topic real-word corpus the
    /// model leaves its loss plateau sooner and ends within 4% of the run without recruitment
    /// on four seeds (1.09–1.47 without it), but fewer topics pay later (ARI 0.51, 0.51, 0.00,
    /// 0.88 against 1.00, 1.00, 0.13, 1.00), and on twelve random corpora 7 reach ARI 0.9
    /// against 9; so it is off. A log written before this setting reads it as 0.
    #[serde(default)]
    pub start_windows: usize,
    /// In the localist view the data bits are read in, a function word (a token the
    /// co-occurrence profile sets apart as function-like, `profile.rs`) reads the block of the
    /// content word before it instead of nothing (`buffer::localist_view`; isolated still when
    /// that word is unassigned), so a block also earns the context it gives the function words
    /// inside its text. Off, they are isolated like every unassigned token. Measured (README,
    /// Recruitment): on text with many function words and short segments the context the model
    /// reads most is the topic a function word sits in, and no block could earn it while they
    /// were isolated (a 6-topic corpus with 40% function words: 1 block and ARI 0.138
    /// isolated, 6 and 1.000 with this).
    /// A log written before this setting reads it as off.
    #[serde(default)]
    pub function_words_inherit: bool,
    /// Keep the start's windows (`start_windows`) for the unassigned queries after the first
    /// block too, so that they train as in a run without recruitment while the recruited
    /// queries train towards their blocks (off by default; measured in the README).
    #[serde(default)]
    pub windows_throughout: bool,
    /// `warmup` and `every` were not chosen (the command line's defaults): on a small training
    /// text, rounds start at step 50 and come every 25 steps ([`Self::spaced_for`]).
    #[serde(default, skip_serializing)]
    pub spacing_for_text: bool,
}

/// A training text that 100 steps read more than this many times is small: it is learnt by
/// heart early, after which no block can show its worth (README, Recruitment).
pub const SMALL_TEXT_READS: usize = 10;

/// Candidates a round on a small text tries that are rejected before it ends (elsewhere the
/// first rejection ends it): such a text is learnt by heart within a few rounds, after which no
/// block can show its worth (README, Recruitment: a 200-document corpus of 6 topics found 4
/// one round at a time, 5 trying on after a rejection).
pub const SMALL_TEXT_QUIET_TRIES: usize = 3;

/// Whether `trainer`'s training text is small: 100 steps read it more than
/// [`SMALL_TEXT_READS`] times.
pub fn small_text(trainer: &crate::train::trainer::Trainer) -> bool {
    let step = trainer.config.batch_size * trainer.config.seq_len;
    (trainer.train.ids.len()).saturating_mul(SMALL_TEXT_READS) < 100 * step
}

/// How many rejected tries end a round on `trainer`'s text: [`SMALL_TEXT_QUIET_TRIES`] on a
/// small text, where the next candidate is tried at once while the model can still show what
/// a block is worth; elsewhere the first.
pub fn quiet_tries(trainer: &crate::train::trainer::Trainer) -> usize {
    if small_text(trainer) {
        SMALL_TEXT_QUIET_TRIES
    } else {
        1
    }
}

impl RecruitConfig {
    /// The rounds' spacing for `trainer`'s text, when it was not chosen: a text that 100 steps
    /// read more than [`SMALL_TEXT_READS`] times (under 10,240 tokens at the default 16 × 64) gets
    /// its first round at step 50 and one every 25 steps, as the command has them.
    /// Measured: six corpora of 200 documents (5,400–7,700 training tokens) reach ARI ≥ 0.98
    /// so, where the default spacing left one at 0.172 (2 blocks of 8 topics): the model had
    /// learnt the text by heart before its second round.
    pub fn spaced_for(mut self, trainer: &crate::train::trainer::Trainer) -> Self {
        let (text, step) = (
            trainer.train.ids.len(),
            trainer.config.batch_size * trainer.config.seq_len,
        );
        if self.spacing_for_text && small_text(trainer) {
            (self.warmup, self.every) = (self.warmup.min(50), self.every.min(25));
            eprintln!(
                "note: a small training text ({text} tokens: 100 steps read it {:.0} times, and \
                 a model learns it by heart early): recruitment rounds from step {}, every {} \
                 steps (--recruit-warmup, --recruit-every)",
                (100 * step) as f64 / text.max(1) as f64,
                self.warmup,
                self.every
            );
        }
        self
    }

    /// The settings of the command line that differ from `saved`'s, as flags with the saved
    /// value ("--recruit-delta 64 (the saved log's: 32)"), for a resumed run.
    pub fn changes_from(&self, saved: &Self) -> Vec<String> {
        let pairs = [
            ("--recruit-warmup", self.warmup as f64, saved.warmup as f64),
            ("--recruit-every", self.every as f64, saved.every as f64),
            ("--recruit-lambda", self.lambda, saved.lambda),
            ("--recruit-delta", self.delta_bits, saved.delta_bits),
            ("--recruit-kmax", self.k_max as f64, saved.k_max as f64),
            (
                "--recruit-patience",
                self.patience as f64,
                saved.patience as f64,
            ),
            (
                "--recruit-patience-steps",
                self.patience_steps as f64,
                saved.patience_steps as f64,
            ),
            (
                "--recruit-buffer",
                self.buffer_tokens as f64,
                saved.buffer_tokens as f64,
            ),
            (
                "--recruit-probe",
                self.probe_steps as f64,
                saved.probe_steps as f64,
            ),
            (
                "--recruit-second-look",
                self.second_look as f64,
                saved.second_look as f64,
            ),
            (
                "--recruit-start-windows",
                self.start_windows as f64,
                saved.start_windows as f64,
            ),
        ];
        pairs
            .iter()
            .filter(|(_, now, then)| now != then)
            .map(|(flag, now, then)| format!("{flag} {now} (the saved log's: {then})"))
            .collect()
    }

    /// [`start_windows`](Self::start_windows) as the trainer takes it (None when 0).
    pub fn start_windows_width(&self) -> Option<usize> {
        (self.start_windows > 0).then_some(self.start_windows)
    }
}

impl Default for RecruitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            warmup: 100,
            every: 100,
            buffer_tokens: 8192,
            lambda: 1.0,
            delta_bits: 64.0,
            k_max: 16,
            patience: 3,
            patience_steps: 500,
            settle: 0.0,
            min_context_gain: 0.01,
            min_count: 5,
            probe_steps: 0,
            second_look: 10,
            prune_usage: 1e-3,
            window: 4,
            charge_anchor_keys: false,
            merge_probe: false,
            scale_to_corpus: true,
            moves_per_round: 4,
            start_windows: 0,
            windows_throughout: false,
            function_words_inherit: true,
            spacing_for_text: false,
        }
    }
}
