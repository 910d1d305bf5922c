//! Journeys on the customer's event log: every `Journey Entered`, `Journey Step
//! Completed` (which step, which way) and `Journey Exited` (where, why) recorded in
//! `journey_events` is appended once as a platform event (channel `other`, from the
//! platform's own source), so the timeline shows it, segments count it
//! (`count(event "Journey Exited" where properties.reason == "goal" within 30d) >= 1`) and
//! journey waits and triggers can wait for it. The runner writes `journey_events` in the
//! transaction of the step; this appends them after, like the sender's outcomes, marking
//! each `logged` once stored (a platform event is stored once per message id, so a stop
//! between the two stores nothing twice).

use prossimo_store::sql::{Val, placeholders};
use prossimo_store::{PlatformEvent, Store, StoreError, WriteDomain};
use serde_json::{Value, json};

use crate::instances::{JOURNEY_ENTERED, JOURNEY_EXITED};

/// Journey events appended per pass.
const PASS: usize = 1_000;

/// Appends the journey events not on the event log yet; how many were newly stored.
pub fn log_journey_events(store: &Store) -> Result<usize, StoreError> {
    let mut stored = 0;
    loop {
        let rows = store.read(|conn| {
            conn.query(
                "SELECT e.id, e.instance_id, e.profile_id, e.at, e.event, e.step, e.outcome, j.slug, j.name, i.version
                 FROM journey_events e
                 JOIN journeys j ON j.id = e.journey_id
                 LEFT JOIN journey_instances i ON i.id = e.instance_id
                 WHERE e.logged = 0 ORDER BY e.id LIMIT $1",
                &[Val::Int(i64::try_from(PASS).unwrap_or(i64::MAX))],
            )
        })?;
        if rows.is_empty() {
            return Ok(stored);
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let corrupt = || StoreError::Corrupt("journey event row".into());
            let text = |i: usize| row[i].text().ok_or_else(corrupt);
            let (id, instance, profile, at) = (
                row[0].int().ok_or_else(corrupt)?,
                row[1].int().ok_or_else(corrupt)?,
                row[2].int().ok_or_else(corrupt)?,
                row[3].int().ok_or_else(corrupt)?,
            );
            let (event, step) = (text(4)?, text(5)?);
            ids.push(id);
            events.push(PlatformEvent {
                message_id: format!("journey/{instance}/{event}/{step}"),
                profile_id: profile,
                event: event.to_owned(),
                channel: prossimo_model::Channel::Other,
                ts: at,
                properties: properties(event, step, text(6)?, text(7)?, text(8)?, row[9].int()),
            });
        }
        stored += store.record_platform_events(&events)?;
        store.write_transaction(WriteDomain::Decisions, |conn| {
            conn.execute(
                &format!(
                    "UPDATE journey_events SET logged = 1 WHERE id IN ({})",
                    placeholders(ids.len(), 1)
                ),
                &ids.iter().map(|&id| Val::Int(id)).collect::<Vec<_>>(),
            )
        })?;
        if rows.len() < PASS {
            return Ok(stored);
        }
    }
}

/// What the event says: the journey (slug, name, version) and, by event, the instance
/// key, the step and which way it went, or where and why it ended.
fn properties(
    event: &str,
    step: &str,
    outcome: &str,
    slug: &str,
    name: &str,
    version: Option<i64>,
) -> Value {
    let mut properties = json!({"journey": slug, "journey_name": name, "version": version});
    let detail = match event {
        JOURNEY_ENTERED => json!({"instance_key": (!outcome.is_empty()).then_some(outcome)}),
        JOURNEY_EXITED => json!({"step": (!step.is_empty()).then_some(step), "reason": outcome}),
        _ => json!({"step": step, "outcome": outcome}),
    };
    if let (Some(all), Some(more)) = (properties.as_object_mut(), detail.as_object()) {
        all.extend(more.clone());
    }
    properties
}
