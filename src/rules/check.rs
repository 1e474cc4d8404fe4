//! The symbolic checker: rules resolved against a model's blocks and vocabulary, then, per
//! sequence, where each rule fires and which keys it targets. It runs outside the network.

use serde::{Deserialize, Serialize};

use crate::data::tokenizer::Tokenizer;
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::rules::ast::{Condition, Name, Pos, Rule, RuleSet, Scope, Strength, Target};
use crate::rules::parse::{ErrorSink, RuleError, RuleErrors};
use crate::rules::print::{print_positions, print_rule};

/// A block a rule refers to: one of the model's, or one a rule declares by its tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BlockRef {
    /// Index into the model's block map.
    Map(usize),
    /// A declared block: its name and token ids.
    Declared(String, Vec<u32>),
}

impl BlockRef {
    /// Whether the key at position `j` (token `id`) belongs to this block.
    pub fn holds(&self, masks: &SequenceMasks, j: usize, id: u32) -> bool {
        match self {
            BlockRef::Map(b) => masks.key_blocks.get(j) == Some(b),
            BlockRef::Declared(_, ids) => ids.contains(&id),
        }
    }
}

/// A resolved condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Cond {
    /// The query is this token.
    QueryToken(u32),
    /// The query's token is in this block.
    QueryBlock(BlockRef),
    /// This token occurs earlier.
    EarlierToken(u32),
    /// A token of this block occurs earlier.
    EarlierBlock(BlockRef),
    /// The query's position is in this inclusive range.
    Position(usize, usize),
}

/// A resolved target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Aim {
    /// Every key of the block before the query.
    Block(BlockRef),
    /// The nearest key of the block before the query.
    Previous(BlockRef),
    /// Every earlier occurrence of these tokens (a token, or a block's anchors).
    Tokens(Vec<u32>),
    /// These positions (those at or before the query).
    Positions(Vec<usize>),
}

/// A rule ready to fire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedRule {
    /// Its id.
    pub id: String,
    /// Its description.
    pub description: String,
    /// Whether it is switched on.
    pub enabled: bool,
    /// The rule's text (printed canonically), for the audit log and reports.
    pub text: String,
    /// Conditions (all must hold).
    pub when: Vec<Cond>,
    /// Target.
    pub aim: Aim,
    /// The model block the dial should follow where the rule fires (block targets).
    pub target_block: Option<usize>,
    /// Name of the targeted block or token, for display.
    pub target_label: String,
    /// Name of the trigger's block, for the audit table ("-" when the trigger names none).
    pub trigger_label: String,
    /// Layers.
    pub layers: Scope,
    /// Heads.
    pub heads: Scope,
    /// Strength.
    pub strength: Strength,
    /// Token ids forbidden at fired positions.
    pub forbid: Vec<u32>,
    /// Token ids boosted at fired positions, and by how much.
    pub boost: Option<(Vec<u32>, f64)>,
    /// The block this rule declares (`new block B = ...`): its name and token ids. Block
    /// recruitment tries it as a candidate before clustering (SPEC §9 step 2).
    pub declares: Option<(String, Vec<u32>)>,
}

/// Where one rule fired: the query and the keys it must point to (earlier keys; explicit
/// positions may include the query itself). Empty when no target is visible yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firing {
    /// Index of the rule in the resolved list.
    pub rule: usize,
    /// Query position.
    pub query: usize,
    /// Target keys (ascending, all ≤ query).
    pub targets: Vec<usize>,
}

fn err(pos: Pos, message: String) -> RuleError {
    RuleError { pos, message }
}

/// Resolve a rule set against a model's blocks and tokenizer. `anchors` gives the anchor
/// tokens of each block (by block name), when known. Unknown blocks and tokens are errors,
/// unless a rule of the set declares the block; every error is returned.
pub fn resolve(
    set: &RuleSet,
    blocks: &BlockMap,
    tokenizer: &dyn Tokenizer,
    anchors: &[(String, Vec<String>)],
) -> Result<Vec<ResolvedRule>, RuleErrors> {
    let mut res = Resolver {
        blocks,
        tokenizer,
        anchors,
        declared: Vec::new(),
        errors: ErrorSink::default(),
    };
    // Declared blocks first, so any rule may use them.
    for r in &set.rules {
        if let Some((name, toks)) = &r.new_block {
            res.declare(name, toks);
        }
    }
    let out: Vec<ResolvedRule> = set.rules.iter().filter_map(|r| res.rule(r)).collect();
    match res.errors.finish() {
        None => Ok(out),
        Some(e) => Err(e),
    }
}

