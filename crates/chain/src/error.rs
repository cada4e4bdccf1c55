use std::fmt;

/// How an RPC failure should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcFailure {
    /// The node could not be reached, timed out, was overloaded or answered garbage: retrying may help.
    Transient,
    /// The node refused the request (bad nonce, underpriced, insufficient funds...): retrying the same will not.
    Rejected,
    /// The call or transaction reverts; the revert is decoded in the message.
    Reverted,
}

impl fmt::Display for RpcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RpcFailure::Transient => "transient",
            RpcFailure::Rejected => "rejected",
            RpcFailure::Reverted => "reverted",
        })
    }
}

/// Errors of the chain layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The chain registry is malformed or lacks an entry.
    #[error("chain registry: {0}")]
    Registry(String),
    /// A chain the registry does not know.
    #[error("unknown chain {id}; the registry knows {known}")]
    UnknownChain {
        /// What was asked for.
        id: String,
        /// The chains known.
        known: String,
    },
    /// Not an address.
    #[error("{input:?} is not an address: {reason}")]
    BadAddress {
        /// The input.
        input: String,
        /// Why.
        reason: String,
    },
    /// A JSON-RPC request failed.
    #[error("{method} at {url} failed ({kind}): {message}")]
    Rpc {
        /// The endpoint.
        url: String,
        /// The JSON-RPC method.
        method: String,
        /// How to treat it.
        kind: RpcFailure,
        /// What the node said, with any revert decoded.
        message: String,
        /// Raw revert data, when the failure is a revert that carried some.
        revert_data: Option<alloy::primitives::Bytes>,
    },
    /// A read succeeded but its answer makes no sense (undecodable, or a state the contract cannot be in).
    #[error("cannot read {what}: {reason}")]
    Read {
        /// What was read.
        what: String,
        /// Why it is unusable.
        reason: String,
    },
    /// An intent cannot be turned into calls on this chain.
    #[error("cannot encode {intent}: {reason}")]
    Unsupported {
        /// The intent's kind.
        intent: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The RPC failure kind, when this is an RPC error.
    pub fn rpc_failure(&self) -> Option<RpcFailure> {
        match self {
            Error::Rpc { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// Result of the chain layer.
pub type Result<T> = std::result::Result<T, Error>;
