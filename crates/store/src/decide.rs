//! What the decide stage reads and writes: saved segments, the event log tailed in commit
//! order, the facts segments test (traits, computed traits, first/last seen), and
//! membership changes with their outbox deliveries, written together.
//!
//! Memberships are stored as a log of changes (`membership_changes`), one row per entry or
//! exit: a decide step only appends. Current members, a profile's intervals, a segment's
//! history and the `Segment Entered` / `Segment Exited` events on the timeline are all read
//! from that log.

use std::collections::BTreeSet;

use prossimo_identity::{ProfileId, ProfileState};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{MAX_DEFINITION_BYTES, MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES, bounded};
use crate::sql::{Commit, Conn, Val, placeholders};
use crate::{Store, StoreError, WriteDomain};

/// The event names of membership changes on a profile's timeline.
pub const SEGMENT_ENTERED: &str = "Segment Entered";
pub const SEGMENT_EXITED: &str = "Segment Exited";

/// The timeline event name of an entry (`true`) or an exit.
pub(crate) fn membership_event_name(entered: bool) -> &'static str {
    if entered {
        SEGMENT_ENTERED
    } else {
        SEGMENT_EXITED
    }
}

/// Rows read per tail step. Fewer (1,000) made each step's fixed costs (a commit, the
/// touched segments' sizes) count more and the decider fell behind at 10,000 events/s
/// (BENCHMARKS.md, "Audiences").
const TAIL_ROWS: i64 = 5_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentRecord {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub definition: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a user saves; the definition has been checked by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SegmentInput {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub definition: String,
}

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

/// A profile entering or leaving a segment at `at` (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub segment_id: i64,
    pub segment_slug: String,
    pub profile_id: ProfileId,
    pub entered: bool,
    pub at: i64,
    /// Part of a new segment's first evaluation: the membership is written, but no
    /// `Segment Entered` event goes on the timeline (a segment's birth is not something
    /// each of its members did).
    pub first_fill: bool,
}

impl MembershipChange {
    /// The `Segment Entered` / `Segment Exited` track event the timeline shows for this
    /// change, and segments can count (`None` for a new segment's first members).
    pub fn as_event(&self) -> Option<LoggedEvent> {
        if self.first_fill {
            return None;
        }
        let verb = if self.entered { "entered" } else { "exited" };
        Some(LoggedEvent {
            seq: 0,
            source_id: 0,
            message_id: format!(
                "segment-{verb}-{}-{}-{}",
                self.segment_id, self.profile_id, self.at
            ),
            profile_id: self.profile_id,
            kind: "track".into(),
            event: Some(membership_event_name(self.entered).into()),
            channel: "other".into(),
            ts: self.at,
            received_at: self.at,
            properties: json!({"segment": self.segment_slug, "segment_id": self.segment_id}),
            trait_keys: Vec::new(),
            platform: true,
        })
    }

    /// The message body of [`MembershipChange::as_event`], as the timeline API shows it.
    pub fn event_body(&self) -> Option<Value> {
        let event = self.as_event()?;
        let timestamp = prossimo_model::format_millis(self.at).unwrap_or_default();
        Some(json!({
            "type": "track",
            "event": event.event,
            "messageId": event.message_id,
            "timestamp": timestamp,
            "receivedAt": timestamp,
            "properties": event.properties,
            "context": {"channel": "other", "library": {"name": "prossimo"}},
        }))
    }
}

/// Columns of a change with its segment's slug, attributed to the root of its profile now
/// (read by [`change_from`]).
pub(crate) const CHANGE_COLUMNS: &str = "c.id, c.segment_id, s.slug, COALESCE(p.merged_into, c.profile_id), c.entered, c.at, c.first_fill
     FROM membership_changes c JOIN segments s ON s.id = c.segment_id JOIN profiles p ON p.id = c.profile_id";

pub(crate) fn change_from(row: &[Val]) -> Result<(i64, MembershipChange), StoreError> {
    match (
        row[0].int(),
        row[1].int(),
        row[2].text(),
        row[3].int(),
        row[4].int(),
        row[5].int(),
        row[6].int(),
    ) {
        (
            Some(id),
            Some(segment_id),
            Some(slug),
            Some(profile_id),
            Some(entered),
            Some(at),
            Some(first_fill),
        ) => Ok((
            id,
            MembershipChange {
                segment_id,
                segment_slug: slug.to_owned(),
                profile_id,
                entered: entered != 0,
                at,
                first_fill: first_fill != 0,
            },
        )),
        _ => Err(StoreError::Corrupt("membership change row".into())),
    }
}

