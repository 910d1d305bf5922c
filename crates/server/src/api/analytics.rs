//! `/v1/analytics`: the latest result of each analysis, and a way to ask for a fresh run.
//! Behind the admin token, like the customer 360.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use prossimo_understand::{Analysis, CLV_EVALUATION, Reports};
use serde_json::{Value, json};

use crate::analyst::{LAST_RUN, RunRequest};
use crate::api::Routes;
use crate::extract::Admin;
use crate::{ApiError, AppState};

/// Every name `/v1/analytics/{name}` answers.
fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Analysis::ALL.iter().map(|a| a.as_str()).collect();
    names.push(CLV_EVALUATION);
    names
}

fn iso(ms: i64) -> Value {
    prossimo_model::format_millis(ms).map_or(Value::Null, Value::String)
}

/// Which analyses exist and when each was computed, and what the analyst is doing.
pub async fn index(State(state): State<AppState>, _admin: Admin) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let (analyses, last_run) = tokio::task::spawn_blocking(move || {
        let reports = Reports::of(&store)?;
        let analyses = names()
            .into_iter()
            .map(|name| {
                Ok(json!({
                    "name": name,
                    "computed_at": reports.get(name)?.map(|a| iso(a.computed_at)),
                }))
            })
            .collect::<Result<Vec<Value>, prossimo_store::StoreError>>()?;
        let last_run = reports.get(LAST_RUN)?.map(|run| {
            let mut summary = run.result;
            summary["finished_at"] = iso(run.computed_at);
            summary
        });
        Ok::<_, prossimo_store::StoreError>((analyses, last_run))
    })
    .await??;
    Ok(Json(json!({
        "analyses": analyses,
        "last_run": last_run,
        "analyst": state.analyst.as_ref().map(|a| a.status()),
    })))
}

pub async fn analysis(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !names().contains(&name.as_str()) {
        return Err(ApiError::NotFound(format!(
            "no analysis {name:?}; there are: {}",
            names().join(", ")
        )));
    }
    let store = state.store.clone();
    let lookup = name.clone();
    match tokio::task::spawn_blocking(move || Reports::of(&store)?.get(&lookup)).await?? {
        Some(a) => Ok(Json(json!({
            "name": name,
            "computed_at": iso(a.computed_at),
            "result": a.result,
        }))),
        None => Err(ApiError::NotFound(format!(
            "{name} has not been computed yet: POST /v1/analytics/run, or run `prossimo analyze`"
        ))),
    }
}

/// Starts a full run in the background: 202, then poll `/v1/analytics`.
pub async fn run(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request = state.analyst.as_ref().map(|a| a.run_now());
    match request {
        Some(RunRequest::Started) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"accepted": true, "joined": false, "status": "/v1/analytics"})),
        )),
        Some(RunRequest::Joined) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"accepted": true, "joined": true, "status": "/v1/analytics"})),
        )),
        Some(RunRequest::Stopped) | None => Err(ApiError::Conflict(
            "this server runs without the analyst; use `prossimo analyze`".into(),
        )),
    }
}

pub(crate) fn routes() -> Routes {
    Routes::new()
        .at("/v1/analytics", get(index))
        .at("/v1/analytics/run", post(run))
        .at("/v1/analytics/{name}", get(analysis))
}
