//! Webhook destinations over HTTP: save them, see every delivery and attempt, inspect and
//! replay the dead-letter list. Behind an admin token.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use prossimo_act::destinations::{
    DeliveryStatus, DestinationInput, DestinationKind, DestinationRecord, Destinations,
};
use prossimo_bus::{Definitions, Happened};
use prossimo_decide::{DecideError, check_event_filter};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::Routes;
use crate::api::profiles::limit_param;
use crate::api::segments::json_body;
use crate::extract::Admin;
use crate::{ApiError, AppState};

fn check_filter(input: &DestinationInput) -> Result<(), ApiError> {
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

fn public(record: DestinationRecord) -> Value {
    json!(record)
}

pub async fn list(State(state): State<AppState>, _admin: Admin) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let all = tokio::task::spawn_blocking(move || Destinations::of(&store)?.list()).await??;
    Ok(Json(
        json!({"destinations": all.into_iter().map(public).collect::<Vec<_>>()}),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input: DestinationInput = json_body(&body)?;
    check_filter(&input)?;
    check_target(&state, &input)?;
    let store = state.store.clone();
    let record =
        tokio::task::spawn_blocking(move || Destinations::of(&store)?.create(&input)).await??;
    changed(&state);
    Ok((StatusCode::CREATED, Json(public(record))))
}

pub async fn get_one(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let record = tokio::task::spawn_blocking(move || Destinations::of(&store)?.by_name(&name))
        .await??
        .ok_or_else(|| ApiError::NotFound("no such destination".into()))?;
    Ok(Json(public(record)))
}

pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: DestinationInput = json_body(&body)?;
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
    Ok(Json(public(record)))
}

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

#[derive(Deserialize)]
pub struct DeliveryParams {
    status: Option<String>,
    before: Option<i64>,
    limit: Option<String>,
}

/// `GET /v1/destinations/{name}/deliveries?status=pending|delivered|dead&before=&limit=`.
pub async fn deliveries(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"deliveries": page, "next_before": next})))
}

/// `GET /v1/deliveries/{id}`: one delivery with every attempt made.
pub async fn delivery(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let (delivery, attempts) = tokio::task::spawn_blocking(move || {
        let outbox = Destinations::of(&store)?;
        let delivery = outbox
            .delivery(id)?
            .ok_or_else(|| ApiError::NotFound(format!("no delivery {id}")))?;
        Ok::<_, ApiError>((delivery, outbox.delivery_attempts(id)?))
    })
    .await??;
    let mut value = json!(delivery);
    value["attempt_log"] = json!(attempts);
    Ok(Json(value))
}

#[derive(Deserialize, Default)]
struct ReplayBody {
    ids: Option<Vec<i64>>,
}

/// `POST /v1/destinations/{name}/replay` with `{"ids": [...]}` or `{}` for every dead one.
pub async fn replay(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"replayed": replayed})))
}

pub(crate) fn routes() -> Routes {
    Routes::new()
        .at("/v1/destinations", get(list).post(create))
        .at(
            "/v1/destinations/{name}",
            get(get_one).put(update).delete(delete),
        )
        .at("/v1/destinations/{name}/deliveries", get(deliveries))
        .at("/v1/destinations/{name}/replay", post(replay))
        .at("/v1/deliveries/{id}", get(delivery))
}
