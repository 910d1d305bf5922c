//! What the official browser SDK (`@segment/analytics-next`) needs to send from a shop's
//! own pages: CORS on the write-key endpoints (and only there), and the settings document
//! it loads from `{cdnURL}/v1/projects/{writeKey}/settings` before its first event.
//!
//! The SDK posts `text/plain` JSON with `Authorization: Basic …` to `{apiHost}/t|i|p|s|g|a`
//! (`/b` when batching), so every send is preceded by a preflight. A preflight carries no
//! write key, so it is answered for any origin some active source allows; the send itself
//! is then checked against its own source's list. The admin API and the console answer no
//! CORS at all: a page elsewhere can never read them with a user's cookie or token.

use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prossimo_store::Source;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::doc::ErrorBody;
use crate::{ApiError, AppState};

/// Request headers the SDK sends (`X-Retry-Count` on retries) or a server SDK may add.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Content-Encoding, X-Retry-Count";
/// How long a browser may reuse a preflight: two hours, Chromium's own ceiling.
const PREFLIGHT_MAX_AGE: &str = "7200";

/// Answers `OPTIONS` on a write-key endpoint.
pub async fn preflight(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser's preflight: say what the endpoint takes.
        return Ok((
            StatusCode::NO_CONTENT,
            [(header::ALLOW, "POST, GET, OPTIONS")],
        )
            .into_response());
    };
    let sources = active_sources(&state).await?;
    let origin_text = origin.to_str().unwrap_or_default();
    let allow = if sources.iter().any(|s| s.allowed_origins.is_none()) {
        HeaderValue::from_static("*")
    } else if sources.iter().any(|s| s.allows_origin(origin_text)) {
        origin.clone()
    } else {
        return Err(ApiError::OriginNotAllowed(format!(
            "no source accepts pages from {origin_text}"
        )));
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, GET, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOWED_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    Ok(response)
}

/// A browser request from a page its source does not accept is refused before anything is
/// parsed or stored. Requests without `Origin` (servers, apps, curl) are not browsers'.
pub fn check_origin(headers: &HeaderMap, source: &Source) -> Result<(), ApiError> {
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(origin) => {
            let origin = origin.to_str().unwrap_or_default();
            if source.allows_origin(origin) {
                Ok(())
            } else {
                Err(ApiError::OriginNotAllowed(format!(
                    "source {:?} does not accept pages from {origin}",
                    source.name
                )))
            }
        }
    }
}

/// The `Access-Control-Allow-Origin` a source's answer carries: `*` when any page may send,
/// else the page's own origin (which `check_origin` accepted).
pub fn allow_origin_for(headers: &HeaderMap, source: &Source) -> Option<HeaderValue> {
    match (&source.allowed_origins, headers.get(header::ORIGIN)) {
        (_, None) => None,
        (None, Some(_)) => Some(HeaderValue::from_static("*")),
        (Some(_), Some(origin)) => Some(origin.clone()),
    }
}

/// Middleware of the write-key endpoints: an answer that did not set its own
/// `Access-Control-Allow-Origin` (an error before the source was known) gets `*`, so the
/// page's SDK can read why it was refused. Nothing there is secret.
pub async fn readable_errors(request: Request, next: Next) -> Response {
    let from_browser = request.headers().contains_key(header::ORIGIN);
    let mut response = next.run(request).await;
    if from_browser {
        let h = response.headers_mut();
        if !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    response
}

/// The settings document `AnalyticsBrowser.load({ writeKey, cdnURL })` reads. Only the
/// Segment.io destination is described (no device-mode integrations, no remote plugins or
/// middleware to download), pointed at this server; the SDK's own metrics are off.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SdkSettings {
    integrations: Integrations,
    #[schema(value_type = Object)]
    plan: serde_json::Value,
    metrics: Metrics,
    #[schema(value_type = Vec<Object>)]
    remote_plugins: [(); 0],
    #[schema(value_type = Object)]
    enabled_middleware: serde_json::Value,
    #[schema(value_type = Object)]
    middleware_settings: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
struct Integrations {
    #[serde(rename = "Segment.io")]
    segment_io: SegmentIo,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SegmentIo {
    api_key: String,
    /// Host and path without the scheme: the SDK posts to `{protocol}://{apiHost}/t`.
    api_host: String,
    protocol: &'static str,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Metrics {
    /// The SDK would otherwise report its own counters to Segment's servers.
    sample_rate: f64,
}

/// Where browsers reach this server: the configured public URL (behind a proxy or TLS), or
/// else the `Host` the request came to, over plain HTTP as `serve` itself speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `http` or `https`.
    scheme: &'static str,
    /// Host, port and path prefix, without a trailing slash.
    authority_and_path: String,
}

impl PublicUrl {
    /// Parses `https://track.shop.example.it` (a path prefix is allowed: a proxy may mount
    /// the server under one).
    pub fn parse(raw: &str) -> Result<PublicUrl, String> {
        let bad = || format!("{raw:?} is not a URL like https://track.shop.example.it");
        let (scheme, rest) = raw.trim().split_once("://").ok_or_else(bad)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => return Err(bad()),
        };
        let rest = rest.trim_end_matches('/');
        let printable = rest.bytes().all(|b| b.is_ascii_graphic());
        if rest.is_empty() || rest.starts_with('/') || !printable || rest.contains(['?', '#']) {
            return Err(bad());
        }
        Ok(PublicUrl {
            scheme,
            authority_and_path: rest.to_owned(),
        })
    }
}

