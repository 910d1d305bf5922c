//! Journeys over HTTP: save drafts, check them, publish, pause, resume and archive.
//! Behind an admin token. (Running instances come with the journey runtime.)

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use prossimo_journeys::{
    ChangeRecord, Instances, JOURNEY_TRIGGERED, JourneyError, JourneyInput, JourneyRecord,
    Journeys, LifecycleAction, VersionRecord, change_journey_state, check_definition,
    publish_journey, save_journey,
};
use prossimo_store::{PlatformEvent, ProfileKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::api::Area;
use crate::api::doc::ErrorBody;
use crate::api::segments::{json_body, saved_slug};
use crate::extract::Admin;
use crate::{ApiError, AppState};

/// Who the history names for what the API did.
const ACTOR: &str = "api";

impl From<JourneyError> for ApiError {
    fn from(e: JourneyError) -> ApiError {
        match e {
            JourneyError::Shape(reason) => ApiError::Field {
                field: "definition",
                reason,
            },
            JourneyError::Problems(problems) => ApiError::Journey(problems),
            JourneyError::Store(e) => e.into(),
        }
    }
}

/// A journey: its draft and which version is live. Times in milliseconds since the epoch.
#[derive(Serialize, ToSchema)]
pub struct Journey {
    id: i64,
    slug: String,
    name: String,
    description: String,
    /// draft, published, paused or archived.
    state: String,
    /// The definition being edited (docs/journeys.md); it goes live when published.
    #[schema(value_type = Object)]
    draft: Value,
    /// The version new instances enter; null until first published.
    live_version: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl From<JourneyRecord> for Journey {
    fn from(r: JourneyRecord) -> Journey {
        Journey {
            id: r.id,
            slug: r.slug,
            name: r.name,
            description: r.description,
            state: r.state.as_str().to_owned(),
            draft: r.draft,
            live_version: r.live_version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A journey with its published versions and what was done to it.
#[derive(Serialize, ToSchema)]
pub struct JourneyDetail {
    #[serde(flatten)]
    journey: Journey,
    /// Newest first.
    versions: Vec<Version>,
    /// Oldest first.
    history: Vec<Change>,
    /// How many instances took each step, by the way it went (`sent`, `timeout`,
    /// `branch 1`, an arm's name, …): step → outcome → count.
    steps: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
}

#[derive(Serialize, ToSchema)]
pub struct Version {
    version: i64,
    #[schema(value_type = Object)]
    definition: Value,
    published_at: i64,
}

impl From<VersionRecord> for Version {
    fn from(v: VersionRecord) -> Version {
        Version {
            version: v.version,
            definition: v.definition,
            published_at: v.published_at,
        }
    }
}

/// Something done to a journey: edit, publish (with the version), pause, resume,
/// archive; by whom (`api`, `cli`, a console user's e-mail).
#[derive(Serialize, ToSchema)]
pub struct Change {
    action: String,
    version: Option<i64>,
    actor: String,
    at: i64,
}

impl From<ChangeRecord> for Change {
    fn from(c: ChangeRecord) -> Change {
        Change {
            action: c.action,
            version: c.version,
            actor: c.actor,
            at: c.at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct JourneyList {
    journeys: Vec<Journey>,
}

/// Every journey.
#[utoipa::path(get, path = "/v1/journeys", tag = "journeys", security(("adminToken" = [])),
    responses((status = 200, description = "The journeys", body = JourneyList)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<JourneyList>, ApiError> {
    let store = state.store.clone();
    let all = tokio::task::spawn_blocking(move || Journeys::of(&store)?.list()).await??;
    Ok(Json(JourneyList {
        journeys: all.into_iter().map(Journey::from).collect(),
    }))
}

/// A journey as saved: `slug` (on create; on update it must match the path's, or be left
/// out), `name` (on create the slug when absent; on update the journey's stays when
/// absent), `description` and `definition`.
#[derive(Deserialize, ToSchema)]
pub struct JourneyBody {
    slug: Option<String>,
    name: Option<String>,
    #[serde(default)]
    description: String,
    /// The journey's JSON (docs/journeys.md). A draft may have problems; publishing
    /// checks it whole.
    #[schema(value_type = Object)]
    definition: Value,
}

async fn save(
    state: AppState,
    body: Bytes,
    existing: Option<String>,
) -> Result<(StatusCode, Json<Journey>), ApiError> {
    let body: JourneyBody = json_body(&body)?;
    let slug = saved_slug(existing.as_deref(), body.slug, "journey")?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let (store, bus) = (state.store.clone(), state.bus.clone());
    let record = tokio::task::spawn_blocking(move || {
        // An update without a name keeps the journey's; a new one is named by its slug.
        let name = match body.name.filter(|n| !n.trim().is_empty()) {
            Some(name) => name,
            None => Journeys::of(&store)?
                .get(&slug)?
                .filter(|_| existing.is_some())
                .map_or_else(|| slug.clone(), |journey| journey.name),
        };
        let input = JourneyInput {
            name,
            slug,
            description: body.description,
            definition: body.definition,
        };
        save_journey(&store, Some(&bus), &input, existing.is_some(), ACTOR)
    })
    .await??;
    Ok((status, Json(record.into())))
}

/// Saves a new journey as a draft.
#[utoipa::path(post, path = "/v1/journeys", tag = "journeys", security(("adminToken" = [])),
    request_body = JourneyBody,
    responses(
        (status = 201, description = "Saved as a draft", body = Journey),
        (status = 400, description = "Not a journey's JSON (code invalid_field, naming the field), a bad slug, a name or definition too long", body = ErrorBody),
        (status = 409, description = "The slug is taken", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<Journey>), ApiError> {
    save(state, body, None).await
}

/// Replaces a journey's name, description and draft; the live version stays until the
/// draft is published.
#[utoipa::path(put, path = "/v1/journeys/{slug}", tag = "journeys", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    request_body = JourneyBody,
    responses(
        (status = 200, description = "Saved", body = Journey),
        (status = 400, description = "Not a journey's JSON, or a slug other than the path's", body = ErrorBody),
        (status = 404, description = "No such journey", body = ErrorBody),
        (status = 409, description = "The journey is archived", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Journey>), ApiError> {
    save(state, body, Some(slug)).await
}

/// One journey with its versions and history.
#[utoipa::path(get, path = "/v1/journeys/{slug}", tag = "journeys", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The journey", body = JourneyDetail),
        (status = 404, description = "No such journey", body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<Json<JourneyDetail>, ApiError> {
    let store = state.store.clone();
    let detail = tokio::task::spawn_blocking(move || {
        let journeys = Journeys::of(&store)?;
        let journey = journeys
            .get(&slug)?
            .ok_or_else(|| ApiError::NotFound(format!("no journey {slug:?}")))?;
        Ok::<_, ApiError>(JourneyDetail {
            versions: journeys
                .versions(journey.id)?
                .into_iter()
                .map(Version::from)
                .collect(),
            history: journeys
                .history(journey.id)?
                .into_iter()
                .map(Change::from)
                .collect(),
            steps: Instances::of(&store)?.step_counts(journey.id)?,
            journey: journey.into(),
        })
    })
    .await??;
    Ok(Json(detail))
}

/// A definition to check, unsaved.
#[derive(Deserialize, ToSchema)]
pub struct CheckBody {
    #[schema(value_type = Object)]
    definition: Value,
}

/// A definition with no problem.
#[derive(Serialize, ToSchema)]
pub struct Checked {
    valid: bool,
    steps: usize,
}

/// Checks a definition whole against the audiences and computed traits that exist.
#[utoipa::path(post, path = "/v1/journeys/validate", tag = "journeys", security(("adminToken" = [])),
    request_body = CheckBody,
    responses(
        (status = 200, description = "No problem", body = Checked),
        (status = 400, description = "Every problem (code invalid_definition, details [{step, field, reason, line, column}]), or not a journey's JSON (invalid_field)", body = ErrorBody),
    ))]
pub async fn validate(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<Json<Checked>, ApiError> {
    let body: CheckBody = json_body(&body)?;
    let store = state.store.clone();
    let journey =
        tokio::task::spawn_blocking(move || check_definition(&store, &body.definition)).await??;
    Ok(Json(Checked {
        valid: true,
        steps: journey.definition.steps.len(),
    }))
}

/// A publication.
#[derive(Serialize, ToSchema)]
pub struct Published {
    journey: Journey,
    /// The new live version.
    version: i64,
}

/// Checks the draft whole and publishes it as the next version, live at once for new
/// instances (running ones stay on theirs).
#[utoipa::path(post, path = "/v1/journeys/{slug}/publish", tag = "journeys", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "Published", body = Published),
        (status = 400, description = "The draft's problems, each with its step and field (code invalid_definition)", body = ErrorBody),
        (status = 404, description = "No such journey", body = ErrorBody),
        (status = 409, description = "Archived, or edited while being published", body = ErrorBody),
    ))]
pub async fn publish(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<Json<Published>, ApiError> {
    let (store, bus) = (state.store.clone(), state.bus.clone());
    let (journey, version) =
        tokio::task::spawn_blocking(move || publish_journey(&store, Some(&bus), &slug, ACTOR))
            .await??;
    Ok(Json(Published {
        journey: journey.into(),
        version,
    }))
}

async fn change(
    state: AppState,
    slug: String,
    action: LifecycleAction,
) -> Result<Json<Journey>, ApiError> {
    let (store, bus) = (state.store.clone(), state.bus.clone());
    let record = tokio::task::spawn_blocking(move || {
        change_journey_state(&store, Some(&bus), &slug, action, ACTOR)
    })
    .await??;
    Ok(Json(record.into()))
}

/// Pauses a published journey: nobody enters, instances wait where they are.
#[utoipa::path(post, path = "/v1/journeys/{slug}/pause", tag = "journeys", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "Paused", body = Journey),
        (status = 404, description = "No such journey", body = ErrorBody),
        (status = 409, description = "Not published", body = ErrorBody),
    ))]
pub async fn pause(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<Json<Journey>, ApiError> {
    change(state, slug, LifecycleAction::Pause).await
}

/// Resumes a paused journey.
#[utoipa::path(post, path = "/v1/journeys/{slug}/resume", tag = "journeys", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "Published again", body = Journey),
        (status = 404, description = "No such journey", body = ErrorBody),
        (status = 409, description = "Not paused", body = ErrorBody),
    ))]
pub async fn resume(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<Json<Journey>, ApiError> {
    change(state, slug, LifecycleAction::Resume).await
}

/// Archives a journey for good: nobody enters again; kept with its history.
#[utoipa::path(post, path = "/v1/journeys/{slug}/archive", tag = "journeys", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "Archived", body = Journey),
        (status = 404, description = "No such journey", body = ErrorBody),
        (status = 409, description = "Already archived", body = ErrorBody),
    ))]
pub async fn archive(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<Json<Journey>, ApiError> {
    change(state, slug, LifecycleAction::Archive).await
}

/// A transactional trigger: whom (`profile`: a profile id or an identifier such as
/// `user_id:anna`), with what (`data`, which the journey's messages read as
/// `event.properties`), and an optional `idempotency_key` (the same key triggers once).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    profile: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    data: serde_json::Map<String, Value>,
    idempotency_key: Option<String>,
}

/// A trigger accepted.
#[derive(Serialize, ToSchema)]
pub struct Triggered {
    /// False when this idempotency key triggered the journey already (nothing new).
    accepted: bool,
    /// The trigger's key, as the `Journey Triggered` event on the customer's timeline.
    trigger: String,
}

/// The longest idempotency key, in bytes.
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 200;

/// Starts an API-triggered journey for a customer now (an order confirmation, a password
/// reset): written to their timeline as a `Journey Triggered` event, which the journey
/// runner takes from the log like any other, so an accepted trigger is never lost.
#[utoipa::path(post, path = "/v1/journeys/{slug}/trigger", tag = "journeys", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    request_body = TriggerBody,
    responses(
        (status = 202, description = "Accepted: the journey starts for them at once", body = Triggered),
        (status = 400, description = "Not a profile key, or an idempotency key too long (code invalid_field)", body = ErrorBody),
        (status = 404, description = "No such journey or customer", body = ErrorBody),
        (status = 409, description = "The journey is not published, or not triggered by the API", body = ErrorBody),
    ))]
