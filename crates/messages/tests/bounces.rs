//! The inbound SMTP listener on a real store (SQLite, and PostgreSQL when
//! `PROSSIMO_TEST_DATABASE_URL` is set), spoken to by lettre's SMTP client: a DSN about
//! one of our e-mails is a hard bounce that opts the customer out of e-mail, an ARF report
//! a complaint that does the same, each once; what is not a report is accepted and
//! changes nothing. tests/sdk/email.sh feeds it a DSN that Postfix itself wrote.
// Tests: a failing unwrap is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use prossimo_bus::Bus;
use prossimo_messages::{
    BounceListener, Channel, ConsentState, Consents, InQuietHours, NewSend, Origin, Outbox,
    Outcome, owe,
};
use prossimo_store::testsuite::{Fixture, incoming, key};
use prossimo_store::{Store, WriteDomain};
use serde_json::json;

fn sent_email(store: &Store, user: &str, message_id: &str) -> i64 {
    let source = store.bootstrap(None, None).unwrap().source.id;
    store
        .ingest(&incoming(
            store,
            source,
            vec![json!({"type": "identify", "userId": user, "traits": {"email": format!("{user}@example.it")}})],
        ))
        .unwrap();
    let profile = store
        .resolve_profile(&key(store, &format!("user_id:{user}")))
        .unwrap()
        .unwrap();
    let send = NewSend {
        idempotency_key: format!("{user}/promo"),
        profile_id: profile,
        origin: Origin::Test,
        channel: Channel::Email,
        template: "promo".into(),
        topic: Some("offers".into()),
        transactional: false,
        in_quiet_hours: InQuietHours::Wait,
        context: json!({}),
    };
    let now = store.now_ms();
    let outbox = Outbox::of(store).unwrap();
    store
        .write_transaction(WriteDomain::Decisions, |conn| owe(conn, &send, now))
        .unwrap();
    let claimed = outbox.claim(now, 10).unwrap();
    let id = claimed
        .iter()
        .find(|s| s.idempotency_key == send.idempotency_key)
        .unwrap()
        .id;
    outbox
        .record(
            &[(
                id,
                Outcome::Sent {
                    recipient: format!("{user}@example.it"),
                    message_id: format!("<{message_id}>"),
                    detail: "250 OK".into(),
                },
            )],
            now,
        )
        .unwrap();
    profile
}

fn dsn(about: &str, status: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.negozio.example\r\nTo: bounces@negozio.example\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.negozio.example\r\n\r\nFinal-Recipient: rfc822; x@example.it\r\nAction: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Negozio <news@negozio.example>\r\nMessage-ID: <{about}>\r\nSubject: Promo\r\n\r\n--B--\r\n"
    )
}

fn arf(about: &str) -> String {
    format!(
        "From: fbl@provider.example\r\nTo: bounces@negozio.example\r\nSubject: Abuse report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"A\"\r\n\r\n--A\r\nContent-Type: text/plain\r\n\r\nAbuse report.\r\n--A\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n\r\n--A\r\nContent-Type: message/rfc822\r\n\r\nFrom: Negozio <news@negozio.example>\r\nMessage-ID: <{about}>\r\nSubject: Promo\r\n\r\nCiao\r\n--A--\r\n"
    )
}

fn hand(tokio: &tokio::runtime::Runtime, port: u16, raw: &str) {
    let _inside = tokio.enter();
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let envelope = Envelope::new(None, vec!["bounces@negozio.example".parse().unwrap()]).unwrap();
    let answer = tokio
        .block_on(transport.send_raw(&envelope, raw.as_bytes()))
        .unwrap();
    assert!(answer.is_positive(), "{answer:?}");
}

fn events(store: &Store, profile: i64, name: &str) -> Vec<serde_json::Value> {
    store
        .events_of(profile)
        .unwrap()
        .into_iter()
        .filter(|e| e.event.as_deref() == Some(name))
        .map(|e| e.properties)
        .collect()
}

fn bounces_and_complaints(fixture: &Fixture) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let store = Arc::new(fixture.second_node());
    let bruno = sent_email(&store, "bruno", "b1.prossimo@negozio.example");
    let carla = sent_email(&store, "carla", "c1.prossimo@negozio.example");
    let listener = BounceListener::start(Arc::clone(&store), "127.0.0.1:0", Bus::new()).unwrap();
    let port = listener.local_addr().port();

    hand(&tokio, port, &dsn("b1.prossimo@negozio.example", "5.1.1"));
    hand(&tokio, port, &dsn("b1.prossimo@negozio.example", "5.1.1"));
    hand(&tokio, port, &arf("c1.prossimo@negozio.example"));
    hand(
        &tokio,
        port,
        &dsn("someone-else@elsewhere.example", "5.1.1"),
    );
    hand(
        &tokio,
        port,
        "From: anna@example.it\r\nSubject: Re: Promo\r\n\r\nGrazie!\r\n",
    );
    listener.stop();

    let bounced = events(&store, bruno, "Message Bounced");
    assert_eq!(bounced.len(), 1, "handed twice, recorded once: {bounced:?}");
    assert_eq!(bounced[0]["bounce"], "hard");
    assert_eq!(bounced[0]["code"], "5.1.1");
    assert_eq!(bounced[0]["send"], "bruno/promo");
    let complained = events(&store, carla, "Message Complained");
    assert_eq!(complained.len(), 1);
    assert_eq!(complained[0]["feedback_type"], "abuse");
    let on_list = prossimo_messages::Suppressions::of(&store)
        .unwrap()
        .suppressed(&[
            (Channel::Email, "Bruno@Example.it".into()),
            (Channel::Email, "carla@example.it".into()),
            (Channel::Email, "anna@example.it".into()),
        ])
        .unwrap();
    assert_eq!(
        on_list.len(),
        2,
        "the bounced and the complaining addresses, whatever their case: {on_list:?}"
    );
    let consents = Consents::of(&store).unwrap();
    for (profile, source) in [(bruno, "hard_bounce"), (carla, "complaint")] {
        let consent = consents.of_profiles(&[profile]).unwrap();
        assert!(
            consent.iter().any(|c| c.channel == Channel::Email
                && c.topic == "*"
                && c.state == ConsentState::OptedOut
                && c.source == source),
            "{source}: {consent:?}"
        );
    }
}

#[test]
fn sqlite_bounces_and_complaints() {
    bounces_and_complaints(&Fixture::sqlite());
}

#[test]
fn postgres_bounces_and_complaints() {
    if let Some(fixture) = Fixture::postgres() {
        bounces_and_complaints(&fixture);
    }
}
