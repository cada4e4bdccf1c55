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
    /// The transaction would revert in simulation, or reverted on chain; the message has the decoded reason.
    Reverted,
}

impl ExecErrorKind {
    /// The kind's name as reports write it (`slippage_exceeded`), the same as its serialised form.
    pub fn name(self) -> &'static str {
        match self {
            ExecErrorKind::Transient => "transient",
            ExecErrorKind::SlippageExceeded => "slippage_exceeded",
            ExecErrorKind::InsufficientBalance => "insufficient_balance",
            ExecErrorKind::Unsupported => "unsupported",
            ExecErrorKind::Invalid => "invalid",
            ExecErrorKind::Reverted => "reverted",
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_serialised_form() {
        for kind in [
            ExecErrorKind::Transient,
            ExecErrorKind::SlippageExceeded,
            ExecErrorKind::InsufficientBalance,
            ExecErrorKind::Unsupported,
            ExecErrorKind::Invalid,
            ExecErrorKind::Reverted,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
    }
}
