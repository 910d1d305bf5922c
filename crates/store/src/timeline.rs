//! A customer's timeline, assembled in one place: the events the customer's touchpoints
//! sent, and what features add to it ([`TimelineSource`]: membership changes and journey
//! steps today, messages later), merged newest first.
//!
//! Entries are ordered by time; at the same instant stored events come first, then each
//! source in the order given; within one source by its own position, descending. A page's
//! cursor names the last entry shown (`ts.seq` after a stored event, the format pages have
//! always had; `ts.<tag><position>` after a source's entry), so each source can be asked
//! only for what comes after it.

use prossimo_identity::ProfileId;
use serde_json::Value;

use crate::read::{EventPage, EventQuery, ProfileKey, members, resolve};
use crate::sql::{Conn, Val};
use crate::{Store, StoreError};

/// Something a feature shows on customers' timelines.
pub trait TimelineSource: Send + Sync {
    /// The letters that mark this source's positions in cursors (`ts.<tag><position>`):
    /// lower-case ASCII, unique among sources, never changed once pages were served.
    fn tag(&self) -> &'static str;

    /// Up to `limit` entries of these profiles (a root and those merged into it) that
    /// `query` selects (type, event, channel, time) and `bound` leaves, newest first
    /// (time, then position, descending).
    fn page(
        &self,
        conn: &mut dyn Conn,
        profiles: &[ProfileId],
        query: &EventQuery,
        bound: Option<Bound>,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, StoreError>;

    /// How many entries these profiles have, by type, event name and channel.
    fn counts(
        &self,
        conn: &mut dyn Conn,
        profiles: &[ProfileId],
    ) -> Result<Vec<(EntryKind, u64)>, StoreError>;
}

/// One entry of a timeline: when, where in its source, and the message body shown.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub ts: i64,
    pub position: i64,
    pub body: Value,
}

/// What an entry counts as in a profile's totals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKind {
    pub kind: String,
    pub event: Option<String>,
    pub channel: String,
}

/// Which of a source's entries a page may still show after the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The cursor is this source's entry: entries before `(ts, position)`.
    Below { ts: i64, position: i64 },
    /// The cursor is an entry ordered before this source's at the same instant.
    AtOrBefore(i64),
    /// The cursor is an entry ordered after this source's at the same instant.
    Before(i64),
}

impl Bound {
    /// Adds `AND` the condition to `sql` for a table whose entries have these time and
    /// position columns, with its parameters numbered after `params`.
    pub fn restrict(&self, sql: &mut String, params: &mut Vec<Val>, time: &str, position: &str) {
        match *self {
            Bound::Below { ts, position: at } => {
                params.extend([Val::Int(ts), Val::Int(at)]);
                let (t, p) = (params.len() - 1, params.len());
                sql.push_str(&format!(
                    " AND ({time} < ${t} OR ({time} = ${t} AND {position} < ${p}))"
                ));
            }
            Bound::AtOrBefore(ts) => {
                params.push(Val::Int(ts));
                sql.push_str(&format!(" AND {time} <= ${}", params.len()));
            }
            Bound::Before(ts) => {
                params.push(Val::Int(ts));
                sql.push_str(&format!(" AND {time} < ${}", params.len()));
            }
        }
    }
}

/// The SQL of one source's page, built up the way every source builds it: the rows of
/// these profiles, the source's own conditions, the query's time window, then the page's
/// bound, newest first, at most a page.
pub struct PageSql {
    sql: String,
    params: Vec<Val>,
}

impl PageSql {
    /// `select` (`SELECT … FROM …`) restricted to rows whose `profile` column is one of
    /// `profiles`.
    pub fn new(select: &str, profile: &str, profiles: &[ProfileId]) -> PageSql {
        PageSql {
            sql: format!(
                "{select} WHERE {profile} IN ({})",
                crate::sql::placeholders(profiles.len(), 1)
            ),
            params: profiles.iter().map(|&p| Val::Int(p)).collect(),
        }
    }

    /// Adds `AND {condition}`, written out (no parameter).
    pub fn and_sql(&mut self, condition: &str) -> &mut PageSql {
        self.sql.push_str(&format!(" AND {condition}"));
        self
    }

    /// Adds `AND {column} {op} value`.
    pub fn and(&mut self, column: &str, op: &str, value: Val) -> &mut PageSql {
        self.params.push(value);
        self.sql
            .push_str(&format!(" AND {column} {op} ${}", self.params.len()));
        self
    }

