//! The HTTP API, one module an area; each owns its handlers and its routes.

use axum::Router;
use axum::routing::MethodRouter;

use crate::AppState;

pub(crate) mod analytics;
pub(crate) mod browser;
pub(crate) mod destinations;
pub(crate) mod profiles;
pub(crate) mod segments;
pub(crate) mod tracking;

/// An area's routes, with their paths remembered so the OpenAPI document can be checked
/// against what is served.
pub(crate) struct Routes {
    pub(crate) router: Router<AppState>,
    pub(crate) paths: Vec<&'static str>,
}

impl Routes {
    pub(crate) fn new() -> Routes {
        Routes {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    pub(crate) fn at(mut self, path: &'static str, handler: MethodRouter<AppState>) -> Routes {
        self.router = self.router.route(path, handler);
        self.paths.push(path);
        self
    }
}

/// Every area of the API.
pub(crate) fn areas() -> [Routes; 5] {
    [
        tracking::routes(),
        profiles::routes(),
        analytics::routes(),
        segments::routes(),
        destinations::routes(),
    ]
}
