//! A journey's life: a draft is edited and published (each publication a new, immutable
//! version), paused and resumed, and archived for good.

use serde::{Deserialize, Serialize};

/// Where a journey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JourneyState {
    /// Never published: nobody enters.
    Draft,
    /// People enter its live version when triggered; instances run.
    Published,
    /// Nobody enters and instances wait where they are (their timers hold) until resumed.
    Paused,
    /// Over: nobody enters, running instances end; kept for its history.
    Archived,
}

impl JourneyState {
    pub fn as_str(self) -> &'static str {
        match self {
            JourneyState::Draft => "draft",
            JourneyState::Published => "published",
            JourneyState::Paused => "paused",
            JourneyState::Archived => "archived",
        }
    }

    pub fn parse(text: &str) -> Option<JourneyState> {
        [
            JourneyState::Draft,
            JourneyState::Published,
            JourneyState::Paused,
            JourneyState::Archived,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What a person can do to a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleAction {
    /// Save the draft (the definition being edited).
    Edit,
    /// Make the draft the live version.
    Publish,
    Pause,
    Resume,
    Archive,
}

impl LifecycleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleAction::Edit => "edit",
            LifecycleAction::Publish => "publish",
            LifecycleAction::Pause => "pause",
            LifecycleAction::Resume => "resume",
            LifecycleAction::Archive => "archive",
        }
    }
}

/// Why an action cannot be done in a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {} journey cannot be {}", .state.as_str(), past(*.action))]
pub struct LifecycleError {
    pub state: JourneyState,
    pub action: LifecycleAction,
}

fn past(action: LifecycleAction) -> &'static str {
    match action {
        LifecycleAction::Edit => "edited",
        LifecycleAction::Publish => "published",
        LifecycleAction::Pause => "paused",
        LifecycleAction::Resume => "resumed",
        LifecycleAction::Archive => "archived",
    }
}

/// The state after `action` in `state`. Publishing again while published or paused makes
/// a new version live (and a paused journey stays paused); an archived journey is done.
pub fn transition(
    state: JourneyState,
    action: LifecycleAction,
) -> Result<JourneyState, LifecycleError> {
    use JourneyState::*;
    use LifecycleAction::*;
    let next = match (state, action) {
        (Archived, _) => None,
        (state, Edit) => Some(state),
        (Draft | Published, Publish) => Some(Published),
        (Paused, Publish) => Some(Paused),
        (Published, Pause) => Some(Paused),
        (Paused, Resume) => Some(Published),
        (_, Archive) => Some(Archived),
        _ => None,
    };
    next.ok_or(LifecycleError { state, action })
}
