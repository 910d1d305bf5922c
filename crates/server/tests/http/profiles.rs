//! The customer read API.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn read_api_needs_a_token_and_validates_its_parameters() {
    let app = TestApp::new();
    app.post("/v1/identify", json!({"userId": "7"})).await;
    let (status, body) = app
        .send(
            Request::get("/v1/profiles/user_id:7")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let wrong = Request::get("/v1/profiles/user_id:7")
        .header(header::AUTHORIZATION, "Bearer pat_wrong")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(wrong).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/v1/profiles/user_id:7").await.0, StatusCode::OK);
    assert_eq!(
        app.get("/v1/profiles/user_id:8").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/v1/profiles/nonsense").await.0,
        StatusCode::BAD_REQUEST
    );
    for bad in [
        "limit=0",
        "limit=abc",
        "type=click",
        "channel=fax",
        "since=yesterday",
        "cursor=xyz",
    ] {
        let (status, body) = app
            .get(&format!("/v1/profiles/user_id:7/events?{bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["message"].is_string());
    }
    assert_eq!(app.get("/v1/profiles").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/v1/nowhere").await.0, StatusCode::NOT_FOUND);
    let (status, spec) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/batch",
        "/v1/t",
        "/v1/b",
        "/v1/projects/{writeKey}/settings",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is not documented");
    }
    let (status, _) = app.get("/ready").await;
    assert_eq!(status, StatusCode::OK);
}
