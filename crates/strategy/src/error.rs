use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why an intent could not be carried out, classified so the flow knows whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecErrorKind {
    /// Transient: a node timed out, a transaction was dropped, the block was full. Retrying may succeed.
    Transient,
    /// The quote is worse than the intent's slippage tolerance (the swap would revert on chain).
    SlippageExceeded,
    /// Not enough balance for the intent.
    InsufficientBalance,
    /// The executor cannot do this kind of intent (e.g. an LP intent on a spot-only backtest).
    Unsupported,
    /// The result did not match what was prepared (validation failed).
    Invalid,
}

/// An execution failure.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("{kind:?}: {message}")]
pub struct ExecError {
    /// Classification.
    pub kind: ExecErrorKind,
    /// What happened, for logs and reports.
    pub message: String,
}

impl ExecError {
    /// An error of `kind` with a message.
    pub fn new(kind: ExecErrorKind, message: impl Into<String>) -> Self {
        ExecError { kind, message: message.into() }
    }

    /// Whether retrying the same intent may succeed.
    pub fn recoverable(&self) -> bool {
        matches!(self.kind, ExecErrorKind::Transient)
    }
}
