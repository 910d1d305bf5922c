//! The web console, served by `prossimo serve` at `/`: server-rendered pages (askama
//! templates compiled into the binary, one stylesheet embedded, no CDN) for the people who
//! decide on offers and campaigns. Signed in with a console user (argon2id password,
//! session cookie, CSRF token on every form); roles admin, marketer and viewer.
//!
//! Thin like the HTTP API: every number comes from `prossimo-store`'s read side.

mod analytics;
mod audiences;
mod auth;
mod charts;
mod customers;
mod i18n;
mod journeys;
mod live;
mod messages;
mod page;
mod settings;
pub mod users;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
pub use prossimo_bus::Bus;
use prossimo_decide::Decider;
use prossimo_store::{Store, StoreError};
use serde::Deserialize;
use users::{Role, UserRecord, Users};

pub use auth::{LOGIN_CSRF_COOKIE, MAX_FAILURES, SESSION_COOKIE, TrustedProxies};
use auth::{LoginLimiter, Signed};
pub use auth::{MIN_PASSWORD, PasswordError, hash_password, verify_password};
pub use i18n::Lang;
pub use live::{AcceptedSample, LiveEntry, LiveFeed, Refusal};
use page::{Chrome, PageError, render};

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    store: Arc<Store>,
    /// Live audiences, for their status.
    decider: Option<Decider>,
    /// Where saves and replays made here are announced.
    bus: Bus,
    live: Arc<LiveFeed>,
    limiter: Arc<LoginLimiter>,
    /// Password checks running at once: argon2 takes 19 MiB and tens of milliseconds each,
    /// so a flood of sign-ins must not fill memory or the blocking pool other pages need.
    verify_slots: Arc<tokio::sync::Semaphore>,
    /// Recent message previews' HTML, for their frames.
    previews: Arc<messages::PreviewFrames>,
    zone: chrono_tz::Tz,
    require_opt_in: bool,
}

/// What the console works with: the store, and the server's background workers when it
/// runs them.
pub struct Services {
    pub store: Arc<Store>,
    pub decider: Option<Decider>,
    pub bus: Bus,
    /// Proxies whose `X-Forwarded-For` names the client (for the sign-in limits).
    pub trusted_proxies: TrustedProxies,
    /// The feed the tracking API writes into, for the live events page.
    pub live: Arc<LiveFeed>,
    /// What journeys' dry runs assume: the workspace's zone, and whether marketing needs
    /// opt-in.
    pub zone: chrono_tz::Tz,
    pub require_opt_in: bool,
}

/// The e-mail of the first admin, created on first start when the store has no user.
pub const FIRST_ADMIN: &str = "admin@localhost";

/// What first start did about console users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstAdmin {
    /// The store already had users.
    Existing,
    /// [`FIRST_ADMIN`] was created; `generated` is its password when none was given (to
    /// show once; a given password is never printed back).
    Created { generated: Option<String> },
}

