//! Every error the HTTP API returns, as `{"code", "message", "details"}` with its status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prossimo_model::{BatchError, ErrorCode, FieldError};
use prossimo_store::StoreError;
use serde::Serialize;

use crate::pipeline::SubmitError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("this endpoint does not answer that method")]
    MethodNotAllowed,
    /// One field of a request body cannot be taken as it is.
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    /// A refusal at the HTTP level (a limit, a body too slow, an extractor's rejection),
    /// with its status.
    #[error("{message}")]
    Http { status: StatusCode, message: String },
    /// A segment definition or filter that does not parse or type-check, with where.
    #[error("{message}")]
    Definition {
        field: &'static str,
        /// The full explanation, with the source line and a caret.
        message: String,
        reason: String,
        line: u32,
        column: u32,
    },
    /// The request clashes with the current state (a taken name, a server not set up
    /// for it).
    #[error("{0}")]
    Conflict(String),
    /// A browser request from a page its source does not accept (CORS).
    #[error("{0}")]
    OriginNotAllowed(String),
    #[error("the server is busy; retry shortly")]
    Overloaded,
    #[error("storage is unavailable; retry shortly")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: String,
    details: Vec<Detail>,
}

/// One problem: a field of a message in a batch, or a position in a definition.
#[derive(Serialize)]
#[serde(untagged)]
enum Detail {
    Field(FieldError),
    Position {
        field: &'static str,
        reason: String,
        line: u32,
        column: u32,
    },
}

/// Seconds a client should wait before retrying a 429/503.
const RETRY_AFTER_SECONDS: &str = "1";

impl ApiError {
    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Batch(b) => (StatusCode::BAD_REQUEST, b.code.as_str()),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Http { status, .. } => (*status, code_for_status(*status)),
            ApiError::Field { .. } => (StatusCode::BAD_REQUEST, "invalid_field"),
            ApiError::Definition { .. } => (StatusCode::BAD_REQUEST, "invalid_definition"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::OriginNotAllowed(_) => (StatusCode::FORBIDDEN, "origin_not_allowed"),
            ApiError::Overloaded => (StatusCode::TOO_MANY_REQUESTS, "overloaded"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The catalogue's code for a bare HTTP status.
fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "overloaded",
        431 => "headers_too_large",
        503 => "unavailable",
        500..=599 => "internal",
        _ => "bad_request",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let details = match &self {
            ApiError::Batch(b) => b.details.iter().cloned().map(Detail::Field).collect(),
            ApiError::Definition {
                field,
                reason,
                line,
                column,
                ..
            } => vec![Detail::Position {
                field,
                reason: reason.clone(),
                line: *line,
                column: *column,
            }],
            ApiError::Field { field, reason } => vec![Detail::Field(FieldError {
                index: None,
                field: (*field).to_owned(),
                reason: reason.clone(),
            })],
            _ => Vec::new(),
        };
        let body = Body {
            code,
            message: self.to_string(),
            details,
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Overloaded | ApiError::Unavailable) {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(msg) => ApiError::BadRequest(msg),
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(msg) => ApiError::Conflict(msg),
            e @ StoreError::TooLong { field, .. } => ApiError::Field {
                field,
                reason: e.to_string(),
            },
            e if e.is_transient() => {
                tracing::warn!(error = %e, "storage unavailable");
                ApiError::Unavailable
            }
            e => {
                tracing::error!(error = %e, "storage error");
                ApiError::Internal
            }
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Overloaded => ApiError::Overloaded,
            SubmitError::Stopped => ApiError::Unavailable,
            SubmitError::Store(e) if e.is_transient() => ApiError::Unavailable,
            // A failed commit stored nothing; the client may retry the same messages.
            SubmitError::Store(e) => {
                tracing::error!(error = %e, "commit failed");
                ApiError::Unavailable
            }
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        tracing::error!(error = %e, "blocking task failed");
        ApiError::Internal
    }
}

pub fn batch_error(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::Batch(BatchError::new(code, message))
}
