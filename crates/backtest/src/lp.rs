//! The LP backtest: a strategy provides liquidity to a Uniswap v3 pool whose order flow is replayed step by step
//! through `protocols::uniswap_v3::Pool`. The strategy's positions sit in that pool, so every swap pays them
//! exactly what the contract would, across any number of tick crossings; its own swaps move the pool's price and
//! pay its fee. Balances are kept in base units; money in reports is in the quote token (token1).

use crate::config::Costs;
use crate::engine::{BacktestResult, CostTotals, EquityPoint, FlowStats};
use crate::flows::record;
use crate::metrics::compute_metrics;
use alloy_primitives::{Address, I256, U256};
use serde::{Deserialize, Serialize};
use sextant_data::synth_pool::{PoolStep, limit_for, replay_step};
use sextant_market::{AssetView, Candle, MarketView};
use sextant_protocols::uniswap_v3::Pool;
use sextant_protocols::uniswap_v3::liquidity::{amounts_for_liquidity, liquidity_for_amounts};
use sextant_protocols::uniswap_v3::math::sqrt_ratio_at_tick;
use sextant_strategy::{
    ExecError, ExecErrorKind, Executor, FlowOutcome, LpView, PortfolioView, PositionView, RetryPolicy, Strategy,
    run_flow,
};
use sextant_types::{Amount, AmountSpec, Fill, Intent, LpPositionId, PoolRef, Token};

/// The owner of the strategy's positions in the simulated pool.
pub const STRATEGY_LP: Address = Address::repeat_byte(0x5e);

/// Gas of opening a position through the position manager (mint of a new token id).
pub const GAS_LP_OPEN: u64 = 500_000;
/// Gas of closing one (decreaseLiquidity, collect, burn).
pub const GAS_LP_CLOSE: u64 = 250_000;
/// Gas of collecting fees.
pub const GAS_LP_COLLECT: u64 = 150_000;

const YEAR_MS: f64 = 365.25 * 86_400_000.0;

/// A pool and the order flow to replay on it.
#[derive(Debug, Clone)]
pub struct PoolMarket {
    /// token0, the asset (priced in token1).
    pub base: Token,
    /// token1, the quote token money is counted in.
    pub quote: Token,
    /// The pool as intents name it.
    pub pool_ref: PoolRef,
    /// The pool before the first step.
    pub pool: Pool,
    /// The asset is the pool's token0 (else its token1, and the quote token0).
    pub base_is_token0: bool,
    /// Order flow, one entry per step.
    pub steps: Vec<PoolStep>,
    /// Where the flow came from, for reports.
    pub source: String,
}

impl PoolMarket {
    /// The same market with no flow, for slices (the caller sets the pool and the steps).
    pub fn clone_without_flow(&self) -> PoolMarket {
        PoolMarket {
            base: self.base.clone(),
            quote: self.quote.clone(),
            pool_ref: self.pool_ref.clone(),
            pool: self.pool.clone(),
            base_is_token0: self.base_is_token0,
            steps: Vec::new(),
            source: self.source.clone(),
        }
    }
}

/// A position the strategy holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LpRecord {
    /// Its id.
    pub id: LpPositionId,
    /// Lower tick.
    pub tick_lower: i32,
    /// Upper tick.
    pub tick_upper: i32,
    /// Lower edge as a price (quote per asset).
    pub price_lower: f64,
    /// Upper edge as a price.
    pub price_upper: f64,
    /// Liquidity.
    pub liquidity: u128,
    /// When it was opened, unix ms.
    pub opened_ms: i64,
    /// When it was closed, if it was.
    pub closed_ms: Option<i64>,
    /// Asset deposited (base units).
    pub deposit_base: u128,
    /// Quote deposited.
    pub deposit_quote: u128,
    /// Fees earned, asset base units (collected, plus owed at the end for one still open).
    pub fees_base: u128,
    /// Fees earned, quote base units.
    pub fees_quote: u128,
    /// The fees in quote units at the price they were collected at (or the last price).
    pub fees_value: f64,
    /// Principal at close (or at the end) minus the deposits held instead, both at that price: impermanent loss
    /// (negative) in quote units.
    pub impermanent_loss: f64,
    /// Steps spent with the price in range.
    pub steps_in_range: usize,
    /// Steps held.
    pub steps_held: usize,
    /// sqrtPriceX96 at the lower and upper ticks (derived from them; not reported).
    #[serde(skip)]
    pub sqrt_lower: U256,
    /// See `sqrt_lower`.
    #[serde(skip)]
    pub sqrt_upper: U256,
}

