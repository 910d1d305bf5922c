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
mod live;
mod page;
mod settings;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use prossimo_act::Dispatcher;
use prossimo_decide::Decider;
use prossimo_store::{Role, Store, StoreError, UserRecord};
use serde::Deserialize;

use auth::{LoginLimiter, Signed};
pub use auth::{MIN_PASSWORD, PasswordError, hash_password, verify_password};
pub use i18n::Lang;
pub use live::{LIVE_SAMPLE, LiveEntry, LiveFeed, Refusal};
use page::{Chrome, PageError, render};

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    store: Arc<Store>,
    /// Live audiences, told to reload when one is saved here.
    decider: Option<Decider>,
    /// Webhook deliveries, woken when dead letters are replayed here.
    dispatcher: Option<Dispatcher>,
    live: Arc<LiveFeed>,
    limiter: Arc<LoginLimiter>,
}

/// What the console works with: the store, and the server's background workers when it
/// runs them.
pub struct Services {
    pub store: Arc<Store>,
    pub decider: Option<Decider>,
    pub dispatcher: Option<Dispatcher>,
    /// The feed the tracking API writes into, for the live events page.
    pub live: Arc<LiveFeed>,
}

/// The e-mail of the first admin, created on first start when the store has no user.
pub const FIRST_ADMIN: &str = "admin@localhost";

/// Makes sure someone can sign in: when the store has no console user, creates
/// [`FIRST_ADMIN`] with `password` (or a random one) and returns the password to show once.
pub fn ensure_first_admin(
    store: &Store,
    password: Option<&str>,
) -> Result<Option<String>, BootstrapError> {
    if !store.users()?.is_empty() {
        return Ok(None);
    }
    let password = password
        .map(str::to_owned)
        .unwrap_or_else(auth::random_token);
    let hash = hash_password(&password)?;
    store.create_user(FIRST_ADMIN, Some("Admin"), Role::Admin, &hash)?;
    Ok(Some(password))
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
        dispatcher: services.dispatcher,
        live: services.live,
        limiter: Arc::default(),
    };
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/customers", get(customers::search))
        .route("/customers/{id}", get(customers::customer))
        .route("/analytics", get(analytics::page))
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
            get(audiences::list).post(audiences::submit_new),
        )
        .route("/audiences/new", get(audiences::new_form))
        .route(
            "/audiences/check",
            axum::routing::post(audiences::check_json),
        )
        .route("/audiences/{slug}", get(audiences::show))
        .route(
            "/audiences/{slug}/edit",
            get(audiences::edit_form).post(audiences::submit_edit),
        )
        .route(
            "/audiences/{slug}/delete",
            axum::routing::post(audiences::delete),
        )
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(stylesheet))
        .with_state(state)
}

const STYLESHEET: &str = include_str!("../assets/console.css");
const SCRIPT: &str = include_str!("../assets/console.js");

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
    let csrf = auth::random_token();
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
    if let Some(wait) = state.limiter.locked_for(&form.email, Instant::now()) {
        tracing::warn!(email = %form.email, retry_in_s = wait.as_secs(), "console sign-in refused: account locked after failures");
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
    let store = state.store.clone();
    let email = form.email.clone();
    let password = form.password;
    // Argon2 is deliberately slow: off the async workers.
    let user: Option<UserRecord> = page::blocking(lang, move || {
        let user = store.user_by_email(&email)?.filter(|u| !u.disabled);
        let phc = user
            .as_ref()
            .map_or(auth::decoy_hash(), |u| u.password_hash.as_str());
        let ok = verify_password(&password, phc);
        Ok(user.filter(|_| ok))
    })
    .await?;
    let Some(user) = user else {
        state.limiter.failed(&form.email, Instant::now());
        tracing::warn!(email = %form.email, "console sign-in failed");
        return login_page(
            lang,
            &headers,
            StatusCode::UNAUTHORIZED,
            form.email,
            Some(t.bad_credentials),
        );
    };
    state.limiter.succeeded(&user.email);
    let store = state.store.clone();
    let session = page::blocking(lang, move || {
        store.create_session(user.id, auth::SESSION_TTL.as_millis() as i64)
    })
    .await?;
    tracing::info!(email = %form.email, "console sign-in");
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
        page::blocking(lang, move || store.end_session(&token)).await?;
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

#[cfg(test)]
mod tests;
