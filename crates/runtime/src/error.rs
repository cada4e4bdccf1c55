/// Errors of a deployment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config is malformed or inconsistent with the chain.
    #[error("config {0}")]
    Config(String),
    /// The deployment cannot start: the RPC is unreachable or serves another chain.
    #[error("{0}")]
    Setup(String),
    /// The execution layer failed (journal, Safe, signing, RPC).
    #[error(transparent)]
    Exec(#[from] sextant_exec::Error),
    /// The chain layer failed (registry, RPC).
    #[error(transparent)]
    Chain(#[from] sextant_chain::Error),
    /// The strategy could not be built or its state read.
    #[error("strategy: {0}")]
    Strategy(String),
    /// The metrics endpoint could not start.
    #[error("metrics endpoint {addr}: {message}")]
    Metrics {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
}

impl Error {
    /// Whether the error may clear by itself (an RPC outage, fees above the cap): the runner keeps going.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Exec(e) => sextant_exec::is_transient(e),
            Error::Chain(e) => e.rpc_failure() == Some(sextant_chain::RpcFailure::Transient),
            _ => false,
        }
    }
}

/// Result of this crate.
pub type Result<T> = std::result::Result<T, Error>;
