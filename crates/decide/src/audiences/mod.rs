//! Audiences: saved segments and their membership log, with the tables, migrations and
//! queries of their own (`migrations/`), the one way to save or delete one
//! ([`save_audience`], [`delete_audience`]) and what they show on customers' timelines
//! ([`MembershipTimeline`]).
//!
//! Memberships are stored as a log of changes (`membership_changes`), one row per entry or
//! exit: a decide step only appends. Current members, a profile's intervals, a segment's
//! history and the `Segment Entered` / `Segment Exited` events on the timeline are all read
//! from that log.

mod service;
mod timeline;

use prossimo_bus::MembershipChange;
use prossimo_identity::ProfileId;
use prossimo_segments::Language;
use prossimo_store::sql::{Commit, Conn, Row, Val};
use prossimo_store::{
    LogPosition, MAX_DEFINITION_BYTES, MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES, Store, StoreError,
    WriteDomain, bounded,
};
use serde::{Deserialize, Serialize};

pub use service::{AudienceError, delete_audience, save_audience};
pub use timeline::{MembershipTimeline, SEGMENT_ENTERED, SEGMENT_EXITED, membership_event};

prossimo_store::feature_schema! {
    /// Segments, the membership log, segment sizes and the decider's read position; in the
    /// decisions file on SQLite, with the outbox their changes write to.
    pub const SCHEMA = ("audiences", WriteDomain::Decisions);
}

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

/// What a user saves; [`save_audience`] checks the definition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SegmentInput {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub definition: String,
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
    /// How far the step read the event and identity logs.
    pub position: Option<LogPosition>,
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

/// A slug names a segment in URLs and in `segment "slug"`: the one rule,
/// [`prossimo_segments::check_slug`].
pub fn check_slug(slug: &str) -> Result<(), StoreError> {
    prossimo_segments::check_slug(slug)
        .map_err(|e| StoreError::Invalid(e.get(Language::English).to_owned()))
}

