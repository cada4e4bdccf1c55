use crate::{ChainId, Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies a token on a chain: its contract address as a lowercase hex string, or a symbol for simulated markets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TokenId {
    /// Chain the token lives on.
    pub chain: ChainId,
    /// `0x…` contract address on real chains; the symbol on [`ChainId::SIMULATED`].
    pub address: String,
}

/// A fungible token with its decimals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Token {
    /// Where the token lives.
    pub id: TokenId,
    /// Ticker, for humans.
    pub symbol: String,
    /// ERC-20 decimals: one unit is `10^decimals` base units.
    pub decimals: u8,
}

impl Token {
    /// A token on a real chain.
    ///
    /// # Errors
    /// When `decimals` is larger than 36.
    pub fn new(chain: ChainId, address: impl Into<String>, symbol: impl Into<String>, decimals: u8) -> Result<Self> {
        let symbol = symbol.into();
        if decimals > 36 {
            return Err(Error::Decimals { symbol, decimals });
        }
        Ok(Token { id: TokenId { chain, address: address.into().to_ascii_lowercase() }, symbol, decimals })
    }

    /// A token of the offline simulation, identified by its symbol.
    ///
    /// # Errors
    /// When `decimals` is larger than 36.
    pub fn simulated(symbol: impl Into<String>, decimals: u8) -> Result<Self> {
        let symbol = symbol.into();
        Token::new(ChainId::SIMULATED, symbol.clone(), symbol, decimals)
    }

    /// `10^decimals` as a float, the scale between human units and base units.
    pub fn scale(&self) -> f64 {
        10f64.powi(i32::from(self.decimals))
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.symbol)
    }
}
