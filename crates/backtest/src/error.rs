use thiserror::Error;

/// Errors from configuring or running a backtest.
#[derive(Debug, Error)]
pub enum Error {
    /// The TOML could not be parsed or has unknown keys / wrong types (the message names line and key).
    #[error("{path}: {message}")]
    ConfigSyntax {
        /// Config file (or `<config>`).
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A config value is out of range.
    #[error("{path}: {key} {message}")]
    ConfigValue {
        /// Config file.
        path: String,
        /// Dotted key.
        key: String,
        /// What was expected and what was found.
        message: String,
    },
    /// Market data could not be loaded or generated.
    #[error(transparent)]
    Data(#[from] sextant_data::Error),
    /// A saved snapshot does not fit this backtest.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// A parameter grid is malformed.
    #[error("grid: {0}")]
    Grid(String),
    /// A stress run cannot be made.
    #[error("stress: {0}")]
    Stress(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
