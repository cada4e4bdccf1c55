//! Fixed against floating yield: hold the floating market (a lending market's supply rate) until a Pendle
//! principal token's implied APY beats it by a threshold, then buy the PT and lock that rate in. Hold the PT to
//! maturity (it redeems one for one), or sell it early when the spread inverts (the floating rate climbs above the
//! implied by the exit threshold, so the PT's price has room to fall and the floating market pays more). Near
//! maturity no new PT is bought. Every switch is explained in the decision log.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_market::{LendingProtocol, LendingView, MarketView};
use sextant_strategy::{Decision, FlowOutcome, FlowStatus, PortfolioView, Strategy};
use sextant_types::{AmountSpec, Intent, LendingMarket, Token};

/// `fixed_yield` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FixedYieldParams {
    /// Buy the PT when its implied APY exceeds the floating APY by this much, basis points.
    pub entry_spread_bps: f64,
    /// Sell the PT early when the floating APY exceeds its implied APY by this much, basis points.
    pub exit_spread_bps: f64,
    /// Buy no PT with fewer days than this to maturity.
    pub min_days_to_maturity: f64,
    /// Slippage tolerance of PT trades, basis points.
    pub max_slippage_bps: u32,
    /// The floating rate compared with the PT is its average over this many days (a utilisation spike that
    /// lasts a day says little about the rate until maturity).
    pub floating_window_days: f64,
    /// What entering and leaving the PT is expected to cost, basis points of the amount; a PT is bought only when
    /// the spread over the time left to maturity beats it.
    pub trade_cost_bps: f64,
}

impl Default for FixedYieldParams {
    fn default() -> Self {
        FixedYieldParams {
            entry_spread_bps: 50.0,
            exit_spread_bps: 50.0,
            min_days_to_maturity: 14.0,
            max_slippage_bps: 100,
            floating_window_days: 7.0,
            trade_cost_bps: 10.0,
        }
    }
}

impl FixedYieldParams {
    /// Checks ranges.
    ///
    /// # Errors
    /// Names the key and what was expected.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [
            ("entry_spread_bps", self.entry_spread_bps),
            ("exit_spread_bps", self.exit_spread_bps),
            ("min_days_to_maturity", self.min_days_to_maturity),
            ("floating_window_days", self.floating_window_days),
            ("trade_cost_bps", self.trade_cost_bps),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::new(format!("strategy.{k}"), format!("must be a non-negative number, got {v}")));
            }
        }
        Ok(())
    }
}

/// The two legs: the floating market and the PT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedYieldMarkets {
    /// The floating market's id in `MarketView::lending`.
    pub floating: String,
    /// The PT market's id.
    pub pt: String,
    /// The floating market as intents name it.
    pub floating_market: LendingMarket,
    /// The PT token.
    pub pt_token: Token,
}

/// The strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedYield {
    params: FixedYieldParams,
    markets: FixedYieldMarkets,
}

/// Its state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FixedYieldState {
    /// Decisions not yet taken by the engine.
    pub decisions: Vec<Decision>,
    /// The last hold explained (logged once until something changes).
    pub last_hold: Option<String>,
    /// The step seen last, and its time.
    pub step: usize,
    /// The time of that step, unix ms.
    pub time_ms: i64,
    /// After a PT trade is refused (too much impact), no new PT is bought before this step.
    pub retry_after: usize,
    /// The floating APY averaged over the window (None before the first observation).
    pub floating_avg: Option<f64>,
}

/// Steps to wait after a refused PT purchase before trying again.
const RETRY_STEPS: usize = 24;

impl FixedYield {
    /// A strategy with these parameters on these legs.
    ///
    /// # Errors
    /// Out-of-range parameters.
    pub fn new(params: FixedYieldParams, markets: FixedYieldMarkets) -> Result<Self> {
        params.validate()?;
        Ok(FixedYield { params, markets })
    }

    fn view<'a>(&self, market: &'a MarketView, id: &str) -> Option<&'a LendingView> {
        market.lending.iter().find(|v| v.market == id)
    }
}

fn decision(
    market: &MarketView,
    action: &str,
    from: &str,
    to: &str,
    amount: f64,
    rule: &str,
    detail: String,
) -> Decision {
    Decision {
        step: market.step,
        timestamp_ms: market.timestamp_ms,
        action: action.into(),
        from: Some(from.into()),
        to: Some(to.into()),
        amount,
        expected_gain: 0.0,
        cost: 0.0,
        rule: rule.into(),
        detail,
    }
}

impl Strategy for FixedYield {
    type State = FixedYieldState;

    fn name(&self) -> String {
        format!(
            "fixed_yield(enter +{}bp, exit -{}bp, {}d before maturity)",
            self.params.entry_spread_bps, self.params.exit_spread_bps, self.params.min_days_to_maturity
        )
    }

    fn init(&self, _market: &MarketView) -> FixedYieldState {
        FixedYieldState::default()
    }

