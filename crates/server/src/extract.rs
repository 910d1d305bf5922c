//! Extractors shared by the API's handlers.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::{ApiError, AppState};

/// A request with a valid admin token (`Authorization: Bearer <token>`). A handler that
/// takes it answers only admins; anyone else gets the catalogue's 401 before any other
/// part of the request is looked at.
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.trim()
                    .strip_prefix("Bearer ")
                    .or_else(|| v.trim().strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "an admin token is required: Authorization: Bearer <token>".into(),
                )
            })?
            .to_owned();
        let store = state.store.clone();
        if tokio::task::spawn_blocking(move || store.verify_admin_token(&token)).await?? {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized(
                "unknown or revoked admin token".into(),
            ))
        }
    }
}
