use crate::{Decision, FlowOutcome, PortfolioView};
use serde::{Serialize, de::DeserializeOwned};
use sextant_market::MarketView;
use sextant_types::{AmountSpec, Intent};
use std::fmt::Debug;

/// A strategy: immutable parameters (`self`) plus a persisted state machine (`State`).
///
/// Everything a strategy needs to resume lives in `State`, which is serialisable: an engine may save it after any
/// step and a fresh process may restore it and continue exactly where it stopped. Strategies emit intents and never
/// see calldata, balances on chain or simulated fills directly; they learn what happened through `on_outcome`.
pub trait Strategy {
    /// The strategy's persisted state.
    type State: Serialize + DeserializeOwned + Clone + Debug + PartialEq;

    /// A short name for reports.
    fn name(&self) -> String;

    /// The state before the first step, for the assets of `market` (only the asset list is meaningful here).
    fn init(&self, market: &MarketView) -> Self::State;

    /// One step: read the market and portfolio, update the state, push zero or more intents onto `out`.
    fn on_step(&self, state: &mut Self::State, market: &MarketView, portfolio: &PortfolioView, out: &mut Vec<Intent>);

    /// Told when an intent it emitted has completed or failed.
    fn on_outcome(&self, _state: &mut Self::State, _outcome: &FlowOutcome) {}

    /// The decisions explained since the last call, taken out of the state (engines call it after each step and
    /// put them in the decision log). Strategies that explain nothing keep the default.
    fn take_decisions(&self, _state: &mut Self::State) -> Vec<Decision> {
        Vec::new()
    }

    /// Intents that unwind every position, in a safe order. The default sells every holding back to the quote
    /// token; strategies with LPs, loans or vault shares override it and sort with `Intent::sort_for_unwind`.
    fn teardown(
        &self,
        _state: &mut Self::State,
        market: &MarketView,
        portfolio: &PortfolioView,
        out: &mut Vec<Intent>,
    ) {
        for (position, asset) in portfolio.positions.iter().zip(&market.assets) {
            if position.quantity > 0.0 {
                out.push(Intent::Swap {
                    sell: asset.base.clone(),
                    buy: asset.quote.clone(),
                    amount: AmountSpec::All,
                    max_slippage_bps: u32::MAX,
                });
            }
        }
        Intent::sort_for_unwind(out);
    }
}
