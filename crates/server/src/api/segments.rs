//! Audiences over HTTP: save, validate and preview definitions in the segment language,
//! page members and history, size over time. Behind an admin token.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use prossimo_decide::audiences::{Audiences, SegmentInput, SegmentRecord};
use prossimo_decide::{
    AudienceError, DRAFT_SLUG, DecideError, check_draft, delete_audience, preview, save_audience,
};
use prossimo_segments::{format, parse};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::Routes;
use crate::api::profiles::limit_param;
use crate::extract::Admin;
use crate::{ApiError, AppState};

/// Parses a JSON request body into `T`, or a 400 that says what is wrong with it.
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("request body: {e}")))
}

/// Turns a definition problem into a 400 pointing at its line and column.
fn definition_error(e: DecideError, slug: &str) -> ApiError {
    if let Some(error) = e.definition_error(slug) {
        return ApiError::Definition {
            field: "definition",
            message: error.to_string(),
            reason: error.message().to_owned(),
            line: error.line(),
            column: error.column(),
        };
    }
    match e {
        DecideError::Catalog(other) => ApiError::BadRequest(other.to_string()),
        DecideError::Store(e) => e.into(),
        DecideError::Filter(message) => ApiError::BadRequest(message),
    }
}

/// What an audience that was not saved or deleted answers.
fn audience_error(e: AudienceError, slug: &str) -> ApiError {
    match e {
        AudienceError::Definition(e) => definition_error(e, slug),
        AudienceError::NotFound(slug) => ApiError::NotFound(format!("no segment {slug:?}")),
        e @ AudienceError::InUse { .. } => ApiError::Conflict(e.to_string()),
        AudienceError::Store(e) => e.into(),
    }
}

/// Whether the decider runs here, so callers know if memberships are live.
fn live(state: &AppState) -> bool {
    state.decider.as_ref().is_some_and(|d| d.status().ready)
}

fn with_size(audiences: &Audiences, record: &SegmentRecord) -> Result<Value, ApiError> {
    let sizes = audiences.segment_sizes(record.id)?;
    let mut value = serde_json::to_value(record).map_err(|_| ApiError::Internal)?;
    value["size"] = json!(sizes.last().map_or(0, |&(_, n)| n));
    Ok(value)
}