/// LP metrics. Money is in quote units, ratios are fractions.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LpMetrics {
    /// Fees earned by every position (collected and owed), valued when collected (or at the end).
    pub fees_earned: f64,
    /// Fees earned over the time-weighted value held in positions, annualised.
    pub fee_apr: f64,
    /// Return over the run, annualised without compounding.
    pub apr: f64,
    /// Impermanent loss of every position, summed (negative is a loss).
    pub impermanent_loss: f64,
    /// Final value minus the value, at the last price, of what the strategy held right after its first deposit.
    pub value_vs_hold: f64,
    /// Steps with the price inside a held range over steps with a range held.
    pub time_in_range: f64,
    /// Ranges opened after the first.
    pub rebalances: usize,
    /// Gas of every LP and swap transaction.
    pub gas: f64,
    /// Pool fees paid by the strategy's own swaps.
    pub swap_fees: f64,
    /// Price impact of the strategy's own swaps (what they got below the mid price, fee aside).
    pub swap_impact: f64,
    /// gas + swap_fees + swap_impact.
    pub rebalance_cost: f64,
    /// Triggers the strategy's cost rule overruled (as the strategy reports them; 0 for strategies without one).
    pub held_by_cost: usize,
}

impl LpMetrics {
    /// The names of the LP metrics, in report order.
    pub const NAMES: [&'static str; 12] = [
        "fees_earned",
        "fee_apr",
        "apr",
        "impermanent_loss",
        "value_vs_hold",
        "time_in_range",
        "rebalances",
        "held_by_cost",
        "gas",
        "swap_fees",
        "swap_impact",
        "rebalance_cost",
    ];

    /// An LP metric by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "fees_earned" => self.fees_earned,
            "fee_apr" => self.fee_apr,
            "apr" => self.apr,
            "impermanent_loss" => self.impermanent_loss,
            "value_vs_hold" => self.value_vs_hold,
            "time_in_range" => self.time_in_range,
            "rebalances" => self.rebalances as f64,
            "held_by_cost" => self.held_by_cost as f64,
            "gas" => self.gas,
            "swap_fees" => self.swap_fees,
            "swap_impact" => self.swap_impact,
            "rebalance_cost" => self.rebalance_cost,
            _ => return None,
        })
    }

    /// Whether a larger value is better (costs, rebalances and overruled triggers are better small).
    pub fn higher_is_better(name: &str) -> bool {
        !matches!(name, "rebalances" | "held_by_cost" | "gas" | "swap_fees" | "swap_impact" | "rebalance_cost")
    }
}

/// What an LP backtest reports: the usual result (equity, metrics, flows) and the LP view of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LpBacktestResult {
    /// Equity, performance metrics and intent outcomes, as for every backtest.
    pub result: BacktestResult,
    /// LP metrics.
    pub lp: LpMetrics,
    /// Every position, in the order opened.
    pub positions: Vec<LpRecord>,
    /// The pool price at each step's close (quote per asset).
    pub prices: Vec<f64>,
    /// Swaps replayed, swaps the pool refused, initialized ticks crossed.
    pub flow: (u64, u64, u64),
    /// token0 and token1 the replayed swaps paid into the pool (base units; the strategy's own swaps excluded).
    pub volume_in: (f64, f64),
}

/// Balances and positions while the backtest runs (base units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Book {
    /// The asset held.
    pub base_bal: U256,
    /// The quote held.
    pub quote_bal: U256,
    /// Every position opened.
    pub positions: Vec<LpRecord>,
    /// Indexes into `positions` of the open ones.
    pub open: Vec<usize>,
    /// Costs paid.
    pub totals: CostTotals,
    /// What was held right after the first deposit (asset, quote), for value against holding.
    pub first_hold: Option<(U256, U256)>,
}

/// Everything needed to resume an LP backtest after any step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LpSnapshot<St> {
    /// The next step to run.
    pub next_step: usize,
    /// The pool, with the strategy's positions in it.
    pub pool: Pool,
    /// Balances and positions.
    pub book: Book,
    /// The strategy's own state.
    pub strategy: St,
    /// Intent outcomes.
    pub flows: FlowStats,
    /// Equity after each step.
    pub equity: Vec<EquityPoint>,
    /// The pool price at each step's close.
    pub prices: Vec<f64>,
    /// Swaps replayed, refused, ticks crossed.
    pub flow: (u64, u64, u64),
    /// token0 and token1 paid in by the replayed swaps.
    pub volume_in: (f64, f64),
    /// Steps with a position held (summed over positions), and of those in range.
    pub held_steps: (usize, usize),
    /// Value in positions, summed over steps (for the time-weighted average).
    pub deployed_value_steps: f64,
}

/// Executes intents against the pool.
struct PoolExecutor<'a> {
    pool: &'a mut Pool,
    book: &'a mut Book,
    market: &'a PoolMarket,
    costs: &'a Costs,
    time: i64,
    price: f64,
}

fn err(kind: ExecErrorKind, message: impl Into<String>) -> ExecError {
    ExecError::new(kind, message.into())
}

