//! Events the platform itself records on a customer's timeline (a message sent, skipped,
//! opened): appended to the event log like a customer's own, so segments and journey
//! waits read them, but from the platform's own source, `prossimo:internal`, whose write
//! key is revoked at birth (nobody can send as the platform).

use std::collections::{BTreeSet, HashMap};

use prossimo_identity::ProfileId;
use prossimo_model::Channel;
use serde_json::{Value, json};

use crate::events::NewEvent;
use crate::keys::random_key;
use crate::sql::{Conn, ROWS_PER_STATEMENT, Val, placeholders};
use crate::{Store, StoreError, WriteDomain};

/// The platform's own source.
pub const PLATFORM_SOURCE: &str = "prossimo:internal";

/// An event about a profile, recorded by the platform.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformEvent {
    /// Unique per fact (`{send}/sent`): recording it again stores it once.
    pub message_id: String,
    pub profile_id: ProfileId,
    pub event: String,
    pub channel: Channel,
    pub ts: i64,
    pub properties: Value,
}

impl Store {
    /// The root each of `ids` is merged into now (itself when not merged); ids of no
    /// profile are absent.
    pub fn roots(&self, ids: &[ProfileId]) -> Result<HashMap<ProfileId, ProfileId>, StoreError> {
        let ids: BTreeSet<ProfileId> = ids.iter().copied().collect();
        self.read(|conn| roots_of(conn, &ids))
    }

    /// The root `id` is merged into now (itself when not merged, or when no profile has
    /// it).
    pub fn root_of(&self, id: ProfileId) -> Result<ProfileId, StoreError> {
        Ok(self.roots(&[id])?.get(&id).copied().unwrap_or(id))
    }

    /// Appends `events` to the log, each once (by message id) and attributed to the root
    /// of its profile now. The events newly stored.
    pub fn record_platform_events(&self, events: &[PlatformEvent]) -> Result<usize, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let now = self.now_ms();
        self.write_transaction(WriteDomain::Customers, |conn| {
            let source = platform_source(conn, now)?;
            let ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
            let stored: BTreeSet<String> = self
                .events
                .stored(conn, source, &ids)?
                .into_iter()
                .collect();
            let mut seen = BTreeSet::new();
            let fresh: Vec<&PlatformEvent> = events
                .iter()
                .filter(|e| !stored.contains(&e.message_id) && seen.insert(e.message_id.as_str()))
                .collect();
            let profiles: BTreeSet<ProfileId> = fresh.iter().map(|e| e.profile_id).collect();
            let roots = roots_of(conn, &profiles)?;
            let bodies: Vec<String> = fresh
                .iter()
                .map(|e| {
                    json!({
                        "type": "track",
                        "event": e.event,
                        "properties": e.properties,
                        "messageId": e.message_id,
                        "channel": e.channel.as_str(),
                        "timestamp": chrono::DateTime::from_timestamp_millis(e.ts)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    })
                    .to_string()
                })
                .collect();
            let new: Vec<NewEvent<'_>> = fresh
                .iter()
                .zip(&bodies)
                .filter_map(|(e, body)| {
                    // A profile that no longer exists has nobody to show the event to.
                    let root = *roots.get(&e.profile_id)?;
                    Some(NewEvent {
                        source_id: source,
                        message_id: &e.message_id,
                        profile_id: root,
                        kind: "track",
                        event: Some(&e.event),
                        channel: e.channel.as_str(),
                        ts: e.ts,
                        received_at: now,
                        revenue: None,
                        currency: None,
                        body,
                    })
                })
                .collect();
            self.events.append(conn, &new)?;
            Ok(new.len())
        })
    }
}

/// The platform's source id, created (revoked, so its key is useless) on first use.
fn platform_source(conn: &mut dyn Conn, now: i64) -> Result<i64, StoreError> {
    let find = |conn: &mut dyn Conn| -> Result<Option<i64>, StoreError> {
        Ok(conn
            .query_one(
                "SELECT id FROM sources WHERE name = $1",
                &[Val::from(PLATFORM_SOURCE)],
            )?
            .and_then(|row| row[0].int()))
    };
    if let Some(id) = find(conn)? {
        return Ok(id);
    }
    conn.execute(
        "INSERT INTO sources (name, write_key, created_at, revoked_at) VALUES ($1, $2, $3, $3)",
        &[
            Val::from(PLATFORM_SOURCE),
            Val::from(random_key("wk_").as_str()),
            Val::Int(now),
        ],
    )?;
    find(conn)?.ok_or_else(|| StoreError::Corrupt("the platform's source vanished".into()))
}

/// The root each of `ids` is merged into now (itself when not merged); profiles that do
/// not exist are absent.
fn roots_of(
    conn: &mut dyn Conn,
    ids: &BTreeSet<ProfileId>,
) -> Result<HashMap<ProfileId, ProfileId>, StoreError> {
    let ids: Vec<ProfileId> = ids.iter().copied().collect();
    let mut roots = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "SELECT id, COALESCE(merged_into, id) FROM profiles WHERE id IN ({})",
            placeholders(chunk.len(), 1)
        );
        let params: Vec<Val> = chunk.iter().map(|&id| Val::Int(id)).collect();
        for row in conn.query(&sql, &params)? {
            if let (Some(id), Some(root)) = (row[0].int(), row[1].int()) {
                roots.insert(id, root);
            }
        }
    }
    Ok(roots)
}
