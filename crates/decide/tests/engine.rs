//! The engine against a real store (SQLite, and PostgreSQL when
//! `PROSSIMO_TEST_DATABASE_URL` is set, as in CI): merges, late events and window
//! boundaries at the exact millisecond, timeline events and the outbox.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::sync::Arc;

use prossimo_act::destinations::{DeliveryStatus, DestinationInput, DestinationKind, Destinations};
use prossimo_decide::audiences::{Audiences, SegmentInput};
use prossimo_decide::{Engine, preview};
use prossimo_model::ManualClock;
use prossimo_store::testsuite::{Fixture, incoming};
use prossimo_store::{EventQuery, ProfileKey, Store};
use serde_json::{Value, json};

const DAY: i64 = 86_400_000;
/// 2026-03-01T00:00:00Z.
const T0: i64 = 1_772_323_200_000;

fn iso(ms: i64) -> String {
    prossimo_model::format_millis(ms).unwrap()
}

fn save(store: &Store, slug: &str, definition: &str) {
    Audiences::of(store)
        .unwrap()
        .create(&SegmentInput {
            slug: slug.into(),
            name: slug.into(),
            description: String::new(),
            definition: definition.into(),
        })
        .unwrap();
}

fn send(store: &Store, messages: Vec<Value>) {
    let source = store.bootstrap(None, None).unwrap().source;
    store.ingest(&incoming(store, source.id, messages)).unwrap();
}

fn root(store: &Store, key: &str) -> i64 {
    store
        .profile(&ProfileKey::parse(key, store.identity()).unwrap(), &[])
        .unwrap()
        .unwrap()
        .id
}

/// The profile's timeline events of one name (up to 10), membership changes included.
fn timeline_events(store: &Store, profile: i64, event: &str) -> Vec<Value> {
    store
        .timeline(
            &ProfileKey::Id(profile),
            &EventQuery {
                event: Some(event.into()),
                limit: 10,
                ..EventQuery::default()
            },
            &[&Audiences::of(store).unwrap().timeline()],
        )
        .unwrap()
        .unwrap()
        .events
}

fn members(engine: &Engine, slug: &str) -> Vec<i64> {
    engine.memberships()[slug].iter().copied().collect()
}

fn drain(engine: &mut Engine) {
    while engine.step().unwrap().events > 0 {}
}

fn view(anonymous: &str, n: u32, at: i64) -> Value {
    json!({"type": "track", "event": "Product Viewed", "anonymousId": anonymous,
           "messageId": format!("{anonymous}-view-{n}"), "timestamp": iso(at),
           "properties": {"category": "scarpe"}})
}

/// A person known first by user id, then browsing anonymously, then identified on that
/// device: the merge must bring the anonymous history into the segment's answer, and
/// the merged-away profile must leave.
pub fn merge_brings_history(store: &Arc<Store>) {
    save(
        store,
        "browsers",
        r#"count(event "Product Viewed" within 30d) >= 2"#,
    );
    let clock = Arc::new(ManualClock::at(T0));
    let mut engine = Engine::open(Arc::clone(store), clock.clone()).unwrap();

    send(
        store,
        vec![
            json!({"type": "identify", "userId": "u1", "messageId": "id-1",
                             "timestamp": iso(T0 - 5 * DAY), "traits": {"name": "Anna"}}),
        ],
    );
    drain(&mut engine);
    send(
        store,
        vec![
            view("device-a", 1, T0 - 2 * DAY),
            view("device-a", 2, T0 - DAY),
        ],
    );
    drain(&mut engine);
    let anonymous = root(store, "anonymous_id:device-a");
    assert_eq!(members(&engine, "browsers"), vec![anonymous]);

    send(
        store,
        vec![
            json!({"type": "identify", "userId": "u1", "anonymousId": "device-a",
                             "messageId": "id-2", "timestamp": iso(T0)}),
        ],
    );
    drain(&mut engine);
    let person = root(store, "user_id:u1");
    assert_ne!(person, anonymous, "the older profile survives the merge");
    assert_eq!(members(&engine, "browsers"), vec![person]);
    let recomputed = Engine::open(Arc::clone(store), clock).unwrap();
    assert_eq!(recomputed.memberships(), engine.memberships());
}

