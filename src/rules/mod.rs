//! Rules (SPEC §6): a readable text language for "this query must point at that block", its
//! parser and printer, a JSON form, the symbolic checker that finds where rules fire, and the
//! injection of their biases into a forward pass.

pub mod ast;
pub mod check;
pub mod fidelity;
pub mod inject;
pub mod keywords;
pub mod parse;
pub mod print;
pub mod shape;
pub mod suggest;

pub use ast::{Rule, RuleSet};
pub use check::{fire, resolve, Firing, ResolvedRule};
pub use parse::{parse_rules, RuleError, RuleErrors};
pub use print::{print_rule, print_rules};
pub use shape::{check_shape, ModelShape};

impl RuleSet {
    /// The JSON form (for export and reports).
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// Read the JSON form. The rules must also be writable as text (ids are identifiers), so
    /// they are printed and parsed back, and any error is reported against that text.
    pub fn from_json(json: &str) -> Result<RuleSet, String> {
        let set: RuleSet = serde_json::from_str(json).map_err(|e| format!("rules JSON: {e}"))?;
        let text = print_rules(&set);
        match parse_rules(&text) {
            Ok(back) if back == set => Ok(back),
            Ok(_) => Err("rules JSON: the rules do not survive printing as text".into()),
            Err(e) => Err(format!("rules JSON, printed as text: {e}")),
        }
    }
}
