//! In-process tests of the console over a real SQLite store: sign-in, sessions, CSRF, the
//! failed-sign-in limit, roles, languages, and the customer pages over ingested messages.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use prossimo_decide::audiences::Audiences;
use prossimo_store::ProfileKey;
use prossimo_store::testsuite::{Fixture, incoming};
use serde_json::json;
use tower::ServiceExt;

use super::*;

const PASSWORD: &str = "a long enough password";

struct Console {
    router: Router,
    store: Arc<Store>,
    live: Arc<LiveFeed>,
    bus: prossimo_bus::Bus,
    _fixture: Fixture,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `name=value` of a cookie this reply sets.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .and_then(|c| c.split(';').next())
            .map(str::to_owned)
    }

    fn hidden_csrf(&self) -> String {
        let start = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        let len = self.body[start..].find('"').expect("a closing quote");
        self.body[start..start + len].to_owned()
    }
}

fn console() -> Console {
    let fixture = Fixture::sqlite();
    let store = fixture.store.clone();
    let source = store.bootstrap(None, None).unwrap().source;
    let batch = incoming(
        &store,
        source.id,
        vec![
            json!({"type": "identify", "userId": "42", "messageId": "c1", "timestamp": "2026-03-01T10:00:00Z",
               "traits": {"email": "anna.rossi@example.it", "name": "Anna Rossi", "city": "Torino"}}),
            json!({"type": "track", "userId": "42", "messageId": "c2", "event": "Order Completed",
               "timestamp": "2026-03-02T10:00:00Z", "context": {"channel": "store"},
               "properties": {"order_id": "R-1", "revenue": 1234.5, "currency": "EUR"}}),
            json!({"type": "page", "userId": "42", "messageId": "c3", "name": "Scarpe <b>rosse</b>",
               "timestamp": "2026-03-03T10:00:00Z", "context": {"library": {"name": "analytics.js"}}}),
        ],
    );
    store.ingest(&batch).unwrap();
    for (email, role) in [
        ("admin@example.it", Role::Admin),
        ("viewer@example.it", Role::Viewer),
    ] {
        crate::users::Users::of(&store)
            .unwrap()
            .create(email, None, role, &hash_password(PASSWORD).unwrap())
            .unwrap();
    }
    let live: Arc<LiveFeed> = Arc::default();
    let bus = prossimo_bus::Bus::new();
    Console {
        bus: bus.clone(),
        router: router(Services {
            store: store.clone(),
            decider: None,
            bus,
            trusted_proxies: TrustedProxies(Arc::from(["127.0.0.1/32"
                .parse::<ipnet::IpNet>()
                .unwrap()])),
            live: live.clone(),
        }),
        live,
        store,
        _fixture: fixture,
    }
}

impl Console {
    async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str, cookies: &str) -> Reply {
        self.send(
            Request::get(path)
                .header(header::HOST, "127.0.0.1:8080")
                .header(header::COOKIE, cookies)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post(&self, path: &str, cookies: &str, form: &str) -> Reply {
        self.send(
            Request::post(path)
                .header(header::HOST, "127.0.0.1:8080")
                .header(header::COOKIE, cookies)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.to_owned()))
                .unwrap(),
        )
        .await
    }

    /// Signs in through the form; returns the session cookie (`name=value`).
    async fn sign_in(&self, email: &str, password: &str) -> Reply {
        let form = self.get("/login", "").await;
        let csrf_cookie = form
            .cookie(auth::LOGIN_CSRF_COOKIE)
            .expect("login csrf cookie");
        let body = format!(
            "email={email}&password={password}&csrf={}",
            form.hidden_csrf()
        );
        self.post("/login", &csrf_cookie, &body.replace(' ', "+"))
            .await
    }

    /// Signs in as a connection from `peer` would, with an `X-Forwarded-For` header.
    async fn sign_in_from(
        &self,
        peer: &str,
        forwarded_for: &str,
        email: &str,
        password: &str,
    ) -> StatusCode {
        let form = self.get("/login", "").await;
        let csrf_cookie = form
            .cookie(auth::LOGIN_CSRF_COOKIE)
            .expect("login csrf cookie");
        let body = format!(
            "email={email}&password={password}&csrf={}",
            form.hidden_csrf()
        );
        let mut request = Request::post("/login")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::COOKIE, csrf_cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-forwarded-for", forwarded_for)
            .body(Body::from(body.replace(' ', "+")))
            .unwrap();
        let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        self.send(request).await.status
    }

    async fn session(&self, email: &str) -> String {
        let reply = self.sign_in(email, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(reply.location(), "/customers");
        reply.cookie(auth::SESSION_COOKIE).expect("session cookie")
    }
}

