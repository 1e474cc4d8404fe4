//! `localist specialists`: grow a pool of specialists over a document collection by
//! description length (SPEC §10), and print the moves and the routing table.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::engine::specialists::{read_documents, Pool, PoolConfig};
use crate::engine::DialSetting;

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
    #[arg(long, default_value_t = 64.0)]
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
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Do not try recruiting blocks inside a specialist (tried only when the base's saved dial
    /// has λ > 0 and its blocks are semantic).
    #[arg(long)]
    pub no_block_moves: bool,
}

/// Run `localist specialists`.
pub fn run(a: SpecialistsArgs) -> Result<()> {
    let texts = read_documents(&a.docs, a.separator.as_deref())?;
    if texts.is_empty() {
        anyhow::bail!("{}: no documents found", a.docs.display());
    }
    let cfg = PoolConfig {
        delta_bits: a.delta,
        max_specialists: a.max.max(1),
        probe_steps: a.probe_steps,
        trainable: a.trainable.clone(),
        block_moves: !a.no_block_moves,
        ..PoolConfig::default()
    };
    let (mut pool, docs) = Pool::from_checkpoint(&a.base, &texts)?;
    if let Some(lambda) = a.lambda {
        if !(0.0..=1.0).contains(&lambda) {
            anyhow::bail!("--lambda {lambda}: the dial lies in [0, 1]");
        }
        pool.set_dial(DialSetting::bias(lambda), &docs, &cfg)?;
    }
    println!(
        "{} documents, {} tokens; DL_total with the base alone: {:.0} bits",
        docs.len(),
        docs.iter().map(|d| d.ids.len()).sum::<usize>(),
        pool.dl_total(&docs, &cfg)
    );
    pool.grow(&docs, &cfg, |m| {
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
    print!("{}", pool.routing_table(&docs));
    println!();
    let block_bits = pool.block_bits(&cfg);
    for (s, bits) in pool.specialists.iter().zip(block_bits) {
        let names: Vec<&str> = s.blocks.names.iter().skip(1).map(String::as_str).collect();
        println!(
            "{} blocks: {} ({bits:.0} bits of blocks over its parent)",
            s.name,
            if names.is_empty() {
                "none besides unassigned".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    pool.save(&a.out, &docs)?;
    println!(
        "\n{} specialists saved to {} (DL_total {:.0} bits)",
        pool.specialists.len(),
        a.out.display(),
        pool.dl_total(&docs, &cfg)
    );
    Ok(())
}
