//! Leverage looping on an Aave-style market: supply the collateral, borrow the debt asset, swap it into more
//! collateral and supply that, round after round, up to a target health factor and a number of rounds. When the
//! health factor falls below a threshold it deleverages (withdraw collateral, swap, repay) back to the target; when
//! it rises well above the target it levers up again. Everything it decides is explained in the decision log.
//!
//! The strategy acts at each step's close; a price that moves further within a step than the health factor allows
//! is liquidated by the market before the strategy can react (the backtest simulates that with Aave's rules).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_market::MarketView;
use sextant_strategy::{Decision, PortfolioView, Strategy};
use sextant_types::{Amount, AmountSpec, Intent, LendingMarket, Token};

/// `leverage_loop` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeverageParams {
    /// Health factor the loop aims at when it levers up or deleverages.
    pub target_health_factor: f64,
    /// Below this health factor it deleverages to the target.
    pub deleverage_below: f64,
    /// Above this health factor it levers up to the target.
    pub releverage_above: f64,
    /// Most borrow-swap-supply (or withdraw-swap-repay) rounds per step.
    pub max_loops: usize,
    /// Slippage tolerance of its swaps, basis points.
    pub max_slippage_bps: u32,
    /// What a swap is expected to lose to fees and impact, as a fraction (used to size each round).
    pub swap_cost: f64,
    /// When deleveraging, each withdrawal keeps the health factor at least this high (Aave refuses a withdrawal
    /// that would take it below 1).
    pub withdraw_floor: f64,
}

impl Default for LeverageParams {
    fn default() -> Self {
        LeverageParams {
            target_health_factor: 1.6,
            deleverage_below: 1.3,
            releverage_above: 2.0,
            max_loops: 6,
            max_slippage_bps: 100,
            swap_cost: 0.004,
            withdraw_floor: 1.05,
        }
    }
}

impl LeverageParams {
    /// Checks ranges.
    ///
    /// # Errors
    /// Names the key and what was expected.
    pub fn validate(&self) -> Result<()> {
        let e = |k: &str, m: String| Err(Error::new(format!("strategy.{k}"), m));
        if !(self.target_health_factor.is_finite() && self.target_health_factor > 1.0) {
            return e("target_health_factor", format!("must be above 1, got {}", self.target_health_factor));
        }
        if !(self.deleverage_below > 1.0 && self.deleverage_below < self.target_health_factor) {
            return e(
                "deleverage_below",
                format!(
                    "must be above 1 and below target_health_factor ({}), got {}",
                    self.target_health_factor, self.deleverage_below
                ),
            );
        }
        if self.releverage_above.is_nan() || self.releverage_above <= self.target_health_factor {
            return e(
                "releverage_above",
                format!(
                    "must be above target_health_factor ({}), got {}",
                    self.target_health_factor, self.releverage_above
                ),
            );
        }
        if !(1..=50).contains(&self.max_loops) {
            return e("max_loops", format!("must be between 1 and 50, got {}", self.max_loops));
        }
        if !(0.0..0.5).contains(&self.swap_cost) {
            return e("swap_cost", format!("must be in [0, 0.5), got {}", self.swap_cost));
        }
        if !(self.withdraw_floor > 1.0 && self.withdraw_floor <= self.deleverage_below) {
            return e(
                "withdraw_floor",
                format!("must be above 1 and at most deleverage_below, got {}", self.withdraw_floor),
            );
        }
        Ok(())
    }
}

/// What the loop needs to know of the market it loops on (risk parameters the pool publishes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopMarket {
    /// The lending market.
    pub market: LendingMarket,
    /// Its id in `PortfolioView::lending`.
    pub id: String,
    /// The collateral token (the first asset of the market view).
    pub collateral: Token,
    /// The debt token (the portfolio's quote).
    pub debt: Token,
    /// The collateral's loan-to-value, fraction.
    pub ltv: f64,
    /// The collateral's liquidation threshold, fraction.
    pub liquidation_threshold: f64,
}

/// The strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct LeverageLoop {
    params: LeverageParams,
    market: LoopMarket,
}

/// Its state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LeverageState {
    /// Decisions not yet taken by the engine.
    pub decisions: Vec<Decision>,
    /// Steps levered up, deleveraged.
    pub levers: usize,
    /// Deleverages made.
    pub deleverages: usize,
}

