//! The HTTP edge: the Segment tracking API, the customer 360 read API, the analytics
//! reports, health and metrics, and the web console (`prossimo-console`) at `/`; and the
//! two background threads behind it (the writer and the analyst).
//! Thin by design: parsing and validation live in `prossimo-model`, identity in
//! `prossimo-identity`, storage in `prossimo-store`.

mod analyst;
mod analytics_api;
mod browser;
mod destinations_api;
mod error;
mod extract;
mod ingest_api;
mod pipeline;
mod profiles_api;
mod segments_api;
mod serve;
mod service_thread;

use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use analyst::{Analyst, AnalystConfig, AnalystStatus, RunRequest};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
pub use browser::PublicUrl;
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
    sources: Arc<ingest_api::SourceCache>,
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
    // Compressed bodies are limited again after decompression (see `ingest_api::body`).
    let body_limit = state.limits.max_batch_bytes + 64 * 1024;
    let console = prossimo_console::router(prossimo_console::Services {
        store: state.store.clone(),
        decider: state.decider.clone(),
        bus: state.bus.clone(),
        trusted_proxies: state.trusted_proxies.clone(),
        live: state.live.clone(),
    });
    // The write-key endpoints, under Segment's paths and the browser SDK's short ones
    // (`{apiHost}/t|i|p|s|g|a|b`), each answering browsers' preflights.
    let tracking = Router::new()
        .route(
            "/v1/identify",
            post(ingest_api::identify).options(browser::preflight),
        )
        .route(
            "/v1/i",
            post(ingest_api::identify).options(browser::preflight),
        )
        .route(
            "/v1/track",
            post(ingest_api::track).options(browser::preflight),
        )
        .route("/v1/t", post(ingest_api::track).options(browser::preflight))
        .route(
            "/v1/page",
            post(ingest_api::page).options(browser::preflight),
        )
        .route("/v1/p", post(ingest_api::page).options(browser::preflight))
        .route(
            "/v1/screen",
            post(ingest_api::screen).options(browser::preflight),
        )
        .route(
            "/v1/s",
            post(ingest_api::screen).options(browser::preflight),
        )
        .route(
            "/v1/group",
            post(ingest_api::group).options(browser::preflight),
        )
        .route("/v1/g", post(ingest_api::group).options(browser::preflight))
        .route(
            "/v1/alias",
            post(ingest_api::alias).options(browser::preflight),
        )
        .route("/v1/a", post(ingest_api::alias).options(browser::preflight))
        .route(
            "/v1/batch",
            post(ingest_api::batch).options(browser::preflight),
        )
        .route("/v1/b", post(ingest_api::batch).options(browser::preflight))
        .route(
            "/v1/import",
            post(ingest_api::batch).options(browser::preflight),
        )
        .route(
            "/v1/projects/{write_key}/settings",
            get(browser::settings).options(browser::preflight),
        )
        .layer(axum::middleware::from_fn(browser::readable_errors));
    Router::new()
        .merge(tracking)
        .route("/v1/profiles", get(profiles_api::search))
        .route("/v1/profiles/{key}", get(profiles_api::profile))
        .route("/v1/profiles/{key}/events", get(profiles_api::events))
        .route("/v1/analytics", get(analytics_api::index))
        .route("/v1/analytics/run", post(analytics_api::run))
        .route("/v1/analytics/{name}", get(analytics_api::analysis))
        .route(
            "/v1/segments",
            get(segments_api::list).post(segments_api::create),
        )
        .route("/v1/segments/validate", post(segments_api::validate))
        .route("/v1/segments/preview", post(segments_api::preview_draft))
        .route(
            "/v1/segments/{slug}",
            get(segments_api::get_one)
                .put(segments_api::update)
                .delete(segments_api::delete),
        )
        .route("/v1/segments/{slug}/members", get(segments_api::members))
        .route("/v1/segments/{slug}/history", get(segments_api::history))
        .route(
            "/v1/destinations",
            get(destinations_api::list).post(destinations_api::create),
        )
        .route(
            "/v1/destinations/{name}",
            get(destinations_api::get_one)
                .put(destinations_api::update)
                .delete(destinations_api::delete),
        )
        .route(
            "/v1/destinations/{name}/deliveries",
            get(destinations_api::deliveries),
        )
        .route(
            "/v1/destinations/{name}/replay",
            post(destinations_api::replay),
        )
        .route("/v1/deliveries/{id}", get(destinations_api::delivery))
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
