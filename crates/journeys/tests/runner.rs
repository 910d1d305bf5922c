//! The journey runner on a real store (SQLite, and PostgreSQL when
//! `PROSSIMO_TEST_DATABASE_URL` is set): events start instances and end their waits,
//! timers fire on the clock, entry conditions are the person's, and a restart neither
//! loses a timer nor sends anything twice; the customer's timeline shows it all.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use prossimo_bus::{Bus, Happened};
use prossimo_journeys::{
    Instances, JOURNEY_ENTERED, JOURNEY_EXITED, JOURNEY_STEP_COMPLETED, JourneyInput,
    JourneyRunner, Position, RunnerConfig, publish_journey, save_journey,
};
use prossimo_model::{Clock, ManualClock};
use prossimo_store::Store;
use prossimo_store::testsuite::{Fixture, incoming, key, whole_timeline};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;

fn runs_a_journey_from_events_and_timers(fixture: &Fixture) {
    let store = &fixture.store;
    let source = store.bootstrap(None, None).unwrap().source.id;
    let definition = json!({
        "trigger": {"event": {"name": "Checkout Started", "where": "properties.total > 10"}},
        "entry": {"condition": "traits.email exists", "instance_key": "properties.cart_id", "reentry": "always"},
        "steps": [
            {"id": "an-hour", "type": "wait", "timeout": "1h", "on_timeout": "mail",
             "until": {"event": {"name": "Order Completed", "same_instance": true}}},
            {"id": "mail", "type": "send", "channel": "email", "message": "cart-reminder", "topic": "offers"}
        ]
    });
    save_journey(
        store,
        None,
        &JourneyInput {
            slug: "cart".into(),
            name: "Cart".into(),
            description: String::new(),
            definition,
        },
        false,
        "test",
    )
    .unwrap();
    publish_journey(store, None, "cart", "test").unwrap();

    let t0 = 1_800_000_000_000;
    let clock = Arc::new(ManualClock::at(t0));
    let bus = Bus::new();
    let config = RunnerConfig {
        poll: Duration::from_millis(50),
        ..RunnerConfig::default()
    };
    let runner = JourneyRunner::spawn(Arc::clone(store), clock.clone(), config.clone(), &bus);
    wait_until("the runner is ready", || runner.status().ready);

    let send = |messages: Vec<Value>| {
        store.ingest(&incoming(store, source, messages)).unwrap();
        bus.publish(Happened::EventsCommitted {
            buyers: Arc::from([]),
        });
    };
    send(vec![
        json!({"type": "identify", "userId": "anna", "traits": {"email": "anna@example.it"}}),
        json!({"type": "track", "userId": "anna", "event": "Checkout Started", "properties": {"cart_id": "c1", "total": 80}}),
        json!({"type": "track", "userId": "anna", "event": "Checkout Started", "properties": {"cart_id": "small", "total": 5}}),
        json!({"type": "track", "userId": "bruno", "event": "Checkout Started", "properties": {"cart_id": "c2", "total": 80}}),
    ]);
    let anna = profile(store, "user_id:anna");
    let instances = Instances::of(store).unwrap();
    wait_until("anna's cart c1 waits", || {
        instances.running_for(anna).unwrap().len() == 1
    });
    let running = instances.running_for(anna).unwrap();
    assert_eq!(
        running[0].instance.key.as_deref(),
        Some("c1"),
        "the filter keeps the small cart out"
    );
    assert!(
        instances
            .of_profile(profile(store, "user_id:bruno"))
            .unwrap()
            .is_empty(),
        "bruno has no e-mail: the entry condition keeps him out"
    );

    // Buying that cart ends its wait; a second cart waits for its hour.
    send(vec![
        json!({"type": "track", "userId": "anna", "event": "Order Completed", "properties": {"cart_id": "c1", "order_id": "o1", "revenue": 80}}),
        json!({"type": "track", "userId": "anna", "event": "Checkout Started", "properties": {"cart_id": "c3", "total": 40}}),
    ]);
    wait_until("c1 ended and c3 waits", || {
        let all = instances.of_profile(anna).unwrap();
        all.len() == 2
            && all.iter().any(|i| {
                i.instance.key.as_deref() == Some("c1")
                    && matches!(i.instance.position, Position::Ended { .. })
            })
    });
    assert!(
        prossimo_messages::Outbox::of(store)
            .unwrap()
            .of_profile(anna)
            .unwrap()
            .is_empty()
    );

    // A cart abandoned and bought in the same batch: the order ends the wait the checkout
    // just started.
    send(vec![
        json!({"type": "track", "userId": "anna", "event": "Checkout Started", "properties": {"cart_id": "c4", "total": 30}}),
        json!({"type": "track", "userId": "anna", "event": "Order Completed", "properties": {"cart_id": "c4", "order_id": "o4", "revenue": 30}}),
    ]);
    wait_until("c4 started and ended in one batch", || {
        instances.of_profile(anna).unwrap().iter().any(|i| {
            i.instance.key.as_deref() == Some("c4")
                && matches!(i.instance.position, Position::Ended { .. })
        })
    });

    // A restart before the hour: nothing lost, nothing started twice.
    runner.stop();
    clock.advance(HOUR + 1);
    let runner = JourneyRunner::spawn(Arc::clone(store), clock.clone(), config, &bus);
    wait_until("the timer fired after the restart", || {
        prossimo_messages::Outbox::of(store)
            .unwrap()
            .of_profile(anna)
            .unwrap()
            .len()
            == 1
    });
    let sends = prossimo_messages::Outbox::of(store)
        .unwrap()
        .of_profile(anna)
        .unwrap();
    assert_eq!(
        (sends[0].template.as_str(), sends[0].status),
        ("cart-reminder", prossimo_messages::SendStatus::Owed)
    );
    assert!(
        matches!(&sends[0].origin, prossimo_messages::Origin::Journey { step, .. } if step == "mail"),
        "{:?}",
        sends[0].origin
    );
    assert_eq!(
        (
            &sends[0].context["event"]["properties"]["cart_id"],
            &sends[0].context["journey"]["slug"]
        ),
        (&json!("c3"), &json!("cart")),
        "the send carries what triggered its instance, for the message to render"
    );
    assert_eq!(instances.of_profile(anna).unwrap().len(), 3);
    // Quiet for a while: still one send.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        prossimo_messages::Outbox::of(store)
            .unwrap()
            .of_profile(anna)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(runner.status().timers_fired, 1);
    runner.stop();

    // Every instance's way is on anna's event log (so on her timeline), newest first.
    let journey: Vec<(String, Value)> = whole_timeline(store, &key(store, "user_id:anna"), 3, &[])
        .into_iter()
        .filter(|e| {
            e["event"]
                .as_str()
                .is_some_and(|n| n.starts_with("Journey "))
        })
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["properties"].clone(),
            )
        })
        .collect();
    let entered: Vec<&Value> = journey
        .iter()
        .filter(|(e, _)| e == JOURNEY_ENTERED)
        .map(|(_, p)| &p["instance_key"])
        .collect();
    assert_eq!(entered, [&json!("c4"), &json!("c3"), &json!("c1")]);
    assert!(journey.contains(&(
        JOURNEY_STEP_COMPLETED.to_owned(),
        json!({"journey": "cart", "journey_name": "Cart", "version": 1, "step": "mail", "outcome": "sent"})
    )));
    assert!(journey.contains(&(
        JOURNEY_EXITED.to_owned(),
        json!({"journey": "cart", "journey_name": "Cart", "version": 1, "step": "an-hour", "reason": "completed"})
    )));
    // They are events like any other: an audience counts them (at the journeys' time).
    let sent_by_the_journey = prossimo_decide::preview(
        store,
        "count(event \"Journey Step Completed\" where properties.journey == \"cart\" and properties.outcome == \"sent\" within 1d) >= 1",
        clock.now_ms(),
        10,
    )
    .unwrap();
    assert_eq!(
        sent_by_the_journey.count, 1,
        "anna, whose e-mail the journey sent"
    );
}

