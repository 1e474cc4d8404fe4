//! `localist corpus-gen`: write a corpus of the topic family (`data/topics.rs`) as a text file,
//! one document per line, with its truth beside it: the corpus recruitment is tested on, for a
//! user to try recruitment on text it was not built on.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::engine::corpus::{TopicCorpus, TopicSpec, MAX_TOPICS};

/// Arguments of `localist corpus-gen`.
#[derive(Args, Debug, Clone)]
pub struct CorpusGenArgs {
    /// Output text file (one document per line).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Also write the truth here: `word<TAB>topic` per line, function words as `function`.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Number of topics K (2 to 8).
    #[arg(long, default_value_t = 4)]
    pub topics: usize,
    /// Number of documents.
    #[arg(long, default_value_t = 500)]
    pub documents: usize,
    /// Words per document.
    #[arg(long, default_value_t = 96)]
    pub document_words: usize,
    /// Theme words per topic per document.
    #[arg(long, default_value_t = 4)]
    pub theme: usize,
    /// Shortest and longest segment in words, as MIN,MAX.
    #[arg(long, default_value = "4,12")]
    pub segment: String,
    /// Start no segment with a marker word of its topic.
    #[arg(long)]
    pub no_markers: bool,
    /// Fraction of the words that are shared function words (0 to 0.5).
    #[arg(long, default_value_t = 0.2, value_parser = super::flags::fraction)]
    pub function_rate: f64,
    /// Use the built-in real words (16 per topic) instead of made-up ones.
    #[arg(long)]
    pub real_words: bool,
    /// Made-up words per topic (4 to 64; default 20). The real words are 16 per topic.
    #[arg(long)]
    pub words_per_topic: Option<usize>,
    /// Generator seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the documents in sentences, as a person writes: a capital first word, a full stop
    /// every 6 to 14 words, a comma now and then (the truth keeps the lower-case words).
    #[arg(long)]
    pub sentences: bool,
    /// Use the topics unequally: a segment is of topic k with weight 1/(k+1) (the first topic
    /// about twice as common as the second), as a user's text seldom spends its words evenly.
    #[arg(long)]
    pub unequal: bool,
}

/// Run `localist corpus-gen`.
pub fn run(args: CorpusGenArgs) -> Result<()> {
    let spec = args.spec()?;
    crate::cli::output::check_file_out("--out", &args.out, &[])?;
    if let Some(truth) = &args.truth {
        crate::cli::output::check_file_out("--truth", truth, &[&args.out])?;
    }
    let corpus = TopicCorpus::generate(&spec);
    let truth = corpus.truth_tsv();
    let mut files: Vec<(&std::path::Path, &[u8])> = vec![(&args.out, corpus.text.as_bytes())];
    if let Some(path) = &args.truth {
        files.push((path, truth.as_bytes()));
    }
    // The corpus and its truth both or neither.
    crate::engine::export::write_all_atomic(&files)?;
    // The truth holds each topic's marker too: "topics of 17 words" for 16 and a marker.
    let per_topic = corpus.truth.len() / corpus.topic_names.len().max(1);
    let markers = usize::from(!args.no_markers && per_topic > 0);
    println!(
        "wrote {} documents, {} topics of {} words{}{} to {}",
        spec.documents,
        corpus.topic_names.len(),
        per_topic - markers,
        if markers == 1 { " and a marker" } else { "" },
        if corpus.function_words.is_empty() {
            String::new()
        } else {
            format!(", function words at {:.0}%", 100.0 * spec.function_rate)
        },
        args.out.display()
    );
    Ok(())
}

impl CorpusGenArgs {
    /// The generator's settings, refusing values outside the family.
    pub fn spec(&self) -> Result<TopicSpec> {
        if !(2..=MAX_TOPICS).contains(&self.topics) {
            bail!(
                "--topics must lie in 2..={MAX_TOPICS} (got {})",
                self.topics
            );
        }
        if self.documents == 0 || self.document_words == 0 {
            bail!("--documents and --document-words must be at least 1");
        }
        // The corpus is built in memory: a billion documents once asked for 24 GB and aborted.
        // 40 million words is about the largest corpus `train` reads (256 MiB).
        const MOST_WORDS: usize = 40_000_000;
        if self.documents.saturating_mul(self.document_words) > MOST_WORDS {
            bail!(
                "--documents {} × --document-words {} is more than {MOST_WORDS} words (about \
                 the largest corpus train reads); make fewer or shorter documents",
                self.documents,
                self.document_words
            );
        }
        if !(0.0..=0.5).contains(&self.function_rate) {
            bail!("--function-rate must lie in [0, 0.5]");
        }
        let words_per_topic = self.words_per_topic.unwrap_or(20);
        if self.real_words && self.words_per_topic.is_some() {
            bail!("--words-per-topic sets the made-up words; the real words are 16 per topic");
        }
        if !self.real_words && !(4..=64).contains(&words_per_topic) {
            bail!("--words-per-topic must lie in 4..=64");
        }
        let per_topic = if self.real_words { 16 } else { words_per_topic };
        if self.theme == 0 || self.theme > per_topic {
            bail!("--theme must lie in 1..={per_topic} (the words of a topic)");
        }
        let parts: Vec<&str> = self.segment.split(',').map(str::trim).collect();
        let (lo, hi) = match parts.as_slice() {
            [a, b] => (
                a.parse::<usize>().ok().filter(|&v| v >= 1),
                b.parse::<usize>().ok(),
            ),
            _ => (None, None),
        };
        let (Some(lo), Some(hi)) = (lo, hi.filter(|&h| lo.is_some_and(|l| h >= l))) else {
            bail!(
                "--segment must be MIN,MAX with 1 <= MIN <= MAX (got '{}')",
                self.segment
            );
        };
        Ok(TopicSpec {
            seed: self.seed,
            topics: self.topics,
            documents: self.documents,
            document_words: self.document_words,
            theme: self.theme,
            segment: (lo, hi),
            headers: !self.no_markers,
            function_rate: self.function_rate,
            made_up: !self.real_words,
            words_per_topic,
            sentences: self.sentences,
            unequal: self.unequal,
        })
    }
}
