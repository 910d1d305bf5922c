//! SMS and webhook messages on a real store (SQLite, and PostgreSQL when
//! `PROSSIMO_TEST_DATABASE_URL` is set). The SMS provider is an HTTP server started here
//! that answers as Twilio's Messages API is documented to (basic auth, form fields, `201`
//! with a sid, JSON errors with Twilio's codes); tests/sdk/sms.sh runs the same against a
//! running server with callbacks signed by Twilio's own library.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use prossimo_act::destinations::{DestinationInput, DestinationKind, Destinations};
use prossimo_bus::{Bus, Happened};
use prossimo_messages::{
    Bounce, Channel, Channels, ConsentState, Consents, Content, Deliveries, Format, InQuietHours,
    MessageInput, MessageSender, Messages, NewSend, Origin, Outbox, ProviderConfig, Report,
    SendRetry, SendStatus, SenderConfig, SenderIds, SmsChannel, Texter, owe, sms_report,
};
use prossimo_store::testsuite::{Fixture, incoming, key};
use prossimo_store::{Store, WriteDomain};
use serde_json::{Value, json};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "auth-token-of-the-test";

/// What the provider was asked to send.
#[derive(Debug, Clone)]
struct Asked {
    to: String,
    from: String,
    body: String,
    status_callback: Option<String>,
}

#[derive(Default)]
struct ProviderState {
    asked: Vec<Asked>,
    throttled_once: bool,
}

type Shared = Arc<Mutex<ProviderState>>;

/// Twilio's Messages endpoint as documented: `+393330000429` is throttled once (429,
/// code 20429), `+393330021610` replied STOP (400, code 21610), `+393330021211` is not
/// a number Twilio takes (400, code 21211); everything else is queued (201).
async fn create_message(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        );
    }
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let to = form.get("To").cloned().unwrap_or_default();
    let mut state = state.lock().unwrap();
    let refuse = |status: StatusCode, code: u32, message: &str| {
        (
            status,
            axum::Json(
                json!({"code": code, "message": message, "status": status.as_u16(),
                "more_info": format!("https://www.twilio.com/docs/errors/{code}")}),
            ),
        )
    };
    if to == "+393330000429" && !state.throttled_once {
        state.throttled_once = true;
        return refuse(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
    }
    if to == "+393330021610" {
        return refuse(
            StatusCode::BAD_REQUEST,
            21610,
            "Attempt to send to unsubscribed recipient",
        );
    }
    if to == "+393330021211" {
        return refuse(
            StatusCode::BAD_REQUEST,
            21211,
            "The 'To' number is not a valid phone number.",
        );
    }
    state.asked.push(Asked {
        to: to.clone(),
        from: form.get("From").cloned().unwrap_or_default(),
        body: form.get("Body").cloned().unwrap_or_default(),
        status_callback: form.get("StatusCallback").cloned(),
    });
    let sid = format!("SM{:032}", state.asked.len());
    (
        StatusCode::CREATED,
        axum::Json(
            json!({"sid": sid, "status": "queued", "to": to, "num_segments": "1",
            "account_sid": ACCOUNT, "direction": "outbound-api"}),
        ),
    )
}

fn person(store: &Store, source: i64, user: &str, traits: Value) -> i64 {
    store
        .ingest(&incoming(
            store,
            source,
            vec![json!({"type": "identify", "userId": user, "traits": traits})],
        ))
        .unwrap();
    store
        .resolve_profile(&key(store, &format!("user_id:{user}")))
        .unwrap()
        .unwrap()
}

fn message(store: &Store, slug: &str, content: Content) {
    Messages::of(store)
        .unwrap()
        .create(&MessageInput {
            slug: slug.into(),
            name: slug.into(),
            description: String::new(),
            content,
        })
        .unwrap();
}

fn owe_message(store: &Store, send_key: &str, profile: i64, channel: Channel, template: &str) {
    let send = NewSend {
        idempotency_key: send_key.into(),
        profile_id: profile,
        origin: Origin::Test,
        channel,
        template: template.into(),
        topic: Some("offers".into()),
        transactional: false,
        in_quiet_hours: InQuietHours::Wait,
        context: json!({"event": {"properties": {"cart_id": "c-42", "total": 129.9}}}),
    };
    let now = store.now_ms();
    store
        .write_transaction(WriteDomain::Decisions, |conn| owe(conn, &send, now))
        .unwrap();
}

