//! Webhook destinations over HTTP: save them, see every delivery and attempt, inspect and
//! replay the dead-letter list. Behind an admin token.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use prossimo_act::destinations::{
    AttemptRecord, DeliveryRecord, DeliveryStatus, DestinationInput, DestinationKind,
    DestinationRecord, Destinations,
};
use prossimo_bus::{Definitions, Happened};
use prossimo_decide::{DecideError, check_event_filter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::api::Area;
use crate::api::doc::ErrorBody;
use crate::api::profiles::limit_param;
use crate::api::segments::json_body;
use crate::extract::Admin;
use crate::{ApiError, AppState};

fn check_filter(input: &DestinationInput) -> Result<(), ApiError> {
    let has_filter = input
        .filter
        .as_deref()
        .is_some_and(|f| !f.trim().is_empty());
    if input.kind == DestinationKind::Messages && has_filter {
        return Err(ApiError::Field {
            field: "filter",
            reason: "a messages destination receives what journeys send it; it has no filter"
                .into(),
        });
    }
    if input.kind != DestinationKind::Events {
        return Ok(());
    }
    match input.filter.as_deref().map(str::trim) {
        None | Some("") => Ok(()),
        Some(filter) => check_event_filter(filter).map_err(|e| match e {
            DecideError::Filter(message) => ApiError::BadRequest(message),
            other => ApiError::BadRequest(other.to_string()),
        }),
    }
}

/// Webhooks go only to public addresses, unless the configuration allows a private
/// network (checked again at every send, on what the name then resolves to).
fn check_target(state: &AppState, input: &DestinationInput) -> Result<(), ApiError> {
    state
        .targets
        .check_url(&input.url)
        .map_err(|reason| ApiError::Field {
            field: "url",
            reason,
        })
}

/// Tells whoever routes or delivers (the decider, the dispatcher) that destinations
/// changed.
fn changed(state: &AppState) {
    state
        .bus
        .publish(Happened::DefinitionsChanged(Definitions::Destinations));
}

/// What a destination receives.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Segment entries and exits (of the segments the filter names, or all).
    Segments,
    /// The event stream, through the filter.
    Events,
    /// Only the webhook messages journeys send to it (docs/messages.md).
    Messages,
}

impl From<Kind> for DestinationKind {
    fn from(kind: Kind) -> DestinationKind {
        match kind {
            Kind::Segments => DestinationKind::Segments,
            Kind::Events => DestinationKind::Events,
            Kind::Messages => DestinationKind::Messages,
        }
    }
}

impl From<DestinationKind> for Kind {
    fn from(kind: DestinationKind) -> Kind {
        match kind {
            DestinationKind::Segments => Kind::Segments,
            DestinationKind::Events => Kind::Events,
            DestinationKind::Messages => Kind::Messages,
        }
    }
}