/// An imported event from the past counts by its own time; the membership ends at the
/// exact millisecond its window closes, with no event arriving.
pub fn late_events_and_exact_boundaries(store: &Arc<Store>) {
    save(
        store,
        "recent-shoes",
        r#"count(event "Product Viewed" where properties.category == "scarpe" within 30d) >= 1"#,
    );
    save(
        store,
        "lapsed",
        r#"last(event "Product Viewed") before 10d"#,
    );
    let clock = Arc::new(ManualClock::at(T0));
    let mut engine = Engine::open(Arc::clone(store), clock.clone()).unwrap();

    // Arrives now, happened 40 days ago: outside the window, but it is the last view.
    send(store, vec![view("device-b", 1, T0 - 40 * DAY)]);
    drain(&mut engine);
    let b = root(store, "anonymous_id:device-b");
    assert!(members(&engine, "recent-shoes").is_empty());
    assert_eq!(members(&engine, "lapsed"), vec![b]);

    // Happened 20 days ago: inside until T0 + 10 days exactly.
    let seen = T0 - 20 * DAY;
    send(store, vec![view("device-b", 2, seen)]);
    drain(&mut engine);
    assert_eq!(members(&engine, "recent-shoes"), vec![b]);
    assert_eq!(members(&engine, "lapsed"), vec![b], "last view 20 days ago");
    let closes = seen + 30 * DAY;
    assert_eq!(engine.next_boundary(), Some(closes));

    clock.set(closes - 1);
    engine.step().unwrap();
    assert_eq!(
        members(&engine, "recent-shoes"),
        vec![b],
        "still inside 1 ms before"
    );
    clock.set(closes);
    let report = engine.step().unwrap();
    assert!(
        members(&engine, "recent-shoes").is_empty(),
        "out at the boundary"
    );
    assert_eq!(report.changes.len(), 1);
    assert!(!report.changes[0].entered);
    assert_eq!(report.changes[0].at, closes);

    // Both transitions are on the timeline as events.
    let exits = timeline_events(store, b, "Segment Exited");
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0]["properties"]["segment"], "recent-shoes");
    assert_eq!(exits[0]["timestamp"], iso(closes));
}