#[tokio::test]
async fn pages_need_a_session_and_sign_in_sets_a_safe_cookie() {
    let c = console();
    for path in ["/", "/customers", "/customers/1"] {
        let reply = c.get(path, "").await;
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
    let session = reply.cookie(auth::SESSION_COOKIE).unwrap();
    let page = c.get("/customers", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("admin@example.it"));
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn wrong_passwords_unknown_accounts_and_forged_forms_are_refused() {
    let c = console();
    let wrong = c.sign_in("admin@example.it", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("role=\"alert\""));
    assert!(wrong.cookie(auth::SESSION_COOKIE).is_none());
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
        .post(
            "/login",
            "",
            &format!(
                "email=admin@example.it&password={}&csrf=abc",
                PASSWORD.replace(' ', "+")
            ),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.cookie(auth::SESSION_COOKIE).is_none());

    crate::users::Users::of(&c.store)
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
    let c = console();
    for _ in 0..auth::MAX_FAILURES {
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
    assert!(locked.cookie(auth::SESSION_COOKIE).is_none());
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
    let c = console();
    let attacker = "203.0.113.9";
    for _ in 0..auth::MAX_FAILURES {
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
    for i in 0..auth::MAX_FAILURES {
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
    let c = console();
    let session = c.session("viewer@example.it").await;
    let page = c.get("/customers", &session).await;
    let csrf = page.hidden_csrf();
    assert_eq!(
        c.post("/logout", &session, "").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.post("/logout", &session, "csrf=wrong").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.get("/customers", &session).await.status,
        StatusCode::OK,
        "still signed in"
    );
    let out = c.post("/logout", &session, &format!("csrf={csrf}")).await;
    assert_eq!(
        (out.status, out.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    assert_eq!(
        c.get("/customers", &session).await.location(),
        "/login",
        "the old cookie is dead"
    );
}

#[tokio::test]
async fn search_finds_customers_by_name_and_identifier() {
    let c = console();
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
            .get(&format!("/customers?q={}", q.replace(' ', "+")), &session)
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains(&format!("href=\"/customers/{id}\"")),
            "{q}"
        );
    }
    let none = c.get("/customers?q=zzzz", &session).await;
    assert!(none.body.contains("No customer matches."));

    // Thirty more Rossi: a count of what is shown, and pages to walk through them.
    let source = c.store.bootstrap(None, None).unwrap().source;
    let rossi = (0..30)
        .map(|i| json!({"type": "identify", "userId": format!("rossi-{i}"), "traits": {"name": format!("Persona{i:02} Rossi")}}))
        .collect();
    c.store
        .ingest(&incoming(&c.store, source.id, rossi))
        .unwrap();
    let first = c.get("/customers?q=rossi", &session).await;
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
    let second = c.get("/customers?q=rossi&page=2&lang=it", &session).await;
    assert!(second.body.contains("Clienti 26–31"), "{}", second.body);
    assert!(!second.body.contains("rel=\"next\""));
    assert!(second.body.contains("rel=\"prev\""));
    let nonsense = c.get("/customers?q=rossi&page=lots", &session).await;
    assert_eq!(
        nonsense.status,
        StatusCode::OK,
        "a bad page number shows the first page"
    );
}

#[test]
fn numbers_are_written_one_way_per_language() {
    assert_eq!(Lang::En.number(1234567.0), "1,234,567");
    assert_eq!(Lang::It.number(1234567.0), "1.234.567");
    assert_eq!(Lang::En.number(1234.5), "1,234.50");
    assert_eq!(Lang::It.number(1234.5), "1.234,50");
    assert_eq!(Lang::It.number(-0.004), "0,00");
    assert_eq!(Lang::It.number(-12.5), "-12,50");
    assert_eq!(Lang::It.count(1000), "1.000");
    assert_eq!(Lang::En.percent(0.123), "12%");
    assert_eq!(
        crate::customers::money(Lang::It, -1234.5, "EUR"),
        "-1.234,50 €"
    );
    assert_eq!(
        crate::customers::money(Lang::En, -1234.5, "EUR"),
        "-€ 1,234.50"
    );
}

#[tokio::test]
async fn the_customer_page_shows_the_360_escaped_filtered_and_in_italian() {
    let c = console();
    let session = c.session("viewer@example.it").await;
    let id = c
        .store
        .resolve_profile(
            &ProfileKey::parse("email:anna.rossi@example.it", c.store.identity()).unwrap(),
        )
        .unwrap()
        .unwrap();
    let page = c.get(&format!("/customers/{id}"), &session).await;
    assert_eq!(page.status, StatusCode::OK);
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
        .get(&format!("/customers/{id}?channel=store"), &session)
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

    let italian = c.get(&format!("/customers/{id}?lang=it"), &session).await;
    assert!(italian.body.contains("<html lang=\"it\">"));
    assert!(italian.body.contains("1.234,50 €"));
    assert!(italian.body.contains("Cronologia"));
    let remembered = italian.cookie(i18n::LANG_COOKIE).unwrap();
    let next = c
        .get(
            &format!("/customers/{id}"),
            &format!("{session}; {remembered}"),
        )
        .await;
    assert!(
        next.body.contains("<html lang=\"it\">"),
        "the choice is remembered"
    );

    let missing = c.get("/customers/999999", &session).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.get("/customers/abc", &session).await.status,
        StatusCode::NOT_FOUND
    );
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn an_audience_is_checked_previewed_saved_listed_and_deleted() {
    let c = console();
    let session = c.session("admin@example.it").await;
    let editor = c.get("/audiences/new", &session).await;
    assert_eq!(editor.status, StatusCode::OK);
    let csrf = editor.hidden_csrf();

    let broken = "count(event \"Order Completed\" within 90d) >= 1\nand p_alive < \"low\"";
    let checked = c
        .post(
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
        .post(
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
        .post(
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
        .post(
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

    let list = c.get("/audiences", &session).await;
    assert!(list.body.contains("data-slug=\"buyers\""));
    let show = c.get("/audiences/buyers", &session).await;
    assert_eq!(show.status, StatusCode::OK);
    assert!(show.body.contains("within 3650d"));

    // Another audience refers to it: deleting it is refused, naming the user.
    let refers = c
        .post(
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
        .post(
            "/audiences/buyers/delete",
            &session,
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("vip"));
    let deleted = c
        .post("/audiences/vip/delete", &session, &format!("csrf={csrf}"))
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
        c.post("/audiences/buyers/delete", &session, "csrf=forged")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn viewers_check_but_cannot_save_and_the_live_check_needs_the_token() {
    let c = console();
    let session = c.session("viewer@example.it").await;
    let editor = c.get("/audiences/new", &session).await;
    assert!(
        !editor.body.contains("value=\"save\""),
        "no save button for viewers"
    );
    let csrf = editor.hidden_csrf();
    let refused = c
        .post(
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
        c.send(check("wrong", "traits.city == \"Torino\""))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let ok = c.send(check(&csrf, "traits.city  ==  \"Torino\"")).await;
    let ok: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(
        ok,
        json!({"valid": true, "canonical": "traits.city == \"Torino\""})
    );
    let bad = c.send(check(&csrf, "traits.city == ")).await;
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
    // The editor speaks the reader's language.
    let mut italian = check(&csrf, "traits.city == ");
    italian
        .headers_mut()
        .insert(header::ACCEPT_LANGUAGE, "it-IT,it;q=0.9".parse().unwrap());
    let italian: serde_json::Value = serde_json::from_str(&c.send(italian).await.body).unwrap();
    assert_eq!(
        italian["problem"]["message"], "atteso: un valore dopo ==; trovato: la fine del testo",
        "{italian}"
    );
}

/// The CDNOW sample's orders through the store, then every analysis and a calibration run,
/// as `prossimo analyze` does: the analytics page draws every chart from the stored reports.
#[tokio::test]
async fn the_analytics_page_draws_every_chart_from_the_stored_reports() {
    let c = console();
    let session = c.session("viewer@example.it").await;
    let before = c.get("/analytics", &session).await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.body.contains("No analysis has run yet"));

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/CDNOW_sample.txt"
    );
    let text = std::fs::read_to_string(path).expect("reference data: ../shared/data");
    let source = c.store.bootstrap(None, None).unwrap().source;
    let orders: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let d = f[2];
            json!({"type": "track", "event": "Order Completed", "userId": format!("cd{}", f[1]),
                   "messageId": format!("cdnow-{n}"),
                   "timestamp": format!("{}-{}-{}T00:00:00Z", &d[..4], &d[4..6], &d[6..]),
                   "properties": {"order_id": format!("o{n}"), "revenue": f[4].parse::<f64>().unwrap()}})
        })
        .collect();
    for chunk in orders.chunks(2_000) {
        c.store
            .ingest(&incoming(&c.store, source.id, chunk.to_vec()))
            .unwrap();
    }
    // 1998-06-30 and 1997-09-30, end of day UTC (the papers' observation and calibration ends).
    let mut options = prossimo_understand::Options::new(899_251_199_999);
    options.period = prossimo_analytics::Period::WEEK;
    let outcome = prossimo_understand::run(&c.store, &[], &options).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    options.calibration_end_ms = Some(875_663_999_999);
    prossimo_understand::run(&c.store, &[prossimo_understand::Analysis::Clv], &options).unwrap();

    let page = c.get("/analytics", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    for chart in [
        "growth",
        "new-returning",
        "cohorts",
        "rfm",
        "clv-distribution",
        "p-alive-recency",
        "churn-loyalty",
        "channels",
        "holdout",
    ] {
        let start = page
            .body
            .find(&format!("data-chart=\"{chart}\""))
            .unwrap_or_else(|| panic!("no {chart} chart"));
        let figure = &page.body[start..start + page.body[start..].find("</figure>").unwrap()];
        assert!(figure.contains("data-value="), "{chart} has no data");
        assert!(!figure.contains("Not computed"), "{chart}");
        assert!(figure.contains("<figcaption"), "{chart}");
    }
    // Independent truth: 1,882 purchase days in CDNOW's holdout (counted in the analytics
    // crate's tests), and 2,357 customers in the sample.
    assert!(
        page.body.contains("Holdout totals: Actual 1,882"),
        "holdout total"
    );
    assert!(page.body.contains("<strong>2,357</strong>"), "buyers");
}

#[tokio::test]
async fn live_events_show_what_was_accepted_and_refused() {
    let c = console();
    assert_eq!(c.get("/live/entries", "").await.location(), "/login");
    let session = c.session("viewer@example.it").await;
    let empty = c.get("/live", &session).await;
    assert!(
        empty
            .body
            .contains("Nothing received since this server started.")
    );
    let payload = prossimo_model::parse_batch(
        json!({"batch": [{"type": "track", "event": "Order Completed", "userId": "42", "messageId": "m-live"}]})
            .to_string()
            .as_bytes(),
        chrono::Utc::now(),
        &prossimo_model::Limits::default(),
    )
    .unwrap();
    c.live
        .accepted(LiveFeed::sample("web", payload.messages.iter()));
    c.live.refused(Refusal {
        source: Some("till"),
        status: 400,
        code: "validation_error",
        message: "1 message is invalid".into(),
        problems: vec!["[0] userId: either userId or anonymousId is required".into()],
    });
    let page = c.get("/live", &session).await;
    assert!(page.body.contains("m-live"));
    assert!(
        page.body
            .contains("[0] userId: either userId or anonymousId is required")
    );
    assert!(page.body.contains("data-last=\"2\""));
    let newer = c.get("/live/entries?after=1", &session).await;
    let newer: serde_json::Value = serde_json::from_str(&newer.body).unwrap();
    assert_eq!(newer["entries"].as_array().unwrap().len(), 1);
    assert_eq!(newer["entries"][0]["source"], "till");
    assert_eq!(newer["entries"][0]["accepted"], false);
}

#[tokio::test]
async fn admins_manage_sources_tokens_and_users_and_others_cannot() {
    let c = console();
    let viewer = c.session("viewer@example.it").await;
    assert_eq!(
        c.get("/settings", &viewer).await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = c.get("/customers", &viewer).await.hidden_csrf();
    assert_eq!(
        c.post(
            "/settings/create-source",
            &viewer,
            &format!("csrf={csrf}&name=till")
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    let admin = c.session("admin@example.it").await;
    let page = c.get("/settings", &admin).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.hidden_csrf();
    assert_eq!(
        c.post("/settings/create-source", &admin, "name=till")
            .await
            .status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    let added = c
        .post(
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
        .post(
            "/settings/create-source",
            &admin,
            &format!("csrf={csrf}&name=till"),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("role=\"alert\""));
    c.post(
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
        .post(
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
        c.post("/settings/create-user", &admin, &form).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        crate::users::Users::of(&c.store)
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
    let refused = c.post("/settings/create-user", &admin, &short).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("at least 10 characters"));

    c.post(
        "/settings/set-role",
        &admin,
        &format!("csrf={csrf}&email=bruno%40example.it&role=viewer"),
    )
    .await;
    assert_eq!(
        crate::users::Users::of(&c.store)
            .unwrap()
            .by_email("bruno@example.it")
            .unwrap()
            .unwrap()
            .role,
        Role::Viewer
    );
    let bruno = c.session("bruno@example.it").await;
    c.post(
        "/settings/set-state",
        &admin,
        &format!("csrf={csrf}&email=bruno%40example.it&disabled=true"),
    )
    .await;
    assert_eq!(
        c.get("/customers", &bruno).await.location(),
        "/login",
        "disabling ends sessions"
    );
    let myself = c
        .post(
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
    let c = console();
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
    let settings = c.get("/settings", &admin).await;
    assert!(
        settings
            .body
            .contains("href=\"/settings/destinations/crm\"")
    );
    let page = c
        .get("/settings/destinations/crm?status=dead", &admin)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("msg_dead_1"));
    assert!(page.body.contains("HTTP 503"));
    let csrf = page.hidden_csrf();
    let replayed = c
        .post(
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
        c.get("/settings/destinations/nope", &admin).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn scripts_get_401_json_error_pages_carry_the_security_headers_and_odd_posts_are_refused() {
    let c = console();
    let signed_out = c
        .send(
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
    let missing = c.get("/customers/999999", &admin).await;
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
    let csrf = c.get("/settings", &admin).await.hidden_csrf();
    assert_eq!(
        c.post("/settings/drop-everything", &admin, &format!("csrf={csrf}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let reserved = c
        .post(
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
        c.post("/audiences/ghost/delete", &admin, &format!("csrf={csrf}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A 10,000-character "e-mail" is refused like any wrong sign-in.
    let long = "a".repeat(10_000);
    let refused = c.sign_in(&long, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

/// A run that failed, or could not compute everything, is said on the Analytics page with
/// its problems; an admin can ask for a new one there (a viewer cannot).
#[tokio::test]
async fn a_failed_analysis_run_shows_with_its_problems_and_admins_can_run_again() {
    let c = console();
    prossimo_understand::Reports::of(&c.store)
        .unwrap()
        .save(
            prossimo_understand::LAST_RUN,
            &json!({"ok": false, "seconds": 1.5, "error": "storage unavailable: locked", "problems": []}),
        )
        .unwrap();
    let viewer = c.session("viewer@example.it").await;
    let page = c.get("/analytics", &viewer).await;
    assert!(page.body.contains("id=\"last-run\""), "{}", page.body);
    assert!(page.body.contains("The last analysis run failed"));
    assert!(page.body.contains("storage unavailable: locked"));
    assert!(
        !page.body.contains("action=\"/analytics/run\""),
        "viewers cannot run"
    );
    let refused = c
        .post(
            "/analytics/run",
            &viewer,
            &format!("csrf={}", page.hidden_csrf()),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    prossimo_understand::Reports::of(&c.store)
        .unwrap()
        .save(
            prossimo_understand::LAST_RUN,
            &json!({"ok": true, "seconds": 1.5, "problems": [
                // A run from before problems had kinds stored English sentences.
                "orders: 1 left out of every analysis",
                {"kind": "touchpoints_too_early", "count": 3,
                 "message": "touchpoints: 3 events dated before 1900 left out of cohorts and dynamics"},
            ]}),
        )
        .unwrap();
    let admin = c.session("admin@example.it").await;
    let english = c.get("/analytics", &admin).await;
    assert!(
        english
            .body
            .contains("touchpoints: 3 events dated before 1900 left out"),
        "{}",
        english.body
    );
    let page = c.get("/analytics?lang=it", &admin).await;
    assert!(
        page.body
            .contains("punti di contatto: 3 eventi datati prima del 1900 esclusi"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("L&#39;ultima analisi non ha potuto calcolare tutto")
            || page
                .body
                .contains("L'ultima analisi non ha potuto calcolare tutto"),
        "{}",
        page.body
    );
    assert!(page.body.contains("orders: 1 left out of every analysis"));
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let _listening = c.bus.subscribe(
        "test",
        &[prossimo_bus::Topic::AnalysisRequested],
        move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        },
    );
    let forged = c.post("/analytics/run", &admin, "csrf=forged").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 0);
    let done = c
        .post(
            "/analytics/run",
            &admin,
            &format!("csrf={}", page.hidden_csrf()),
        )
        .await;
    assert_eq!(done.location(), "/analytics?run=requested");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    let after = c.get("/analytics?run=requested", &admin).await;
    assert!(after.body.contains("id=\"run-requested\""));
}

#[tokio::test]
async fn the_console_has_a_favicon_from_its_own_assets() {
    let c = console();
    for path in ["/favicon.ico", "/assets/favicon.svg"] {
        let icon = c.get(path, "").await;
        assert_eq!(icon.status, StatusCode::OK, "{path}");
        assert_eq!(icon.headers[header::CONTENT_TYPE], "image/svg+xml");
        assert!(icon.body.starts_with("<svg"));
    }
    let login = c.get("/login", "").await;
    assert!(
        login
            .body
            .contains(r#"<link rel="icon" href="/assets/favicon.svg""#)
    );
}

#[test]
fn customer_groups_are_named_by_what_sets_them_apart() {
    let features = json!([
        {"feature": "frequency", "z": 1.9},
        {"feature": "monetary", "z": 1.1},
        {"feature": "recency_days", "z": -0.7},
        {"feature": "p_alive", "z": 0.2}
    ]);
    let features = features.as_array().unwrap();
    assert_eq!(
        crate::i18n::cluster_name(Lang::En, features),
        "Frequent, big baskets"
    );
    assert_eq!(
        crate::i18n::cluster_name(Lang::It, features),
        "Frequenti, scontrino alto"
    );
    let average = json!([{"feature": "frequency", "z": 0.1}]);
    assert_eq!(
        crate::i18n::cluster_name(Lang::It, average.as_array().unwrap()),
        "Clienti nella media"
    );
    assert_eq!(
        crate::i18n::cluster_name(Lang::En, &[]),
        "Typical customers"
    );
}

/// An admin limits a source's key to the shop's own pages from the Settings page, and
/// opens it to any page again by emptying the list; a bad origin is refused with a word.
#[tokio::test]
async fn admins_set_the_web_pages_a_source_accepts() {
    let c = console();
    let admin = c.session("admin@example.it").await;
    let page = c.get("/settings", &admin).await;
    let csrf = page.hidden_csrf();
    let source = c.store.sources().unwrap().remove(0);
    assert!(page.body.contains("action=\"/settings/set-origins\""));
    let saved = c
        .post(
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
    let shown = c.get("/settings", &admin).await;
    assert!(
        shown
            .body
            .contains("http://localhost:3000\nhttps://shop.example.it</textarea>"),
        "{}",
        shown.body
    );
    let refused = c
        .post(
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
        .post(
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
