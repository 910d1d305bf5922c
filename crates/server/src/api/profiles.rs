//! The customer 360 read API, behind an admin token (`Authorization: Bearer …`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use prossimo_model::{Channel, MessageType, parse_timestamp};
use prossimo_store::{EventPage, EventQuery, ProfileKey, ProfileSummary};
use prossimo_view::CustomerView;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::Routes;
use crate::extract::Admin;
use crate::{ApiError, AppState};

fn parse_key(state: &AppState, raw: &str) -> Result<ProfileKey, ApiError> {
    ProfileKey::parse(raw, state.store.identity()).map_err(ApiError::BadRequest)
}

pub async fn profile(
    State(state): State<AppState>,
    _admin: Admin,
    Path(raw): Path<String>,
) -> Result<Json<CustomerView>, ApiError> {
    let key = parse_key(&state, &raw)?;
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || prossimo_view::customer(&store, &key))
        .await??
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no profile for {raw}")))
}

#[derive(Debug, Deserialize)]
pub struct EventParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    event: Option<String>,
    channel: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn time_param(name: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|r| {
        parse_timestamp(r)
            .map(|t| t.timestamp_millis())
            .map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
    })
    .transpose()
}

pub(crate) fn limit_param(
    raw: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!("limit: {l:?} is not a number from 1 to {max}"))
            }),
    }
}

pub async fn events(
    State(state): State<AppState>,
    _admin: Admin,
    Path(raw): Path<String>,
    Query(params): Query<EventParams>,
) -> Result<Json<EventPage>, ApiError> {
    let key = parse_key(&state, &raw)?;
    if let Some(kind) = &params.kind
        && MessageType::parse(kind).is_none()
    {
        return Err(ApiError::BadRequest(format!(
            "type: {kind:?} is not one of identify, track, page, screen, group, alias"
        )));
    }
    let channel = params
        .channel
        .as_deref()
        .map(|c| {
            c.parse::<Channel>()
                .map_err(|e| ApiError::BadRequest(format!("channel: {e}")))
        })
        .transpose()?;
    let limit = limit_param(params.limit.as_deref(), 50, 1000)?;
    let query = EventQuery {
        kind: params.kind,
        event: params.event,
        channel: channel.map(|c| c.as_str().to_owned()),
        since: time_param("since", params.since.as_deref())?,
        until: time_param("until", params.until.as_deref())?,
        limit,
        cursor: params.cursor,
    };
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || prossimo_view::timeline(&store, &key, &query))
        .await??
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no profile for {raw}")))
}

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    limit: Option<String>,
}

pub async fn search(
    State(state): State<AppState>,
    _admin: Admin,
    Query(params): Query<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let q = params.q.filter(|q| !q.trim().is_empty()).ok_or_else(|| {
        ApiError::BadRequest("q: a search term is required (an identifier or a name prefix)".into())
    })?;
    let limit = limit_param(params.limit.as_deref(), 20, 100)?;
    let store = state.store.clone();
    let found: Vec<ProfileSummary> =
        tokio::task::spawn_blocking(move || store.search(&q, limit)).await??;
    Ok(Json(json!({ "profiles": found })))
}

pub(crate) fn routes() -> Routes {
    Routes::new()
        .at("/v1/profiles", get(search))
        .at("/v1/profiles/{key}", get(profile))
        .at("/v1/profiles/{key}/events", get(events))
}
