//! A seeded generator of text from K* topics with disjoint vocabularies: the corpus that block
//! recruitment (SPEC §9, §11.12) is tested on, with the generator's truth for every word.
//!
//! Each document draws, per topic, a small *theme*: a few words of that topic's vocabulary. The
//! document is a run of segments; each segment picks a topic other than the previous one and
//! emits words drawn uniformly from that topic's theme. To predict the next word well a query
//! must find the earlier words of its own topic in this document (which theme words are in use)
//! and ignore the other topics' words, which is exactly what a semantic block does under the
//! dial. Output is a pure function of [`TopicSpec`]: same seed, same text.
//!
//! The knobs make a *family* of such corpora (recruitment must find the blocks of one it was
//! not built on): the topic count K (2 to 8), real or made-up words (and how many per topic),
//! theme size, segment lengths, topic markers on or off, and a rate of shared function words
//! ("the", "of", ...) between the topic words. `localist corpus-gen` writes one as a text file.

use serde::{Deserialize, Serialize};

use crate::analysis::rng::SplitMix64;

/// Topic names and their words (16 each, disjoint, one `split_words` token each).
pub const TOPICS: [(&str, [&str; 16]); 8] = [
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
    (
        "birds",
        [
            "robin", "wren", "finch", "thrush", "starling", "sparrow", "swallow", "swift",
            "magpie", "jay", "rook", "crow", "owl", "kestrel", "falcon", "curlew",
        ],
    ),
    (
        "trees",
        [
            "oak", "ash", "elm", "beech", "birch", "alder", "hazel", "willow", "poplar", "larch",
            "spruce", "cedar", "yew", "holly", "rowan", "maple",
        ],
    ),
];

/// Shared function words, drawn uniformly between topic words at [`TopicSpec::function_rate`].
pub const FUNCTION_WORDS: [&str; 16] = [
    "the", "of", "and", "a", "to", "in", "is", "that", "for", "with", "as", "on", "by", "at", "or",
    "it",
];

/// Most topics K.
pub const MAX_TOPICS: usize = 8;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TopicSpec {
    /// Seed of the whole corpus.
    pub seed: u64,
    /// Number of topics K* (2 to 8).
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
    /// Expected fraction of the words that are shared function words (0 to 0.5), each placed
    /// before a topic word.
    pub function_rate: f64,
    /// Made-up topic words (`words_per_topic` per topic, from their own seeded stream) instead
    /// of the real-word lists; a marker is then its topic's first word.
    pub made_up: bool,
    /// Words per topic when made up (4 to 64; the real lists have 16).
    pub words_per_topic: usize,
    /// Write each document as a person writes: sentences of 6 to 14 words, each opened by a
    /// capital and closed by a full stop, with a comma after a word now and then (one in
    /// twelve). The words and the truth are those of the same spec without it.
    #[serde(default)]
    pub sentences: bool,
    /// Use the topics unequally: each segment's topic is drawn with weight 1/(k+1) for topic k
    /// (the current one included), so the first is about twice as common as the second.
    #[serde(default)]
    pub unequal: bool,
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
            function_rate: 0.0,
            made_up: false,
            words_per_topic: 16,
            sentences: false,
            unequal: false,
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
    /// The function words that can occur.
    pub function_words: Vec<String>,
}

