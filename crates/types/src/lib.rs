//! Sextant's domain vocabulary: tokens, amounts, prices, chain ids, and the intents a strategy emits. No I/O, no async.

mod amount;
mod chain;
mod error;
mod intent;
mod price;
mod token;

pub use amount::Amount;
pub use chain::ChainId;
pub use error::{Error, Result};
pub use intent::{AmountSpec, Fill, Intent, IntentKind, LendingMarket, LpPositionId, PoolRef, VaultRef};
pub use price::Price;
pub use token::{Token, TokenId};
