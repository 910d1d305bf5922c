//! What journeys show on a customer's timeline: `Journey Entered`, `Journey Step Completed`
//! (which step, which way) and `Journey Exited` (why), as track events of the `other`
//! channel, in the order they happened (`journey_events`).

use prossimo_identity::ProfileId;
use prossimo_store::sql::{Conn, Val, placeholders};
use prossimo_store::{
    Bound, EntryKind, EventQuery, PageSql, Store, StoreError, TimelineEntry, TimelineSource,
};
use serde_json::{Value, json};

use crate::instances::{JOURNEY_ENTERED, JOURNEY_EXITED, JOURNEY_STEP_COMPLETED};
use crate::stored::SCHEMA;

/// The journeys' [`TimelineSource`].
pub struct JourneyTimeline(());

impl JourneyTimeline {
    /// The source, the journeys' tables brought up to date first.
    pub fn of(store: &Store) -> Result<JourneyTimeline, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(JourneyTimeline(()))
    }
}

const EVENTS: [&str; 3] = [JOURNEY_ENTERED, JOURNEY_STEP_COMPLETED, JOURNEY_EXITED];

impl TimelineSource for JourneyTimeline {
    /// `ts.j<id>`.
    fn tag(&self) -> &'static str {
        "j"
    }

    fn page(
        &self,
        conn: &mut dyn Conn,
        profiles: &[ProfileId],
        query: &EventQuery,
        bound: Option<Bound>,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        if query.kind.as_deref().is_some_and(|k| k != "track")
            || query.channel.as_deref().is_some_and(|c| c != "other")
            || query.event.as_deref().is_some_and(|e| !EVENTS.contains(&e))
            || profiles.is_empty()
        {
            return Ok(Vec::new());
        }
        let mut page = PageSql::new(
            "SELECT e.id, e.at, e.event, e.step, e.outcome, j.slug, j.name
             FROM journey_events e JOIN journeys j ON j.id = e.journey_id",
            "e.profile_id",
            profiles,
        );
        if let Some(event) = &query.event {
            page.and("e.event", "=", Val::from(event.as_str()));
        }
        page.window(query, "e.at");
        page.run(conn, bound, "e.at", "e.id", limit)?
            .iter()
            .map(|row| {
                let corrupt = || StoreError::Corrupt("journey event row".into());
                let text = |i: usize| row[i].text().ok_or_else(corrupt);
                let (id, at) = (
                    row[0].int().ok_or_else(corrupt)?,
                    row[1].int().ok_or_else(corrupt)?,
                );
                Ok(TimelineEntry {
                    ts: at,
                    position: id,
                    body: body(id, at, text(2)?, text(3)?, text(4)?, text(5)?, text(6)?),
                })
            })
            .collect()
    }

    fn counts(
        &self,
        conn: &mut dyn Conn,
        profiles: &[ProfileId],
    ) -> Result<Vec<(EntryKind, u64)>, StoreError> {
        if profiles.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT event, COUNT(*) FROM journey_events WHERE profile_id IN ({}) GROUP BY event",
            placeholders(profiles.len(), 1)
        );
        let params: Vec<Val> = profiles.iter().map(|&p| Val::Int(p)).collect();
        Ok(conn
            .query(&sql, &params)?
            .iter()
            .filter_map(|row| {
                let kind = EntryKind {
                    kind: "track".into(),
                    event: Some(row[0].text()?.to_owned()),
                    channel: "other".into(),
                };
                Some((kind, u64::try_from(row[1].int()?).unwrap_or(0)))
            })
            .collect())
    }
}

/// The entry as a track message: the journey (slug and name) and, by event, the instance
/// key, the step and which way it went, or where and why it ended.
fn body(id: i64, at: i64, event: &str, step: &str, outcome: &str, slug: &str, name: &str) -> Value {
    let timestamp = prossimo_model::format_millis(at).unwrap_or_default();
    let mut properties = json!({"journey": slug, "journey_name": name});
    let detail = match event {
        JOURNEY_ENTERED => json!({"instance_key": (!outcome.is_empty()).then_some(outcome)}),
        JOURNEY_EXITED => json!({"step": (!step.is_empty()).then_some(step), "reason": outcome}),
        _ => json!({"step": step, "outcome": outcome}),
    };
    if let (Some(all), Some(more)) = (properties.as_object_mut(), detail.as_object()) {
        all.extend(more.clone());
    }
    json!({
        "type": "track",
        "event": event,
        "messageId": format!("journey-{id}"),
        "timestamp": timestamp,
        "receivedAt": timestamp,
        "properties": properties,
        "context": {"channel": "other", "library": {"name": "prossimo"}},
    })
}
