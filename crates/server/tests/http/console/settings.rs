//! Admin settings: sources, tokens, users, dead letters.

use axum::http::StatusCode;
use serde_json::json;

use prossimo_console::users::{Role, Users};

use crate::harness::*;

#[tokio::test]
async fn admins_manage_sources_tokens_and_users_and_others_cannot() {
    let c = TestApp::new().with_console_users();
    let viewer = c.session("viewer@example.it").await;
    assert_eq!(
        c.page("/settings", &viewer).await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = c.page("/customers", &viewer).await.hidden_csrf();
    assert_eq!(
        c.submit(
            "/settings/create-source",
            &viewer,
            &format!("csrf={csrf}&name=till")
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    let admin = c.session("admin@example.it").await;
    let page = c.page("/settings", &admin).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.hidden_csrf();
    assert_eq!(
        c.submit("/settings/create-source", &admin, "name=till")
            .await
            .status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    let added = c
        .submit(
            "/settings/create-source",
            &admin,
            &format!("csrf={csrf}&name=till"),
        )
        .await;
    assert_eq!(
        (added.status, added.location()),
        (StatusCode::SEE_OTHER, "/settings?done=source")
    );
    let till = c.store.source_by_name("till").unwrap().unwrap();
    let again = c
        .submit(
            "/settings/create-source",
            &admin,
            &format!("csrf={csrf}&name=till"),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("role=\"alert\""));
    c.submit(
        "/settings/revoke-source",
        &admin,
        &format!("csrf={csrf}&name=till"),
    )
    .await;
    assert!(
        c.store
            .source_by_write_key(&till.write_key)
            .unwrap()
            .unwrap()
            .revoked
    );

    let created = c
        .submit(
            "/settings/create-token",
            &admin,
            &format!("csrf={csrf}&name=crm"),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::OK,
        "shown once on this response"
    );
    let start = created.body.find("<code id=\"new-token\">").unwrap() + 21;
    let token = &created.body[start..start + created.body[start..].find('<').unwrap()];
    assert!(c.store.verify_admin_token(token).unwrap());

    let form = form_encode(&[
        ("csrf", &csrf),
        ("email", "Bruno@Example.it"),
        ("name", "Bruno"),
        ("role", "marketer"),
        ("password", PASSWORD),
    ]);
    assert_eq!(
        c.submit("/settings/create-user", &admin, &form)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        Users::of(&c.store)
            .unwrap()
            .by_email("bruno@example.it")
            .unwrap()
            .unwrap()
            .role,
        Role::Marketer
    );
    let short = form_encode(&[
        ("csrf", &csrf),
        ("email", "carla@example.it"),
        ("role", "viewer"),
        ("password", "short"),
    ]);
    let refused = c.submit("/settings/create-user", &admin, &short).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("at least 10 characters"));

    c.submit(
        "/settings/set-role",
        &admin,
        &format!("csrf={csrf}&email=bruno%40example.it&role=viewer"),
    )
    .await;
    assert_eq!(
        Users::of(&c.store)
            .unwrap()
            .by_email("bruno@example.it")
            .unwrap()
            .unwrap()
            .role,
        Role::Viewer
    );
    let bruno = c.session("bruno@example.it").await;
    c.submit(
        "/settings/set-state",
        &admin,
        &format!("csrf={csrf}&email=bruno%40example.it&disabled=true"),
    )
    .await;
    assert_eq!(
        c.page("/customers", &bruno).await.location(),
        "/login",
        "disabling ends sessions"
    );
    let myself = c
        .submit(
            "/settings/set-state",
            &admin,
            &format!("csrf={csrf}&email=admin%40example.it&disabled=true"),
        )
        .await;
    assert_eq!(
        myself.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an admin cannot lock themselves out"
    );
}

#[tokio::test]
async fn dead_letters_are_listed_with_their_attempts_and_replayed() {
    use prossimo_act::destinations::{
        AttemptRecord, DeliveryOutcome, DeliveryStatus, DestinationInput, DestinationKind,
        Destinations, NewDelivery, enqueue,
    };
    use prossimo_store::WriteDomain;
    let c = TestApp::new().with_console_users();
    let destination = Destinations::of(&c.store)
        .unwrap()
        .create(&DestinationInput {
            name: "crm".into(),
            kind: DestinationKind::Segments,
            url: "http://127.0.0.1:9/hook".into(),
            filter: None,
            secret: None,
            enabled: true,
        })
        .unwrap();
    let owed = NewDelivery {
        destination_id: destination.id,
        profile_id: 1,
        webhook_id: "msg_dead_1".into(),
        payload: json!({"type": "segment.entered"}),
    };
    c.store
        .write_transaction(WriteDomain::Decisions, |conn| {
            enqueue(conn, &[owed], c.store.now_ms())
        })
        .unwrap();
    let id = Destinations::of(&c.store)
        .unwrap()
        .due_deliveries(destination.id, i64::MAX / 2, 10)
        .unwrap()[0]
        .id;
    let attempt = AttemptRecord {
        at: 1_000,
        status_code: Some(503),
        error: Some("HTTP 503".into()),
        duration_ms: 12,
    };
    Destinations::of(&c.store)
        .unwrap()
        .record_attempts(&[(id, attempt, DeliveryOutcome::Dead)])
        .unwrap();

    let admin = c.session("admin@example.it").await;
    let settings = c.page("/settings", &admin).await;
    assert!(
        settings
            .body
            .contains("href=\"/settings/destinations/crm\"")
    );
    let page = c
        .page("/settings/destinations/crm?status=dead", &admin)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("msg_dead_1"));
    assert!(page.body.contains("HTTP 503"));
    let csrf = page.hidden_csrf();
    let replayed = c
        .submit(
            "/settings/destinations/crm/replay",
            &admin,
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(
        (replayed.status, replayed.location()),
        (
            StatusCode::SEE_OTHER,
            "/settings/destinations/crm?replayed=1"
        )
    );
    let pending = Destinations::of(&c.store)
        .unwrap()
        .deliveries(destination.id, Some(DeliveryStatus::Pending), None, 10)
        .unwrap();
    assert_eq!(pending.len(), 1, "back in the queue");
    assert_eq!(
        c.page("/settings/destinations/nope", &admin).await.status,
        StatusCode::NOT_FOUND
    );
}

/// An admin limits a source's key to the shop's own pages from the Settings page, and
/// opens it to any page again by emptying the list; a bad origin is refused with a word.
#[tokio::test]
async fn admins_set_the_web_pages_a_source_accepts() {
    let c = TestApp::new().with_console_users();
    let admin = c.session("admin@example.it").await;
    let page = c.page("/settings", &admin).await;
    let csrf = page.hidden_csrf();
    let source = c.store.sources().unwrap().remove(0);
    assert!(page.body.contains("action=\"/settings/set-origins\""));
    let saved = c
        .submit(
            "/settings/set-origins",
            &admin,
            &form_encode(&[
                ("csrf", &csrf),
                ("name", &source.name),
                (
                    "origins",
                    "https://shop.example.it\r\n\r\nhttp://localhost:3000/\r\n",
                ),
            ]),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let read = c.store.source_by_name(&source.name).unwrap().unwrap();
    assert_eq!(
        read.allowed_origins,
        Some(vec![
            "http://localhost:3000".to_owned(),
            "https://shop.example.it".to_owned()
        ])
    );
    let shown = c.page("/settings", &admin).await;
    assert!(
        shown
            .body
            .contains("http://localhost:3000\nhttps://shop.example.it</textarea>"),
        "{}",
        shown.body
    );
    let refused = c
        .submit(
            "/settings/set-origins",
            &admin,
            &form_encode(&[
                ("csrf", &csrf),
                ("name", &source.name),
                ("origins", "shop.example.it"),
            ]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("is not an origin"),
        "{}",
        refused.body
    );
    let opened = c
        .submit(
            "/settings/set-origins",
            &admin,
            &form_encode(&[("csrf", &csrf), ("name", &source.name), ("origins", "")]),
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    assert_eq!(
        c.store
            .source_by_name(&source.name)
            .unwrap()
            .unwrap()
            .allowed_origins,
        None
    );
}