fn profile(store: &Store, k: &str) -> i64 {
    store.resolve_profile(&key(store, k)).unwrap().unwrap()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sqlite_runs_a_journey_from_events_and_timers() {
    runs_a_journey_from_events_and_timers(&Fixture::sqlite());
}

#[test]
fn postgres_runs_a_journey_from_events_and_timers() {
    match Fixture::postgres() {
        Some(fixture) => runs_a_journey_from_events_and_timers(&fixture),
        None => eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set"),
    }
}

/// A journey triggered by entering an audience: the decider's changes start it (not a
/// new audience's first members, and not someone who stays out), once per change.
fn starts_a_journey_when_someone_enters_an_audience(fixture: &Fixture) {
    let store = &fixture.store;
    let source = store.bootstrap(None, None).unwrap().source.id;
    store
        .ingest(&incoming(
            store,
            source,
            vec![json!({"type": "identify", "userId": "old", "traits": {"vip": true}})],
        ))
        .unwrap();
    prossimo_decide::save_audience(
        store,
        None,
        &prossimo_decide::audiences::SegmentInput {
            slug: "vip".into(),
            name: "VIP".into(),
            description: String::new(),
            definition: "traits.vip == true".into(),
        },
        None,
    )
    .unwrap();
    save_journey(
        store,
        None,
        &JourneyInput {
            slug: "welcome-vip".into(),
            name: "Welcome, VIP".into(),
            description: String::new(),
            definition: json!({
                "trigger": {"audience_entered": "vip"},
                "steps": [{"id": "hello", "type": "send", "channel": "email", "message": "vip-welcome", "topic": "news"}]
            }),
        },
        false,
        "test",
    )
    .unwrap();
    publish_journey(store, None, "welcome-vip", "test").unwrap();

    let bus = Bus::new();
    let clock: Arc<dyn prossimo_model::Clock> = Arc::new(prossimo_model::SystemClock);
    let decider = prossimo_decide::Decider::spawn(
        Arc::clone(store),
        Arc::clone(&clock),
        prossimo_decide::DeciderConfig::default(),
        bus.clone(),
    );
    let runner = JourneyRunner::spawn(
        Arc::clone(store),
        clock,
        RunnerConfig {
            poll: Duration::from_millis(50),
            ..RunnerConfig::default()
        },
        &bus,
    );
    wait_until("the runner is ready", || runner.status().ready);
    store
        .ingest(&incoming(
            store,
            source,
            vec![
                json!({"type": "identify", "userId": "anna", "traits": {"vip": true, "email": "anna@example.it"}}),
                json!({"type": "identify", "userId": "bruno", "traits": {"vip": false}}),
            ],
        ))
        .unwrap();
    bus.publish(Happened::EventsCommitted {
        buyers: Arc::from([]),
    });
    let anna = profile(store, "user_id:anna");
    let outbox = prossimo_messages::Outbox::of(store).unwrap();
    wait_until("anna's welcome is owed", || {
        !outbox.of_profile(anna).unwrap().is_empty()
    });
    let sends = outbox.of_profile(anna).unwrap();
    assert_eq!(sends[0].template, "vip-welcome");
    assert_eq!(sends[0].context["event"]["properties"]["segment"], "vip");
    std::thread::sleep(Duration::from_millis(300));
    for other in ["user_id:old", "user_id:bruno"] {
        assert!(
            Instances::of(store)
                .unwrap()
                .of_profile(profile(store, other))
                .unwrap()
                .is_empty(),
            "{other}: a first member of the new audience, or never in it"
        );
    }
    assert_eq!(
        Instances::of(store)
            .unwrap()
            .of_profile(anna)
            .unwrap()
            .len(),
        1
    );
    runner.stop();
    decider.stop();
}

#[test]
fn sqlite_starts_a_journey_when_someone_enters_an_audience() {
    starts_a_journey_when_someone_enters_an_audience(&Fixture::sqlite());
}

#[test]
fn postgres_starts_a_journey_when_someone_enters_an_audience() {
    match Fixture::postgres() {
        Some(fixture) => starts_a_journey_when_someone_enters_an_audience(&fixture),
        None => eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set"),
    }
}

/// A yearly date trigger: a birthday starts the journey once, at 09:00 in Rome, and again
/// the next year; a date more than a day past when the runner looks (bruno's, in the year
/// the clock skipped) is history, and no date starts nothing.
fn starts_a_journey_when_a_date_comes_round(fixture: &Fixture) {
    let store = &fixture.store;
    let source = store.bootstrap(None, None).unwrap().source.id;
    let rome = chrono_tz::Europe::Rome;
    let at = |y, m, d, h, min| {
        use chrono::TimeZone;
        rome.with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .timestamp_millis()
    };
    store
        .ingest(&incoming(
            store,
            source,
            vec![
                json!({"type": "identify", "userId": "anna", "traits": {"birthday": "1990-05-17", "email": "anna@example.it"}}),
                json!({"type": "identify", "userId": "bruno", "traits": {"birthday": "1985-12-01"}}),
                json!({"type": "identify", "userId": "carla", "traits": {"city": "Bari"}}),
            ],
        ))
        .unwrap();
    save_journey(
        store,
        None,
        &JourneyInput {
            slug: "birthday".into(),
            name: "Birthday".into(),
            description: String::new(),
            definition: json!({
                "trigger": {"date": {"trait": "birthday", "yearly": true, "at": "09:00"}},
                "steps": [{"id": "wishes", "type": "send", "channel": "email", "message": "birthday-wishes", "topic": "newsletter"}]
            }),
        },
        false,
        "test",
    )
    .unwrap();
    publish_journey(store, None, "birthday", "test").unwrap();
    let clock = Arc::new(ManualClock::at(at(2026, 5, 16, 12, 0)));
    let bus = Bus::new();
    let runner = JourneyRunner::spawn(
        Arc::clone(store),
        clock.clone(),
        RunnerConfig {
            poll: Duration::from_millis(20),
            date_scan_every: Duration::from_millis(1),
            zone: rome,
        },
        &bus,
    );
    wait_until("the runner is ready", || runner.status().ready);
    std::thread::sleep(Duration::from_millis(100));
    let anna = profile(store, "user_id:anna");
    let outbox = prossimo_messages::Outbox::of(store).unwrap();
    assert!(
        outbox.of_profile(anna).unwrap().is_empty(),
        "not yet her birthday"
    );

    clock.set(at(2026, 5, 17, 9, 30));
    wait_until("anna's wishes are owed", || {
        outbox.of_profile(anna).unwrap().len() == 1
    });
    let send = &outbox.of_profile(anna).unwrap()[0];
    assert_eq!(send.context["event"]["properties"]["date"], "2026-05-17");
    clock.set(at(2026, 5, 17, 11, 0));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(outbox.of_profile(anna).unwrap().len(), 1, "once on the day");
    clock.set(at(2027, 5, 17, 9, 1));
    wait_until("next year's wishes", || {
        outbox.of_profile(anna).unwrap().len() == 2
    });
    for other in ["user_id:bruno", "user_id:carla"] {
        assert!(
            Instances::of(store)
                .unwrap()
                .of_profile(profile(store, other))
                .unwrap()
                .is_empty(),
            "{other}"
        );
    }
    runner.stop();
}

#[test]
fn sqlite_starts_a_journey_when_a_date_comes_round() {
    starts_a_journey_when_a_date_comes_round(&Fixture::sqlite());
}

#[test]
fn postgres_starts_a_journey_when_a_date_comes_round() {
    match Fixture::postgres() {
        Some(fixture) => starts_a_journey_when_a_date_comes_round(&fixture),
        None => eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set"),
    }
}