impl TopicCorpus {
    /// Generate (the topic count is clamped to 2..=8, the theme to the topic's words, the
    /// function rate to 0..=0.5).
    pub fn generate(spec: &TopicSpec) -> Self {
        let k = spec.topics.clamp(2, MAX_TOPICS);
        let vocab = topic_vocabulary(spec, k);
        let (lo, hi) = (
            spec.segment.0.max(1),
            spec.segment.1.max(spec.segment.0.max(1)),
        );
        let rate = spec.function_rate.clamp(0.0, 0.5);
        // A function word before a topic word with probability r/(1 − r): a fraction r of words.
        let p_function = rate / (1.0 - rate);
        let mut rng = SplitMix64::new(spec.seed);
        // The sentences' own stream: the words stay those of the spec without them.
        let mut pen = SplitMix64::new(spec.seed ^ 0x5e47_e4ce);
        let mut docs = Vec::with_capacity(spec.documents);
        for _ in 0..spec.documents {
            let themes: Vec<Vec<&str>> = vocab
                .iter()
                .map(|(_, words)| {
                    let mut pool: Vec<&str> = words.iter().map(String::as_str).collect();
                    let theme = spec.theme.clamp(1, pool.len().max(1));
                    (0..theme)
                        .map(|_| pool.swap_remove(rng.below(pool.len())))
                        .collect()
                })
                .collect();
            let mut words: Vec<&str> = Vec::with_capacity(spec.document_words);
            let mut topic = next_topic(&mut rng, k, None, spec.unequal);
            while words.len() < spec.document_words {
                let len = lo + rng.below(hi - lo + 1);
                let th = &themes[topic];
                if spec.headers {
                    words.push(vocab[topic].0.as_str());
                }
                for _ in 0..len.min(spec.document_words - words.len()) {
                    if rate > 0.0 && rng.next_f64() < p_function {
                        words.push(FUNCTION_WORDS[rng.below(FUNCTION_WORDS.len())]);
                    }
                    words.push(th[rng.below(th.len())]);
                }
                topic = next_topic(&mut rng, k, Some(topic), spec.unequal);
            }
            docs.push(if spec.sentences {
                in_sentences(&words, &mut pen)
            } else {
                words.join(" ")
            });
        }
        let mut text = docs.join("\n");
        text.push('\n');
        let truth = vocab
            .iter()
            .enumerate()
            .flat_map(|(t, (marker, words))| {
                let header = (spec.headers && !words.contains(marker)).then(|| (marker.clone(), t));
                header
                    .into_iter()
                    .chain(words.iter().map(move |w| (w.clone(), t)))
            })
            .collect();
        Self {
            text,
            topic_names: vocab.iter().map(|(n, _)| n.clone()).collect(),
            truth,
            function_words: if rate > 0.0 {
                FUNCTION_WORDS.iter().map(|w| w.to_string()).collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The truth as a TSV text: `word<TAB>topic` per line (function words under `function`).
    pub fn truth_tsv(&self) -> String {
        let mut out = String::new();
        for (w, t) in &self.truth {
            let name = self.topic_names.get(*t).map(String::as_str).unwrap_or("?");
            out.push_str(&format!("{w}\t{name}\n"));
        }
        for w in &self.function_words {
            out.push_str(&format!("{w}\tfunction\n"));
        }
        out
    }
}

/// The next segment's topic of `k`: uniform and never `current`, or, when `unequal`, topic t
/// with weight 1/(t+1), the current one included (as in a text that dwells on its main topic).
/// The uniform draw is the one the generator always made.
fn next_topic(rng: &mut SplitMix64, k: usize, current: Option<usize>, unequal: bool) -> usize {
    if !unequal {
        return match current {
            None => rng.below(k),
            Some(t) => (t + 1 + rng.below(k - 1)) % k,
        };
    }
    let total: f64 = (0..k).map(|t| 1.0 / (t + 1) as f64).sum();
    let mut u = rng.next_f64() * total;
    for t in 0..k {
        u -= 1.0 / (t + 1) as f64;
        if u < 0.0 {
            return t;
        }
    }
    k - 1
}

/// `words` as sentences of 6 to 14 words: a capital first letter, a full stop at the end, and
/// a comma after one word in twelve inside a sentence ([`TopicSpec::sentences`]).
fn in_sentences(words: &[&str], pen: &mut SplitMix64) -> String {
    let mut out = String::new();
    let mut rest = words;
    while !rest.is_empty() {
        let n = (6 + pen.below(9)).min(rest.len());
        let (sentence, tail) = rest.split_at(n);
        rest = tail;
        for (i, w) in sentence.iter().enumerate() {
            if !out.is_empty() {
                out.push(' ');
            }
            if i == 0 {
                let mut chars = w.chars();
                out.extend(chars.next().map(|c| c.to_uppercase()).into_iter().flatten());
                out.push_str(chars.as_str());
            } else {
                out.push_str(w);
            }
            if i + 1 == sentence.len() {
                out.push('.');
            } else if pen.below(12) == 0 {
                out.push(',');
            }
        }
    }
    out
}

/// Each topic's marker (its name, or for made-up words its first word) and words.
fn topic_vocabulary(spec: &TopicSpec, k: usize) -> Vec<(String, Vec<String>)> {
    if !spec.made_up {
        return TOPICS
            .iter()
            .take(k)
            .map(|(name, words)| {
                let words = words.iter().map(|w| w.to_string()).collect();
                (name.to_string(), words)
            })
            .collect();
    }
    // Their own stream, so the text's stream is the same for real and made-up words.
    let mut rng = SplitMix64::new(spec.seed ^ 0x006d_6164_655f_7570);
    let per = spec.words_per_topic.clamp(4, 64);
    let mut seen: std::collections::BTreeSet<String> =
        FUNCTION_WORDS.iter().map(|w| w.to_string()).collect();
    (0..k)
        .map(|_| {
            let mut words = Vec::with_capacity(per);
            while words.len() < per {
                let w = made_up_word(&mut rng);
                if seen.insert(w.clone()) {
                    words.push(w);
                }
            }
            (words[0].clone(), words)
        })
        .collect()
}

/// A pronounceable made-up word of 2 or 3 consonant-vowel syllables.
fn made_up_word(rng: &mut SplitMix64) -> String {
    const CONSONANTS: &[u8] = b"bdfghklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    let syllables = 2 + rng.below(2);
    let mut w = String::with_capacity(2 * syllables);
    for _ in 0..syllables {
        w.push(char::from(CONSONANTS[rng.below(CONSONANTS.len())]));
        w.push(char::from(VOWELS[rng.below(VOWELS.len())]));
    }
    w
}