impl LeverageLoop {
    /// A loop with these parameters on `market`.
    ///
    /// # Errors
    /// Out-of-range parameters, or a target the market's LTV cannot reach.
    pub fn new(params: LeverageParams, market: LoopMarket) -> Result<Self> {
        params.validate()?;
        // A health factor of lt/ltv is where borrowing stops: the target must sit above it.
        let floor = market.liquidation_threshold / market.ltv.max(1e-9);
        if params.target_health_factor <= floor * (1.0 + 1e-9) {
            return Err(Error::new(
                "strategy.target_health_factor",
                format!(
                    "must be above liquidation threshold / LTV = {floor:.3} for this market, got {}",
                    params.target_health_factor
                ),
            ));
        }
        Ok(LeverageLoop { params, market })
    }

    /// Borrow-swap-supply rounds taking (collateral value `c`, debt `d`, both in the debt asset) to the target:
    /// each round borrows what the LTV allows, at most what reaches the target. Returns the borrow amounts.
    fn lever_plan(&self, mut c: f64, mut d: f64) -> Vec<f64> {
        let (lt, ltv, t, k) = (
            self.market.liquidation_threshold,
            self.market.ltv,
            self.params.target_health_factor,
            1.0 - self.params.swap_cost,
        );
        let mut plan = Vec::new();
        for _ in 0..self.params.max_loops {
            // borrow b so that (c + b k) lt / (d + b) = t
            let to_target = (c * lt - t * d) / (t - lt * k);
            let room = c * ltv - d;
            let b = to_target.min(room * 0.999);
            if b <= c * 1e-6 {
                break;
            }
            plan.push(b);
            c += b * k;
            d += b;
        }
        plan
    }

    /// Withdraw-swap-repay rounds from (c, d) to the target, each withdrawal keeping the health factor above the
    /// floor. Returns the collateral withdrawn per round, in the debt asset's value.
    fn delever_plan(&self, mut c: f64, mut d: f64) -> Vec<f64> {
        let (lt, t, k, floor) = (
            self.market.liquidation_threshold,
            self.params.target_health_factor,
            1.0 - self.params.swap_cost,
            self.params.withdraw_floor,
        );
        let mut plan = Vec::new();
        for _ in 0..self.params.max_loops {
            if d <= 0.0 || c * lt / d >= t * (1.0 - 1e-6) {
                break;
            }
            // withdraw w, repay w k: (c - w) lt / (d - w k) = t
            let to_target = (t * d - c * lt) / (t * k - lt);
            // the withdrawal alone must keep (c - w) lt / d >= floor
            let allowed = c - floor * d / lt;
            let w = to_target.min(allowed).min(d / k);
            if w <= c * 1e-6 {
                break;
            }
            plan.push(w);
            c -= w;
            d -= w * k;
        }
        plan
    }
}

fn decision(market: &MarketView, action: &str, rule: &str, detail: String, amount: f64) -> Decision {
    Decision {
        step: market.step,
        timestamp_ms: market.timestamp_ms,
        action: action.into(),
        from: None,
        to: None,
        amount,
        expected_gain: 0.0,
        cost: 0.0,
        rule: rule.into(),
        detail,
    }
}

impl Strategy for LeverageLoop {
    type State = LeverageState;

    fn name(&self) -> String {
        format!(
            "leverage_loop(target HF {}, deleverage < {}, loops {})",
            self.params.target_health_factor, self.params.deleverage_below, self.params.max_loops
        )
    }

    fn init(&self, _market: &MarketView) -> LeverageState {
        LeverageState::default()
    }

