//! In-process HTTP tests: the real router over a real SQLite store in a temp dir.

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use axum::routing::post;
use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use prossimo_act::destinations::Destinations;
use prossimo_identity::IdentityConfig;
use prossimo_store::{Location, Store, StoreOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

struct TestApp {
    router: Router,
    live: Arc<prossimo_console::LiveFeed>,
    store: Arc<Store>,
    write_key: String,
    token: String,
    dir: tempfile::TempDir,
    /// Runs while the app does.
    _dispatcher: Option<prossimo_act::Dispatcher>,
}

fn test_app() -> TestApp {
    test_app_with(PipelineConfig::default())
}

fn test_app_with(pipeline: PipelineConfig) -> TestApp {
    build_test_app(pipeline, StoreOptions::default(), false, false)
}

/// With the analyst running (on demand only: no schedule).
fn test_app_with_analyst() -> TestApp {
    build_test_app(
        PipelineConfig::default(),
        StoreOptions::default(),
        true,
        false,
    )
}

/// With live audiences and webhook deliveries (retries after 50 ms, 3 attempts).
fn test_app_with_decider() -> TestApp {
    build_test_app(
        PipelineConfig::default(),
        StoreOptions::default(),
        false,
        true,
    )
}

const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_millis(200);

fn build_test_app(
    pipeline: PipelineConfig,
    options: StoreOptions,
    with_analyst: bool,
    with_decider: bool,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open_with(
            &Location::DataDir(dir.path().to_owned()),
            IdentityConfig::default(),
            options,
        )
        .unwrap(),
    );
    let boot = store.bootstrap(None, None).unwrap();
    // Every feature's tables up to date before any service starts, as `Runtime::start`
    // does: a test's held write lock must meet the services' writes, not a migration.
    prossimo_understand::Reports::of(&store).unwrap();
    prossimo_decide::audiences::Audiences::of(&store).unwrap();
    prossimo_act::destinations::Destinations::of(&store).unwrap();
    let bus = prossimo_bus::Bus::new();
    // The tests' webhook receivers listen on this machine.
    let targets = Arc::new(prossimo_act::TargetPolicy::allowing(&["127.0.0.1".into()]).unwrap());
    let live = with_decider.then(|| {
        let config = prossimo_act::DispatchConfig {
            retry: prossimo_act::RetryPolicy {
                max_attempts: 3,
                first_delay: std::time::Duration::from_millis(50),
                factor: 2,
                max_delay: std::time::Duration::from_secs(1),
            },
            poll: std::time::Duration::from_millis(100),
            targets: Arc::clone(&targets),
            ..prossimo_act::DispatchConfig::default()
        };
        let dispatcher = prossimo_act::Dispatcher::start(store.clone(), config, &bus).unwrap();
        let decider = Decider::spawn(
            store.clone(),
            Arc::new(prossimo_model::SystemClock),
            prossimo_decide::DeciderConfig {
                poll: std::time::Duration::from_millis(100),
            },
            bus.clone(),
        );
        (decider, dispatcher)
    });
    let analyst = with_analyst.then(|| {
        Analyst::start(
            store.clone(),
            AnalystConfig {
                refresh_every: None,
            },
            &bus,
        )
        .unwrap()
    });
    let pipeline = Pipeline::start(store.clone(), pipeline, bus.clone()).unwrap();
    let mut state =
        AppState::new(store.clone(), pipeline, Limits::default(), bus).with_targets(targets);
    // Keys are remembered for a moment only, so a test can see a revocation arrive.
    state.sources = Arc::new(crate::api::tracking::SourceCache::expiring_after(
        KEY_CACHE_TTL,
    ));
    if let Some(analyst) = analyst {
        state = state.with_analyst(analyst);
    }
    let dispatcher = live.map(|(decider, dispatcher)| {
        state = state.clone().with_decider(decider);
        dispatcher
    });
    TestApp {
        live: state.live.clone(),
        router: app(state),
        store,
        write_key: boot.source.write_key,
        token: boot.new_admin_token.unwrap(),
        dir,
        _dispatcher: dispatcher,
    }
}

fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