pub async fn trigger(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Triggered>), ApiError> {
    let body: TriggerBody = json_body(&body)?;
    if let Some(key) = &body.idempotency_key
        && (key.trim().is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES)
    {
        return Err(ApiError::Field {
            field: "idempotency_key",
            reason: format!("1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes"),
        });
    }
    let store = state.store.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let journey = Journeys::of(&store)?
            .get(&slug)?
            .ok_or_else(|| ApiError::NotFound(format!("no journey {slug:?}")))?;
        if journey.state != prossimo_journeys::JourneyState::Published {
            return Err(ApiError::Conflict(format!(
                "journey {slug:?} is {}: only a published journey can be triggered",
                journey.state.as_str()
            )));
        }
        let live = journey
            .live_version
            .map(|v| Journeys::of(&store)?.version(journey.id, v))
            .transpose()?
            .flatten()
            .ok_or_else(|| ApiError::Conflict(format!("journey {slug:?} has no live version")))?;
        if live.definition.get("trigger").and_then(Value::as_str) != Some("api") {
            return Err(ApiError::Conflict(format!(
                "journey {slug:?} is not triggered by the API (its trigger is {})",
                live.definition
                    .get("trigger")
                    .map(Value::to_string)
                    .unwrap_or_default()
            )));
        }
        let key = ProfileKey::parse(&body.profile, store.identity()).map_err(|reason| {
            ApiError::Field {
                field: "profile",
                reason,
            }
        })?;
        let profile = store
            .resolve_profile(&key)?
            .ok_or_else(|| ApiError::NotFound(format!("no customer {:?}", body.profile)))?;
        let trigger = format!(
            "trigger/{slug}/{}",
            body.idempotency_key
                .unwrap_or_else(|| prossimo_store::random_key("t_"))
        );
        let mut properties = body.data;
        properties.insert("journey".into(), Value::from(slug.as_str()));
        let stored = store.record_platform_events(&[PlatformEvent {
            message_id: trigger.clone(),
            profile_id: profile,
            event: JOURNEY_TRIGGERED.into(),
            channel: prossimo_model::Channel::Server,
            ts: store.now_ms(),
            properties: Value::Object(properties),
        }])?;
        Ok(Triggered {
            accepted: stored > 0,
            trigger,
        })
    })
    .await??;
    if answer.accepted {
        state.bus.publish(prossimo_bus::Happened::EventsCommitted {
            buyers: std::sync::Arc::from([]),
        });
    }
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// Whose entry to try.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunBody {
    /// The audience whose members would enter.
    audience: String,
}