/// Segment changes and filtered events are owed to their destinations in the same
/// transaction; history from before a destination existed is not.
pub fn outbox(store: &Arc<Store>) {
    save(store, "buyers", r#"count(event "Order Completed") >= 1"#);
    send(
        store,
        vec![
            json!({"type": "track", "event": "Order Completed", "userId": "old",
                             "messageId": "before", "timestamp": iso(T0 - DAY),
                             "properties": {"order_id": "o0", "revenue": 10}}),
        ],
    );
    let hook = |name: &str, kind, filter: Option<&str>| DestinationInput {
        name: name.into(),
        kind,
        url: "http://127.0.0.1:9/hook".into(),
        filter: filter.map(str::to_owned),
        secret: None,
        enabled: true,
    };
    let segments = Destinations::of(store)
        .unwrap()
        .create(&hook("crm", DestinationKind::Segments, Some("buyers")))
        .unwrap();
    let stream = Destinations::of(store)
        .unwrap()
        .create(&hook(
            "store-orders",
            DestinationKind::Events,
            Some(r#"event "Order Completed" where channel == "store""#),
        ))
        .unwrap();
    let clock = Arc::new(ManualClock::at(T0));
    let mut engine = Engine::open(Arc::clone(store), clock).unwrap();
    send(
        store,
        vec![
            json!({"type": "track", "event": "Order Completed", "userId": "new", "messageId": "o-web",
               "timestamp": iso(T0), "context": {"channel": "web"}, "properties": {"order_id": "o1", "revenue": 10}}),
            json!({"type": "track", "event": "Order Completed", "userId": "new", "messageId": "o-store",
               "timestamp": iso(T0), "context": {"channel": "store"}, "properties": {"order_id": "o2", "revenue": 20}}),
        ],
    );
    drain(&mut engine);

    let owed = Destinations::of(store)
        .unwrap()
        .deliveries(segments.id, Some(DeliveryStatus::Pending), None, 100)
        .unwrap();
    assert_eq!(
        owed.len(),
        2,
        "the old buyer (at start) and the new one entered"
    );
    assert!(owed.iter().all(|d| d.payload["type"] == "segment.entered"));
    let events = Destinations::of(store)
        .unwrap()
        .deliveries(stream.id, Some(DeliveryStatus::Pending), None, 100)
        .unwrap();
    assert_eq!(events.len(), 1, "only the store order, and no history");
    assert_eq!(events[0].payload["data"]["messageId"], "o-store");
    assert_eq!(events[0].profile_id, root(store, "user_id:new"));
}

/// A preview counts without saving, references read stored memberships, and errors
/// carry their position.
pub fn preview_without_saving(store: &Arc<Store>) {
    save(store, "viewers", r#"count(event "Product Viewed") >= 1"#);
    send(
        store,
        vec![
            view("device-c", 1, T0 - DAY),
            view("device-d", 1, T0 - 50 * DAY),
        ],
    );
    let mut engine = Engine::open(Arc::clone(store), Arc::new(ManualClock::at(T0))).unwrap();
    drain(&mut engine);
    let p = preview(
        store,
        r#"segment "viewers" and last(event "Product Viewed") after 7d"#,
        T0,
        10,
    )
    .unwrap();
    assert_eq!(p.count, 1);
    assert_eq!(p.sample, vec![root(store, "anonymous_id:device-c")]);
    assert_eq!(
        Audiences::of(store).unwrap().segments().unwrap().len(),
        1,
        "nothing saved"
    );
    let error = preview(store, "count(event \"x\") >=", T0, 10).unwrap_err();
    assert!(error.to_string().contains("line 1"), "{error}");
}

/// Analyses rewrite computed traits outside the event log: the engine re-evaluates the
/// profiles it is told about, or everyone after a full run.
pub fn computed_traits_move_members(store: &Arc<Store>) {
    save(store, "lapsing", "p_alive < 0.4");
    send(
        store,
        vec![view("device-e", 1, T0), view("device-f", 1, T0)],
    );
    let (e, f) = (
        root(store, "anonymous_id:device-e"),
        root(store, "anonymous_id:device-f"),
    );
    let mut engine = Engine::open(Arc::clone(store), Arc::new(ManualClock::at(T0))).unwrap();
    assert!(members(&engine, "lapsing").is_empty());

    let p_alive = |x: f64| json!({"p_alive": x}).as_object().unwrap().clone();
    store.write_computed_traits(&[(e, p_alive(0.2))]).unwrap();
    engine.computed_changed(Some(&[e]));
    engine.step().unwrap();
    assert_eq!(members(&engine, "lapsing"), vec![e]);

    store
        .write_computed_traits(&[(e, p_alive(0.9)), (f, p_alive(0.1))])
        .unwrap();
    engine.computed_changed(None);
    let report = engine.step().unwrap();
    assert_eq!(members(&engine, "lapsing"), vec![f]);
    assert_eq!(report.changes.len(), 2, "{:?}", report.changes);
}

/// A saved definition that no longer checks (here: it names a segment that is gone) is
/// left out and logged; the others run, and it does not look like a change at every poll.
pub fn a_broken_definition_is_left_out_once(store: &Arc<Store>) {
    save(store, "viewers", r#"count(event "Product Viewed") >= 1"#);
    save(store, "orphan", r#"segment "gone""#);
    send(store, vec![view("device-g", 1, T0)]);
    let mut engine = Engine::open(Arc::clone(store), Arc::new(ManualClock::at(T0))).unwrap();
    assert_eq!(
        members(&engine, "viewers"),
        vec![root(store, "anonymous_id:device-g")]
    );
    assert!(!engine.memberships().contains_key("orphan"));
    let mut rebuilds = 0;
    for _ in 0..3 {
        engine.reload(&mut || rebuilds += 1).unwrap();
    }
    assert_eq!(rebuilds, 0);
    save(
        store,
        "more-viewers",
        r#"count(event "Product Viewed") >= 1"#,
    );
    assert!(engine.reload(&mut || rebuilds += 1).unwrap());
    assert_eq!(rebuilds, 1);
    assert_eq!(members(&engine, "more-viewers").len(), 1);
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&prossimo_store::testsuite::Fixture::sqlite().store) })*
        }
        mod postgres {
            $(#[test] fn $name() {
                if let Some(f) = super::Fixture::postgres() { super::$name(&f.store) }
            })*
        }
    };
}