impl TestApp {
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let request = Request::post(path)
            .header(
                header::AUTHORIZATION,
                basic(&format!("{}:", self.write_key)),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    async fn post_admin(&self, path: &str) -> (StatusCode, Value) {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    /// GETs `path` until `done` holds for the answer, for at most 30 s.
    async fn poll(&self, path: &str, done: impl Fn(StatusCode, &Value) -> bool) -> Value {
        for _ in 0..300 {
            let (status, body) = self.get(path).await;
            if done(status, &body) {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{path} never reached the expected state");
    }

    /// An admin request with an optional JSON body.
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        self.send(request).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }
}

#[tokio::test]
async fn every_endpoint_accepts_its_message_and_the_profile_reads_back() {
    let app = test_app();
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
    let (_, by_anon) = app.get("/v1/profiles/anonymous_id:anon-7").await;
    assert_eq!(by_anon["id"], p["id"]);

    let (status, page) = app
        .get("/v1/profiles/user_id:42/events?limit=3&type=track")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"].as_array().unwrap().len(), 3);
    assert!(page["events"][0]["messageId"].is_string());
    assert!(page["events"][0]["receivedAt"].is_string());

    let (status, found) = app.get("/v1/profiles?q=ann").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["profiles"][0]["id"], p["id"]);
}

/// A key revoked by another process (`prossimo keys revoke-source`, another node) is
/// refused once this server's memory of it runs out; nothing sent with it after that is
/// stored.
#[tokio::test]
async fn a_revoked_write_key_is_refused_once_its_cache_entry_runs_out() {
    let app = test_app();
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
    let app = test_app();
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
    let app = test_app();
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
    assert_eq!(app.store.event_count().unwrap(), 0);
}

/// What anyone holding a public write key could send to break every later analysis: an
/// absurd amount, a time in year 0000, an identifier of 10 KB, a key sent twice. Each is a
/// 400 naming the field, and nothing of the request is stored.
#[tokio::test]
async fn absurd_values_are_refused_with_their_field_and_change_nothing() {
    let app = test_app_with_analyst();
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
            "message": "clv: clv: not enough data: no repeat customers with positive spend",
        }]),
        "{index}"
    );
}

/// An order stored before the edge refused absurd amounts (or by a path that skipped it)
/// does not fail the run: it is left out and named in the run's problems.
#[tokio::test]
async fn a_stored_value_no_analysis_can_use_is_skipped_and_reported() {
    let app = test_app_with_analyst();
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
    let (status, rfm) = app.get("/v1/analytics/rfm").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rfm["result"]["customers"], 2, "{rfm}");
}

