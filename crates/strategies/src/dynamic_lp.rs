//! Dynamic LP: concentrated liquidity in one Uniswap v3 pool whose range follows the price. The range's half-width
//! comes from recent volatility (or is fixed); the range is moved when the price leaves it, drifts from its centre
//! or the range grows old, and only when the fees a fresh range is expected to earn over the horizon exceed what
//! moving costs (gas plus the swap that restores the token ratio).

use crate::spec::{LpParams, StrategySpec};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_market::MarketView;
use sextant_strategy::{FlowOutcome, FlowStatus, LpView, PortfolioView, Strategy};
use sextant_types::{Amount, AmountSpec, Intent, LpPositionId, PoolRef, Token};
use std::collections::VecDeque;

/// ln(1.0001): one tick in log price.
const LN_TICK: f64 = 0.000_099_995_000_333_308_34;

/// The Dynamic LP strategy for one pool of the market's asset against its quote (either may be the pool's token0).
#[derive(Debug, Clone)]
pub struct DynamicLp {
    params: LpParams,
    pool: PoolRef,
    tick_spacing: i32,
    /// The asset is the pool's token0 (ticks rise with its price); otherwise token1 (ticks fall as it rises).
    base_is_token0: bool,
}

/// The range a strategy holds, as it keeps track of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeState {
    /// The position.
    pub id: LpPositionId,
    /// Step it was opened at.
    pub opened_step: usize,
    /// Half-width in ticks it was opened with.
    pub half_width: u32,
    /// Centre tick.
    pub centre: i32,
    /// Its value when first seen open (quote units).
    pub value_at_open: Option<f64>,
    /// Steps the price spent inside it.
    pub in_range_steps: usize,
}

/// Everything a Dynamic LP strategy remembers between steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynamicLpState {
    /// Log returns of the last `vol_window` closes.
    pub returns: VecDeque<f64>,
    /// Their sum and sum of squares, kept as returns come and go (recomputed from `returns` once per window so
    /// rounding cannot build up).
    pub sums: (f64, f64),
    /// Returns pushed since the sums were last recomputed.
    pub since_exact: usize,
    /// The previous close.
    pub last_close: Option<f64>,
    /// The open range.
    pub range: Option<RangeState>,
    /// Fees earned per in-range step per unit of value, times the half-width they were earned at (fees scale
    /// about inversely with the width): what the cost rule expects a new range to earn.
    pub fee_rate_width: Option<f64>,
    /// Intents emitted and not yet settled.
    pub in_flight: usize,
    /// A move swapped its tokens and opens its range at the next step.
    pub await_open: bool,
    /// The step of the last decision.
    pub last_step: usize,
    /// Opens that failed in a row.
    pub failures: u32,
    /// No decision before this step (after failed opens).
    pub retry_at: usize,
    /// Ranges opened.
    pub opened: usize,
    /// Steps on which the cost rule held back a triggered move (it would have cost more than it was expected to
    /// earn).
    pub held_by_cost: usize,
}

/// The target of a re-range: where and how much of each token.
struct Plan {
    lower: i32,
    upper: i32,
    half_width: u32,
    /// Base to sell (positive) or buy with quote (negative), in base units at the current price.
    swap_base: f64,
    /// Everything held, in quote units.
    value: f64,
    /// Base and quote held (the quote less the gas reserve).
    held: (f64, f64),
}

impl DynamicLp {
    /// A Dynamic LP strategy on `pool` (tick spacing `tick_spacing`), whose token0 is the market's asset when
    /// `base_is_token0`, else its quote.
    ///
    /// # Errors
    /// When `spec` is not a valid `dynamic_lp` spec or the tick spacing is not positive.
    pub fn new(spec: &StrategySpec, pool: PoolRef, tick_spacing: i32, base_is_token0: bool) -> Result<Self> {
        spec.validate()?;
        let params = spec.lp_params().ok_or_else(|| Error::new("strategy.kind", "is not dynamic_lp"))?;
        if tick_spacing <= 0 {
            return Err(Error::new("pool.tick_spacing", format!("must be positive, got {tick_spacing}")));
        }
        Ok(DynamicLp { params, pool, tick_spacing, base_is_token0 })
    }

    /// The resolved parameters.
    pub fn params(&self) -> &LpParams {
        &self.params
    }

    /// The pool tick at which the asset is worth `price` quote.
    fn tick_of(&self, price: f64, base: &Token, quote: &Token) -> i32 {
        let raw = price * 10f64.powi(i32::from(quote.decimals) - i32::from(base.decimals));
        (self.sign() * raw.ln() / LN_TICK).floor() as i32
    }

