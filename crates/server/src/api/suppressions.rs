//! Suppression lists over HTTP (admin token): addresses and numbers that get nothing on a
//! channel, whoever they belong to (docs/messages.md). Hard bounces and complaints add to
//! them on their own.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use prossimo_messages::{
    Channel, MAX_SUPPRESSIONS_PER_CALL, Suppression, Suppressions, normalize_phone,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::api::Area;
use crate::api::doc::ErrorBody;
use crate::api::profiles::limit_param;
use crate::api::segments::json_body;
use crate::extract::Admin;
use crate::{ApiError, AppState};

/// The longest address kept (RFC 5321's limit on a path).
const MAX_ADDRESS_BYTES: usize = 256;

/// One entry.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// email or sms.
    #[schema(value_type = String)]
    channel: Channel,
    /// An e-mail address, or a number in E.164 (`+393471234567`).
    address: String,
}

/// What to add, and why.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    entries: Vec<Entry>,
    /// Recorded with each entry (`manual` when absent): `import`, `role_address`, …
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Added {
    /// Entries that were not on the list yet.
    added: usize,
}

/// An address on a list.
#[derive(Serialize, ToSchema)]
pub struct Entered {
    channel: String,
    address: String,
    reason: String,
    detail: Option<String>,
    /// Milliseconds since the epoch.
    created_at: i64,
}

impl From<Suppression> for Entered {
    fn from(s: Suppression) -> Entered {
        Entered {
            channel: s.channel.as_str().to_owned(),
            address: s.address,
            reason: s.reason,
            detail: s.detail,
            created_at: s.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Listed {
    suppressions: Vec<Entered>,
    /// The `after` of the next page, when there is one.
    next: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// email or sms; none: both.
    channel: Option<String>,
    /// The last address of the page before.
    after: Option<String>,
    /// 1 to 1000 (100 unless given).
    limit: Option<String>,
}

fn channel_param(raw: &str) -> Result<Channel, ApiError> {
    match Channel::parse(raw) {
        Some(channel @ (Channel::Email | Channel::Sms)) => Ok(channel),
        _ => Err(ApiError::Field {
            field: "channel",
            reason: format!("{raw:?}: suppression lists are for email and sms"),
        }),
    }
}

/// `local@domain.tld`, no spaces: enough to refuse what is plainly not an address (the
/// sender refuses the rest when it composes).
fn looks_like_email(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !address.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Checks one entry: an e-mail address, or an E.164 number.
fn checked(entry: Entry, index: usize) -> Result<(Channel, String), ApiError> {
    let bad = |reason: String| ApiError::Http {
        code: prossimo_model::ErrorCode::InvalidField,
        message: format!("entries[{index}].address: {reason}"),
    };
    let address = entry.address.trim().to_owned();
    if address.is_empty() || address.len() > MAX_ADDRESS_BYTES {
        return Err(bad(format!("1 to {MAX_ADDRESS_BYTES} bytes")));
    }
    match entry.channel {
        Channel::Email if looks_like_email(&address) => {
            Ok((Channel::Email, address.to_lowercase()))
        }
        Channel::Email => Err(bad(format!("{address:?} is not an e-mail address"))),
        Channel::Sms => normalize_phone(&address, None)
            .map(|e164| (Channel::Sms, e164))
            .map_err(|_| bad(format!("{address:?} is not a number in E.164 (+39…)"))),
        Channel::Webhook => Err(ApiError::Http {
            code: prossimo_model::ErrorCode::InvalidField,
            message: format!("entries[{index}].channel: suppression lists are for email and sms"),
        }),
    }
}

/// Adds addresses to their channels' lists (at most 10,000 a call); those already there
/// keep their first reason.
#[utoipa::path(post, path = "/v1/suppressions", tag = "messages", security(("adminToken" = [])),
    request_body = AddBody,
    responses(
        (status = 200, description = "How many were new", body = Added),
        (status = 400, description = "An entry that is not an address of its channel (nothing is added)", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<Json<Added>, ApiError> {
    let body: AddBody = json_body(&body)?;
    if body.entries.len() > MAX_SUPPRESSIONS_PER_CALL {
        return Err(ApiError::Field {
            field: "entries",
            reason: format!("at most {MAX_SUPPRESSIONS_PER_CALL} a call"),
        });
    }
    let reason = body.reason.unwrap_or_else(|| "manual".into());
    if reason.trim().is_empty() || reason.len() > 100 {
        return Err(ApiError::Field {
            field: "reason",
            reason: "1 to 100 bytes".into(),
        });
    }
    let entries = body
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| checked(e, i))
        .collect::<Result<Vec<_>, _>>()?;
    let store = state.store.clone();
    let added = tokio::task::spawn_blocking(move || {
        Suppressions::of(&store)?.add(&entries, reason.trim(), None)
    })
    .await??;
    Ok(Json(Added { added }))
}

/// A page of the lists, by address.
#[utoipa::path(get, path = "/v1/suppressions", tag = "messages", security(("adminToken" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The entries", body = Listed),
        (status = 400, description = "Not a channel or a limit", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Json<Listed>, ApiError> {
    let channel = query.channel.as_deref().map(channel_param).transpose()?;
    let limit = limit_param(query.limit.as_deref(), 100, 1000)?;
    let store = state.store.clone();
    let mut page = tokio::task::spawn_blocking(move || {
        Suppressions::of(&store)?.list(channel, query.after.as_deref(), limit + 1)
    })
    .await??;
    let next = (page.len() > limit).then(|| page[limit - 1].address.clone());
    page.truncate(limit);
    Ok(Json(Listed {
        suppressions: page.into_iter().map(Entered::from).collect(),
        next,
    }))
}

/// Takes an address off its channel's list: it may get messages again.
#[utoipa::path(delete, path = "/v1/suppressions/{channel}/{address}", tag = "messages", security(("adminToken" = [])),
    params(("channel" = String, Path, description = "email or sms"), ("address" = String, Path)),
    responses(
        (status = 204, description = "Taken off"),
        (status = 404, description = "Not on the list", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    Path((channel, address)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let channel = channel_param(&channel)?;
    let store = state.store.clone();
    let wanted = address.clone();
    let removed =
        tokio::task::spawn_blocking(move || Suppressions::of(&store)?.remove(channel, &wanted))
            .await??;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "{address:?} is not on the list"
        )))
    }
}

pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(add, list))
        .routes(routes!(remove))
}
