//! The central area's views (tabs), as the layout and session files record them.

/// The central area's views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Tab {
    /// Heatmaps.
    #[default]
    Attention,
    /// Measurements against the derived bounds.
    Theory,
    /// Blocks, anchors and anchor-key coherence.
    Blocks,
    /// Two configurations side by side.
    Compare,
    /// The rule editor.
    Rules,
    /// The rule-to-block mapping and the audit log.
    Audit,
    /// A pool of specialists and its routing.
    Specialists,
    /// Block recruitment: the decisions in bits and DL over training.
    Recruitment,
    /// A few generated tokens with their next-token distributions under the dial.
    Generate,
}
