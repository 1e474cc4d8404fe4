//! What single panels keep between frames: the Generate panel's request and answer, the Rules
//! panel's editor, rules in force and history, and the Compare panel's sides and views.

use crate::engine::audit::AuditLog;
use crate::engine::protocol::{
    CompareSide, CompareView, Firing, Generation, MeasuredOn, RuleErrors, RuleReport, RuleView,
    TestSet, TestSetAudit,
};

/// The Generate panel: how many tokens, the last generation, and whether one is on its way.
#[derive(Clone, Debug)]
pub struct GenerateState {
    /// Tokens to generate.
    pub tokens: usize,
    /// The last generation.
    pub last: Option<Generation>,
    /// Asked for and not arrived.
    pub pending: bool,
    /// When it was asked for (for the progress text).
    pub asked: Option<std::time::Instant>,
}

impl Default for GenerateState {
    fn default() -> Self {
        Self {
            tokens: 8,
            last: None,
            pending: false,
            asked: None,
        }
    }
}

/// Rules as the studio holds them: the editor's text, what is in force, the answer to the
/// last apply, what each rule did on the current text, the undo history and the audit log.
#[derive(Default)]
pub struct RulesState {
    /// The editor's text.
    pub editor: String,
    /// The rule file in force.
    pub applied: String,
    /// The rule file in force in its JSON form, as the worker wrote it (`None` until rules
    /// were first applied: no rules are in force then).
    pub json: Option<Result<String, String>>,
    /// Ids switched off in the list.
    pub off: Vec<String>,
    /// The rules in force, as the worker resolved them.
    pub resolved: Vec<RuleView>,
    /// Sent to the worker and not answered yet.
    pub pending: Option<(String, Vec<String>)>,
    /// The last rejection: every error, with line:column.
    pub errors: Option<RuleErrors>,
    /// What each rule did on the current text.
    pub reports: Vec<RuleReport>,
    /// Where each rule fired on the current text.
    pub firings: Vec<Firing>,
    /// What the reports and firings were measured on.
    pub reports_on: Option<MeasuredOn>,
    /// The rules do not resolve on the current model: why (the rule file is kept and checked
    /// again on the next model, but no rule is in force on this one).
    pub not_in_force: Option<RuleErrors>,
    /// States in force, for undo and redo (text, switched-off ids).
    pub history: Vec<(String, Vec<String>)>,
    /// Position in `history` of the state in force.
    pub cursor: usize,
    /// The rule selected in the list.
    pub selected: Option<String>,
    /// Every rule change, hash-chained.
    pub log: AuditLog,
    /// The test set the auditor's pass/fail is measured over.
    pub test_set: TestSet,
    /// The sentences file typed or picked for the test set.
    pub sentences_path: String,
    /// The last pass/fail over a test set.
    pub test_audit: Option<TestSetAudit>,
    /// A pass/fail over a test set was asked for and has not arrived.
    pub test_pending: bool,
}

impl RulesState {
    /// Whether the editor differs from the rules in force.
    pub fn dirty(&self) -> bool {
        self.editor != self.applied
    }
}

/// A comparison as it arrived: the capture generation and the sides it was taken for, and
/// each side's capture or error.
pub type CompareViews = (u64, [CompareSide; 2], [Result<CompareView, String>; 2]);

/// What the Compare panel shows.
pub struct CompareState {
    /// The two configurations.
    pub sides: [CompareSide; 2],
    /// Their captures (or errors), and the capture generation and sides they were taken for.
    pub views: Option<CompareViews>,
    /// What the views were measured on (the model and text; each side sets its own dial).
    pub views_on: Option<MeasuredOn>,
    /// A comparison was asked for and has not arrived.
    pub pending: bool,
    /// The layer and head shown, or `None` for the mean over heads of the layer.
    pub layer: usize,
    /// The head shown (`None`: mean over the layer's heads).
    pub head: Option<usize>,
    /// The cell under the pointer in either heatmap (query, key), drawn on both.
    pub hover: Option<(usize, usize)>,
    /// Bumped when new views arrive (textures are rebuilt when it changes).
    pub generation: u64,
    /// Where each side's heatmap was drawn last frame (hover tests, PNG export).
    pub rects: [Option<egui::Rect>; 2],
    /// The model path typed for each side.
    pub paths: [String; 2],
    /// Show side B minus side A instead of the two sides.
    pub difference: bool,
}

impl Default for CompareState {
    fn default() -> Self {
        Self {
            sides: crate::studio::session::default_compare(),
            views: None,
            views_on: None,
            pending: false,
            layer: 0,
            head: None,
            hover: None,
            generation: 0,
            rects: [None, None],
            paths: [String::new(), String::new()],
            difference: false,
        }
    }
}

/// The Tour (see `studio::tour`): whether it is open and at which step, and whether it has
/// been seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TourState {
    /// The step shown (`None`: closed).
    pub step: Option<usize>,
    /// The Tour was closed or finished once (kept in eframe storage: not shown again at start).
    pub seen: bool,
}

impl TourState {
    /// Close it and remember it was seen.
    pub fn close(&mut self) {
        self.step = None;
        self.seen = true;
    }
}

/// The Training panel's plots (one can be enlarged into a window of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainingPlot {
    /// Loss and Ω per step.
    Loss,
    /// Held-out perplexity.
    Perplexity,
    /// Held-out entropy and PF_mass.
    HeldOut,
}

impl TrainingPlot {
    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Loss => "loss and Ω",
            Self::Perplexity => "held-out perplexity",
            Self::HeldOut => "held-out entropy and PF_mass",
        }
    }

    /// The plot's id in the side panel.
    pub fn id(self) -> &'static str {
        match self {
            Self::Loss => "loss_curve",
            Self::Perplexity => "live_perplexity",
            Self::HeldOut => "live_curve",
        }
    }
}
