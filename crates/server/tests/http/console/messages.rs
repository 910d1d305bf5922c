//! Writing, previewing and saving messages in the console.

use axum::http::StatusCode;

use crate::harness::*;

#[tokio::test]
async fn a_message_is_previewed_for_a_customer_and_saved() {
    let c = TestApp::new().with_console_users();
    let session = c.session("admin@example.it").await;
    let list = c.page("/messages", &session).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("No messages yet"), "{}", list.body);
    let editor = c.page("/messages/new", &session).await;
    assert_eq!(editor.status, StatusCode::OK);
    assert!(
        editor.body.contains("mj-button"),
        "starts from the cart reminder"
    );
    let csrf = editor.hidden_csrf();
    let form = |body: &str, action: &str, profile: &str| {
        form_encode(&[
            ("csrf", &csrf),
            ("slug", "carrello"),
            ("name", "Carrello"),
            ("channel", "email"),
            ("format", "mjml"),
            ("subject", "{{ profile.name }}, il tuo carrello"),
            ("body", body),
            ("profile", profile),
            (
                "event",
                r#"{"properties": {"products": [{"name": "Borsa in pelle", "price": 89.5}]}}"#,
            ),
            ("action", action),
        ])
    };
    let body = "<mjml><mj-body><mj-section><mj-column>{% for p in event.properties.products %}<mj-text>{{ p.name }} a € {{ p.price }}</mj-text>{% endfor %}</mj-column></mj-section></mj-body></mjml>";

    let broken = c
        .submit(
            "/messages",
            &session,
            &form("{% for p in %}", "preview", "user_id:42"),
        )
        .await;
    assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(broken.body.contains("body:"), "{}", broken.body);
    assert!(broken.body.contains("line 1"), "{}", broken.body);

    let previewed = c
        .submit("/messages", &session, &form(body, "preview", "user_id:42"))
        .await;
    assert_eq!(previewed.status, StatusCode::OK, "{}", previewed.body);
    assert!(
        previewed
            .body
            .contains("<span class=\"subject\">Anna Rossi, il tuo carrello</span>"),
        "{}",
        previewed.body
    );
    assert!(
        previewed.body.contains("Borsa in pelle a € 89.5"),
        "the text part"
    );
    let frame = previewed
        .body
        .split("src=\"/messages/frame/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a frame")
        .to_owned();
    let html = c.page(&format!("/messages/frame/{frame}"), &session).await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(html.body.contains("Borsa in pelle"), "{}", html.body);
    let policy = html.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("sandbox;"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    let gone = c.page("/messages/frame/nothing-here", &session).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let nobody = c
        .submit(
            "/messages",
            &session,
            &form(body, "preview", "user_id:nobody"),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A viewer previews but does not save.
    let viewer = c.session("viewer@example.it").await;
    let viewer_csrf = c.page("/messages/new", &viewer).await.hidden_csrf();
    let refused = c
        .submit(
            "/messages",
            &viewer,
            &form(body, "save", "").replace(&csrf, &viewer_csrf),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let saved = c
        .submit("/messages", &session, &form(body, "save", ""))
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let list = c.page("/messages", &session).await;
    assert!(
        list.body.contains("data-slug=\"carrello\""),
        "{}",
        list.body
    );
    let edit = c.page("/messages/carrello/edit", &session).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("il tuo carrello"));
    let (status, body) = c.admin("GET", "/v1/messages/carrello", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["format"], "mjml", "{body}");
}
