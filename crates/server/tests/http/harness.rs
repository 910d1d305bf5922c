//! The one harness of the HTTP tests: the server's real router (API and console) over a
//! real SQLite store in a temp dir, with the services a test asks for, and helpers to talk
//! to it as an API client (write key, admin token) or as a browser (cookies, forms).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::post;
use base64::Engine;
use prossimo_console::users::{Role, Users};
use prossimo_console::{LOGIN_CSRF_COOKIE, LiveFeed, SESSION_COOKIE, TrustedProxies};
use prossimo_decide::Decider;
use prossimo_identity::IdentityConfig;
use prossimo_model::Limits;
use prossimo_server::{Analyst, AnalystConfig, AppState, Pipeline, PipelineConfig, app};
use prossimo_store::testsuite::incoming;
use prossimo_store::{Location, Store, StoreOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The password of the console users [`TestApp::with_console_users`] creates.
pub const PASSWORD: &str = "a long enough password";

/// How long a write key is remembered, short so a test can see a revocation arrive.
pub const KEY_CACHE_TTL: Duration = Duration::from_millis(200);

pub struct TestApp {
    pub router: Router,
    pub live: Arc<LiveFeed>,
    pub store: Arc<Store>,
    pub bus: prossimo_bus::Bus,
    pub write_key: String,
    pub token: String,
    pub dir: tempfile::TempDir,
    /// Runs while the app does.
    _dispatcher: Option<prossimo_act::Dispatcher>,
}

/// The auth token of the SMS provider whose status callbacks the test app checks, and the
/// base its callback URLs are under.
pub const SMS_AUTH_TOKEN: &str = "sms-provider-token";
pub const LINKS_BASE: &str = "https://crm.negozio.example";

/// Which services a [`TestApp`] runs besides the API and the ingest pipeline.
#[derive(Default)]
pub struct Services {
    pub pipeline: PipelineConfig,
    pub store: StoreOptions,
    /// The analyst, on demand only (no schedule).
    pub analyst: bool,
    /// Live audiences and webhook deliveries (retries after 50 ms, 3 attempts).
    pub decider: bool,
}

impl TestApp {
    /// The API and the console, no analyst, no decider.
    pub fn new() -> TestApp {
        TestApp::with(Services::default())
    }

    pub fn with_analyst() -> TestApp {
        TestApp::with(Services {
            analyst: true,
            ..Services::default()
        })
    }

    pub fn with_decider() -> TestApp {
        TestApp::with(Services {
            decider: true,
            ..Services::default()
        })
    }

    pub fn with(services: Services) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open_with(
                &Location::DataDir(dir.path().to_owned()),
                IdentityConfig::default(),
                services.store,
            )
            .unwrap(),
        );
        let boot = store.bootstrap(None, None).unwrap();
        // Every feature's tables up to date before any service starts, as `Runtime::start`
        // does: a test's held write lock must meet the services' writes, not a migration.
        for schema in prossimo_runtime::FEATURE_SCHEMAS {
            store.migrate(schema).unwrap();
        }
        let bus = prossimo_bus::Bus::new();
        // The tests' webhook receivers listen on this machine.
        let targets =
            Arc::new(prossimo_act::TargetPolicy::allowing(&["127.0.0.1".into()]).unwrap());
        let live = services.decider.then(|| {
            let config = prossimo_act::DispatchConfig {
                retry: prossimo_act::RetryPolicy {
                    max_attempts: 3,
                    first_delay: Duration::from_millis(50),
                    factor: 2,
                    max_delay: Duration::from_secs(1),
                },
                poll: Duration::from_millis(100),
                targets: Arc::clone(&targets),
                ..prossimo_act::DispatchConfig::default()
            };
            let dispatcher = prossimo_act::Dispatcher::start(store.clone(), config, &bus).unwrap();
            let decider = Decider::spawn(
                store.clone(),
                Arc::new(prossimo_model::SystemClock),
                prossimo_decide::DeciderConfig {
                    poll: Duration::from_millis(100),
                },
                bus.clone(),
            );
            (decider, dispatcher)
        });
        let analyst = services.analyst.then(|| {
            Analyst::start(
                store.clone(),
                AnalystConfig {
                    refresh_every: None,
                },
                &bus,
            )
            .unwrap()
        });
        let pipeline = Pipeline::start(store.clone(), services.pipeline, bus.clone()).unwrap();
        let mut state = AppState::new(store.clone(), pipeline, Limits::default(), bus.clone())
            .with_targets(targets)
            .with_key_cache(KEY_CACHE_TTL)
            .with_sms_callbacks(Some(prossimo_server::SmsCallbacks {
                auth_token: SMS_AUTH_TOKEN.into(),
                base: LINKS_BASE.into(),
            }))
            .with_trusted_proxies(TrustedProxies(Arc::from(["127.0.0.1/32"
                .parse::<ipnet::IpNet>()
                .unwrap()])));
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
            bus,
            write_key: boot.source.write_key,
            token: boot.new_admin_token.unwrap(),
            dir,
            _dispatcher: dispatcher,
        }
    }

    /// The console's sample: Anna Rossi (user 42) with an identify, a store order and a
    /// page view stored, and the console users `admin@example.it` and `viewer@example.it`
    /// with [`PASSWORD`].
    pub fn with_console_users(self) -> TestApp {
        let source = self.store.sources().unwrap()[0].id;
        let batch = incoming(
            &self.store,
            source,
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
        self.store.ingest(&batch).unwrap();
        for (email, role) in [
            ("admin@example.it", Role::Admin),
            ("viewer@example.it", Role::Viewer),
        ] {
            Users::of(&self.store)
                .unwrap()
                .create(
                    email,
                    None,
                    role,
                    &prossimo_console::hash_password(PASSWORD).unwrap(),
                )
                .unwrap();
        }
        self
    }
}

