//! The leverage backtest: a strategy loops collateral and debt on an Aave v3 market modelled by
//! `protocols::aave_v3::Market` (two reserves with their own rate curves; indexes, health factor, borrow and
//! withdrawal checks and liquidations in the contracts' integer arithmetic). Other lenders and borrowers give the
//! reserves their size and utilisation, so rates move with the strategy's own borrowing. The collateral's price
//! comes from candles; its oracle price is each bar's close.
//!
//! Liquidation: within a bar the price reaches its low before the strategy can react at the close. When the health
//! factor at the low is below one, a liquidator repays as much debt as the close factor allows (and again, while it
//! stays below one), taking collateral with the liquidation bonus and the protocol its fee, exactly as
//! `LiquidationLogic` does. Swaps pay the DEX fee, constant-product price impact on `pool_depth_usd` and MEV; gas is
//! paid by the deployment key and counted as an expense.

use crate::config::Costs;
use crate::engine::{BacktestResult, CostTotals, EquityPoint, FlowStats};
use crate::flows::{Atomic, run_intents};
use crate::metrics::compute_metrics;
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};
use sextant_market::{AssetView, Candle, CandleSeries, MarketView};
use sextant_protocols::aave_v3::{self, Account, AccountData, Holding, Market};
use sextant_protocols::constant_product;
use sextant_strategy::{
    Decision, ExecError, ExecErrorKind, LendingPositionView, PortfolioView, PositionView, RetryPolicy, Strategy,
};
use sextant_types::{Amount, AmountSpec, Fill, Intent, Token};

/// Reserve index of the collateral in the market.
pub const COLLATERAL: usize = 0;
/// Reserve index of the debt asset.
pub const DEBT: usize = 1;
/// Gas of a supply, borrow, withdrawal or repayment on Aave.
pub const GAS_AAVE: u64 = 250_000;

/// The leverage backtest's market: the Aave model at the start, the collateral's candles and the tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct LeverageMarket {
    /// The collateral (e.g. WETH).
    pub collateral: Token,
    /// The debt asset, also the quote (e.g. USDC).
    pub debt: Token,
    /// The market's id in intents and views.
    pub id: String,
    /// The Aave market at the start, other users' positions in it.
    pub aave: Market,
    /// Other users' accounts (lenders and borrowers), at the start.
    pub others: Vec<Account>,
    /// The collateral's price in the debt asset.
    pub candles: CandleSeries,
    /// Where the data came from.
    pub source: String,
}

/// A liquidation the backtest carried out, with the account as it stood just before (so a test can recompute it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiquidationRecord {
    /// Step.
    pub step: usize,
    /// Time, unix ms.
    pub timestamp_ms: i64,
    /// The collateral's price the liquidation ran at (the bar's low), debt asset per collateral unit.
    pub price: f64,
    /// The oracle prices (8 decimals) it ran at: collateral, debt.
    pub oracle: (U256, U256),
    /// The account before.
    pub before: Account,
    /// The market before.
    pub market_before: Market,
    /// What the pool did.
    pub result: aave_v3::Liquidation,
    /// The liquidation penalty: collateral taken (with the protocol fee) at the liquidation price minus the debt
    /// repaid, in the debt asset.
    pub penalty: f64,
}

/// Everything needed to resume a leverage backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeverageSnapshot<St> {
    /// Next step.
    pub next_step: usize,
    /// The Aave market.
    pub aave: Market,
    /// The strategy's account.
    pub account: Account,
    /// Debt asset held, base units.
    pub cash: U256,
    /// Collateral held (not supplied), base units.
    pub collateral_held: U256,
    /// Strategy state.
    pub strategy: St,
    /// Intent outcomes.
    pub flows: FlowStats,
    /// Costs.
    pub totals: CostTotals,
    /// Equity after each step.
    pub equity: Vec<EquityPoint>,
    /// Decision log.
    pub decisions: Vec<Decision>,
    /// Liquidations.
    pub liquidations: Vec<LiquidationRecord>,
    /// Health factor after each step (None without debt).
    pub health: Vec<Option<f64>>,
    /// Supplied collateral and debt at the end of the last step (base units), to measure accrual.
    pub last_position: (U256, U256),
    /// Interest paid on the debt so far, debt asset.
    pub interest_paid: f64,
    /// Interest earned on the collateral so far, in the debt asset at the price when earned.
    pub interest_earned: f64,
    /// Largest leverage after a step.
    pub max_leverage: f64,
}

