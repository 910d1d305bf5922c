//! Settings, for admins: sources and their write keys, admin tokens, console users, and the
//! webhook destinations with their deliveries, attempts and dead letters.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use prossimo_act::destinations::{DeliveryRecord, DeliveryStatus, DestinationRecord, Destinations};
use prossimo_bus::Happened;
use prossimo_store::{Source, StoreError, TokenInfo};
use serde::Deserialize;

use crate::ConsoleState;
use crate::auth::{Signed, hash_password};
use crate::customers::human_millis;
use crate::i18n::Lang;
use crate::page::{Chrome, PageError, blocking, path_and_query, remember_lang, render, respond};
use crate::users::{Role, UserRecord, Users};

const DELIVERIES_SHOWN: usize = 50;

/// Two spellings of one account's e-mail, compared as the store compares them.
fn same_account(a: &str, b: &str) -> bool {
    match (
        crate::users::normalise_email(a),
        crate::users::normalise_email(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Settings are for admins only.
fn admin_only(signed: &Signed, lang: Lang) -> Result<(), PageError> {
    if signed.role().allows(Role::Admin) {
        Ok(())
    } else {
        Err(PageError::forbidden(lang))
    }
}

struct DestinationRow {
    record: DestinationRecord,
    pending: u64,
    dead: u64,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    sources: Vec<Source>,
    tokens: Vec<TokenInfo>,
    users: Vec<UserRecord>,
    destinations: Vec<DestinationRow>,
    roles: Vec<&'static str>,
    /// A token just created: shown once, here.
    new_token: Option<String>,
    error: Option<String>,
    done: Option<String>,
}

impl SettingsPage {
    fn created(&self, ms: &i64) -> String {
        human_millis(*ms)
    }

    /// A source's allowed web pages, one a line, as the form shows them.
    fn origins(&self, source: &Source) -> String {
        source
            .allowed_origins
            .as_deref()
            .map(|list| list.join("\n"))
            .unwrap_or_default()
    }

    /// The signed-in admin's own row offers no role change or disabling (refused anyway).
    fn is_me(&self, email: &str) -> bool {
        self.chrome
            .user
            .as_ref()
            .is_some_and(|(me, _)| same_account(me, email))
    }
}

struct Loaded {
    sources: Vec<Source>,
    tokens: Vec<TokenInfo>,
    users: Vec<UserRecord>,
    destinations: Vec<DestinationRow>,
}

async fn load(state: &ConsoleState, lang: Lang) -> Result<Loaded, PageError> {
    let store = state.store.clone();
    blocking(lang, move || {
        let outbox = Destinations::of(&store)?;
        let mut destinations = Vec::new();
        for record in outbox.list()? {
            let counts = outbox.delivery_counts(record.id)?;
            let count = |status: DeliveryStatus| counts.get(status.as_str()).copied().unwrap_or(0);
            destinations.push(DestinationRow {
                pending: count(DeliveryStatus::Pending),
                dead: count(DeliveryStatus::Dead),
                record,
            });
        }
        Ok(Loaded {
            sources: store.sources()?,
            tokens: store.admin_tokens()?,
            users: Users::of(&store)?.list()?,
            destinations,
        })
    })
    .await
}

async fn settings_page(
    state: &ConsoleState,
    signed: &Signed,
    lang: Lang,
    path: &str,
    status: StatusCode,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let loaded = load(state, lang).await?;
    let t = lang.texts();
    let (new_token, error, done) = match outcome {
        Outcome::Nothing => (None, None, None),
        Outcome::Token(token) => (Some(token), None, None),
        Outcome::Error(e) => (None, Some(e), None),
        Outcome::Done(d) => (None, None, Some(d)),
    };
    let page = SettingsPage {
        chrome: Chrome::signed(lang, signed, t.nav_settings, "settings", path),
        sources: loaded.sources,
        tokens: loaded.tokens,
        users: loaded.users,
        destinations: loaded.destinations,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        new_token,
        error,
        done,
    };
    render(status, &page, lang)
}

enum Outcome {
    Nothing,
    Token(String),
    Error(String),
    Done(String),
}

#[derive(Debug, Deserialize, Default)]
pub struct SettingsQuery {
    lang: Option<String>,
    done: Option<String>,
}

pub async fn page(
    State(state): State<ConsoleState>,
    Query(query): Query<SettingsQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    admin_only(&signed, lang)?;
    let outcome = match query.done.as_deref() {
        Some(what) => Outcome::Done(done_text(lang, what).to_owned()),
        None => Outcome::Nothing,
    };
    let response = settings_page(
        &state,
        &signed,
        lang,
        &path_and_query(&uri),
        StatusCode::OK,
        outcome,
    )
    .await?;
    Ok(remember_lang(response, query.lang.as_deref()))
}

/// The confirmation shown after a change (`?done=` keeps reloads harmless).
fn done_text(lang: Lang, what: &str) -> &'static str {
    let t = lang.texts();
    match what {
        "source" => t.done_source,
        "origins" => t.done_origins,
        "revoked" => t.done_revoked,
        "user" => t.done_user,
        "role" => t.done_role,
        "state" => t.done_state,
        _ => t.done_saved,
    }
}

/// Every settings form: which change, its fields, and the CSRF token.
#[derive(Debug, Deserialize, Default)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    disabled: String,
    /// The web pages that may send with a source's key, one origin a line; none: any page.
    #[serde(default)]
    origins: String,
}

/// The changes `POST /settings/{action}` makes.
const ACTIONS: [&str; 8] = [
    "create-source",
    "revoke-source",
    "set-origins",
    "create-token",
    "revoke-token",
    "create-user",
    "set-role",
    "set-state",
];

/// `POST /settings/{action}`: one of [`ACTIONS`].
pub async fn change(
    State(state): State<ConsoleState>,
    Path(action): Path<String>,
    headers: HeaderMap,
    signed: Signed,
    form: axum::Form<SettingsForm>,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    admin_only(&signed, lang)?;
    let form = form.0;
    if !signed.csrf_ok(&form.csrf) {
        return Err(PageError::forbidden(lang));
    }
    if !ACTIONS.contains(&action.as_str()) {
        return Err(PageError::not_found(lang, lang.texts().not_found));
    }
    let store = state.store.clone();
    let actor = signed.email().to_owned();
    let action_name = action.clone();
    let result: Result<Outcome, StoreError> = blocking(lang, move || {
        Ok(match action_name.as_str() {
            "create-source" => store
                .create_source(&form.name, None)
                .map(|_| Outcome::Done("source".into())),
            "revoke-source" => store
                .revoke_source(&form.name)
                .map(|_| Outcome::Done("revoked".into())),
            "set-origins" => {
                let origins: Vec<String> = form
                    .origins
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                store
                    .set_source_origins(
                        &form.name,
                        (!origins.is_empty()).then_some(origins.as_slice()),
                    )
                    .map(|_| Outcome::Done("origins".into()))
            }
            "create-token" => store
                .create_admin_token(form.name.trim(), None)
                .map(Outcome::Token),
            "revoke-token" => match form.id.parse::<i64>() {
                Ok(id) => store
                    .revoke_admin_token(id)
                    .map(|_| Outcome::Done("revoked".into())),
                Err(_) => Err(StoreError::Invalid(format!(
                    "{:?} is not a token id",
                    form.id
                ))),
            },
            "create-user" => form
                .role
                .parse::<Role>()
                .and_then(|role| {
                    let hash = hash_password(&form.password)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    let name = Some(form.name.as_str()).filter(|n| !n.trim().is_empty());
                    Users::of(&store)?.create(&form.email, name, role, &hash)
                })
                .map(|_| Outcome::Done("user".into())),
            "set-role" => {
                if same_account(&form.email, &actor) {
                    Err(StoreError::Invalid(
                        "you cannot change your own role".into(),
                    ))
                } else {
                    form.role
                        .parse::<Role>()
                        .and_then(|role| {
                            Users::of(&store)?.update(&form.email, Some(role), None, None)
                        })
                        .map(|_| Outcome::Done("role".into()))
                }
            }
            "set-state" => {
                let disable = form.disabled == "true";
                if disable && same_account(&form.email, &actor) {
                    Err(StoreError::Invalid("you cannot disable yourself".into()))
                } else {
                    Users::of(&store)?
                        .update(&form.email, None, None, Some(disable))
                        .map(|_| Outcome::Done("state".into()))
                }
            }
            _ => Err(StoreError::NotFound(format!(
                "settings action {action_name:?}"
            ))),
        })
    })
    .await?;
    let path = "/settings";
    match result {
        Ok(Outcome::Done(what)) => {
            tracing::info!(user = %signed.email(), %action, "settings changed in the console");
            Ok(Redirect::to(&format!("/settings?done={what}")).into_response())
        }
        // A new token is shown once, on this response, and never put in a URL.
        Ok(outcome) => settings_page(&state, &signed, lang, path, StatusCode::OK, outcome).await,
        Err(
            e @ (StoreError::Invalid(_)
            | StoreError::Conflict(_)
            | StoreError::NotFound(_)
            | StoreError::TooLong { .. }),
        ) => {
            settings_page(
                &state,
                &signed,
                lang,
                path,
                StatusCode::UNPROCESSABLE_ENTITY,
                Outcome::Error(e.to_string()),
            )
            .await
        }
        Err(e) => Err(PageError::store(lang, e)),
    }
}

struct AttemptRow {
    at: String,
    status_code: String,
    error: String,
    duration_ms: i64,
}

struct DeliveryRow {
    record: DeliveryRecord,
    created: String,
    finished: String,
    event: String,
    attempts: Vec<AttemptRow>,
}

#[derive(Template)]
#[template(path = "destination.html")]
struct DestinationPage {
    chrome: Chrome,
    destination: DestinationRecord,
    status: String,
    deliveries: Vec<DeliveryRow>,
    dead: u64,
    replayed: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
pub struct DestinationQuery {
    status: Option<String>,
    replayed: Option<u64>,
    lang: Option<String>,
}

pub async fn destination(
    State(state): State<ConsoleState>,
    Path(name): Path<String>,
    Query(query): Query<DestinationQuery>,
    headers: HeaderMap,
    uri: Uri,
    signed: Signed,
) -> Result<Response, PageError> {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    admin_only(&signed, lang)?;
    let t = lang.texts();
    let status = query.status.as_deref().and_then(DeliveryStatus::parse);
    let store = state.store.clone();
    let loaded = blocking(lang, move || {
        let outbox = Destinations::of(&store)?;
        let Some(destination) = outbox.by_name(&name)? else {
            return Ok(None);
        };
        let dead = outbox
            .delivery_counts(destination.id)?
            .get(DeliveryStatus::Dead.as_str())
            .copied()
            .unwrap_or(0);
        let mut rows = Vec::new();
        for record in outbox.deliveries(destination.id, status, None, DELIVERIES_SHOWN)? {
            let attempts = outbox
                .delivery_attempts(record.id)?
                .into_iter()
                .map(|a| AttemptRow {
                    at: human_millis(a.at),
                    status_code: a.status_code.map(|c| c.to_string()).unwrap_or_default(),
                    error: a.error.unwrap_or_default(),
                    duration_ms: a.duration_ms,
                })
                .collect();
            let event = record
                .payload
                .get("type")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            rows.push(DeliveryRow {
                created: human_millis(record.created_at),
                finished: record.finished_at.map(human_millis).unwrap_or_default(),
                event,
                attempts,
                record,
            });
        }
        Ok(Some((destination, rows, dead)))
    })
    .await?;
    let Some((destination, deliveries, dead)) = loaded else {
        return Err(PageError::not_found(lang, t.not_found));
    };
    let page = DestinationPage {
        chrome: Chrome::signed(
            lang,
            &signed,
            &destination.name,
            "settings",
            &path_and_query(&uri),
        ),
        destination,
        status: status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        deliveries,
        dead,
        replayed: query.replayed,
    };
    respond(StatusCode::OK, &page, lang, query.lang.as_deref())
}

#[derive(Debug, Deserialize)]
pub struct ReplayForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /settings/destinations/{name}/replay`: every dead letter back in the queue.
pub async fn replay(
    State(state): State<ConsoleState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    signed: Signed,
    form: axum::Form<ReplayForm>,
) -> Result<Response, PageError> {
    let lang = Lang::choose(None, &headers);
    admin_only(&signed, lang)?;
    if !signed.csrf_ok(&form.csrf) {
        return Err(PageError::forbidden(lang));
    }
    let store = state.store.clone();
    let target = name.clone();
    let replayed = blocking(lang, move || {
        let outbox = Destinations::of(&store)?;
        match outbox.by_name(&target)? {
            Some(d) => outbox.replay_dead(d.id, None).map(Some),
            None => Ok(None),
        }
    })
    .await?;
    let Some(replayed) = replayed else {
        return Err(PageError::not_found(lang, lang.texts().not_found));
    };
    state.bus.publish(Happened::OutboxWritten);
    tracing::info!(user = %signed.email(), destination = %name, replayed, "dead letters replayed from the console");
    Ok(Redirect::to(&format!(
        "/settings/destinations/{name}?replayed={replayed}"
    ))
    .into_response())
}