/// How far the decider has read, saved with what it wrote from that reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecidePosition {
    pub event_seq: i64,
    pub log_id: i64,
}

/// What another feature writes in a decide step's transaction because of its changes,
/// given the transaction and the time of the step (ms).
pub type OwedWrite<'a> = &'a dyn Fn(&mut dyn Conn, i64) -> Result<(), StoreError>;

/// One decide step's writes, in one transaction.
#[derive(Clone, Copy, Default)]
pub struct DecideWrite<'a> {
    pub changes: &'a [MembershipChange],
    /// What the changes owe to the outside (the destinations' outbox rows), written in
    /// the same transaction so that nothing decided is left unsent; a step that owes
    /// something commits durably.
    pub owed: Option<OwedWrite<'a>>,
    /// Current size of every segment whose membership changed.
    pub sizes: &'a [(i64, u64)],
    pub position: Option<DecidePosition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberRecord {
    pub profile_id: ProfileId,
    pub entered_at: i64,
    /// Where the member's entry is in the log: the page after it starts here.
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipRecord {
    pub segment_id: i64,
    pub slug: String,
    pub name: String,
    pub profile_id: ProfileId,
    /// Milliseconds; ISO-8601 in JSON, like every time the read API shows.
    #[serde(serialize_with = "iso")]
    pub entered_at: i64,
    #[serde(serialize_with = "iso_opt")]
    pub exited_at: Option<i64>,
}

fn iso<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&prossimo_model::format_millis(*ms).unwrap_or_default())
}

fn iso_opt<S: serde::Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => iso(ms, s),
        None => s.serialize_none(),
    }
}

const SEGMENT_COLUMNS: &str = "id, slug, name, description, definition, created_at, updated_at";

fn segment_by_slug(conn: &mut dyn Conn, slug: &str) -> Result<Option<SegmentRecord>, StoreError> {
    conn.query_one(
        &format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE slug = $1"),
        &[Val::from(slug)],
    )?
    .map(|r| segment_from(&r))
    .transpose()
}

fn segment_from(row: &[Val]) -> Result<SegmentRecord, StoreError> {
    match row {
        [
            Val::Int(id),
            Val::Text(slug),
            Val::Text(name),
            Val::Text(description),
            Val::Text(definition),
            created,
            updated,
        ] => Ok(SegmentRecord {
            id: *id,
            slug: slug.clone(),
            name: name.clone(),
            description: description.clone(),
            definition: definition.clone(),
            created_at: created.int().unwrap_or_default(),
            updated_at: updated.int().unwrap_or_default(),
        }),
        _ => Err(StoreError::Corrupt("segment row".into())),
    }
}

/// A slug names a segment in URLs and in `segment "slug"`: the one rule,
/// [`prossimo_segments::check_slug`].
pub fn check_slug(slug: &str) -> Result<(), StoreError> {
    prossimo_segments::check_slug(slug).map_err(StoreError::Invalid)
}