on_both_backends!(
    merge_brings_history,
    late_events_and_exact_boundaries,
    outbox,
    preview_without_saving,
    computed_traits_move_members,
    a_broken_definition_is_left_out_once,
);

/// A SQLite store with the `viewers` segment, and a second handle on it that gives up on
/// a held write lock.
fn viewers_with_an_impatient_handle() -> (Fixture, Arc<Store>) {
    let fixture = Fixture::sqlite();
    save(
        &fixture.store,
        "viewers",
        r#"count(event "Product Viewed") >= 1"#,
    );
    let impatient = Arc::new(fixture.impatient_handle());
    (fixture, impatient)
}

/// The decisions' write lock held by another connection until dropped.
fn hold_decisions(fixture: &Fixture) -> prossimo_store::testsuite::WriteLockHeld {
    prossimo_store::testsuite::hold_write_lock(
        &fixture.store,
        prossimo_store::WriteDomain::Decisions,
    )
}

/// A step whose write fails (the store stayed locked) has already moved the engine's memory
/// on; stepping again would skip the change for good. A rebuild from the store writes it.
#[test]
fn a_failed_write_is_made_good_by_a_rebuild() {
    let (fixture, impatient) = viewers_with_an_impatient_handle();
    let mut engine = Engine::open(Arc::clone(&impatient), Arc::new(ManualClock::at(T0))).unwrap();
    send(&fixture.store, vec![view("a", 1, T0 - DAY)]);
    let person = root(&fixture.store, "anonymous_id:a");
    let held = hold_decisions(&fixture);
    let failed = engine.step().expect_err("the store is locked");
    assert!(
        failed.to_string().contains("lock") || failed.to_string().contains("busy"),
        "{failed}"
    );
    drop(held);
    assert_eq!(members(&engine, "viewers"), [person], "memory moved on");
    assert!(
        engine.step().unwrap().changes.is_empty(),
        "a plain retry writes nothing"
    );
    assert!(
        Audiences::of(&impatient)
            .unwrap()
            .current_memberships()
            .unwrap()
            .is_empty()
    );

    let report = engine.rebuild().unwrap();
    assert_eq!(report.changes.len(), 1);
    let stored = Audiences::of(&impatient)
        .unwrap()
        .current_memberships()
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, person);
    assert_eq!(
        timeline_events(&impatient, person, "Segment Entered").len(),
        1,
        "on the timeline too"
    );
    drain(&mut engine);
    assert_eq!(
        Audiences::of(&impatient)
            .unwrap()
            .current_memberships()
            .unwrap()
            .len(),
        1
    );
}

/// The decider thread hands each step to its writer thread; when that write fails (the
/// store stayed locked), the decider rebuilds from the store once it can write again, and
/// the change is stored after all.
#[test]
fn the_decider_recovers_from_a_failed_write() {
    use prossimo_decide::{Decider, DeciderConfig};
    use prossimo_model::SystemClock;
    let (fixture, impatient) = viewers_with_an_impatient_handle();
    // A long poll: the decider works only when signalled.
    let config = DeciderConfig {
        poll: std::time::Duration::from_secs(30),
    };
    let bus = prossimo_bus::Bus::new();
    let committed = || {
        bus.publish(prossimo_bus::Happened::EventsCommitted {
            buyers: Arc::new([]),
        })
    };
    let decider = Decider::spawn(
        Arc::clone(&impatient),
        Arc::new(SystemClock),
        config,
        bus.clone(),
    );
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        for _ in 0..1000 {
            if done() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{what}: {:?}", decider.status());
    };
    wait_for("ready", &|| decider.status().ready);
    send(
        &fixture.store,
        vec![view(
            "a",
            1,
            prossimo_model::Clock::now_ms(&SystemClock) - DAY,
        )],
    );
    let held = hold_decisions(&fixture);
    committed();
    wait_for("the write fails", &|| decider.status().last_error.is_some());
    assert!(
        Audiences::of(&impatient)
            .unwrap()
            .current_memberships()
            .unwrap()
            .is_empty()
    );
    drop(held);
    committed();
    wait_for("stored after a rebuild", &|| {
        Audiences::of(&impatient)
            .unwrap()
            .current_memberships()
            .unwrap()
            .len()
            == 1
    });
}

