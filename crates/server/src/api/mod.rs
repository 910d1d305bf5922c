//! The HTTP API, one module an area; each owns its handlers, its answers' types and its
//! routes, and documents each handler with `#[utoipa::path]` beside it.

use axum::Router;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

pub(crate) mod analytics;
pub(crate) mod broadcasts;
pub(crate) mod browser;
pub(crate) mod destinations;
pub(crate) mod doc;
pub(crate) mod hooks;
pub(crate) mod journeys;
pub(crate) mod links;
pub(crate) mod messages;
pub(crate) mod profiles;
pub(crate) mod segments;
pub(crate) mod service;
pub(crate) mod suppressions;
pub(crate) mod tracking;

/// An area's routes with their documentation: added only through `utoipa_axum::routes!`,
/// so nothing is served undocumented.
pub(crate) type Area = OpenApiRouter<AppState>;

/// Every area of the API.
fn areas() -> [Area; 12] {
    [
        tracking::routes(),
        profiles::routes(),
        analytics::routes(),
        segments::routes(),
        destinations::routes(),
        journeys::routes(),
        messages::routes(),
        links::routes(),
        hooks::routes(),
        suppressions::routes(),
        broadcasts::routes(),
        service::routes(),
    ]
}

/// The API's router and the OpenAPI document describing exactly it.
pub(crate) fn router_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = areas()
        .into_iter()
        .fold(
            OpenApiRouter::with_openapi(doc::ApiDoc::openapi()),
            Area::merge,
        )
        .split_for_parts();
    doc::add_edge_answers(&mut document);
    (router, document)
}
