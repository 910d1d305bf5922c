//! The customer 360 read API, behind an admin token (`Authorization: Bearer …`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use prossimo_model::{Channel, MessageType, parse_timestamp};
use prossimo_store::{EventQuery, ProfileKey};
use prossimo_view::CustomerView;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::api::Area;
use crate::extract::Admin;
use crate::{ApiError, AppState};

/// Everything known about one person.
#[derive(Serialize, ToSchema)]
pub struct Customer {
    id: i64,
    name: Option<String>,
    /// The latest value of each trait (by event time).
    #[schema(value_type = Object)]
    traits: serde_json::Map<String, Value>,
    identifiers: Vec<Identifier>,
    /// Groups (accounts) the person belongs to.
    groups: Vec<String>,
    /// Profiles that were merged into this one.
    merged_profiles: Vec<i64>,
    /// Merges, refused merges and ignored identifiers that concern this profile.
    identity_log: Vec<IdentityLogEntry>,
    first_seen: Option<String>,
    first_channel: Option<String>,
    last_seen: Option<String>,
    event_count: u64,
    counts_by_type: BTreeMap<String, u64>,
    counts_by_event: BTreeMap<String, u64>,
    counts_by_channel: BTreeMap<String, u64>,
    orders: OrderTotals,
    /// Traits written by analyses (`rfm_score`, `rfm_segment`, `p_alive`,
    /// `expected_purchases_90d`, `clv_12m`, `cluster`, ...).
    #[schema(value_type = Object)]
    computed: serde_json::Map<String, Value>,
    /// Segment memberships, current (`exited_at` null) and past, newest first.
    segments: Vec<Membership>,
}

/// One of the person's identifiers; `since`: when it was first seen, in milliseconds.
#[derive(Serialize, ToSchema)]
pub struct Identifier {
    kind: String,
    value: String,
    since: i64,
}

#[derive(Serialize, ToSchema)]
pub struct IdentityLogEntry {
    /// `merge`, `merge_refused` or `identifier_ignored`.
    kind: String,
    profile_id: i64,
    other_profile_id: Option<i64>,
    #[serde(rename = "messageId")]
    message_id: String,
    at: String,
    detail: String,
    logged_at: String,
}

/// The person's orders, net of refunds and cancellations, in the reporting currency.
#[derive(Serialize, ToSchema)]
pub struct OrderTotals {
    /// Orders that count (not cancelled, not refunded in full).
    count: u64,
    /// Their value net of refunds.
    revenue: f64,
    refunded: f64,
    /// Orders cancelled or refunded in full.
    voided: u64,
    currency: String,
}

/// A stay in a segment.
#[derive(Serialize, ToSchema)]
pub struct Membership {
    segment_id: i64,
    slug: String,
    name: String,
    profile_id: i64,
    entered_at: Option<String>,
    exited_at: Option<String>,
}

impl From<CustomerView> for Customer {
    fn from(view: CustomerView) -> Customer {
        let p = view.profile;
        Customer {
            id: p.id,
            name: p.name,
            traits: p.traits,
            identifiers: p
                .identifiers
                .into_iter()
                .map(|i| Identifier {
                    kind: i.kind,
                    value: i.value,
                    since: i.since,
                })
                .collect(),
            groups: p.groups.into_iter().collect(),
            merged_profiles: p.merged_profiles,
            identity_log: p
                .identity_log
                .into_iter()
                .map(|l| IdentityLogEntry {
                    kind: l.kind,
                    profile_id: l.profile_id,
                    other_profile_id: l.other_profile_id,
                    message_id: l.message_id,
                    at: l.at,
                    detail: l.detail,
                    logged_at: l.logged_at,
                })
                .collect(),
            first_seen: p.first_seen,
            first_channel: p.first_channel,
            last_seen: p.last_seen,
            event_count: p.event_count,
            counts_by_type: p.counts_by_type,
            counts_by_event: p.counts_by_event,
            counts_by_channel: p.counts_by_channel,
            orders: OrderTotals {
                count: p.orders.count,
                revenue: p.orders.revenue,
                refunded: p.orders.refunded,
                voided: p.orders.voided,
                currency: p.orders.currency,
            },
            computed: p.computed,
            segments: view
                .segments
                .into_iter()
                .map(|m| Membership {
                    segment_id: m.segment_id,
                    slug: m.slug,
                    name: m.name,
                    profile_id: m.profile_id,
                    entered_at: prossimo_model::format_millis(m.entered_at),
                    exited_at: m.exited_at.and_then(prossimo_model::format_millis),
                })
                .collect(),
        }
    }
}