fn units(x: U256, token: &Token) -> f64 {
    f64::from(x) / token.scale()
}

impl PoolMarket {
    /// Pool amounts (token0, token1) as (asset, quote).
    pub fn to_base_quote<T>(&self, (a0, a1): (T, T)) -> (T, T) {
        if self.base_is_token0 { (a0, a1) } else { (a1, a0) }
    }

    /// The asset's price in quote units from the pool's price.
    pub fn price_of(&self, sqrt_price_x96: U256) -> f64 {
        let (d0, d1) = self.to_base_quote((self.base.decimals, self.quote.decimals));
        let p01 = sextant_protocols::uniswap_v3::price_token0_in_token1(sqrt_price_x96, d0, d1);
        if self.base_is_token0 { p01 } else { 1.0 / p01 }
    }
}

impl PoolExecutor<'_> {
    /// Charges gas. Gas is counted in quote units (`native_price_usd` is read as the native token's price in the
    /// quote): from the quote balance, the rest from the asset at the current price (the backtest holds no native
    /// token). With `must_afford`, a cost above everything held is refused; without it (a close that has already
    /// happened) what is held pays what it can.
    fn gas(&mut self, gas_units: u64, must_afford: bool) -> Result<f64, ExecError> {
        let cost = gas_units as f64 * self.costs.gas_price_gwei * 1e-9 * self.costs.native_price_usd;
        let (base, quote) = (&self.market.base, &self.market.quote);
        let raw = U256::from((cost * quote.scale()).round() as u128);
        if raw <= self.book.quote_bal {
            self.book.quote_bal -= raw;
        } else {
            let short = units(raw - self.book.quote_bal, quote);
            let in_base = if self.price > 0.0 {
                U256::from((short / self.price * base.scale()).ceil() as u128)
            } else {
                U256::MAX
            };
            if in_base > self.book.base_bal && must_afford {
                return Err(err(
                    ExecErrorKind::InsufficientBalance,
                    format!("gas costs {cost:.2} {}, more than is held", quote.symbol),
                ));
            }
            self.book.base_bal = self.book.base_bal.saturating_sub(in_base);
            self.book.quote_bal = U256::ZERO;
        }
        self.book.totals.gas += cost;
        Ok(cost)
    }

    fn fill(&self, token_in: &Token, amount_in: U256, token_out: &Token, amount_out: U256, gas: f64) -> Fill {
        let amt = |x: U256| Amount(x.saturating_to::<u128>());
        Fill {
            timestamp_ms: self.time,
            token_in: token_in.clone(),
            amount_in: amt(amount_in),
            token_out: token_out.clone(),
            amount_out: amt(amount_out),
            mid_price: self.price,
            exec_price: self.price,
            fee_paid: 0.0,
            gas_paid: gas,
            slippage_paid: 0.0,
            mev_paid: 0.0,
            lp_position: None,
        }
    }

    fn swap(&mut self, sell: &Token, amount: &AmountSpec, max_slippage_bps: u32) -> Result<Fill, ExecError> {
        let (base, quote) = (&self.market.base, &self.market.quote);
        let selling_base = if sell.id == base.id {
            true
        } else if sell.id == quote.id {
            false
        } else {
            return Err(err(ExecErrorKind::Unsupported, format!("{} is not a token of the pool", sell.symbol)));
        };
        let zero_for_one = selling_base == self.market.base_is_token0;
        // Gas first, so what is sold is what is left after it (a refused swap gets its gas back: see IntentRun).
        let gas = self.gas(self.costs.gas_units, true)?;
        let held = if selling_base { self.book.base_bal } else { self.book.quote_bal };
        let amount_in = match amount {
            AmountSpec::All => held,
            AmountSpec::Exact(a) => U256::from(a.0).min(held),
        };
        if amount_in.is_zero() {
            return Err(err(ExecErrorKind::InsufficientBalance, format!("no {} to sell", sell.symbol)));
        }
        let exact = I256::try_from(amount_in).map_err(|_| err(ExecErrorKind::Invalid, "amount too large"))?;
        let (r, undo) = self
            .pool
            .swap_with_undo(zero_for_one, exact, limit_for(zero_for_one))
            .map_err(|e| err(ExecErrorKind::Reverted, format!("pool refused the swap: {e}")))?;
        let (paid, got) = if zero_for_one {
            (r.amount0.into_raw(), (-r.amount1).into_raw())
        } else {
            (r.amount1.into_raw(), (-r.amount0).into_raw())
        };
        // Value at the mid price before the swap, in quote units.
        let (value_in, value_out) = if selling_base {
            (units(paid, base) * self.price, units(got, quote))
        } else {
            (units(paid, quote), units(got, base) * self.price)
        };
        let fee = value_in * f64::from(self.pool.fee) / 1e6;
        let impact = (value_in - fee - value_out).max(0.0);
        let tolerance = f64::from(max_slippage_bps.min(self.costs.slippage_tolerance_bps)) / 1e4;
        if value_in > 0.0 && impact / value_in > tolerance {
            self.pool.undo_swap(undo);
            return Err(err(
                ExecErrorKind::SlippageExceeded,
                format!("impact {:.1} bps > tolerance {:.1} bps", impact / value_in * 1e4, tolerance * 1e4),
            ));
        }
        // The pool takes at most the exact input, which is at most what is held.
        let (sold, bought) = if selling_base {
            (&mut self.book.base_bal, &mut self.book.quote_bal)
        } else {
            (&mut self.book.quote_bal, &mut self.book.base_bal)
        };
        *sold =
            sold.checked_sub(paid).ok_or_else(|| err(ExecErrorKind::Invalid, "the swap took more than was held"))?;
        *bought += got;
        self.book.totals.fees += fee;
        self.book.totals.slippage += impact;
        // Quote per asset actually paid or received, fee included.
        let (token_out, base_qty, quote_qty) = if selling_base {
            (quote, units(paid, base), units(got, quote))
        } else {
            (base, units(got, base), units(paid, quote))
        };
        let mut fill = self.fill(sell, paid, token_out, got, gas);
        fill.exec_price = if base_qty > 0.0 { quote_qty / base_qty } else { 0.0 };
        fill.fee_paid = fee;
        fill.slippage_paid = impact;
        Ok(fill)
    }

    fn open(&mut self, lower: i32, upper: i32, max0: Amount, max1: Amount) -> Result<Fill, ExecError> {
        let spacing = self.pool.tick_spacing;
        if lower >= upper || lower % spacing != 0 || upper % spacing != 0 {
            return Err(err(
                ExecErrorKind::Invalid,
                format!("range [{lower}, {upper}) is empty or off the tick spacing {spacing}"),
            ));
        }
        let bounds = sqrt_ratio_at_tick(lower).zip(sqrt_ratio_at_tick(upper));
        let (sa, sb) = bounds.ok_or_else(|| err(ExecErrorKind::Invalid, "range outside the tick limits"))?;
        if self
            .book
            .open
            .iter()
            .any(|&i| (self.book.positions[i].tick_lower, self.book.positions[i].tick_upper) == (lower, upper))
        {
            // The pool keys positions by owner and range: a second record would share the first one's fees.
            return Err(err(ExecErrorKind::Invalid, format!("a position on [{lower}, {upper}) is open already")));
        }
        let gas = self.gas(GAS_LP_OPEN, true)?;
        let (held0, held1) = self.market.to_base_quote((self.book.base_bal, self.book.quote_bal));
        let (a0, a1) = (U256::from(max0.0).min(held0), U256::from(max1.0).min(held1));
        let liquidity = liquidity_for_amounts(self.pool.sqrt_price_x96, sa, sb, a0, a1).unwrap_or(0);
        if liquidity == 0 {
            return Err(err(ExecErrorKind::InsufficientBalance, "the balances buy no liquidity in this range"));
        }
        let (used0, used1) = self
            .pool
            .mint(STRATEGY_LP, lower, upper, liquidity)
            .map_err(|e| err(ExecErrorKind::Reverted, format!("pool refused the mint: {e}")))?;
        let (used_base, used_quote) = self.market.to_base_quote((used0, used1));
        if used_base > self.book.base_bal || used_quote > self.book.quote_bal {
            // Rounding up can ask one unit more than the amounts the liquidity came from.
            let _ = self.pool.burn(STRATEGY_LP, lower, upper, liquidity);
            let _ = self.pool.collect(STRATEGY_LP, lower, upper, u128::MAX, u128::MAX);
            return Err(err(ExecErrorKind::InsufficientBalance, "the mint needs more than is held"));
        }
        self.book.base_bal -= used_base;
        self.book.quote_bal -= used_quote;
        let id = LpPositionId(format!("sim-{}", self.book.positions.len() + 1));
        let (p_lo, p_hi) = (self.market.price_of(sa), self.market.price_of(sb));
        self.book.positions.push(LpRecord {
            id: id.clone(),
            tick_lower: lower,
            tick_upper: upper,
            price_lower: p_lo.min(p_hi),
            price_upper: p_lo.max(p_hi),
            liquidity,
            opened_ms: self.time,
            closed_ms: None,
            deposit_base: used_base.saturating_to(),
            deposit_quote: used_quote.saturating_to(),
            fees_base: 0,
            fees_quote: 0,
            fees_value: 0.0,
            impermanent_loss: 0.0,
            steps_in_range: 0,
            steps_held: 0,
            sqrt_lower: sa,
            sqrt_upper: sb,
        });
        self.book.open.push(self.book.positions.len() - 1);
        if self.book.first_hold.is_none() {
            self.book.first_hold = Some((self.book.base_bal + used_base, self.book.quote_bal + used_quote));
        }
        let mut fill = self.fill(&self.market.base, used_base, &self.market.quote, used_quote, gas);
        fill.lp_position = Some(id);
        Ok(fill)
    }

    fn find(&self, id: &LpPositionId) -> Result<usize, ExecError> {
        self.book
            .open
            .iter()
            .position(|&i| &self.book.positions[i].id == id)
            .ok_or_else(|| err(ExecErrorKind::Invalid, format!("no open position {}", id.0)))
    }

    fn close(&mut self, id: &LpPositionId, keep_liquidity: bool) -> Result<Fill, ExecError> {
        let slot = self.find(id)?;
        let i = self.book.open[slot];
        let (lo, hi, l) = {
            let p = &self.book.positions[i];
            (p.tick_lower, p.tick_upper, p.liquidity)
        };
        let burn = if keep_liquidity { 0 } else { l };
        let (principal0, principal1) = self
            .pool
            .burn(STRATEGY_LP, lo, hi, burn)
            .map_err(|e| err(ExecErrorKind::Reverted, format!("pool refused the burn: {e}")))?;
        let (got0, got1) = self.pool.collect(STRATEGY_LP, lo, hi, u128::MAX, u128::MAX);
        // From here on, 0 is the asset and 1 the quote.
        let (got0, got1) = self.market.to_base_quote((U256::from(got0), U256::from(got1)));
        let (principal0, principal1) = self.market.to_base_quote((principal0, principal1));
        self.book.base_bal += got0;
        self.book.quote_bal += got1;
        let (fees0, fees1) = (got0 - principal0, got1 - principal1);
        // Paid from what the close brought in, so a position holding everything can still be closed.
        let gas = self.gas(if keep_liquidity { GAS_LP_COLLECT } else { GAS_LP_CLOSE }, false)?;
        let (base, quote) = (&self.market.base, &self.market.quote);
        let p = &mut self.book.positions[i];
        p.fees_base += fees0.saturating_to::<u128>();
        p.fees_quote += fees1.saturating_to::<u128>();
        p.fees_value += units(fees0, base) * self.price + units(fees1, quote);
        if !keep_liquidity {
            p.closed_ms = Some(self.time);
            p.impermanent_loss = units(principal0, base) * self.price + units(principal1, quote)
                - (p.deposit_base as f64 / base.scale() * self.price + p.deposit_quote as f64 / quote.scale());
            self.book.open.remove(slot);
        }
        // Both tokens come back from a close: the fill names the asset as `token_in` and the quote as `token_out`,
        // each with the amount received.
        Ok(self.fill(base, got0, quote, got1, gas))
    }
}