/// The settings the browser SDK loads (`AnalyticsBrowser.load({writeKey, cdnURL})`),
/// pointing it at this server.
#[utoipa::path(get, path = "/v1/projects/{writeKey}/settings", tag = "tracking",
    params(("writeKey" = String, Path, description = "The source's write key")),
    responses(
        (status = 200, description = "The settings (cacheable for a minute)", body = SdkSettings),
        (status = 401, description = "Unknown or revoked write key", body = ErrorBody),
        (status = 403, description = "A page the source does not accept (CORS)", body = ErrorBody),
    ))]
pub async fn settings(
    State(state): State<AppState>,
    Path(write_key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let source = crate::api::tracking::authenticate(&state, &write_key).await?;
    check_origin(&headers, &source)?;
    let (protocol, host) = match &state.public_url {
        Some(url) => (url.scheme, url.authority_and_path.clone()),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty())
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "no Host header: set public_url so the SDK knows where to send".into(),
                    )
                })?;
            ("http", host.to_owned())
        }
    };
    let body = SdkSettings {
        integrations: Integrations {
            segment_io: SegmentIo {
                api_key: source.write_key.clone(),
                api_host: format!("{host}/v1"),
                protocol,
            },
        },
        plan: serde_json::json!({}),
        metrics: Metrics { sample_rate: 0.0 },
        remote_plugins: [],
        enabled_middleware: serde_json::json!({}),
        middleware_settings: serde_json::json!({}),
    };
    let mut response = axum::Json(body).into_response();
    if let Some(allow) = allow_origin_for(&headers, &source) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    }
    // A revoked key stops working within the key cache's lifetime anyway.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(response)
}

/// The browser SDK's CORS preflight of its settings.
#[utoipa::path(options, path = "/v1/projects/{writeKey}/settings", tag = "tracking",
    params(("writeKey" = String, Path)),
    responses(
        (status = 204, description = "Allowed: Access-Control-Allow-* headers"),
        (status = 403, description = "No source accepts pages from that origin", body = ErrorBody),
    ))]
pub async fn settings_preflight(
    state: State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    preflight(state, headers).await
}

/// Every active source, remembered as long as a write key is (the preflight of every send
/// would otherwise read the sources table).
async fn active_sources(state: &AppState) -> Result<Vec<Source>, ApiError> {
    if let Some(fresh) = state.sources.active_snapshot() {
        return Ok(fresh);
    }
    let store = state.store.clone();
    let sources = tokio::task::spawn_blocking(move || store.sources()).await??;
    let active: Vec<Source> = sources.into_iter().filter(|s| !s.revoked).collect();
    state
        .sources
        .remember_active(active.clone(), Instant::now());
    Ok(active)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_keep_scheme_host_and_path() {
        let url = PublicUrl::parse("https://Track.Shop.it/prossimo/").expect("valid");
        assert_eq!(url.scheme, "https");
        assert_eq!(url.authority_and_path, "Track.Shop.it/prossimo");
        for bad in [
            "track.shop.it",
            "ftp://x",
            "https://",
            "https:///x",
            "https://a b",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
