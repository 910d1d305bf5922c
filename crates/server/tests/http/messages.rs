//! Messages over HTTP: saved and checked, previewed for a customer, test-sent through the
//! real outbox and sender to a folder of `.eml` files, the outcome on the timeline.

use std::sync::Arc;

use axum::http::StatusCode;
use prossimo_messages::{
    Channel, Channels, EmailChannel, InQuietHours, Links, Mailer, MessageSender, NewSend, Origin,
    Outbox, SendStatus, Sender, SenderConfig, owe, signature,
};
use serde_json::json;

use crate::harness::*;

const CART: &str = r#"<mjml><mj-body><mj-section><mj-column>
  <mj-text>Ciao {{ profile.first_name | default: "cliente" }}, il tuo carrello:</mj-text>
  {% for p in event.properties.products %}<mj-text>{{ p.name }} — € {{ p.price }}</mj-text>{% endfor %}
</mj-column></mj-section></mj-body></mjml>"#;

#[tokio::test]
async fn a_message_is_checked_previewed_and_test_sent_to_a_folder() {
    let app = TestApp::new();
    // Every problem, with its field and position.
    let (status, body) = app
        .admin(
            "POST",
            "/v1/messages",
            Some(json!({"slug": "cart", "channel": "email", "subject": "Ciao {{ profile.first_name ", "body": "{% if x %}", "format": "html"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_definition");
    let fields: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["subject", "body"], "{body}");
    assert_eq!(body["details"][0]["line"], 1, "{body}");
    let (status, body) = app
        .admin(
            "POST",
            "/v1/messages",
            Some(json!({"slug": "new", "channel": "email", "subject": "s", "body": "b"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("message slug"),
        "{body}"
    );

    let (status, body) = app
        .admin(
            "POST",
            "/v1/messages",
            Some(json!({"slug": "cart", "name": "Carrello", "channel": "email", "subject": "{{ profile.first_name }}, hai dimenticato qualcosa?", "body": CART, "format": "mjml"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["format"].as_str(), body["channel"].as_str()),
        (Some("mjml"), Some("email"))
    );
    let (status, _) = app
        .admin(
            "POST",
            "/v1/messages",
            Some(json!({"slug": "cart", "channel": "sms", "body": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, body) = app
        .post(
            "/v1/identify",
            json!({"userId": "giulia", "traits": {"first_name": "Giulia", "email": "giulia@example.it"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = json!({"properties": {"products": [{"name": "Borsa", "price": 89.5}]}});
    let (status, preview) = app
        .poll_admin(
            "POST",
            "/v1/messages/cart/preview",
            json!({"profile": "user_id:giulia", "event": event}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["subject"], "Giulia, hai dimenticato qualcosa?");
    assert!(
        preview["html"].as_str().unwrap().contains("Borsa — € 89.5"),
        "{preview}"
    );
    assert!(
        preview["text"].as_str().unwrap().contains("Ciao Giulia"),
        "{preview}"
    );
    let (status, body) = app
        .admin(
            "POST",
            "/v1/messages/cart/preview",
            Some(json!({"profile": "user_id:nobody"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // A test send goes through the outbox and the sender, to a folder of .eml files, and
    // its outcome is an event on the customer's timeline.
    let folder = app.dir.path().join("mail");
    let channels = Channels {
        email: Some(EmailChannel {
            sender: Sender::new("Negozio <news@negozio.example>", None).unwrap(),
            mailer: Mailer::folder(&folder).unwrap(),
            links_base: Some("https://crm.negozio.example".into()),
            tracking: true,
            return_path: None,
        }),
        sms: None,
    };
    let sender = MessageSender::start(
        Arc::clone(&app.store),
        Arc::new(channels),
        SenderConfig::default(),
        &app.bus,
    );
    let (status, body) = app
        .admin(
            "POST",
            "/v1/messages/cart/test",
            Some(json!({"profile": "user_id:giulia", "event": event})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let key = body["send"].as_str().unwrap().to_owned();
    let outbox = Outbox::of(&app.store).unwrap();
    for _ in 0..300 {
        if outbox
            .by_key(&key)
            .unwrap()
            .is_some_and(|s| s.status == SendStatus::Sent)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let send = outbox.by_key(&key).unwrap().unwrap();
    assert_eq!(send.status, SendStatus::Sent, "{send:?}");
    assert_eq!(send.recipient.as_deref(), Some("giulia@example.it"));
    let files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("To: giulia@example.it"), "{eml}");
    assert!(eml.contains(send.message_id.as_deref().unwrap()), "{eml}");
    let timeline = app
        .poll("/v1/profiles/user_id:giulia/events", |_, body| {
            body.to_string().contains("Message Sent")
        })
        .await;
    assert!(timeline.to_string().contains(&key), "{timeline}");
    assert!(
        !eml.contains("List-Unsubscribe"),
        "a test send is transactional: nothing to unsubscribe from"
    );
    sender.stop().await;

    // Its links go through the server, which records opens and clicks: Apple's privacy
    // proxy (user agent exactly "Mozilla/5.0") opens as a machine; a click redirects only
    // to the target its token signs.
    let html_part = eml.replace("=\r\n", "").replace("=3D", "=");
    assert!(
        html_part.contains("https://crm.negozio.example/o/"),
        "an open pixel: {eml}"
    );
    let links = prossimo_messages::Links::of(&app.store).unwrap();
    let base = "https://crm.negozio.example";
    let id = send.id;
    let pixel = links.open_url(base, id).replace(base, "");
    let opened = app
        .browse(
            axum::http::Request::get(&pixel)
                .header("user-agent", "Mozilla/5.0")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(opened.status, StatusCode::OK);
    assert_eq!(opened.headers["content-type"], "image/gif");
    let click = links
        .click_url(base, id, "https://shop.example/cart?x=1&y=2")
        .replace(base, "");
    let clicked = app
        .browse(
            axum::http::Request::get(&click)
                .header(
                    "user-agent",
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
                )
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(clicked.status, StatusCode::FOUND);
    assert_eq!(
        clicked.headers["location"],
        "https://shop.example/cart?x=1&y=2"
    );
    let forged = click.replace("x%3D1", "x%3D2");
    let refused = app
        .browse(
            axum::http::Request::get(&forged)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::NOT_FOUND,
        "never an open redirect"
    );
    let events = app
        .poll("/v1/profiles/user_id:giulia/events", |_, body| {
            let text = body.to_string();
            text.contains("Message Opened") && text.contains("Message Clicked")
        })
        .await;
    let opened: Vec<&serde_json::Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "Message Opened")
        .collect();
    assert_eq!(opened.len(), 1, "{events}");
    assert_eq!(opened[0]["properties"]["machine"], true, "{events}");
    assert_eq!(opened[0]["properties"]["message"], "cart");

    let (status, _) = app.admin("DELETE", "/v1/messages/cart", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.admin("DELETE", "/v1/messages/cart", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn consent_is_recorded_with_its_history_and_an_unsubscribe_link_changes_it() {
    let app = TestApp::new();
    let (status, body) = app
        .post(
            "/v1/identify",
            json!({"userId": "marco", "traits": {"email": "marco@example.it"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .poll_admin(
            "PUT",
            "/v1/profiles/user_id:marco/consent",
            json!({"channel": "email", "topic": "offers", "state": "opted_in", "source": "signup_form"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["consent"][0]["state"], "opted_in", "{body}");
    assert_eq!(
        body["consent_history"][0]["source"], "signup_form",
        "{body}"
    );
    for (bad, field) in [
        (
            json!({"channel": "email", "topic": "Offerte!", "state": "opted_in"}),
            "topic",
        ),
        (
            json!({"channel": "fax", "topic": "offers", "state": "opted_in"}),
            "channel",
        ),
        (
            json!({"channel": "email", "topic": "offers", "state": "maybe"}),
            "state",
        ),
    ] {
        let (status, body) = app
            .admin("PUT", "/v1/profiles/user_id:marco/consent", Some(bad))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert!(body.to_string().contains(field), "{field}: {body}");
    }

    // A marketing send's unsubscribe link: a GET shows the page and changes nothing; the
    // mail client's one-click POST unsubscribes, once.
    let profile = app
        .store
        .resolve_profile(
            &prossimo_store::ProfileKey::parse("user_id:marco", app.store.identity()).unwrap(),
        )
        .unwrap()
        .unwrap();
    let send = prossimo_messages::NewSend {
        idempotency_key: "i1/offer".into(),
        profile_id: profile,
        origin: prossimo_messages::Origin::Test,
        channel: prossimo_messages::Channel::Email,
        template: "offer".into(),
        topic: Some("offers".into()),
        transactional: false,
        in_quiet_hours: prossimo_messages::InQuietHours::Wait,
        context: json!({}),
    };
    let now = app.store.now_ms();
    app.store
        .write_transaction(prossimo_store::WriteDomain::Decisions, |conn| {
            prossimo_messages::owe(conn, &send, now)
        })
        .unwrap();
    let id = Outbox::of(&app.store)
        .unwrap()
        .by_key("i1/offer")
        .unwrap()
        .unwrap()
        .id;
    let links = prossimo_messages::Links::of(&app.store).unwrap();
    let url = links.unsubscribe_url("https://crm.negozio.example", id);
    let path = url
        .strip_prefix("https://crm.negozio.example")
        .unwrap()
        .to_owned();
    let page = app
        .browse(
            axum::http::Request::get(&path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<form method=\"post\">"),
        "{}",
        page.body
    );
    let (_, body) = app
        .admin("GET", "/v1/profiles/user_id:marco/messages", None)
        .await;
    assert_eq!(
        body["consent"][0]["state"], "opted_in",
        "a GET changed nothing: {body}"
    );
    for _ in 0..2 {
        let done = app
            .browse(
                axum::http::Request::post(&path)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(axum::body::Body::from("List-Unsubscribe=One-Click"))
                    .unwrap(),
            )
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    }
    let (_, body) = app
        .admin("GET", "/v1/profiles/user_id:marco/messages", None)
        .await;
    assert_eq!(body["consent"][0]["state"], "opted_out", "{body}");
    assert_eq!(body["consent"][0]["source"], "one_click", "{body}");
    assert_eq!(
        body["consent_history"].as_array().unwrap().len(),
        2,
        "once: {body}"
    );
    assert_eq!(body["sends"][0]["send"], "i1/offer", "{body}");
    let events = app
        .poll("/v1/profiles/user_id:marco/events", |_, body| {
            body.to_string().contains("Message Unsubscribed")
        })
        .await;
    assert_eq!(
        events.to_string().matches("Message Unsubscribed").count(),
        1,
        "{events}"
    );

    // A forged or unknown token is refused.
    let forged = path.replacen(&format!("/u/{id}."), &format!("/u/{}.", id + 1), 1);
    for bad in [forged.as_str(), "/u/1.00", "/u/nonsense"] {
        let reply = app
            .browse(
                axum::http::Request::post(bad)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{bad}");
    }
}

/// An SMS provider's status callback: signed by the provider (`X-Twilio-Signature` over
/// the URL and the form), recorded once as `Message Delivered` on the timeline; unsigned,
/// forged or not ours, refused and nothing recorded.
#[tokio::test]
async fn sms_status_callbacks_are_checked_and_recorded_once() {
    let app = TestApp::new();
    let (status, _) = app
        .post(
            "/v1/batch",
            json!({"batch": [{"type": "identify", "userId": "anna", "traits": {"phone": "+393471234567"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let store = Arc::clone(&app.store);
    let (url, anna) = tokio::task::spawn_blocking(move || {
        let anna = store
            .resolve_profile(&prossimo_store::testsuite::key(&store, "user_id:anna"))
            .unwrap()
            .unwrap();
        let now = store.now_ms();
        let send = NewSend {
            idempotency_key: "anna/sms".into(),
            profile_id: anna,
            origin: Origin::Test,
            channel: Channel::Sms,
            template: "cart-sms".into(),
            topic: None,
            transactional: false,
            in_quiet_hours: InQuietHours::Wait,
            context: json!({}),
        };
        store
            .write_transaction(prossimo_store::WriteDomain::Decisions, |conn| {
                owe(conn, &send, now)
            })
            .unwrap();
        let id = Outbox::of(&store)
            .unwrap()
            .by_key("anna/sms")
            .unwrap()
            .unwrap()
            .id;
        (
            Links::of(&store).unwrap().sms_status_url(LINKS_BASE, id),
            anna,
        )
    })
    .await
    .unwrap();
    let path = url.strip_prefix(LINKS_BASE).unwrap().to_owned();
    let fields = [
        ("MessageSid", "SM0001"),
        ("MessageStatus", "delivered"),
        ("To", "+393471234567"),
        ("AccountSid", "AC0001"),
    ];
    let form = form_encode(&fields);
    let owned: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let post = |path: String, signed: Option<String>| {
        let mut request = axum::http::Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(signed) = signed {
            request = request.header("x-twilio-signature", signed);
        }
        request.body(axum::body::Body::from(form.clone())).unwrap()
    };
    let (status, body) = app.send(post(path.clone(), None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = app
        .send(post(
            path.clone(),
            Some(signature("another-token", &url, &owned)),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let forged = format!("{LINKS_BASE}/hooks/sms/1.00");
    let (status, _) = app
        .send(post(
            "/hooks/sms/1.00".into(),
            Some(signature(SMS_AUTH_TOKEN, &forged, &owned)),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "signed, but not one of ours");
    for _ in 0..2 {
        let (status, body) = app
            .send(post(
                path.clone(),
                Some(signature(SMS_AUTH_TOKEN, &url, &owned)),
            ))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let store = Arc::clone(&app.store);
    let delivered = tokio::task::spawn_blocking(move || {
        store
            .events_of(anna)
            .unwrap()
            .iter()
            .filter(|e| e.event.as_deref() == Some("Message Delivered"))
            .count()
    })
    .await
    .unwrap();
    assert_eq!(delivered, 1, "reported twice, recorded once");
}

/// Suppression lists: added (an e-mail lowercased, a number in E.164), listed by page,
/// taken off; an entry that is not an address refuses the whole call.
#[tokio::test]
async fn suppression_lists_are_added_listed_and_taken_off() {
    let app = TestApp::new();
    let (status, body) = app
        .admin(
            "POST",
            "/v1/suppressions",
            Some(json!({"entries": [
                {"channel": "email", "address": "Info@Negozio.example"},
                {"channel": "sms", "address": "+39 347 123 4567"},
                {"channel": "email", "address": "info@negozio.example"}
            ], "reason": "import"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["added"], 2, "the same address twice is one entry");
    let (status, body) = app
        .admin(
            "POST",
            "/v1/suppressions",
            Some(json!({"entries": [
                {"channel": "email", "address": "ok@example.it"},
                {"channel": "email", "address": "not an address"}
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("entries[1].address"),
        "{body}"
    );
    let (status, body) = app
        .admin(
            "POST",
            "/v1/suppressions",
            Some(json!({"entries": [{"channel": "webhook", "address": "crm"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app.admin("GET", "/v1/suppressions?limit=1", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["suppressions"][0]["address"], "+393471234567");
    assert_eq!(body["suppressions"][0]["reason"], "import");
    let next = body["next"].as_str().unwrap().to_owned();
    let (_, body) = app
        .admin(
            "GET",
            &format!(
                "/v1/suppressions?limit=1&after={}",
                next.replace('+', "%2B")
            ),
            None,
        )
        .await;
    assert_eq!(
        body["suppressions"][0]["address"], "info@negozio.example",
        "{body}"
    );
    assert_eq!(body["next"], serde_json::Value::Null);
    let (_, body) = app
        .admin("GET", "/v1/suppressions?channel=email", None)
        .await;
    assert_eq!(body["suppressions"].as_array().unwrap().len(), 1, "{body}");
    let (status, _) = app
        .admin(
            "DELETE",
            "/v1/suppressions/email/INFO@negozio.example",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .admin(
            "DELETE",
            "/v1/suppressions/email/info@negozio.example",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
