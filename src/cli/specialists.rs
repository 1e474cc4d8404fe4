//! `localist specialists`: grow a pool of specialists over a document collection by
//! description length (SPEC §10), and print the moves and the routing table.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::engine::jobs::specialists::{is_pretrained, AdaptedJob, PoolJob, PoolRun};
use crate::engine::jobs::PoolConfig;

/// Arguments of `localist specialists`.
#[derive(Args, Debug)]
pub struct SpecialistsArgs {
    /// The base specialist: a checkpoint directory, or a pretrained decoder (a .gguf file, a
    /// LLaMA or Qwen2 folder), whose specialists are then adapters on it (see --adapt).
    #[arg(long)]
    pub base: PathBuf,
    /// Documents: a directory (one document per file) or a file (one per separator line, or
    /// per blank-line separated paragraph).
    #[arg(long)]
    pub docs: PathBuf,
    /// The line that separates documents in a single file (default: blank lines).
    #[arg(long)]
    pub separator: Option<String>,
    /// Where to save the pool (checkpoints and manifest.json).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Acceptance margin δ in bits.
    #[arg(long, default_value_t = 64.0, value_parser = super::flags::bits)]
    pub delta: f64,
    /// Most specialists.
    #[arg(long, default_value_t = 8)]
    pub max: usize,
    /// Fine-tuning steps of each candidate specialist.
    #[arg(long, default_value_t = 60)]
    pub probe_steps: usize,
    /// Learning rate of a candidate's fine-tune (default: 0.05 for our own checkpoints'
    /// few parameters, 2e-3 for adapters on a pretrained base).
    #[arg(long, value_parser = super::flags::learning_rate)]
    pub lr: Option<f64>,
    /// Tokens per fine-tuning window (default: 32 for our checkpoints, 128 for adapters).
    #[arg(long)]
    pub seq: Option<usize>,
    /// Windows per fine-tuning step (default: 8 for our checkpoints, 2 for adapters).
    #[arg(long)]
    pub batch: Option<usize>,
    /// On a pretrained base: what each specialist's adapter trains (`lora:R:NAMES`, `NAMES`,
    /// `qk`, `lora:R`; NAMES such as attn_output, blk.29.ffn_down or blk.last.attn_output).
    /// Each specialist pays (p/2)·log₂ n bits for its p adapter scalars, so keep it small.
    /// [default: lora:1:blk.last.attn_output]
    #[arg(long)]
    pub adapt: Option<String>,
    /// On a pretrained base: its blocks (kmeans:K, lexicon:PATH or saved). [default: kmeans:16]
    #[arg(long)]
    pub blocks: Option<String>,
    /// On a pretrained base: λ_train of each specialist's fine-tune (the off-block mass
    /// penalty; 0 trains cross-entropy only). [default: 0]
    #[arg(long, value_parser = super::parse_lambda)]
    pub lambda_train: Option<f64>,
    /// Parameter-name prefixes a specialist trains and pays for (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "head.bias")]
    pub trainable: Vec<String>,
    /// Measure code lengths at the mode-A dial λ (default: the dial saved with the base). Blocks
    /// change the code only at λ > 0, so only then are blocks recruited inside a specialist.
    #[arg(long, value_parser = super::parse_lambda)]
    pub lambda: Option<f64>,
    /// Do not try recruiting blocks inside a specialist (tried only when the base's saved dial
    /// has λ > 0 and its blocks are semantic).
    #[arg(long)]
    pub no_block_moves: bool,
}