    fn on_step(
        &self,
        state: &mut FixedYieldState,
        market: &MarketView,
        portfolio: &PortfolioView,
        out: &mut Vec<Intent>,
    ) {
        let m = &self.markets;
        state.step = market.step;
        let last_time = std::mem::replace(&mut state.time_ms, market.timestamp_ms);
        let (Some(fl), Some(pt)) = (self.view(market, &m.floating), self.view(market, &m.pt)) else { return };
        let (Some(fr), Some(pr)) = (fl.rate, pt.rate) else { return };
        debug_assert_eq!(pt.protocol, LendingProtocol::PendlePt);
        // the floating rate as an exponential average over the window
        let now_floating = fr.supply_apy + fr.reward_apy;
        let dt_days = (market.timestamp_ms - last_time.min(market.timestamp_ms)) as f64 / 86_400_000.0;
        let alpha = if self.params.floating_window_days > 0.0 {
            (dt_days / self.params.floating_window_days).min(1.0)
        } else {
            1.0
        };
        let floating = match state.floating_avg {
            Some(avg) => avg + alpha * (now_floating - avg),
            None => now_floating,
        };
        state.floating_avg = Some(floating);
        let implied = pr.supply_apy;
        let spread_bps = (implied - floating) * 1e4;
        let days_left = pt.maturity_ms.map_or(0.0, |t| (t - market.timestamp_ms) as f64 / 86_400_000.0);
        let pt_held =
            portfolio.positions.iter().find(|p| p.base.symbol == m.pt_token.symbol).map_or(0.0, |p| p.quantity);
        let supplied = portfolio.lending.iter().find(|l| l.market == m.floating).map_or(0.0, |l| l.supplied);
        let cash = portfolio.cash;
        let quote = portfolio.quote.clone();
        let swap = |sell: &Token, buy: &Token| Intent::Swap {
            sell: sell.clone(),
            buy: buy.clone(),
            amount: AmountSpec::All,
            max_slippage_bps: self.params.max_slippage_bps,
        };
        if pt_held > 0.0 {
            if days_left <= 0.0 {
                out.push(swap(&m.pt_token, &quote));
                out.push(Intent::Supply { market: m.floating_market.clone(), token: quote, amount: AmountSpec::All });
                state.decisions.push(decision(
                    market,
                    "redeem",
                    &m.pt,
                    &m.floating,
                    pt_held,
                    "matured",
                    "the PT matured: redeemed one for one and back to the floating market".into(),
                ));
            } else if -spread_bps > self.params.exit_spread_bps {
                out.push(swap(&m.pt_token, &quote));
                out.push(Intent::Supply { market: m.floating_market.clone(), token: quote, amount: AmountSpec::All });
                state.decisions.push(decision(
                    market,
                    "move",
                    &m.pt,
                    &m.floating,
                    pt_held,
                    "spread_inverted",
                    format!(
                        "floating ({}-day average) {:.2} % is above the PT's implied {:.2} % by {:.0} bp (exit at {} bp), {days_left:.1} days left",
                        self.params.floating_window_days,
                        floating * 100.0,
                        implied * 100.0,
                        -spread_bps,
                        self.params.exit_spread_bps
                    ),
                ));
            }
            return;
        }
        let idle = cash > 0.0;
        let may_buy = market.step >= state.retry_after;
        // the extra yield locked in over the time left must also pay for getting in and out
        let pays = spread_bps * days_left / 365.0 > self.params.trade_cost_bps;
        if may_buy && pays && spread_bps > self.params.entry_spread_bps && days_left >= self.params.min_days_to_maturity
        {
            if supplied > 0.0 {
                out.push(Intent::Withdraw {
                    market: m.floating_market.clone(),
                    token: quote.clone(),
                    amount: AmountSpec::All,
                });
            }
            out.push(swap(&quote, &m.pt_token));
            state.decisions.push(decision(
                market,
                "move",
                &m.floating,
                &m.pt,
                supplied + cash,
                "fixed_beats_floating",
                format!(
                    "the PT's implied {:.2} % beats floating ({}-day average) {:.2} % by {spread_bps:.0} bp (entry at {} bp), {days_left:.1} days to maturity",
                    implied * 100.0,
                    self.params.floating_window_days,
                    floating * 100.0,
                    self.params.entry_spread_bps
                ),
            ));
            state.last_hold = None;
        } else if idle {
            out.push(Intent::Supply { market: m.floating_market.clone(), token: quote, amount: AmountSpec::All });
            state.decisions.push(decision(
                market,
                "deposit",
                "cash",
                &m.floating,
                cash,
                "floating_default",
                format!(
                    "spread {spread_bps:.0} bp is below the entry {} bp: cash earns the floating rate",
                    self.params.entry_spread_bps
                ),
            ));
        }
    }

    fn on_outcome(&self, state: &mut FixedYieldState, outcome: &FlowOutcome) {
        let buying_pt =
            matches!(&outcome.intent, Intent::Swap { buy, .. } if buy.symbol == self.markets.pt_token.symbol);
        if let (true, FlowStatus::Failed { error }) = (buying_pt, &outcome.status) {
            state.retry_after = state.step + RETRY_STEPS;
            state.decisions.push(Decision {
                step: state.step,
                timestamp_ms: state.time_ms,
                action: "hold".into(),
                from: None,
                to: Some(self.markets.pt.clone()),
                amount: 0.0,
                expected_gain: 0.0,
                cost: 0.0,
                rule: "pt_trade_refused".into(),
                detail: format!("buying the PT failed ({}); the cash goes back to floating and no PT is tried for {RETRY_STEPS} steps", error.message),
            });
        }
    }

    fn take_decisions(&self, state: &mut FixedYieldState) -> Vec<Decision> {
        std::mem::take(&mut state.decisions)
    }

    fn teardown(
        &self,
        _state: &mut FixedYieldState,
        _market: &MarketView,
        portfolio: &PortfolioView,
        out: &mut Vec<Intent>,
    ) {
        let m = &self.markets;
        if portfolio.positions.iter().any(|p| p.base.symbol == m.pt_token.symbol && p.quantity > 0.0) {
            out.push(Intent::Swap {
                sell: m.pt_token.clone(),
                buy: portfolio.quote.clone(),
                amount: AmountSpec::All,
                max_slippage_bps: u32::MAX,
            });
        }
        if portfolio.lending.iter().any(|l| l.market == m.floating && l.supplied > 0.0) {
            out.push(Intent::Withdraw {
                market: m.floating_market.clone(),
                token: portfolio.quote.clone(),
                amount: AmountSpec::All,
            });
        }
    }
}
