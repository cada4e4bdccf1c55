use serde::{Deserialize, Serialize};
use std::fmt;

/// An EIP-155 chain id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChainId(pub u64);

impl ChainId {
    /// Ethereum mainnet.
    pub const ETHEREUM: ChainId = ChainId(1);
    /// Optimism.
    pub const OPTIMISM: ChainId = ChainId(10);
    /// Base.
    pub const BASE: ChainId = ChainId(8453);
    /// Arbitrum One.
    pub const ARBITRUM: ChainId = ChainId(42161);
    /// Avalanche C-chain.
    pub const AVALANCHE: ChainId = ChainId(43114);
    /// The local devnet (anvil's default chain id).
    pub const DEVNET: ChainId = ChainId(31337);
    /// Sextant's offline simulation "chain" used by backtests on synthetic or file data.
    pub const SIMULATED: ChainId = ChainId(0);

    /// A human name for well-known chains.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "ethereum",
            10 => "optimism",
            8453 => "base",
            42161 => "arbitrum",
            43114 => "avalanche",
            31337 => "devnet",
            0 => "simulated",
            _ => return None,
        })
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "chain {}", self.0),
        }
    }
}
