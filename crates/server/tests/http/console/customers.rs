//! Search and the customer page.

use axum::http::StatusCode;
use serde_json::json;

use prossimo_store::ProfileKey;
use prossimo_store::testsuite::incoming;

use crate::harness::*;

#[tokio::test]
async fn search_finds_customers_by_name_and_identifier() {
    let c = TestApp::new().with_console_users();
    let session = c.session("viewer@example.it").await;
    let id = c
        .store
        .resolve_profile(&ProfileKey::parse("user_id:42", c.store.identity()).unwrap())
        .unwrap()
        .unwrap();
    for q in [
        "anna",
        "Anna R",
        "rossi",
        "ROSSI anna",
        "anna.rossi@",
        "user_id:42",
        "42",
    ] {
        let page = c
            .page(&format!("/customers?q={}", q.replace(' ', "+")), &session)
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains(&format!("href=\"/customers/{id}\"")),
            "{q}"
        );
    }
    let none = c.page("/customers?q=zzzz", &session).await;
    assert!(none.body.contains("No customer matches."));

    // Thirty more Rossi: a count of what is shown, and pages to walk through them.
    let source = c.store.bootstrap(None, None).unwrap().source;
    let rossi = (0..30)
        .map(|i| json!({"type": "identify", "userId": format!("rossi-{i}"), "traits": {"name": format!("Persona{i:02} Rossi")}}))
        .collect();
    c.store
        .ingest(&incoming(&c.store, source.id, rossi))
        .unwrap();
    let first = c.page("/customers?q=rossi", &session).await;
    assert!(
        first.body.contains("Customers 1–25 and more"),
        "{}",
        first.body
    );
    assert!(
        first
            .body
            .contains("href=\"/customers?q=rossi&#38;page=2\""),
        "{}",
        first.body
    );
    let second = c.page("/customers?q=rossi&page=2&lang=it", &session).await;
    assert!(second.body.contains("Clienti 26–31"), "{}", second.body);
    assert!(!second.body.contains("rel=\"next\""));
    assert!(second.body.contains("rel=\"prev\""));
    let nonsense = c.page("/customers?q=rossi&page=lots", &session).await;
    assert_eq!(
        nonsense.status,
        StatusCode::OK,
        "a bad page number shows the first page"
    );
}

#[tokio::test]
async fn the_customer_page_shows_the_360_escaped_filtered_and_in_italian() {
    let c = TestApp::new().with_console_users();
    let session = c.session("viewer@example.it").await;
    let id = c
        .store
        .resolve_profile(
            &ProfileKey::parse("email:anna.rossi@example.it", c.store.identity()).unwrap(),
        )
        .unwrap()
        .unwrap();
    let page = c.page(&format!("/customers/{id}"), &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No choice recorded"), "no consent yet");
    assert!(page.body.contains("No message sent yet."));
    // Her consent and her messages, with what became of them.
    let consents = prossimo_messages::Consents::of(&c.store).unwrap();
    consents
        .set(
            id,
            &prossimo_messages::ConsentRecord {
                channel: prossimo_messages::Channel::Email,
                topic: "offers".into(),
                state: prossimo_messages::ConsentState::OptedOut,
                source: "one_click".into(),
                detail: None,
                at: c.store.now_ms(),
            },
        )
        .unwrap();
    let send = prossimo_messages::NewSend {
        idempotency_key: "i9/cart".into(),
        profile_id: id,
        origin: prossimo_messages::Origin::Test,
        channel: prossimo_messages::Channel::Email,
        template: "cart-reminder".into(),
        topic: Some("offers".into()),
        transactional: false,
        in_quiet_hours: prossimo_messages::InQuietHours::Wait,
        context: serde_json::json!({}),
    };
    let now = c.store.now_ms();
    c.store
        .write_transaction(prossimo_store::WriteDomain::Decisions, |conn| {
            prossimo_messages::owe(conn, &send, now)
        })
        .unwrap();
    let page = c.page(&format!("/customers/{id}"), &session).await;
    assert!(page.body.contains("data-consent=\"out\""), "{}", page.body);
    assert!(page.body.contains("offers: opted out"), "{}", page.body);
    assert!(
        page.body.contains("<tr data-status=\"owed\">"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<code>cart-reminder</code>"));
    for expected in [
        "<h1>Anna Rossi</h1>",
        "<html lang=\"en\">",
        "anna.rossi@example.it",
        "€ 1,234.50",
        "Torino",
        "data-channel=\"store\"",
        "data-channel=\"web\"",
        "Order Completed",
        // Event names and properties are escaped, never markup.
        "Scarpe &#60;b&#62;rosse&#60;/b&#62;",
    ] {
        assert!(page.body.contains(expected), "missing {expected:?}");
    }
    assert!(!page.body.contains("<b>rosse</b>"));

    let stores_only = c
        .page(&format!("/customers/{id}?channel=store"), &session)
        .await;
    let rows = stores_only.body.matches("<tr data-channel=").count();
    assert_eq!(rows, 1);
    assert_eq!(
        stores_only
            .body
            .matches("<tr data-channel=\"store\"")
            .count(),
        1
    );

    let italian = c.page(&format!("/customers/{id}?lang=it"), &session).await;
    assert!(italian.body.contains("<html lang=\"it\">"));
    assert!(italian.body.contains("1.234,50 €"));
    assert!(italian.body.contains("Cronologia"));
    assert!(
        italian.body.contains("offers: disiscritto"),
        "consent in Italian"
    );
    let remembered = italian.cookie("prossimo_lang").unwrap();
    let next = c
        .page(
            &format!("/customers/{id}"),
            &format!("{session}; {remembered}"),
        )
        .await;
    assert!(
        next.body.contains("<html lang=\"it\">"),
        "the choice is remembered"
    );

    let missing = c.page("/customers/999999", &session).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.page("/customers/abc", &session).await.status,
        StatusCode::NOT_FOUND
    );
}
