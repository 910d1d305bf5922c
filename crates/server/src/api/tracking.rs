//! The Segment HTTP Tracking API: `/v1/identify|track|page|screen|group|alias|batch|import`.

use std::collections::HashMap;
use std::io::Read;
use std::sync::RwLock;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::Utc;
use flate2::read::GzDecoder;
use prossimo_model::{
    BatchError, ErrorCode, FieldError, MessageType, Payload, parse_batch, parse_single,
};
use prossimo_store::{Incoming, Source};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::api::Area;
use crate::api::browser;
use crate::api::doc::{ErrorBody, SegmentBatch, SegmentMessage};
use crate::error::batch_error;
use crate::{ApiError, AppState};

/// Write keys seen recently, so the hot path does not query the store per request. Entries
/// expire after [`SOURCE_CACHE_TTL`], which bounds how long a revoked key keeps working,
/// whichever process revoked it (the console, `prossimo keys`, another node).
pub struct SourceCache {
    by_key: RwLock<HashMap<String, (Source, std::time::Instant)>>,
    /// Every active source, for browsers' preflights (which carry no key).
    active: RwLock<Option<(Vec<Source>, std::time::Instant)>>,
    ttl: std::time::Duration,
}

impl Default for SourceCache {
    fn default() -> Self {
        SourceCache::expiring_after(SOURCE_CACHE_TTL)
    }
}

impl SourceCache {
    pub(crate) fn expiring_after(ttl: std::time::Duration) -> SourceCache {
        SourceCache {
            by_key: RwLock::default(),
            active: RwLock::default(),
            ttl,
        }
    }

    pub(crate) fn active_snapshot(&self) -> Option<Vec<Source>> {
        let guard = self.active.read().ok()?;
        let (sources, at) = guard.as_ref()?;
        (at.elapsed() < self.ttl).then(|| sources.clone())
    }

    pub(crate) fn remember_active(&self, sources: Vec<Source>, at: std::time::Instant) {
        if let Ok(mut guard) = self.active.write() {
            *guard = Some((sources, at));
        }
    }
}

/// Five seconds: a revoked key stops working about as soon as anyone could check, for one
/// indexed lookup per key every five seconds.
const SOURCE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn authenticate(state: &AppState, key: &str) -> Result<Source, ApiError> {
    if let Ok(cache) = state.sources.by_key.read()
        && let Some((source, at)) = cache.get(key)
        && at.elapsed() < state.sources.ttl
    {
        return Ok(source.clone());
    }
    let store = state.store.clone();
    let owned = key.to_owned();
    let found = tokio::task::spawn_blocking(move || store.source_by_write_key(&owned)).await??;
    match found {
        Some(source) if !source.revoked => {
            if let Ok(mut cache) = state.sources.by_key.write() {
                cache.insert(key.to_owned(), (source.clone(), std::time::Instant::now()));
            }
            Ok(source)
        }
        Some(_) => Err(ApiError::Unauthorized(
            "this write key has been revoked".into(),
        )),
        None => Err(ApiError::Unauthorized("unknown write key".into())),
    }
}

/// The write key from `Authorization: Basic base64(key:)` (the colon is optional).
fn basic_auth_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || ApiError::Unauthorized("Authorization must be Basic base64(writeKey:)".into());
    let value = value.to_str().map_err(|_| bad())?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let key = text.split(':').next().unwrap_or_default().trim().to_owned();
    Ok((!key.is_empty()).then_some(key))
}

/// The request body as JSON bytes: content type checked, gzip undone within the limit.
fn body(headers: &HeaderMap, raw: Bytes, max: usize) -> Result<Vec<u8>, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        let json_like = essence.is_empty()
            || essence == "application/json"
            || essence == "text/plain"
            || essence.ends_with("+json");
        if !json_like {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {essence} is not accepted; send application/json"
            )));
        }
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(raw.to_vec()),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(raw.len() * 4);
            GzDecoder::new(raw.as_ref())
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    batch_error(
                        ErrorCode::UnsupportedEncoding,
                        format!("corrupt gzip body: {e}"),
                    )
                })?;
            if out.len() > max {
                return Err(ApiError::Batch(BatchError::field(
                    ErrorCode::PayloadTooLarge,
                    None,
                    "body",
                    format!("more than {max} bytes once decompressed"),
                )));
            }
            Ok(out)
        }
        other => Err(batch_error(
            ErrorCode::UnsupportedEncoding,
            format!("Content-Encoding {other} is not supported; use gzip or none"),
        )),
    }
}

