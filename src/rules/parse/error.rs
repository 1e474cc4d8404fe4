//! The errors of a rule file: each with its line:column and what was expected, all of them
//! reported at once.

use crate::rules::ast::Pos;

/// One error in a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// Where.
    pub pos: Pos,
    /// What is wrong, and what was expected.
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

/// Every error of a rule file; the file is rejected whole when there is any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleErrors {
    /// The errors in file order.
    pub errors: Vec<RuleError>,
}

impl std::fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.errors.len();
        write!(f, "{n} error{}", if n == 1 { "" } else { "s" })?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

impl RuleErrors {
    /// The errors, each prefixed with `file:` (for command-line output).
    pub fn with_file(&self, file: &str) -> String {
        self.errors
            .iter()
            .map(|e| format!("{file}:{e}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
