//! The errors of a rule file: each with its line:column and what was expected, all of them
//! reported at once — up to a point. A file of garbage has an error every few bytes, so at
//! most [`MAX_KEPT_ERRORS`] are kept (the rest only counted, so memory stays bounded) and at
//! most [`MAX_LISTED_ERRORS`] are printed, followed by how many more there were.

use crate::rules::ast::Pos;

/// Most errors kept in memory; further ones are only counted.
pub const MAX_KEPT_ERRORS: usize = 1000;
/// Most errors listed in a message; the rest are summed up as "… and N more errors".
pub const MAX_LISTED_ERRORS: usize = 50;

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
    /// The errors in file order (at most [`MAX_KEPT_ERRORS`] of them).
    pub errors: Vec<RuleError>,
    /// Errors found beyond those kept, counted only.
    pub omitted: usize,
}

impl std::fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.total();
        write!(f, "{n} error{}", if n == 1 { "" } else { "s" })?;
        for e in self.errors.iter().take(MAX_LISTED_ERRORS) {
            write!(f, "\n  {e}")?;
        }
        if let Some(more) = self.more_line() {
            write!(f, "\n  {more}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

impl RuleErrors {
    /// All the errors found, those kept and those only counted.
    pub fn total(&self) -> usize {
        self.errors.len() + self.omitted
    }

    /// The errors, each prefixed with `file:` (for command-line output); at most
    /// [`MAX_LISTED_ERRORS`], then a line saying how many more there are.
    pub fn with_file(&self, file: &str) -> String {
        let mut lines: Vec<String> = self
            .errors
            .iter()
            .take(MAX_LISTED_ERRORS)
            .map(|e| format!("{file}:{e}"))
            .collect();
        lines.extend(self.more_line().map(|m| format!("{file}: {m}")));
        lines.join("\n")
    }

    /// "… and N more errors" when not all are listed.
    fn more_line(&self) -> Option<String> {
        let more = self.total().saturating_sub(MAX_LISTED_ERRORS);
        (more > 0).then(|| {
            format!(
                "… and {more} more error{}",
                if more == 1 { "" } else { "s" }
            )
        })
    }
}

/// Where the parser and the resolver record errors: keeps the first [`MAX_KEPT_ERRORS`] and
/// counts the rest.
#[derive(Debug, Default)]
pub(crate) struct ErrorSink {
    kept: Vec<RuleError>,
    omitted: usize,
}

impl ErrorSink {
    /// Record one error.
    pub(crate) fn push(&mut self, e: RuleError) {
        if self.kept.len() < MAX_KEPT_ERRORS {
            self.kept.push(e);
        } else {
            self.omitted += 1;
        }
    }

    /// Errors recorded so far, kept or counted.
    pub(crate) fn count(&self) -> usize {
        self.kept.len() + self.omitted
    }

    /// The errors in file order (duplicates dropped), or `None` when there are none.
    pub(crate) fn finish(mut self) -> Option<RuleErrors> {
        if self.count() == 0 {
            return None;
        }
        self.kept.sort_by_key(|e| e.pos);
        self.kept.dedup();
        Some(RuleErrors {
            errors: self.kept,
            omitted: self.omitted,
        })
    }
}
