//! Membership changes on customers' timelines, as the platform's own `Segment Entered` /
//! `Segment Exited` track events: shown beside the stored events, counted with them, and
//! matched by segments that count them.

use prossimo_bus::MembershipChange;
use prossimo_identity::ProfileId;
use prossimo_store::sql::{Conn, Val, placeholders};
use prossimo_store::{
    Bound, EntryKind, EventQuery, LoggedEvent, PageSql, StoreError, TimelineEntry, TimelineSource,
};
use serde_json::{Value, json};

use super::{Audiences, CHANGE_COLUMNS, change_from};

/// The event names of membership changes on a profile's timeline.
pub const SEGMENT_ENTERED: &str = "Segment Entered";
pub const SEGMENT_EXITED: &str = "Segment Exited";

/// The timeline event name of an entry (`true`) or an exit.
fn event_name(entered: bool) -> &'static str {
    if entered {
        SEGMENT_ENTERED
    } else {
        SEGMENT_EXITED
    }
}

/// The `Segment Entered` / `Segment Exited` track event the timeline shows for a change,
/// and segments can count (`None` for a new segment's first members).
pub fn membership_event(change: &MembershipChange) -> Option<LoggedEvent> {
    if change.first_fill {
        return None;
    }
    let verb = if change.entered { "entered" } else { "exited" };
    Some(LoggedEvent {
        seq: 0,
        source_id: 0,
        message_id: format!(
            "segment-{verb}-{}-{}-{}",
            change.segment_id, change.profile_id, change.at
        ),
        profile_id: change.profile_id,
        kind: "track".into(),
        event: Some(event_name(change.entered).into()),
        channel: "other".into(),
        ts: change.at,
        received_at: change.at,
        properties: json!({"segment": change.segment_slug, "segment_id": change.segment_id}),
        trait_keys: Vec::new(),
        platform: true,
    })
}

/// The message body of [`membership_event`], as the timeline API shows it.
fn event_body(change: &MembershipChange) -> Option<Value> {
    let event = membership_event(change)?;
    let timestamp = prossimo_model::format_millis(change.at).unwrap_or_default();
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

/// The changes that meet `condition`, in the order written, as the events they show.
fn membership_events(
    conn: &mut dyn Conn,
    condition: &str,
    params: &[Val],
    each: &mut dyn FnMut(LoggedEvent) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    conn.for_each_row(
        &format!("SELECT {CHANGE_COLUMNS} WHERE c.first_fill = 0 AND {condition} ORDER BY c.id"),
        params,
        &mut |row| {
            let (_, change) = change_from(&row)?;
            membership_event(&change).map_or(Ok(()), &mut *each)
        },
    )
}

impl Audiences<'_> {
    /// Streams the platform's own events ([`membership_event`]) after `since_ts` (ms), in
    /// the order they were written, each attributed to its profile's root now.
    pub fn scan_membership_events(
        &self,
        since_ts: Option<i64>,
        each: &mut dyn FnMut(LoggedEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.store.read(|conn| {
            membership_events(
                conn,
                "c.at > $1",
                &[Val::Int(since_ts.unwrap_or(i64::MIN))],
                each,
            )
        })
    }

    /// The platform's own events of a root profile and the profiles merged into it.
    pub fn membership_events_of(&self, root: ProfileId) -> Result<Vec<LoggedEvent>, StoreError> {
        let mut out = Vec::new();
        self.store.read(|conn| {
            membership_events(
                conn,
                "(p.id = $1 OR p.merged_into = $1)",
                &[Val::Int(root)],
                &mut |event| {
                    out.push(event);
                    Ok(())
                },
            )
        })?;
        Ok(out)
    }
}

/// Membership changes as a [`TimelineSource`]; made by [`Audiences::timeline`], so the
/// tables it reads are there.
pub struct MembershipTimeline {
    _tables_migrated: (),
}

impl MembershipTimeline {
    pub(super) fn new() -> MembershipTimeline {
        MembershipTimeline {
            _tables_migrated: (),
        }
    }
}

impl TimelineSource for MembershipTimeline {
    /// `ts.m<id>`: the format membership entries' cursors have always had.
    fn tag(&self) -> &'static str {
        "m"
    }

    fn page(
        &self,
        conn: &mut dyn Conn,
        profiles: &[ProfileId],
        query: &EventQuery,
        bound: Option<Bound>,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        let entered = match query.event.as_deref() {
            None => None,
            Some(SEGMENT_ENTERED) => Some(1),
            Some(SEGMENT_EXITED) => Some(0),
            Some(_) => return Ok(Vec::new()),
        };
        if query.kind.as_deref().is_some_and(|k| k != "track")
            || query.channel.as_deref().is_some_and(|c| c != "other")
        {
            return Ok(Vec::new());
        }
        let mut page = PageSql::new(
            &format!("SELECT {CHANGE_COLUMNS}"),
            "c.profile_id",
            profiles,
        );
        page.and_sql("c.first_fill = 0");
        if let Some(entered) = entered {
            page.and("c.entered", "=", Val::Int(entered));
        }
        page.window(query, "c.at");
        let mut out = Vec::new();
        for row in page.run(conn, bound, "c.at", "c.id", limit)? {
            let (id, change) = change_from(&row)?;
            if let Some(body) = event_body(&change) {
                out.push(TimelineEntry {
                    ts: change.at,
                    position: id,
                    body,
                });
            }
        }
        Ok(out)
    }

    fn counts(
        &self,
        conn: &mut dyn Conn,
        profiles: &[ProfileId],
    ) -> Result<Vec<(EntryKind, u64)>, StoreError> {
        let sql = format!(
            "SELECT entered, COUNT(*) FROM membership_changes WHERE profile_id IN ({}) AND first_fill = 0 GROUP BY entered",
            placeholders(profiles.len(), 1)
        );
        let params: Vec<Val> = profiles.iter().map(|&i| Val::Int(i)).collect();
        Ok(conn
            .query(&sql, &params)?
            .iter()
            .filter_map(|row| {
                let kind = EntryKind {
                    kind: "track".into(),
                    event: Some(event_name(row[0].int()? != 0).into()),
                    channel: "other".into(),
                };
                Some((kind, row[1].int()?.max(0) as u64))
            })
            .collect())
    }
}
