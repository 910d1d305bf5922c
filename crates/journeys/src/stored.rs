//! Journeys in the store (this crate's tables, created by `migrations/`): the draft being
//! edited, every published version (never changed), and the history of what was done to
//! each. Writes go through the decisions domain, as the instances they drive will.

use serde::Serialize;
use serde_json::Value;

use prossimo_store::sql::{Conn, Row, Val};
use prossimo_store::{
    MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES, Store, StoreError, WriteDomain, bounded,
};

use crate::lifecycle::{JourneyState, LifecycleAction, transition};

prossimo_store::feature_schema! {
    /// Journeys, their versions and their history; in the decisions file on SQLite.
    pub const SCHEMA = ("journeys", WriteDomain::Decisions);
}

/// The longest journey definition, in bytes of JSON: two hundred steps with their
/// conditions fit in a small part of it.
pub const MAX_JOURNEY_BYTES: usize = 256 * 1024;

/// A journey as a person saves it; `definition` is its JSON (see docs/journeys.md).
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyInput {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub definition: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JourneyRecord {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub state: JourneyState,
    /// The definition being edited (may differ from the live version).
    pub draft: Value,
    /// The version new instances enter; `None` until first published.
    pub live_version: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A published version, as it was published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionRecord {
    pub version: i64,
    pub definition: Value,
    pub published_at: i64,
}

/// Something done to a journey (`create`, `edit`, `publish`, `pause`, `resume`,
/// `archive`), by whom (`admin token`, a console user's e-mail, `cli`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRecord {
    pub action: String,
    pub version: Option<i64>,
    pub actor: String,
    pub at: i64,
}

const COLUMNS: &str =
    "id, slug, name, description, state, draft, live_version, created_at, updated_at";

fn journey_from(row: &Row) -> Result<JourneyRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("journey row".into());
    let text = |i: usize| row[i].text().map(str::to_owned).ok_or_else(corrupt);
    Ok(JourneyRecord {
        id: row[0].int().ok_or_else(corrupt)?,
        slug: text(1)?,
        name: text(2)?,
        description: text(3)?,
        state: JourneyState::parse(&text(4)?).ok_or_else(corrupt)?,
        draft: serde_json::from_str(&text(5)?)?,
        live_version: row[6].int(),
        created_at: row[7].int().ok_or_else(corrupt)?,
        updated_at: row[8].int().ok_or_else(corrupt)?,
    })
}

fn journey_by_slug(conn: &mut dyn Conn, slug: &str) -> Result<Option<JourneyRecord>, StoreError> {
    conn.query_one(
        &format!("SELECT {COLUMNS} FROM journeys WHERE slug = $1"),
        &[Val::from(slug)],
    )?
    .map(|row| journey_from(&row))
    .transpose()
}

fn check_input(input: &JourneyInput) -> Result<String, StoreError> {
    prossimo_segments::check_slug_of(prossimo_segments::SlugKind::JOURNEY, &input.slug)
        .map_err(|e| StoreError::Invalid(e.get(prossimo_segments::Language::English).to_owned()))?;
    bounded("name", &input.name, MAX_NAME_BYTES)?;
    bounded("description", &input.description, MAX_DESCRIPTION_BYTES)?;
    let definition = serde_json::to_string(&input.definition)?;
    bounded("definition", &definition, MAX_JOURNEY_BYTES)?;
    Ok(definition)
}

/// Records `action` (`create`, or a [`LifecycleAction`]'s name).
fn record_change(
    conn: &mut dyn Conn,
    journey_id: i64,
    action: &str,
    version: Option<i64>,
    actor: &str,
    at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO journey_changes (journey_id, action, version, actor, at) VALUES ($1, $2, $3, $4, $5)",
        &[
            Val::Int(journey_id),
            Val::from(action),
            version.map_or(Val::Null, Val::Int),
            Val::from(actor),
            Val::Int(at),
        ],
    )?;
    Ok(())
}

/// The journeys of a store.
pub struct Journeys<'a> {
    store: &'a Store,
}

impl<'a> Journeys<'a> {
    /// The journeys of `store`, their tables brought up to date first.
    pub fn of(store: &'a Store) -> Result<Journeys<'a>, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(Journeys { store })
    }

