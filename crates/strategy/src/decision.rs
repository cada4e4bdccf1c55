use serde::{Deserialize, Serialize};

/// One decision a strategy explains: what it did (or declined to do), why, and the numbers it weighed. Strategies
/// that allocate between venues (the Stable Rotator) record one per move, per forced exit and per change of mind,
/// and the engines put them in the decision log of the JSON and HTML reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Step the decision was taken at.
    pub step: usize,
    /// Time of that step, unix milliseconds UTC.
    pub timestamp_ms: i64,
    /// What was done: `deposit`, `withdraw`, `move`, `claim` or `hold`.
    pub action: String,
    /// Market the money leaves (None for idle cash).
    pub from: Option<String>,
    /// Market the money goes to (None for cash).
    pub to: Option<String>,
    /// Amount, in the quote token.
    pub amount: f64,
    /// The extra yield expected over the strategy's horizon, in the quote token.
    pub expected_gain: f64,
    /// Gas and slippage expected, in the quote token.
    pub cost: f64,
    /// The rule that fired (e.g. `better_yield`, `market_frozen`, `tvl_below_min`, `gain_below_cost`).
    pub rule: String,
    /// The rule's numbers, in words.
    pub detail: String,
}
