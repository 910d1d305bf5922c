//! The HTTP API, one module an area; each owns its handlers and its routes.

pub(crate) mod analytics;
pub(crate) mod browser;
pub(crate) mod destinations;
pub(crate) mod profiles;
pub(crate) mod segments;
pub(crate) mod tracking;
