use serde::{Deserialize, Serialize};
use sextant_market::MarketView;
use sextant_types::Token;

/// One asset's holding, in the same order as the market view's assets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionView {
    /// The asset.
    pub base: Token,
    /// Quantity held, in human units.
    pub quantity: f64,
    /// Average execution price of the open position, if any.
    pub entry_price: Option<f64>,
}

/// What a strategy knows of its own holdings: cash in the quote token and one position per asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioView {
    /// The quote token cash is held in (e.g. USDC).
    pub quote: Token,
    /// Cash, in quote units.
    pub cash: f64,
    /// Positions, indexed like `MarketView::assets`.
    pub positions: Vec<PositionView>,
}

impl PortfolioView {
    /// Cash plus every position at its asset's latest close.
    pub fn equity(&self, market: &MarketView) -> f64 {
        self.cash
            + self
                .positions
                .iter()
                .zip(&market.assets)
                .map(|(p, a)| if p.quantity > 0.0 { p.quantity * a.last_close.unwrap_or(0.0) } else { 0.0 })
                .sum::<f64>()
    }
}
