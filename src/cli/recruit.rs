//! `localist train --recruit`: the block-recruitment flags (SPEC §9) and the settings they
//! make.

use clap::Args;

use crate::engine::RecruitConfig;

/// `localist train --recruit` and its settings.
#[derive(Args, Debug, Clone)]
pub struct RecruitArgs {
    /// Grow blocks by recruitment (SPEC §9) from the starting map (default: one block), with
    /// unassigned tokens open (they keep all context), measuring the data bits in the localist
    /// view at the dial --recruit-lambda; the decisions are printed and saved as
    /// recruitment.json in the checkpoint.
    #[arg(long)]
    pub recruit: bool,
    /// λ_rec: the mode-A dial the recruitment's data bits are measured at (with unassigned
    /// tokens isolated: the localist view).
    #[arg(long, default_value_t = 1.0, value_parser = super::parse_lambda)]
    pub recruit_lambda: f64,
    /// Steps before the first recruitment round (default 100; 50 on a small training text,
    /// one that 100 steps read more than 10 times, when neither spacing flag is given).
    #[arg(long)]
    pub recruit_warmup: Option<usize>,
    /// E_rec: steps between rounds (default 100; 25 on a small training text).
    #[arg(long)]
    pub recruit_every: Option<usize>,
    /// Probe steps per candidate (and for the control); 0 judges every move at once.
    #[arg(long, default_value_t = 0)]
    pub recruit_probe: usize,
    /// Second look: steps trained under a cluster judged at once not to pay, and under the
    /// current map as a control, before deciding again (0: never; only with --recruit-probe 0).
    #[arg(long, default_value_t = RecruitConfig::default().second_look)]
    pub recruit_second_look: usize,
    /// δ_rec in bits: a move must save more than this.
    #[arg(long, default_value_t = 64.0, value_parser = super::flags::bits)]
    pub recruit_delta: f64,
    /// K_max: most blocks, block 0 included.
    #[arg(long, default_value_t = 16)]
    pub recruit_kmax: usize,
    /// P: stop after this many rounds without an accepted move, once they span
    /// --recruit-patience-steps training steps.
    #[arg(long, default_value_t = 3)]
    pub recruit_patience: usize,
    /// The rounds without an accepted move must span this many training steps before
    /// recruitment stops (a candidate's value grows with training, not with rounds).
    #[arg(long, default_value_t = RecruitConfig::default().patience_steps)]
    pub recruit_patience_steps: usize,
    /// Charge each block for its anchor keys (L·H·d_h parameters) although they do not enter
    /// the likelihood (see README, Recruitment).
    #[arg(long)]
    pub recruit_charge_anchors: bool,
    /// Held-out tokens in the recruitment buffer.
    #[arg(long, default_value_t = 8192)]
    pub recruit_buffer: usize,
    /// Until the first block is recruited, train the penalty towards positional windows of
    /// this width, as a run without --recruit does (0, the default: no penalty until then).
    /// Closer perplexity to a run without --recruit, fewer topics found (README).
    #[arg(long, default_value_t = RecruitConfig::default().start_windows)]
    pub recruit_start_windows: usize,
    /// With --recruit-start-windows W: keep those windows for the unassigned queries after
    /// the first block too (the recruited queries train towards their blocks).
    #[arg(long)]
    pub recruit_windows_throughout: bool,
    /// Read the data bits with function words isolated, as every unassigned token, instead of
    /// reading the block of the recruited word before them (the default since 2026-12-05).
    #[arg(long)]
    pub recruit_isolate_function_words: bool,
}

impl Default for RecruitArgs {
    fn default() -> Self {
        let c = RecruitConfig::default();
        Self {
            recruit: false,
            recruit_lambda: c.lambda,
            recruit_warmup: None,
            recruit_every: None,
            recruit_probe: c.probe_steps,
            recruit_second_look: c.second_look,
            recruit_delta: c.delta_bits,
            recruit_kmax: c.k_max,
            recruit_patience: c.patience,
            recruit_patience_steps: c.patience_steps,
            recruit_buffer: c.buffer_tokens,
            recruit_charge_anchors: false,
            recruit_start_windows: c.start_windows,
            recruit_windows_throughout: c.windows_throughout,
            recruit_isolate_function_words: !c.function_words_inherit,
        }
    }
}

impl RecruitArgs {
    /// Refuse settings that cannot mean what they say, naming the flag: rounds every 0 steps,
    /// room for no block, an empty buffer, windows wider than the sequence (`seq`), probes
    /// longer than the run (`steps`).
    pub fn check(&self, seq: usize, steps: usize) -> anyhow::Result<()> {
        if !self.recruit {
            return Ok(());
        }
        if self.recruit_every == Some(0) {
            anyhow::bail!("--recruit-every must be at least 1 step between rounds, got 0");
        }
        if self.recruit_kmax < 2 {
            anyhow::bail!(
                "--recruit-kmax counts block 0 (unassigned) too, so it must be at least 2 for \
                 one block to be recruited, got {}",
                self.recruit_kmax
            );
        }
        if self.recruit_buffer == 0 {
            anyhow::bail!("--recruit-buffer must hold at least one held-out token, got 0");
        }
        let w = self.recruit_start_windows;
        if w > 0 && w >= seq {
            anyhow::bail!(
                "--recruit-start-windows {w}: a window of {w} positions would hold the whole \
                 sequence of {seq} and nothing would be local; choose a width below {seq}, or 0"
            );
        }
        if self.recruit_probe > steps {
            anyhow::bail!(
                "--recruit-probe {} steps per candidate is more than the run's --steps {steps}",
                self.recruit_probe
            );
        }
        // The first round: the warm-up given, else 50 at the earliest (a small text's
        // spacing; 100 on a larger one). A run that ends first recruits nothing, and wrote a
        // log of no rounds without a word: refused when the warm-up was given, said when not.
        let first = self.recruit_warmup.unwrap_or(50);
        if first >= steps {
            let why = format!(
                "no round would run: the first round comes at step {first}{} and the run ends \
                 at step {steps} (--steps)",
                if self.recruit_warmup.is_some() {
                    ""
                } else {
                    " at the earliest (the default warm-up: 50 steps on a small text, 100 on others)"
                }
            );
            match self.recruit_warmup {
                Some(w) => anyhow::bail!(
                    "--recruit-warmup {w}: {why}; give more steps or a shorter warm-up"
                ),
                None => eprintln!("warning: --recruit: {why}; the blocks stay as they start"),
            }
        }
        Ok(())
    }

    /// The recruitment settings, when `--recruit` is on.
    pub fn config(&self) -> Option<RecruitConfig> {
        self.recruit.then(|| RecruitConfig {
            enabled: true,
            warmup: self.recruit_warmup.unwrap_or(100),
            every: self.recruit_every.unwrap_or(100),
            spacing_for_text: self.recruit_warmup.is_none() && self.recruit_every.is_none(),
            buffer_tokens: self.recruit_buffer,
            lambda: self.recruit_lambda,
            delta_bits: self.recruit_delta,
            k_max: self.recruit_kmax,
            patience: self.recruit_patience,
            patience_steps: self.recruit_patience_steps,
            probe_steps: self.recruit_probe,
            second_look: self.recruit_second_look,
            charge_anchor_keys: self.recruit_charge_anchors,
            start_windows: self.recruit_start_windows,
            windows_throughout: self.recruit_windows_throughout,
            function_words_inherit: !self.recruit_isolate_function_words,
            ..RecruitConfig::default()
        })
    }
}
