//! The tracking API: write keys, batches, refusals, back-pressure and the live view.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use prossimo_server::PipelineConfig;
use prossimo_store::StoreOptions;

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::harness::*;

#[tokio::test]
async fn every_endpoint_accepts_its_message_and_the_profile_reads_back() {
    let app = TestApp::new();
    for (path, body) in [
        (
            "/v1/identify",
            json!({"userId": "42", "traits": {"email": "anna@example.it", "name": "Anna"}}),
        ),
        (
            "/v1/track",
            json!({"userId": "42", "event": "Order Completed", "properties": {"revenue": 30, "currency": "EUR"}}),
        ),
        ("/v1/page", json!({"userId": "42", "name": "Home"})),
        ("/v1/screen", json!({"userId": "42", "name": "Cart"})),
        (
            "/v1/group",
            json!({"userId": "42", "groupId": "acme", "traits": {"name": "Acme"}}),
        ),
        ("/v1/alias", json!({"userId": "42", "previousId": "anon-7"})),
        (
            "/v1/batch",
            json!({"batch": [{"type": "track", "anonymousId": "anon-7", "event": "Viewed"}]}),
        ),
        (
            "/v1/import",
            json!({"batch": [{"type": "track", "userId": "42", "event": "Viewed"}]}),
        ),
    ] {
        let (status, body) = app.post(path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body, json!({"success": true}));
    }
    let (status, p) = app.get("/v1/profiles/email:anna@example.it").await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["event_count"], 8);
    assert_eq!(
        p["traits"]["name"], "Anna",
        "group traits describe the group, not the person"
    );
    assert_eq!(p["groups"], json!(["acme"]));
    assert_eq!(p["orders"]["count"], 1);
    assert_answer!("profile", p);
    let (_, by_anon) = app.get("/v1/profiles/anonymous_id:anon-7").await;
    assert_eq!(by_anon["id"], p["id"]);

    let (status, page) = app
        .get("/v1/profiles/user_id:42/events?limit=3&type=track")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    assert!(page["events"][0]["messageId"].is_string());
    assert!(page["events"][0]["receivedAt"].is_string());
    assert_answer!("profile_events_page", page);

    let (status, found) = app.get("/v1/profiles?q=ann").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["profiles"][0]["id"], p["id"]);
    assert_answer!("profile_search", found);
}

/// A key revoked by another process (`prossimo keys revoke-source`, another node) is
/// refused once this server's memory of it runs out; nothing sent with it after that is
/// stored.
#[tokio::test]
async fn a_revoked_write_key_is_refused_once_its_cache_entry_runs_out() {
    let app = TestApp::new();
    let track = json!({"userId": "7", "event": "Viewed"});
    let (status, body) = app.post("/v1/track", track.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let source = app
        .store
        .source_by_write_key(&app.write_key)
        .unwrap()
        .unwrap();
    app.store.revoke_source(&source.name).unwrap();
    tokio::time::sleep(KEY_CACHE_TTL + std::time::Duration::from_millis(50)).await;
    let (status, body) = app.post("/v1/track", track).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.to_string().contains("revoked"), "{body}");
    let (_, profile) = app.get("/v1/profiles/user_id:7").await;
    assert_eq!(profile["event_count"], 1);
}

