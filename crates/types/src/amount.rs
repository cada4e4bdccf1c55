use crate::{Error, Result, Token};
use serde::{Deserialize, Serialize};

/// A token amount in base units (wei-like), exact. u128 holds 3.4e38 base units: 3.4e20 whole tokens at 18 decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(pub u128);

impl Amount {
    /// Zero base units.
    pub const ZERO: Amount = Amount(0);

    /// Converts a human-unit quantity (`1.5` WETH) to base units, rounding down so a strategy never asks for more than
    /// it computed.
    ///
    /// # Errors
    /// When `units` is negative, not finite, or too large for u128.
    pub fn from_units(units: f64, token: &Token) -> Result<Self> {
        let bad = |reason| Error::Unrepresentable { value: units, symbol: token.symbol.clone(), reason };
        if !units.is_finite() {
            return Err(bad("not a finite number"));
        }
        if units < 0.0 {
            return Err(bad("negative"));
        }
        let raw = (units * token.scale()).floor();
        if raw >= u128::MAX as f64 {
            return Err(bad("too large for 128 bits"));
        }
        Ok(Amount(raw as u128))
    }

    /// The amount in human units, as a float (lossy above 2^53 base units).
    pub fn to_units(self, token: &Token) -> f64 {
        self.0 as f64 / token.scale()
    }

    /// True when the amount is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_trip_and_round_down() {
        let usdc = Token::simulated("USDC", 6).unwrap();
        let a = Amount::from_units(1234.5678919, &usdc).unwrap();
        assert_eq!(a, Amount(1_234_567_891));
        assert_eq!(a.to_units(&usdc), 1234.567891);
    }

    #[test]
    fn rejects_negative_and_nan() {
        let weth = Token::simulated("WETH", 18).unwrap();
        assert!(Amount::from_units(-1.0, &weth).is_err());
        assert!(Amount::from_units(f64::NAN, &weth).is_err());
        assert!(Amount::from_units(1e30, &weth).is_err());
    }
}