/// What a leverage backtest reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeverageBacktestResult {
    /// Equity, metrics and flows.
    pub result: BacktestResult,
    /// Every liquidation.
    pub liquidations: Vec<LiquidationRecord>,
    /// The decision log.
    pub decisions: Vec<Decision>,
    /// Health factor after each step.
    pub health: Vec<Option<f64>>,
    /// Lowest health factor seen after a step.
    pub min_health_factor: Option<f64>,
    /// Largest leverage (collateral value over equity in the market) after a step.
    pub max_leverage: f64,
    /// Interest paid on the debt, debt asset.
    pub interest_paid: f64,
    /// Interest earned on the collateral, in the debt asset at the last price.
    pub interest_earned: f64,
    /// Liquidation penalties, total.
    pub liquidation_penalty: f64,
    /// Collateral held throughout, bought at the start with the same cash, for comparison (final value).
    pub hold_value: f64,
}

fn err(kind: ExecErrorKind, message: impl Into<String>) -> ExecError {
    ExecError::new(kind, message.into())
}

fn to_f(x: U256, t: &Token) -> f64 {
    f64::from(x) / t.scale()
}

fn units(x: f64, t: &Token) -> U256 {
    U256::from(Amount::from_units(x.max(0.0), t).map_or(0, |a| a.0))
}

/// An oracle price (8 decimals) from a price in the debt asset (1 debt unit = 1e8).
pub fn oracle_price(price: f64) -> U256 {
    U256::from((price * 1e8).round().max(1.0) as u128)
}

struct LeverageExecutor<'a> {
    market: &'a LeverageMarket,
    costs: &'a Costs,
    aave: &'a mut Market,
    account: &'a mut Account,
    cash: &'a mut U256,
    collateral_held: &'a mut U256,
    totals: &'a mut CostTotals,
    now: u64,
    time_ms: i64,
    price: f64,
}

