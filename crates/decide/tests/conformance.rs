//! The audiences' tables on both backends (PostgreSQL when `PROSSIMO_TEST_DATABASE_URL`
//! is set, see `scripts/postgres.sh`): segments, the membership log and what it shows on
//! the timeline, sizes over time.
// Tests: a failing unwrap is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prossimo_bus::MembershipChange;
use prossimo_decide::audiences::{
    Audiences, DecideWrite, SEGMENT_EXITED, SegmentInput, SegmentRecord,
};
use prossimo_store::sql::Val;
use prossimo_store::testsuite::{incoming, key, saved_once_when_raced, whole_timeline};
use prossimo_store::{EventQuery, LogPosition, Store, StoreError, WriteDomain};
use serde_json::{Value, json};

prossimo_store::conformance_cases!(
    segment_sizes_from_a_time_start_with_the_size_then_in_force,
    memberships_are_a_log_of_changes_shown_on_the_timeline,
    a_decide_step_saves_its_read_position,
    slugs_taken_at_the_same_moment_conflict_cleanly,
);

fn segment_sizes_from_a_time_start_with_the_size_then_in_force(store: &Store) {
    let segment = Audiences::of(store)
        .unwrap()
        .create(&SegmentInput {
            slug: "sized".into(),
            name: "Sized".into(),
            description: String::new(),
            definition: "traits.city == \"Torino\"".into(),
        })
        .unwrap();
    let hour = 3_600_000;
    for (h, size) in [(1, 10), (2, 20), (3, 30)] {
        store
            .write_transaction(WriteDomain::Decisions, |conn| {
                conn.execute(
                    "INSERT INTO segment_sizes (segment_id, hour, size) VALUES ($1, $2, $3)",
                    &[Val::Int(segment.id), Val::Int(h * hour), Val::Int(size)],
                )
            })
            .unwrap();
    }
    let audiences = Audiences::of(store).unwrap();
    let since = |t: i64| audiences.segment_sizes_since(segment.id, t).unwrap();
    assert_eq!(since(2 * hour + 1), vec![(2 * hour, 20), (3 * hour, 30)]);
    assert_eq!(
        since(10 * hour),
        vec![(3 * hour, 30)],
        "the size still in force"
    );
    assert_eq!(since(0), vec![(hour, 10), (2 * hour, 20), (3 * hour, 30)]);
    assert_eq!(audiences.segment_sizes(segment.id).unwrap().len(), 3);
}

