//! `/v1/analytics`: the latest result of each analysis, and a way to ask for a fresh run.
//! Behind the admin token, like the customer 360.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use prossimo_understand::{Analysis, CLV_EVALUATION, Reports};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::analyst::{AnalystStatus, LAST_RUN, RunRequest};
use crate::api::Area;
use crate::api::doc::ErrorBody;
use crate::extract::Admin;
use crate::{ApiError, AppState};

/// Every name `/v1/analytics/{name}` answers.
fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Analysis::ALL.iter().map(|a| a.as_str()).collect();
    names.push(CLV_EVALUATION);
    names
}

/// Which analyses exist and when each was computed, and what the analyst is doing.
#[derive(Serialize, ToSchema)]
pub struct AnalyticsIndex {
    analyses: Vec<Computed>,
    /// The latest run's summary: `ok`, `seconds`, `profiles_updated` (or `error`), its
    /// `problems` (each `{kind, message, …}`, the message in English) and `finished_at`.
    #[schema(value_type = Option<Object>)]
    last_run: Option<Value>,
    /// Null when this server runs no analyst (`prossimo analyze` runs them instead).
    analyst: Option<AnalystStatus>,
}

#[derive(Serialize, ToSchema)]
pub struct Computed {
    name: &'static str,
    /// Null until it has been computed once.
    computed_at: Option<String>,
}

#[utoipa::path(get, path = "/v1/analytics", tag = "analytics", security(("adminToken" = [])),
    responses((status = 200, description = "The analyses and the analyst", body = AnalyticsIndex)))]
pub async fn index(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<AnalyticsIndex>, ApiError> {
    let store = state.store.clone();
    let (analyses, last_run) = tokio::task::spawn_blocking(move || {
        let reports = Reports::of(&store)?;
        let analyses = names()
            .into_iter()
            .map(|name| {
                Ok(Computed {
                    name,
                    computed_at: reports
                        .get(name)?
                        .and_then(|a| prossimo_model::format_millis(a.computed_at)),
                })
            })
            .collect::<Result<Vec<Computed>, prossimo_store::StoreError>>()?;
        let last_run = reports.get(LAST_RUN)?.map(|run| {
            let mut summary = run.result;
            summary["finished_at"] =
                prossimo_model::format_millis(run.computed_at).map_or(Value::Null, Value::String);
            summary
        });
        Ok::<_, prossimo_store::StoreError>((analyses, last_run))
    })
    .await??;
    let analyst = state.analyst.as_ref().map(|a| a.status());
    Ok(Json(AnalyticsIndex {
        analyses,
        last_run,
        analyst,
    }))
}

/// The latest result of one analysis.
#[derive(Serialize, ToSchema)]
pub struct AnalysisAnswer {
    name: String,
    computed_at: Option<String>,
    /// The analysis's report as computed (see docs/analytics.md for each one's fields).
    #[schema(value_type = Object)]
    result: Value,
}

/// The latest result of one analysis: RFM segments and breakpoints; fitted BG/NBD,
/// MBG/NBD, Pareto/NBD and Gamma-Gamma models (parameters as in lifetimes, log-likelihood,
/// convergence); cohorts; base dynamics and channel mix; clusters; the CLV models'
/// evaluation.
#[utoipa::path(get, path = "/v1/analytics/{name}", tag = "analytics", security(("adminToken" = [])),
    params(("name" = String, Path, description = "rfm, clv, cohorts, clusters, dynamics or clv_evaluation")),
    responses(
        (status = 200, description = "The result", body = AnalysisAnswer),
        (status = 404, description = "No such analysis, or not computed yet", body = ErrorBody),
    ))]
pub async fn analysis(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<AnalysisAnswer>, ApiError> {
    if !names().contains(&name.as_str()) {
        return Err(ApiError::NotFound(format!(
            "no analysis {name:?}; there are: {}",
            names().join(", ")
        )));
    }
    let store = state.store.clone();
    let lookup = name.clone();
    match tokio::task::spawn_blocking(move || Reports::of(&store)?.get(&lookup)).await?? {
        Some(a) => Ok(Json(AnalysisAnswer {
            name,
            computed_at: prossimo_model::format_millis(a.computed_at),
            result: a.result,
        })),
        None => Err(ApiError::NotFound(format!(
            "{name} has not been computed yet: POST /v1/analytics/run, or run `prossimo analyze`"
        ))),
    }
}

/// A run asked for.
#[derive(Serialize, ToSchema)]
pub struct RunAccepted {
    accepted: bool,
    /// A run was already waiting or under way, and this request joined it.
    joined: bool,
    /// Where to see how it went.
    status: &'static str,
}

/// Starts a full run of every analysis in the background; poll `/v1/analytics`. Requests
/// while one is asked for or running join it.
#[utoipa::path(post, path = "/v1/analytics/run", tag = "analytics", security(("adminToken" = [])),
    responses(
        (status = 202, description = "Started, or joined the run already asked for", body = RunAccepted),
        (status = 409, description = "This server runs without the analyst", body = ErrorBody),
    ))]
pub async fn run(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<(StatusCode, Json<RunAccepted>), ApiError> {
    let accepted = |joined| {
        Ok((
            StatusCode::ACCEPTED,
            Json(RunAccepted {
                accepted: true,
                joined,
                status: "/v1/analytics",
            }),
        ))
    };
    match state.analyst.as_ref().map(|a| a.run_now()) {
        Some(RunRequest::Started) => accepted(false),
        Some(RunRequest::Joined) => accepted(true),
        Some(RunRequest::Stopped) | None => Err(ApiError::Conflict(
            "this server runs without the analyst; use `prossimo analyze`".into(),
        )),
    }
}

pub(crate) fn routes() -> Area {
    Area::new()
        .routes(routes!(index))
        .routes(routes!(run))
        .routes(routes!(analysis))
}