    fn on_step(
        &self,
        state: &mut LeverageState,
        market: &MarketView,
        portfolio: &PortfolioView,
        out: &mut Vec<Intent>,
    ) {
        let Some(price) = market.assets.first().and_then(|a| a.last_close) else { return };
        let m = &self.market;
        let pos = portfolio.lending.iter().find(|l| l.market == m.id);
        let supplied = pos.map_or(0.0, |l| l.supplied);
        let debt = pos.map_or(0.0, |l| l.borrowed);
        let idle_collateral = portfolio.positions.first().map_or(0.0, |p| p.quantity);
        let cash = portfolio.cash;
        let units = |x: f64, t: &Token| AmountSpec::Exact(Amount::from_units(x.max(0.0), t).unwrap_or(Amount(0)));
        let swap = |sell: &Token, buy: &Token, amount: AmountSpec| Intent::Swap {
            sell: sell.clone(),
            buy: buy.clone(),
            amount,
            max_slippage_bps: self.params.max_slippage_bps,
        };
        // Idle money goes to work first: cash into collateral, collateral into the market.
        if cash > 0.0 && debt == 0.0 && supplied == 0.0 {
            out.push(swap(&m.debt, &m.collateral, AmountSpec::All));
        }
        // collateral value once the idle money is supplied (cash converted at the expected swap cost)
        let opening = debt == 0.0 && supplied == 0.0;
        let c = (supplied + idle_collateral) * price + if opening { cash * (1.0 - self.params.swap_cost) } else { 0.0 };
        if idle_collateral > 0.0 || (cash > 0.0 && opening) {
            out.push(Intent::Supply { market: m.market.clone(), token: m.collateral.clone(), amount: AmountSpec::All });
        }
        let hf = if debt > 0.0 { c * m.liquidation_threshold / debt } else { f64::INFINITY };
        if hf > self.params.releverage_above {
            let plan = self.lever_plan(c, debt);
            if !plan.is_empty() {
                let total: f64 = plan.iter().sum();
                state.decisions.push(decision(
                    market,
                    "lever",
                    if debt == 0.0 { "open" } else { "health_above_releverage" },
                    format!(
                        "health factor {} above {}: borrow {total:.2} {} in {} rounds toward {}",
                        if hf.is_finite() { format!("{hf:.3}") } else { "inf".into() },
                        self.params.releverage_above,
                        m.debt.symbol,
                        plan.len(),
                        self.params.target_health_factor
                    ),
                    total,
                ));
                state.levers += 1;
                for b in plan {
                    out.push(Intent::Borrow {
                        market: m.market.clone(),
                        token: m.debt.clone(),
                        amount: Amount::from_units(b, &m.debt).unwrap_or(Amount(0)),
                    });
                    out.push(swap(&m.debt, &m.collateral, AmountSpec::All));
                    out.push(Intent::Supply {
                        market: m.market.clone(),
                        token: m.collateral.clone(),
                        amount: AmountSpec::All,
                    });
                }
            }
        } else if debt > 0.0 && hf < self.params.deleverage_below {
            let plan = self.delever_plan(c, debt);
            if !plan.is_empty() {
                let total: f64 = plan.iter().sum();
                state.decisions.push(decision(
                    market,
                    "delever",
                    "health_below_deleverage",
                    format!(
                        "health factor {hf:.3} below {}: withdraw {total:.2} of collateral in {} rounds, repay, toward {}",
                        self.params.deleverage_below,
                        plan.len(),
                        self.params.target_health_factor
                    ),
                    total,
                ));
                state.deleverages += 1;
                for w in plan {
                    out.push(Intent::Withdraw {
                        market: m.market.clone(),
                        token: m.collateral.clone(),
                        amount: units(w / price, &m.collateral),
                    });
                    out.push(swap(&m.collateral, &m.debt, AmountSpec::All));
                    out.push(Intent::Repay {
                        market: m.market.clone(),
                        token: m.debt.clone(),
                        amount: AmountSpec::All,
                    });
                }
            }
        }
    }

    fn take_decisions(&self, state: &mut LeverageState) -> Vec<Decision> {
        std::mem::take(&mut state.decisions)
    }

    fn teardown(
        &self,
        _state: &mut LeverageState,
        market: &MarketView,
        portfolio: &PortfolioView,
        out: &mut Vec<Intent>,
    ) {
        // Unwind in rounds as deleveraging does, to a zero debt, then take everything out and back to the quote.
        let Some(price) = market.assets.first().and_then(|a| a.last_close) else { return };
        let m = &self.market;
        let pos = portfolio.lending.iter().find(|l| l.market == m.id);
        let (mut c, mut d) = (pos.map_or(0.0, |l| l.supplied) * price, pos.map_or(0.0, |l| l.borrowed));
        let k = 1.0 - self.params.swap_cost;
        for _ in 0..50 {
            if d <= 0.0 {
                break;
            }
            let w = (c - self.params.withdraw_floor * d / m.liquidation_threshold).min(d / k * 1.001).max(0.0);
            if w <= 0.0 {
                break;
            }
            out.push(Intent::Withdraw {
                market: m.market.clone(),
                token: m.collateral.clone(),
                amount: AmountSpec::Exact(Amount::from_units(w / price, &m.collateral).unwrap_or(Amount(0))),
            });
            out.push(Intent::Swap {
                sell: m.collateral.clone(),
                buy: m.debt.clone(),
                amount: AmountSpec::All,
                max_slippage_bps: u32::MAX,
            });
            out.push(Intent::Repay { market: m.market.clone(), token: m.debt.clone(), amount: AmountSpec::All });
            c -= w;
            d -= w * k;
        }
        out.push(Intent::Withdraw { market: m.market.clone(), token: m.collateral.clone(), amount: AmountSpec::All });
        out.push(Intent::Swap {
            sell: m.collateral.clone(),
            buy: m.debt.clone(),
            amount: AmountSpec::All,
            max_slippage_bps: u32::MAX,
        });
    }
}
