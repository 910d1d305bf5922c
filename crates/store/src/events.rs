//! The event log seam: where events are appended and read back. The store reaches events
//! only through [`EventLog`]; today's SQL tables implement it ([`SqlEventLog`]), and a
//! faster engine for retail volumes plugs in here without the rest of the platform
//! noticing.
//!
//! Every method is given the store connection it runs on. [`SqlEventLog`] uses it for
//! everything, so an append commits in the same transaction as the identities it was
//! resolved to. An engine that keeps events elsewhere reads profiles' roots through it,
//! and must make an append durable before that transaction commits (ingestion
//! acknowledges only after the commit) and idempotent on `(source, message id)`, so
//! that a batch retried after a crash between the two is stored once.

use std::collections::HashMap;

use prossimo_identity::ProfileId;
use prossimo_model::{Channel, ORDER_CANCELLED, ORDER_COMPLETED, ORDER_REFUNDED};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::StoreError;
use crate::analytics::Touchpoint;
use crate::log::{EventScan, LoggedEvent};
use crate::read::EventQuery;
use crate::sql::{Conn, ROWS_PER_STATEMENT, Val, placeholders};
use crate::timeline::{Bound, EntryKind, PageSql, TimelineEntry};

/// An event to append: a message resolved to its profile's root.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewEvent<'a> {
    pub source_id: i64,
    pub message_id: &'a str,
    pub profile_id: ProfileId,
    /// The message type (`track`, `identify`, …).
    pub kind: &'a str,
    pub event: Option<&'a str>,
    pub channel: &'a str,
    pub ts: i64,
    pub received_at: i64,
    /// A completed order's amount and currency, as sent.
    pub revenue: Option<f64>,
    pub currency: Option<&'a str>,
    /// The message as received (JSON).
    pub body: &'a str,
}

/// Where events are appended and read back; events read are attributed to the root of
/// their profile now (after any merge since they arrived).
pub trait EventLog: Send + Sync {
    /// Of `message_ids`, those stored for `source_id`, once per stored copy (never more
    /// than one: an append skips what is stored).
    fn stored(
        &self,
        conn: &mut dyn Conn,
        source_id: i64,
        message_ids: &[&str],
    ) -> Result<Vec<String>, StoreError>;

