//! The logs the decider, the analyses and features tail: events in commit order, scans
//! of them by name and time, a profile's events, merges from the identity log, and the
//! facts segments test about a profile (traits, computed traits, first and last seen).

use std::collections::BTreeSet;

use prossimo_identity::{ProfileId, ProfileState};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::sql::{Conn, Val, placeholders};
use crate::{Store, StoreError};

/// Rows read per tail step. Fewer (1,000) made each step's fixed costs (a commit, the
/// touched segments' sizes) count more and the decider fell behind at 10,000 events/s
/// (BENCHMARKS.md, "Audiences").
const TAIL_ROWS: i64 = 5_000;

/// One stored event, attributed to the root of its profile now.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub seq: i64,
    pub source_id: i64,
    pub message_id: String,
    pub profile_id: ProfileId,
    pub kind: String,
    pub event: Option<String>,
    pub channel: String,
    pub ts: i64,
    pub received_at: i64,
    pub properties: Value,
    /// Top-level keys of the person traits the message carried (an identify's `traits`,
    /// any message's `context.traits`): the traits it may have changed.
    pub trait_keys: Vec<String>,
    /// The platform's own event (a membership change), not something a customer did.
    pub platform: bool,
}

/// Which events a scan reads; see [`Store::scan_events`].
#[derive(Debug, Clone, Default)]
pub struct EventScan<'a> {
    /// The last sequence number included.
    pub until_seq: i64,
    /// `event:NAME` / `channel:NAME` keys; `None` reads every event.
    pub only: Option<&'a BTreeSet<String>>,
    /// Only events with a time after this (ms).
    pub since_ts: Option<i64>,
    /// Parse `properties` and person traits out of each body; without it they are empty.
    pub with_properties: bool,
}

/// A merge recorded in the identity log: `loser` now belongs to `root`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeRecord {
    pub log_id: i64,
    pub loser: ProfileId,
    pub root: ProfileId,
}

/// What segments test about a profile besides its events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileFacts {
    pub id: ProfileId,
    pub traits: Map<String, Value>,
    pub computed: Map<String, Value>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub first_channel: Option<String>,
}

/// A position in the event log and the identity log: how far a reader (the decider) has
/// read both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogPosition {
    pub event_seq: i64,
    pub log_id: i64,
}

/// The parts of a stored message body segments read; the rest is skipped unparsed.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    properties: Value,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    traits: Option<Map<String, Value>>,
    #[serde(default)]
    context: Option<BodyContext>,
}

#[derive(Deserialize)]
struct BodyContext {
    #[serde(default)]
    traits: Option<Map<String, Value>>,
}

fn logged_event(row: Vec<Val>) -> Result<LoggedEvent, StoreError> {
    let mut row = row.into_iter();
    let mut next = || row.next().unwrap_or(Val::Null);
    let (seq, source, message_id, profile, kind, event, channel, ts, received, body) = (
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    );
    let (
        Some(seq),
        Some(source_id),
        Some(message_id),
        Some(profile_id),
        Some(kind),
        Some(channel),
        Some(ts),
        Some(received_at),
        Some(body),
    ) = (
        seq.int(),
        source.int(),
        message_id.into_text(),
        profile.int(),
        kind.into_text(),
        channel.into_text(),
        ts.int(),
        received.int(),
        Some(body),
    )
    else {
        return Err(StoreError::Corrupt("event row".into()));
    };
    let body: Body = match body.text() {
        Some(text) => serde_json::from_str(text)?,
        // A scan that does not need properties leaves the body unread.
        None => Body {
            properties: Value::Null,
            kind: String::new(),
            traits: None,
            context: None,
        },
    };
    let own = body.traits.filter(|_| body.kind == "identify");
    let context = body.context.and_then(|c| c.traits);
    let trait_keys = own
        .into_iter()
        .chain(context)
        .flat_map(|m| m.into_iter().map(|(k, _)| k))
        .collect();
    Ok(LoggedEvent {
        seq,
        source_id,
        message_id,
        profile_id,
        kind,
        event: event.into_text(),
        channel,
        ts,
        received_at,
        properties: body.properties,
        trait_keys,
        platform: false,
    })
}

const EVENT_COLUMNS: &str = "e.seq, e.source_id, e.message_id, COALESCE(p.merged_into, e.profile_id), e.type, e.event, e.channel, e.ts, e.received_at, e.body
     FROM events e JOIN profiles p ON p.id = e.profile_id";

fn facts_from(row: &[Val]) -> Result<ProfileFacts, StoreError> {
    let (Some(id), Some(state)) = (row[0].int(), row[1].text()) else {
        return Err(StoreError::Corrupt("profile row".into()));
    };
    let state: ProfileState = serde_json::from_str(state)?;
    let computed = match row[2].text() {
        Some(text) => serde_json::from_str(text)?,
        None => Map::new(),
    };
    Ok(ProfileFacts {
        id,
        traits: state.trait_values(),
        computed,
        first_seen: state.first_seen.as_ref().map(|s| s.at),
        last_seen: state.last_seen,
        first_channel: state.first_seen.map(|s| s.channel.as_str().to_owned()),
    })
}

const FACTS_COLUMNS: &str =
    "p.id, p.state, c.traits FROM profiles p LEFT JOIN computed_traits c ON c.profile_id = p.id";

impl Store {
    /// Up to a few thousand events stored after `seq`, in commit order (writes take the
    /// store's write lock, so sequence order is commit order on both backends).
    pub fn events_after(&self, seq: i64) -> Result<Vec<LoggedEvent>, StoreError> {
        self.logged_events(
            &format!("SELECT {EVENT_COLUMNS} WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"),
            &[Val::Int(seq), Val::Int(TAIL_ROWS)],
        )
    }