fn parse_key(state: &AppState, raw: &str) -> Result<ProfileKey, ApiError> {
    ProfileKey::parse(raw, state.store.identity()).map_err(ApiError::BadRequest)
}

/// Customer 360: traits, identifiers, identity log, first and last seen, counts by type,
/// event and channel, orders net of refunds in the reporting currency, computed traits
/// and segment memberships.
#[utoipa::path(get, path = "/v1/profiles/{key}", tag = "profiles", security(("adminToken" = [])),
    params(("key" = String, Path, description = "A profile id, or kind:value (user_id:42, email:anna@example.it)")),
    responses(
        (status = 200, description = "The person", body = Customer),
        (status = 404, description = "Nobody has that identifier", body = crate::api::doc::ErrorBody),
    ))]
pub async fn profile(
    State(state): State<AppState>,
    _admin: Admin,
    Path(raw): Path<String>,
) -> Result<Json<Customer>, ApiError> {
    let key = parse_key(&state, &raw)?;
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || prossimo_view::customer(&store, &key))
        .await??
        .map(|view| Json(Customer::from(view)))
        .ok_or_else(|| ApiError::NotFound(format!("no profile for {raw}")))
}

/// Timeline filters, every one optional.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// identify, track, page, screen, group or alias.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<String>,
    /// An event name (track calls).
    event: Option<String>,
    /// web, app, store, call_centre, email, survey or other.
    channel: Option<String>,
    /// From this time on (RFC 3339).
    since: Option<String>,
    /// Before this time (RFC 3339).
    until: Option<String>,
    /// 1 to 1000; 50 by default.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// A page's `next_cursor`, for the next (older) page.
    cursor: Option<String>,
}

/// A page of a timeline, newest first.
#[derive(Serialize, ToSchema)]
pub struct TimelinePage {
    /// Stored messages as received (Segment spec, with `receivedAt`, `profileId` and
    /// `channel`), and entries of other sources (segment entries and exits).
    #[schema(value_type = Vec<Object>)]
    events: Vec<Value>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
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

/// The person's timeline, newest first.
#[utoipa::path(get, path = "/v1/profiles/{key}/events", tag = "profiles", security(("adminToken" = [])),
    params(("key" = String, Path, description = "A profile id, or kind:value"), EventParams),
    responses(
        (status = 200, description = "A page of the timeline", body = TimelinePage),
        (status = 404, description = "Nobody has that identifier", body = crate::api::doc::ErrorBody),
    ))]
pub async fn events(
    State(state): State<AppState>,
    _admin: Admin,
    Path(raw): Path<String>,
    Query(params): Query<EventParams>,
) -> Result<Json<TimelinePage>, ApiError> {
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
        .map(|page| {
            Json(TimelinePage {
                events: page.events,
                next_cursor: page.next_cursor,
            })
        })
        .ok_or_else(|| ApiError::NotFound(format!("no profile for {raw}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// An identifier's value (an e-mail, a phone number, a user id), kind:value, or the
    /// start of a name or surname.
    q: Option<String>,
    /// 1 to 100; 20 by default.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

/// People found, best matches first.
#[derive(Serialize, ToSchema)]
pub struct SearchAnswer {
    profiles: Vec<Found>,
}

#[derive(Serialize, ToSchema)]
pub struct Found {
    id: i64,
    name: Option<String>,
    email: Option<String>,
    user_id: Option<String>,
    last_seen: Option<String>,
    /// The identifier or name that matched.
    matched: String,
}

/// Search people by an identifier's value, kind:value, or the start of a name.
#[utoipa::path(get, path = "/v1/profiles", tag = "profiles", security(("adminToken" = [])),
    params(SearchParams),
    responses((status = 200, description = "The people found", body = SearchAnswer)))]
pub async fn search(
    State(state): State<AppState>,
    _admin: Admin,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchAnswer>, ApiError> {
    let q = params.q.filter(|q| !q.trim().is_empty()).ok_or_else(|| {
        ApiError::BadRequest("q: a search term is required (an identifier or a name prefix)".into())
    })?;
    let limit = limit_param(params.limit.as_deref(), 20, 100)?;
    let store = state.store.clone();
    let found = tokio::task::spawn_blocking(move || store.search(&q, limit)).await??;
    Ok(Json(SearchAnswer {
        profiles: found
            .into_iter()
            .map(|p| Found {
                id: p.id,
                name: p.name,
                email: p.email,
                user_id: p.user_id,
                last_seen: p.last_seen,
                matched: p.matched,
            })
            .collect(),
    }))
}

pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(search))
        .routes(routes!(profile))
        .routes(routes!(events))
}
