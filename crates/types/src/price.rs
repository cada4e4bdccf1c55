use serde::{Deserialize, Serialize};

/// A price in quote-token units per one unit of the base token (e.g. USDC per WETH).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(pub f64);

impl Price {
    /// The quote value of `base_units` at this price.
    pub fn value_of(self, base_units: f64) -> f64 {
        self.0 * base_units
    }

    /// The base quantity bought by `quote_units` at this price.
    pub fn quantity_for(self, quote_units: f64) -> f64 {
        quote_units / self.0
    }
}