/// Runs one intent: a flow whose prepare carries the intent, so `execute` knows it.
struct IntentRun<'a, 'b> {
    exec: PoolExecutor<'a>,
    intent: &'b Intent,
}

impl Executor for IntentRun<'_, '_> {
    type Prepared = ();
    type Receipt = Option<Fill>;

    fn prepare(&mut self, _intent: &Intent) -> Result<(), ExecError> {
        Ok(())
    }

    fn execute(&mut self, _prepared: &()) -> Result<Option<Fill>, ExecError> {
        // Refused intents cost nothing, as a transaction refused in simulation is never sent: balances and gas
        // are put back (the pool puts itself back).
        let before = (self.exec.book.base_bal, self.exec.book.quote_bal, self.exec.book.totals.gas);
        let result = self.run();
        if result.is_err() {
            (self.exec.book.base_bal, self.exec.book.quote_bal, self.exec.book.totals.gas) = before;
        }
        result
    }

    fn validate(&mut self, _prepared: &(), receipt: Option<Fill>) -> Result<Option<Fill>, ExecError> {
        Ok(receipt)
    }
}

impl IntentRun<'_, '_> {
    fn run(&mut self) -> Result<Option<Fill>, ExecError> {
        let e = &mut self.exec;
        match self.intent {
            Intent::Swap { sell, amount, max_slippage_bps, .. } => e.swap(sell, amount, *max_slippage_bps).map(Some),
            Intent::LpOpen { pool, tick_lower, tick_upper, amount0, amount1 } => {
                if pool.address != e.market.pool_ref.address {
                    return Err(err(
                        ExecErrorKind::Unsupported,
                        format!("pool {} is not the backtest's pool", pool.address),
                    ));
                }
                e.open(*tick_lower, *tick_upper, *amount0, *amount1).map(Some)
            }
            Intent::LpClose { position } => e.close(position, false).map(Some),
            Intent::LpCollectFees { position } => e.close(position, true).map(Some),
            Intent::Hold { .. } => Ok(None),
            other => Err(err(
                ExecErrorKind::Unsupported,
                format!("the LP backtest cannot execute {:?} intents", other.kind()),
            )),
        }
    }
}