    /// Appends events none of which is stored yet (the caller asked [`EventLog::stored`]
    /// under the same write lock), in order: their sequence numbers follow the log's head.
    fn append(&self, conn: &mut dyn Conn, events: &[NewEvent<'_>]) -> Result<(), StoreError>;

    /// The sequence number of the last event appended (0 when none).
    fn head(&self, conn: &mut dyn Conn) -> Result<i64, StoreError>;

    fn count(&self, conn: &mut dyn Conn) -> Result<u64, StoreError>;

    /// Up to `limit` events after sequence number `after`, in commit order.
    fn tail(
        &self,
        conn: &mut dyn Conn,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError>;

    /// Streams the events `scan` selects (by name, channel and time, up to a sequence
    /// number), in sequence order.
    fn scan(
        &self,
        conn: &mut dyn Conn,
        scan: &EventScan<'_>,
        each: &mut dyn FnMut(LoggedEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Every event of a root profile and the profiles merged into it, oldest first.
    fn of_profile(
        &self,
        conn: &mut dyn Conn,
        root: ProfileId,
    ) -> Result<Vec<LoggedEvent>, StoreError>;

    /// A page of these profiles' events for the timeline: up to `limit` that `query`
    /// selects within `bound`, newest first (time, then sequence number, descending),
    /// each with its message body.
    fn page(
        &self,
        conn: &mut dyn Conn,
        profiles: &[ProfileId],
        query: &EventQuery,
        bound: Option<Bound>,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, StoreError>;

    /// How many events these profiles have, by type, event name and channel.
    fn counts(
        &self,
        conn: &mut dyn Conn,
        profiles: &[ProfileId],
    ) -> Result<Vec<(EntryKind, u64)>, StoreError>;

    /// Streams every event as a touchpoint (root profile, time, channel, whether it is an
    /// order event), in no particular order: what the analyses read of all events.
    fn touchpoints(
        &self,
        conn: &mut dyn Conn,
        each: &mut dyn FnMut(Touchpoint),
    ) -> Result<(), StoreError>;
}

/// The event log in the `events` table, on SQLite or PostgreSQL.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlEventLog;

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

impl SqlEventLog {
    fn logged_events(
        conn: &mut dyn Conn,
        sql: &str,
        params: &[Val],
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let mut events = Vec::new();
        conn.for_each_row(sql, params, &mut |row| {
            events.push(logged_event(row)?);
            Ok(())
        })?;
        Ok(events)
    }
}

impl EventLog for SqlEventLog {
    fn stored(
        &self,
        conn: &mut dyn Conn,
        source_id: i64,
        message_ids: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        let mut stored = Vec::new();
        for chunk in message_ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT message_id FROM events WHERE source_id = $1 AND message_id IN ({})",
                placeholders(chunk.len(), 2)
            );
            let mut params = vec![Val::Int(source_id)];
            params.extend(chunk.iter().map(|&id| Val::from(id)));
            for row in conn.query(&sql, &params)? {
                if let Some(id) = row.into_iter().next().and_then(Val::into_text) {
                    stored.push(id);
                }
            }
        }
        Ok(stored)
    }

    fn append(&self, conn: &mut dyn Conn, events: &[NewEvent<'_>]) -> Result<(), StoreError> {
        let mut params = Vec::with_capacity(events.len() * 11);
        for e in events {
            params.extend([
                Val::Int(e.source_id),
                Val::from(e.message_id),
                Val::Int(e.profile_id),
                Val::from(e.kind),
                Val::from(e.event),
                Val::from(e.channel),
                Val::Int(e.ts),
                Val::Int(e.received_at),
                e.revenue.into(),
                e.currency.into(),
                Val::from(e.body),
            ]);
        }
        conn.insert_rows(
            "INSERT INTO events (source_id, message_id, profile_id, type, event, channel, ts, received_at, revenue, currency, body)",
            11,
            &params,
            "",
        )
    }

    fn head(&self, conn: &mut dyn Conn) -> Result<i64, StoreError> {
        Ok(conn
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM events", &[])?
            .and_then(|r| r[0].int())
            .unwrap_or(0))
    }

    fn count(&self, conn: &mut dyn Conn) -> Result<u64, StoreError> {
        Ok(conn
            .query_one("SELECT COUNT(*) FROM events", &[])?
            .and_then(|r| r[0].int())
            .unwrap_or(0)
            .max(0) as u64)
    }

    fn tail(
        &self,
        conn: &mut dyn Conn,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        Self::logged_events(
            conn,
            &format!("SELECT {EVENT_COLUMNS} WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"),
            &[Val::Int(after), Val::Int(limit as i64)],
        )
    }

    fn scan(
        &self,
        conn: &mut dyn Conn,
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
        conn.for_each_row(
            &format!("SELECT {columns} WHERE e.seq <= $1{filter} ORDER BY e.seq"),
            &params,
            &mut |row| each(logged_event(row)?),
        )
    }

    fn of_profile(
        &self,
        conn: &mut dyn Conn,
        root: ProfileId,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        Self::logged_events(
            conn,
            &format!(
                "SELECT {EVENT_COLUMNS} WHERE (p.id = $1 OR p.merged_into = $1) ORDER BY e.seq"
            ),
            &[Val::Int(root)],
        )
    }

    fn page(
        &self,
        conn: &mut dyn Conn,
        profiles: &[ProfileId],
        query: &EventQuery,
        bound: Option<Bound>,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        let mut page = PageSql::new("SELECT seq, ts, body FROM events", "profile_id", profiles);
        if let Some(kind) = &query.kind {
            page.and("type", "=", kind.as_str().into());
        }
        if let Some(event) = &query.event {
            page.and("event", "=", event.as_str().into());
        }
        if let Some(channel) = &query.channel {
            page.and("channel", "=", channel.as_str().into());
        }
        page.window(query, "ts");
        let rows = page.run(conn, bound, "ts", "seq", limit)?;
        rows.into_iter()
            .map(|row| {
                let (Some(seq), Some(ts), Some(body)) = (row[0].int(), row[1].int(), row[2].text())
                else {
                    return Err(StoreError::Corrupt("event row without body".into()));
                };
                Ok(TimelineEntry {
                    ts,
                    position: seq,
                    body: serde_json::from_str(body)?,
                })
            })
            .collect()
    }

    /// Counted here rather than by a `GROUP BY`: SQLite's grouping sorts the 100,000 rows
    /// of a long timeline into a temporary B-tree, which took 68 ms of a 100 ms read in a
    /// measurement; streaming the three columns into a hash map takes 40.
    fn counts(
        &self,
        conn: &mut dyn Conn,
        profiles: &[ProfileId],
    ) -> Result<Vec<(EntryKind, u64)>, StoreError> {
        let sql = format!(
            "SELECT type, event, channel FROM events WHERE profile_id IN ({})",
            placeholders(profiles.len(), 1)
        );
        let params: Vec<Val> = profiles.iter().map(|&i| Val::Int(i)).collect();
        let mut groups: HashMap<EntryKind, u64> = HashMap::new();
        conn.for_each_row(&sql, &params, &mut |row| {
            let mut row = row.into_iter();
            let (Some(kind), Some(event), Some(channel)) = (row.next(), row.next(), row.next())
            else {
                return Err(StoreError::Corrupt(
                    "event row without type or channel".into(),
                ));
            };
            let (Some(kind), Some(channel)) = (kind.into_text(), channel.into_text()) else {
                return Err(StoreError::Corrupt(
                    "event row without type or channel".into(),
                ));
            };
            let key = EntryKind {
                kind,
                event: event.into_text(),
                channel,
            };
            *groups.entry(key).or_insert(0) += 1;
            Ok(())
        })?;
        Ok(groups.into_iter().collect())
    }

    fn touchpoints(
        &self,
        conn: &mut dyn Conn,
        each: &mut dyn FnMut(Touchpoint),
    ) -> Result<(), StoreError> {
        conn.for_each_row(
            "SELECT COALESCE(p.merged_into, e.profile_id), e.ts, e.channel,
                    CASE WHEN e.type = 'track' AND e.event IN ($1, $2, $3) THEN 1 ELSE 0 END
             FROM events e JOIN profiles p ON p.id = e.profile_id
             WHERE e.source_id NOT IN (SELECT id FROM sources WHERE name = $4)",
            &[
                Val::from(ORDER_COMPLETED),
                Val::from(ORDER_REFUNDED),
                Val::from(ORDER_CANCELLED),
                // What the platform did (a message sent) is not something the customer did.
                Val::from(crate::platform::PLATFORM_SOURCE),
            ],
            &mut |row| {
                let channel = row[2].text().and_then(|c| c.parse::<Channel>().ok());
                match (row[0].int(), row[1].int(), channel, row[3].int()) {
                    (Some(profile_id), Some(ts), Some(channel), Some(order)) => {
                        each(Touchpoint {
                            profile_id,
                            ts,
                            channel,
                            is_order_event: order == 1,
                        });
                        Ok(())
                    }
                    _ => Err(StoreError::Corrupt(format!("event row {row:?}"))),
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;
    use crate::testsuite::{Fixture, incoming};
    use crate::{EventScan, ProfileKey};

    /// An event log that keeps its events in the SQL tables and counts what it is asked.
    #[derive(Default)]
    struct Counting {
        appended: AtomicUsize,
        read: AtomicUsize,
    }

    impl Counting {
        fn read(&self) {
            self.read.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl EventLog for Counting {
        fn stored(
            &self,
            conn: &mut dyn Conn,
            source_id: i64,
            message_ids: &[&str],
        ) -> Result<Vec<String>, StoreError> {
            self.read();
            SqlEventLog.stored(conn, source_id, message_ids)
        }
        fn append(&self, conn: &mut dyn Conn, events: &[NewEvent<'_>]) -> Result<(), StoreError> {
            self.appended.fetch_add(events.len(), Ordering::Relaxed);
            SqlEventLog.append(conn, events)
        }
        fn head(&self, conn: &mut dyn Conn) -> Result<i64, StoreError> {
            self.read();
            SqlEventLog.head(conn)
        }
        fn count(&self, conn: &mut dyn Conn) -> Result<u64, StoreError> {
            self.read();
            SqlEventLog.count(conn)
        }
        fn tail(
            &self,
            conn: &mut dyn Conn,
            after: i64,
            limit: usize,
        ) -> Result<Vec<LoggedEvent>, StoreError> {
            self.read();
            SqlEventLog.tail(conn, after, limit)
        }
        fn scan(
            &self,
            conn: &mut dyn Conn,
            scan: &EventScan<'_>,
            each: &mut dyn FnMut(LoggedEvent) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            self.read();
            SqlEventLog.scan(conn, scan, each)
        }
        fn of_profile(
            &self,
            conn: &mut dyn Conn,
            root: ProfileId,
        ) -> Result<Vec<LoggedEvent>, StoreError> {
            self.read();
            SqlEventLog.of_profile(conn, root)
        }
        fn page(
            &self,
            conn: &mut dyn Conn,
            profiles: &[ProfileId],
            query: &EventQuery,
            bound: Option<Bound>,
            limit: usize,
        ) -> Result<Vec<TimelineEntry>, StoreError> {
            self.read();
            SqlEventLog.page(conn, profiles, query, bound, limit)
        }
        fn counts(
            &self,
            conn: &mut dyn Conn,
            profiles: &[ProfileId],
        ) -> Result<Vec<(EntryKind, u64)>, StoreError> {
            self.read();
            SqlEventLog.counts(conn, profiles)
        }
        fn touchpoints(
            &self,
            conn: &mut dyn Conn,
            each: &mut dyn FnMut(Touchpoint),
        ) -> Result<(), StoreError> {
            self.read();
            SqlEventLog.touchpoints(conn, each)
        }
    }

    /// Every way the store reaches events goes through the event log it was given: an
    /// engine plugged in there sees every append and every read.
    #[test]
    fn the_store_reaches_events_only_through_its_event_log() {
        let log = Arc::new(Counting::default());
        let fixture = Fixture::sqlite();
        let store = fixture
            .second_node()
            .with_event_log(Arc::clone(&log) as Arc<dyn EventLog>);
        let source = store.bootstrap(None, None).unwrap().source;
        let sent = vec![
            json!({"type": "track", "userId": "u1", "messageId": "m1", "event": "Viewed"}),
            json!({"type": "track", "userId": "u1", "messageId": "m2", "event": "Viewed"}),
        ];
        store
            .ingest(&incoming(&store, source.id, sent.clone()))
            .unwrap();
        store.ingest(&incoming(&store, source.id, sent)).unwrap();
        assert_eq!(
            log.appended.load(Ordering::Relaxed),
            2,
            "duplicates skipped"
        );

        let reads = || log.read.load(Ordering::Relaxed);
        let key = ProfileKey::parse("user_id:u1", store.identity()).unwrap();
        let root = store.resolve_profile(&key).unwrap().unwrap();
        let mut seen = Vec::new();
        let mut before = reads();
        let mut counted = |what: &str, n: usize| {
            assert!(reads() > before, "{what} did not read the event log");
            before = reads();
            seen.push((what.to_owned(), n));
        };
        let page = store
            .timeline(
                &key,
                &EventQuery {
                    limit: 10,
                    ..EventQuery::default()
                },
                &[],
            )
            .unwrap()
            .unwrap();
        counted("timeline", page.events.len());
        let profile = store.profile(&key, &[]).unwrap().unwrap();
        counted("profile counts", profile.event_count as usize);
        counted("tail", store.events_after(0).unwrap().len());
        counted("profile events", store.events_of(root).unwrap().len());
        let mut scanned = 0;
        let scan = EventScan {
            until_seq: i64::MAX,
            ..EventScan::default()
        };
        store
            .scan_events(&scan, &mut |_| {
                scanned += 1;
                Ok(())
            })
            .unwrap();
        counted("scan", scanned);
        let mut touchpoints = 0;
        store
            .for_each_touchpoint(&mut |_| touchpoints += 1)
            .unwrap();
        counted("touchpoints", touchpoints);
        counted("count", store.event_count().unwrap() as usize);
        counted("heads", store.log_heads().unwrap().event_seq as usize);
        assert!(seen.iter().all(|(_, n)| *n == 2), "{seen:?}");
    }
}
