use thiserror::Error;

/// Errors of the execution layer.
#[derive(Debug, Error)]
pub enum Error {
    /// No key of that name in the keystore directory.
    #[error("no key named {name:?} in {dir}")]
    NoSuchKey {
        /// Key name.
        name: String,
        /// Keystore directory.
        dir: String,
    },
    /// A key of that name exists already.
    #[error("a key named {name:?} already exists in {dir}; choose another name")]
    KeyExists {
        /// Key name.
        name: String,
        /// Keystore directory.
        dir: String,
    },
    /// The password does not open the key.
    #[error("wrong password for key {0:?}")]
    WrongPassword(String),
    /// Bad input: a malformed private key, an invalid name, an empty password.
    #[error("{0}")]
    Invalid(String),
    /// A keystore file could not be read, written or decrypted.
    #[error("keystore {path}: {message}")]
    Keystore {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The journal (SQLite) failed or refused.
    #[error("journal {0}")]
    Journal(String),
    /// Another runner holds the deployment.
    #[error("{holder} (pid {pid}, heartbeat {age_ms} ms ago) is running this deployment; a second runner is refused")]
    Locked {
        /// Who holds it.
        holder: String,
        /// Its pid.
        pid: u32,
        /// Age of its last heartbeat.
        age_ms: i64,
    },
    /// The stored state changed under us.
    #[error("strategy state changed under this runner (expected version {expected}); is another runner writing?")]
    Conflict {
        /// The version this runner held.
        expected: u64,
    },
    /// A chain-layer failure (RPC, registry, encoding).
    #[error(transparent)]
    Rpc(#[from] sextant_chain::Error),
    /// Something about the chain's answers is wrong.
    #[error("{0}")]
    Chain(String),
    /// The Safe is missing, not a Safe, or not usable by this key.
    #[error("{0}")]
    Safe(String),
    /// A call would revert in simulation (nothing was signed); the reason is decoded.
    #[error("{0}")]
    Reverted(String),
    /// A transaction was mined and reverted: the step did not happen.
    #[error("{0}")]
    RevertedOnChain(String),
    /// A step's transactions can no longer be mined (their nonce was used by something else); the next attempt
    /// checks they did not execute before signing anew.
    #[error("{0}")]
    Dropped(String),
    /// The configured fee cap is below what the chain asks.
    #[error("fee cap {cap} wei/gas is below the base fee {base_fee} + priority {priority}; waiting for fees to fall")]
    FeeCap {
        /// The cap.
        cap: u128,
        /// The base fee.
        base_fee: u128,
        /// The priority fee.
        priority: u128,
    },
    /// Signing failed.
    #[error("signing: {0}")]
    Signing(String),
    /// The off-chain checker refused a call the permissions module would refuse (nothing was signed).
    #[error("{0}")]
    Policy(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