/// The LP backtest of one strategy on one pool.
pub struct LpEngine<'a, S: Strategy> {
    strategy: &'a S,
    market: &'a PoolMarket,
    costs: Costs,
    initial_cash: f64,
    initial_base: f64,
    /// 10^decimals of token0 and token1.
    scales: (f64, f64),
    /// Turns sqrtPriceX96 squared into a price in human units.
    price_factor: f64,
}

impl<'a, S: Strategy> LpEngine<'a, S> {
    /// An engine starting with `initial_cash` of the quote token.
    pub fn new(strategy: &'a S, market: &'a PoolMarket, costs: Costs, initial_cash: f64) -> Self {
        let scales = (market.base.scale(), market.quote.scale());
        // token1 per token0 in human units from sqrtPriceX96 squared.
        let (scale0, scale1) = market.to_base_quote(scales);
        let price_factor = scale0 / scale1 / 2f64.powi(192);
        LpEngine { strategy, market, costs, initial_cash, initial_base: 0.0, scales, price_factor }
    }

    /// Also starts with `units` of the asset (valued at the first close in the returns).
    pub fn with_initial_base(mut self, units: f64) -> Self {
        self.initial_base = units;
        self
    }

    /// Brings `view` up to date with the balances and positions: its LP entries are rebuilt when positions opened
    /// or closed (`changed`), otherwise only their amounts, fees and range flags move.
    fn refresh(&self, pool: &Pool, book: &Book, view: &mut PortfolioView, changed: bool) {
        let (s0, s1) = self.scales;
        view.cash = f64::from(book.quote_bal) / s1;
        view.positions[0].quantity = f64::from(book.base_bal) / s0;
        if changed {
            view.lp.clear();
            view.lp.extend(book.open.iter().map(|&i| {
                let p = &book.positions[i];
                LpView {
                    id: p.id.clone(),
                    asset: 0,
                    tick_lower: p.tick_lower,
                    tick_upper: p.tick_upper,
                    liquidity: p.liquidity,
                    amount_base: 0.0,
                    amount_quote: 0.0,
                    fees_base: 0.0,
                    fees_quote: 0.0,
                    in_range: false,
                }
            }));
        }
        for (l, &i) in view.lp.iter_mut().zip(&book.open) {
            let p = &book.positions[i];
            let m = self.market;
            let (a0, a1) = m.to_base_quote(
                amounts_for_liquidity(pool.sqrt_price_x96, p.sqrt_lower, p.sqrt_upper, p.liquidity).unwrap_or_default(),
            );
            let (f0, f1) = m.to_base_quote(pool.owed_now(STRATEGY_LP, p.tick_lower, p.tick_upper).unwrap_or_default());
            l.amount_base = f64::from(a0) / s0;
            l.amount_quote = f64::from(a1) / s1;
            l.fees_base = f0 as f64 / s0;
            l.fees_quote = f1 as f64 / s1;
            l.in_range = p.tick_lower <= pool.tick && pool.tick < p.tick_upper;
        }
    }