    /// Streams the events a scan asks for, in sequence order: what a set of segment terms
    /// can match, so a backfill reads (and parses) no more than it needs.
    pub fn scan_events(
        &self,
        scan: &EventScan<'_>,
        each: &mut dyn FnMut(LoggedEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut params = vec![Val::Int(scan.until_seq)];
        let mut filter = String::new();
        if let Some(since) = scan.since_ts {
            params.push(Val::Int(since));
            filter.push_str(&format!(" AND e.ts > ${}", params.len()));
        }
        if let Some(only) = scan.only {
            let (mut events, mut channels) = (Vec::new(), Vec::new());
            for key in only {
                if let Some(name) = key.strip_prefix("event:") {
                    events.push(name);
                } else if let Some(name) = key.strip_prefix("channel:") {
                    channels.push(name);
                }
            }
            let mut ors = Vec::new();
            if !events.is_empty() {
                ors.push(format!(
                    "e.event IN ({})",
                    placeholders(events.len(), params.len() + 1)
                ));
                params.extend(events.into_iter().map(Val::from));
            }
            if !channels.is_empty() {
                ors.push(format!(
                    "e.channel IN ({})",
                    placeholders(channels.len(), params.len() + 1)
                ));
                params.extend(channels.into_iter().map(Val::from));
            }
            if ors.is_empty() {
                return Ok(());
            }
            filter.push_str(&format!(" AND ({})", ors.join(" OR ")));
        }
        // Without properties the body is not read, let alone parsed.
        let columns = if scan.with_properties {
            EVENT_COLUMNS.to_owned()
        } else {
            EVENT_COLUMNS.replace("e.body", "NULL")
        };
        let mut pooled = self.conn()?;
        pooled.conn().for_each_row(
            &format!("SELECT {columns} WHERE e.seq <= $1{filter} ORDER BY e.seq"),
            &params,
            &mut |row| each(logged_event(row)?),
        )
    }

    /// Every event of a root profile and the profiles merged into it, oldest first.
    pub fn events_of(&self, root: ProfileId) -> Result<Vec<LoggedEvent>, StoreError> {
        self.logged_events(
            &format!(
                "SELECT {EVENT_COLUMNS} WHERE (p.id = $1 OR p.merged_into = $1) ORDER BY e.seq"
            ),
            &[Val::Int(root)],
        )
    }

    fn logged_events(&self, sql: &str, params: &[Val]) -> Result<Vec<LoggedEvent>, StoreError> {
        let mut events = Vec::new();
        self.conn()?.conn().for_each_row(sql, params, &mut |row| {
            events.push(logged_event(row)?);
            Ok(())
        })?;
        Ok(events)
    }

    /// Merges logged after `log_id`, oldest first, each with the loser's root now.
    pub fn merges_after(&self, log_id: i64) -> Result<Vec<MergeRecord>, StoreError> {
        let rows = self.conn()?.conn().query(
            "SELECT l.id, l.other_profile_id, COALESCE(p.merged_into, p.id)
             FROM identity_log l JOIN profiles p ON p.id = l.profile_id
             WHERE l.id > $1 AND l.kind = 'merge' AND l.other_profile_id IS NOT NULL ORDER BY l.id LIMIT $2",
            &[Val::Int(log_id), Val::Int(TAIL_ROWS)],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(MergeRecord {
                    log_id: r[0].int()?,
                    loser: r[1].int()?,
                    root: r[2].int()?,
                })
            })
            .collect())
    }

    /// Where the logs end now.
    pub fn log_heads(&self) -> Result<LogPosition, StoreError> {
        let mut pooled = self.conn()?;
        let conn = pooled.conn();
        let head = |conn: &mut dyn Conn, sql: &str| -> Result<i64, StoreError> {
            Ok(conn
                .query_one(sql, &[])?
                .and_then(|r| r[0].int())
                .unwrap_or(0))
        };
        Ok(LogPosition {
            event_seq: head(conn, "SELECT COALESCE(MAX(seq), 0) FROM events")?,
            log_id: head(conn, "SELECT COALESCE(MAX(id), 0) FROM identity_log")?,
        })
    }

    /// Traits, computed traits and first/last seen of these profiles (roots only: a merged
    /// profile is skipped).
    pub fn profile_facts(&self, ids: &[ProfileId]) -> Result<Vec<ProfileFacts>, StoreError> {
        let mut pooled = self.conn()?;
        let conn = pooled.conn();
        let mut facts = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(crate::sql::ROWS_PER_STATEMENT) {
            let params: Vec<Val> = chunk.iter().map(|&i| Val::Int(i)).collect();
            conn.for_each_row(
                &format!(
                    "SELECT {FACTS_COLUMNS} WHERE p.id IN ({}) AND p.merged_into IS NULL",
                    placeholders(chunk.len(), 1)
                ),
                &params,
                &mut |row| {
                    facts.push(facts_from(&row)?);
                    Ok(())
                },
            )?;
        }
        Ok(facts)
    }

    /// Streams the facts of every root profile.
    pub fn for_each_profile_facts(
        &self,
        each: &mut dyn FnMut(ProfileFacts) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut pooled = self.conn()?;
        pooled.conn().for_each_row(
            &format!("SELECT {FACTS_COLUMNS} WHERE p.merged_into IS NULL ORDER BY p.id"),
            &[],
            &mut |row| each(facts_from(&row)?),
        )
    }
}
