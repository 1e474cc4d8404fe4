//! Rule files as jobs: read, parse and resolve one (every error as FILE:LINE:COL), check one
//! against a checkpoint, and measure what each rule does over many windows and dial settings.

use std::path::Path;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::data::tokenizer::Tokenizer;
use crate::engine::jobs::model::{checkpoint_anchors, open_checkpoint};
use crate::files::{read_text, MAX_DOCUMENT_BYTES};
use crate::model::backend::{AttentionModel, ModelDims};
use crate::model::blocks::BlockMap;
use crate::model::dial::DialSetting;
use crate::rules::ast::Strength;
use crate::rules::check::ResolvedRule;
use crate::rules::inject::capture_with_rules;
use crate::rules::{check_shape, parse_rules, resolve, ModelShape};

/// The text of a rule file: a regular UTF-8 file of at most
/// [`MAX_DOCUMENT_BYTES`](crate::files::MAX_DOCUMENT_BYTES), without a byte-order mark; the
/// error names the file and the problem once.
pub fn read_rules_file(file: &Path) -> Result<String> {
    Ok(read_text(file, MAX_DOCUMENT_BYTES, "a rules file")?)
}

/// Read, parse and resolve a rule file for a model of `dims` (its layers, heads and positions
/// must hold every rule's scope); every error is listed as FILE:LINE:COL: message.
pub fn load_rules(
    file: &Path,
    blocks: &BlockMap,
    tok: &dyn Tokenizer,
    anchors: &[(String, Vec<String>)],
    dims: &ModelDims,
) -> Result<Vec<ResolvedRule>> {
    let text = read_rules_file(file)?;
    let name = file.display().to_string();
    let set = parse_rules(&text).map_err(|e| anyhow::anyhow!("{}", e.with_file(&name)))?;
    check_shape(&set, shape_of(dims)).map_err(|e| anyhow::anyhow!("{}", e.with_file(&name)))?;
    resolve(&set, blocks, tok, anchors).map_err(|e| anyhow::anyhow!("{}", e.with_file(&name)))
}

/// The sizes a rule's scope is checked against, of a model of `dims`.
pub fn shape_of(dims: &ModelDims) -> ModelShape {
    ModelShape {
        layers: dims.layers,
        heads: dims.heads,
        positions: dims.max_len,
        causal: dims.causal,
    }
}

/// One rule of a checked file.
#[derive(Clone, Debug)]
pub struct CheckedRule {
    /// Its id.
    pub id: String,
    /// Switched on.
    pub enabled: bool,
    /// Its description.
    pub description: String,
}

/// Check a rule file: its syntax, and (with `checkpoint`) every block and token it names.
/// The error lists each problem with its file, line and column.
pub fn check_rules(file: &Path, checkpoint: Option<&Path>) -> Result<Vec<CheckedRule>> {
    let text = read_rules_file(file)?;
    let name = file.display().to_string();
    let set = match parse_rules(&text) {
        Ok(s) => s,
        Err(e) => bail!(
            "{}\n{name} rejected whole ({} error(s))",
            e.with_file(&name),
            e.total()
        ),
    };
    if let Some(dir) = checkpoint {
        let (ck, tok) = open_checkpoint(dir)?;
        let fits = check_shape(&set, shape_of(&ck.model.dims()))
            .and_then(|()| resolve(&set, &ck.blocks, tok.as_ref(), &checkpoint_anchors(&ck)));
        if let Err(e) = fits {
            bail!(
                "{}\n{name} does not fit {} ({} error(s))",
                e.with_file(&name),
                dir.display(),
                e.total()
            );
        }
    }
    Ok(set
        .rules
        .iter()
        .map(|r| CheckedRule {
            id: r.id.text.clone(),
            enabled: r.enabled,
            description: r.description.clone(),
        })
        .collect())
}

/// What each rule did over the held-out windows at one λ.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleEval {
    /// λ_inf.
    pub lambda: f64,
    /// Rule id.
    pub id: String,
    /// Rows where it fired with a target.
    pub fired: usize,
    /// Windows (sentences) in which it fired with a target.
    pub windows_fired: usize,
    /// Mean PF_mass over those rows and the layers and heads in scope.
    pub pf_mass: Option<f64>,
    /// Mean PF_top1 likewise.
    pub pf_top1: Option<f64>,
    /// The rule's fidelity target, if any.
    pub target: Option<f64>,
    /// Fraction of windows where it fired in which it met its target.
    pub pass_rate: Option<f64>,
}

/// One rule's running sums over the windows of one dial setting.
#[derive(Clone, Copy, Default)]
struct Tally {
    /// Rows fired with a target.
    rows: usize,
    /// Σ PF_mass · rows.
    mass: f64,
    /// Σ PF_top1 · rows.
    top1: f64,
    /// Windows where it fired.
    windows: usize,
    /// Windows where it fired and passed.
    passed: usize,
}

/// Each rule's firings and PF over `windows`, for each dial setting, on any model.
pub fn rule_evals_on(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    rules: &[ResolvedRule],
    windows: &[Vec<u32>],
    dials: &[DialSetting],
) -> Result<Vec<RuleEval>> {
    rule_evals_watched(model, blocks, rules, windows, dials, &mut |_| true)
}

/// [`rule_evals_on`], telling `watch` how many windows are done before each one; it stops
/// (with an error) when `watch` returns false.
pub fn rule_evals_watched(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    rules: &[ResolvedRule],
    windows: &[Vec<u32>],
    dials: &[DialSetting],
    watch: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<RuleEval>> {
    let mut out = Vec::new();
    let mut done = 0;
    for dial in dials {
        let mut acc = vec![Tally::default(); rules.len()];
        for ids in windows {
            if !watch(done) {
                bail!("cancelled");
            }
            done += 1;
            let rc = capture_with_rules(model, blocks, ids, dial, rules)?;
            for (k, rep) in rc.reports.iter().enumerate() {
                let rows = rep.fired.len() - rep.without_target.len();
                let Some(a) = acc.get_mut(k) else { continue };
                if rows == 0 {
                    continue;
                }
                let scoped: Vec<_> = rep.heads.iter().filter(|h| h.in_scope).collect();
                let n = scoped.len().max(1) as f64;
                a.rows += rows;
                a.mass += rows as f64 * scoped.iter().map(|h| h.pf_mass).sum::<f64>() / n;
                a.top1 += rows as f64 * scoped.iter().map(|h| h.pf_top1).sum::<f64>() / n;
                a.windows += 1;
                if rep.pass == Some(true) {
                    a.passed += 1;
                }
            }
        }
        let lam = dial.params.lambda;
        out.extend(rules.iter().zip(&acc).map(|(r, a)| rule_eval(lam, r, a)));
    }
    Ok(out)
}

fn rule_eval(lambda: f64, r: &ResolvedRule, a: &Tally) -> RuleEval {
    let target = match r.strength {
        Strength::Fidelity { target } => Some(target),
        Strength::Bias { .. } => None,
    };
    RuleEval {
        lambda,
        id: r.id.clone(),
        fired: a.rows,
        windows_fired: a.windows,
        pf_mass: (a.rows > 0).then(|| a.mass / a.rows as f64),
        pf_top1: (a.rows > 0).then(|| a.top1 / a.rows as f64),
        target,
        pass_rate: (target.is_some() && a.windows > 0).then(|| a.passed as f64 / a.windows as f64),
    }
}
