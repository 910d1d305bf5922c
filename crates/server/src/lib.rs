//! The HTTP edge: the Segment tracking API, the customer 360 read API, the analytics
//! reports, health and metrics, and the web console (`prossimo-console`) at `/`; and the
//! two background threads behind it (the writer and the analyst).
//! Thin by design: parsing and validation live in `prossimo-model`, identity in
//! `prossimo-identity`, storage in `prossimo-store`.

mod analyst;
mod api;
mod error;
mod extract;
mod pipeline;
mod serve;
mod service_thread;

use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use analyst::{Analyst, AnalystConfig, AnalystStatus, RunRequest};
pub use api::browser::PublicUrl;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
pub use error::ApiError;
pub use pipeline::{Pipeline, PipelineConfig, PipelineStats, SubmitError};
use prossimo_act::TargetPolicy;
use prossimo_bus::Bus;
use prossimo_decide::Decider;
use prossimo_model::Limits;
use prossimo_store::Store;
pub use serve::{MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES, ServeConfig, serve};

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub pipeline: Pipeline,
    pub limits: Limits,
    /// The background analyses, when this server runs them.
    pub analyst: Option<Analyst>,
    /// Live audiences, when this server runs them (for their status).
    pub decider: Option<Decider>,
    /// Where the handlers announce what they changed (definitions saved, deliveries put
    /// back in the outbox).
    pub bus: Bus,
    sources: Arc<api::tracking::SourceCache>,
    /// What the tracking API accepted and refused lately, for the console's live view.
    pub live: Arc<prossimo_console::LiveFeed>,
    /// Where browsers reach this server, for the SDK's settings; `None`: the request's Host.
    pub public_url: Option<PublicUrl>,
    /// Where webhook destinations may point.
    pub targets: Arc<TargetPolicy>,
    /// Proxies whose `X-Forwarded-For` names the client (the console's sign-in limits).
    pub trusted_proxies: prossimo_console::TrustedProxies,
}

impl AppState {
    pub fn new(store: Arc<Store>, pipeline: Pipeline, limits: Limits, bus: Bus) -> AppState {
        AppState {
            store,
            pipeline,
            limits,
            analyst: None,
            decider: None,
            bus,
            sources: Arc::default(),
            live: Arc::default(),
            public_url: None,
            targets: Arc::default(),
            trusted_proxies: prossimo_console::TrustedProxies::default(),
        }
    }

    pub fn with_trusted_proxies(
        self,
        trusted_proxies: prossimo_console::TrustedProxies,
    ) -> AppState {
        AppState {
            trusted_proxies,
            ..self
        }
    }

    pub fn with_targets(self, targets: Arc<TargetPolicy>) -> AppState {
        AppState { targets, ..self }
    }

    pub fn with_public_url(self, public_url: Option<PublicUrl>) -> AppState {
        AppState { public_url, ..self }
    }

    pub fn with_analyst(self, analyst: Analyst) -> AppState {
        AppState {
            analyst: Some(analyst),
            ..self
        }
    }

    /// How long a source's write key is remembered before the store is asked again: a
    /// revoked key stops working within it (5 s unless set).
    pub fn with_key_cache(self, ttl: std::time::Duration) -> AppState {
        AppState {
            sources: Arc::new(api::tracking::SourceCache::expiring_after(ttl)),
            ..self
        }
    }

    pub fn with_decider(self, decider: Decider) -> AppState {
        AppState {
            decider: Some(decider),
            ..self
        }
    }
}

/// The OpenAPI description of every endpoint.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn app(state: AppState) -> Router {
    // Compressed bodies are limited again after decompression (see `api::tracking::body`).
    let body_limit = state.limits.max_batch_bytes + 64 * 1024;
    let console = prossimo_console::router(prossimo_console::Services {
        store: state.store.clone(),
        decider: state.decider.clone(),
        bus: state.bus.clone(),
        trusted_proxies: state.trusted_proxies.clone(),
        live: state.live.clone(),
    });
    api::areas()
        .into_iter()
        .fold(Router::new(), |router, area| router.merge(area.router))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
        .merge(console)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(serve::json_errors))
        .layer(axum::middleware::from_fn(serve::request_limits))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
    }
}

/// Prometheus text exposition of the ingest counters.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
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

#[cfg(test)]
mod tests;
