//! Journeys over HTTP: drafts, checking, publishing and the journey's life.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn a_journey_is_drafted_checked_published_and_paused_over_the_api() {
    let app = TestApp::new();
    let broken = json!({
        "trigger": {"event": {"name": "Checkout Started"}},
        "steps": [
            {"id": "wait", "type": "wait", "until": {"condition": "p_alive <"}, "timeout": "1 hour", "on_timeout": "mail"},
            {"id": "mail", "type": "send", "channel": "email", "message": "cart-reminder"}
        ]
    });
    // Checking lists every problem with its step and field.
    let (status, body) = app
        .admin(
            "POST",
            "/v1/journeys/validate",
            Some(json!({"definition": broken})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_answer!("journey_problems", body);

    // A draft may have problems; publishing it may not.
    let (status, body) = app
        .admin(
            "POST",
            "/v1/journeys",
            Some(json!({"slug": "abandoned-cart", "name": "Abandoned cart", "definition": broken})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_answer!("journey_created", body);
    let (status, body) = app
        .admin("POST", "/v1/journeys/abandoned-cart/publish", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_definition");
    assert_eq!(body["details"].as_array().unwrap().len(), 2, "{body}");

    let fixed = json!({
        "trigger": {"event": {"name": "Checkout Started"}},
        "steps": [
            {"id": "wait", "type": "wait", "until": {"condition": "p_alive < 0.5"}, "timeout": "1h", "on_timeout": "mail"},
            {"id": "mail", "type": "send", "channel": "email", "message": "cart-reminder"}
        ]
    });
    let (status, body) = app
        .admin(
            "PUT",
            "/v1/journeys/abandoned-cart",
            Some(json!({"definition": fixed})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .admin("POST", "/v1/journeys/abandoned-cart/publish", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["version"].as_i64(), &body["journey"]["state"]),
        (Some(1), &json!("published"))
    );
    let (status, body) = app
        .admin("POST", "/v1/journeys/abandoned-cart/pause", None)
        .await;
    assert_eq!((status, &body["state"]), (StatusCode::OK, &json!("paused")));
    let (status, body) = app
        .admin("POST", "/v1/journeys/abandoned-cart/pause", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["message"], "a paused journey cannot be paused");

    let (status, detail) = app.get("/v1/journeys/abandoned-cart").await;
    assert_eq!(status, StatusCode::OK);
    assert_answer!("journey_detail", detail);
    let (_, list) = app.get("/v1/journeys").await;
    assert_eq!(list["journeys"][0]["slug"], "abandoned-cart");

    // Not a journey at all: the misspelt field is named, nothing saved.
    let (status, body) = app
        .admin(
            "POST",
            "/v1/journeys",
            Some(json!({"slug": "typo", "definition": {"trigger": "api", "step": []}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_field");
    assert!(body["message"].as_str().unwrap().contains("step"), "{body}");
    assert_eq!(app.get("/v1/journeys/typo").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_trigger_starts_a_transactional_journey_once_per_key() {
    let app = TestApp::new();
    let (status, body) = app
        .admin(
            "POST",
            "/v1/messages",
            Some(json!({"slug": "receipt", "channel": "email", "subject": "Ordine {{ event.properties.order_id }}", "body": "Grazie!", "format": "text"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let definition = json!({
        "trigger": "api",
        "steps": [{"id": "mail", "type": "send", "channel": "email", "message": "receipt", "transactional": true}]
    });
    for (slug, definition) in [
        ("order-confirmation", definition),
        (
            "cart",
            json!({"trigger": {"event": {"name": "Checkout Started"}}, "steps": [{"id": "x", "type": "exit"}]}),
        ),
    ] {
        let (status, body) = app
            .admin(
                "POST",
                "/v1/journeys",
                Some(json!({"slug": slug, "definition": definition})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .admin(
            "POST",
            "/v1/journeys/order-confirmation/trigger",
            Some(json!({"profile": "user_id:lia"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a draft cannot be triggered: {body}"
    );
    for slug in ["order-confirmation", "cart"] {
        let (status, body) = app
            .admin("POST", &format!("/v1/journeys/{slug}/publish"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let runner = prossimo_journeys::JourneyRunner::spawn(
        std::sync::Arc::clone(&app.store),
        app.store.clock(),
        prossimo_journeys::RunnerConfig {
            poll: std::time::Duration::from_millis(50),
            ..prossimo_journeys::RunnerConfig::default()
        },
        &app.bus,
    );
    let (status, _) = app
        .post(
            "/v1/identify",
            json!({"userId": "lia", "traits": {"email": "lia@example.it"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..100 {
        if runner.status().ready {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let trigger =
        json!({"profile": "user_id:lia", "data": {"order_id": "A1"}, "idempotency_key": "A1"});
    let (status, body) = app
        .poll_admin(
            "POST",
            "/v1/journeys/order-confirmation/trigger",
            trigger.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], true, "{body}");
    let (status, body) = app
        .admin(
            "POST",
            "/v1/journeys/order-confirmation/trigger",
            Some(trigger),
        )
        .await;
    assert_eq!(
        (status, &body["accepted"]),
        (StatusCode::ACCEPTED, &json!(false)),
        "the same key again: {body}"
    );
    // The same event sent by anyone with a write key starts nothing.
    let (status, _) = app
        .post("/v1/track", json!({"userId": "lia", "event": "Journey Triggered", "properties": {"journey": "order-confirmation", "order_id": "FORGED"}}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let sends = app
        .poll("/v1/profiles/user_id:lia/messages", |_, body| {
            body["sends"].as_array().is_some_and(|s| !s.is_empty())
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, sends_now) = app.get("/v1/profiles/user_id:lia/messages").await;
    assert_eq!(
        sends_now["sends"].as_array().unwrap().len(),
        1,
        "once, and not for the forged event: {sends_now}"
    );
    assert_eq!(sends["sends"][0]["message"], "receipt");
    assert_eq!(sends["sends"][0]["transactional"], true);
    let outbox = prossimo_messages::Outbox::of(&app.store).unwrap();
    let send = outbox
        .by_key(sends["sends"][0]["send"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        send.context["event"]["properties"]["order_id"], "A1",
        "{:?}",
        send.context
    );

    for (path, body, expected) in [
        (
            "/v1/journeys/cart/trigger",
            json!({"profile": "user_id:lia"}),
            StatusCode::CONFLICT,
        ),
        (
            "/v1/journeys/nope/trigger",
            json!({"profile": "user_id:lia"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/journeys/order-confirmation/trigger",
            json!({"profile": "user_id:nobody"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/journeys/order-confirmation/trigger",
            json!({"profile": "user_id:lia", "idempotency_key": ""}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, answer) = app.admin("POST", path, Some(body)).await;
        assert_eq!(status, expected, "{path}: {answer}");
    }
    runner.stop();
}

/// A dry run over an audience: who would enter and why not, where they would wait, and
/// whether each send would go; nothing is written.
#[tokio::test]
async fn a_dry_run_forecasts_a_draft_over_an_audience() {
    let app = TestApp::with_decider();
    let (status, _) = app
        .post(
            "/v1/batch",
            json!({"batch": [
                {"type": "identify", "userId": "anna", "traits": {"vip": true, "email": "anna@example.it"}},
                {"type": "identify", "userId": "bruno", "traits": {"vip": true, "email": "bruno@example.it"}},
                {"type": "identify", "userId": "carla", "traits": {"vip": true}},
                {"type": "identify", "userId": "dario", "traits": {"vip": false, "email": "dario@example.it"}}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .poll_admin(
            "PUT",
            "/v1/profiles/user_id:bruno/consent",
            json!({"channel": "email", "topic": "offers", "state": "opted_out"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .admin(
            "POST",
            "/v1/messages",
            Some(json!({"slug": "promo", "channel": "email", "subject": "Per te", "body": "Ciao", "format": "text"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .admin(
            "POST",
            "/v1/segments",
            Some(json!({"slug": "vip", "name": "VIP", "definition": "traits.vip == true"})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app
        .admin(
            "POST",
            "/v1/journeys",
            Some(json!({"slug": "vip-promo", "name": "VIP promo", "definition": {
                "trigger": {"audience_entered": "vip"},
                "entry": {"condition": "traits.email exists"},
                "steps": [
                    {"id": "promo", "type": "send", "channel": "email", "message": "promo", "topic": "offers", "next": "later"},
                    {"id": "later", "type": "delay", "for": "1d"}
                ]
            }})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The decider fills the audience.
    let mut report = serde_json::Value::Null;
    for _ in 0..100 {
        let (status, body) = app
            .admin(
                "POST",
                "/v1/journeys/vip-promo/dry-run",
                Some(json!({"audience": "vip"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["members"] == 3 {
            report = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        report,
        json!({
            "members": 3, "looked_at": 3, "would_enter": 2,
            "not_entering": {"entry_condition": 1},
            "steps": {"promo": {"sent": 2}},
            "waiting": {"later": 2},
            "ended": {},
            "sends": {"promo": {"would_go": 1, "skipped": {"unsubscribed": 1}}}
        })
    );
    let (status, body) = app.admin("GET", "/v1/journeys/vip-promo", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["steps"], json!({}), "a dry run writes nothing: {body}");
    let (status, body) = app
        .admin(
            "POST",
            "/v1/journeys/vip-promo/dry-run",
            Some(json!({"audience": "nobody"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
