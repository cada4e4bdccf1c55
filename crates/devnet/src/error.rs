use thiserror::Error;

/// Errors of the devnet.
#[derive(Debug, Error)]
pub enum Error {
    /// No anvil binary.
    #[error(
        "anvil not found: run `npm install` at the repository root (it installs @foundry-rs/anvil-linux-amd64), or set SEXTANT_ANVIL"
    )]
    AnvilNotFound,
    /// A devnet from this state directory is still running.
    #[error("a devnet is already running from {state_dir} (pid {pid}); stop it with `sextant devnet down`")]
    AlreadyRunning {
        /// Its pid.
        pid: u32,
        /// The state directory.
        state_dir: String,
    },
    /// anvil did not answer in time.
    #[error("anvil did not answer at {rpc_url}; its log ends: {log}")]
    NotReady {
        /// Where it was asked.
        rpc_url: String,
        /// The last lines of its log.
        log: String,
    },
    /// A file could not be read or written, or a process not started.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// A JSON-RPC call failed.
    #[error("json-rpc {method} at {url}: {message}")]
    Rpc {
        /// Endpoint.
        url: String,
        /// Method called.
        method: String,
        /// What went wrong.
        message: String,
    },
    /// A state record is malformed.
    #[error("devnet state: {0}")]
    State(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
