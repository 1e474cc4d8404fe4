//! `localist specialists`: grow a pool of specialists over a document collection by
//! description length (SPEC §10), and print the moves and the routing table.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::engine::jobs::specialists::{PoolJob, PoolRun};
use crate::engine::jobs::PoolConfig;

/// Arguments of `localist specialists`.
#[derive(Args, Debug)]
pub struct SpecialistsArgs {
    /// The base specialist (a checkpoint directory).
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
                trainable: self.trainable.clone(),
                block_moves: !self.no_block_moves,
                ..PoolConfig::default()
            },
        })
    }
}

/// Run `localist specialists`.
pub fn run(a: SpecialistsArgs) -> Result<()> {
    let mut pool = PoolRun::open(a.job()?)?;
    println!(
        "{} documents, {} tokens; DL_total with the base alone: {:.0} bits",
        pool.documents(),
        pool.tokens(),
        pool.dl_total_bits()
    );
    pool.grow(|m| {
        println!(
            "round {}: {}: DL_total {:.0} -> {:.0} bits ({:+.0}), {}",
            m.round,
            m.what,
            m.dl_before,
            m.dl_after,
            m.dl_after - m.dl_before,
            if m.accepted { "accepted" } else { "rejected" }
        );
    })?;
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
    pool.save(&a.out)?;
    println!(
        "\n{} specialists saved to {} (DL_total {:.0} bits)",
        pool.specialists(),
        a.out.display(),
        pool.dl_total_bits()
    );
    Ok(())
}
