use thiserror::Error;

/// Errors from reading or generating market data.
#[derive(Debug, Error)]
pub enum Error {
    /// The file could not be opened or read (the cause follows in the error chain).
    #[error("cannot read {path}")]
    Io {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A row or header is malformed; `line` is 1-based as an editor shows it.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// File path (or `<input>`).
        path: String,
        /// 1-based line number.
        line: u64,
        /// What was expected and what was found.
        message: String,
    },
    /// A parameter of a generator or loader is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