fn outcome(store: &Store, send_key: &str) -> (SendStatus, Option<String>) {
    let send = Outbox::of(store)
        .unwrap()
        .by_key(send_key)
        .unwrap()
        .unwrap();
    (send.status, send.reason)
}

fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sms_and_webhooks(fixture: &Fixture) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let provider = Shared::default();
    let listener = tokio
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route(
            &format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json"),
            post(create_message),
        )
        .with_state(Arc::clone(&provider));
    tokio.spawn(async move { axum::serve(listener, app).await });

    let store = Arc::new(fixture.second_node());
    let source = store.bootstrap(None, None).unwrap().source.id;
    let anna = person(
        &store,
        source,
        "anna",
        json!({"phone": "347 123 4567", "first_name": "Anna"}),
    );
    let pierre = person(
        &store,
        source,
        "pierre",
        json!({"phone": "+33 6 12 34 56 78", "first_name": "Pierre"}),
    );
    let busy = person(&store, source, "busy", json!({"phone": "+39 333 000 0429"}));
    let stopped = person(
        &store,
        source,
        "stopped",
        json!({"phone": "+39 333 002 1610"}),
    );
    let landline = person(
        &store,
        source,
        "wrong",
        json!({"phone": "+39 333 002 1211"}),
    );
    let nobody = person(&store, source, "nobody", json!({"first_name": "Nessuno"}));
    let sms = |body: &str| Content {
        channel: Channel::Sms,
        subject: None,
        body: body.into(),
        format: Format::Html,
        destination: None,
    };
    message(
        &store,
        "cart-sms",
        sms(
            "Ciao {{ profile.first_name }}, il carrello {{ event.properties.cart_id }} ti aspetta: è quasi tuo! {{ unsubscribe_url }}",
        ),
    );
    message(&store, "essay", sms(&"Lunghissimo. ".repeat(30)));
    let webhook = |destination: &str| {
        Content {
        channel: Channel::Webhook,
        subject: None,
        body: r#"{"customer": "{{ profile.first_name }}", "cart": "{{ event.properties.cart_id }}", "total": "{{ event.properties.total }}"}"#.into(),
        format: Format::Html,
        destination: Some(destination.into()),
    }
    };
    message(&store, "to-crm", webhook("crm"));
    message(&store, "to-nowhere", webhook("nowhere"));
    message(&store, "to-audiences", webhook("audiences"));
    let destinations = Destinations::of(&store).unwrap();
    let crm = destinations
        .create(&DestinationInput {
            name: "crm".into(),
            kind: DestinationKind::Messages,
            url: "https://crm.example/hooks/prossimo".into(),
            filter: None,
            secret: None,
            enabled: true,
        })
        .unwrap();
    destinations
        .create(&DestinationInput {
            name: "audiences".into(),
            kind: DestinationKind::Segments,
            url: "https://ads.example/hooks".into(),
            filter: None,
            secret: None,
            enabled: true,
        })
        .unwrap();

    let channels = Arc::new(Channels {
        email: None,
        sms: Some(SmsChannel {
            texter: Texter::provider(ProviderConfig {
                api_url,
                account_sid: ACCOUNT.into(),
                auth_token: TOKEN.into(),
                timeout: Duration::from_secs(5),
            })
            .unwrap(),
            senders: SenderIds::new(
                "+393000000000",
                BTreeMap::from([("IT".into(), "Negozio".into())]),
            )
            .unwrap(),
            default_country: Some(phonenumber::country::Id::IT),
            max_segments: 2,
            links_base: Some("https://crm.negozio.example".into()),
        }),
    });
    let config = SenderConfig {
        poll: Duration::from_millis(50),
        retry: SendRetry {
            first_delay: Duration::from_millis(100),
            ..SendRetry::default()
        },
        ..SenderConfig::default()
    };
    let bus = Bus::new();
    let sender = {
        let _inside = tokio.enter();
        MessageSender::start(Arc::clone(&store), channels, config, &bus)
    };

    owe_message(&store, "anna/cart", anna, Channel::Sms, "cart-sms");
    owe_message(&store, "pierre/cart", pierre, Channel::Sms, "cart-sms");
    owe_message(&store, "busy/cart", busy, Channel::Sms, "cart-sms");
    owe_message(&store, "stopped/cart", stopped, Channel::Sms, "cart-sms");
    owe_message(&store, "wrong/cart", landline, Channel::Sms, "cart-sms");
    owe_message(&store, "nobody/cart", nobody, Channel::Sms, "cart-sms");
    owe_message(&store, "anna/essay", anna, Channel::Sms, "essay");
    owe_message(&store, "anna/crm", anna, Channel::Webhook, "to-crm");
    owe_message(&store, "anna/nowhere", anna, Channel::Webhook, "to-nowhere");
    owe_message(
        &store,
        "anna/audiences",
        anna,
        Channel::Webhook,
        "to-audiences",
    );
    bus.publish(Happened::MessagesOwed);
    until("every send settled", || {
        [
            "anna/cart",
            "pierre/cart",
            "busy/cart",
            "stopped/cart",
            "wrong/cart",
            "nobody/cart",
            "anna/essay",
            "anna/crm",
            "anna/nowhere",
            "anna/audiences",
        ]
        .iter()
        .all(|k| !matches!(outcome(&store, k).0, SendStatus::Owed | SendStatus::Sending))
    });

    // Texts: E.164, the sender of the recipient's country, the callback, the Liquid.
    let asked = provider.lock().unwrap().asked.clone();
    let to_anna = asked.iter().find(|a| a.to == "+393471234567").unwrap();
    assert_eq!(to_anna.from, "Negozio");
    assert!(
        to_anna.body.starts_with(
            "Ciao Anna, il carrello c-42 ti aspetta: è quasi tuo! https://crm.negozio.example/u/"
        ),
        "{}",
        to_anna.body
    );
    let callback = to_anna.status_callback.clone().unwrap();
    assert!(callback.starts_with("https://crm.negozio.example/hooks/sms/"));
    let to_pierre = asked.iter().find(|a| a.to == "+33612345678").unwrap();
    assert_eq!(to_pierre.from, "+393000000000", "no sender id for France");
    assert_eq!(outcome(&store, "anna/cart").0, SendStatus::Sent);
    let sent = Outbox::of(&store)
        .unwrap()
        .by_key("anna/cart")
        .unwrap()
        .unwrap();
    assert!(sent.message_id.as_deref().unwrap().starts_with("SM"));
    assert_eq!(
        outcome(&store, "busy/cart").0,
        SendStatus::Sent,
        "throttled once, sent on the retry"
    );
    assert_eq!(
        Outbox::of(&store)
            .unwrap()
            .by_key("busy/cart")
            .unwrap()
            .unwrap()
            .attempts,
        2
    );
    assert_eq!(
        outcome(&store, "stopped/cart"),
        (SendStatus::Skipped, Some("unsubscribed".into()))
    );
    let consent = Consents::of(&store)
        .unwrap()
        .of_profiles(&[stopped])
        .unwrap();
    assert!(
        consent.iter().any(|c| c.channel == Channel::Sms
            && c.state == ConsentState::OptedOut
            && c.source == "provider"),
        "a STOP at the provider is an opt-out here: {consent:?}"
    );
    assert_eq!(
        outcome(&store, "wrong/cart"),
        (SendStatus::Skipped, Some("bad_address".into()))
    );
    assert_eq!(
        outcome(&store, "nobody/cart"),
        (SendStatus::Skipped, Some("no_address".into()))
    );
    assert_eq!(
        outcome(&store, "anna/essay"),
        (SendStatus::Failed, Some("too_long".into())),
        "390 characters are 3 segments, over the 2 allowed"
    );
    assert_eq!(asked.len(), 3, "anna, pierre, busy: {asked:?}");

    // The stopped customer's next text is refused here, before the provider.
    owe_message(&store, "stopped/again", stopped, Channel::Sms, "cart-sms");
    bus.publish(Happened::MessagesOwed);
    until(
        "the second text to the stopped customer was skipped",
        || outcome(&store, "stopped/again").0 == SendStatus::Skipped,
    );
    assert_eq!(provider.lock().unwrap().asked.len(), 3);

    // A webhook message is queued for its destination, the JSON typed and whole.
    assert_eq!(outcome(&store, "anna/crm").0, SendStatus::Sent);
    let queued = destinations.deliveries(crm.id, None, None, 10).unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].webhook_id, "msg_send_anna/crm");
    assert_eq!(queued[0].payload["type"], "message.webhook");
    assert_eq!(queued[0].payload["data"]["message"], "to-crm");
    assert_eq!(
        queued[0].payload["data"]["body"],
        json!({"customer": "Anna", "cart": "c-42", "total": 129.9})
    );
    assert_eq!(
        outcome(&store, "anna/nowhere"),
        (SendStatus::Skipped, Some("destination_missing".into()))
    );
    assert_eq!(
        outcome(&store, "anna/audiences"),
        (SendStatus::Skipped, Some("destination_missing".into())),
        "a segments destination does not receive messages"
    );

    // The provider reports: delivered (once, however often), and a hard bounce.
    let deliveries = Deliveries::of(&store).unwrap();
    let token = callback.rsplit('/').next().unwrap();
    let send = deliveries.sms_send(token).unwrap().unwrap();
    assert_eq!(send.idempotency_key, "anna/cart");
    assert!(deliveries.sms_send("1.forged").unwrap().is_none());
    let now = store.now_ms();
    assert!(deliveries.record(&send, &Report::Delivered, now).unwrap());
    assert!(!deliveries.record(&send, &Report::Delivered, now).unwrap());
    let to_pierre_send = Outbox::of(&store)
        .unwrap()
        .by_key("pierre/cart")
        .unwrap()
        .unwrap();
    let bounce = sms_report("undelivered", Some("30006")).unwrap();
    assert!(matches!(
        bounce,
        Report::Bounced {
            bounce: Bounce::Hard,
            ..
        }
    ));
    deliveries.record(&to_pierre_send, &bounce, now).unwrap();
    let consent = Consents::of(&store)
        .unwrap()
        .of_profiles(&[pierre])
        .unwrap();
    assert!(consent.iter().any(|c| c.channel == Channel::Sms
        && c.state == ConsentState::OptedOut
        && c.source == "hard_bounce"));
    // The number is now on the SMS suppression list: the next text is not even screened
    // for consent.
    owe_message(&store, "pierre/again", pierre, Channel::Sms, "cart-sms");
    bus.publish(Happened::MessagesOwed);
    until("pierre's next text was skipped", || {
        outcome(&store, "pierre/again").0 == SendStatus::Skipped
    });
    assert_eq!(
        outcome(&store, "pierre/again").1.as_deref(),
        Some("suppressed")
    );
    tokio.block_on(sender.stop());

    let names = |profile: i64| -> Vec<String> {
        store
            .events_of(profile)
            .unwrap()
            .iter()
            .filter_map(|e| e.event.clone())
            .filter(|n| n.starts_with("Message "))
            .collect()
    };
    let anna_events = names(anna);
    assert_eq!(
        anna_events
            .iter()
            .filter(|n| *n == "Message Delivered")
            .count(),
        1,
        "{anna_events:?}"
    );
    assert!(names(pierre).contains(&"Message Bounced".to_owned()));
    let bounced = store
        .events_of(pierre)
        .unwrap()
        .into_iter()
        .find(|e| e.event.as_deref() == Some("Message Bounced"))
        .unwrap();
    assert_eq!(bounced.properties["bounce"], "hard");
    assert_eq!(bounced.properties["code"], "30006");
}

#[test]
fn sqlite_sms_and_webhooks() {
    sms_and_webhooks(&Fixture::sqlite());
}

#[test]
fn postgres_sms_and_webhooks() {
    if let Some(fixture) = Fixture::postgres() {
        sms_and_webhooks(&fixture);
    }
}
