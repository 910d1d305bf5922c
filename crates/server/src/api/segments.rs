//! Audiences over HTTP: save, validate and preview definitions in the segment language,
//! page members and history, size over time. Behind an admin token.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use prossimo_decide::audiences::{Audiences, SegmentInput, SegmentRecord};
use prossimo_decide::{
    AudienceError, DRAFT_SLUG, DecideError, DeciderStatus, check_draft, delete_audience, preview,
    save_audience,
};
use prossimo_segments::{format, parse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::api::Area;
use crate::api::doc::ErrorBody;
use crate::api::profiles::limit_param;
use crate::extract::Admin;
use crate::{ApiError, AppState};

/// The slug a save is for: the path's on an update (a body may repeat it, not change it),
/// the body's on a create. `what` names the thing saved in the refusal.
pub(crate) fn saved_slug(
    path: Option<&str>,
    given: Option<String>,
    what: &str,
) -> Result<String, ApiError> {
    match (path, given) {
        (Some(path), Some(given)) if path != given => Err(ApiError::BadRequest(format!(
            "slug {given:?} differs from the path's {path:?}; a {what}'s slug cannot change"
        ))),
        (Some(path), _) => Ok(path.to_owned()),
        (None, Some(given)) => Ok(given),
        (None, None) => Err(ApiError::BadRequest("slug: required".into())),
    }
}

/// Parses a JSON request body into `T`, or a 400 that says what is wrong with it.
/// A JSON body; the error names the field it is about (`request body: channel: unknown
/// variant …`).
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ApiError::BadRequest(format!("request body: {}", e.inner()))
        } else {
            ApiError::BadRequest(format!("request body: {path}: {}", e.inner()))
        }
    })
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

/// A saved segment. Times in milliseconds since the epoch.
#[derive(Serialize, ToSchema)]
pub struct Segment {
    id: i64,
    /// Lowercase letters, digits, - and _ (1-64); fixed once created.
    slug: String,
    name: String,
    description: String,
    /// In the segment language (docs/segments.md), as saved.
    definition: String,
    created_at: i64,
    updated_at: i64,
}