    /// +1 when ticks rise with the asset's price, -1 when they fall.
    fn sign(&self) -> f64 {
        if self.base_is_token0 { 1.0 } else { -1.0 }
    }

    /// Half-width in ticks: fixed, or `width_sigmas` standard deviations of the price over the horizon.
    fn half_width(&self, state: &DynamicLpState) -> Option<u32> {
        if let Some(w) = self.params.width_ticks {
            return Some(w);
        }
        let n = state.returns.len();
        if n < self.params.vol_window {
            return None;
        }
        let (sum, sumsq) = state.sums;
        let var = ((sumsq - sum * sum / n as f64) / (n - 1) as f64).max(0.0);
        let width = self.params.width_sigmas * var.sqrt() * (self.params.horizon_bars as f64).sqrt() / LN_TICK;
        let w = width.clamp(f64::from(self.params.min_width_ticks), f64::from(self.params.max_width_ticks));
        Some(w as u32)
    }

    /// A range centred on `tick` and the swap that gives the holdings its token ratio.
    fn plan(&self, tick: i32, half_width: u32, price: f64, base_total: f64, quote_total: f64) -> Plan {
        let s = self.tick_spacing;
        let w = (half_width as i32).max(s);
        let lower = (tick - w).div_euclid(s) * s;
        let upper = ((tick + w).div_euclid(s) + 1) * s;
        // Per unit of liquidity in human units: base = 1/sqrt(p) - 1/sqrt(pb), quote = sqrt(p) - sqrt(pa).
        // The range's edges as prices of the asset (the lower tick is the higher price when the asset is token1).
        let p_of = |t: i32| price * (self.sign() * f64::from(t - tick) * LN_TICK).exp();
        let (pa, pb) = (p_of(lower).min(p_of(upper)), p_of(lower).max(p_of(upper)));
        let (sp, sa, sb) = (price.sqrt(), pa.sqrt(), pb.sqrt());
        let (x, y) = (1.0 / sp - 1.0 / sb, sp - sa);
        let share = (x * price / (x * price + y)).clamp(0.0, 1.0);
        let value = base_total * price + quote_total;
        let swap_base = base_total - share * value / price;
        Plan { lower, upper, half_width: w as u32, swap_base, value, held: (base_total, quote_total) }
    }

    /// The intents that close `lp` (when given) and swap the holdings to the planned range's token ratio; when no
    /// swap is needed (or `open_now`), the range is opened at once with what is held, otherwise at the next step,
    /// from the balances the swap actually left. Returns whether the open is left for the next step.
    fn move_to(
        &self,
        plan: &Plan,
        market: &MarketView,
        lp: Option<&LpView>,
        open_now: bool,
        out: &mut Vec<Intent>,
    ) -> Option<bool> {
        let a = market.assets.first()?;
        let price = a.last_close?;
        if let Some(lp) = lp {
            out.push(Intent::LpClose { position: lp.id.clone() });
        }
        // Swaps below 0.1 % of the holdings are not worth their gas.
        let value_base = plan.swap_base.abs() * price;
        if !open_now && value_base > 1e-3 * plan.value {
            let (sell, buy, amount) = if plan.swap_base > 0.0 {
                (&a.base, &a.quote, Amount::from_units(plan.swap_base, &a.base).ok()?)
            } else {
                (&a.quote, &a.base, Amount::from_units(value_base, &a.quote).ok()?)
            };
            out.push(Intent::Swap {
                sell: sell.clone(),
                buy: buy.clone(),
                amount: AmountSpec::Exact(amount),
                max_slippage_bps: 100,
            });
            return Some(true);
        }
        // Everything held (after the close, when there is one), less the gas reserve: the range takes what it can
        // of both.
        let (base, quote) = plan.held;
        let (token0, token1) = if self.base_is_token0 { (&a.base, &a.quote) } else { (&a.quote, &a.base) };
        out.push(Intent::LpOpen {
            pool: self.pool.clone(),
            tick_lower: plan.lower,
            tick_upper: plan.upper,
            amount0: Amount::from_units(if self.base_is_token0 { base } else { quote }.max(0.0), token0).ok()?,
            amount1: Amount::from_units(if self.base_is_token0 { quote } else { base }.max(0.0), token1).ok()?,
        });
        Some(false)
    }

