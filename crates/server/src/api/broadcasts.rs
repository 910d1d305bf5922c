//! Broadcasts over HTTP (admin token): one message to an audience's members, through the
//! outbox and the send-time policy (docs/messages.md).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use prossimo_bus::Happened;
use prossimo_messages::{BroadcastInput, BroadcastRecord, Broadcasts, InQuietHours};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::api::Area;
use crate::api::doc::ErrorBody;
use crate::api::segments::json_body;
use crate::extract::Admin;
use crate::{ApiError, AppState};

/// A broadcast to start.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastBody {
    /// The audience's slug.
    audience: String,
    /// The message's slug.
    message: String,
    /// Shown in lists; `<message> → <audience>` when absent.
    name: Option<String>,
    /// The subscription topic (`offers`); consent is checked against it.
    topic: Option<String>,
    /// A service message (exempt from caps and quiet hours, sent without marketing
    /// consent).
    #[serde(default)]
    transactional: bool,
    /// `wait` (the default) or `skip`: what a send that falls in quiet hours does.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    in_quiet_hours: InQuietHours,
}

/// A broadcast and what became of its sends so far.
#[derive(Serialize, ToSchema)]
pub struct Broadcast {
    id: i64,
    name: String,
    audience: String,
    message: String,
    channel: String,
    topic: Option<String>,
    transactional: bool,
    /// `owing` while its members are being owed, then `owed`.
    state: String,
    /// Members owed so far.
    owed: u64,
    /// Sends by status: owed, sending, sent, skipped, failed, uncertain.
    outcomes: BTreeMap<String, u64>,
    created_by: String,
    /// Milliseconds since the epoch.
    created_at: i64,
    owed_at: Option<i64>,
}

fn answer(record: BroadcastRecord, outcomes: BTreeMap<String, u64>) -> Broadcast {
    Broadcast {
        id: record.id,
        name: record.name,
        audience: record.audience,
        message: record.message,
        channel: record.channel.as_str().to_owned(),
        topic: record.topic,
        transactional: record.transactional,
        state: match record.state {
            prossimo_messages::BroadcastState::Owing => "owing",
            prossimo_messages::BroadcastState::Owed => "owed",
        }
        .to_owned(),
        owed: record.owed,
        outcomes,
        created_by: record.created_by,
        created_at: record.created_at,
        owed_at: record.owed_at,
    }
}

/// Sends a message to an audience's members, once each: recorded at once, owed and sent
/// by the sender in chunks (follow it with `GET /v1/broadcasts/{id}`).
#[utoipa::path(post, path = "/v1/broadcasts", tag = "messages", security(("adminToken" = [])),
    request_body = BroadcastBody,
    responses(
        (status = 202, description = "Recorded; its members are owed as the sender goes", body = Broadcast),
        (status = 400, description = "No such message or audience, or a bad topic (each problem names its field)", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<Broadcast>), ApiError> {
    let body: BroadcastBody = json_body(&body)?;
    let input = BroadcastInput {
        name: body.name.unwrap_or_default(),
        audience: body.audience,
        message: body.message,
        topic: body.topic,
        transactional: body.transactional,
        in_quiet_hours: body.in_quiet_hours,
        created_by: "api".into(),
    };
    let store = state.store.clone();
    let record = tokio::task::spawn_blocking(move || {
        Broadcasts::of(&store)?
            .create(&input)
            .map_err(ApiError::from)
    })
    .await??;
    state.bus.publish(Happened::MessagesOwed);
    Ok((StatusCode::ACCEPTED, Json(answer(record, BTreeMap::new()))))
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only this audience's.
    audience: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BroadcastList {
    broadcasts: Vec<Broadcast>,
}

/// The latest 100 broadcasts, newest first, with their outcomes.
#[utoipa::path(get, path = "/v1/broadcasts", tag = "messages", security(("adminToken" = [])),
    params(ListQuery),
    responses((status = 200, description = "The broadcasts", body = BroadcastList)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Json<BroadcastList>, ApiError> {
    let store = state.store.clone();
    let broadcasts = tokio::task::spawn_blocking(move || {
        let broadcasts = Broadcasts::of(&store)?;
        broadcasts
            .list(query.audience.as_deref(), 100)?
            .into_iter()
            .map(|b| {
                let outcomes = broadcasts.outcomes(b.id)?;
                Ok(answer(b, outcomes))
            })
            .collect::<Result<Vec<_>, prossimo_store::StoreError>>()
    })
    .await??;
    Ok(Json(BroadcastList { broadcasts }))
}

/// One broadcast with what became of its sends.
#[utoipa::path(get, path = "/v1/broadcasts/{id}", tag = "messages", security(("adminToken" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "The broadcast", body = Broadcast),
        (status = 404, description = "No such broadcast", body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> Result<Json<Broadcast>, ApiError> {
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        let broadcasts = Broadcasts::of(&store)?;
        match broadcasts.get(id)? {
            Some(b) => Ok::<_, prossimo_store::StoreError>(Some((b, broadcasts.outcomes(id)?))),
            None => Ok(None),
        }
    })
    .await??;
    let (record, outcomes) =
        found.ok_or_else(|| ApiError::NotFound(format!("no broadcast {id}")))?;
    Ok(Json(answer(record, outcomes)))
}

pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one))
}
