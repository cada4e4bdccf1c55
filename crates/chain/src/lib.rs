//! The chain layer: a registry of per-chain addresses, contract bindings (alloy `sol!`), calldata for the protocol
//! actions intents become, Safe transactions, revert decoding, and a blocking JSON-RPC facade over alloy's provider.
//! It knows nothing of strategies; the execution layer (`sextant-exec`) drives it.

pub mod bindings;
pub mod calls;
mod error;
pub mod lending;
pub mod pool_history;
pub mod registry;
pub mod revert;
mod rpc;
pub mod safe;

pub use alloy;
pub use calls::Call;
pub use error::{Error, Result, RpcFailure};
pub use registry::{ChainEntry, Registry, parse_address};
pub use rpc::{FeeQuote, Rpc};
