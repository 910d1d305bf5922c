//! What operators and tools ask of a running server: is it alive, is it ready, its
//! counters, and this API's description.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::routes;

use crate::AppState;
use crate::api::Area;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain")))]
pub async fn health() -> &'static str {
    "ok"
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/ready", tag = "service", responses(
    (status = 200, description = "Ready", body = String, content_type = "text/plain"),
    (status = 503, description = "The store does not answer", body = String, content_type = "text/plain"),
))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
    }
}

/// Prometheus text exposition of the ingest counters.
#[utoipa::path(get, path = "/metrics", tag = "service", responses(
    (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"),
))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let s = &state.pipeline.stats;
    let body = format!(
        "# HELP prossimo_commits_total Group commits written.\n# TYPE prossimo_commits_total counter\nprossimo_commits_total {}\n\
         # HELP prossimo_messages_stored_total Messages durably stored.\n# TYPE prossimo_messages_stored_total counter\nprossimo_messages_stored_total {}\n\
         # HELP prossimo_messages_duplicate_total Messages recognised as retries and not stored again.\n# TYPE prossimo_messages_duplicate_total counter\nprossimo_messages_duplicate_total {}\n\
         # HELP prossimo_commit_failures_total Group commits that failed.\n# TYPE prossimo_commit_failures_total counter\nprossimo_commit_failures_total {}\n",
        s.commits.load(Ordering::Relaxed),
        s.messages_stored.load(Ordering::Relaxed),
        s.duplicates.load(Ordering::Relaxed),
        s.failed_commits.load(Ordering::Relaxed),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// This document: every endpoint, its parameters, bodies and answers (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "service", responses(
    (status = 200, description = "The OpenAPI document", body = Object),
))]
pub async fn openapi() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let json = DOCUMENT.get_or_init(crate::openapi_json);
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}