/// `Authorization: Basic` for `key` (a write key is the user name, no password).
pub fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// As an API client: JSON answers.
impl TestApp {
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    /// POSTs `body` with the source's write key.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
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

    pub async fn post_admin(&self, path: &str) -> (StatusCode, Value) {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }

    /// GETs `path` until `done` holds for the answer, for at most 30 s.
    pub async fn poll(&self, path: &str, done: impl Fn(StatusCode, &Value) -> bool) -> Value {
        for _ in 0..300 {
            let (status, body) = self.get(path).await;
            if done(status, &body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path} never reached the expected state");
    }

    /// Sends `body` with the admin token until the answer is not a 404 (what was just
    /// ingested may not be readable yet), for at most 30 s.
    pub async fn poll_admin(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        for _ in 0..300 {
            let (status, answer) = self.admin(method, path, Some(body.clone())).await;
            if status != StatusCode::NOT_FOUND {
                return (status, answer);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path} stayed 404");
    }

    /// An admin request with an optional JSON body.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        self.send(request).await
    }

    /// GETs `path` with the admin token.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }
}

/// A console page or form answer, as a browser gets it.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `name=value` of a cookie this reply sets.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .and_then(|c| c.split(';').next())
            .map(str::to_owned)
    }

    pub fn hidden_csrf(&self) -> String {
        let start = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        let len = self.body[start..].find('"').expect("a closing quote");
        self.body[start..start + len].to_owned()
    }
}

/// As a browser on the console: cookies, forms, HTML answers.
impl TestApp {
    pub async fn browse(&self, request: Request<Body>) -> Reply {
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

    pub async fn page(&self, path: &str, cookies: &str) -> Reply {
        self.browse(
            Request::get(path)
                .header(header::HOST, "127.0.0.1:8080")
                .header(header::COOKIE, cookies)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn submit(&self, path: &str, cookies: &str, form: &str) -> Reply {
        self.browse(
            Request::post(path)
                .header(header::HOST, "127.0.0.1:8080")
                .header(header::COOKIE, cookies)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.to_owned()))
                .unwrap(),
        )
        .await
    }

    /// Signs in through the form.
    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        let form = self.page("/login", "").await;
        let csrf_cookie = form.cookie(LOGIN_CSRF_COOKIE).expect("login csrf cookie");
        let body = format!(
            "email={email}&password={password}&csrf={}",
            form.hidden_csrf()
        );
        self.submit("/login", &csrf_cookie, &body.replace(' ', "+"))
            .await
    }

