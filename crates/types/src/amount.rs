use crate::{Error, Result, Token};
use serde::{Deserialize, Serialize};

/// A token amount in base units (wei-like), exact. u128 holds 3.4e38 base units: 3.4e20 whole tokens at 18 decimals.
///
/// Serialised as a decimal string (`"1500000"`), as JSON-RPC tooling writes big integers: 128-bit numbers lose
/// precision in JavaScript and cannot pass through serde's buffering of internally tagged enums (`Intent`).
/// Plain integers are accepted when reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Amount(pub u128);

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Amount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative integer amount of base units, as a string or a number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Amount, E> {
                v.parse::<u128>().map(Amount).map_err(|_| E::custom(format!("{v:?} is not a base-unit amount")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Amount, E> {
                Ok(Amount(u128::from(v)))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> std::result::Result<Amount, E> {
                Ok(Amount(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Amount, E> {
                u128::try_from(v).map(Amount).map_err(|_| E::custom("amounts cannot be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

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
    fn serialises_as_a_string_and_survives_tagged_enums() {
        let big = Amount(u128::MAX);
        assert_eq!(serde_json::to_string(&big).unwrap(), format!("\"{}\"", u128::MAX));
        assert_eq!(serde_json::from_str::<Amount>("\"340282366920938463463374607431768211455\"").unwrap(), big);
        assert_eq!(serde_json::from_str::<Amount>("12").unwrap(), Amount(12));
        assert!(serde_json::from_str::<Amount>("-1").is_err());
        let usdc = Token::simulated("USDC", 6).unwrap();
        let intent = crate::Intent::Swap {
            sell: usdc.clone(),
            buy: usdc,
            amount: crate::AmountSpec::Exact(Amount(u128::MAX - 1)),
            max_slippage_bps: 50,
        };
        let back: crate::Intent = serde_json::from_str(&serde_json::to_string(&intent).unwrap()).unwrap();
        assert_eq!(back, intent);
    }

    #[test]
    fn rejects_negative_and_nan() {
        let weth = Token::simulated("WETH", 18).unwrap();
        assert!(Amount::from_units(-1.0, &weth).is_err());
        assert!(Amount::from_units(f64::NAN, &weth).is_err());
        assert!(Amount::from_units(1e30, &weth).is_err());
    }
}
