use thiserror::Error;

/// What can go wrong computing analytics: always bad or insufficient input, never I/O.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum AnalyticsError {
    /// The input cannot support the computation (empty, too few customers, ...).
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    /// An input value is outside its domain (a negative time, a NaN amount, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A model fit did not converge; the partial result is reported, never hidden.
    #[error("fit did not converge: {0}")]
    NoConvergence(String),
}
