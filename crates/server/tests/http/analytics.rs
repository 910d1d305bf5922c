//! The analytics API and the analyst behind it.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use prossimo_model::Limits;

use crate::harness::*;

/// An order stored before the edge refused absurd amounts (or by a path that skipped it)
/// does not fail the run: it is left out and named in the run's problems.
#[tokio::test]
async fn a_stored_value_no_analysis_can_use_is_skipped_and_reported() {
    let app = TestApp::with_analyst();
    let source = app
        .store
        .source_by_write_key(&app.write_key)
        .unwrap()
        .unwrap();
    let messages = [("a", 50.0), ("b", 70.0), ("c", 1.7e308)].map(|(order, revenue)| {
        let body = json!({"type": "track", "userId": format!("u-{order}"), "event": "Order Completed",
            "timestamp": "2026-10-01T10:00:00Z",
            "properties": {"order_id": order, "revenue": revenue}});
        let message = prossimo_model::parse_value(body, chrono::Utc::now(), &Limits::default())
            .expect("valid message");
        prossimo_store::Incoming::new(
            source.id,
            message,
            app.store.identity(),
            app.store.money(),
        )
        .expect("serialises")
    });
    assert!(messages[2].refusal().is_some(), "the edge refuses it");
    app.store
        .ingest(&messages)
        .expect("stored as an older store would have");
    let (status, _) = app.post_admin("/v1/analytics/run").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let index = app
        .poll("/v1/analytics", |_, b| b["last_run"].is_object())
        .await;
    assert_eq!(index["last_run"]["ok"], true, "{index}");
    let problems = index["last_run"]["problems"].to_string();
    assert!(problems.contains("orders: 1 left out"), "{problems}");
    assert_answer!("analytics_after_a_run_with_a_problem", index);
    let (status, rfm) = app.get("/v1/analytics/rfm").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rfm["result"]["customers"], 2, "{rfm}");
}

#[tokio::test]
async fn requests_for_a_run_join_the_run_already_asked_for() {
    let app = TestApp::with_analyst();
    // Another process holds the write lock, so the first run cannot finish yet.
    let blocker =
        rusqlite::Connection::open(app.dir.path().join(prossimo_store::DATABASE_FILE)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut answers = Vec::new();
    for _ in 0..10 {
        let (status, body) = app.post_admin("/v1/analytics/run").await;
        assert_eq!(status, StatusCode::ACCEPTED);
        answers.push(body["joined"].as_bool().unwrap());
    }
    assert_eq!(answers, [[false].as_slice(), &[true; 9]].concat());
    blocker.execute_batch("ROLLBACK").unwrap();
    let index = app
        .poll("/v1/analytics", |_, b| {
            b["last_run"]["ok"] == true && b["analyst"]["running"] == false
        })
        .await;
    assert_eq!(index["analyst"]["runs"], 1, "{index}");
    let (_, body) = app.post_admin("/v1/analytics/run").await;
    assert_eq!(
        body["joined"], false,
        "a request after the run starts a new one"
    );
}

#[tokio::test]
async fn analyses_are_served_and_a_new_order_rescores_its_customer_at_once() {
    let app = TestApp::with_analyst();
    let (status, body) = app.get("/v1/analytics/rfm").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found");
    let (status, _) = app.get("/v1/analytics/nonsense").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // 40 customers: customer i bought 1 + i % 6 times, the last time i * 9 days ago.
    let now = chrono::Utc::now();
    let mut batch = Vec::new();
    for i in 0..40i64 {
        for k in 0..=(i % 6) {
            let at = now - chrono::Duration::days(i * 9 + k * 30);
            batch.push(
                json!({"type": "track", "userId": format!("c{i}"), "event": "Order Completed",
                "timestamp": prossimo_model::format_timestamp(&at),
                "properties": {"order_id": format!("o{i}-{k}"), "revenue": 20 + 5 * k}}),
            );
        }
    }
    let (status, _) = app.post("/v1/batch", json!({ "batch": batch })).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app.post_admin("/v1/analytics/run").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let rfm = app
        .poll("/v1/analytics/rfm", |status, _| status == StatusCode::OK)
        .await;
    assert_eq!(rfm["result"]["customers"], 40);
    let index = app
        .poll("/v1/analytics", |_, body| body["analyst"]["runs"] == 1)
        .await;
    assert!(
        index["analyses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "dynamics" && a["computed_at"].is_string())
    );

    // c39 last bought 351 days ago: the lowest recency score.
    let profile = app.get("/v1/profiles/user_id:c39").await.1;
    let before = profile["computed"]["rfm_score"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(before.starts_with('1'), "{before}");
    let (status, _) = app
        .post(
            "/v1/track",
            json!({"userId": "c39", "event": "Order Completed",
            "properties": {"order_id": "fresh", "revenue": 80}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Re-scored by the analyst without a new run: bought today, so the top recency score.
    let after = app
        .poll("/v1/profiles/user_id:c39", |_, body| {
            body["computed"]["rfm_score"]
                .as_str()
                .is_some_and(|s| s.starts_with('5'))
        })
        .await;
    assert_ne!(
        after["computed"]["rfm_score"].as_str(),
        Some(before.as_str())
    );
    assert_eq!(app.get("/v1/analytics").await.1["analyst"]["runs"], 1);
}

#[tokio::test]
async fn analytics_need_a_token_and_a_server_without_analyst_says_so() {
    let app = TestApp::new();
    let request = Request::get("/v1/analytics").body(Body::empty()).unwrap();
    assert_eq!(app.send(request).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = app.post_admin("/v1/analytics/run").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "conflict");
}