/// What resolving reads, the blocks the rules declare, and the errors found so far.
struct Resolver<'a> {
    blocks: &'a BlockMap,
    tokenizer: &'a dyn Tokenizer,
    anchors: &'a [(String, Vec<String>)],
    declared: Vec<(String, Vec<u32>)>,
    errors: ErrorSink,
}

impl Resolver<'_> {
    /// The id of a token named in a rule, or an error.
    fn token(&mut self, t: &Name) -> Option<u32> {
        let id = self.tokenizer.token_id(&t.text);
        if id.is_none() {
            self.errors.push(err(
                t.pos,
                format!(
                    "unknown token {:?}: it is not in this model's vocabulary",
                    t.text
                ),
            ));
        }
        id
    }

    fn tokens(&mut self, ts: &[Name]) -> Vec<u32> {
        ts.iter().filter_map(|t| self.token(t)).collect()
    }

    /// The index of a block of the model's map.
    fn map_block(&self, n: &Name) -> Option<usize> {
        self.blocks.names.iter().position(|x| x == &n.text)
    }

    /// Record block `name` = `toks` declared by a rule (`new block`).
    fn declare(&mut self, name: &Name, toks: &[Name]) {
        if let Some(b) = self.map_block(name) {
            // Already in the map with exactly these tokens (recruitment took the
            // declaration): the rules refer to the map's block.
            let mut ids: Vec<u32> = toks
                .iter()
                .filter_map(|t| self.tokenizer.token_id(&t.text))
                .collect();
            ids.sort_unstable();
            let mut have: Vec<u32> = (0u32..)
                .zip(&self.blocks.token_block)
                .filter(|&(_, &k)| k == b)
                .map(|(id, _)| id)
                .collect();
            have.sort_unstable();
            if ids == have && self.blocks.kind == crate::model::blocks::BlockKind::Semantic {
                return;
            }
            let msg = format!(
                "block {} already exists in this model; pick a new name",
                name.text
            );
            self.errors.push(err(name.pos, msg));
            return;
        }
        if self.declared.iter().any(|(n, _)| n == &name.text) {
            let msg = format!("block {} is declared by two rules", name.text);
            self.errors.push(err(name.pos, msg));
            return;
        }
        let ids = self.tokens(toks);
        self.declared.push((name.text.clone(), ids));
    }

    /// A block of the model's map or one a rule declares, or an error.
    fn block_ref(&mut self, n: &Name) -> Option<BlockRef> {
        if let Some(b) = self.map_block(n) {
            return Some(BlockRef::Map(b));
        }
        if let Some((name, ids)) = self.declared.iter().find(|(x, _)| x == &n.text) {
            return Some(BlockRef::Declared(name.clone(), ids.clone()));
        }
        // The names as a rule writes them (quoted: a name with a space needs its quotes), in
        // the command line and the studio alike (it said "see the Blocks tab" in both).
        // ("unassigned" is no target: it is left out, as the suggestions leave it out.)
        let names = &self.blocks.names;
        let named: Vec<&String> = names.iter().filter(|b| *b != "unassigned").collect();
        let listed: Vec<String> = named.iter().take(6).map(|b| format!("{b:?}")).collect();
        let more = if named.len() > 6 { ", …" } else { "" };
        self.errors.push(err(
            n.pos,
            format!(
                "unknown block {:?}; {}: {}{more}), or declare it with `new block`",
                n.text,
                crate::rules::suggest::did_you_mean(&n.text, names, "blocks"),
                listed.join(", ")
            ),
        ));
        None
    }

    /// The conditions resolved, and the trigger's label for the audit table.
    fn conditions(&mut self, when: &[Condition]) -> (Vec<Cond>, String) {
        let mut out = Vec::new();
        let mut trigger_label = "-".to_string();
        for c in when {
            let resolved = match c {
                Condition::QueryToken { token: t } => self.token(t).map(Cond::QueryToken),
                Condition::QueryBlock { block } => {
                    trigger_label = block.text.clone();
                    self.block_ref(block).map(Cond::QueryBlock)
                }
                Condition::EarlierToken { token: t } => self.token(t).map(Cond::EarlierToken),
                Condition::EarlierBlock { block } => {
                    if trigger_label == "-" {
                        trigger_label = format!("(earlier) {}", block.text);
                    }
                    self.block_ref(block).map(Cond::EarlierBlock)
                }
                Condition::Position { from, to } => Some(Cond::Position(*from, *to)),
            };
            out.extend(resolved);
        }
        (out, trigger_label)
    }

    /// The target resolved, the model block the dial should follow, and its label.
    fn target(&mut self, target: &Target) -> (Option<Aim>, Option<usize>, String) {
        let map_index = |b: &Option<BlockRef>| match b {
            Some(BlockRef::Map(k)) => Some(*k),
            _ => None,
        };
        match target {
            Target::Block { block } => {
                let b = self.block_ref(block);
                let tb = map_index(&b);
                (b.map(Aim::Block), tb, block.text.clone())
            }
            Target::PreviousBlock { block } => {
                let b = self.block_ref(block);
                let tb = map_index(&b);
                (b.map(Aim::Previous), tb, format!("previous {}", block.text))
            }
            Target::Token { token: t } => (
                self.token(t).map(|id| Aim::Tokens(vec![id])),
                None,
                format!("token {:?}", t.text),
            ),
            Target::Anchor { block } => (
                self.anchor_aim(block),
                self.map_block(block),
                format!("anchors of {}", block.text),
            ),
            Target::Positions { positions } => (
                Some(Aim::Positions(positions.clone())),
                None,
                format!("positions {}", print_positions(positions)),
            ),
        }
    }

    /// The anchor tokens of `block`, or an error when it has none (or is unknown).
    fn anchor_aim(&mut self, block: &Name) -> Option<Aim> {
        let b = self.block_ref(block);
        let list = self.anchors.iter().find(|(n, _)| n == &block.text);
        match (b, list) {
            (Some(_), Some((_, toks))) if !toks.is_empty() => Some(Aim::Tokens(
                toks.iter()
                    .filter_map(|t| self.tokenizer.token_id(t))
                    .collect(),
            )),
            (Some(_), _) => {
                self.errors.push(err(
                    block.pos,
                    format!(
                        "block {} has no anchor tokens in this model (anchors are measured when \
                         a model is trained; target the block instead)",
                        block.text
                    ),
                ));
                None
            }
            (None, _) => None,
        }
    }

    /// One rule resolved; None when it has an error (recorded).
    fn rule(&mut self, r: &Rule) -> Option<ResolvedRule> {
        let before = self.errors.count();
        let (when, trigger_label) = self.conditions(&r.when);
        let (aim, target_block, target_label) = self.target(&r.target);
        let forbid = self.tokens(&r.forbid);
        let boost = r.boost.as_ref().map(|(toks, by)| (self.tokens(toks), *by));
        if self.errors.count() != before {
            return None;
        }
        Some(ResolvedRule {
            id: r.id.text.clone(),
            description: r.description.clone(),
            enabled: r.enabled,
            text: print_rule(r),
            when,
            aim: aim?,
            target_block,
            target_label,
            trigger_label,
            layers: r.layers.clone(),
            heads: r.heads.clone(),
            strength: r.strength,
            forbid,
            boost,
            declares: r
                .new_block
                .as_ref()
                .and_then(|(name, _)| self.declared.iter().find(|(n, _)| n == &name.text).cloned()),
        })
    }
}

