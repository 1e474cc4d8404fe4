//! The rules as data: what the parser builds, the printer writes and the JSON form holds.
//!
//! Names keep the line and column where they were written, for errors found later (an unknown
//! block, say); positions take no part in equality and are not exported to JSON.

use serde::{Deserialize, Serialize};

/// A place in a rule file: 1-based line and column (0:0 when unknown, e.g. from JSON).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A name (block, token or rule id) and where it was written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name {
    /// The text.
    pub text: String,
    /// Where it was written.
    #[serde(skip)]
    pub pos: Pos,
}

impl Name {
    /// A name with no position.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            pos: Pos::default(),
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Name {}

/// One condition of a trigger; a rule fires on a query when all of its conditions hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// The query's token is this token.
    QueryToken {
        /// The token.
        token: Name,
    },
    /// The query's token belongs to this block.
    QueryBlock {
        /// The block.
        block: Name,
    },
    /// This token occurs at an earlier position.
    EarlierToken {
        /// The token.
        token: Name,
    },
    /// A token of this block occurs at an earlier position.
    EarlierBlock {
        /// The block.
        block: Name,
    },
    /// The query's position lies in this inclusive range.
    Position {
        /// First position.
        from: usize,
        /// Last position (inclusive).
        to: usize,
    },
}

/// The keys a triggered query must point to (only keys at or before the query count).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// Every earlier key of this block.
    Block {
        /// The block.
        block: Name,
    },
    /// Every earlier occurrence of this token.
    Token {
        /// The token.
        token: Name,
    },
    /// The nearest earlier key of this block.
    PreviousBlock {
        /// The block.
        block: Name,
    },
    /// Earlier occurrences of the anchor tokens of this block (the tokens most specific to it,
    /// measured on the training corpus).
    Anchor {
        /// The block.
        block: Name,
    },
    /// Explicit positions.
    Positions {
        /// The positions.
        positions: Vec<usize>,
    },
}

/// Layers or heads a rule acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// All of them.
    #[default]
    All,
    /// These inclusive ranges.
    Ranges(Vec<(usize, usize)>),
}

impl Scope {
    /// Whether index `x` is in scope.
    pub fn contains(&self, x: usize) -> bool {
        match self {
            Scope::All => true,
            Scope::Ranges(r) => r.iter().any(|&(a, b)| a <= x && x <= b),
        }
    }

    /// The indices in scope below `n`.
    pub fn indices(&self, n: usize) -> Vec<usize> {
        (0..n).filter(|&x| self.contains(x)).collect()
    }
}

/// How strongly a rule pulls.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Strength {
    /// A logit bias ρ ≥ 0 added to the targets' scores.
    Bias {
        /// ρ.
        rho: f64,
    },
    /// A pointer-fidelity target 1 − δ: ρ is solved per row from bound 8.3.
    Fidelity {
        /// The target PF_mass, in (0, 1).
        target: f64,
    },
}

/// A rule (SPEC §6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique id within its file.
    pub id: Name,
    /// What it is for, in words.
    pub description: String,
    /// Off rules are kept but not applied.
    pub enabled: bool,
    /// All must hold for the rule to fire on a query.
    pub when: Vec<Condition>,
    /// What the query must point to.
    pub target: Target,
    /// Layers it acts on.
    pub layers: Scope,
    /// Heads it acts on.
    pub heads: Scope,
    /// Its strength.
    pub strength: Strength,
    /// Tokens whose next-token logits are set to −∞ where it fires.
    pub forbid: Vec<Name>,
    /// Tokens whose next-token logits are raised where it fires, and by how much.
    pub boost: Option<(Vec<Name>, f64)>,
    /// A block the rule declares, with its tokens (asks recruitment for it).
    pub new_block: Option<(Name, Vec<Name>)>,
    /// Where its clauses were written, for errors found after parsing (not in JSON).
    #[serde(skip)]
    pub at: ClausePos,
}

/// Where a rule's `when`, `target`, `layers` and `heads` clauses were written (0:0 when unknown
/// or absent). Like [`Name`]'s position it takes no part in equality.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClausePos {
    /// The `when` clause.
    pub when: Pos,
    /// The `target` clause.
    pub target: Pos,
    /// The `layers` clause.
    pub layers: Pos,
    /// The `heads` clause.
    pub heads: Pos,
}

impl PartialEq for ClausePos {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A rule file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct RuleSet {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}