/// A webhook destination as saved.
#[derive(Deserialize, ToSchema)]
pub struct DestinationBody {
    /// Fixed once created.
    name: String,
    kind: Kind,
    /// Where the webhooks are POSTed: a public http(s) address unless the configuration
    /// allows a private network.
    url: String,
    /// Segments: a segment's slug (none: every segment). Events: an event filter in the
    /// segment language (`event == "Order Completed" and channel == "store"`; none: every
    /// event).
    #[serde(default)]
    filter: Option<String>,
    /// A Standard Webhooks secret (`whsec_` + base64); generated when absent, kept on
    /// update when absent.
    #[serde(default)]
    secret: Option<String>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

impl From<DestinationBody> for DestinationInput {
    fn from(body: DestinationBody) -> DestinationInput {
        DestinationInput {
            name: body.name,
            kind: body.kind.into(),
            url: body.url,
            filter: body.filter,
            secret: body.secret,
            enabled: body.enabled,
        }
    }
}

/// A webhook destination. Times in milliseconds since the epoch.
#[derive(Serialize, ToSchema)]
pub struct Destination {
    id: i64,
    name: String,
    kind: Kind,
    url: String,
    filter: Option<String>,
    /// The signing secret (Standard Webhooks), to verify what arrives.
    secret: String,
    enabled: bool,
    created_at: i64,
}

impl From<DestinationRecord> for Destination {
    fn from(r: DestinationRecord) -> Destination {
        Destination {
            id: r.id,
            name: r.name,
            kind: r.kind.into(),
            url: r.url,
            filter: r.filter,
            secret: r.secret,
            enabled: r.enabled,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DestinationList {
    destinations: Vec<Destination>,
}

/// Every webhook destination.
#[utoipa::path(get, path = "/v1/destinations", tag = "destinations", security(("adminToken" = [])),
    responses((status = 200, description = "The destinations", body = DestinationList)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<DestinationList>, ApiError> {
    let store = state.store.clone();
    let all = tokio::task::spawn_blocking(move || Destinations::of(&store)?.list()).await??;
    Ok(Json(DestinationList {
        destinations: all.into_iter().map(Destination::from).collect(),
    }))
}

/// Adds a webhook destination: segment changes, or the event stream through a filter.
#[utoipa::path(post, path = "/v1/destinations", tag = "destinations", security(("adminToken" = [])),
    request_body = DestinationBody,
    responses(
        (status = 201, description = "Saved", body = Destination),
        (status = 400, description = "A filter that does not parse, a URL that is not allowed (code invalid_field), a name or URL too long", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<Destination>), ApiError> {
    let input: DestinationInput = json_body::<DestinationBody>(&body)?.into();
    check_filter(&input)?;
    check_target(&state, &input)?;
    let store = state.store.clone();
    let record =
        tokio::task::spawn_blocking(move || Destinations::of(&store)?.create(&input)).await??;
    changed(&state);
    Ok((StatusCode::CREATED, Json(record.into())))
}

/// One destination.
#[utoipa::path(get, path = "/v1/destinations/{name}", tag = "destinations", security(("adminToken" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "The destination", body = Destination),
        (status = 404, description = "No such destination", body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<Destination>, ApiError> {
    let store = state.store.clone();
    let record = tokio::task::spawn_blocking(move || Destinations::of(&store)?.by_name(&name))
        .await??
        .ok_or_else(|| ApiError::NotFound("no such destination".into()))?;
    Ok(Json(record.into()))
}

/// Replaces a destination's settings (the secret stays unless given).
#[utoipa::path(put, path = "/v1/destinations/{name}", tag = "destinations", security(("adminToken" = [])),
    params(("name" = String, Path)),
    request_body = DestinationBody,
    responses(
        (status = 200, description = "Saved", body = Destination),
        (status = 400, description = "A filter that does not parse, a URL that is not allowed, a name other than the path's", body = ErrorBody),
        (status = 404, description = "No such destination", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Destination>, ApiError> {
    let input: DestinationInput = json_body::<DestinationBody>(&body)?.into();
    if input.name != name {
        return Err(ApiError::BadRequest(format!(
            "name {:?} differs from the path's {name:?}; a destination's name cannot change",
            input.name
        )));
    }
    check_filter(&input)?;
    check_target(&state, &input)?;
    let store = state.store.clone();
    let record =
        tokio::task::spawn_blocking(move || Destinations::of(&store)?.update(&name, &input))
            .await??
            .ok_or_else(|| ApiError::NotFound("no such destination".into()))?;
    changed(&state);
    Ok(Json(record.into()))
}

/// Deletes a destination and what it was still owed.
#[utoipa::path(delete, path = "/v1/destinations/{name}", tag = "destinations", security(("adminToken" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such destination", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    if !tokio::task::spawn_blocking(move || Destinations::of(&store)?.delete(&name)).await?? {
        return Err(ApiError::NotFound("no such destination".into()));
    }
    changed(&state);
    Ok(StatusCode::NO_CONTENT)
}

/// Which deliveries, and how many.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// pending, delivered or dead (the dead-letter list); all when absent.
    status: Option<String>,
    /// The previous page's `next_before`.
    before: Option<i64>,
    /// 1 to 500; 50 by default.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

/// One webhook owed, sent or given up on. Times in milliseconds since the epoch.
#[derive(Serialize, ToSchema)]
pub struct Delivery {
    id: i64,
    destination_id: i64,
    profile_id: i64,
    /// The `webhook-id` header: the same on every attempt, for the receiver to deduplicate.
    webhook_id: String,
    /// What is POSTed: `{type, timestamp, data}`.
    #[schema(value_type = Object)]
    payload: Value,
    /// pending, delivered or dead.
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    created_at: i64,
    finished_at: Option<i64>,
    last_error: Option<String>,
}

impl From<DeliveryRecord> for Delivery {
    fn from(r: DeliveryRecord) -> Delivery {
        Delivery {
            id: r.id,
            destination_id: r.destination_id,
            profile_id: r.profile_id,
            webhook_id: r.webhook_id,
            payload: r.payload,
            status: r.status.as_str().to_owned(),
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
            finished_at: r.finished_at,
            last_error: r.last_error,
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    deliveries: Vec<Delivery>,
    /// Pass as `before` for the next page; null on the last.
    next_before: Option<i64>,
}

/// Deliveries, newest first; `status=dead` is the dead-letter list.
#[utoipa::path(get, path = "/v1/destinations/{name}/deliveries", tag = "destinations", security(("adminToken" = [])),
    params(("name" = String, Path), DeliveryParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 404, description = "No such destination", body = ErrorBody),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let status = params
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "status: {s:?} is not one of pending, delivered, dead"
                ))
            })
        })
        .transpose()?;
    let limit = limit_param(params.limit.as_deref(), 50, 500)?;
    let store = state.store.clone();
    let page = tokio::task::spawn_blocking(move || {
        let outbox = Destinations::of(&store)?;
        let destination = outbox
            .by_name(&name)?
            .ok_or_else(|| ApiError::NotFound("no such destination".into()))?;
        Ok::<_, ApiError>(outbox.deliveries(destination.id, status, params.before, limit)?)
    })
    .await??;
    let next = (page.len() == limit)
        .then(|| page.last().map(|d| d.id))
        .flatten();
    Ok(Json(DeliveryPage {
        deliveries: page.into_iter().map(Delivery::from).collect(),
        next_before: next,
    }))
}

/// A delivery with every attempt made.
#[derive(Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    delivery: Delivery,
    attempt_log: Vec<Attempt>,
}

/// One try: the receiver's status code (null when it could not be reached), what went
/// wrong (the first bytes of its answer), and how long it took.
#[derive(Serialize, ToSchema)]
pub struct Attempt {
    at: i64,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

impl From<AttemptRecord> for Attempt {
    fn from(r: AttemptRecord) -> Attempt {
        Attempt {
            at: r.at,
            status_code: r.status_code,
            error: r.error,
            duration_ms: r.duration_ms,
        }
    }
}

/// One delivery with every attempt (status code, error, duration).
#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "destinations", security(("adminToken" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The delivery", body = DeliveryDetail),
        (status = 404, description = "No such delivery", body = ErrorBody),
    ))]