/// Makes sure someone can sign in: when the store has no console user, creates
/// [`FIRST_ADMIN`] with `password`, or a random one.
pub fn ensure_first_admin(
    store: &Store,
    password: Option<&str>,
) -> Result<FirstAdmin, BootstrapError> {
    let users = Users::of(store)?;
    if !users.list()?.is_empty() {
        return Ok(FirstAdmin::Existing);
    }
    let generated = password.is_none().then(auth::random_token);
    let chosen = password.or(generated.as_deref()).unwrap_or_default();
    let hash = hash_password(chosen)?;
    match users.create(FIRST_ADMIN, Some("Admin"), Role::Admin, &hash) {
        Ok(_) => Ok(FirstAdmin::Created { generated }),
        // Another node starting on the same database created it first.
        Err(_) if !users.list()?.is_empty() => Ok(FirstAdmin::Existing),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// The console's routes, to merge beside the API.
pub fn router(services: Services) -> Router {
    let state = ConsoleState {
        store: services.store,
        decider: services.decider,
        bus: services.bus,
        live: services.live,
        limiter: Arc::default(),
        previews: Arc::default(),
        zone: services.zone,
        require_opt_in: services.require_opt_in,
        verify_slots: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8)),
        )),
    };
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/customers", get(customers::search))
        .route("/customers/{id}", get(customers::customer))
        .route("/analytics", get(analytics::page))
        .route("/analytics/run", axum::routing::post(analytics::run_again))
        .route("/live", get(live::page))
        .route("/settings", get(settings::page))
        .route("/settings/{action}", axum::routing::post(settings::change))
        .route("/settings/destinations/{name}", get(settings::destination))
        .route(
            "/settings/destinations/{name}/replay",
            axum::routing::post(settings::replay),
        )
        .route("/live/entries", get(live::entries))
        .route(
            "/audiences",
            get(audiences::list).post(audiences::submit_form),
        )
        .route("/audiences/new", get(audiences::new_form))
        .route(
            "/audiences/check",
            axum::routing::post(audiences::check_json),
        )
        .route("/audiences/{slug}", get(audiences::show))
        .route(
            "/audiences/{slug}/edit",
            get(audiences::edit_form).post(audiences::submit_form),
        )
        .route(
            "/audiences/{slug}/broadcast",
            axum::routing::post(audiences::broadcast),
        )
        .route(
            "/audiences/{slug}/delete",
            axum::routing::post(audiences::delete),
        )
        .route("/journeys", get(journeys::list).post(journeys::submit_form))
        .route("/journeys/new", get(journeys::new_form))
        .route("/journeys/check", axum::routing::post(journeys::check_json))
        .route("/journeys/{slug}", get(journeys::show))
        .route("/journeys/{slug}/counts", get(journeys::live_counts))
        .route(
            "/journeys/{slug}/edit",
            get(journeys::edit_form).post(journeys::submit_form),
        )
        .route(
            "/journeys/{slug}/state",
            axum::routing::post(journeys::change_state),
        )
        .route("/messages", get(messages::list).post(messages::submit_form))
        .route("/messages/new", get(messages::new_form))
        .route(
            "/messages/{slug}/edit",
            get(messages::edit_form).post(messages::submit_form),
        )
        .route("/messages/frame/{id}", get(messages::frame))
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/favicon.svg", get(favicon))
        // Browsers ask for it whatever the page says.
        .route("/favicon.ico", get(favicon))
        .with_state(state)
        .layer(axum::Extension(services.trusted_proxies))
}

const STYLESHEET: &str = include_str!("../assets/console.css");
const SCRIPT: &str = include_str!("../assets/console.js");
const FAVICON: &str = include_str!("../assets/favicon.svg");

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

#[derive(Debug, Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

async fn home(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    Ok(match page::signed_in(&state, &headers, lang).await? {
        Some(_) => Redirect::to("/customers").into_response(),
        None => Redirect::to("/login").into_response(),
    })
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    email: String,
    error: Option<&'static str>,
}

