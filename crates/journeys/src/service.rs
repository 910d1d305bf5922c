//! Saving, checking and publishing journeys: the one way the API, the console and the CLI
//! do it. A draft may be saved with problems (it is work in progress); publishing checks
//! it whole against the store's audiences and computed traits, and announces the change.

use std::collections::BTreeSet;

use prossimo_bus::{Bus, Definitions, Happened};
use prossimo_decide::audiences::Audiences;
use prossimo_store::{Store, StoreError};
use serde_json::Value;

use crate::check::{CheckContext, Journey, Problem, check};
use crate::definition::Definition;
use crate::lifecycle::LifecycleAction;
use crate::stored::{JourneyInput, JourneyRecord, Journeys};

/// Why a journey was not saved, published or changed.
#[derive(Debug, thiserror::Error)]
pub enum JourneyError {
    /// The JSON is not a journey (a misspelt field, a wrong type): serde's words, which
    /// name the field.
    #[error("definition: {0}")]
    Shape(String),
    /// A journey's shape with problems; each names its step and field.
    #[error("{} problem(s), the first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Problems(Vec<Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads a journey's JSON.
pub fn parse_definition(definition: &Value) -> Result<Definition, JourneyError> {
    serde_json::from_value(definition.clone()).map_err(|e| JourneyError::Shape(e.to_string()))
}

/// Reads and checks a journey's JSON against the store's audiences and computed traits.
pub fn check_definition(store: &Store, definition: &Value) -> Result<Journey, JourneyError> {
    let definition = parse_definition(definition)?;
    let audiences: BTreeSet<String> = Audiences::of(store)?
        .segments()?
        .into_iter()
        .map(|s| s.slug)
        .collect();
    check(
        &definition,
        &CheckContext {
            schema: &prossimo_decide::schema(),
            audiences: &audiences,
        },
    )
    .map_err(JourneyError::Problems)
}

/// Saves a journey's draft: a new journey when `existing` is false, else the one with
/// the input's slug. The draft must be a journey's shape; its problems are found when it
/// is checked or published.
pub fn save_journey(
    store: &Store,
    bus: Option<&Bus>,
    input: &JourneyInput,
    existing: bool,
    actor: &str,
) -> Result<JourneyRecord, JourneyError> {
    parse_definition(&input.definition)?;
    let journeys = Journeys::of(store)?;
    let record = if existing {
        journeys.edit(input, actor)?
    } else {
        journeys.create(input, actor)?
    };
    if let Some(bus) = bus {
        bus.publish(Happened::DefinitionsChanged(Definitions::Journeys));
    }
    Ok(record)
}

/// Checks `slug`'s draft whole and publishes it as its next version, live at once for new
/// instances; the version's number.
pub fn publish_journey(
    store: &Store,
    bus: Option<&Bus>,
    slug: &str,
    actor: &str,
) -> Result<(JourneyRecord, i64), JourneyError> {
    let journeys = Journeys::of(store)?;
    let journey = journeys
        .get(slug)?
        .ok_or_else(|| StoreError::NotFound(format!("journey {slug:?}")))?;
    check_definition(store, &journey.draft)?;
    let published = journeys.publish(slug, &journey.draft, actor)?;
    if let Some(bus) = bus {
        bus.publish(Happened::DefinitionsChanged(Definitions::Journeys));
    }
    Ok(published)
}

/// Pauses, resumes or archives `slug`.
pub fn change_journey_state(
    store: &Store,
    bus: Option<&Bus>,
    slug: &str,
    action: LifecycleAction,
    actor: &str,
) -> Result<JourneyRecord, JourneyError> {
    let record = Journeys::of(store)?.change_state(slug, action, actor)?;
    if let Some(bus) = bus {
        bus.publish(Happened::DefinitionsChanged(Definitions::Journeys));
    }
    Ok(record)
}