/// Membership changes are stored as a log: current members, a profile's intervals, a
/// segment's history and the timeline's `Segment Entered` / `Segment Exited` events (merged
/// with stored events by time, paged across equal instants) all read from it.
fn memberships_are_a_log_of_changes_shown_on_the_timeline(store: &Store) {
    let source = store.bootstrap(None, None).unwrap().source;
    let minute = |m: i64| 1_769_904_000_000 + m * 60_000; // 2026-02-01T00:00Z + m minutes
    let messages: Vec<Value> = (0..5)
        .map(|i| {
            json!({"type": "track", "userId": "member", "messageId": format!("e{i}"), "event": "Viewed",
                   "timestamp": format!("2026-02-01T00:0{i}:00Z"), "context": {"channel": "web"}})
        })
        .collect();
    store.ingest(&incoming(store, source.id, messages)).unwrap();
    let k = key(store, "user_id:member");
    let profile = store.resolve_profile(&k).unwrap().unwrap();
    let audiences = Audiences::of(store).unwrap();
    let segment = |slug: &str| {
        audiences
            .create(&SegmentInput {
                slug: slug.into(),
                name: slug.to_uppercase(),
                description: String::new(),
                definition: "count(any event) >= 1".into(),
            })
            .unwrap()
    };
    let (vip, fresh) = (segment("vip"), segment("fresh"));
    let change = |s: &SegmentRecord, entered: bool, at: i64, first_fill: bool| MembershipChange {
        segment_id: s.id,
        segment_slug: s.slug.clone(),
        profile_id: profile,
        entered,
        at,
        first_fill,
    };
    let steps = [
        vec![change(&vip, true, minute(1), true)],
        vec![
            change(&fresh, true, minute(2), false),
            change(&vip, false, minute(2), false),
        ],
        vec![change(&vip, true, minute(3), false)],
    ];
    for changes in &steps {
        audiences
            .write_decisions(&DecideWrite {
                changes,
                ..DecideWrite::default()
            })
            .unwrap();
    }

    let mut current = audiences.current_memberships().unwrap();
    current.sort();
    assert_eq!(current, [(vip.id, profile), (fresh.id, profile)]);
    let members = audiences.segment_members(vip.id, None, 10).unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].profile_id, members[0].entered_at),
        (profile, minute(3))
    );
    assert!(
        audiences
            .segment_members(vip.id, Some(members[0].position), 10)
            .unwrap()
            .is_empty()
    );
    let intervals: Vec<(String, i64, Option<i64>)> = audiences
        .memberships_of(profile)
        .unwrap()
        .into_iter()
        .map(|m| (m.slug, m.entered_at, m.exited_at))
        .collect();
    assert_eq!(
        intervals,
        [
            ("vip".to_owned(), minute(3), None),
            ("fresh".to_owned(), minute(2), None),
            ("vip".to_owned(), minute(1), Some(minute(2))),
        ],
        "newest entry first"
    );
    let (history, next) = audiences.segment_history(vip.id, None, 1).unwrap();
    assert_eq!(
        (history[0].entered_at, history[0].exited_at),
        (minute(3), None)
    );
    let (older, _) = audiences.segment_history(vip.id, next, 10).unwrap();
    assert_eq!(
        (older[0].entered_at, older[0].exited_at),
        (minute(1), Some(minute(2)))
    );

    let timeline = audiences.timeline();
    // Newest first; at one instant stored events before changes, changes newest first; a
    // new segment's first members are not on the timeline. Pages of 2 cross every tie.
    let mut seen = Vec::new();
    for e in whole_timeline(store, &k, 2, &[&timeline]) {
        assert_eq!(e["profileId"], json!(profile));
        seen.push(match e["event"].as_str().unwrap() {
            "Viewed" => e["messageId"].as_str().unwrap().to_owned(),
            name => format!("{name} {}", e["properties"]["segment"].as_str().unwrap()),
        });
    }
    assert_eq!(
        seen,
        [
            "e4",
            "e3",
            "Segment Entered vip",
            "e2",
            "Segment Exited vip",
            "Segment Entered fresh",
            "e1",
            "e0"
        ]
    );
    let only = |query: EventQuery| -> usize {
        let page = store.timeline(&k, &query, &[&timeline]).unwrap().unwrap();
        page.events.len()
    };
    let exits = EventQuery {
        event: Some(SEGMENT_EXITED.into()),
        limit: 100,
        ..EventQuery::default()
    };
    assert_eq!(only(exits), 1);
    let web = EventQuery {
        channel: Some("web".into()),
        limit: 100,
        ..EventQuery::default()
    };
    assert_eq!(only(web), 5);
    let other = EventQuery {
        channel: Some("other".into()),
        since: Some(minute(3)),
        limit: 100,
        ..EventQuery::default()
    };
    assert_eq!(only(other), 1);
    let p360 = store.profile(&k, &[&timeline]).unwrap().unwrap();
    assert_eq!(p360.counts_by_event["Segment Entered"], 2);
    assert_eq!(p360.counts_by_event["Segment Exited"], 1);
    assert_eq!(p360.counts_by_channel["other"], 3);
    assert_eq!(p360.event_count, 8);

    let mut own = Vec::new();
    audiences
        .scan_membership_events(Some(minute(2)), &mut |e| {
            own.push((e.event.unwrap(), e.ts, e.platform));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        own,
        [("Segment Entered".to_owned(), minute(3), true)],
        "after the instant given"
    );
    assert_eq!(audiences.membership_events_of(profile).unwrap().len(), 3);

    assert!(audiences.delete("vip").unwrap());
    let left: Vec<String> = audiences
        .memberships_of(profile)
        .unwrap()
        .into_iter()
        .map(|m| m.slug)
        .collect();
    assert_eq!(left, ["fresh"]);
}

/// A decide step's read position is saved with its writes and read back.
fn a_decide_step_saves_its_read_position(store: &Store) {
    let audiences = Audiences::of(store).unwrap();
    assert_eq!(audiences.decide_position().unwrap(), LogPosition::default());
    for event_seq in [1, 7] {
        audiences
            .write_decisions(&DecideWrite {
                position: Some(LogPosition {
                    event_seq,
                    log_id: 3,
                }),
                ..DecideWrite::default()
            })
            .unwrap();
    }
    assert_eq!(
        audiences.decide_position().unwrap(),
        LogPosition {
            event_seq: 7,
            log_id: 3
        }
    );
}

/// Two people saving a segment under the same slug at the same moment: one is saved, the
/// other gets a clear conflict (the check and the insert are one write transaction),
/// never a database error.
fn slugs_taken_at_the_same_moment_conflict_cleanly(store: &Store) {
    let audiences = Audiences::of(store).unwrap();
    saved_once_when_raced(
        "segment",
        &|| {
            audiences.create(&SegmentInput {
                slug: "vip".into(),
                name: "VIP".into(),
                description: String::new(),
                definition: "traits.plan == \"vip\"".into(),
            })
        },
        |e| matches!(e, StoreError::Conflict(_)),
    );
}