/// Takes one request and tells the console's live view what came of it.
async fn ingest(
    state: AppState,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
    implied: Option<MessageType>,
) -> Result<Response, ApiError> {
    let mut source_name = None;
    let result = ingest_request(&state, headers, raw, implied, &mut source_name).await;
    if let Err(e) = &result {
        let (status, code) = (e.status(), e.code().as_str());
        let problems = match e {
            ApiError::Batch(b) => b
                .details
                .iter()
                .map(|d| match d.index {
                    Some(i) => format!("[{i}] {}: {}", d.field, d.reason),
                    None => format!("{}: {}", d.field, d.reason),
                })
                .collect(),
            _ => Vec::new(),
        };
        state.live.refused(prossimo_console::Refusal {
            source: source_name.as_deref(),
            status: status.as_u16(),
            code,
            message: e.to_string(),
            problems,
        });
    }
    result
}

async fn ingest_request(
    state: &AppState,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
    implied: Option<MessageType>,
    source_name: &mut Option<String>,
) -> Result<Response, ApiError> {
    let raw = raw.map_err(|e| {
        if crate::serve::is_body_timeout(&e) {
            return ApiError::Http {
                code: ErrorCode::RequestTimeout,
                message: e.to_string(),
            };
        }
        ApiError::Batch(BatchError::field(
            ErrorCode::PayloadTooLarge,
            None,
            "body",
            format!(
                "{e}; at most {} bytes per request",
                state.limits.max_batch_bytes
            ),
        ))
    })?;
    // A key in the header is checked before the body is parsed: a stranger's bytes cost
    // nothing, and an unknown key is a 401 whatever the body holds.
    let header_source = match basic_auth_key(&headers)? {
        Some(key) => Some(authenticate(state, &key).await?),
        None => None,
    };
    if let Some(source) = &header_source {
        *source_name = Some(source.name.clone());
        browser::check_origin(&headers, source)?;
    }
    let bytes = body(&headers, raw, state.limits.max_batch_bytes)?;
    let received_at = Utc::now();
    let payload: Payload = match implied {
        Some(kind) => parse_single(&bytes, kind, received_at, &state.limits)?,
        None => parse_batch(&bytes, received_at, &state.limits)?,
    };
    let source = match (header_source, payload.write_key) {
        (Some(source), _) => source,
        (None, Some(key)) => {
            let source = authenticate(state, &key).await?;
            browser::check_origin(&headers, &source)?;
            source
        }
        (None, None) => {
            return Err(ApiError::Unauthorized(
                "a write key is required: Basic auth user, or writeKey in the body".into(),
            ));
        }
    };

    source_name.get_or_insert_with(|| source.name.clone());
    let (identity, money) = (state.store.identity(), state.store.money());
    let batch = payload
        .messages
        .into_iter()
        .map(|m| Incoming::new(source.id, m, identity, money))
        .collect::<Result<Vec<Incoming>, _>>()
        .map_err(|e| {
            tracing::error!(error = %e, "a validated message did not serialise");
            ApiError::Internal
        })?;
    // Valid JSON that still cannot be stored: nobody identifiable, or an order in a
    // currency without a rate.
    let refused: Vec<FieldError> = batch
        .iter()
        .enumerate()
        .filter_map(|(index, m)| {
            let (field, reason) = m.refusal()?;
            Some(FieldError {
                index: Some(index),
                field,
                reason,
            })
        })
        .collect();
    if !refused.is_empty() {
        return Err(BatchError::validation(refused).into());
    }
    if !batch.is_empty() {
        // Summarised before the batch moves to the writer, shown once it is stored.
        let sample =
            prossimo_console::LiveFeed::sample(&source.name, batch.iter().map(|m| &m.message));
        state.pipeline.submit(batch).await?;
        state.live.accepted(sample);
    }
    let mut response = Json(Stored { success: true }).into_response();
    if let Some(allow) = browser::allow_origin_for(&headers, &source) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    }
    Ok(response)
}

/// Stored durably, or already stored: a retry of the same `messageId` is not stored twice.
#[derive(Serialize, ToSchema)]
pub struct Stored {
    success: bool,
}

/// A write-key endpoint at `$path`: `$send` takes its messages (one of `$kind`, or a batch
/// when `None`), `$preflight` answers browsers' preflights.
macro_rules! tracking_endpoint {
    ($send:ident, $preflight:ident, $path:literal, $kind:expr, $summary:literal, $body:ty) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "tracking", security(("writeKey" = [])),
            request_body(content((
                $body = "application/json"), ($body = "text/plain")),
                description = "JSON, sent as application/json or (the browser SDK) text/plain; gzip with Content-Encoding"),
            responses(
                (status = 200, description = "Stored durably (or already stored: retries are idempotent)", body = Stored),
                (status = 400, description = "Invalid input (details name each message's field); nothing from the request was stored", body = ErrorBody),
                (status = 403, description = "A browser request from a page the source does not accept (CORS)", body = ErrorBody),
                (status = 429, description = "Overloaded; retry after Retry-After seconds. Nothing was stored", body = ErrorBody),
            ))]
        pub async fn $send(
            State(state): State<AppState>,
            headers: HeaderMap,
            raw: Result<Bytes, BytesRejection>,
        ) -> Result<Response, ApiError> {
            ingest(state, headers, raw, $kind).await
        }

        /// The browser SDK's CORS preflight.
        #[utoipa::path(options, path = $path, tag = "tracking", responses(
            (status = 204, description = "Allowed: Access-Control-Allow-* headers (or, without Origin, Allow)"),
            (status = 403, description = "No source accepts pages from that origin", body = ErrorBody),
        ))]
        pub async fn $preflight(
            state: State<AppState>,
            headers: HeaderMap,
        ) -> Result<Response, ApiError> {
            browser::preflight(state, headers).await
        }
    };
}