    /// Quote kept aside for the gas of the moves (the executor takes gas from the quote balance): one and a half
    /// moves, at most 2 % of what is held.
    fn gas_reserve(&self, value: f64) -> f64 {
        (self.params.rebalance_gas * 1.5).min(0.02 * value)
    }
}

impl Strategy for DynamicLp {
    type State = DynamicLpState;

    fn name(&self) -> String {
        let width = match self.params.width_ticks {
            Some(w) => format!("±{w} ticks"),
            None => format!("±{}σ over {} bars", self.params.width_sigmas, self.params.horizon_bars),
        };
        format!("dynamic_lp({:?}, {width})", self.params.profile)
            .replace("BlueChip", "blue_chip")
            .replace("Degen", "degen")
    }

    fn init(&self, _market: &MarketView) -> DynamicLpState {
        DynamicLpState {
            returns: VecDeque::with_capacity(self.params.vol_window + 1),
            sums: (0.0, 0.0),
            since_exact: 0,
            last_close: None,
            range: None,
            fee_rate_width: None,
            in_flight: 0,
            await_open: false,
            last_step: 0,
            failures: 0,
            retry_at: 0,
            opened: 0,
            held_by_cost: 0,
        }
    }

    fn on_step(
        &self,
        state: &mut DynamicLpState,
        market: &MarketView,
        portfolio: &PortfolioView,
        out: &mut Vec<Intent>,
    ) {
        let Some(a) = market.assets.first() else { return };
        let Some(price) = a.candle.map(|c| c.close).filter(|p| *p > 0.0) else { return };
        if let Some(prev) = state.last_close {
            let r = (price / prev).ln();
            state.returns.push_back(r);
            state.sums.0 += r;
            state.sums.1 += r * r;
            if state.returns.len() > self.params.vol_window
                && let Some(old) = state.returns.pop_front()
            {
                state.sums.0 -= old;
                state.sums.1 -= old * old;
            }
            state.since_exact += 1;
            if state.since_exact >= self.params.vol_window {
                state.sums = state.returns.iter().fold((0.0, 0.0), |(a, b), r| (a + r, b + r * r));
                state.since_exact = 0;
            }
        }
        state.last_close = Some(price);
        if state.in_flight > 0 {
            return;
        }
        let tick = self.tick_of(price, &a.base, &a.quote);
        let lp = portfolio.lp.iter().find(|l| l.asset == 0);
        let base_held = portfolio.positions.first().map_or(0.0, |p| p.quantity);
        let base_total = base_held + lp.map_or(0.0, |l| l.amount_base + l.fees_base);
        let quote_held = portfolio.cash + lp.map_or(0.0, |l| l.amount_quote + l.fees_quote);
        let quote_total = (quote_held - self.gas_reserve(base_total * price + quote_held)).max(0.0);
        let Some(half_width) = self.half_width(state) else { return };
        let before = out.len();
        if market.step < state.retry_at {
            return;
        }
        state.last_step = market.step;
        // A position it holds but did not hear opened (a close that failed after its replacement's open did): keep
        // track of it as if opened now.
        if let (Some(lp), None) = (lp, &state.range) {
            state.range = Some(RangeState {
                id: lp.id.clone(),
                opened_step: market.step,
                half_width: ((lp.tick_upper - lp.tick_lower) / 2).max(1) as u32,
                centre: (lp.tick_lower + lp.tick_upper).div_euclid(2),
                value_at_open: None,
                in_range_steps: 0,
            });
        }
        let (plan, lp) = match (lp, state.range.as_mut()) {
            (Some(lp), Some(range)) => {
                let value = lp.value(price);
                let opened_at = *range.value_at_open.get_or_insert(value);
                if lp.in_range {
                    range.in_range_steps += 1;
                }
                let earned = lp.fees_base * price + lp.fees_quote;
                if range.in_range_steps > 0 && opened_at > 0.0 && earned > 0.0 {
                    let rate = earned / opened_at / range.in_range_steps as f64;
                    state.fee_rate_width = Some(rate * f64::from(range.half_width));
                }
                // Distance from the centre of the range actually held, in half-widths: 1 is its edge.
                let half = f64::from((lp.tick_upper - lp.tick_lower).max(2)) / 2.0;
                let distance = (f64::from(tick) - f64::from(lp.tick_lower + lp.tick_upper) / 2.0).abs() / half;
                let out_of_range = !lp.in_range;
                let drifted = distance >= self.params.recenter_at;
                let aged = self.params.max_age_bars.is_some_and(|age| market.step >= range.opened_step + age);
                if !(out_of_range || drifted || aged) {
                    return;
                }
                let plan = self.plan(tick, half_width, price, base_total, quote_total);
                // Expected fees a fresh range earns over the horizon beyond what this one still earns there.
                let gain = match state.fee_rate_width {
                    Some(rw) => {
                        let still = if out_of_range { 0.0 } else { (1.0 - distance).clamp(0.0, 1.0) };
                        rw / f64::from(plan.half_width) * value * self.params.horizon_bars as f64 * (1.0 - still)
                    }
                    // Nothing measured yet: move only a range that earns nothing.
                    None if out_of_range => f64::INFINITY,
                    None => 0.0,
                };
                let fee_rate = f64::from(self.pool.fee_pips) / 1e6;
                let cost = self.params.rebalance_gas + plan.swap_base.abs() * price * fee_rate;
                if gain <= cost {
                    state.held_by_cost += 1;
                    return;
                }
                (plan, Some(lp))
            }
            (None, _) => (self.plan(tick, half_width, price, base_total, quote_total), None),
            (Some(_), None) => return,
        };
        // The second half of a move: the swap is done (or failed; then open with what is held).
        let open_now = lp.is_none() && state.await_open;
        let Some(await_open) = self.move_to(&plan, market, lp, open_now, out) else {
            out.truncate(before);
            return;
        };
        state.await_open = await_open;
        state.in_flight = out.len() - before;
        state.range = Some(RangeState {
            id: LpPositionId(String::new()),
            opened_step: market.step,
            half_width: plan.half_width,
            centre: tick,
            value_at_open: None,
            in_range_steps: 0,
        });
    }