    /// Keeps the rows from the query's `since` to before its `until`, by the `time` column.
    pub fn window(&mut self, query: &EventQuery, time: &str) -> &mut PageSql {
        if let Some(since) = query.since {
            self.and(time, ">=", Val::Int(since));
        }
        if let Some(until) = query.until {
            self.and(time, "<", Val::Int(until));
        }
        self
    }

    /// Runs it: the rows `bound` leaves, newest first by `time` then `position`, at most
    /// `limit`.
    pub fn run(
        mut self,
        conn: &mut dyn Conn,
        bound: Option<Bound>,
        time: &str,
        position: &str,
        limit: usize,
    ) -> Result<Vec<crate::sql::Row>, StoreError> {
        if let Some(bound) = bound {
            bound.restrict(&mut self.sql, &mut self.params, time, position);
        }
        self.params
            .push(Val::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        self.sql.push_str(&format!(
            " ORDER BY {time} DESC, {position} DESC LIMIT ${}",
            self.params.len()
        ));
        conn.query(&self.sql, &self.params)
    }
}

/// Where a page stopped: the time, which source (0: the stored events, `n`: the `n`th
/// source) and the position in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    ts: i64,
    rank: usize,
    position: i64,
}

impl Cursor {
    fn format(&self, sources: &[&dyn TimelineSource]) -> String {
        let tag = match self.rank {
            0 => "",
            n => sources[n - 1].tag(),
        };
        format!("{}.{tag}{}", self.ts, self.position)
    }

    fn parse(cursor: &str, sources: &[&dyn TimelineSource]) -> Result<Cursor, StoreError> {
        let parsed = cursor.split_once('.').and_then(|(ts, rest)| {
            let digits = rest.trim_start_matches(|c: char| c.is_ascii_alphabetic());
            let tag = &rest[..rest.len() - digits.len()];
            let rank = match tag {
                "" => 0,
                tag => 1 + sources.iter().position(|s| s.tag() == tag)?,
            };
            Some(Cursor {
                ts: ts.parse().ok()?,
                rank,
                position: digits.parse().ok()?,
            })
        });
        parsed.ok_or_else(|| {
            StoreError::Invalid(format!("cursor {cursor:?} is not one this server issued"))
        })
    }

    /// What the source of this rank may still show after the cursor.
    fn bound_for(&self, rank: usize) -> Bound {
        match rank.cmp(&self.rank) {
            std::cmp::Ordering::Equal => Bound::Below {
                ts: self.ts,
                position: self.position,
            },
            std::cmp::Ordering::Greater => Bound::AtOrBefore(self.ts),
            std::cmp::Ordering::Less => Bound::Before(self.ts),
        }
    }
}

impl Store {
    /// A page of a profile's timeline, newest first: its stored events and the entries of
    /// `sources`, merged by time. `None` when the profile does not exist.
    pub fn timeline(
        &self,
        key: &ProfileKey,
        query: &EventQuery,
        sources: &[&dyn TimelineSource],
    ) -> Result<Option<EventPage>, StoreError> {
        let mut pooled = self.conn()?;
        let conn = pooled.conn();
        let Some(root) = resolve(conn, key)? else {
            return Ok(None);
        };
        let ids = members(conn, root)?;
        let cursor = query
            .cursor
            .as_deref()
            .map(|c| Cursor::parse(c, sources))
            .transpose()?;
        let limit = query.limit.clamp(1, 1000);
        let bound = |rank| cursor.map(|c| c.bound_for(rank));
        let mut entries: Vec<(usize, TimelineEntry)> = self
            .events
            .page(conn, &ids, query, bound(0), limit + 1)?
            .into_iter()
            .map(|e| (0, e))
            .collect();
        for (i, source) in sources.iter().enumerate() {
            let rank = i + 1;
            let page = source.page(conn, &ids, query, bound(rank), limit + 1)?;
            entries.extend(page.into_iter().map(|e| (rank, e)));
        }
        entries.sort_by_key(|(rank, e)| {
            (
                std::cmp::Reverse(e.ts),
                *rank,
                std::cmp::Reverse(e.position),
            )
        });
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_cursor = more
            .then(|| {
                entries.last().map(|(rank, e)| {
                    Cursor {
                        ts: e.ts,
                        rank: *rank,
                        position: e.position,
                    }
                    .format(sources)
                })
            })
            .flatten();
        let events = entries
            .into_iter()
            .map(|(_, entry)| {
                let mut body = entry.body;
                // The profile the entry belongs to now, after any merge since it arrived.
                if let Value::Object(map) = &mut body {
                    map.insert("profileId".into(), Value::from(root));
                }
                body
            })
            .collect();
        Ok(Some(EventPage {
            events,
            next_cursor,
        }))
    }
}
