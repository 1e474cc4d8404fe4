//! Text the studio starts with. It lives below the app, the panels and the state so that
//! each of them can compare against it without importing the others.

/// The sample sentence captured at start-up.
pub const SAMPLE_TEXT: &str = "To be, or not to be, that is the question:";

/// Longest text the studio holds, in characters: a text box draws its whole line every frame,
/// and a session with a text of 6 million characters asked the GPU for a 384 MB vertex buffer
/// and closed the window. Long texts (100,000 characters, about 8,192 tokens) fit.
pub const MAX_TEXT_CHARS: usize = 200_000;