#[tokio::test]
async fn write_key_works_with_or_without_colon_or_in_the_body() {
    let app = TestApp::new();
    let msg = json!({"userId": "u", "event": "E"}).to_string();
    for auth in [basic(&app.write_key), basic(&format!("{}:", app.write_key))] {
        let request = Request::post("/v1/track")
            .header(header::AUTHORIZATION, auth)
            .body(Body::from(msg.clone()))
            .unwrap();
        assert_eq!(app.send(request).await.0, StatusCode::OK);
    }
    let in_body = json!({"writeKey": app.write_key, "batch": [{"type": "track", "userId": "u", "event": "E"}]}).to_string();
    assert_eq!(
        app.send(
            Request::post("/v1/batch")
                .body(Body::from(in_body))
                .unwrap()
        )
        .await
        .0,
        StatusCode::OK
    );

    let (status, body) = app
        .send(
            Request::post("/v1/track")
                .header(header::AUTHORIZATION, basic("wk_nope:"))
                .body(Body::from(msg.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorized");
    let (status, _) = app
        .send(Request::post("/v1/track").body(Body::from(msg)).unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An unknown key is refused before its body is even read.
    let garbage = Request::post("/v1/batch")
        .header(header::AUTHORIZATION, basic("wk_nope:"))
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(app.send(garbage).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.store.event_count().unwrap(), 3);
}

#[tokio::test]
async fn an_invalid_message_rejects_the_whole_batch_and_stores_nothing() {
    let app = TestApp::new();
    let (status, body) = app
        .post(
            "/v1/batch",
            json!({"batch": [
                {"type": "track", "userId": "u", "event": "fine"},
                {"type": "track", "userId": "u"},
                {"type": "identify", "userId": "undefined"}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(
        body["details"][0],
        json!({"index": 1, "field": "event", "reason": "required for track calls"})
    );
    assert_answer!("batch_refused_naming_the_message_and_field", body);
    assert_eq!(app.store.event_count().unwrap(), 0);

    let (status, body) = app
        .post(
            "/v1/batch",
            json!({"batch": [{"type": "identify", "userId": "undefined"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"][0]["field"], "userId");
    assert!(
        body["details"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("placeholder")
    );
    assert_eq!(app.store.event_count().unwrap(), 0);

    // An order in a currency without a configured rate would count as nothing: refused.
    let (status, body) = app
        .post(
            "/v1/batch",
            json!({"batch": [
                {"type": "track", "userId": "u", "event": "Order Completed",
                 "properties": {"order_id": "1", "revenue": 10, "currency": "EUR"}},
                {"type": "track", "userId": "u", "event": "Order Completed",
                 "properties": {"order_id": "2", "revenue": 10, "currency": "JPY"}}
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["details"][0]["index"], 1);
    assert_eq!(body["details"][0]["field"], "properties.currency");
    assert_eq!(
        body["details"][0]["reason"],
        "unknown currency JPY: no rate into EUR is configured (known: EUR)"
    );
    assert_answer!("order_in_unknown_currency_refused", body);
    assert_eq!(app.store.event_count().unwrap(), 0);
}

/// What anyone holding a public write key could send to break every later analysis: an
/// absurd amount, a time in year 0000, an identifier of 10 KB, a key sent twice. Each is a
/// 400 naming the field, and nothing of the request is stored.
#[tokio::test]
async fn absurd_values_are_refused_with_their_field_and_change_nothing() {
    let app = TestApp::with_analyst();
    let order = |id: &str, revenue: Value| {
        json!({"userId": "u", "event": "Order Completed", "timestamp": "2026-10-01T10:00:00Z",
               "properties": {"order_id": id, "revenue": revenue}})
    };
    for (i, revenue) in [120.0, 80.0].into_iter().enumerate() {
        let (status, body) = app
            .post("/v1/track", order(&format!("ok-{i}"), json!(revenue)))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let before = app.store.event_count().unwrap();
    for (field, body) in [
        ("properties.revenue", order("big", json!(1.7e308))),
        ("properties.revenue", order("negative", json!(-1e9))),
        (
            "timestamp",
            json!({"userId": "u", "event": "E", "timestamp": "0000-01-01T00:00:00Z"}),
        ),
        (
            "userId",
            json!({"userId": "u".repeat(10_000), "event": "E"}),
        ),
        (
            "properties.products[0].price",
            json!({"userId": "u", "event": "Order Completed",
                   "properties": {"order_id": "p", "revenue": 1, "products": [{"price": 1e12}]}}),
        ),
    ] {
        let (status, answer) = app.post("/v1/track", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["details"][0]["field"], field, "{answer}");
    }
    let duplicate = Request::post("/v1/track")
        .header(header::AUTHORIZATION, basic(&app.write_key))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"userId": "u", "event": "Order Completed", "properties": {"order_id": "d", "revenue": 1, "revenue": 1e300}}"#,
        ))
        .unwrap();
    let (status, answer) = app.send(duplicate).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["details"][0]["field"], "properties.revenue");
    assert_eq!(app.store.event_count().unwrap(), before);

    // Year 9999 without sentAt happened when it arrived: the profile is not "last seen" in
    // the future, and the device's reading is kept as sent.
    let (status, _) = app
        .post(
            "/v1/track",
            json!({"userId": "u", "event": "Clock Broken", "timestamp": "9999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, profile) = app.get("/v1/profiles/user_id:u").await;
    let last_seen = profile["last_seen"].as_str().unwrap().to_owned();
    assert!(
        last_seen <= prossimo_model::format_timestamp(&chrono::Utc::now()),
        "{last_seen}"
    );
    let (_, page) = app.get("/v1/profiles/user_id:u/events?limit=1").await;
    assert_eq!(page["events"][0]["event"], "Clock Broken");
    assert!(
        page["events"][0]["originalTimestamp"]
            .as_str()
            .unwrap()
            .starts_with("9999-")
    );

    // The analyses still run on the two real orders.
    let (status, _) = app.post_admin("/v1/analytics/run").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let index = app
        .poll("/v1/analytics", |_, b| b["last_run"]["ok"] == true)
        .await;
    // One customer is too few for the CLV models; nothing else is a problem.
    assert_eq!(
        index["last_run"]["problems"],
        json!([{
            "kind": "analysis_failed",
            "analysis": "clv",
            "error": "clv: not enough data: no repeat customers with positive spend",
            "message": "clv: not enough data: no repeat customers with positive spend",
        }]),
        "{index}"
    );
}

#[tokio::test]
async fn bodies_are_checked_for_type_encoding_json_and_size() {
    let app = TestApp::new();
    let auth = basic(&app.write_key);
    let with = |ct: &str, enc: Option<&str>, body: Vec<u8>| {
        let mut r = Request::post("/v1/batch")
            .header(header::AUTHORIZATION, auth.clone())
            .header(header::CONTENT_TYPE, ct);
        if let Some(enc) = enc {
            r = r.header(header::CONTENT_ENCODING, enc);
        }
        r.body(Body::from(body)).unwrap()
    };
    let good =
        json!({"batch": [{"type": "track", "userId": "u", "event": "Zipped", "messageId": "z1"}]})
            .to_string();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(good.as_bytes()).unwrap();
    let zipped = gz.finish().unwrap();
    assert_eq!(
        app.send(with("application/json", Some("gzip"), zipped))
            .await
            .0,
        StatusCode::OK
    );
    // An SDK retry of the same message is acknowledged and not stored twice.
    assert_eq!(
        app.send(with("application/json", None, good.clone().into_bytes()))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(app.store.event_count().unwrap(), 1);

    let (status, body) = app
        .send(with("application/json", Some("gzip"), b"not gzip".to_vec()))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_encoding"))
    );
    let (status, _) = app
        .send(with(
            "application/json",
            Some("br"),
            good.clone().into_bytes(),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app.send(with("text/xml", None, good.into_bytes())).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let (status, body) = app
        .send(with("application/json", None, b"{not json".to_vec()))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );

    let huge = json!({"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"x": "y".repeat(2 * 1024 * 1024)}}]}).to_string();
    let (status, body) = app
        .send(with("application/json", None, huge.into_bytes()))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("payload_too_large"))
    );
    let big_msg = json!({"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"x": "y".repeat(40 * 1024)}}]}).to_string();
    let (status, body) = app
        .send(with("application/json", None, big_msg.into_bytes()))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("payload_too_large"))
    );
    // A gzip bomb is stopped at the decompressed limit.
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&vec![b' '; 4 * 1024 * 1024]).unwrap();
    let (status, body) = app
        .send(with("application/json", Some("gzip"), gz.finish().unwrap()))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("payload_too_large"))
    );
    assert_eq!(app.store.event_count().unwrap(), 1);
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_and_loses_nothing_accepted() {
    let TestApp {
        router,
        store,
        write_key: key,
        dir,
        ..
    } = TestApp::with(Services {
        pipeline: PipelineConfig {
            queue_requests: 1,
            max_group_messages: 1,
        },
        ..Services::default()
    });
    let request = |id: &str| {
        Request::post("/v1/track")
            .header(header::AUTHORIZATION, basic(&key))
            .body(Body::from(
                json!({"userId": "u", "event": "E", "messageId": id}).to_string(),
            ))
            .unwrap()
    };
    // Another writer holds the database: the first request occupies the writer thread,
    // the second fills the one-request queue, the third is turned away.
    let blocker =
        rusqlite::Connection::open(dir.path().join(prossimo_store::DATABASE_FILE)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let first = tokio::spawn(router.clone().oneshot(request("q1")));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = tokio::spawn(router.clone().oneshot(request("q2")));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let third = router.clone().oneshot(request("q3")).await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.headers()[header::RETRY_AFTER], "1");
    let body: Value =
        serde_json::from_slice(&to_bytes(third.into_body(), usize::MAX).await.unwrap()).unwrap();
    assert_eq!(body["code"], "overloaded");

    blocker.execute_batch("COMMIT").unwrap();
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(second.await.unwrap().unwrap().status(), StatusCode::OK);
    let source = store.source_by_write_key(&key).unwrap().unwrap();
    let counts = store
        .message_counts(source.id, &["q1".into(), "q2".into(), "q3".into()])
        .unwrap();
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![1, 1, 0]);
}

#[tokio::test]
async fn the_live_view_sees_accepted_and_refused_requests() {
    let app = TestApp::new();
    let (status, _) = app
        .post(
            "/v1/track",
            json!({"userId": "u1", "event": "Product Viewed", "messageId": "live-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            "/v1/batch",
            json!({"batch": [{"type": "track", "event": "X"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let entries = app.live.since(0);
    assert_eq!(entries.len(), 2);
    assert!(entries[0].accepted);
    assert_eq!(
        (
            entries[0].what.as_str(),
            entries[0].who.as_str(),
            entries[0].message_id.as_str()
        ),
        ("Product Viewed", "user_id:u1", "live-1")
    );
    assert!(!entries[1].accepted);
    assert_eq!(entries[1].status, 400);
    assert_eq!(entries[1].source, "default");
    assert!(
        entries[1].problems[0].starts_with("[0] "),
        "{:?}",
        entries[1].problems
    );
    let unknown = Request::post("/v1/track")
        .header(header::AUTHORIZATION, basic("wk_nobody_knows_this:"))
        .body(Body::from(json!({"userId": "u", "event": "E"}).to_string()))
        .unwrap();
    assert_eq!(app.send(unknown).await.0, StatusCode::UNAUTHORIZED);
    let last = app.live.since(2);
    assert_eq!((last[0].status, last[0].source.as_str()), (401, ""));
}

#[tokio::test]
async fn a_locked_store_answers_503_with_retry_after_and_stores_nothing() {
    let app = TestApp::with(Services {
        store: StoreOptions {
            lock_wait: std::time::Duration::from_millis(300),
        },
        ..Services::default()
    });
    let batch = |prefix: &str| {
        json!({"batch": (0..3).map(|i| json!({"type": "track", "userId": format!("{prefix}{i}"),
            "event": "Product Viewed", "messageId": format!("{prefix}-{i}")})).collect::<Vec<_>>()})
    };
    // Another process holds the write lock for longer than the store waits.
    let blocker =
        rusqlite::Connection::open(app.dir.path().join(prossimo_store::DATABASE_FILE)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let requests = ["a", "b", "c"].map(|prefix| {
        Request::post("/v1/batch")
            .header(header::AUTHORIZATION, basic(&app.write_key))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(batch(prefix).to_string()))
            .unwrap()
    });
    let tasks = requests.map(|r| tokio::spawn(app.router.clone().oneshot(r)));
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body: Value =
            serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap())
                .unwrap();
        assert_eq!(body["code"], "unavailable", "{body}");
    }
    assert_eq!(app.store.event_count().unwrap(), 0, "nothing stored");

    blocker.execute_batch("ROLLBACK").unwrap();
    let (status, _) = app.post("/v1/batch", batch("a")).await;
    assert_eq!(status, StatusCode::OK, "the retry is stored");
    assert_eq!(app.store.event_count().unwrap(), 3);
}
