//! Every error the HTTP API returns, as the catalogue's `{"code", "message", "details",
//! "doc"}` ([`ErrorBody`]) with the code's status ([`ErrorCode::status`]).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prossimo_model::{BatchError, ErrorBody, ErrorCode, FieldError};
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
    /// A refusal at the HTTP level (a limit, a body too slow, an extractor's rejection).
    #[error("{message}")]
    Http { code: ErrorCode, message: String },
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
    /// A journey with problems, each naming its step and field.
    #[error("{} problem(s) in the journey; the first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Journey(Vec<prossimo_journeys::Problem>),
    /// A message (template) with problems, each naming its field and position.
    #[error("{} problem(s) in the message; the first: {}", .0.len(), .0.first().map(|p| format!("{}: {}", p.field, p.reason)).unwrap_or_default())]
    Message(Vec<prossimo_messages::Problem>),
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

/// One problem: a field of a message in a batch, a position in a definition, or a
/// journey's step and field.
#[derive(Serialize)]
#[serde(untagged)]
enum Detail {
    Field(FieldError),
    Journey(prossimo_journeys::Problem),
    Message(prossimo_messages::Problem),
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
    /// The catalogue's code for this error.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            ApiError::Batch(b) => b.code,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::Field { .. } => ErrorCode::InvalidField,
            ApiError::Http { code, .. } => *code,
            ApiError::Definition { .. } | ApiError::Journey(_) | ApiError::Message(_) => {
                ErrorCode::InvalidDefinition
            }
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::OriginNotAllowed(_) => ErrorCode::OriginNotAllowed,
            ApiError::Overloaded => ErrorCode::Overloaded,
            ApiError::Unavailable => ErrorCode::Unavailable,
            ApiError::Internal => ErrorCode::Internal,
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = (self.status(), self.code());
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
            ApiError::Journey(problems) => problems.iter().cloned().map(Detail::Journey).collect(),
            ApiError::Message(problems) => problems.iter().cloned().map(Detail::Message).collect(),
            ApiError::Field { field, reason } => vec![Detail::Field(FieldError {
                index: None,
                field: (*field).to_owned(),
                reason: reason.clone(),
            })],
            _ => Vec::new(),
        };
        let body = ErrorBody::new(code, self.to_string(), details);
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
        match (e.code(), e) {
            (_, StoreError::Invalid(msg)) => ApiError::BadRequest(msg),
            (_, StoreError::NotFound(what)) => ApiError::NotFound(format!("{what} not found")),
            (_, StoreError::Conflict(msg)) => ApiError::Conflict(msg),
            (_, e @ StoreError::TooLong { field, .. }) => ApiError::Field {
                field,
                reason: e.to_string(),
            },
            (ErrorCode::Unavailable, e) => {
                tracing::warn!(error = %e, "storage unavailable");
                ApiError::Unavailable
            }
            (_, e) => {
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
