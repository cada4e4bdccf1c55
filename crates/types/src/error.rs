use thiserror::Error;

/// Errors from constructing or converting domain values.
#[derive(Debug, Error, PartialEq)]
pub enum Error {
    /// A human-unit quantity could not be represented in a token's base units.
    #[error("amount {value} of {symbol} is not representable: {reason}")]
    Unrepresentable {
        /// The offending human-unit value.
        value: f64,
        /// Symbol of the token.
        symbol: String,
        /// Why it cannot be represented.
        reason: &'static str,
    },
    /// A token was declared with more decimals than any ERC-20 uses.
    #[error("token {symbol}: decimals must be <= 36, got {decimals}")]
    Decimals {
        /// Symbol of the token.
        symbol: String,
        /// The declared decimals.
        decimals: u8,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