impl SpecialistsArgs {
    /// The engine job these arguments describe.
    fn job(&self) -> Result<PoolJob> {
        let adapters = is_pretrained(&self.base);
        let pretrained_only = [
            ("--adapt", self.adapt.is_some()),
            ("--blocks", self.blocks.is_some()),
            ("--lambda-train", self.lambda_train.is_some()),
        ];
        if let Some((flag, _)) = pretrained_only
            .iter()
            .find(|(_, given)| *given && !adapters)
        {
            anyhow::bail!(
                "{flag} applies to a pretrained base (a .gguf file, a LLaMA, Mistral, Phi-3, Qwen2, Qwen3, GPT-2, GPT-Neo, GPT-NeoX, Phi or Gemma folder); {} \
                 is one of our checkpoints, whose specialists fine-tune --trainable",
                self.base.display()
            );
        }
        if self.trainable.iter().any(|t| t.trim().is_empty()) {
            // An empty prefix matches every name: `--trainable ''` fine-tuned all 472,058.
            anyhow::bail!(
                "--trainable {:?}: an empty name in the list (it would match every parameter)",
                self.trainable.join(",")
            );
        }
        let own = PoolConfig::default();
        let (a_lr, a_seq, a_batch) = crate::engine::jobs::specialists::ADAPTER_TUNING;
        Ok(PoolJob {
            base: self.base.clone(),
            docs: self.docs.clone(),
            separator: self.separator.clone(),
            lambda: self.lambda,
            config: PoolConfig {
                delta_bits: self.delta,
                max_specialists: super::flags::count_in(
                    "--max",
                    self.max,
                    super::flags::MAX_SPECIALISTS,
                )?,
                probe_steps: self.probe_steps,
                lr: self.lr.unwrap_or(if adapters { a_lr } else { own.lr }),
                seq_len: self
                    .seq
                    .unwrap_or(if adapters { a_seq } else { own.seq_len }),
                batch_size: self
                    .batch
                    .unwrap_or(if adapters { a_batch } else { own.batch_size }),
                trainable: self.trainable.clone(),
                block_moves: !self.no_block_moves,
                ..own.clone()
            },
            adapted: {
                let d = AdaptedJob::default();
                AdaptedJob {
                    blocks: self.blocks.clone().unwrap_or(d.blocks),
                    adapt: self.adapt.clone().unwrap_or(d.adapt),
                    lambda_train: self.lambda_train.unwrap_or(d.lambda_train),
                }
            },
        })
    }
}

/// Run `localist specialists`.
pub fn run(a: SpecialistsArgs) -> Result<()> {
    crate::engine::outputs::check_new_or_empty(&a.out)
        .and_then(|()| crate::engine::outputs::check_creatable(&a.out))
        .map_err(|m| anyhow::anyhow!("--out {}: {m}", a.out.display()))?;
    let _lock = crate::engine::out_lock::OutLock::take(&a.out)
        .map_err(|m| anyhow::anyhow!("--out {}: {m}", a.out.display()))?;
    let mut pool = PoolRun::open(a.job()?)?;
    println!(
        "{} documents, {} tokens; DL_total with the base alone: {:.0} bits",
        pool.documents(),
        pool.tokens(),
        pool.dl_total_bits()
    );
    for note in pool.notes() {
        eprintln!("note: {note}");
    }
    pool.grow(
        |m| {
            println!(
                "round {}: {}: DL_total {:.0} -> {:.0} bits ({:+.0}), {}",
                m.round,
                m.what,
                m.dl_before,
                m.dl_after,
                m.dl_after - m.dl_before,
                if m.accepted { "accepted" } else { "rejected" }
            );
        },
        |line| eprintln!("  {line}"),
        &|| false,
    )?;
    println!();
    print!("{}", pool.routing_table());
    println!();
    for s in pool.specialist_blocks() {
        println!(
            "{} blocks: {} ({:.0} bits of blocks over its parent)",
            s.name,
            if s.blocks.is_empty() {
                "none besides unassigned".to_string()
            } else {
                s.blocks.join(", ")
            },
            s.bits
        );
    }
    for (name, added, what) in pool.specialist_sizes() {
        println!("{name}: {added} parameters over the base ({what})");
    }
    pool.save(&a.out)?;
    println!(
        "\n{} specialists saved to {} (DL_total {:.0} bits)",
        pool.specialists(),
        a.out.display(),
        pool.dl_total_bits()
    );
    Ok(())
}
