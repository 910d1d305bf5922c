//! Sending a message to an audience from its page, and starting a journey from it.

use axum::http::StatusCode;
use prossimo_messages::{BroadcastState, Broadcasts};
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn an_audience_page_sends_a_message_to_its_members_and_starts_a_journey() {
    let c = TestApp::new().with_console_users();
    let (status, body) = c
        .admin(
            "POST",
            "/v1/messages",
            Some(json!({"slug": "saldi", "name": "Saldi", "channel": "email", "subject": "Saldi", "body": "Da oggi", "format": "text"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = c
        .admin(
            "POST",
            "/v1/segments",
            Some(json!({"slug": "torino", "name": "Torino", "definition": "traits.city == \"Torino\""})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let session = c.session("admin@example.it").await;
    let page = c.page("/audiences/torino", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("<option value=\"saldi\">Saldi (email)</option>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("/journeys/new?audience=torino"));
    let csrf = page.hidden_csrf();
    let sent = c
        .submit(
            "/audiences/torino/broadcast",
            &session,
            &form_encode(&[("csrf", &csrf), ("message", "saldi"), ("topic", "offers")]),
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let store = std::sync::Arc::clone(&c.store);
    let recorded = tokio::task::spawn_blocking(move || {
        Broadcasts::of(&store)
            .unwrap()
            .list(Some("torino"), 10)
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].state,
        BroadcastState::Owing,
        "the sender owes it"
    );
    assert_eq!(recorded[0].created_by, "admin@example.it");
    let page = c.page("/audiences/torino", &session).await;
    assert!(page.body.contains("data-broadcast="), "{}", page.body);
    let (status, body) = c.admin("GET", "/v1/broadcasts?audience=torino", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["broadcasts"][0]["message"], "saldi", "{body}");
    let (status, body) = c
        .admin(
            "POST",
            "/v1/broadcasts",
            Some(json!({"audience": "torino", "message": "missing"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"][0]["field"], "message", "{body}");

    // A viewer cannot send.
    let viewer = c.session("viewer@example.it").await;
    let page = c.page("/audiences/torino", &viewer).await;
    assert!(!page.body.contains("/audiences/torino/broadcast"));
    let refused = c
        .submit(
            "/audiences/torino/broadcast",
            &viewer,
            &form_encode(&[("csrf", &page.hidden_csrf()), ("message", "saldi")]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // "Start a journey" opens the editor with the audience as its trigger.
    let editor = c.page("/journeys/new?audience=torino", &session).await;
    assert_eq!(editor.status, StatusCode::OK);
    assert!(
        editor
            .body
            .contains("&#34;audience_entered&#34;: &#34;torino&#34;"),
        "{}",
        editor.body
    );
}
