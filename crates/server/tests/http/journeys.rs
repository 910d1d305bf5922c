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