impl From<SegmentRecord> for Segment {
    fn from(r: SegmentRecord) -> Segment {
        Segment {
            id: r.id,
            slug: r.slug,
            name: r.name,
            description: r.description,
            definition: r.definition,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A segment with its current size.
#[derive(Serialize, ToSchema)]
pub struct SizedSegment {
    #[serde(flatten)]
    segment: Segment,
    /// Members at the latest evaluation (0 before the first).
    size: u64,
}

/// A segment with its size over time.
#[derive(Serialize, ToSchema)]
pub struct SegmentDetail {
    #[serde(flatten)]
    segment: SizedSegment,
    /// Hourly, oldest first.
    sizes: Vec<SizeAt>,
}

#[derive(Serialize, ToSchema)]
pub struct SizeAt {
    hour: Option<String>,
    size: u64,
}

fn sized(audiences: &Audiences, record: SegmentRecord) -> Result<SizedSegment, ApiError> {
    let sizes = audiences.segment_sizes(record.id)?;
    Ok(SizedSegment {
        segment: record.into(),
        size: sizes.last().map_or(0, |&(_, n)| n),
    })
}

/// Every segment, and whether memberships are live here.
#[derive(Serialize, ToSchema)]
pub struct SegmentList {
    segments: Vec<SizedSegment>,
    /// The decider runs in this server and is ready: sizes and memberships are current.
    live: bool,
    /// What the decider is doing (`ready`, `standby`, `rebuilding`, `last_error`,
    /// `tracked_profiles`, `changes_written`, `next_boundary`); null when it does not run here.
    #[schema(value_type = Option<Object>)]
    decider: Option<DeciderStatus>,
}

/// Every segment with its current size, and the decider's status.
#[utoipa::path(get, path = "/v1/segments", tag = "segments", security(("adminToken" = [])),
    responses((status = 200, description = "The segments", body = SegmentList)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<SegmentList>, ApiError> {
    let store = state.store.clone();
    let segments = tokio::task::spawn_blocking(move || {
        let audiences = Audiences::of(&store)?;
        audiences
            .segments()?
            .into_iter()
            .map(|s| sized(&audiences, s))
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await??;
    Ok(Json(SegmentList {
        segments,
        live: live(&state),
        decider: state.decider.as_ref().map(|d| d.status()),
    }))
}

/// One segment with its size over time (hourly).
#[utoipa::path(get, path = "/v1/segments/{slug}", tag = "segments", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The segment", body = SegmentDetail),
        (status = 404, description = "No such segment", body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
) -> Result<Json<SegmentDetail>, ApiError> {
    let store = state.store.clone();
    let detail = tokio::task::spawn_blocking(move || {
        let audiences = Audiences::of(&store)?;
        let record = audiences
            .segment(&slug)?
            .ok_or_else(|| ApiError::NotFound(format!("no segment {slug:?}")))?;
        let id = record.id;
        Ok::<_, ApiError>(SegmentDetail {
            segment: sized(&audiences, record)?,
            sizes: audiences
                .segment_sizes(id)?
                .into_iter()
                .map(|(hour, size)| SizeAt {
                    hour: prossimo_model::format_millis(hour),
                    size,
                })
                .collect(),
        })
    })
    .await??;
    Ok(Json(detail))
}

/// A segment as saved: `slug` (on create; on update it must match the path's, or be left
/// out), `name` (the slug when empty), `description` and `definition`.
#[derive(Deserialize, ToSchema)]
pub struct SegmentBody {
    /// Lowercase letters, digits, - and _ (1-64); fixed once created.
    slug: Option<String>,
    name: Option<String>,
    #[serde(default)]
    description: String,
    /// In the segment language; see docs/segments.md.
    definition: String,
}

/// Validates and saves (create when `existing` is `None`).
async fn save(
    state: AppState,
    body: Bytes,
    existing: Option<String>,
) -> Result<(StatusCode, Json<Segment>), ApiError> {
    let body: SegmentBody = json_body(&body)?;
    let slug = saved_slug(existing.as_deref(), body.slug, "segment")?;
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
    Ok((status, Json(record.into())))
}

/// Saves a new segment; the decider starts keeping its members.
#[utoipa::path(post, path = "/v1/segments", tag = "segments", security(("adminToken" = [])),
    request_body = SegmentBody,
    responses(
        (status = 201, description = "Saved", body = Segment),
        (status = 400, description = "A definition that does not parse or type-check (code invalid_definition, details [{field, reason, line, column}]), or a bad slug or name", body = ErrorBody),
        (status = 409, description = "The slug is taken", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<Segment>), ApiError> {
    save(state, body, None).await
}

/// Replaces a segment's name, description and definition.
#[utoipa::path(put, path = "/v1/segments/{slug}", tag = "segments", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    request_body = SegmentBody,
    responses(
        (status = 200, description = "Saved", body = Segment),
        (status = 400, description = "A definition that does not parse or type-check, or a slug other than the path's", body = ErrorBody),
        (status = 404, description = "No such segment", body = ErrorBody),
        (status = 409, description = "The new definition would make segments refer to each other in a circle", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Segment>), ApiError> {
    save(state, body, Some(slug)).await
}

/// Deletes a segment with its memberships.
#[utoipa::path(delete, path = "/v1/segments/{slug}", tag = "segments", security(("adminToken" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such segment", body = ErrorBody),
        (status = 409, description = "Another segment refers to it", body = ErrorBody),
    ))]
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

/// A definition to check or preview, unsaved.
#[derive(Deserialize, ToSchema)]
pub struct DraftBody {
    /// In the segment language; see docs/segments.md.
    definition: String,
    /// How many matching profiles to show (preview; 10 by default, at most 100).
    #[serde(default)]
    sample: Option<usize>,
}

/// A definition that parses and type-checks.
#[derive(Serialize, ToSchema)]
pub struct Checked {
    valid: bool,
    /// The definition as Prossimo writes it.
    canonical: String,
}

/// Checks a definition; answers its canonical form, or where it goes wrong.
#[utoipa::path(post, path = "/v1/segments/validate", tag = "segments", security(("adminToken" = [])),
    request_body = DraftBody,
    responses(
        (status = 200, description = "Valid", body = Checked),
        (status = 400, description = "Where the definition goes wrong (code invalid_definition, details [{field, reason, line, column}])", body = ErrorBody),
    ))]
pub async fn validate(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<Json<Checked>, ApiError> {
    let draft: DraftBody = json_body(&body)?;
    let store = state.store.clone();
    let canonical = tokio::task::spawn_blocking(move || {
        check_draft(&store, &draft.definition).map_err(|e| definition_error(e, DRAFT_SLUG))?;
        parse(&draft.definition)
            .map(|expr| format(&expr))
            .map_err(|_| ApiError::Internal)
    })
    .await??;
    Ok(Json(Checked {
        valid: true,
        canonical,
    }))
}

/// How many profiles a definition selects now, and some of them.
#[derive(Serialize, ToSchema)]
pub struct PreviewAnswer {
    count: u64,
    profiles_evaluated: u64,
    sample: Vec<Sampled>,
    took_ms: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Sampled {
    id: i64,
    name: Option<String>,
    #[schema(value_type = Option<String>)]
    email: Option<serde_json::Value>,
    last_seen: Option<String>,
}

/// Counts and samples the profiles a definition selects now, without saving it.
#[utoipa::path(post, path = "/v1/segments/preview", tag = "segments", security(("adminToken" = [])),
    request_body = DraftBody,
    responses(
        (status = 200, description = "The count and a sample", body = PreviewAnswer),
        (status = 400, description = "Where the definition goes wrong", body = ErrorBody),
    ))]
pub async fn preview_draft(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<Json<PreviewAnswer>, ApiError> {
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
                        p.map(|p| Sampled {
                            id: p.id,
                            name: p.name,
                            email: p.traits.get("email").cloned(),
                            last_seen: p.last_seen,
                        })
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, ApiError>((result, profiles))
    })
    .await??;
    Ok(Json(PreviewAnswer {
        count: result.count,
        profiles_evaluated: result.profiles,
        sample: profiles.into_iter().flatten().collect(),
        took_ms: started.elapsed().as_millis() as u64,
    }))
}

/// Where a page starts, and how long it is.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Members: the previous page's `next_after`.
    after: Option<i64>,
    /// History: the previous page's `next_before`.
    before: Option<i64>,
    /// 1 to 1000; 100 by default.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

/// A page of current members, in the order they entered.
#[derive(Serialize, ToSchema)]
pub struct MembersPage {
    members: Vec<Member>,
    /// Pass as `after` for the next page; null on the last.
    next_after: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Member {
    profile_id: i64,
    entered_at: Option<String>,
}

/// A page of entries and exits, newest first.
#[derive(Serialize, ToSchema)]
pub struct HistoryPage {
    history: Vec<Stay>,
    /// Pass as `before` for the next page; null on the last.
    next_before: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Stay {
    profile_id: i64,
    entered_at: Option<String>,
    /// Null while the person is still a member.
    exited_at: Option<String>,
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

/// Current members in the order they entered; a page's `next_after` is where the next
/// starts.
#[utoipa::path(get, path = "/v1/segments/{slug}/members", tag = "segments", security(("adminToken" = [])),
    params(("slug" = String, Path), PageParams),
    responses(
        (status = 200, description = "A page of members", body = MembersPage),
        (status = 404, description = "No such segment", body = ErrorBody),
    ))]
pub async fn members(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<MembersPage>, ApiError> {
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
    Ok(Json(MembersPage {
        members: members
            .iter()
            .map(|m| Member {
                profile_id: m.profile_id,
                entered_at: prossimo_model::format_millis(m.entered_at),
            })
            .collect(),
        next_after: next,
    }))
}

/// Entries and exits, newest first; a page's `next_before` is where the next starts.
#[utoipa::path(get, path = "/v1/segments/{slug}/history", tag = "segments", security(("adminToken" = [])),
    params(("slug" = String, Path), PageParams),
    responses(
        (status = 200, description = "A page of the history", body = HistoryPage),
        (status = 404, description = "No such segment", body = ErrorBody),
    ))]
pub async fn history(
    State(state): State<AppState>,
    _admin: Admin,
    Path(slug): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<HistoryPage>, ApiError> {
    let limit = limit_param(params.limit.as_deref(), 100, 1000)?;
    let id = segment_id(&state, slug).await?;
    let store = state.store.clone();
    let (records, next) = tokio::task::spawn_blocking(move || {
        Audiences::of(&store)?.segment_history(id, params.before, limit)
    })
    .await??;
    Ok(Json(HistoryPage {
        history: records
            .iter()
            .map(|m| Stay {
                profile_id: m.profile_id,
                entered_at: prossimo_model::format_millis(m.entered_at),
                exited_at: m.exited_at.and_then(prossimo_model::format_millis),
            })
            .collect(),
        next_before: next,
    }))
}

pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(list, create))
        .routes(routes!(validate))
        .routes(routes!(preview_draft))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(members))
        .routes(routes!(history))
}