    /// The asset's price in quote units.
    fn price(&self, sqrt_price_x96: U256) -> f64 {
        let s = f64::from(sqrt_price_x96);
        let p01 = s * s * self.price_factor;
        if self.market.base_is_token0 { p01 } else { 1.0 / p01 }
    }

    /// The state before the first step.
    pub fn start(&self) -> LpSnapshot<S::State> {
        let (base, quote) = (&self.market.base, &self.market.quote);
        LpSnapshot {
            next_step: 0,
            pool: self.market.pool.clone(),
            book: Book {
                base_bal: U256::from((self.initial_base.max(0.0) * base.scale()) as u128),
                quote_bal: U256::from((self.initial_cash * quote.scale()).round() as u128),
                positions: Vec::new(),
                open: Vec::new(),
                totals: CostTotals::default(),
                first_hold: None,
            },
            strategy: self.strategy.init(&self.empty_view()),
            flows: FlowStats::default(),
            equity: Vec::with_capacity(self.market.steps.len()),
            prices: Vec::with_capacity(self.market.steps.len()),
            flow: (0, 0, 0),
            volume_in: (0.0, 0.0),
            held_steps: (0, 0),
            deployed_value_steps: 0.0,
        }
    }

    fn empty_view(&self) -> MarketView {
        let (base, quote) = (&self.market.base, &self.market.quote);
        MarketView {
            step: 0,
            timestamp_ms: 0,
            assets: vec![AssetView { base: base.clone(), quote: quote.clone(), candle: None, last_close: None }],
            lending: Vec::new(),
        }
    }

