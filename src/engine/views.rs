//! The plain views of [`crate::engine::protocol`] built from the engine's working types: a
//! resolved rule (which carries its syntax tree) as a [`RuleView`], a recruiter as a
//! [`RecruitView`], and a pool folder as a [`PoolSummary`]. The worker and the command line
//! build them here, so the faces never hold the working types themselves.

use std::path::Path;

use crate::engine::protocol::{PoolManifest, PoolSummary, RecruitView, RuleView, RulesInForce};
use crate::engine::specialists::{read_manifest, split_documents, Manifest};
use crate::rules::ast::RuleSet;
use crate::rules::check::ResolvedRule;
use crate::rules::print::print_scope;
use crate::train::recruit::Recruiter;

impl From<&ResolvedRule> for RuleView {
    fn from(r: &ResolvedRule) -> Self {
        Self {
            id: r.id.clone(),
            description: r.description.clone(),
            enabled: r.enabled,
            text: r.text.clone(),
            trigger_label: r.trigger_label.clone(),
            target_label: r.target_label.clone(),
            layers: print_scope(&r.layers),
            heads: print_scope(&r.heads),
        }
    }
}

/// The views of a resolved rule list.
pub fn rule_views(rules: &[ResolvedRule]) -> Vec<RuleView> {
    rules.iter().map(RuleView::from).collect()
}

/// The rules in force: the resolved list and the file they came from, in its JSON form.
pub fn rules_in_force(set: &RuleSet, rules: &[ResolvedRule]) -> RulesInForce {
    RulesInForce {
        rules: rule_views(rules),
        json: set.to_json().map_err(|e| e.to_string()),
    }
}

impl From<&Recruiter> for RecruitView {
    fn from(r: &Recruiter) -> Self {
        Self {
            config: r.config.clone(),
            log: r.log.clone(),
            rounds: r.rounds.clone(),
            stopped: r.stopped.clone(),
            renamed: r.renamed.clone(),
            accepted: r.accepted,
            next_due: r.next_due,
            cost_ms: r.cost_ms(),
            json: serde_json::to_vec_pretty(r).map_err(|e| e.to_string()),
        }
    }
}

impl From<Manifest> for PoolManifest {
    fn from(m: Manifest) -> Self {
        Self {
            specialists: m.specialists,
            routing: m.routing,
            log: m.log,
            base_model: m.base_model.map(|b| {
                format!(
                    "{} ({}, SHA-256 {}…)",
                    b.path.display(),
                    b.arch,
                    b.sha256.get(..12).unwrap_or(&b.sha256)
                )
            }),
        }
    }
}

/// Read a pool folder for display: its manifest, and the documents' texts when
/// `documents.txt` lies beside it.
pub fn read_pool(dir: &Path) -> anyhow::Result<PoolSummary> {
    let manifest = read_manifest(dir)?;
    let texts = crate::files::read_text(
        &dir.join("documents.txt"),
        crate::files::MAX_CORPUS_BYTES,
        "a pool's documents",
    )
    .map(|t| split_documents(&t, None))
    .unwrap_or_default();
    Ok(PoolSummary {
        dir: dir.to_path_buf(),
        manifest: manifest.into(),
        texts,
    })
}

impl Default for RulesInForce {
    /// No rules: an empty list, and the JSON form of an empty rule file.
    fn default() -> Self {
        rules_in_force(&RuleSet::default(), &[])
    }
}