pub async fn delivery(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let store = state.store.clone();
    let (delivery, attempts) = tokio::task::spawn_blocking(move || {
        let outbox = Destinations::of(&store)?;
        let delivery = outbox
            .delivery(id)?
            .ok_or_else(|| ApiError::NotFound(format!("no delivery {id}")))?;
        Ok::<_, ApiError>((delivery, outbox.delivery_attempts(id)?))
    })
    .await??;
    Ok(Json(DeliveryDetail {
        delivery: delivery.into(),
        attempt_log: attempts.into_iter().map(Attempt::from).collect(),
    }))
}

/// Which dead deliveries to queue again: `ids`, or every dead one when absent (or no
/// body at all).
#[derive(Deserialize, Default, ToSchema)]
pub struct ReplayBody {
    ids: Option<Vec<i64>>,
}

#[derive(Serialize, ToSchema)]
pub struct Replayed {
    /// Deliveries queued again.
    replayed: u64,
}

/// Queues dead deliveries again (all, or `{"ids": [...]}`).
#[utoipa::path(post, path = "/v1/destinations/{name}/replay", tag = "destinations", security(("adminToken" = [])),
    params(("name" = String, Path)),
    request_body(content = Option<ReplayBody>, description = "Optional"),
    responses(
        (status = 200, description = "Queued again", body = Replayed),
        (status = 404, description = "No such destination", body = ErrorBody),
    ))]
pub async fn replay(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Replayed>, ApiError> {
    let body: ReplayBody = if body.is_empty() {
        ReplayBody::default()
    } else {
        json_body(&body)?
    };
    let store = state.store.clone();
    let replayed = tokio::task::spawn_blocking(move || {
        let outbox = Destinations::of(&store)?;
        let destination = outbox
            .by_name(&name)?
            .ok_or_else(|| ApiError::NotFound("no such destination".into()))?;
        Ok::<_, ApiError>(outbox.replay_dead(destination.id, body.ids.as_deref())?)
    })
    .await??;
    state.bus.publish(Happened::OutboxWritten);
    Ok(Json(Replayed { replayed }))
}

pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(deliveries))
        .routes(routes!(replay))
        .routes(routes!(delivery))
}