/// The lengths a person may type into a segment's fields.
fn check_segment_input(input: &SegmentInput) -> Result<(), StoreError> {
    bounded("name", &input.name, MAX_NAME_BYTES)?;
    bounded("description", &input.description, MAX_DESCRIPTION_BYTES)?;
    bounded("definition", &input.definition, MAX_DEFINITION_BYTES)
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
    pub fn segments(&self) -> Result<Vec<SegmentRecord>, StoreError> {
        self.conn()?
            .conn()
            .query(
                &format!("SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY slug"),
                &[],
            )?
            .iter()
            .map(|r| segment_from(r))
            .collect()
    }

    pub fn segment(&self, slug: &str) -> Result<Option<SegmentRecord>, StoreError> {
        segment_by_slug(self.conn()?.conn(), slug)
    }

    /// Saves a new segment; [`StoreError::Conflict`] when the slug is taken.
    pub fn create_segment(&self, input: &SegmentInput) -> Result<SegmentRecord, StoreError> {
        check_slug(&input.slug)?;
        check_segment_input(input)?;
        self.write_transaction(WriteDomain::Decisions, |conn| {
            if segment_by_slug(conn, &input.slug)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a segment with slug {:?} already exists",
                    input.slug
                )));
            }
            conn.execute(
                "INSERT INTO segments (slug, name, description, definition, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5)",
                &[
                    Val::from(input.slug.as_str()),
                    Val::from(input.name.as_str()),
                    Val::from(input.description.as_str()),
                    Val::from(input.definition.as_str()),
                    Val::Int(self.now_ms()),
                ],
            )?;
            segment_by_slug(conn, &input.slug)?
                .ok_or_else(|| StoreError::NotFound(format!("segment {:?}", input.slug)))
        })
    }

    /// Replaces a segment's name, description and definition (the slug stays).
    pub fn update_segment(
        &self,
        slug: &str,
        input: &SegmentInput,
    ) -> Result<Option<SegmentRecord>, StoreError> {
        check_segment_input(input)?;
        self.write_transaction(WriteDomain::Decisions, |conn| {
            conn.execute(
                "UPDATE segments SET name = $1, description = $2, definition = $3, updated_at = $4 WHERE slug = $5",
                &[
                    Val::from(input.name.as_str()),
                    Val::from(input.description.as_str()),
                    Val::from(input.definition.as_str()),
                    Val::Int(self.now_ms()),
                    Val::from(slug),
                ],
            )?;
            segment_by_slug(conn, slug)
        })
    }

    /// Deletes a segment with its memberships and size history; false when there was none.
    pub fn delete_segment(&self, slug: &str) -> Result<bool, StoreError> {
        self.write_transaction(WriteDomain::Decisions, |conn| {
            let Some(segment) = segment_by_slug(conn, slug)? else {
                return Ok(false);
            };
            let id = [Val::Int(segment.id)];
            conn.execute("DELETE FROM membership_changes WHERE segment_id = $1", &id)?;
            conn.execute("DELETE FROM segment_sizes WHERE segment_id = $1", &id)?;
            conn.execute("DELETE FROM segments WHERE id = $1", &id)?;
            Ok(true)
        })
    }

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

    /// Streams the platform's own events ([`MembershipChange::as_event`]) after `since_ts`
    /// (ms), in the order they were written, each attributed to its profile's root now.
    pub fn scan_membership_events(
        &self,
        since_ts: Option<i64>,
        each: &mut dyn FnMut(LoggedEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.membership_events("c.at > $1", &[Val::Int(since_ts.unwrap_or(i64::MIN))], each)
    }

    /// The platform's own events of a root profile and the profiles merged into it.
    pub fn membership_events_of(&self, root: ProfileId) -> Result<Vec<LoggedEvent>, StoreError> {
        let mut out = Vec::new();
        self.membership_events(
            "(p.id = $1 OR p.merged_into = $1)",
            &[Val::Int(root)],
            &mut |event| {
                out.push(event);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The timeline events of the changes that meet `condition`, in the order written.
    fn membership_events(
        &self,
        condition: &str,
        params: &[Val],
        each: &mut dyn FnMut(LoggedEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut pooled = self.conn()?;
        pooled.conn().for_each_row(
            &format!(
                "SELECT {CHANGE_COLUMNS} WHERE c.first_fill = 0 AND {condition} ORDER BY c.id"
            ),
            params,
            &mut |row| {
                let (_, change) = change_from(&row)?;
                change.as_event().map_or(Ok(()), &mut *each)
            },
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
    pub fn log_heads(&self) -> Result<DecidePosition, StoreError> {
        let mut pooled = self.conn()?;
        let conn = pooled.conn();
        let head = |conn: &mut dyn Conn, sql: &str| -> Result<i64, StoreError> {
            Ok(conn
                .query_one(sql, &[])?
                .and_then(|r| r[0].int())
                .unwrap_or(0))
        };
        Ok(DecidePosition {
            event_seq: head(conn, "SELECT COALESCE(MAX(seq), 0) FROM events")?,
            log_id: head(conn, "SELECT COALESCE(MAX(id), 0) FROM identity_log")?,
        })
    }

    /// The position saved by the last decide step (zero before the first).
    pub fn decide_position(&self) -> Result<DecidePosition, StoreError> {
        let row = self.conn()?.conn().query_one(
            "SELECT event_seq, log_id FROM decide_position WHERE id = 1",
            &[],
        )?;
        match row.as_deref().map(|r| (r[0].int(), r[1].int())) {
            Some((Some(event_seq), Some(log_id))) => Ok(DecidePosition { event_seq, log_id }),
            Some(_) => Err(StoreError::Corrupt("decide position".into())),
            None => Ok(DecidePosition::default()),
        }
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

    /// Streams every membership change as `(segment_id, profile_id, entered)` in the order
    /// they happened; folding them (the last change of a pair wins) gives the current
    /// members.
    pub fn for_each_membership_change(
        &self,
        each: &mut dyn FnMut(i64, ProfileId, bool),
    ) -> Result<(), StoreError> {
        let mut pooled = self.conn()?;
        pooled.conn().for_each_row(
            "SELECT segment_id, profile_id, entered FROM membership_changes ORDER BY id",
            &[],
            &mut |row| match (row[0].int(), row[1].int(), row[2].int()) {
                (Some(segment), Some(profile), Some(entered)) => {
                    each(segment, profile, entered != 0);
                    Ok(())
                }
                _ => Err(StoreError::Corrupt("membership change row".into())),
            },
        )
    }

    /// Every current membership as `(segment_id, profile_id)`.
    pub fn current_memberships(&self) -> Result<Vec<(i64, ProfileId)>, StoreError> {
        let mut current = std::collections::HashSet::new();
        self.for_each_membership_change(&mut |segment, profile, entered| {
            if entered {
                current.insert((segment, profile));
            } else {
                current.remove(&(segment, profile));
            }
        })?;
        Ok(current.into_iter().collect())
    }

    /// Writes one decide step: membership changes, the outbox rows, sizes and the read
    /// position, all in one transaction. The engine that writes is the only one (the
    /// decider lease) and rebuilds from the store after any failed write, so a step is
    /// never written twice.
    ///
    /// A write that owes no deliveries is not synced on its own ([`Commit::Deferred`]):
    /// a power failure can only take back a suffix of such writes, which `Engine::open`
    /// derives again from the events and writes with their webhooks. A write with
    /// deliveries is synced, and with it every write before it, so the dispatcher never
    /// sends what a power failure could take back (a receiver told of an entry that the
    /// store then forgot would never be told of the exit). At 10,000 events/s most of the
    /// decider's commits owe nothing and their syncs competed with ingestion's for the
    /// disk (BENCHMARKS.md, "Audiences").
    pub fn write_decisions(&self, step: &DecideWrite<'_>) -> Result<(), StoreError> {
        let commit = if step.owed.is_none() {
            Commit::Deferred
        } else {
            Commit::Durable
        };
        self.write_transaction_with(WriteDomain::Decisions, commit, |conn| {
            let now = self.now_ms();
            for change in step.changes {
                conn.execute(
                    "INSERT INTO membership_changes (segment_id, profile_id, entered, at, first_fill)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        Val::Int(change.segment_id),
                        Val::Int(change.profile_id),
                        Val::Int(change.entered.into()),
                        Val::Int(change.at),
                        Val::Int(change.first_fill.into()),
                    ],
                )?;
            }
            if let Some(owed) = step.owed {
                owed(conn, now)?;
            }
            let hour = now - now.rem_euclid(3_600_000);
            for &(segment, size) in step.sizes {
                conn.execute(
                    "INSERT INTO segment_sizes (segment_id, hour, size) VALUES ($1, $2, $3)
                     ON CONFLICT (segment_id, hour) DO UPDATE SET size = excluded.size",
                    &[Val::Int(segment), Val::Int(hour), Val::Int(size as i64)],
                )?;
            }
            if let Some(position) = step.position {
                conn.execute(
                    "INSERT INTO decide_position (id, event_seq, log_id) VALUES (1, $1, $2)
                     ON CONFLICT (id) DO UPDATE SET event_seq = excluded.event_seq, log_id = excluded.log_id",
                    &[Val::Int(position.event_seq), Val::Int(position.log_id)],
                )?;
            }
            Ok(())
        })
    }

    /// Current members of a segment in the order they entered, from after the entry at
    /// log position `after` (see [`MemberRecord::position`]).
    pub fn segment_members(
        &self,
        segment_id: i64,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<MemberRecord>, StoreError> {
        // An entry is current when no later change of the same pair follows it.
        let rows = self.conn()?.conn().query(
            "SELECT c.id, c.profile_id, c.at FROM membership_changes c
             WHERE c.segment_id = $1 AND c.entered = 1 AND c.id > $2
               AND NOT EXISTS (SELECT 1 FROM membership_changes x
                               WHERE x.profile_id = c.profile_id AND x.segment_id = c.segment_id AND x.id > c.id)
             ORDER BY c.id LIMIT $3",
            &[
                Val::Int(segment_id),
                Val::Int(after.unwrap_or(i64::MIN)),
                Val::Int(limit as i64),
            ],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(MemberRecord {
                    position: r[0].int()?,
                    profile_id: r[1].int()?,
                    entered_at: r[2].int()?,
                })
            })
            .collect())
    }

    /// Entries of a segment with their exit if any, newest first, before log position
    /// `before`; the second value is where the next page starts.
    pub fn segment_history(
        &self,
        segment_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<MembershipRecord>, Option<i64>), StoreError> {
        let rows = self.conn()?.conn().query(
            "SELECT c.id, c.segment_id, s.slug, s.name, c.profile_id, c.at,
                    (SELECT x.at FROM membership_changes x
                     WHERE x.profile_id = c.profile_id AND x.segment_id = c.segment_id AND x.id > c.id
                     ORDER BY x.id LIMIT 1)
             FROM membership_changes c JOIN segments s ON s.id = c.segment_id
             WHERE c.segment_id = $1 AND c.entered = 1 AND c.id < $2 ORDER BY c.id DESC LIMIT $3",
            &[
                Val::Int(segment_id),
                Val::Int(before.unwrap_or(i64::MAX)),
                Val::Int(limit as i64 + 1),
            ],
        )?;
        let mut records: Vec<(i64, MembershipRecord)> =
            rows.iter().filter_map(|r| membership_from(r)).collect();
        let next = (records.len() > limit).then(|| {
            records.truncate(limit);
            records.last().map(|(id, _)| *id)
        });
        Ok((
            records.into_iter().map(|(_, r)| r).collect(),
            next.flatten(),
        ))
    }

    /// A profile's memberships, current and past, newest entry first.
    pub fn memberships_of(&self, profile: ProfileId) -> Result<Vec<MembershipRecord>, StoreError> {
        let rows = self.conn()?.conn().query(
            "SELECT c.id, c.segment_id, s.slug, s.name, c.profile_id, c.entered, c.at
             FROM membership_changes c JOIN segments s ON s.id = c.segment_id
             WHERE c.profile_id = $1 ORDER BY c.segment_id, c.id",
            &[Val::Int(profile)],
        )?;
        // Changes of one segment alternate: an entry opens an interval, an exit closes it.
        let mut intervals: Vec<(i64, MembershipRecord)> = Vec::new();
        for r in &rows {
            let (Some(id), Some(segment_id), Some(slug), Some(name), Some(entered), Some(at)) = (
                r[0].int(),
                r[1].int(),
                r[2].text(),
                r[3].text(),
                r[5].int(),
                r[6].int(),
            ) else {
                return Err(StoreError::Corrupt("membership change row".into()));
            };
            if entered != 0 {
                intervals.push((
                    id,
                    MembershipRecord {
                        segment_id,
                        slug: slug.to_owned(),
                        name: name.to_owned(),
                        profile_id: profile,
                        entered_at: at,
                        exited_at: None,
                    },
                ));
            } else if let Some((_, open)) = intervals
                .last_mut()
                .filter(|(_, m)| m.segment_id == segment_id && m.exited_at.is_none())
            {
                open.exited_at = Some(at);
            }
        }
        intervals.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
        Ok(intervals.into_iter().map(|(_, m)| m).collect())
    }

    /// Size over time: `(hour start ms, size at the end of that hour's last change)`.
    pub fn segment_sizes(&self, segment_id: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        self.segment_sizes_since(segment_id, i64::MIN)
    }

    /// As [`Store::segment_sizes`] from `since` on, with the last change before `since`
    /// (the size in force when the period starts) first.
    pub fn segment_sizes_since(
        &self,
        segment_id: i64,
        since: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = self.conn()?.conn().query(
            "SELECT hour, size FROM segment_sizes WHERE segment_id = $1
             AND hour >= (SELECT COALESCE(MAX(hour), $2) FROM segment_sizes WHERE segment_id = $1 AND hour <= $2)
             ORDER BY hour",
            &[Val::Int(segment_id), Val::Int(since)],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r[0].int()?, r[1].int()?.max(0) as u64)))
            .collect())
    }
}

fn membership_from(r: &[Val]) -> Option<(i64, MembershipRecord)> {
    Some((
        r[0].int()?,
        MembershipRecord {
            segment_id: r[1].int()?,
            slug: r[2].text()?.to_owned(),
            name: r[3].text()?.to_owned(),
            profile_id: r[4].int()?,
            entered_at: r[5].int()?,
            exited_at: r[6].int(),
        },
    ))
}
