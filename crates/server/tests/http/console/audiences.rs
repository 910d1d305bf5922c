//! Writing, checking, previewing and saving audiences in the console.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use prossimo_decide::audiences::Audiences;

use crate::harness::*;

#[tokio::test]
async fn an_audience_is_checked_previewed_saved_listed_and_deleted() {
    let c = TestApp::new().with_console_users();
    let session = c.session("admin@example.it").await;
    let editor = c.page("/audiences/new", &session).await;
    assert_eq!(editor.status, StatusCode::OK);
    let csrf = editor.hidden_csrf();

    let broken = "count(event \"Order Completed\" within 90d) >= 1\nand p_alive < \"low\"";
    let checked = c
        .submit(
            "/audiences",
            &session,
            &form_encode(&[
                ("csrf", &csrf),
                ("slug", "buyers"),
                ("definition", broken),
                ("action", "check"),
            ]),
        )
        .await;
    assert_eq!(checked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(checked.body.contains("data-line=\"2\""), "{}", checked.body);
    assert!(checked.body.contains("aria-invalid=\"true\""));

    let fixed = "count(event \"Order Completed\" within 3650d) >= 1";
    let previewed = c
        .submit(
            "/audiences",
            &session,
            &form_encode(&[
                ("csrf", &csrf),
                ("slug", "buyers"),
                ("definition", fixed),
                ("action", "preview"),
            ]),
        )
        .await;
    assert_eq!(previewed.status, StatusCode::OK, "{}", previewed.body);
    assert!(
        previewed
            .body
            .contains("<strong class=\"count\">1</strong>"),
        "{}",
        previewed.body
    );
    assert!(previewed.body.contains("Anna Rossi"));
    assert!(
        Audiences::of(&c.store)
            .unwrap()
            .segment("buyers")
            .unwrap()
            .is_none(),
        "a preview saves nothing"
    );

    let saved = c
        .submit(
            "/audiences",
            &session,
            &form_encode(&[
                ("csrf", &csrf),
                ("slug", "buyers"),
                ("name", "Buyers"),
                ("definition", fixed),
                ("action", "save"),
            ]),
        )
        .await;
    assert_eq!(
        (saved.status, saved.location()),
        (StatusCode::SEE_OTHER, "/audiences/buyers")
    );
    assert_eq!(
        Audiences::of(&c.store)
            .unwrap()
            .segment("buyers")
            .unwrap()
            .unwrap()
            .name,
        "Buyers"
    );
    let again = c
        .submit(
            "/audiences",
            &session,
            &form_encode(&[
                ("csrf", &csrf),
                ("slug", "buyers"),
                ("definition", fixed),
                ("action", "save"),
            ]),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the slug is taken"
    );

    let list = c.page("/audiences", &session).await;
    assert!(list.body.contains("data-slug=\"buyers\""));
    let show = c.page("/audiences/buyers", &session).await;
    assert_eq!(show.status, StatusCode::OK);
    assert!(show.body.contains("within 3650d"));

    // Another audience refers to it: deleting it is refused, naming the user.
    let refers = c
        .submit(
            "/audiences",
            &session,
            &form_encode(&[
                ("csrf", &csrf),
                ("slug", "vip"),
                ("definition", "segment \"buyers\""),
                ("action", "save"),
            ]),
        )
        .await;
    assert_eq!(refers.status, StatusCode::SEE_OTHER, "{}", refers.body);
    let refused = c
        .submit(
            "/audiences/buyers/delete",
            &session,
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("vip"));
    let deleted = c
        .submit("/audiences/vip/delete", &session, &format!("csrf={csrf}"))
        .await;
    assert_eq!(
        (deleted.status, deleted.location()),
        (StatusCode::SEE_OTHER, "/audiences")
    );
    assert!(
        Audiences::of(&c.store)
            .unwrap()
            .segment("vip")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        c.submit("/audiences/buyers/delete", &session, "csrf=forged")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn viewers_check_but_cannot_save_and_the_live_check_needs_the_token() {
    let c = TestApp::new().with_console_users();
    let session = c.session("viewer@example.it").await;
    let editor = c.page("/audiences/new", &session).await;
    assert!(
        !editor.body.contains("value=\"save\""),
        "no save button for viewers"
    );
    let csrf = editor.hidden_csrf();
    let refused = c
        .submit(
            "/audiences",
            &session,
            &form_encode(&[
                ("csrf", &csrf),
                ("slug", "x"),
                ("definition", "traits.city == \"Torino\""),
                ("action", "save"),
            ]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        Audiences::of(&c.store)
            .unwrap()
            .segment("x")
            .unwrap()
            .is_none()
    );

    let check = |token: &str, definition: &str| {
        Request::post("/audiences/check")
            .header(header::COOKIE, session.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-csrf-token", token)
            .body(Body::from(json!({"definition": definition}).to_string()))
            .unwrap()
    };
    assert_eq!(
        c.browse(check("wrong", "traits.city == \"Torino\""))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let ok = c.browse(check(&csrf, "traits.city  ==  \"Torino\"")).await;
    let ok: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(
        ok,
        json!({"valid": true, "canonical": "traits.city == \"Torino\""})
    );
    let bad = c.browse(check(&csrf, "traits.city == ")).await;
    let bad: serde_json::Value = serde_json::from_str(&bad.body).unwrap();
    assert_eq!(bad["valid"], false);
    assert_eq!(
        (
            bad["problem"]["line"].as_u64(),
            bad["problem"]["column"].as_u64()
        ),
        (Some(1), Some(16))
    );
    assert!(bad["problem"]["excerpt"].as_str().unwrap().ends_with("^"));
    assert_answer!("console_definition_problem", bad);
    // The editor speaks the reader's language.
    let mut italian = check(&csrf, "traits.city == ");
    italian
        .headers_mut()
        .insert(header::ACCEPT_LANGUAGE, "it-IT,it;q=0.9".parse().unwrap());
    let italian: serde_json::Value = serde_json::from_str(&c.browse(italian).await.body).unwrap();
    assert_eq!(
        italian["problem"]["message"], "atteso: un valore dopo ==; trovato: la fine del testo",
        "{italian}"
    );
}
