//! What every endpoint shares: the error catalogue, limits, the admin token first.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use prossimo_server::{MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES};

use prossimo_act::destinations::Destinations;

use crate::harness::*;

#[tokio::test]
async fn a_method_an_endpoint_does_not_answer_is_a_json_405() {
    let app = TestApp::new();
    let (status, body) = app.get("/v1/track").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed", "{body}");
    assert_answer!("method_not_allowed", body);
    let (status, body) = app.admin("DELETE", "/v1/profiles", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed", "{body}");
}

#[tokio::test]
async fn long_targets_many_headers_and_bad_path_values_get_the_catalogues_json() {
    let app = TestApp::new();
    let long = format!("/v1/profiles?q={}", "a".repeat(MAX_URI_BYTES));
    let (status, body) = app.get(&long).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    assert_eq!(body["code"], "uri_too_long", "{body}");
    assert_answer!("uri_too_long", body);

    let mut request = Request::get("/health");
    for i in 0..=MAX_HEADERS {
        request = request.header(format!("x-filler-{i}"), "1");
    }
    let (status, body) = app.send(request.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(body["code"], "headers_too_large", "{body}");
    assert_answer!("too_many_headers", body);
    let big = "v".repeat(MAX_HEADER_BYTES);
    let (status, body) = app
        .send(
            Request::get("/health")
                .header("x-big", big)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(body["code"], "headers_too_large", "{body}");

    // Values axum's extractors refuse: a path id that is not a number, a bad query.
    let (status, body) = app.get("/v1/deliveries/not-a-number").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "bad_request", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("parse"),
        "{body}"
    );
    assert_answer!("path_value_refused", body);
    let (status, body) = app.get("/v1/profiles/user_id:x/events?limit=lots").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "bad_request", "{body}");
}

/// Names, definitions and URLs a person types have limits: a 400 naming the field, and
/// nothing saved.
#[tokio::test]
async fn oversized_names_definitions_and_urls_are_refused_with_their_field() {
    let app = TestApp::new();
    let huge_definition = format!(
        "count(any event) >= 1 {}",
        " ".repeat(prossimo_store::MAX_DEFINITION_BYTES)
    );
    for (field, body) in [
        (
            "definition",
            json!({"slug": "big", "definition": huge_definition}),
        ),
        (
            "name",
            json!({"slug": "big", "name": "n".repeat(100_000), "definition": "count(any event) >= 1"}),
        ),
        (
            "description",
            json!({"slug": "big", "description": "d".repeat(100_000), "definition": "count(any event) >= 1"}),
        ),
    ] {
        let (status, answer) = app.admin("POST", "/v1/segments", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["code"], "invalid_field", "{answer}");
        assert_eq!(answer["details"][0]["field"], field, "{answer}");
    }
    let (status, answer) = app
        .admin(
            "POST",
            "/v1/segments/validate",
            Some(json!({"definition": huge_definition})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["details"][0]["field"], "definition", "{answer}");
    assert!(
        prossimo_decide::audiences::Audiences::of(&app.store)
            .unwrap()
            .segments()
            .unwrap()
            .is_empty()
    );
    for (field, body) in [
        (
            "name",
            json!({"name": "n".repeat(1_000), "kind": "segments", "url": "https://crm.example.it/h"}),
        ),
        (
            "url",
            json!({"name": "crm", "kind": "segments", "url": format!("https://crm.example.it/{}", "p".repeat(5_000))}),
        ),
    ] {
        let (status, answer) = app.admin("POST", "/v1/destinations", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["details"][0]["field"], field, "{answer}");
    }
    assert!(
        Destinations::of(&app.store)
            .unwrap()
            .list()
            .unwrap()
            .is_empty()
    );
}

/// The admin token is checked before anything else of the request: a stranger learns
/// nothing from how a path or a query would have been read.
#[tokio::test]
async fn without_an_admin_token_every_admin_endpoint_answers_401_first() {
    let app = TestApp::new();
    for (method, path) in [
        ("GET", "/v1/deliveries/not-a-number"),
        ("GET", "/v1/profiles/user_id:x/events?limit=lots"),
        ("GET", "/v1/segments"),
        ("POST", "/v1/segments/validate"),
        ("DELETE", "/v1/destinations/crm"),
        ("POST", "/v1/analytics/run"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, "Bearer pat_not_a_real_token_at_all")
            .body(Body::empty())
            .unwrap();
        let (status, body) = app.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert_eq!(body["code"], "unauthorized");
        assert_eq!(body["doc"], "docs/errors.md#unauthorized");
    }
}

/// The document served at `/openapi.json` is generated with the router from the handlers;
/// every operation it lists is answered by its handler (not the fallback's 404 nor a
/// 405), and the document itself is pinned so a change to the API shows in review.
#[tokio::test]
async fn every_documented_operation_is_served_by_its_handler() {
    let app = TestApp::new();
    let (status, spec) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 37, "{} paths", paths.len());
    for (path, item) in paths {
        // Path parameters get a value no store holds: the handler answers 404 itself,
        // with its own message, not the router's.
        let concrete = path
            .replace("{id}", "999999")
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    "nobody"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header(header::AUTHORIZATION, format!("Bearer {}", app.token))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let (status, body) = app.send(request).await;
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {body}"
            );
            assert_ne!(
                body["message"], "no such endpoint",
                "{method} {path} is documented but not served"
            );
            let documented = &item[method.as_str()]["responses"];
            assert!(
                documented.get(status.as_str()).is_some(),
                "{method} {path} answered {status}, which it does not document: {body}"
            );
        }
    }
    assert_answer!("openapi", spec, { ".info.version" => "[version]" });
}