pub async fn list(State(state): State<AppState>, _admin: Admin) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let segments = tokio::task::spawn_blocking(move || {
        let audiences = Audiences::of(&store)?;
        audiences
            .segments()?
            .iter()
            .map(|s| with_size(&audiences, s))
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await??;
    Ok(Json(json!({
        "segments": segments,
        "live": live(&state),
        "decider": state.decider.as_ref().map(|d| d.status()),
    })))
}

pub async fn get_one(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let value = tokio::task::spawn_blocking(move || {
        let audiences = Audiences::of(&store)?;
        let record = audiences
            .segment(&slug)?
            .ok_or_else(|| ApiError::NotFound(format!("no segment {slug:?}")))?;
        let mut value = with_size(&audiences, &record)?;
        value["sizes"] = json!(
            audiences
                .segment_sizes(record.id)?
                .into_iter()
                .map(|(hour, size)| json!({"hour": prossimo_model::format_millis(hour), "size": size}))
                .collect::<Vec<_>>()
        );
        Ok::<_, ApiError>(value)
    })
    .await??;
    Ok(Json(value))
}

#[derive(Deserialize)]
struct SegmentBody {
    slug: Option<String>,
    name: Option<String>,
    #[serde(default)]
    description: String,
    definition: String,
}

/// Validates and saves (create when `existing` is `None`).
async fn save(
    state: AppState,
    body: Bytes,
    existing: Option<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: SegmentBody = json_body(&body)?;
    let slug = match (&existing, body.slug) {
        (Some(path), Some(given)) if *path != given => {
            return Err(ApiError::BadRequest(format!(
                "slug {given:?} differs from the path's {path:?}; a segment's slug cannot change"
            )));
        }
        (Some(path), _) => path.clone(),
        (None, Some(given)) => given,
        (None, None) => return Err(ApiError::BadRequest("slug: required".into())),
    };
    let input = SegmentInput {
        name: body
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| slug.clone()),
        slug,
        description: body.description,
        definition: body.definition,
    };
    let (store, bus) = (state.store.clone(), state.bus.clone());
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let record = tokio::task::spawn_blocking(move || {
        save_audience(&store, Some(&bus), &input, existing.as_deref())
            .map_err(|e| audience_error(e, &input.slug))
    })
    .await??;
    Ok((
        status,
        Json(serde_json::to_value(record).map_err(|_| ApiError::Internal)?),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    save(state, body, None).await
}

pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    save(state, body, Some(slug)).await
}

pub async fn delete(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (store, bus) = (state.store.clone(), state.bus.clone());
    tokio::task::spawn_blocking(move || {
        delete_audience(&store, Some(&bus), &slug).map_err(|e| audience_error(e, &slug))
    })
    .await??;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct DraftBody {
    definition: String,
    #[serde(default)]
    sample: Option<usize>,
}

/// `POST /v1/segments/validate`: the canonical form, or where the definition goes wrong.
pub async fn validate(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let draft: DraftBody = json_body(&body)?;
    let store = state.store.clone();
    let canonical = tokio::task::spawn_blocking(move || {
        check_draft(&store, &draft.definition).map_err(|e| definition_error(e, DRAFT_SLUG))?;
        parse(&draft.definition)
            .map(|expr| format(&expr))
            .map_err(|_| ApiError::Internal)
    })
    .await??;
    Ok(Json(json!({"valid": true, "canonical": canonical})))
}

/// `POST /v1/segments/preview`: how many profiles match now, and a sample, without saving.
pub async fn preview_draft(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let draft: DraftBody = json_body(&body)?;
    let sample = draft.sample.unwrap_or(10).min(100);
    let store = state.store.clone();
    let started = Instant::now();
    let (result, profiles) = tokio::task::spawn_blocking(move || {
        check_draft(&store, &draft.definition).map_err(|e| definition_error(e, DRAFT_SLUG))?;
        let now = store.now_ms();
        let result = preview(&store, &draft.definition, now, sample)
            .map_err(|e| definition_error(e, DRAFT_SLUG))?;
        let profiles = result
            .sample
            .iter()
            .map(|&id| {
                store
                    .profile(&prossimo_store::ProfileKey::Id(id), &[])
                    .map(|p| {
                        p.map(|p| {
                            json!({
                                "id": p.id,
                                "name": p.name,
                                "email": p.traits.get("email"),
                                "last_seen": p.last_seen,
                            })
                        })
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, ApiError>((result, profiles))
    })
    .await??;
    Ok(Json(json!({
        "count": result.count,
        "profiles_evaluated": result.profiles,
        "sample": profiles.into_iter().flatten().collect::<Vec<_>>(),
        "took_ms": started.elapsed().as_millis() as u64,
    })))
}

#[derive(Deserialize)]
pub struct PageParams {
    after: Option<i64>,
    before: Option<i64>,
    limit: Option<String>,
}

async fn segment_id(state: &AppState, slug: String) -> Result<i64, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        Audiences::of(&store)?
            .segment(&slug)?
            .map(|s| s.id)
            .ok_or_else(|| ApiError::NotFound(format!("no segment {slug:?}")))
    })
    .await?
}

/// `GET /v1/segments/{slug}/members?after=&limit=`: current members in the order they
/// entered; `next_after` is where the next page starts.
pub async fn members(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit_param(params.limit.as_deref(), 100, 1000)?;
    let id = segment_id(&state, slug).await?;
    let store = state.store.clone();
    let members = tokio::task::spawn_blocking(move || {
        Audiences::of(&store)?.segment_members(id, params.after, limit)
    })
    .await??;
    let next = (members.len() == limit)
        .then(|| members.last().map(|m| m.position))
        .flatten();
    Ok(Json(json!({
        "members": members.iter().map(|m| json!({
            "profile_id": m.profile_id,
            "entered_at": prossimo_model::format_millis(m.entered_at),
        })).collect::<Vec<_>>(),
        "next_after": next,
    })))
}

/// `GET /v1/segments/{slug}/history?before=&limit=`: entries and exits, newest first.
pub async fn history(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = limit_param(params.limit.as_deref(), 100, 1000)?;
    let id = segment_id(&state, slug).await?;
    let store = state.store.clone();
    let (records, next) = tokio::task::spawn_blocking(move || {
        Audiences::of(&store)?.segment_history(id, params.before, limit)
    })
    .await??;
    Ok(Json(json!({
        "history": records.iter().map(|m| json!({
            "profile_id": m.profile_id,
            "entered_at": prossimo_model::format_millis(m.entered_at),
            "exited_at": m.exited_at.and_then(prossimo_model::format_millis),
        })).collect::<Vec<_>>(),
        "next_before": next,
    })))
}

pub(crate) fn routes() -> Routes {
    Routes::new()
        .at("/v1/segments", get(list).post(create))
        .at("/v1/segments/validate", post(validate))
        .at("/v1/segments/preview", post(preview_draft))
        .at(
            "/v1/segments/{slug}",
            get(get_one).put(update).delete(delete),
        )
        .at("/v1/segments/{slug}/members", get(members))
        .at("/v1/segments/{slug}/history", get(history))
}
