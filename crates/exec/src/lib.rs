//! Execution: the AccountManager (encrypted keystores and the `Signer` role), and, as the live-execution work lands,
//! the TransactionManager and the ExecutionManager with its journal.

mod account;
mod error;
pub mod journal;

pub use account::{KeyInfo, Keystore, LocalKey, Signer};
pub use error::{Error, Result};