/// The lengths a person may type into a segment's fields.
fn check_segment_input(input: &SegmentInput) -> Result<(), StoreError> {
    bounded("name", &input.name, MAX_NAME_BYTES)?;
    bounded("description", &input.description, MAX_DESCRIPTION_BYTES)?;
    bounded("definition", &input.definition, MAX_DEFINITION_BYTES)
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

/// Columns of a change with its segment's slug, attributed to the root of its profile now
/// (read by [`change_from`]).
const CHANGE_COLUMNS: &str = "c.id, c.segment_id, s.slug, COALESCE(p.merged_into, c.profile_id), c.entered, c.at, c.first_fill
     FROM membership_changes c JOIN segments s ON s.id = c.segment_id JOIN profiles p ON p.id = c.profile_id";

fn change_from(row: &[Val]) -> Result<(i64, MembershipChange), StoreError> {
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

/// The audiences of a store: what is read and written about segments and memberships.
pub struct Audiences<'a> {
    store: &'a Store,
}

impl<'a> Audiences<'a> {
    /// The audiences of `store`, their tables brought up to date first.
    pub fn of(store: &'a Store) -> Result<Audiences<'a>, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(Audiences { store })
    }

    fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        self.store.read(|conn| conn.query(sql, params))
    }

    /// Every segment, by slug.
    pub fn segments(&self) -> Result<Vec<SegmentRecord>, StoreError> {
        self.query(
            &format!("SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY slug"),
            &[],
        )?
        .iter()
        .map(|r| segment_from(r))
        .collect()
    }

    pub fn segment(&self, slug: &str) -> Result<Option<SegmentRecord>, StoreError> {
        self.store.read(|conn| segment_by_slug(conn, slug))
    }

    /// Saves a new segment; [`StoreError::Conflict`] when the slug is taken. The
    /// definition is not checked here: [`save_audience`] does that.
    pub fn create(&self, input: &SegmentInput) -> Result<SegmentRecord, StoreError> {
        check_slug(&input.slug)?;
        check_segment_input(input)?;
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
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
                        Val::Int(self.store.now_ms()),
                    ],
                )?;
                segment_by_slug(conn, &input.slug)?
                    .ok_or_else(|| StoreError::NotFound(format!("segment {:?}", input.slug)))
            })
    }

    /// Replaces a segment's name, description and definition (the slug stays).
    pub fn update(
        &self,
        slug: &str,
        input: &SegmentInput,
    ) -> Result<Option<SegmentRecord>, StoreError> {
        check_segment_input(input)?;
        self.store.write_transaction(WriteDomain::Decisions, |conn| {
            conn.execute(
                "UPDATE segments SET name = $1, description = $2, definition = $3, updated_at = $4 WHERE slug = $5",
                &[
                    Val::from(input.name.as_str()),
                    Val::from(input.description.as_str()),
                    Val::from(input.definition.as_str()),
                    Val::Int(self.store.now_ms()),
                    Val::from(slug),
                ],
            )?;
            segment_by_slug(conn, slug)
        })
    }

    /// Deletes a segment with its memberships and size history; false when there was none.
    pub fn delete(&self, slug: &str) -> Result<bool, StoreError> {
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
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

    /// The position saved by the last decide step (zero before the first).
    pub fn decide_position(&self) -> Result<LogPosition, StoreError> {
        let row = self.store.read(|conn| {
            conn.query_one(
                "SELECT event_seq, log_id FROM decide_position WHERE id = 1",
                &[],
            )
        })?;
        match row.as_deref().map(|r| (r[0].int(), r[1].int())) {
            Some((Some(event_seq), Some(log_id))) => Ok(LogPosition { event_seq, log_id }),
            Some(_) => Err(StoreError::Corrupt("decide position".into())),
            None => Ok(LogPosition::default()),
        }
    }

    /// Writes one decide step: membership changes, what they owe, sizes and the read
    /// position, all in one transaction. The engine that writes is the only one (the
    /// decider lease) and rebuilds from the store after any failed write, so a step is
    /// never written twice.
    ///
    /// A write that owes nothing is not synced on its own ([`Commit::Deferred`]): a power
    /// failure can only take back a suffix of such writes, which `Engine::open` derives
    /// again from the events and writes with their webhooks. A write that owes deliveries
    /// is synced, and with it every write before it, so the dispatcher never sends what a
    /// power failure could take back (a receiver told of an entry that the store then
    /// forgot would never be told of the exit). At 10,000 events/s most of the decider's
    /// commits owe nothing and their syncs competed with ingestion's for the disk
    /// (BENCHMARKS.md, "Audiences").
    pub fn write_decisions(&self, step: &DecideWrite<'_>) -> Result<(), StoreError> {
        let commit = if step.owed.is_none() {
            Commit::Deferred
        } else {
            Commit::Durable
        };
        self.store
            .write_transaction_with(WriteDomain::Decisions, commit, |conn| {
                let now = self.store.now_ms();
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

    /// Streams every membership change as `(segment_id, profile_id, entered)` in the order
    /// they happened; folding them (the last change of a pair wins) gives the current
    /// members.
    pub fn for_each_membership_change(
        &self,
        each: &mut dyn FnMut(i64, ProfileId, bool),
    ) -> Result<(), StoreError> {
        self.store.read(|conn| {
            conn.for_each_row(
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
        })
    }

    /// Up to `limit` membership changes after the one numbered `after`, oldest first, each
    /// with its number and attributed to the root of its profile now (changes of a deleted
    /// segment are left out).
    pub fn changes_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, MembershipChange)>, StoreError> {
        self.store
            .read(|conn| {
                conn.query(
                    &format!("SELECT {CHANGE_COLUMNS} WHERE c.id > $1 ORDER BY c.id LIMIT $2"),
                    &[
                        Val::Int(after),
                        Val::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
                    ],
                )
            })?
            .iter()
            .map(|row| change_from(row))
            .collect()
    }

    /// The number of the latest membership change (0 when none).
    pub fn last_change(&self) -> Result<i64, StoreError> {
        Ok(self
            .store
            .read(|conn| conn.query_one("SELECT MAX(id) FROM membership_changes", &[]))?
            .and_then(|row| row[0].int())
            .unwrap_or(0))
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

    /// Current members of a segment in the order they entered, from after the entry at
    /// log position `after` (see [`MemberRecord::position`]).
    pub fn segment_members(
        &self,
        segment_id: i64,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<MemberRecord>, StoreError> {
        // An entry is current when no later change of the same pair follows it.
        let rows = self.query(
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
        let rows = self.query(
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
        let rows = self.query(
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

    /// As [`Audiences::segment_sizes`] from `since` on, with the last change before
    /// `since` (the size in force when the period starts) first.
    pub fn segment_sizes_since(
        &self,
        segment_id: i64,
        since: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = self.query(
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

    /// The timeline source of these audiences' changes.
    pub fn timeline(&self) -> MembershipTimeline {
        MembershipTimeline::new()
    }
}
