//! The logs the decider, the analyses and features tail: events in commit order, scans
//! of them by name and time, a profile's events, merges from the identity log, and the
//! facts segments test about a profile (traits, computed traits, first and last seen).

use std::collections::BTreeSet;

use prossimo_identity::{ProfileId, ProfileState};
use serde_json::{Map, Value};

use crate::sql::{Val, placeholders};
use crate::{Store, StoreError};

/// Rows read per tail step. Fewer (1,000) made each step's fixed costs (a commit, the
/// touched segments' sizes) count more and the decider fell behind at 10,000 events/s
/// (BENCHMARKS.md, "Audiences").
const TAIL_ROWS: usize = 5_000;

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
        self.events.tail(self.conn()?.conn(), seq, TAIL_ROWS)
    }

    /// Streams the events a scan asks for, in sequence order: what a set of segment terms
    /// can match, so a backfill reads (and parses) no more than it needs.
    pub fn scan_events(
        &self,
        scan: &EventScan<'_>,
        each: &mut dyn FnMut(LoggedEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.events.scan(self.conn()?.conn(), scan, each)
    }

    /// Every event of a root profile and the profiles merged into it, oldest first.
    pub fn events_of(&self, root: ProfileId) -> Result<Vec<LoggedEvent>, StoreError> {
        self.events.of_profile(self.conn()?.conn(), root)
    }

    /// Merges logged after `log_id`, oldest first, each with the loser's root now.
    pub fn merges_after(&self, log_id: i64) -> Result<Vec<MergeRecord>, StoreError> {
        let rows = self.conn()?.conn().query(
            "SELECT l.id, l.other_profile_id, COALESCE(p.merged_into, p.id)
             FROM identity_log l JOIN profiles p ON p.id = l.profile_id
             WHERE l.id > $1 AND l.kind = 'merge' AND l.other_profile_id IS NOT NULL ORDER BY l.id LIMIT $2",
            &[Val::Int(log_id), Val::Int(TAIL_ROWS as i64)],
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
        Ok(LogPosition {
            event_seq: self.events.head(conn)?,
            log_id: conn
                .query_one("SELECT COALESCE(MAX(id), 0) FROM identity_log", &[])?
                .and_then(|r| r[0].int())
                .unwrap_or(0),
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
