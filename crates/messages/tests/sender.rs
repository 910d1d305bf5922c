//! The sender on a real store (SQLite, and PostgreSQL when `PROSSIMO_TEST_DATABASE_URL`
//! is set), with the clock in the test's hands: quiet hours hold a marketing e-mail until
//! the morning in the customer's own zone (across the night the clocks go forward in
//! Rome), a receipt goes at once, a frequency cap skips what is over it, every outcome is
//! on the timeline, and a send interrupted by a stop is never sent again.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeZone;
use prossimo_bus::{Bus, Happened};
use prossimo_messages::{
    Channel, Channels, Content, EmailChannel, Format, FrequencyCap, InQuietHours, Mailer,
    MessageInput, MessageSender, Messages, NewSend, Origin, Outbox, SendPolicy, SendStatus, Sender,
    SenderConfig, owe, parse_quiet_hours,
};
use prossimo_model::ManualClock;
use prossimo_store::testsuite::{Fixture, incoming, key};
use prossimo_store::{Store, WriteDomain};
use serde_json::json;

fn owe_now(store: &Store, key_: &str, profile: i64, transactional: bool) {
    owe_choosing(store, key_, profile, transactional, InQuietHours::Wait);
}

fn owe_choosing(
    store: &Store,
    key_: &str,
    profile: i64,
    transactional: bool,
    in_quiet_hours: InQuietHours,
) {
    let send = NewSend {
        idempotency_key: key_.into(),
        profile_id: profile,
        origin: Origin::Test,
        channel: Channel::Email,
        template: "promo".into(),
        topic: (!transactional).then(|| "offers".into()),
        transactional,
        in_quiet_hours,
        context: json!({}),
    };
    let now = store.now_ms();
    store
        .write_transaction(WriteDomain::Decisions, |conn| owe(conn, &send, now))
        .unwrap();
}

fn status(store: &Store, key_: &str) -> (SendStatus, Option<String>, i64) {
    let send = Outbox::of(store).unwrap().by_key(key_).unwrap().unwrap();
    (send.status, send.reason, send.due)
}

fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sender lives on `tokio`; the test's own thread stays outside it, as the store's
/// PostgreSQL client blocks.
fn start(
    tokio: &tokio::runtime::Runtime,
    store: &Arc<Store>,
    channels: &Arc<Channels>,
    config: &SenderConfig,
    bus: &Bus,
) -> MessageSender {
    let _inside = tokio.enter();
    MessageSender::start(Arc::clone(store), Arc::clone(channels), config.clone(), bus)
}

fn eml_files(folder: &Path) -> usize {
    std::fs::read_dir(folder)
        .map(|dir| {
            dir.filter(|f| {
                f.as_ref()
                    .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "eml"))
            })
            .count()
        })
        .unwrap_or(0)
}