    pub fn list(&self) -> Result<Vec<JourneyRecord>, StoreError> {
        self.store
            .read(|conn| {
                conn.query(
                    &format!("SELECT {COLUMNS} FROM journeys ORDER BY slug"),
                    &[],
                )
            })?
            .iter()
            .map(journey_from)
            .collect()
    }

    pub fn get(&self, slug: &str) -> Result<Option<JourneyRecord>, StoreError> {
        self.store.read(|conn| journey_by_slug(conn, slug))
    }

    /// Saves a new journey as a draft; [`StoreError::Conflict`] when the slug is taken.
    pub fn create(&self, input: &JourneyInput, actor: &str) -> Result<JourneyRecord, StoreError> {
        let definition = check_input(input)?;
        let now = self.store.now_ms();
        self.store.write_transaction(WriteDomain::Decisions, |conn| {
            if journey_by_slug(conn, &input.slug)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a journey with slug {:?} already exists",
                    input.slug
                )));
            }
            conn.execute(
                "INSERT INTO journeys (slug, name, description, state, draft, live_version, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, NULL, $6, $6)",
                &[
                    Val::from(input.slug.as_str()),
                    Val::from(input.name.as_str()),
                    Val::from(input.description.as_str()),
                    Val::from(JourneyState::Draft.as_str()),
                    Val::Text(definition),
                    Val::Int(now),
                ],
            )?;
            let record = journey_by_slug(conn, &input.slug)?
                .ok_or_else(|| StoreError::NotFound(format!("journey {:?}", input.slug)))?;
            record_change(conn, record.id, "create", None, actor, now)?;
            Ok(record)
        })
    }

    /// Replaces a journey's name, description and draft (the slug stays; the live version
    /// does not change until published).
    pub fn edit(&self, input: &JourneyInput, actor: &str) -> Result<JourneyRecord, StoreError> {
        let definition = check_input(input)?;
        let now = self.store.now_ms();
        self.store.write_transaction(WriteDomain::Decisions, |conn| {
            let journey = self.existing(conn, &input.slug, LifecycleAction::Edit)?;
            conn.execute(
                "UPDATE journeys SET name = $1, description = $2, draft = $3, updated_at = $4 WHERE id = $5",
                &[
                    Val::from(input.name.as_str()),
                    Val::from(input.description.as_str()),
                    Val::Text(definition),
                    Val::Int(now),
                    Val::Int(journey.id),
                ],
            )?;
            record_change(conn, journey.id, LifecycleAction::Edit.as_str(), None, actor, now)?;
            journey_by_slug(conn, &input.slug)?
                .ok_or_else(|| StoreError::NotFound(format!("journey {:?}", input.slug)))
        })
    }

    /// The journey called `slug`, if `action` may be done to it now.
    fn existing(
        &self,
        conn: &mut dyn Conn,
        slug: &str,
        action: LifecycleAction,
    ) -> Result<JourneyRecord, StoreError> {
        let journey = journey_by_slug(conn, slug)?
            .ok_or_else(|| StoreError::NotFound(format!("journey {slug:?}")))?;
        transition(journey.state, action).map_err(|e| StoreError::Conflict(e.to_string()))?;
        Ok(journey)
    }

    /// Publishes `definition` (the draft, checked by the caller) as the next version of
    /// `slug` and makes it live; the version's number.
    pub fn publish(
        &self,
        slug: &str,
        expected_draft: &Value,
        actor: &str,
    ) -> Result<(JourneyRecord, i64), StoreError> {
        let now = self.store.now_ms();
        self.store.write_transaction(WriteDomain::Decisions, |conn| {
            let journey = self.existing(conn, slug, LifecycleAction::Publish)?;
            // The draft checked is the draft published: an edit in between is refused.
            if &journey.draft != expected_draft {
                return Err(StoreError::Conflict(format!(
                    "journey {slug:?} was edited while it was being published; check it again"
                )));
            }
            let version = conn
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM journey_versions WHERE journey_id = $1",
                    &[Val::Int(journey.id)],
                )?
                .and_then(|row| row[0].int())
                .unwrap_or(1);
            conn.execute(
                "INSERT INTO journey_versions (journey_id, version, definition, published_at) VALUES ($1, $2, $3, $4)",
                &[
                    Val::Int(journey.id),
                    Val::Int(version),
                    Val::Text(serde_json::to_string(&journey.draft)?),
                    Val::Int(now),
                ],
            )?;
            let state = transition(journey.state, LifecycleAction::Publish)
                .map_err(|e| StoreError::Conflict(e.to_string()))?;
            conn.execute(
                "UPDATE journeys SET state = $1, live_version = $2, updated_at = $3 WHERE id = $4",
                &[
                    Val::from(state.as_str()),
                    Val::Int(version),
                    Val::Int(now),
                    Val::Int(journey.id),
                ],
            )?;
            record_change(
                conn,
                journey.id,
                LifecycleAction::Publish.as_str(),
                Some(version),
                actor,
                now,
            )?;
            let record = journey_by_slug(conn, slug)?
                .ok_or_else(|| StoreError::NotFound(format!("journey {slug:?}")))?;
            Ok((record, version))
        })
    }

    /// Pauses, resumes or archives `slug` ([`StoreError::Conflict`] when its state does
    /// not allow it); archiving ends its running instances (`archived`).
    pub fn change_state(
        &self,
        slug: &str,
        action: LifecycleAction,
        actor: &str,
    ) -> Result<JourneyRecord, StoreError> {
        if matches!(action, LifecycleAction::Edit | LifecycleAction::Publish) {
            return Err(StoreError::Invalid(format!(
                "{} is not a change of state",
                action.as_str()
            )));
        }
        let now = self.store.now_ms();
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
                let journey = self.existing(conn, slug, action)?;
                let state = transition(journey.state, action)
                    .map_err(|e| StoreError::Conflict(e.to_string()))?;
                conn.execute(
                    "UPDATE journeys SET state = $1, updated_at = $2 WHERE id = $3",
                    &[
                        Val::from(state.as_str()),
                        Val::Int(now),
                        Val::Int(journey.id),
                    ],
                )?;
                record_change(conn, journey.id, action.as_str(), None, actor, now)?;
                // Archived for good: whoever is still on the way leaves now.
                if action == LifecycleAction::Archive {
                    crate::instances::end_all(conn, journey.id, now)?;
                }
                journey_by_slug(conn, slug)?
                    .ok_or_else(|| StoreError::NotFound(format!("journey {slug:?}")))
            })
    }

    /// One published version of a journey.
    pub fn version(
        &self,
        journey_id: i64,
        version: i64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.store
            .read(|conn| {
                conn.query_one(
                    "SELECT version, definition, published_at FROM journey_versions WHERE journey_id = $1 AND version = $2",
                    &[Val::Int(journey_id), Val::Int(version)],
                )
            })?
            .map(|row| version_from(&row))
            .transpose()
    }

    /// Every published version of a journey, newest first.
    pub fn versions(&self, journey_id: i64) -> Result<Vec<VersionRecord>, StoreError> {
        self.store
            .read(|conn| {
                conn.query(
                    "SELECT version, definition, published_at FROM journey_versions WHERE journey_id = $1 ORDER BY version DESC",
                    &[Val::Int(journey_id)],
                )
            })?
            .iter()
            .map(version_from)
            .collect()
    }

    /// What was done to a journey, oldest first.
    pub fn history(&self, journey_id: i64) -> Result<Vec<ChangeRecord>, StoreError> {
        self.store
            .read(|conn| {
                conn.query(
                    "SELECT action, version, actor, at FROM journey_changes WHERE journey_id = $1 ORDER BY id",
                    &[Val::Int(journey_id)],
                )
            })?
            .iter()
            .map(|row| {
                let corrupt = || StoreError::Corrupt("journey change row".into());
                Ok(ChangeRecord {
                    action: row[0].text().ok_or_else(corrupt)?.to_owned(),
                    version: row[1].int(),
                    actor: row[2].text().ok_or_else(corrupt)?.to_owned(),
                    at: row[3].int().ok_or_else(corrupt)?,
                })
            })
            .collect()
    }
}

fn version_from(row: &Row) -> Result<VersionRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("journey version row".into());
    Ok(VersionRecord {
        version: row[0].int().ok_or_else(corrupt)?,
        definition: serde_json::from_str(row[1].text().ok_or_else(corrupt)?)?,
        published_at: row[2].int().ok_or_else(corrupt)?,
    })
}