/// What the draft would do (see docs/journeys.md, "Dry run").
#[derive(Serialize, ToSchema)]
pub struct DryRunReport {
    #[schema(value_type = Object)]
    #[serde(flatten)]
    report: prossimo_journeys::DryRun,
}

/// What the journey's draft would do to an audience's members if they entered now (at
/// most 10,000 of them are run): who would enter and why not, the steps they would take,
/// where they would wait or end, and whether each send would go or be skipped and why.
/// Nothing is written.
#[utoipa::path(post, path = "/v1/journeys/{slug}/dry-run", tag = "journeys", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    request_body = DryRunBody,
    responses(
        (status = 200, description = "The forecast", body = DryRunReport),
        (status = 400, description = "The draft has problems (code invalid_definition)", body = ErrorBody),
        (status = 404, description = "No such journey or audience", body = ErrorBody),
    ))]
pub async fn dry_run(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<Json<DryRunReport>, ApiError> {
    let body: DryRunBody = json_body(&body)?;
    let (zone, require_opt_in) = (state.send_settings.zone, state.send_settings.require_opt_in);
    let store = state.store.clone();
    let report = tokio::task::spawn_blocking(move || {
        prossimo_journeys::dry_run(
            &store,
            &slug,
            &body.audience,
            store.now_ms(),
            zone,
            require_opt_in,
        )
    })
    .await??;
    Ok(Json(DryRunReport { report }))
}

pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(trigger))
        .routes(routes!(dry_run))
        .routes(routes!(list, create))
        .routes(routes!(validate))
        .routes(routes!(get_one, update))
        .routes(routes!(publish))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(archive))
}
