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

pub use analyst::{Analyst, AnalystConfig, AnalystStatus, RunRequest};
pub use api::browser::PublicUrl;
pub use api::hooks::SmsCallbacks;
use axum::Router;
use axum::extract::DefaultBodyLimit;
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
    /// How the SMS provider's status callbacks are checked, when one is configured.
    pub sms_callbacks: Option<SmsCallbacks>,
    /// What dry runs assume of sending: the workspace's zone and whether marketing needs
    /// opt-in.
    pub send_settings: SendSettings,
}

/// What dry runs assume of sending (`[time] zone`, `[email] require_opt_in`).
#[derive(Debug, Clone, Copy)]
pub struct SendSettings {
    pub zone: chrono_tz::Tz,
    pub require_opt_in: bool,
}

impl Default for SendSettings {
    fn default() -> Self {
        SendSettings {
            zone: chrono_tz::Europe::Rome,
            require_opt_in: false,
        }
    }
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
            sms_callbacks: None,
            send_settings: SendSettings::default(),
        }
    }

    pub fn with_send_settings(self, send_settings: SendSettings) -> AppState {
        AppState {
            send_settings,
            ..self
        }
    }

    pub fn with_sms_callbacks(self, sms_callbacks: Option<SmsCallbacks>) -> AppState {
        AppState {
            sms_callbacks,
            ..self
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

/// The OpenAPI document of every endpoint, generated with the router from the handlers'
/// own annotations and types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router_and_document().1
}

/// [`openapi`] as pretty JSON, as `/openapi.json` serves it.
pub fn openapi_json() -> String {
    openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn app(state: AppState) -> Router {
    // Compressed bodies are limited again after decompression (see `api::tracking::body`).
    let body_limit = state.limits.max_batch_bytes + 64 * 1024;
    let console = prossimo_console::router(prossimo_console::Services {
        store: state.store.clone(),
        decider: state.decider.clone(),
        bus: state.bus.clone(),
        trusted_proxies: state.trusted_proxies.clone(),
        live: state.live.clone(),
        zone: state.send_settings.zone,
        require_opt_in: state.send_settings.require_opt_in,
    });
    let (api, _) = api::router_and_document();
    api.fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
        .merge(console)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(serve::json_errors))
        .layer(axum::middleware::from_fn(serve::request_limits))
}

#[cfg(test)]
mod tests;
