//! `localist synth`: write the synthetic regulated-domain corpus and its ground truth.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::engine::jobs::synth::write_synthetic;
use crate::engine::SyntheticSpec;

/// Arguments of `localist synth`.
#[derive(Args, Debug, Clone)]
pub struct SynthArgs {
    /// Output directory (corpus.txt, lexicon.tsv, targets.json).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Number of records (clinical notes and payments).
    #[arg(long, default_value_t = 4000)]
    pub records: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of clinical records (in [0, 1]).
    #[arg(long, default_value_t = 0.5, value_parser = super::flags::fraction)]
    pub clinical_fraction: f64,
}

/// Run `localist synth`.
pub fn run(args: SynthArgs) -> Result<()> {
    let most = crate::engine::jobs::synth::MAX_RECORDS;
    if !(1..=most).contains(&args.records) {
        bail!("--records must lie in 1..={most}");
    }
    if !(0.0..=1.0).contains(&args.clinical_fraction) {
        bail!("--clinical-fraction must lie in [0, 1]");
    }
    if args.out.exists() && !args.out.is_dir() {
        bail!(
            "--out {}: is a file, not a folder (synth writes corpus.txt, lexicon.tsv and \
             targets.json into a folder)",
            args.out.display()
        );
    }
    crate::engine::outputs::check_not_in_saved_model(&args.out)
        .map_err(|m| anyhow::anyhow!("--out {}: {m}", args.out.display()))?;
    refuse_foreign_outputs(&args.out)?;
    let spec = SyntheticSpec {
        seed: args.seed,
        num_records: args.records,
        clinical_fraction: args.clinical_fraction,
    };
    let s = write_synthetic(&spec, &args.out)?;
    println!(
        "wrote {} records, {} tokens, {} pointer targets, {} lexicon words to {}",
        args.records,
        s.tokens,
        s.pointer_targets,
        s.lexicon_words,
        args.out.display()
    );
    Ok(())
}

/// The three files synth writes are replaced only where an earlier synth wrote them (its
/// `targets.json` says so): `synth --out` into a folder holding the user's own `corpus.txt`
/// replaced it without a word.
fn refuse_foreign_outputs(out: &std::path::Path) -> Result<()> {
    const OURS: [&str; 3] = ["corpus.txt", "lexicon.tsv", "targets.json"];
    let Some(first) = OURS.iter().find(|f| out.join(f).symlink_metadata().is_ok()) else {
        return Ok(());
    };
    let targets = crate::engine::outputs::json_file(&out.join("targets.json"));
    let earlier = targets.is_some_and(|v| {
        v.get("format").and_then(|f| f.as_str()) == Some("localist-pointer-targets")
    });
    if earlier {
        return Ok(());
    }
    bail!(
        "--out {}: holds {first}, which synth did not write (no targets.json of an earlier \
         synth beside it); writing there would replace it: choose a new or empty folder",
        out.display()
    )
}
