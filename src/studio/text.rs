//! Text the studio starts with. It lives below the app, the panels and the state so that
//! each of them can compare against it without importing the others.

/// The sample sentence captured at start-up.
pub const SAMPLE_TEXT: &str = "To be, or not to be, that is the question:";