    fn on_outcome(&self, state: &mut DynamicLpState, outcome: &FlowOutcome) {
        state.in_flight = state.in_flight.saturating_sub(1);
        match (&outcome.intent, &outcome.status) {
            (Intent::LpOpen { .. }, FlowStatus::Completed { fill }) => {
                state.opened += 1;
                state.failures = 0;
                if let (Some(range), Some(id)) =
                    (state.range.as_mut(), fill.as_ref().and_then(|f| f.lp_position.clone()))
                {
                    range.id = id;
                }
            }
            (Intent::LpOpen { .. }, FlowStatus::Failed { .. }) => {
                // Back off 2, 4, ... 64 steps: an open that fails for good should not be paid for every step.
                state.range = None;
                state.failures = state.failures.saturating_add(1);
                state.retry_at = state.last_step + (1usize << state.failures.min(6));
            }
            _ => {}
        }
    }

    fn teardown(
        &self,
        _state: &mut DynamicLpState,
        _market: &MarketView,
        portfolio: &PortfolioView,
        out: &mut Vec<Intent>,
    ) {
        for lp in &portfolio.lp {
            out.push(Intent::LpClose { position: lp.id.clone() });
        }
        Intent::sort_for_unwind(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::LpProfile;

    fn strategy(width: Option<u32>) -> DynamicLp {
        let spec = StrategySpec::DynamicLp {
            profile: LpProfile::BlueChip,
            width_ticks: width,
            vol_window: None,
            width_sigmas: None,
            min_width_ticks: None,
            max_width_ticks: None,
            horizon_bars: None,
            recenter_at: None,
            max_age_bars: None,
            rebalance_gas: None,
        };
        let pool = PoolRef { chain: sextant_types::ChainId::ETHEREUM, address: "0xpool".into(), fee_pips: 500 };
        DynamicLp::new(&spec, pool, 10, true).unwrap()
    }

    #[test]
    fn a_planned_range_straddles_the_price_on_the_spacing_with_the_range_token_ratio() {
        let s = strategy(Some(1000));
        let weth = Token::simulated("WETH", 18).unwrap();
        let usdc = Token::simulated("USDC", 6).unwrap();
        let tick = s.tick_of(2000.0, &weth, &usdc);
        assert!((-200_320..=-200_300).contains(&tick), "{tick}");
        // All quote: buy about half the value of the asset for a symmetric range.
        let plan = s.plan(tick, 1000, 2000.0, 0.0, 10_000.0);
        assert!(plan.lower < tick && tick < plan.upper);
        assert_eq!((plan.lower % 10, plan.upper % 10), (0, 0));
        let bought = -plan.swap_base * 2000.0;
        assert!((4_900.0..5_100.0).contains(&bought), "{bought}");
    }
}
