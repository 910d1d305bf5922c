use serde::Serialize;

/// Stable, machine-readable error codes of the ingestion API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedEncoding => "unsupported_encoding",
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