    /// Runs the whole backtest; `progress` is called with the step number every 65536 steps.
    pub fn run(&self, progress: &mut dyn FnMut(usize)) -> LpBacktestResult {
        let mut snap = self.start();
        self.advance(&mut snap, None, progress);
        self.finish(snap)
    }

    /// Runs the whole backtest on a flow handed over in blocks, in order (the market's own steps are not used); see
    /// [`crate::BacktestConfig::stream_pool`].
    pub fn run_blocks(
        &self,
        blocks: &mut dyn Iterator<Item = Vec<PoolStep>>,
        progress: &mut dyn FnMut(usize),
    ) -> LpBacktestResult {
        let mut snap = self.start();
        for block in blocks {
            self.advance_through(&mut snap, &block, progress);
        }
        self.finish(snap)
    }

    /// Runs steps from `snap.next_step` up to (not including) `until`, or to the end of the flow.
    pub fn advance(&self, snap: &mut LpSnapshot<S::State>, until: Option<usize>, progress: &mut dyn FnMut(usize)) {
        let steps = &self.market.steps;
        let end = until.map_or(steps.len(), |u| u.min(steps.len()));
        if snap.next_step < end {
            self.advance_through(snap, &steps[snap.next_step..end], progress);
        }
    }

    /// Runs `steps` as the flow's next steps, from `snap.next_step` on, whether or not the market holds them: a flow
    /// read while the backtest runs comes in blocks this way ([`crate::BacktestConfig::stream_pool`]).
    pub fn advance_through(
        &self,
        snap: &mut LpSnapshot<S::State>,
        steps: &[PoolStep],
        progress: &mut dyn FnMut(usize),
    ) {
        let (base, quote) = (&self.market.base, &self.market.quote);
        let LpSnapshot {
            next_step,
            pool,
            book,
            strategy: state,
            flows,
            equity,
            prices,
            flow,
            volume_in,
            held_steps,
            deployed_value_steps,
        } = snap;
        // Derived fields a saved state does not carry.
        for p in &mut book.positions {
            p.sqrt_lower = sqrt_ratio_at_tick(p.tick_lower).unwrap_or_default();
            p.sqrt_upper = sqrt_ratio_at_tick(p.tick_upper).unwrap_or_default();
        }
        let mut portfolio = PortfolioView {
            quote: quote.clone(),
            cash: 0.0,
            positions: vec![PositionView { base: base.clone(), quantity: 0.0, entry_price: None }],
            lp: Vec::new(),
            lending: Vec::new(),
        };
        self.refresh(pool, book, &mut portfolio, true);
        let mut view = self.empty_view();
        let retry = RetryPolicy { max_attempts: self.costs.max_attempts, base_delay_ms: 0, max_delay_ms: 0 };
        let mut intents = Vec::new();
        for (step, ps) in (*next_step..).zip(steps) {
            let t = replay_step(pool, ps);
            flow.0 += u64::from(t.swaps);
            flow.1 += u64::from(t.failed);
            flow.2 += u64::from(t.ticks_crossed);
            volume_in.0 += f64::from(t.in0);
            volume_in.1 += f64::from(t.in1);
            let close = self.price(pool.sqrt_price_x96);
            // The asset's price falls as sqrtPriceX96 rises when the asset is token1: either way round.
            let (at_high, at_low) = (self.price(t.high_sqrt_price_x96), self.price(t.low_sqrt_price_x96));
            let candle = Candle {
                timestamp_ms: ps.timestamp_ms,
                open: self.price(t.open_sqrt_price_x96),
                high: at_high.max(at_low),
                low: at_high.min(at_low),
                close,
                volume: {
                    let (in_base, in_quote) = self.market.to_base_quote((t.in0, t.in1));
                    f64::from(in_quote) / self.scales.1 + f64::from(in_base) / self.scales.0 * close
                },
            };
            view.step = step;
            view.timestamp_ms = ps.timestamp_ms;
            view.assets[0].candle = Some(candle);
            view.assets[0].last_close = Some(close);
            self.refresh(pool, book, &mut portfolio, false);
            for &i in &book.open {
                let p = &mut book.positions[i];
                p.steps_held += 1;
                held_steps.0 += 1;
                if p.tick_lower <= pool.tick && pool.tick < p.tick_upper {
                    p.steps_in_range += 1;
                    held_steps.1 += 1;
                }
            }
            *deployed_value_steps += portfolio.lp.iter().map(|l| l.value(close)).sum::<f64>();
            self.strategy.on_step(state, &view, &portfolio, &mut intents);
            let acted = !intents.is_empty();
            for intent in intents.drain(..) {
                if matches!(intent, Intent::Hold { .. }) {
                    flows.holds += 1;
                    continue;
                }
                let outcome = self.execute(pool, book, &intent, ps.timestamp_ms, &retry);
                record(flows, &outcome);
                self.strategy.on_outcome(state, &outcome);
            }
            if acted {
                self.refresh(pool, book, &mut portfolio, true);
                view.assets[0].last_close = Some(self.price(pool.sqrt_price_x96));
            }
            equity.push(EquityPoint { timestamp_ms: ps.timestamp_ms, equity: portfolio.equity(&view) });
            prices.push(close);
            *next_step = step + 1;
            if step & 0xFFFF == 0 {
                progress(step);
            }
        }
    }