/// A step's webhooks are committed ahead of its other changes, in a transaction with only
/// the changes they report, so the dispatcher can send them while the rest is written.
#[test]
fn webhooks_are_committed_before_the_rest_of_their_step() {
    let fixture = Fixture::sqlite();
    let store = &fixture.store;
    save(store, "viewers", r#"count(event "Product Viewed") >= 1"#);
    save(
        store,
        "shoe-viewers",
        r#"count(event "Product Viewed" where properties.category == "scarpe") >= 1"#,
    );
    save(store, "recent", r#"count(any event within 30d) >= 1"#);
    let crm = Destinations::of(store)
        .unwrap()
        .create(&DestinationInput {
            name: "crm".into(),
            kind: DestinationKind::Segments,
            url: "http://127.0.0.1:9/hook".into(),
            filter: Some("shoe-viewers".into()),
            secret: None,
            enabled: true,
        })
        .unwrap();
    let mut engine = Engine::open(Arc::clone(store), Arc::new(ManualClock::at(T0))).unwrap();
    send(store, vec![view("a", 1, T0 - DAY), view("b", 1, T0 - DAY)]);
    let (_, pending) = engine.prepare_step().unwrap();
    assert_eq!(
        pending.deliveries(),
        2,
        "two people enter three segments, one routed"
    );
    let mut commits = Vec::new();
    pending
        .write_then(store, &mut |stored, deliveries| {
            let owed = Destinations::of(store)
                .unwrap()
                .deliveries(crm.id, Some(DeliveryStatus::Pending), None, 100)
                .unwrap()
                .len();
            commits.push((
                stored,
                deliveries,
                owed,
                Audiences::of(store)
                    .unwrap()
                    .current_memberships()
                    .unwrap()
                    .len(),
            ));
        })
        .unwrap();
    assert_eq!(
        commits,
        [(2, 2, 2, 2), (6, 0, 2, 6)],
        "first the two entries owed to the destination with their webhooks, then the rest"
    );
    let recomputed = Engine::open(Arc::clone(store), Arc::new(ManualClock::at(T0))).unwrap();
    assert_eq!(recomputed.memberships(), engine.memberships());
}

/// Two deciders on one store (two nodes): one runs, the other stands by and takes over.
#[test]
fn a_second_decider_stands_by() {
    use prossimo_decide::{Decider, DeciderConfig};
    use prossimo_model::SystemClock;
    let fixture = Fixture::sqlite();
    let config = DeciderConfig {
        poll: std::time::Duration::from_millis(20),
    };
    let bus = prossimo_bus::Bus::new();
    let spawn = |store: Arc<Store>| {
        Decider::spawn(store, Arc::new(SystemClock), config.clone(), bus.clone())
    };
    let first = spawn(Arc::clone(&fixture.store));
    let wait_for =
        |d: &Decider, what: &str, done: &dyn Fn(&prossimo_decide::DeciderStatus) -> bool| {
            for _ in 0..500 {
                if done(&d.status()) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            panic!("{what}: {:?}", d.status());
        };
    wait_for(&first, "first ready", &|s| s.ready);
    let second = spawn(Arc::new(fixture.second_node()));
    wait_for(&second, "second on standby", &|s| s.standby);
    assert!(!second.status().ready);
    for _ in 0..20 {
        bus.publish(prossimo_bus::Happened::EventsCommitted {
            buyers: Arc::new([]),
        });
    }
    assert!(!second.status().ready, "commits do not make it take over");
    // The first node goes away: its thread ends and its lease with it.
    drop(first);
    wait_for(&second, "second takes over", &|s| s.ready && !s.standby);
}
