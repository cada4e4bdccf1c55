use thiserror::Error;

/// A strategy configuration error, naming the key at fault.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{key} {message}")]
pub struct Error {
    /// Dotted key, e.g. `strategy.period`.
    pub key: String,
    /// What was expected and what was found, e.g. `must be >= 2, got 0`.
    pub message: String,
}

impl Error {
    /// An error for `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error { key: key.into(), message: message.into() }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