fn sends_by_the_policy(fixture: &Fixture) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let rome = chrono_tz::Europe::Rome;
    // Saturday 28 March 2026, 23:30 in Rome; the clocks go forward at 02:00.
    let late = rome
        .with_ymd_and_hms(2026, 3, 28, 23, 30, 0)
        .unwrap()
        .timestamp_millis();
    let morning = rome
        .with_ymd_and_hms(2026, 3, 29, 8, 0, 0)
        .unwrap()
        .timestamp_millis();
    let clock = Arc::new(ManualClock::at(late));
    let store = Arc::new(fixture.second_node().with_clock(clock.clone()));
    let source = store.bootstrap(None, None).unwrap().source.id;
    store
        .ingest(&incoming(
            &store,
            source,
            vec![
                json!({"type": "identify", "userId": "anna", "traits": {"email": "anna@example.it", "first_name": "Anna"}}),
                json!({"type": "identify", "userId": "joe", "traits": {"email": "joe@example.com", "timezone": "America/New_York"}}),
            ],
        ))
        .unwrap();
    let anna = store
        .resolve_profile(&key(&store, "user_id:anna"))
        .unwrap()
        .unwrap();
    let joe = store
        .resolve_profile(&key(&store, "user_id:joe"))
        .unwrap()
        .unwrap();
    Messages::of(&store)
        .unwrap()
        .create(&MessageInput {
            slug: "promo".into(),
            name: "Promo".into(),
            description: String::new(),
            content: Content {
                channel: Channel::Email,
                subject: Some("Per te, {{ profile.first_name | default: 'cliente' }}".into()),
                body: "Sconto del 10%".into(),
                format: Format::Text,
                destination: None,
            },
        })
        .unwrap();

    let folder = tempfile::tempdir().unwrap();
    let channels = Arc::new(Channels {
        email: Some(EmailChannel {
            sender: Sender::new("Negozio <news@negozio.example>", None).unwrap(),
            mailer: Mailer::folder(folder.path()).unwrap(),
            links_base: Some("https://crm.negozio.example".into()),
            tracking: true,
            return_path: None,
        }),
        sms: None,
    });
    let config = SenderConfig {
        poll: Duration::from_millis(50),
        policy: SendPolicy {
            caps: vec![FrequencyCap::parse("1 email per 7d").unwrap()],
            sending_hours: Some(parse_quiet_hours("21:00-08:00").unwrap()),
            zone: rome,
            ..SendPolicy::default()
        },
        ..SenderConfig::default()
    };
    let bus = Bus::new();
    let sender = start(&tokio, &store, &channels, &config, &bus);

    owe_now(&store, "anna/promo-1", anna, false);
    owe_now(&store, "anna/receipt", anna, true);
    owe_now(&store, "joe/promo-1", joe, false);
    // A flash sale over by morning skips quiet hours instead of waiting them out.
    owe_choosing(&store, "anna/flash", anna, false, InQuietHours::Skip);
    bus.publish(Happened::MessagesOwed);
    until("the receipt and joe's promo went", || {
        status(&store, "anna/receipt").0 == SendStatus::Sent
            && status(&store, "joe/promo-1").0 == SendStatus::Sent
    });
    until("the flash sale was skipped", || {
        status(&store, "anna/flash").0 == SendStatus::Skipped
    });
    assert_eq!(
        status(&store, "anna/flash").1.as_deref(),
        Some("quiet_hours")
    );
    assert_eq!(
        status(&store, "anna/promo-1"),
        (SendStatus::Owed, Some("quiet_hours".into()), morning),
        "anna's promo waits for 08:00 in Rome (06:00 UTC, after the clocks went forward)"
    );
    assert_eq!(
        Outbox::of(&store)
            .unwrap()
            .by_key("anna/promo-1")
            .unwrap()
            .unwrap()
            .attempts,
        0,
        "waiting is not an attempt"
    );

    clock.set(morning);
    bus.publish(Happened::MessagesOwed);
    until("anna's promo went in the morning", || {
        status(&store, "anna/promo-1").0 == SendStatus::Sent
    });
    // Over the cap: one marketing e-mail a week (the receipt does not count).
    owe_now(&store, "anna/promo-2", anna, false);
    bus.publish(Happened::MessagesOwed);
    until("anna's second promo was skipped", || {
        status(&store, "anna/promo-2").0 == SendStatus::Skipped
    });
    assert_eq!(
        status(&store, "anna/promo-2").1.as_deref(),
        Some("frequency_cap")
    );
    assert_eq!(eml_files(folder.path()), 3);
    tokio.block_on(sender.stop());

    // Every outcome on anna's timeline, once.
    let events = store.events_of(anna).unwrap();
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| e.event.as_deref())
        .filter(|n| n.starts_with("Message "))
        .collect();
    assert_eq!(
        names.iter().filter(|n| **n == "Message Sent").count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| **n == "Message Skipped").count(),
        2,
        "the flash sale and the cap: {names:?}"
    );

    // A send left `sending` by a process that stopped is uncertain, never sent again.
    owe_now(&store, "joe/interrupted", joe, true);
    store
        .write_transaction(WriteDomain::Decisions, |conn| {
            conn.execute(
                "UPDATE message_sends SET status = 'sending', attempts = 1 WHERE idempotency_key = 'joe/interrupted'",
                &[],
            )
        })
        .unwrap();
    let sender = start(&tokio, &store, &channels, &config, &bus);
    until("the restarted sender settled the interrupted send", || {
        status(&store, "joe/interrupted").0 == SendStatus::Uncertain
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(eml_files(folder.path()), 3, "sent again after a stop");
    tokio.block_on(sender.stop());
}

#[test]
fn sqlite_sends_by_the_policy() {
    sends_by_the_policy(&Fixture::sqlite());
}

#[test]
fn postgres_sends_by_the_policy() {
    match Fixture::postgres() {
        Some(fixture) => sends_by_the_policy(&fixture),
        None => eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set"),
    }
}
