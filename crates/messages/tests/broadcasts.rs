//! A broadcast on a real store (SQLite, and PostgreSQL when `PROSSIMO_TEST_DATABASE_URL`
//! is set): checked when created, owed in chunks from a cursor (a chunk owed by hand, the
//! rest by the sender), each member once, sent through the real sender to a folder, its
//! outcomes counted.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use prossimo_bus::{Bus, Happened};
use prossimo_decide::audiences::{Audiences, SegmentInput};
use prossimo_messages::{
    BroadcastInput, BroadcastState, Broadcasts, Channel, Channels, Content, EmailChannel, Format,
    InQuietHours, Mailer, MessageError, MessageInput, MessageSender, Messages, Sender,
    SenderConfig,
};
use prossimo_store::testsuite::{Fixture, incoming};
use serde_json::json;

fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn broadcast_to_an_audience(fixture: &Fixture) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let store = Arc::new(fixture.second_node());
    let source = store.bootstrap(None, None).unwrap().source.id;
    let mut people: Vec<_> = (0..5)
        .map(|i| json!({"type": "identify", "userId": format!("vip-{i}"), "traits": {"vip": true, "email": format!("vip{i}@example.it"), "first_name": format!("Cliente {i}")}}))
        .collect();
    people.push(json!({"type": "identify", "userId": "vip-no-mail", "traits": {"vip": true}}));
    people.push(json!({"type": "identify", "userId": "other", "traits": {"vip": false, "email": "other@example.it"}}));
    store.ingest(&incoming(&store, source, people)).unwrap();
    prossimo_decide::save_audience(
        &store,
        None,
        &SegmentInput {
            slug: "vip".into(),
            name: "VIP".into(),
            description: String::new(),
            definition: "traits.vip == true".into(),
        },
        None,
    )
    .unwrap();
    Messages::of(&store)
        .unwrap()
        .create(&MessageInput {
            slug: "saldi".into(),
            name: "Saldi".into(),
            description: String::new(),
            content: Content {
                channel: Channel::Email,
                subject: Some("{{ profile.first_name }}, i saldi ({{ broadcast.name }})".into()),
                body: "Da oggi.".into(),
                format: Format::Text,
                destination: None,
            },
        })
        .unwrap();
    let bus = Bus::new();
    let decider = prossimo_decide::Decider::spawn(
        Arc::clone(&store),
        Arc::new(prossimo_model::SystemClock),
        prossimo_decide::DeciderConfig::default(),
        bus.clone(),
    );
    let audiences = Audiences::of(&store).unwrap();
    let segment = audiences.segment("vip").unwrap().unwrap();
    until("the audience has its 6 members", || {
        audiences
            .segment_members(segment.id, None, 100)
            .unwrap()
            .len()
            == 6
    });
    decider.stop();

    let broadcasts = Broadcasts::of(&store).unwrap();
    let input = |audience: &str, message: &str| BroadcastInput {
        name: String::new(),
        audience: audience.into(),
        message: message.into(),
        topic: Some("offers".into()),
        transactional: false,
        in_quiet_hours: InQuietHours::Wait,
        created_by: "test".into(),
    };
    for (audience, message, field) in [
        ("vip", "nessuno", "message"),
        ("nobody", "saldi", "audience"),
    ] {
        match broadcasts.create(&input(audience, message)) {
            Err(MessageError::Problems(problems)) => assert_eq!(problems[0].field, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let created = broadcasts.create(&input("vip", "saldi")).unwrap();
    assert_eq!(created.state, BroadcastState::Owing);
    assert_eq!(created.name, "saldi → vip");
    // A first chunk by hand: the sender goes on from its cursor.
    assert_eq!(broadcasts.owe_next_chunk(2).unwrap(), 2);

    let folder = tempfile::tempdir().unwrap();
    let channels = Arc::new(Channels {
        email: Some(EmailChannel {
            sender: Sender::new("Negozio <news@negozio.example>", None).unwrap(),
            mailer: Mailer::folder(folder.path()).unwrap(),
            links_base: None,
            tracking: false,
            return_path: None,
        }),
        sms: None,
    });
    let sender = {
        let _inside = tokio.enter();
        MessageSender::start(
            Arc::clone(&store),
            channels,
            SenderConfig {
                poll: Duration::from_millis(50),
                ..SenderConfig::default()
            },
            &bus,
        )
    };
    bus.publish(Happened::MessagesOwed);
    until("every member's send settled", || {
        let outcomes = broadcasts.outcomes(created.id).unwrap();
        outcomes.get("sent") == Some(&5) && outcomes.get("skipped") == Some(&1)
    });
    tokio.block_on(sender.stop());
    let done = broadcasts.get(created.id).unwrap().unwrap();
    assert_eq!((done.state, done.owed), (BroadcastState::Owed, 6));
    assert!(done.owed_at.is_some());
    assert_eq!(
        broadcasts.owe_next_chunk(100).unwrap(),
        0,
        "nothing left owing"
    );
    let files: Vec<String> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    assert_eq!(files.len(), 5, "one e-mail per member with an address");
    assert!(
        files.iter().any(
            |f| f.contains("Subject: Cliente 0, i saldi (saldi =?utf-8?")
                || f.contains("Cliente 0, i saldi")
        ),
        "{:?}",
        files.first()
    );
    assert!(
        !files.iter().any(|f| f.contains("other@example.it")),
        "not a member"
    );
    assert_eq!(broadcasts.list(Some("vip"), 10).unwrap().len(), 1);
}

#[test]
fn sqlite_broadcast_to_an_audience() {
    broadcast_to_an_audience(&Fixture::sqlite());
}

#[test]
fn postgres_broadcast_to_an_audience() {
    if let Some(fixture) = Fixture::postgres() {
        broadcast_to_an_audience(&fixture);
    }
}