#[tokio::test]
async fn requests_for_a_run_join_the_run_already_asked_for() {
    let app = test_app_with_analyst();
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
async fn bodies_are_checked_for_type_encoding_json_and_size() {
    let app = test_app();
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
async fn read_api_needs_a_token_and_validates_its_parameters() {
    let app = test_app();
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

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_and_loses_nothing_accepted() {
    let TestApp {
        router,
        store,
        write_key: key,
        dir,
        ..
    } = test_app_with(PipelineConfig {
        queue_requests: 1,
        max_group_messages: 1,
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
    let app = test_app();
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
    let app = build_test_app(
        PipelineConfig::default(),
        StoreOptions {
            lock_wait: std::time::Duration::from_millis(300),
        },
        false,
        false,
    );
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

#[tokio::test]
async fn analyses_are_served_and_a_new_order_rescores_its_customer_at_once() {
    let app = test_app_with_analyst();
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
    let app = test_app();
    let request = Request::get("/v1/analytics").body(Body::empty()).unwrap();
    assert_eq!(app.send(request).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = app.post_admin("/v1/analytics/run").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "conflict");
}

/// What the test webhook receiver saw: headers and body of every request, by path.
#[derive(Default)]
struct Received {
    requests: std::sync::Mutex<Vec<(String, HeaderMapSnapshot, String)>>,
    /// Requests to /flaky answered 500 so far (the first one fails).
    flaky_failures: std::sync::atomic::AtomicUsize,
}

type HeaderMapSnapshot = Vec<(String, String)>;

/// A real HTTP receiver on a free port: `/ok` answers 204, `/flaky` fails once then
/// succeeds, `/down` always answers 503.
async fn webhook_receiver() -> (String, Arc<Received>) {
    use axum::extract::State as AxumState;
    let received = Arc::new(Received::default());
    let record = |path: &'static str| {
        move |AxumState(r): AxumState<Arc<Received>>,
              headers: axum::http::HeaderMap,
              body: String| async move {
            let snapshot = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            r.requests
                .lock()
                .unwrap()
                .push((path.to_owned(), snapshot, body));
            match path {
                "/flaky"
                    if r.flaky_failures
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                        == 0 =>
                {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                "/down" => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::NO_CONTENT,
            }
        }
    };
    let router = Router::new()
        .route("/ok", post(record("/ok")))
        .route("/flaky", post(record("/flaky")))
        .route("/down", post(record("/down")))
        .route("/secret", post(record("/secret")))
        .route(
            "/moved",
            post(|| async { (StatusCode::FOUND, [(header::LOCATION, "/secret")]) }),
        )
        .route(
            "/verbose",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "x".repeat(10_000)) }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audience_is_written_previewed_saved_and_delivered_to_a_signed_webhook() {
    let app = test_app_with_decider();
    let (receiver, received) = webhook_receiver().await;

    // A definition with a mistake is refused with its position; nothing is saved.
    let (status, body) = app
        .admin(
            "POST",
            "/v1/segments",
            Some(json!({"slug": "store-buyers", "name": "Store buyers",
                        "definition": "count(event \"Order Completed\" where channel = \"store\" within 90d) >= 2"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_definition");
    assert_eq!(body["details"][0]["line"], 1);
    assert_eq!(body["details"][0]["column"], 45);
    assert!(body["message"].as_str().unwrap().contains('^'), "{body}");
    let (_, list) = app.get("/v1/segments").await;
    assert_eq!(list["segments"], json!([]));

    let definition = "count(event \"Order Completed\" where channel == \"store\" within 90d) >= 2\n  and count(event \"Email Sent\" within 7d) == 0";
    let (status, body) = app
        .admin(
            "POST",
            "/v1/segments/validate",
            Some(json!({"definition": definition})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["canonical"],
        "count(event \"Order Completed\" where channel == \"store\" within 90d) >= 2 and count(event \"Email Sent\" within 7d) == 0"
    );
    let (status, body) = app
        .admin(
            "POST",
            "/v1/segments",
            Some(json!({"slug": "store-buyers", "name": "Store buyers", "definition": definition})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .admin(
            "POST",
            "/v1/segments",
            Some(json!({"slug": "store-buyers", "definition": "first_seen exists"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = app
        .admin(
            "POST",
            "/v1/segments",
            Some(json!({"slug": "loyal", "definition": "segment \"store-buyers\""})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app.admin("DELETE", "/v1/segments/store-buyers", None).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a segment refers to it: {body}"
    );

    for (name, kind, path, filter) in [
        ("crm", "segments", "/flaky", Some("store-buyers")),
        ("broken", "segments", "/down", None),
        (
            "store-orders",
            "events",
            "/ok",
            Some("event \"Order Completed\" where channel == \"store\""),
        ),
    ] {
        let (status, body) = app
            .admin(
                "POST",
                "/v1/destinations",
                Some(json!({"name": name, "kind": kind, "url": format!("{receiver}{path}"), "filter": filter})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .admin(
            "POST",
            "/v1/destinations",
            Some(
                json!({"name": "bad-filter", "kind": "events", "url": format!("{receiver}/ok"),
                        "filter": "event \"Order Completed\" where"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Once both segments have had their first evaluation (a size recorded), two store
    // orders make the customer enter both: entries, not first members.
    for slug in ["store-buyers", "loyal"] {
        app.poll(&format!("/v1/segments/{slug}"), |_, b| {
            b["sizes"].as_array().is_some_and(|s| !s.is_empty())
        })
        .await;
    }
    for n in 0..2 {
        let (status, _) = app
            .post(
                "/v1/track",
                json!({"userId": "u1", "event": "Order Completed", "messageId": format!("o{n}"),
                       "context": {"channel": "store"}, "properties": {"order_id": format!("o{n}"), "revenue": 40}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let members = app
        .poll("/v1/segments/store-buyers/members", |_, b| {
            b["members"].as_array().is_some_and(|m| m.len() == 1)
        })
        .await;
    let profile_id = members["members"][0]["profile_id"].as_i64().unwrap();
    let profile = app
        .poll("/v1/profiles/user_id:u1", |_, b| {
            b["segments"].as_array().is_some_and(|s| s.len() == 2)
        })
        .await;
    assert_eq!(profile["id"], profile_id);
    let (_, timeline) = app
        .get("/v1/profiles/user_id:u1/events?event=Segment%20Entered")
        .await;
    assert_eq!(timeline["events"].as_array().unwrap().len(), 2);

    // The flaky endpoint failed once and then got it, signed; the broken one went dead.
    let deliveries = app
        .poll(
            "/v1/destinations/crm/deliveries?status=delivered",
            |_, b| b["deliveries"].as_array().is_some_and(|d| d.len() == 1),
        )
        .await;
    let id = deliveries["deliveries"][0]["id"].as_i64().unwrap();
    let (_, delivery) = app.get(&format!("/v1/deliveries/{id}")).await;
    assert_eq!(
        delivery["attempt_log"].as_array().unwrap().len(),
        2,
        "{delivery}"
    );
    assert_eq!(delivery["attempt_log"][0]["status_code"], 500);
    let secret = Destinations::of(&app.store)
        .unwrap()
        .by_name("crm")
        .unwrap()
        .unwrap()
        .secret;
    let signer = prossimo_act::webhook::Signer::from_secret(&secret).unwrap();
    let requests = received.requests.lock().unwrap().clone();
    let (_, headers, body) = requests
        .iter()
        .rfind(|(path, _, _)| path == "/flaky")
        .unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
    assert_eq!(
        header("webhook-signature"),
        signer.sign(&header("webhook-id"), timestamp, body.as_bytes())
    );
    let payload: Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["type"], "segment.entered");
    assert_eq!(payload["data"]["segment"], "store-buyers");
    assert_eq!(payload["data"]["profile_id"], profile_id);
    assert_eq!(
        requests.iter().filter(|(p, _, _)| p == "/ok").count(),
        2,
        "both store orders on the event stream"
    );

    let dead = app
        .poll("/v1/destinations/broken/deliveries?status=dead", |_, b| {
            b["deliveries"].as_array().is_some_and(|d| d.len() == 2)
        })
        .await;
    assert_eq!(dead["deliveries"][0]["attempts"], 3);
    let (status, body) = app
        .admin("POST", "/v1/destinations/broken/replay", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["replayed"], 2);

    // Preview: the same condition without saving counts the customer.
    let (status, preview) = app
        .admin(
            "POST",
            "/v1/segments/preview",
            Some(json!({"definition": "segment \"store-buyers\" and sum(event \"Order Completed\", properties.revenue) >= 80"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["count"], 1);
    assert_eq!(preview["sample"][0]["id"], profile_id);
}

/// What `@segment/analytics-next` does from a shop's page: a preflight, then `text/plain`
/// JSON to the short paths, after reading its settings from us.
#[tokio::test]
async fn the_browser_sdk_can_send_from_another_origin_and_only_to_write_key_endpoints() {
    let app = test_app();
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

#[tokio::test]
async fn a_method_an_endpoint_does_not_answer_is_a_json_405() {
    let app = test_app();
    let (status, body) = app.get("/v1/track").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed", "{body}");
    let (status, body) = app.admin("DELETE", "/v1/profiles", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed", "{body}");
}

mod connections {
    //! The server loop over real sockets: timeouts, the connection bound, the graceful stop.

    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    struct Live {
        addr: std::net::SocketAddr,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        done: tokio::task::JoinHandle<()>,
        app: TestApp,
    }

    const SHORT: Duration = Duration::from_millis(300);

    async fn live(max_connections: usize) -> Live {
        let app = test_app();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = ServeConfig {
            header_read_timeout: SHORT,
            body_read_timeout: SHORT,
            max_connections,
            shutdown_grace: Duration::from_secs(10),
        };
        let router = app.router.clone();
        let done = tokio::spawn(serve(listener, router, config, async {
            let _ = stopped.await;
        }));
        Live {
            addr,
            stop: Some(stop),
            done,
            app,
        }
    }

    /// Reads until the server closes the connection (at most 10 s); what it sent.
    async fn until_closed(stream: &mut TcpStream) -> String {
        let mut all = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut all)).await;
        assert!(read.is_ok(), "the server kept the connection open");
        String::from_utf8_lossy(&all).into_owned()
    }

    fn track_request(key: &str, body: &str, declared_length: usize) -> String {
        format!(
            "POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {declared_length}\r\n\r\n{body}",
            basic(&format!("{key}:"))
        )
    }

    #[tokio::test]
    async fn half_sent_headers_idle_connections_and_slow_bodies_are_closed() {
        let live = live(16).await;
        // Slowloris: a request head that never ends.
        let mut slow_head = TcpStream::connect(live.addr).await.unwrap();
        slow_head
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        until_closed(&mut slow_head).await;

        // An idle keep-alive connection after one answered request.
        let mut idle = TcpStream::connect(live.addr).await.unwrap();
        idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answered = until_closed(&mut idle).await;
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

        // A body that stops arriving: 408 with the catalogue's JSON, and nothing stored.
        let body = r#"{"userId": "slow", "event": "E"}"#;
        let mut slow_body = TcpStream::connect(live.addr).await.unwrap();
        let request = track_request(&live.app.write_key, &body[..10], body.len());
        slow_body.write_all(request.as_bytes()).await.unwrap();
        let answer = until_closed(&mut slow_body).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
        assert_eq!(live.app.store.event_count().unwrap(), 0);
    }

    #[tokio::test]
    async fn no_more_than_max_connections_are_served_at_once() {
        let live = live(1).await;
        let mut first = TcpStream::connect(live.addr).await.unwrap();
        first
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 12];
        first.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        // The only place is taken by the first (kept alive): the second waits in the
        // backlog, unanswered, until the first closes.
        let mut second = TcpStream::connect(live.addr).await.unwrap();
        second
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(SHORT / 3, second.read(&mut byte)).await;
        assert!(early.is_err(), "answered while the only place was taken");
        drop(first);
        let rest = until_closed(&mut second).await;
        assert!(rest.contains("200 OK"), "{rest}");
    }

    #[tokio::test]
    async fn a_stop_finishes_requests_in_flight_then_refuses_new_connections() {
        let mut live = live(16).await;
        let body = r#"{"userId": "in-flight", "event": "Stopped Gracefully"}"#;
        let mut in_flight = TcpStream::connect(live.addr).await.unwrap();
        let request = track_request(&live.app.write_key, &body[..20], body.len());
        in_flight.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        live.stop.take().unwrap().send(()).unwrap();
        // The rest of the body arrives after the stop: the request is still answered.
        tokio::time::sleep(Duration::from_millis(50)).await;
        in_flight.write_all(&body.as_bytes()[20..]).await.unwrap();
        let answer = until_closed(&mut in_flight).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::timeout(Duration::from_secs(10), &mut live.done)
            .await
            .expect("serve returned")
            .unwrap();
        assert!(
            TcpStream::connect(live.addr).await.is_err(),
            "still accepting"
        );
        assert_eq!(live.app.store.event_count().unwrap(), 1);
    }
}

#[tokio::test]
async fn long_targets_many_headers_and_bad_path_values_get_the_catalogues_json() {
    let app = test_app();
    let long = format!("/v1/profiles?q={}", "a".repeat(MAX_URI_BYTES));
    let (status, body) = app.get(&long).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    assert_eq!(body["code"], "uri_too_long", "{body}");

    let mut request = Request::get("/health");
    for i in 0..=MAX_HEADERS {
        request = request.header(format!("x-filler-{i}"), "1");
    }
    let (status, body) = app.send(request.body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(body["code"], "headers_too_large", "{body}");
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
    let (status, body) = app.get("/v1/profiles/user_id:x/events?limit=lots").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "bad_request", "{body}");
}

/// A webhook cannot be pointed at what only the server can reach, cannot be bounced there
/// by a redirect, and cannot make the deliveries API show back a whole page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_reach_only_allowed_addresses_follow_no_redirect_and_show_little_back() {
    let app = test_app_with_decider();
    let (receiver, received) = webhook_receiver().await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::1]:22/",
        "http://metadata.google.internal/",
    ] {
        let (status, body) = app
            .admin(
                "POST",
                "/v1/destinations",
                Some(json!({"name": "nope", "kind": "events", "url": url, "filter": "event \"Probe\""})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["code"], "invalid_field");
        assert_eq!(body["details"][0]["field"], "url", "{body}");
    }
    assert!(
        Destinations::of(&app.store)
            .unwrap()
            .list()
            .unwrap()
            .is_empty()
    );

    for (name, path) in [("moved", "/moved"), ("verbose", "/verbose")] {
        let (status, body) = app
            .admin(
                "POST",
                "/v1/destinations",
                Some(
                    json!({"name": name, "kind": "events", "url": format!("{receiver}{path}"),
                            "filter": "event \"Probe\""}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) = app
        .post("/v1/track", json!({"userId": "probe", "event": "Probe"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    for name in ["moved", "verbose"] {
        let dead = app
            .poll(
                &format!("/v1/destinations/{name}/deliveries?status=dead"),
                |_, b| b["deliveries"].as_array().is_some_and(|d| d.len() == 1),
            )
            .await;
        let id = dead["deliveries"][0]["id"].as_i64().unwrap();
        let (_, delivery) = app.get(&format!("/v1/deliveries/{id}")).await;
        let error = delivery["attempt_log"][0]["error"]
            .as_str()
            .unwrap()
            .to_owned();
        match name {
            "moved" => assert!(error.starts_with("HTTP 302"), "{error}"),
            _ => assert!(
                error.starts_with("HTTP 500: xxx") && error.chars().count() <= 220,
                "{} characters: {error:.40}",
                error.chars().count()
            ),
        }
    }
    let followed = received
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _, _)| path == "/secret")
        .count();
    assert_eq!(followed, 0, "a redirect was followed");
}

/// Names, definitions and URLs a person types have limits: a 400 naming the field, and
/// nothing saved.
#[tokio::test]
async fn oversized_names_definitions_and_urls_are_refused_with_their_field() {
    let app = test_app();
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

/// One catalogue of error codes: each has its section in docs/errors.md, and the OpenAPI
/// document lists exactly them.
#[test]
fn every_error_code_is_documented_once_and_in_the_openapi_document() {
    use prossimo_model::ErrorCode;
    let doc = include_str!("../../../docs/errors.md");
    let sections: Vec<&str> = doc.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        sections, codes,
        "docs/errors.md sections, in the catalogue's order"
    );
    for code in ErrorCode::ALL {
        let section = doc
            .split(&format!("## {}\n", code.as_str()))
            .nth(1)
            .unwrap();
        assert!(
            section.starts_with(&code.status().to_string()),
            "{} is answered with {}",
            code.as_str(),
            code.status()
        );
    }
    let spec: Value = serde_json::from_str(OPENAPI).unwrap();
    let mut listed: Vec<&str> =
        spec["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
    listed.sort_unstable();
    let mut expected = codes.clone();
    expected.sort_unstable();
    assert_eq!(listed, expected);
}

/// The admin token is checked before anything else of the request: a stranger learns
/// nothing from how a path or a query would have been read.
#[tokio::test]
async fn without_an_admin_token_every_admin_endpoint_answers_401_first() {
    let app = test_app();
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

/// The OpenAPI document lists exactly the paths the router serves (parameter names aside).
#[test]
fn the_openapi_document_lists_exactly_the_served_paths() {
    let normalise = |path: &str| -> String {
        let mut out = String::new();
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '{' => {
                    in_param = true;
                    out.push_str("{}");
                }
                '}' => in_param = false,
                c if !in_param => out.push(c),
                _ => {}
            }
        }
        out
    };
    let served: std::collections::BTreeSet<String> = crate::api::areas()
        .iter()
        .flat_map(|area| area.paths.iter().copied())
        .chain(["/health", "/ready", "/metrics"])
        .map(normalise)
        .collect();
    let spec: Value = serde_json::from_str(OPENAPI).unwrap();
    let documented: std::collections::BTreeSet<String> = spec["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|p| normalise(p))
        .collect();
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "served but not documented"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but not served"
    );
}
