//! Execution: the AccountManager (encrypted keystores and the `Signer` role), the TransactionManager (simulate,
//! sign and price Safe transactions), the ExecutionManager (nonces, broadcast, receipts, fee bumps, reorgs) with
//! its SQLite journal, and the live `Executor` that carries out a strategy's intents through them.

mod account;
mod error;
pub mod journal;
mod live;
mod manager;
mod tx;

pub use account::{KeyInfo, Keystore, LocalKey, Signer};
pub use error::{Error, Result};
pub use live::{LiveExecutor, LiveSettings, Plan, SwapPlan};
pub use manager::{ExecSettings, ExecutionManager, call_key, crash_point, is_transient};
pub use tx::{Route, SafeInfo, SignedTx, TransactionManager, TxSettings, view};
