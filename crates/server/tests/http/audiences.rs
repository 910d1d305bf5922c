//! Audiences over HTTP and their webhook deliveries.

use axum::http::StatusCode;
use serde_json::{Value, json};

use prossimo_act::destinations::Destinations;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audience_is_written_previewed_saved_and_delivered_to_a_signed_webhook() {
    let app = TestApp::with_decider();
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
    assert_answer!("definition_refused_with_its_position", body);
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
    assert_answer!("definition_checked", body);
    let (status, body) = app
        .admin(
            "POST",
            "/v1/segments",
            Some(json!({"slug": "store-buyers", "name": "Store buyers", "definition": definition})),
        )
        .await;
    assert_answer!("segment_created", body);
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
    assert_answer!("segment_in_use_refused", body);

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
    assert_answer!("profile_with_memberships", profile);
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
    // Which outbox row the decider wrote first depends on timing.
    assert_answer!("delivery_retried_and_delivered", delivery, { ".id" => "[id]" });
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

/// A webhook cannot be pointed at what only the server can reach, cannot be bounced there
/// by a redirect, and cannot make the deliveries API show back a whole page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_reach_only_allowed_addresses_follow_no_redirect_and_show_little_back() {
    let app = TestApp::with_decider();
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