    fn execute(
        &self,
        pool: &mut Pool,
        book: &mut Book,
        intent: &Intent,
        time: i64,
        retry: &RetryPolicy,
    ) -> FlowOutcome {
        let price = self.price(pool.sqrt_price_x96);
        let exec = PoolExecutor { pool, book, market: self.market, costs: &self.costs, time, price };
        let mut run = IntentRun { exec, intent };
        run_flow(&mut run, intent, retry)
    }

    /// Ends the backtest: positions still open are valued where they stand (owed fees counted, principal against
    /// holding), and the metrics computed.
    pub fn finish(&self, snap: LpSnapshot<S::State>) -> LpBacktestResult {
        let LpSnapshot {
            pool,
            mut book,
            strategy: state,
            flows,
            equity,
            prices,
            flow,
            volume_in,
            held_steps: (held_steps, in_range_steps),
            deployed_value_steps,
            ..
        } = snap;
        let (base, quote) = (&self.market.base, &self.market.quote);
        let last = prices.last().copied().unwrap_or_else(|| self.price(pool.sqrt_price_x96));
        // Positions still open are valued where they stand: owed fees counted, principal against holding.
        for &i in &book.open {
            let p = &mut book.positions[i];
            let bounds = sqrt_ratio_at_tick(p.tick_lower).zip(sqrt_ratio_at_tick(p.tick_upper));
            let (a0, a1) = self.market.to_base_quote(
                bounds
                    .and_then(|(sa, sb)| amounts_for_liquidity(pool.sqrt_price_x96, sa, sb, p.liquidity))
                    .unwrap_or_default(),
            );
            let (f0, f1) =
                self.market.to_base_quote(pool.owed_now(STRATEGY_LP, p.tick_lower, p.tick_upper).unwrap_or_default());
            p.fees_base += f0;
            p.fees_quote += f1;
            p.fees_value += f0 as f64 / base.scale() * last + f1 as f64 / quote.scale();
            p.impermanent_loss = units(a0, base) * last + units(a1, quote)
                - (p.deposit_base as f64 / base.scale() * last + p.deposit_quote as f64 / quote.scale());
        }
        let initial = self.initial_cash + self.initial_base * prices.first().copied().unwrap_or(0.0);
        let metrics = compute_metrics(initial, &equity, &[], &book.totals);
        let final_equity = metrics.final_equity;
        let span_ms = match (equity.first(), equity.last()) {
            (Some(a), Some(b)) => (b.timestamp_ms - a.timestamp_ms) as f64,
            _ => 0.0,
        };
        let years = span_ms / YEAR_MS;
        let fees_earned: f64 = book.positions.iter().map(|p| p.fees_value).sum();
        let avg_deployed = if equity.is_empty() { 0.0 } else { deployed_value_steps / equity.len() as f64 };
        let hold = book.first_hold.map_or(initial, |(h0, h1)| units(h0, base) * last + units(h1, quote));
        let held_by_cost = serde_json::to_value(&state)
            .ok()
            .and_then(|v| v.get("held_by_cost").and_then(serde_json::Value::as_u64))
            .unwrap_or(0) as usize;
        let lp = LpMetrics {
            fees_earned,
            fee_apr: if avg_deployed > 0.0 && years > 0.0 { fees_earned / avg_deployed / years } else { 0.0 },
            apr: if years > 0.0 { (final_equity / initial - 1.0) / years } else { 0.0 },
            impermanent_loss: book.positions.iter().map(|p| p.impermanent_loss).sum(),
            value_vs_hold: final_equity - hold,
            time_in_range: if held_steps > 0 { in_range_steps as f64 / held_steps as f64 } else { 0.0 },
            rebalances: book.positions.len().saturating_sub(1),
            gas: book.totals.gas,
            swap_fees: book.totals.fees,
            swap_impact: book.totals.slippage,
            rebalance_cost: book.totals.gas + book.totals.fees + book.totals.slippage,
            held_by_cost,
        };
        let result = BacktestResult {
            strategy: self.strategy.name(),
            markets: vec![self.market.source.clone()],
            metrics,
            trades: Vec::new(),
            equity,
            flows,
        };
        LpBacktestResult { result, lp, positions: book.positions, prices, flow, volume_in }
    }
}