impl LeverageExecutor<'_> {
    fn reserve_of(&self, t: &Token) -> Result<usize, ExecError> {
        if t.symbol == self.market.collateral.symbol {
            Ok(COLLATERAL)
        } else if t.symbol == self.market.debt.symbol {
            Ok(DEBT)
        } else {
            Err(err(ExecErrorKind::Unsupported, format!("{} is not a reserve of this market", t.symbol)))
        }
    }

    fn held(&mut self, i: usize) -> &mut U256 {
        if i == COLLATERAL { self.collateral_held } else { self.cash }
    }

    fn token(&self, i: usize) -> &Token {
        if i == COLLATERAL { &self.market.collateral } else { &self.market.debt }
    }

    fn gas(&mut self) -> f64 {
        let usd = GAS_AAVE as f64 * self.costs.gas_price_gwei * 1e-9 * self.costs.native_price_usd;
        self.totals.gas += usd;
        usd
    }

    fn fill(&self, i_in: usize, amount_in: U256, i_out: usize, amount_out: U256, gas: f64) -> Fill {
        let a = |x: U256| Amount(u128::try_from(x).unwrap_or(u128::MAX));
        Fill {
            timestamp_ms: self.time_ms,
            token_in: self.token(i_in).clone(),
            amount_in: a(amount_in),
            token_out: self.token(i_out).clone(),
            amount_out: a(amount_out),
            mid_price: self.price,
            exec_price: self.price,
            fee_paid: 0.0,
            gas_paid: gas,
            slippage_paid: 0.0,
            mev_paid: 0.0,
            lp_position: None,
        }
    }

    fn aave_err(e: aave_v3::AaveError) -> ExecError {
        err(ExecErrorKind::Reverted, e.to_string())
    }

    fn carry_out(&mut self, intent: &Intent) -> Result<Option<Fill>, ExecError> {
        let now = self.now;
        match intent {
            Intent::Supply { token, amount, .. } => {
                let i = self.reserve_of(token)?;
                let have = *self.held(i);
                let x = match amount {
                    AmountSpec::All => have,
                    AmountSpec::Exact(a) => U256::from(a.0),
                };
                if x.is_zero() || x > have {
                    return Err(err(ExecErrorKind::InsufficientBalance, format!("cannot supply {x} of {have} held")));
                }
                self.aave.supply(self.account, i, x, now).map_err(Self::aave_err)?;
                *self.held(i) -= x;
                let gas = self.gas();
                Ok(Some(self.fill(i, x, i, U256::ZERO, gas)))
            }
            Intent::Withdraw { token, amount, .. } => {
                let i = self.reserve_of(token)?;
                let x = match amount {
                    AmountSpec::All => None,
                    AmountSpec::Exact(a) => Some(U256::from(a.0)),
                };
                let got = self.aave.withdraw(self.account, i, x, now).map_err(Self::aave_err)?;
                *self.held(i) += got;
                let gas = self.gas();
                Ok(Some(self.fill(i, U256::ZERO, i, got, gas)))
            }
            Intent::Borrow { token, amount, .. } => {
                let i = self.reserve_of(token)?;
                let x = U256::from(amount.0);
                self.aave.borrow(self.account, i, x, now).map_err(Self::aave_err)?;
                *self.held(i) += x;
                let gas = self.gas();
                Ok(Some(self.fill(i, U256::ZERO, i, x, gas)))
            }
            Intent::Repay { token, amount, .. } => {
                let i = self.reserve_of(token)?;
                let have = *self.held(i);
                // All repays what is held, up to the whole debt (the contract's max would pull the whole debt).
                let x = match amount {
                    AmountSpec::All => have,
                    AmountSpec::Exact(a) => U256::from(a.0).min(have),
                };
                if x.is_zero() {
                    return Err(err(ExecErrorKind::InsufficientBalance, "nothing to repay with"));
                }
                let paid = self.aave.repay(self.account, i, Some(x), now).map_err(Self::aave_err)?;
                *self.held(i) -= paid;
                let gas = self.gas();
                Ok(Some(self.fill(i, paid, i, U256::ZERO, gas)))
            }
            Intent::Swap { sell, buy, amount, max_slippage_bps } => {
                let (i, o) = (self.reserve_of(sell)?, self.reserve_of(buy)?);
                if i == o {
                    return Err(err(ExecErrorKind::Unsupported, "a swap needs two different tokens"));
                }
                let have = *self.held(i);
                let x = match amount {
                    AmountSpec::All => have,
                    AmountSpec::Exact(a) => U256::from(a.0),
                };
                if x.is_zero() || x > have {
                    return Err(err(ExecErrorKind::InsufficientBalance, format!("cannot sell {x} of {have} held")));
                }
                let amount_in = to_f(x, self.token(i));
                let notional = if i == COLLATERAL { amount_in * self.price } else { amount_in };
                let c = self.costs;
                let impact = constant_product::price_impact(notional, c.pool_depth_usd / 2.0);
                let tolerance = f64::from(*max_slippage_bps).min(f64::from(c.slippage_tolerance_bps)) / 1e4;
                if impact > tolerance && *max_slippage_bps != u32::MAX {
                    return Err(err(
                        ExecErrorKind::SlippageExceeded,
                        format!("impact {:.1} bps > tolerance {:.1} bps", impact * 1e4, tolerance * 1e4),
                    ));
                }
                let mev = (c.mev_bps / 1e4).min((tolerance - impact).max(0.0));
                let keep = (1.0 - c.fee_bps / 1e4) * (1.0 - impact) * (1.0 - mev);
                let out_f = if i == COLLATERAL { amount_in * self.price * keep } else { amount_in / self.price * keep };
                let out = units(out_f, self.token(o));
                self.totals.fees += notional * c.fee_bps / 1e4;
                self.totals.slippage += notional * impact;
                self.totals.mev += notional * mev;
                *self.held(i) -= x;
                *self.held(o) += out;
                let gas = {
                    let usd = c.gas_units as f64 * c.gas_price_gwei * 1e-9 * c.native_price_usd;
                    self.totals.gas += usd;
                    usd
                };
                Ok(Some(self.fill(i, x, o, out, gas)))
            }
            Intent::Hold { .. } => Ok(None),
            other => Err(err(
                ExecErrorKind::Unsupported,
                format!("the leverage backtest cannot execute {:?} intents", other.kind()),
            )),
        }
    }
}

impl Atomic for LeverageExecutor<'_> {
    type Saved = (Market, Account, U256, U256, CostTotals);

    fn save(&self) -> Self::Saved {
        (self.aave.clone(), self.account.clone(), *self.cash, *self.collateral_held, *self.totals)
    }

    fn restore(&mut self, (aave, account, cash, held, totals): Self::Saved) {
        *self.aave = aave;
        *self.account = account;
        *self.cash = cash;
        *self.collateral_held = held;
        *self.totals = totals;
    }

    fn run(&mut self, intent: &Intent) -> Result<Option<Fill>, ExecError> {
        self.carry_out(intent)
    }
}

/// The leverage backtest of one strategy.
pub struct LeverageEngine<'a, S: Strategy> {
    strategy: &'a S,
    market: &'a LeverageMarket,
    costs: Costs,
    initial_cash: f64,
}

