use serde::{Deserialize, Serialize};
use sextant_market::MarketView;
use sextant_types::{LpPositionId, Token};

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
    /// Open concentrated-liquidity positions, each in a pool of one asset against the quote token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lp: Vec<LpView>,
    /// Positions in lending markets and vaults, one per market that holds anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lending: Vec<LendingPositionView>,
}

/// A position in a lending market or an ERC-4626 vault, in the market's asset, interest included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LendingPositionView {
    /// The market's id (as in `MarketView::lending`).
    pub market: String,
    /// Supplied, with the interest earned so far, in the asset's human units.
    pub supplied: f64,
    /// Borrowed, with the interest owed so far.
    pub borrowed: f64,
    /// Vault shares held (ERC-4626 markets; 0 elsewhere), human units.
    pub shares: f64,
    /// Rewards earned and not yet claimed, in the quote token.
    pub rewards: f64,
    /// What the position is worth net of its debt, in the quote token, rewards included.
    pub value_quote: f64,
}

/// An open LP position as the strategy sees it: its range and what it holds now, in human units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LpView {
    /// The position's id (what `LpClose` and `LpCollectFees` name).
    pub id: LpPositionId,
    /// The asset of its pool (index into the market view's assets); the pool's other token is the quote.
    pub asset: usize,
    /// Lower tick of the range.
    pub tick_lower: i32,
    /// Upper tick of the range.
    pub tick_upper: i32,
    /// Liquidity.
    pub liquidity: u128,
    /// The asset the liquidity would return if withdrawn now.
    pub amount_base: f64,
    /// The quote token it would return.
    pub amount_quote: f64,
    /// Fees earned and not yet collected, in the asset.
    pub fees_base: f64,
    /// Fees earned and not yet collected, in the quote token.
    pub fees_quote: f64,
    /// Whether the pool's current tick is inside the range (`tick_lower <= tick < tick_upper`).
    pub in_range: bool,
}

impl LpView {
    /// What the position is worth at `price` (quote per asset), uncollected fees included.
    pub fn value(&self, price: f64) -> f64 {
        (self.amount_base + self.fees_base) * price + self.amount_quote + self.fees_quote
    }
}

impl PortfolioView {
    /// Cash plus every position and LP position at its asset's latest close, plus lending positions' net value.
    pub fn equity(&self, market: &MarketView) -> f64 {
        let price = |asset: usize| market.assets.get(asset).and_then(|a| a.last_close).unwrap_or(0.0);
        self.cash
            + self
                .positions
                .iter()
                .enumerate()
                .map(|(i, p)| if p.quantity > 0.0 { p.quantity * price(i) } else { 0.0 })
                .sum::<f64>()
            + self.lp.iter().map(|l| l.value(price(l.asset))).sum::<f64>()
            + self.lending.iter().map(|l| l.value_quote).sum::<f64>()
    }
}