    /// Signs in as a connection from `peer` would, with an `X-Forwarded-For` header.
    pub async fn sign_in_from(
        &self,
        peer: &str,
        forwarded_for: &str,
        email: &str,
        password: &str,
    ) -> StatusCode {
        let form = self.page("/login", "").await;
        let csrf_cookie = form.cookie(LOGIN_CSRF_COOKIE).expect("login csrf cookie");
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
        self.browse(request).await.status
    }

    /// Signs `email` in with [`PASSWORD`]; the session cookie (`name=value`).
    pub async fn session(&self, email: &str) -> String {
        let reply = self.sign_in(email, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        assert_eq!(reply.location(), "/customers");
        reply.cookie(SESSION_COOKIE).expect("session cookie")
    }
}

/// `application/x-www-form-urlencoded` of `pairs`, as a browser encodes a form.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
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

/// What the test webhook receiver saw: headers and body of every request, by path.
#[derive(Default)]
pub struct Received {
    pub requests: std::sync::Mutex<Vec<(String, HeaderMapSnapshot, String)>>,
    /// Requests to /flaky answered 500 so far (the first one fails).
    flaky_failures: std::sync::atomic::AtomicUsize,
}

pub type HeaderMapSnapshot = Vec<(String, String)>;

/// A real HTTP receiver on a free port: `/ok` answers 204, `/flaky` fails once then
/// succeeds, `/down` always answers 503, `/moved` redirects to `/secret`, `/verbose`
/// fails with a long body.
pub async fn webhook_receiver() -> (String, Arc<Received>) {
    use axum::extract::State;
    let received = Arc::new(Received::default());
    let record = |path: &'static str| {
        move |State(r): State<Arc<Received>>, headers: HeaderMap, body: String| async move {
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

/// Snapshots an answer's JSON as `tests/http/snapshots/<name>.snap`, with what changes from
/// run to run redacted: times the server took from its clock (see [`redact_now`]), how long
/// things took, and values it drew at random. Review changes with `cargo insta review` (or
/// run with `INSTA_UPDATE=always` and read the diff).
///
/// Further redactions, for values that depend on timing, come after the value:
/// `assert_answer!("delivery", body, { ".id" => "[id]" })`.
macro_rules! assert_answer {
    ($name:expr, $value:expr) => {
        $crate::harness::assert_answer!($name, $value, {})
    };
    ($name:expr, $value:expr, { $($selector:expr => $replacement:expr),* $(,)? }) => {
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/http/snapshots"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_json_snapshot!($name, $crate::harness::redact_now(&$value), {
                ".**.seconds" => "[duration]",
                ".**.last_run_seconds" => "[duration]",
                ".**.duration_ms" => "[duration]",
                ".**.webhook_id" => "[webhook id]",
                ".**.apiKey" => "[write key]",
                $($selector => $replacement,)*
            });
        })
    };
}
pub(crate) use assert_answer;

/// `value` with every time within a day of now (an RFC 3339 string or milliseconds since
/// the epoch) written `[now]` and every UUID `[uuid]`: what the server stamps on arrival
/// differs from run to run, while the times a test sends stay in its snapshots.
pub fn redact_now(value: &Value) -> Value {
    let now = chrono::Utc::now();
    let near = |t: chrono::DateTime<chrono::Utc>| (t - now).num_hours().abs() < 24;
    match value {
        Value::String(s) => {
            if chrono::DateTime::parse_from_rfc3339(s).is_ok_and(|t| near(t.to_utc())) {
                Value::from("[now]")
            } else if uuid::Uuid::parse_str(s).is_ok() {
                Value::from("[uuid]")
            } else {
                value.clone()
            }
        }
        Value::Number(n) => match n.as_i64().and_then(chrono::DateTime::from_timestamp_millis) {
            Some(t) if near(t) => Value::from("[now]"),
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(redact_now).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), redact_now(v)))
                .collect(),
        ),
        _ => value.clone(),
    }
}
