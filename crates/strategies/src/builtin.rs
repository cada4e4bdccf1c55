//! Every built-in strategy behind one type, for runners that take whichever a config names.

use crate::{DynamicLp, DynamicLpState, IndicatorState, IndicatorStrategy};
use serde::{Deserialize, Serialize};
use sextant_market::MarketView;
use sextant_strategy::{FlowOutcome, PortfolioView, Strategy};
use sextant_types::Intent;

/// A built-in strategy: an indicator strategy or Dynamic LP.
#[derive(Debug, Clone)]
pub enum BuiltIn {
    /// `rsi`, `ma_cross`, `bollinger`.
    Indicator(IndicatorStrategy),
    /// `dynamic_lp`.
    DynamicLp(DynamicLp),
}

/// The state of a [`BuiltIn`]. Untagged, so states stored before this type existed (an indicator strategy's) still
/// read: the two shapes have no field in common.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BuiltInState {
    /// An indicator strategy's state.
    Indicator(IndicatorState),
    /// Dynamic LP's state.
    DynamicLp(DynamicLpState),
}

impl Strategy for BuiltIn {
    type State = BuiltInState;

    fn name(&self) -> String {
        match self {
            BuiltIn::Indicator(s) => s.name(),
            BuiltIn::DynamicLp(s) => s.name(),
        }
    }

    fn init(&self, market: &MarketView) -> BuiltInState {
        match self {
            BuiltIn::Indicator(s) => BuiltInState::Indicator(s.init(market)),
            BuiltIn::DynamicLp(s) => BuiltInState::DynamicLp(s.init(market)),
        }
    }

    fn on_step(&self, state: &mut BuiltInState, market: &MarketView, portfolio: &PortfolioView, out: &mut Vec<Intent>) {
        match (self, state) {
            (BuiltIn::Indicator(s), BuiltInState::Indicator(st)) => s.on_step(st, market, portfolio, out),
            (BuiltIn::DynamicLp(s), BuiltInState::DynamicLp(st)) => s.on_step(st, market, portfolio, out),
            // A state of the other family (a journal reused with another config) decides nothing.
            _ => out.push(Intent::Hold { reason: "the stored state belongs to another strategy".into() }),
        }
    }

    fn on_outcome(&self, state: &mut BuiltInState, outcome: &FlowOutcome) {
        match (self, state) {
            (BuiltIn::Indicator(s), BuiltInState::Indicator(st)) => s.on_outcome(st, outcome),
            (BuiltIn::DynamicLp(s), BuiltInState::DynamicLp(st)) => s.on_outcome(st, outcome),
            _ => {}
        }
    }

    fn teardown(
        &self,
        state: &mut BuiltInState,
        market: &MarketView,
        portfolio: &PortfolioView,
        out: &mut Vec<Intent>,
    ) {
        match (self, state) {
            (BuiltIn::Indicator(s), BuiltInState::Indicator(st)) => s.teardown(st, market, portfolio, out),
            (BuiltIn::DynamicLp(s), BuiltInState::DynamicLp(st)) => s.teardown(st, market, portfolio, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RiskSettings, StrategySpec};

    #[test]
    fn states_stored_by_an_indicator_strategy_still_read() {
        let rsi = IndicatorStrategy::new(
            StrategySpec::Rsi { period: 14, oversold: 30.0, overbought: 70.0 },
            RiskSettings::default(),
        )
        .unwrap();
        let view = MarketView { step: 0, timestamp_ms: 0, assets: Vec::new(), lending: Vec::new() };
        let plain = serde_json::to_string(&rsi.init(&view)).unwrap();
        let back: BuiltInState = serde_json::from_str(&plain).unwrap();
        assert_eq!(back, BuiltIn::Indicator(rsi).init(&view));
        assert_eq!(serde_json::to_string(&back).unwrap(), plain);
    }
}
