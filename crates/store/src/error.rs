use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("schema migration failed: {0}")]
    Migration(#[from] refinery::Error),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
    /// A text a person typed is longer than it may be.
    #[error("{field}: {bytes} bytes long, at most {max} allowed")]
    TooLong {
        field: &'static str,
        bytes: usize,
        max: usize,
    },
    /// The change clashes with what is stored (a taken name, a segment others use).
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The backend cannot take writes now (locked, restarting); retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// True when retrying later may succeed (the database is busy, restarting or out of
    /// connections), so the HTTP edge answers 503 with `Retry-After` rather than 500.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::Unavailable(_) => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::SystemIoFailure
            ),
            StoreError::Postgres(e) => {
                use postgres::error::SqlState;
                e.is_closed()
                    || e.as_db_error().is_none()
                    || e.code().is_some_and(|code| {
                        [
                            SqlState::LOCK_NOT_AVAILABLE,
                            SqlState::T_R_SERIALIZATION_FAILURE,
                            SqlState::T_R_DEADLOCK_DETECTED,
                            SqlState::TOO_MANY_CONNECTIONS,
                            SqlState::ADMIN_SHUTDOWN,
                            SqlState::CRASH_SHUTDOWN,
                            SqlState::CANNOT_CONNECT_NOW,
                        ]
                        .contains(code)
                    })
            }
            _ => false,
        }
    }
}

impl StoreError {
    /// The catalogue's code for this error wherever it reaches a person: the HTTP API's
    /// answer and the console's page take their status from it, so a store error means
    /// the same thing at both (a taken name is 409 in both, a held lock 503).
    pub fn code(&self) -> prossimo_model::ErrorCode {
        use prossimo_model::ErrorCode;
        match self {
            StoreError::Invalid(_) => ErrorCode::BadRequest,
            StoreError::TooLong { .. } => ErrorCode::InvalidField,
            StoreError::Conflict(_) => ErrorCode::Conflict,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            e if e.is_transient() => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// The longest name of a segment, destination, source or admin token, in bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// The longest segment description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 2_000;
/// The longest segment definition or event filter, in bytes: a page of conditions is a few
/// KB; the parser and the console's editor need not take megabytes.
pub const MAX_DEFINITION_BYTES: usize = 16 * 1024;
/// The longest destination URL, in bytes.
pub const MAX_URL_BYTES: usize = 2_048;

/// `value` of `field` fits in `max` bytes.
/// Refuses a text longer than `max` bytes, naming its field.
pub fn bounded(field: &'static str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.len() > max {
        return Err(StoreError::TooLong {
            field,
            bytes: value.len(),
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use prossimo_model::ErrorCode;

    use super::*;

    #[test]
    fn each_store_error_has_one_code_at_every_edge() {
        let cases = [
            (StoreError::Invalid("x".into()), ErrorCode::BadRequest),
            (
                StoreError::TooLong {
                    field: "name",
                    bytes: 300,
                    max: 200,
                },
                ErrorCode::InvalidField,
            ),
            (StoreError::Conflict("taken".into()), ErrorCode::Conflict),
            (StoreError::NotFound("segment".into()), ErrorCode::NotFound),
            (
                StoreError::Unavailable("locked".into()),
                ErrorCode::Unavailable,
            ),
            (StoreError::Corrupt("row".into()), ErrorCode::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
        }
    }
}