impl<'a, S: Strategy> LeverageEngine<'a, S> {
    /// An engine for `strategy` on `market`, starting with `initial_cash` of the debt asset.
    pub fn new(strategy: &'a S, market: &'a LeverageMarket, costs: Costs, initial_cash: f64) -> Self {
        LeverageEngine { strategy, market, costs, initial_cash }
    }

    fn view(&self, step: usize, candle: &Candle) -> MarketView {
        MarketView {
            step,
            timestamp_ms: candle.timestamp_ms,
            assets: vec![AssetView {
                base: self.market.collateral.clone(),
                quote: self.market.debt.clone(),
                candle: Some(*candle),
                last_close: Some(candle.close),
            }],
            lending: Vec::new(),
        }
    }

    fn secs(ms: i64) -> u64 {
        u64::try_from(ms / 1000).unwrap_or(0)
    }

    /// The state before the first step.
    pub fn start(&self) -> LeverageSnapshot<S::State> {
        let empty = MarketView { step: 0, timestamp_ms: 0, assets: Vec::new(), lending: Vec::new() };
        LeverageSnapshot {
            next_step: 0,
            aave: self.market.aave.clone(),
            account: vec![Holding::default(); self.market.aave.reserves.len()],
            cash: units(self.initial_cash, &self.market.debt),
            collateral_held: U256::ZERO,
            strategy: self.strategy.init(&empty),
            flows: FlowStats::default(),
            totals: CostTotals::default(),
            equity: Vec::new(),
            decisions: Vec::new(),
            liquidations: Vec::new(),
            health: Vec::new(),
            last_position: (U256::ZERO, U256::ZERO),
            interest_paid: 0.0,
            interest_earned: 0.0,
            max_leverage: 0.0,
        }
    }

    /// The account's supplied collateral and debt now, in their units, and its account data.
    fn position(aave: &Market, account: &Account, now: u64) -> (U256, U256, Option<AccountData>) {
        let r = &aave.reserves;
        let supplied = r[COLLATERAL]
            .normalized_income(now)
            .and_then(|i| aave_v3::ray_mul(account[COLLATERAL].scaled_supply, i))
            .unwrap_or_default();
        let debt = r[DEBT]
            .normalized_debt(now)
            .and_then(|i| aave_v3::ray_mul(account[DEBT].scaled_debt, i))
            .unwrap_or_default();
        (supplied, debt, aave.account_data(account, now).ok())
    }

    fn portfolio(&self, snap: &LeverageSnapshot<S::State>, now: u64, price: f64) -> PortfolioView {
        let (c, d) = (&self.market.collateral, &self.market.debt);
        let (supplied, debt, _) = Self::position(&snap.aave, &snap.account, now);
        let (supplied, debt) = (to_f(supplied, c), to_f(debt, d));
        PortfolioView {
            quote: d.clone(),
            cash: to_f(snap.cash, d),
            positions: vec![PositionView {
                base: c.clone(),
                quantity: to_f(snap.collateral_held, c),
                entry_price: None,
            }],
            lp: Vec::new(),
            lending: if supplied > 0.0 || debt > 0.0 {
                vec![LendingPositionView {
                    market: self.market.id.clone(),
                    supplied,
                    borrowed: debt,
                    shares: 0.0,
                    rewards: 0.0,
                    value_quote: supplied * price - debt,
                }]
            } else {
                Vec::new()
            },
        }
    }

    /// Runs the whole backtest.
    pub fn run(&self) -> LeverageBacktestResult {
        let mut snap = self.start();
        self.advance(&mut snap, None);
        self.finish(snap)
    }