fn login_page(
    lang: Lang,
    headers: &HeaderMap,
    status: StatusCode,
    email: String,
    error: Option<&'static str>,
) -> Result<Response, PageError> {
    // Reuse the token the browser already holds, so two sign-in tabs both work.
    let csrf = auth::cookie(headers, auth::LOGIN_CSRF_COOKIE)
        .filter(|c| c.len() == 48 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(auth::random_token, str::to_owned);
    let chrome = Chrome::anonymous(lang, lang.texts().sign_in, "/login");
    let mut response = render(
        status,
        &LoginPage {
            chrome,
            csrf: csrf.clone(),
            email,
            error,
        },
        lang,
    )?;
    let cookie = auth::set_cookie(
        auth::LOGIN_CSRF_COOKIE,
        &csrf,
        Some(auth::FAILURE_WINDOW),
        auth::secure_context(headers),
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

async fn login_form(
    State(state): State<ConsoleState>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    if page::signed_in(&state, &headers, lang).await?.is_some() {
        return Ok(Redirect::to("/customers").into_response());
    }
    let response = login_page(lang, &headers, StatusCode::OK, String::new(), None)?;
    Ok(page::remember_lang(response, query.lang.as_deref()))
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    client: auth::ClientAddr,
    form: axum::Form<LoginForm>,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    let t = lang.texts();
    let form = form.0;
    let csrf_cookie = auth::cookie(&headers, auth::LOGIN_CSRF_COOKIE).unwrap_or("");
    if csrf_cookie.is_empty() || !auth::same_secret(csrf_cookie, &form.csrf) {
        return login_page(
            lang,
            &headers,
            StatusCode::FORBIDDEN,
            form.email,
            Some(t.form_expired),
        );
    }
    // Invalid e-mails never name an account: they share one limiter bucket and are not
    // logged as typed (people paste passwords into the wrong field).
    let email = users::normalise_email(&form.email).ok();
    let key = LoginLimiter::key(email.as_deref().unwrap_or("(invalid)"), client.0);
    let attempt = match state.limiter.begin(&key, Instant::now()) {
        Ok(attempt) => attempt,
        Err(wait) => {
            tracing::warn!(email = email.as_deref().unwrap_or("(invalid)"), client = ?client.0, retry_in_s = wait.as_secs(), "console sign-in refused: too many failures");
            let mut response = login_page(
                lang,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                form.email,
                Some(t.too_many_attempts),
            )?;
            if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Ok(response);
        }
    };
    let Ok(slot) = state.verify_slots.clone().try_acquire_owned() else {
        let mut response = login_page(
            lang,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            form.email,
            Some(t.busy),
        )?;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Ok(response);
    };
    let store = state.store.clone();
    let wanted = email.clone();
    let password = form.password;
    // Argon2 is deliberately slow: off the async workers, a bounded number at once.
    let (known, user): (bool, Option<UserRecord>) = page::blocking(lang, move || {
        let _slot = slot;
        let user = match &wanted {
            Some(email) => Users::of(&store)?.by_email(email)?.filter(|u| !u.disabled),
            None => None,
        };
        let phc = user
            .as_ref()
            .map_or(auth::decoy_hash(), |u| u.password_hash.as_str());
        let ok = verify_password(&password, phc);
        Ok((user.is_some(), user.filter(|_| ok)))
    })
    .await?;
    let Some(user) = user else {
        attempt.failed(Instant::now());
        let shown = if known {
            email.as_deref().unwrap_or_default()
        } else {
            "(no such account)"
        };
        tracing::warn!(email = shown, client = ?client.0, "console sign-in failed");
        return login_page(
            lang,
            &headers,
            StatusCode::UNAUTHORIZED,
            form.email,
            Some(t.bad_credentials),
        );
    };
    attempt.succeeded();
    let user_email = user.email.clone();
    let store = state.store.clone();
    let session = page::blocking(lang, move || {
        Users::of(&store)?.create_session(user.id, auth::SESSION_TTL.as_millis() as i64)
    })
    .await?;
    tracing::info!(email = %user_email, "console sign-in");
    let secure = auth::secure_context(&headers);
    let mut response = Redirect::to("/customers").into_response();
    for cookie in [
        auth::set_cookie(
            auth::SESSION_COOKIE,
            &session.token,
            Some(auth::SESSION_TTL),
            secure,
        ),
        auth::set_cookie(auth::LOGIN_CSRF_COOKIE, "", None, secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    signed: Signed,
    form: Result<axum::Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    let submitted = form.map(|f| f.0.csrf).unwrap_or_default();
    if !signed.csrf_ok(&submitted) {
        return Err(PageError::forbidden(lang));
    }
    if let Some(token) = auth::cookie(&headers, auth::SESSION_COOKIE).map(str::to_owned) {
        let store = state.store.clone();
        page::blocking(lang, move || Users::of(&store)?.end_session(&token)).await?;
    }
    tracing::info!(email = %signed.email(), "console sign-out");
    let mut response = Redirect::to("/login").into_response();
    let cookie = auth::set_cookie(
        auth::SESSION_COOKIE,
        "",
        None,
        auth::secure_context(&headers),
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}
