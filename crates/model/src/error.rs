use serde::Serialize;

/// Every error code the HTTP API and the console's JSON answers use, each once, with its
/// status and the section of `docs/errors.md` that explains it. The body is always
/// `{"code", "message", "details", "doc"}` ([`ErrorBody`]); the Segment SDKs read `code`
/// and `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON, or not the JSON shape of a message or batch.
    InvalidJson,
    /// One or more messages break the spec; `details` names each one.
    ValidationFailed,
    /// The batch or a message is larger than the configured limits.
    PayloadTooLarge,
    /// The body is compressed with an encoding we do not speak, or is corrupt.
    UnsupportedEncoding,
    UnsupportedMediaType,
    /// A request body field that cannot be taken as it is (too long, a private URL).
    InvalidField,
    /// A segment definition or filter that does not parse or type-check, with where.
    InvalidDefinition,
    BadRequest,
    Unauthorized,
    Forbidden,
    /// A browser request from a page its source does not accept (CORS).
    OriginNotAllowed,
    NotFound,
    MethodNotAllowed,
    /// The request body did not arrive in time.
    RequestTimeout,
    /// The request clashes with what is stored (a taken name).
    Conflict,
    UriTooLong,
    HeadersTooLarge,
    Unprocessable,
    /// The ingest queue is full: retry after `Retry-After`.
    Overloaded,
    /// Storage cannot take the request now: retry after `Retry-After`.
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::InvalidJson,
        ErrorCode::ValidationFailed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedEncoding,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::InvalidField,
        ErrorCode::InvalidDefinition,
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::OriginNotAllowed,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::Conflict,
        ErrorCode::UriTooLong,
        ErrorCode::HeadersTooLarge,
        ErrorCode::Unprocessable,
        ErrorCode::Overloaded,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedEncoding => "unsupported_encoding",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::InvalidDefinition => "invalid_definition",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Conflict => "conflict",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::Unprocessable => "unprocessable",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status this code is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson
            | ErrorCode::ValidationFailed
            | ErrorCode::UnsupportedEncoding
            | ErrorCode::InvalidField
            | ErrorCode::InvalidDefinition
            | ErrorCode::BadRequest => 400,
            ErrorCode::PayloadTooLarge => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::OriginNotAllowed => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::Conflict => 409,
            ErrorCode::UriTooLong => 414,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Unprocessable => 422,
            ErrorCode::Overloaded => 429,
            ErrorCode::HeadersTooLarge => 431,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }

    /// Where the code is explained: its section of `docs/errors.md`.
    pub fn doc(self) -> String {
        format!("docs/errors.md#{}", self.as_str())
    }

    /// The code for a bare HTTP status (a refusal made below the handlers).
    pub fn for_status(status: u16) -> ErrorCode {
        match status {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            408 => ErrorCode::RequestTimeout,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            414 => ErrorCode::UriTooLong,
            415 => ErrorCode::UnsupportedMediaType,
            422 => ErrorCode::Unprocessable,
            429 => ErrorCode::Overloaded,
            431 => ErrorCode::HeadersTooLarge,
            503 => ErrorCode::Unavailable,
            500..=599 => ErrorCode::Internal,
            _ => ErrorCode::BadRequest,
        }
    }
}

/// The one shape of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorBody<D: Serialize> {
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<D>,
    /// Where the code is explained (`docs/errors.md#<code>`).
    pub doc: String,
}

impl<D: Serialize> ErrorBody<D> {
    pub fn new(code: ErrorCode, message: impl Into<String>, details: Vec<D>) -> ErrorBody<D> {
        ErrorBody {
            code,
            message: message.into(),
            details,
            doc: code.doc(),
        }
    }
}

/// One problem with one field of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Position of the message in the batch (0 for single-message endpoints); absent for
    /// problems with the batch envelope itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub reason: String,
}

/// Why a whole request was refused. Nothing from a refused request is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct BatchError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<FieldError>,
}

impl BatchError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        BatchError {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn field(
        code: ErrorCode,
        index: Option<usize>,
        field: &str,
        reason: impl Into<String>,
    ) -> Self {
        let reason = reason.into();
        let message = match index {
            Some(i) => format!("message {i}: {field}: {reason}"),
            None => format!("{field}: {reason}"),
        };
        BatchError {
            code,
            message,
            details: vec![FieldError {
                index,
                field: field.to_owned(),
                reason,
            }],
        }
    }

    /// A validation failure summarising every field error found.
    pub fn validation(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [only] => match only.index {
                Some(i) => format!("message {i}: {}: {}", only.field, only.reason),
                None => format!("{}: {}", only.field, only.reason),
            },
            many => format!(
                "{} invalid fields; nothing from this request was stored",
                many.len()
            ),
        };
        BatchError {
            code: ErrorCode::ValidationFailed,
            message,
            details,
        }
    }
}
