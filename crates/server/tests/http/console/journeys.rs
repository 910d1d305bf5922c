//! Writing, checking, saving, publishing and watching journeys in the console.

use axum::http::StatusCode;
use prossimo_journeys::{Entrant, Journeys, check_definition, enter};
use serde_json::{Value, json};

use crate::harness::*;

const CART: &str = r#"{
  "trigger": {"event": {"name": "Checkout Started"}},
  "entry": {"instance_key": "properties.cart_id", "reentry": "always"},
  "steps": [
    {"id": "wait-order", "type": "wait", "until": {"event": {"name": "Order Completed", "same_instance": true}},
     "timeout": "1h", "on_timeout": "reminder"},
    {"id": "reminder", "type": "send", "channel": "email", "message": "cart-reminder", "topic": "offers"}
  ]
}"#;

#[tokio::test]
async fn a_journey_is_checked_saved_published_drawn_and_counted() {
    let c = TestApp::new().with_console_users();
    let session = c.session("admin@example.it").await;
    let list = c.page("/journeys", &session).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("No journeys yet"), "{}", list.body);
    let editor = c.page("/journeys/new", &session).await;
    assert_eq!(editor.status, StatusCode::OK);
    assert!(
        editor.body.contains("Checkout Started"),
        "starts from an example"
    );
    let csrf = editor.hidden_csrf();

    // Not JSON: where it breaks. A journey with a problem: the step and field.
    let checked = c
        .submit(
            "/journeys",
            &session,
            &form_encode(&[
                ("csrf", &csrf),
                ("slug", "cart"),
                ("definition", "{\n  \"trigger\": oops\n}"),
                ("action", "check"),
            ]),
        )
        .await;
    assert_eq!(checked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(checked.body.contains("not JSON"), "{}", checked.body);
    assert!(checked.body.contains("line 2"), "{}", checked.body);
    let dangling = CART.replace(
        "\"on_timeout\": \"reminder\"",
        "\"on_timeout\": \"nowhere\"",
    );
    let checked = c
        .submit(
            "/journeys",
            &session,
            &form_encode(&[
                ("csrf", &csrf),
                ("slug", "cart"),
                ("definition", &dangling),
                ("action", "check"),
            ]),
        )
        .await;
    assert_eq!(checked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        checked.body.contains("wait-order › on_timeout"),
        "{}",
        checked.body
    );

    // As you type: the same verdict as JSON.
    let request = axum::http::Request::post("/journeys/check")
        .header("cookie", &session)
        .header("content-type", "application/json")
        .header("x-csrf-token", &csrf)
        .body(axum::body::Body::from(
            json!({"definition": CART}).to_string(),
        ))
        .unwrap();
    let reply = c.browse(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    let verdict: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(verdict, json!({"valid": true, "steps": 2, "problems": []}));

    let saved = c
        .submit(
            "/journeys",
            &session,
            &form_encode(&[
                ("csrf", &csrf),
                ("slug", "cart"),
                ("name", "Carrello"),
                ("definition", CART),
                ("action", "save"),
            ]),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = c.page("/journeys/cart", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Not published yet"), "{}", page.body);
    assert!(page.body.contains("data-step=\"wait-order\""));
    assert!(
        page.body.contains("data-edge=\"wait-order|timeout\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("Order Completed ≤ 1h"));

    let published = c
        .submit(
            "/journeys/cart/state",
            &session,
            &form_encode(&[("csrf", &csrf), ("action", "publish")]),
        )
        .await;
    assert_eq!(
        published.status,
        StatusCode::SEE_OTHER,
        "{}",
        published.body
    );
    let page = c.page("/journeys/cart", &session).await;
    assert!(page.body.contains("The live version v1"), "{}", page.body);
    assert!(page.body.contains("state-published"));

    // Someone enters: the list and the live counts say so.
    let store = std::sync::Arc::clone(&c.store);
    tokio::task::spawn_blocking(move || {
        let record = Journeys::of(&store).unwrap().get("cart").unwrap().unwrap();
        let journey = check_definition(&store, &record.draft).unwrap();
        let trigger = json!({"event": "Checkout Started"});
        store
            .write_transaction(prossimo_store::WriteDomain::Decisions, |conn| {
                enter(
                    conn,
                    &journey,
                    &Entrant {
                        journey_id: record.id,
                        version: 1,
                        profile_id: 1,
                        key: Some("c-1"),
                        trigger: &trigger,
                    },
                    store.now_ms(),
                )
                .map(|_| ())
            })
            .unwrap();
    })
    .await
    .unwrap();
    let counts = c.page("/journeys/cart/counts", &session).await;
    assert_eq!(counts.status, StatusCode::OK);
    let counts: Value = serde_json::from_str(&counts.body).unwrap();
    assert_eq!(
        (counts["entered"].clone(), counts["active"].clone()),
        (json!(1), json!(1))
    );
    let list = c.page("/journeys", &session).await;
    assert!(
        list.body.contains("<td class=\"num entered\">1</td>"),
        "{}",
        list.body
    );

    // A dry run over an audience from the page (the sample's Anna is in Torino).
    let (status, body) = c
        .admin(
            "POST",
            "/v1/segments",
            Some(json!({"slug": "torino", "name": "Torino", "definition": "traits.city == \"Torino\""})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let tried = c.page("/journeys/cart?dry_run=torino", &session).await;
    assert_eq!(tried.status, StatusCode::OK);
    assert!(
        tried.body.contains("id=\"dry-run-summary\""),
        "{}",
        tried.body
    );
    let missing = c.page("/journeys/cart?dry_run=nowhere", &session).await;
    assert!(missing.body.contains("nowhere"), "{}", missing.body);

    // A viewer looks but does not change.
    let viewer = c.session("viewer@example.it").await;
    let page = c.page("/journeys/cart", &viewer).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("value=\"archive\""));
    let refused = c
        .submit(
            "/journeys/cart/state",
            &viewer,
            &form_encode(&[
                (
                    "csrf",
                    &c.page("/journeys/cart", &viewer).await.hidden_csrf(),
                ),
                ("action", "archive"),
            ]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}