tracking_endpoint!(
    identify,
    identify_preflight,
    "/v1/identify",
    Some(MessageType::Identify),
    "Identifies a person and sets traits.",
    SegmentMessage
);
tracking_endpoint!(
    identify_short,
    identify_short_preflight,
    "/v1/i",
    Some(MessageType::Identify),
    "Identifies a person and sets traits (the browser SDK's short path).",
    SegmentMessage
);
tracking_endpoint!(
    track,
    track_preflight,
    "/v1/track",
    Some(MessageType::Track),
    "Records an event.",
    SegmentMessage
);
tracking_endpoint!(
    track_short,
    track_short_preflight,
    "/v1/t",
    Some(MessageType::Track),
    "Records an event (the browser SDK's short path).",
    SegmentMessage
);
tracking_endpoint!(
    page,
    page_preflight,
    "/v1/page",
    Some(MessageType::Page),
    "Records a page view.",
    SegmentMessage
);
tracking_endpoint!(
    page_short,
    page_short_preflight,
    "/v1/p",
    Some(MessageType::Page),
    "Records a page view (the browser SDK's short path).",
    SegmentMessage
);
tracking_endpoint!(
    screen,
    screen_preflight,
    "/v1/screen",
    Some(MessageType::Screen),
    "Records an app screen view.",
    SegmentMessage
);
tracking_endpoint!(
    screen_short,
    screen_short_preflight,
    "/v1/s",
    Some(MessageType::Screen),
    "Records an app screen view (the browser SDK's short path).",
    SegmentMessage
);
tracking_endpoint!(
    group,
    group_preflight,
    "/v1/group",
    Some(MessageType::Group),
    "Associates a person with a group (an account).",
    SegmentMessage
);
tracking_endpoint!(
    group_short,
    group_short_preflight,
    "/v1/g",
    Some(MessageType::Group),
    "Associates a person with a group (the browser SDK's short path).",
    SegmentMessage
);
tracking_endpoint!(
    alias,
    alias_preflight,
    "/v1/alias",
    Some(MessageType::Alias),
    "Links a previous id to a user id.",
    SegmentMessage
);
tracking_endpoint!(
    alias_short,
    alias_short_preflight,
    "/v1/a",
    Some(MessageType::Alias),
    "Links a previous id to a user id (the browser SDK's short path).",
    SegmentMessage
);
tracking_endpoint!(
    batch,
    batch_preflight,
    "/v1/batch",
    None,
    "Sends up to 2,500 messages at once.",
    SegmentBatch
);
tracking_endpoint!(
    batch_short,
    batch_short_preflight,
    "/v1/b",
    None,
    "Sends up to 2,500 messages at once (the browser SDK's short path).",
    SegmentBatch
);
tracking_endpoint!(
    import,
    import_preflight,
    "/v1/import",
    None,
    "Sends historical messages, like /v1/batch.",
    SegmentBatch
);

/// The write-key endpoints, under Segment's paths and the browser SDK's short ones
/// (`{apiHost}/t|i|p|s|g|a|b`), each answering browsers' preflights and errors a page's
/// SDK can read, with the settings the SDK loads.
pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(identify, identify_preflight))
        .routes(routes!(identify_short, identify_short_preflight))
        .routes(routes!(track, track_preflight))
        .routes(routes!(track_short, track_short_preflight))
        .routes(routes!(page, page_preflight))
        .routes(routes!(page_short, page_short_preflight))
        .routes(routes!(screen, screen_preflight))
        .routes(routes!(screen_short, screen_short_preflight))
        .routes(routes!(group, group_preflight))
        .routes(routes!(group_short, group_short_preflight))
        .routes(routes!(alias, alias_preflight))
        .routes(routes!(alias_short, alias_short_preflight))
        .routes(routes!(batch, batch_preflight))
        .routes(routes!(batch_short, batch_short_preflight))
        .routes(routes!(import, import_preflight))
        .routes(routes!(browser::settings, browser::settings_preflight))
        .layer(axum::middleware::from_fn(browser::readable_errors))
}
