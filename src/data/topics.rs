//! A seeded generator of text from K* topics with disjoint vocabularies: the corpus that block
//! recruitment (SPEC §9, §11.12) is tested on, with the generator's truth for every word.
//!
//! Each document draws, per topic, a small *theme*: a few words of that topic's vocabulary. The
//! document is a run of segments; each segment picks a topic other than the previous one and
//! emits words drawn uniformly from that topic's theme. To predict the next word well a query
//! must find the earlier words of its own topic in this document (which theme words are in use)
//! and ignore the other topics' words, which is exactly what a semantic block does under the
//! dial. Output is a pure function of [`TopicSpec`]: same seed, same text.

use serde::{Deserialize, Serialize};

use crate::analysis::rng::SplitMix64;

/// Topic names and their words (16 each, disjoint, one `split_words` token each).
pub const TOPICS: [(&str, [&str; 16]); 6] = [
    (
        "fruit",
        [
            "apple", "pear", "plum", "cherry", "grape", "lemon", "lime", "mango", "peach", "melon",
            "fig", "date", "kiwi", "guava", "papaya", "quince",
        ],
    ),
    (
        "tools",
        [
            "hammer", "saw", "drill", "chisel", "wrench", "pliers", "file", "rasp", "plane",
            "clamp", "vice", "awl", "mallet", "level", "square", "spanner",
        ],
    ),
    (
        "weather",
        [
            "rain", "snow", "hail", "sleet", "fog", "mist", "wind", "gale", "storm", "thunder",
            "drizzle", "frost", "sunshine", "cloud", "breeze", "monsoon",
        ],
    ),
    (
        "animals",
        [
            "otter", "badger", "fox", "heron", "stoat", "weasel", "hare", "vole", "mole", "lynx",
            "wolf", "bison", "moose", "elk", "marten", "beaver",
        ],
    ),
    (
        "colours",
        [
            "red", "blue", "green", "amber", "violet", "indigo", "ochre", "teal", "crimson",
            "scarlet", "azure", "olive", "maroon", "cyan", "magenta", "umber",
        ],
    ),
    (
        "metals",
        [
            "iron", "copper", "tin", "zinc", "lead", "nickel", "cobalt", "silver", "gold",
            "platinum", "bronze", "brass", "steel", "chrome", "tungsten", "titanium",
        ],
    ),
];

/// What to generate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicSpec {
    /// Seed of the whole corpus.
    pub seed: u64,
    /// Number of topics K* (2 to 6).
    pub topics: usize,
    /// Number of documents.
    pub documents: usize,
    /// Words per document.
    pub document_words: usize,
    /// Theme words per topic per document (1 to 16).
    pub theme: usize,
    /// Shortest and longest segment, in words (after its header).
    pub segment: (usize, usize),
    /// Start every segment with its topic's name (a word of that topic): the switch of topic is
    /// then announced inside the new topic, so a query never needs another topic's words.
    pub headers: bool,
}

impl Default for TopicSpec {
    fn default() -> Self {
        Self {
            seed: 0,
            topics: 3,
            documents: 400,
            document_words: 96,
            theme: 3,
            segment: (4, 12),
            headers: true,
        }
    }
}

/// A generated corpus with its truth.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicCorpus {
    /// Documents, one per line, words separated by spaces.
    pub text: String,
    /// Topic names used, in order.
    pub topic_names: Vec<String>,
    /// `(word, topic index)` for every word of every topic used.
    pub truth: Vec<(String, usize)>,
}

impl TopicCorpus {
    /// Generate (the topic count is clamped to 2..=6, the theme to 1..=16).
    pub fn generate(spec: &TopicSpec) -> Self {
        let k = spec.topics.clamp(2, TOPICS.len());
        let theme = spec.theme.clamp(1, 16);
        let (lo, hi) = (
            spec.segment.0.max(1),
            spec.segment.1.max(spec.segment.0.max(1)),
        );
        let mut rng = SplitMix64::new(spec.seed);
        let mut docs = Vec::with_capacity(spec.documents);
        for _ in 0..spec.documents {
            let themes: Vec<Vec<&str>> = TOPICS
                .iter()
                .take(k)
                .map(|(_, words)| {
                    let mut pool: Vec<&str> = words.to_vec();
                    (0..theme)
                        .map(|_| pool.swap_remove(rng.below(pool.len())))
                        .collect()
                })
                .collect();
            let mut words: Vec<&str> = Vec::with_capacity(spec.document_words);
            let mut topic = rng.below(k);
            while words.len() < spec.document_words {
                let len = lo + rng.below(hi - lo + 1);
                let th = &themes[topic];
                if spec.headers {
                    words.push(TOPICS[topic].0);
                }
                for _ in 0..len.min(spec.document_words - words.len()) {
                    words.push(th[rng.below(th.len())]);
                }
                topic = (topic + 1 + rng.below(k - 1)) % k;
            }
            docs.push(words.join(" "));
        }
        let mut text = docs.join("\n");
        text.push('\n');
        let truth = TOPICS
            .iter()
            .take(k)
            .enumerate()
            .flat_map(|(t, (name, words))| {
                let header = spec.headers.then(|| (name.to_string(), t));
                header
                    .into_iter()
                    .chain(words.iter().map(move |w| (w.to_string(), t)))
            })
            .collect();
        Self {
            text,
            topic_names: TOPICS.iter().take(k).map(|(n, _)| n.to_string()).collect(),
            truth,
        }
    }
}