    /// Runs steps until `until` (or the end).
    pub fn advance(&self, snap: &mut LeverageSnapshot<S::State>, until: Option<usize>) {
        let candles = &self.market.candles.candles;
        let end = until.unwrap_or(candles.len()).min(candles.len());
        let retry = RetryPolicy { max_attempts: self.costs.max_attempts, base_delay_ms: 0, max_delay_ms: 0 };
        while snap.next_step < end {
            let step = snap.next_step;
            let k = candles[step];
            let now = Self::secs(k.timestamp_ms);
            // Interest since the last step (before anything moves the position).
            let (supplied, debt, _) = Self::position(&snap.aave, &snap.account, now);
            snap.interest_paid += to_f(debt.saturating_sub(snap.last_position.1), &self.market.debt);
            snap.interest_earned +=
                to_f(supplied.saturating_sub(snap.last_position.0), &self.market.collateral) * k.close;
            // 1. The bar's low comes before the close: liquidations at that price.
            self.liquidate_at(snap, step, k.timestamp_ms, now, k.low.min(k.close));
            // 2. The strategy at the close.
            snap.aave.prices[COLLATERAL] = oracle_price(k.close);
            let view = self.view(step, &k);
            let portfolio = self.portfolio(snap, now, k.close);
            let mut intents = Vec::new();
            self.strategy.on_step(&mut snap.strategy, &view, &portfolio, &mut intents);
            let mut exec = LeverageExecutor {
                market: self.market,
                costs: &self.costs,
                aave: &mut snap.aave,
                account: &mut snap.account,
                cash: &mut snap.cash,
                collateral_held: &mut snap.collateral_held,
                totals: &mut snap.totals,
                now,
                time_ms: k.timestamp_ms,
                price: k.close,
            };
            run_intents(self.strategy, &mut snap.strategy, &mut snap.flows, &retry, &intents, &mut exec);
            let mut decided = self.strategy.take_decisions(&mut snap.strategy);
            snap.decisions.append(&mut decided);
            // 3. Equity at the close.
            let (supplied, debt, data) = Self::position(&snap.aave, &snap.account, now);
            snap.last_position = (supplied, debt);
            let value = to_f(supplied, &self.market.collateral) * k.close;
            let net = value - to_f(debt, &self.market.debt);
            if net > 0.0 {
                snap.max_leverage = snap.max_leverage.max(value / net);
            }
            let p = self.portfolio(snap, now, k.close);
            let equity = p.equity(&view) - snap.totals.gas;
            snap.equity.push(EquityPoint { timestamp_ms: k.timestamp_ms, equity });
            snap.health.push((!debt.is_zero()).then(|| data.map_or(0.0, |d| f64::from(d.health_factor) / 1e18)));
            snap.next_step += 1;
        }
    }

    /// While the account's health factor at `price` is below one, a liquidator repays what the close factor allows.
    fn liquidate_at(&self, snap: &mut LeverageSnapshot<S::State>, step: usize, time_ms: i64, now: u64, price: f64) {
        snap.aave.prices[COLLATERAL] = oracle_price(price);
        for _ in 0..16 {
            let Ok(data) = snap.aave.account_data(&snap.account, now) else { return };
            if data.health_factor >= aave_v3::HEALTH_FACTOR_LIQUIDATION_THRESHOLD {
                return;
            }
            let before = snap.account.clone();
            let market_before = snap.aave.clone();
            match snap.aave.liquidate(&mut snap.account, COLLATERAL, DEBT, U256::MAX, now) {
                Ok(result) => {
                    let seized = to_f(result.collateral_to_liquidator + result.protocol_fee, &self.market.collateral);
                    let penalty = seized * price - to_f(result.debt_repaid, &self.market.debt);
                    snap.liquidations.push(LiquidationRecord {
                        step,
                        timestamp_ms: time_ms,
                        price,
                        oracle: (snap.aave.prices[COLLATERAL], snap.aave.prices[DEBT]),
                        before,
                        market_before,
                        result,
                        penalty,
                    });
                }
                Err(_) => return,
            }
        }
    }

    /// Ends the backtest: the position is valued where it stands at the last close.
    pub fn finish(&self, snap: LeverageSnapshot<S::State>) -> LeverageBacktestResult {
        let metrics = compute_metrics(self.initial_cash, &snap.equity, &[], &snap.totals);
        let last = self.market.candles.candles.get(snap.next_step.saturating_sub(1));
        let first = self.market.candles.candles.first();
        let hold_value = match (first, last) {
            (Some(a), Some(b)) => self.initial_cash / a.close * b.close,
            _ => self.initial_cash,
        };
        let min_health_factor = snap.health.iter().flatten().copied().reduce(f64::min);
        let liquidation_penalty = snap.liquidations.iter().map(|l| l.penalty).sum();
        let result = BacktestResult {
            strategy: self.strategy.name(),
            markets: vec![self.market.source.clone()],
            metrics,
            trades: Vec::new(),
            equity: snap.equity,
            flows: snap.flows,
        };
        LeverageBacktestResult {
            result,
            liquidations: snap.liquidations,
            decisions: snap.decisions,
            health: snap.health,
            min_health_factor,
            max_leverage: snap.max_leverage,
            interest_paid: snap.interest_paid,
            interest_earned: snap.interest_earned,
            liquidation_penalty,
            hold_value,
        }
    }
}
