//! Signing in and out, sessions, CSRF, the failed-sign-in limit, the security headers.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use prossimo_console::users::Users;
use prossimo_console::{MAX_FAILURES, SESSION_COOKIE};

use crate::harness::*;

#[tokio::test]
async fn pages_need_a_session_and_sign_in_sets_a_safe_cookie() {
    let c = TestApp::new().with_console_users();
    for path in ["/", "/customers", "/customers/1"] {
        let reply = c.page(path, "").await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(reply.location(), "/login", "{path}");
    }
    let reply = c.sign_in("admin@example.it", PASSWORD).await;
    let set = reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("prossimo_session="))
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    let session = reply.cookie(SESSION_COOKIE).unwrap();
    let page = c.page("/customers", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("admin@example.it"));
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn wrong_passwords_unknown_accounts_and_forged_forms_are_refused() {
    let c = TestApp::new().with_console_users();
    let wrong = c.sign_in("admin@example.it", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("role=\"alert\""));
    assert!(wrong.cookie(SESSION_COOKIE).is_none());
    let unknown = c.sign_in("nobody@example.it", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.body,
        wrong
            .body
            .replace("admin@example.it", "nobody@example.it")
            .replace(&wrong.hidden_csrf(), &unknown.hidden_csrf()),
        "an unknown account looks like a wrong password"
    );

    // A login form posted from elsewhere carries no matching CSRF cookie.
    let forged = c
        .submit(
            "/login",
            "",
            &format!(
                "email=admin@example.it&password={}&csrf=abc",
                PASSWORD.replace(' ', "+")
            ),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.cookie(SESSION_COOKIE).is_none());

    Users::of(&c.store)
        .unwrap()
        .update("viewer@example.it", None, None, Some(true))
        .unwrap();
    let disabled = c.sign_in("viewer@example.it", PASSWORD).await;
    assert_eq!(
        disabled.status,
        StatusCode::UNAUTHORIZED,
        "disabled users cannot sign in"
    );
}

#[tokio::test]
async fn five_failed_sign_ins_lock_the_account_even_for_the_right_password() {
    let c = TestApp::new().with_console_users();
    for _ in 0..MAX_FAILURES {
        assert_eq!(
            c.sign_in("admin@example.it", "guess guess guess")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = c.sign_in("admin@example.it", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers.contains_key(header::RETRY_AFTER));
    assert!(locked.cookie(SESSION_COOKIE).is_none());
    // Another account is not affected.
    assert_eq!(
        c.sign_in("viewer@example.it", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

/// Behind a trusted proxy every client arrives from the proxy's address: a stranger
/// hammering the first admin must not lock out the admin's own sign-in. A header from a
/// connection that is not a trusted proxy is ignored, so it cannot dodge the limit.
#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_counted_apart_and_forged_headers_change_nothing() {
    let c = TestApp::new().with_console_users();
    let attacker = "203.0.113.9";
    for _ in 0..MAX_FAILURES {
        let status = c
            .sign_in_from(
                "127.0.0.1",
                &format!("{attacker}, 127.0.0.1"),
                "admin@example.it",
                "guess guess guess",
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        c.sign_in_from("127.0.0.1", attacker, "admin@example.it", PASSWORD)
            .await,
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker is locked out"
    );
    assert_eq!(
        c.sign_in_from("127.0.0.1", "198.51.100.7", "admin@example.it", PASSWORD)
            .await,
        StatusCode::SEE_OTHER,
        "the admin, behind the same proxy, is not"
    );
    // Straight from the internet, with a header made up for each try: counted by the
    // connection's address all the same.
    for i in 0..MAX_FAILURES {
        let status = c
            .sign_in_from(
                "192.0.2.50",
                &format!("10.0.0.{i}"),
                "viewer@example.it",
                "guess guess guess",
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        c.sign_in_from("192.0.2.50", "10.9.9.9", "viewer@example.it", PASSWORD)
            .await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn sign_out_needs_the_csrf_token_and_ends_the_session() {
    let c = TestApp::new().with_console_users();
    let session = c.session("viewer@example.it").await;
    let page = c.page("/customers", &session).await;
    let csrf = page.hidden_csrf();
    assert_eq!(
        c.submit("/logout", &session, "").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.submit("/logout", &session, "csrf=wrong").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.page("/customers", &session).await.status,
        StatusCode::OK,
        "still signed in"
    );
    let out = c.submit("/logout", &session, &format!("csrf={csrf}")).await;
    assert_eq!(
        (out.status, out.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    assert_eq!(
        c.page("/customers", &session).await.location(),
        "/login",
        "the old cookie is dead"
    );
}

#[tokio::test]
async fn scripts_get_401_json_error_pages_carry_the_security_headers_and_odd_posts_are_refused() {
    let c = TestApp::new().with_console_users();
    let signed_out = c
        .browse(
            Request::get("/live/entries?after=0")
                .header(header::ACCEPT, "application/json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        signed_out.status,
        StatusCode::UNAUTHORIZED,
        "not a redirect a script would follow"
    );
    assert!(signed_out.body.contains("\"unauthorized\""));

    let admin = c.session("admin@example.it").await;
    let missing = c.page("/customers/999999", &admin).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    for name in [
        "x-content-type-options",
        "content-security-policy",
        "x-frame-options",
        "cache-control",
    ] {
        assert!(
            missing.headers.contains_key(name),
            "error page without {name}"
        );
    }
    let csrf = c.page("/settings", &admin).await.hidden_csrf();
    assert_eq!(
        c.submit("/settings/drop-everything", &admin, &format!("csrf={csrf}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let reserved = c
        .submit(
            "/audiences",
            &admin,
            &form_encode(&[
                ("csrf", &csrf),
                ("slug", "new"),
                ("definition", "traits.city == \"Torino\""),
                ("action", "save"),
            ]),
        )
        .await;
    assert_eq!(
        reserved.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/audiences/new is a page"
    );
    assert_eq!(
        c.submit("/audiences/ghost/delete", &admin, &format!("csrf={csrf}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A 10,000-character "e-mail" is refused like any wrong sign-in.
    let long = "a".repeat(10_000);
    let refused = c.sign_in(&long, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_console_has_a_favicon_from_its_own_assets() {
    let c = TestApp::new().with_console_users();
    for path in ["/favicon.ico", "/assets/favicon.svg"] {
        let icon = c.page(path, "").await;
        assert_eq!(icon.status, StatusCode::OK, "{path}");
        assert_eq!(icon.headers[header::CONTENT_TYPE], "image/svg+xml");
        assert!(icon.body.starts_with("<svg"));
    }
    let login = c.page("/login", "").await;
    assert!(
        login
            .body
            .contains(r#"<link rel="icon" href="/assets/favicon.svg""#)
    );
}