/// Where each enabled rule fires on `ids`, and its targets.
pub fn fire(rules: &[ResolvedRule], ids: &[u32], masks: &SequenceMasks) -> Vec<Firing> {
    let mut out = Vec::new();
    for (k, r) in rules.iter().enumerate().filter(|(_, r)| r.enabled) {
        for (i, &qid) in ids.iter().enumerate() {
            let holds = r.when.iter().all(|c| match c {
                Cond::QueryToken(t) => qid == *t,
                Cond::QueryBlock(b) => b.holds(masks, i, qid),
                Cond::EarlierToken(t) => ids.get(..i).is_some_and(|e| e.contains(t)),
                Cond::EarlierBlock(b) => {
                    (0..i).any(|j| ids.get(j).is_some_and(|&id| b.holds(masks, j, id)))
                }
                Cond::Position(a, z) => *a <= i && i <= *z,
            });
            if !holds {
                continue;
            }
            let targets: Vec<usize> = match &r.aim {
                Aim::Block(b) => (0..i)
                    .filter(|&j| ids.get(j).is_some_and(|&id| b.holds(masks, j, id)))
                    .collect(),
                Aim::Previous(b) => (0..i)
                    .rev()
                    .find(|&j| ids.get(j).is_some_and(|&id| b.holds(masks, j, id)))
                    .into_iter()
                    .collect(),
                Aim::Tokens(ts) => (0..i)
                    .filter(|&j| ids.get(j).is_some_and(|id| ts.contains(id)))
                    .collect(),
                Aim::Positions(ps) => {
                    let mut v: Vec<usize> = ps.iter().copied().filter(|&p| p <= i).collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                }
            };
            out.push(Firing {
                rule: k,
                query: i,
                targets,
            });
        }
    }
    out
}
