//! The browser SDK from another origin: CORS, text/plain bodies, the short paths.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;
use tower::ServiceExt;

use crate::harness::*;

/// What `@segment/analytics-next` does from a shop's page: a preflight, then `text/plain`
/// JSON to the short paths, after reading its settings from us.
#[tokio::test]
async fn the_browser_sdk_can_send_from_another_origin_and_only_to_write_key_endpoints() {
    let app = TestApp::new();
    let auth = basic(&format!("{}:", app.write_key));
    let request = |method: &str, path: &str, origin: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::ORIGIN, origin)
            .header(header::HOST, "127.0.0.1:9999")
    };
    let preflight = |path: &str, origin: &str| {
        request("OPTIONS", path, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type",
            )
            .body(Body::empty())
            .unwrap()
    };
    let response = app
        .router
        .clone()
        .oneshot(preflight("/v1/t", "https://shop.example.it"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let h = response.headers();
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for needed in ["authorization", "content-type", "x-retry-count"] {
        assert!(allowed.contains(needed), "{allowed}");
    }

    let (status, settings) = app
        .send(
            request(
                "GET",
                &format!("/v1/projects/{}/settings", app.write_key),
                "https://shop.example.it",
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let segment = &settings["integrations"]["Segment.io"];
    assert_eq!(segment["apiKey"], app.write_key.as_str());
    assert_eq!(segment["apiHost"], "127.0.0.1:9999/v1");
    assert_eq!(segment["protocol"], "http");
    assert_eq!(settings["metrics"]["sampleRate"], 0.0);
    assert_answer!("browser_sdk_settings", settings);
    let (status, body) = app
        .send(
            request(
                "GET",
                "/v1/projects/wk_nobody_has_this/settings",
                "https://x.it",
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let sdk_body = |user: &str, event: &str| {
        json!({"userId": user, "event": event, "writeKey": app.write_key,
               "messageId": format!("ajs-next-{user}-{event}"),
               "context": {"library": {"name": "analytics.js", "version": "npm:next-1.84.3"}}})
        .to_string()
    };
    let send = |path: &str, origin: &str, body: String| {
        request("POST", path, origin)
            .header(header::AUTHORIZATION, auth.clone())
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from(body))
            .unwrap()
    };
    let response = app
        .router
        .clone()
        .oneshot(send(
            "/v1/t",
            "https://shop.example.it",
            sdk_body("anna", "Product Viewed"),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let batch = json!({"writeKey": app.write_key, "batch": [
        {"type": "identify", "userId": "anna", "traits": {"email": "anna@example.it"}},
        {"type": "page", "userId": "anna", "name": "Home"}]});
    let (status, _) = app
        .send(send("/v1/b", "https://shop.example.it", batch.to_string()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.store.event_count().unwrap(), 3);

    // Only the shop's own pages, once the source says so.
    app.store
        .set_source_origins("default", Some(&["https://shop.example.it".to_owned()]))
        .unwrap();
    tokio::time::sleep(KEY_CACHE_TTL).await;
    let response = app
        .router
        .clone()
        .oneshot(preflight("/v1/t", "https://shop.example.it"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example.it"
    );
    let (status, body) = app.send(preflight("/v1/t", "https://evil.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "origin_not_allowed");
    let (status, body) = app
        .send(send(
            "/v1/t",
            "https://evil.example",
            sdk_body("anna", "Stolen Key Used"),
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "origin_not_allowed");
    let response = app
        .router
        .clone()
        .oneshot(send(
            "/v1/t",
            "https://shop.example.it",
            sdk_body("anna", "Cart Viewed"),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example.it"
    );
    assert_eq!(
        app.store.event_count().unwrap(),
        4,
        "the refused page stored nothing"
    );

    // The admin API and the console answer no CORS: no page can read them.
    let response = app
        .router
        .clone()
        .oneshot(
            request("GET", "/v1/profiles?q=anna", "https://shop.example.it")
                .header(header::AUTHORIZATION, format!("Bearer {}", app.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
    for path in ["/v1/profiles", "/v1/segments", "/login"] {
        let response = app
            .router
            .clone()
            .oneshot(preflight(path, "https://shop.example.it"))
            .await
            .unwrap();
        assert!(
            !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "{path}"
        );
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
}
