//! The fixed-yield backtest: a floating lending market (an Aave v3 reserve, its supply rate from a series) and a
//! Pendle PT on it that matures at a set time. Floating positions accrue as scaled aTokens on a liquidity index
//! (`protocols::aave_v3`); PTs are bought and sold at the price their implied APY gives with Pendle's fee on the rate
//! (`protocols::pendle`), the trade moving the implied rate against the trader in proportion to its share of the
//! pool; at maturity a PT redeems one for one.
//! The report compares the strategy with holding the floating market throughout.

use crate::config::Costs;
use crate::engine::{BacktestResult, CostTotals, EquityPoint, FlowStats};
use crate::flows::{Atomic, run_intents};
use crate::metrics::compute_metrics;
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};
use sextant_market::{LendingProtocol, LendingView, MarketView, RatePoint, RateSeries};
use sextant_protocols::{aave_v3, pendle::PtMarket};
use sextant_strategy::{
    Decision, ExecError, ExecErrorKind, LendingPositionView, PortfolioView, PositionView, RetryPolicy, Strategy,
};
use sextant_types::{Amount, AmountSpec, Fill, Intent, Token};

const YEAR_MS: f64 = 365.0 * 86_400_000.0;
/// Gas of a Pendle swap through its router.
pub const GAS_PENDLE_SWAP: u64 = 350_000;
/// Gas of a supply or withdrawal on the floating market.
pub const GAS_FLOATING: u64 = 230_000;

/// The two legs and the steps.
#[derive(Debug, Clone, PartialEq)]
pub struct PtMarketData {
    /// The asset (quote).
    pub asset: Token,
    /// The PT token.
    pub pt: Token,
    /// The floating market's series.
    pub floating: RateSeries,
    /// The PT's implied APY series.
    pub implied: RateSeries,
    /// Maturity, unix ms.
    pub maturity_ms: i64,
    /// Pendle's `lnFeeRateRoot`.
    pub ln_fee_rate_root: f64,
    /// The PT pool's liquidity, USD.
    pub pt_liquidity_usd: f64,
    /// How far a trade moves the implied APY per unit of the pool it takes (0.1: a tenth of the pool moves it 1 %).
    pub rate_impact: f64,
    /// Where the data came from.
    pub source: String,
}

/// Everything needed to resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedYieldSnapshot<St> {
    /// Next step.
    pub next_step: usize,
    /// Cash, base units.
    pub cash: U256,
    /// The floating market's liquidity index (ray) and its time.
    pub index: (U256, i64),
    /// Scaled aTokens held.
    pub scaled: U256,
    /// PT held, base units (the asset's decimals).
    pub pt: U256,
    /// Strategy state.
    pub strategy: St,
    /// Intent outcomes.
    pub flows: FlowStats,
    /// Costs.
    pub totals: CostTotals,
    /// Equity after each step.
    pub equity: Vec<EquityPoint>,
    /// The floating market held throughout, after each step.
    pub benchmark: Vec<EquityPoint>,
    /// Decision log.
    pub decisions: Vec<Decision>,
    /// Steps holding PT.
    pub pt_steps: usize,
}

/// What a fixed-yield backtest reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedYieldResult {
    /// Equity, metrics, flows.
    pub result: BacktestResult,
    /// Holding the floating market throughout.
    pub benchmark: Vec<EquityPoint>,
    /// APY realised.
    pub realised_apy: f64,
    /// APY of the floating market held throughout.
    pub floating_apy: f64,
    /// Share of steps holding PT.
    pub time_in_pt: f64,
    /// Decision log.
    pub decisions: Vec<Decision>,
}

fn err(kind: ExecErrorKind, m: impl Into<String>) -> ExecError {
    ExecError::new(kind, m.into())
}

fn f(x: U256, t: &Token) -> f64 {
    f64::from(x) / t.scale()
}

fn units(x: f64, t: &Token) -> U256 {
    U256::from(Amount::from_units(x.max(0.0), t).map_or(0, |a| a.0))
}

/// The fixed-yield engine.
pub struct FixedYieldEngine<'a, S: Strategy> {
    strategy: &'a S,
    data: &'a PtMarketData,
    costs: Costs,
    initial_cash: f64,
    times: Vec<i64>,
}

struct Exec<'a> {
    data: &'a PtMarketData,
    costs: &'a Costs,
    cash: &'a mut U256,
    scaled: &'a mut U256,
    pt: &'a mut U256,
    totals: &'a mut CostTotals,
    index: U256,
    pt_market: PtMarket,
    time: i64,
}

impl Exec<'_> {
    fn gas(&mut self, units: u64) -> f64 {
        let usd = units as f64 * self.costs.gas_price_gwei * 1e-9 * self.costs.native_price_usd;
        self.totals.gas += usd;
        usd
    }

    fn fill(&self, token_in: &Token, a_in: U256, token_out: &Token, a_out: U256, gas: f64) -> Fill {
        let a = |x: U256| Amount(u128::try_from(x).unwrap_or(u128::MAX));
        Fill {
            timestamp_ms: self.time,
            token_in: token_in.clone(),
            amount_in: a(a_in),
            token_out: token_out.clone(),
            amount_out: a(a_out),
            mid_price: self.pt_market.pt_price(),
            exec_price: self.pt_market.pt_price(),
            fee_paid: 0.0,
            gas_paid: gas,
            slippage_paid: 0.0,
            mev_paid: 0.0,
            lp_position: None,
        }
    }

    fn carry_out(&mut self, intent: &Intent) -> Result<Option<Fill>, ExecError> {
        let (asset, pt) = (&self.data.asset.clone(), &self.data.pt.clone());
        match intent {
            Intent::Supply { token, amount, .. } if token.symbol == asset.symbol => {
                let x = match amount {
                    AmountSpec::All => *self.cash,
                    AmountSpec::Exact(a) => U256::from(a.0),
                };
                if x.is_zero() || x > *self.cash {
                    return Err(err(ExecErrorKind::InsufficientBalance, "nothing to supply"));
                }
                let s = aave_v3::ray_div(x, self.index).unwrap_or_default();
                if s.is_zero() {
                    return Err(err(ExecErrorKind::Reverted, "aave v3: amount rounds to zero scaled tokens"));
                }
                *self.scaled += s;
                *self.cash -= x;
                let gas = self.gas(GAS_FLOATING);
                Ok(Some(self.fill(asset, x, asset, U256::ZERO, gas)))
            }
            Intent::Withdraw { token, amount, .. } if token.symbol == asset.symbol => {
                let held = aave_v3::ray_mul(*self.scaled, self.index).unwrap_or_default();
                let x = match amount {
                    AmountSpec::All => held,
                    AmountSpec::Exact(a) => U256::from(a.0),
                };
                if x.is_zero() || x > held {
                    return Err(err(ExecErrorKind::InsufficientBalance, "nothing to withdraw"));
                }
                let burn = if x == held { *self.scaled } else { aave_v3::ray_div(x, self.index).unwrap_or_default() };
                *self.scaled -= burn.min(*self.scaled);
                *self.cash += x;
                let gas = self.gas(GAS_FLOATING);
                Ok(Some(self.fill(asset, U256::ZERO, asset, x, gas)))
            }
            Intent::Swap { sell, buy, amount, max_slippage_bps } => {
                let buying = sell.symbol == asset.symbol && buy.symbol == pt.symbol;
                let selling = sell.symbol == pt.symbol && buy.symbol == asset.symbol;
                if !buying && !selling {
                    return Err(err(
                        ExecErrorKind::Unsupported,
                        format!("no market from {} to {}", sell.symbol, buy.symbol),
                    ));
                }
                let have = if buying { *self.cash } else { *self.pt };
                let x = match amount {
                    AmountSpec::All => have,
                    AmountSpec::Exact(a) => U256::from(a.0),
                };
                if x.is_zero() || x > have {
                    return Err(err(ExecErrorKind::InsufficientBalance, format!("cannot sell {x} of {have}")));
                }
                let matured = self.pt_market.secs_to_maturity <= 0.0;
                if buying && matured {
                    return Err(err(ExecErrorKind::Reverted, "the PT has matured: nothing to buy"));
                }
                let amount_in = f(x, asset);
                let price = self.pt_market.pt_price();
                let notional = if buying { amount_in } else { amount_in * price };
                // Pendle's AMM trades on the implied rate: a trade moves the rate against the trader in proportion to
                // its share of the pool, and the price by that move over the time left. At maturity a PT redeems one
                // for one through the PT contract: no pool, no fee, no impact.
                let shift = if matured { 0.0 } else { notional / self.data.pt_liquidity_usd * self.data.rate_impact };
                let mut traded = self.pt_market;
                traded.implied_apy += if buying { -shift } else { shift };
                let impact = if matured { 0.0 } else { (1.0 - price / traded.pt_price()).abs() };
                let tolerance = f64::from(*max_slippage_bps).min(f64::from(self.costs.slippage_tolerance_bps)) / 1e4;
                if impact > tolerance && *max_slippage_bps != u32::MAX {
                    return Err(err(
                        ExecErrorKind::SlippageExceeded,
                        format!("impact {:.1} bps > tolerance {:.1} bps", impact * 1e4, tolerance * 1e4),
                    ));
                }
                let out = if buying { traded.buy_pt(amount_in) } else { traded.sell_pt(amount_in) };
                // costs as money: impact against the mid price, and the fee on the rate
                let no_fee = PtMarket { ln_fee_rate_root: 0.0, ..traded };
                let (ideal, mid) = if buying {
                    (no_fee.buy_pt(amount_in) * price, amount_in)
                } else {
                    (no_fee.sell_pt(amount_in), amount_in * price)
                };
                let got = if buying { out * price } else { out };
                self.totals.slippage += (mid - ideal).max(0.0);
                self.totals.fees += (ideal - got).max(0.0);
                let out_units = units(out, asset);
                if buying {
                    *self.cash -= x;
                    *self.pt += out_units;
                } else {
                    *self.pt -= x;
                    *self.cash += out_units;
                }
                let gas = self.gas(GAS_PENDLE_SWAP);
                Ok(Some(self.fill(sell, x, buy, out_units, gas)))
            }
            Intent::Hold { .. } => Ok(None),
            other => Err(err(
                ExecErrorKind::Unsupported,
                format!("the fixed-yield backtest cannot execute {:?}", other.kind()),
            )),
        }
    }
}

impl Atomic for Exec<'_> {
    type Saved = (U256, U256, U256, CostTotals);

    fn save(&self) -> Self::Saved {
        (*self.cash, *self.scaled, *self.pt, *self.totals)
    }

    fn restore(&mut self, saved: Self::Saved) {
        (*self.cash, *self.scaled, *self.pt, *self.totals) = saved;
    }

    fn run(&mut self, intent: &Intent) -> Result<Option<Fill>, ExecError> {
        self.carry_out(intent)
    }
}

impl<'a, S: Strategy> FixedYieldEngine<'a, S> {
    /// An engine for `strategy` on `data`, starting with `initial_cash`.
    pub fn new(strategy: &'a S, data: &'a PtMarketData, costs: Costs, initial_cash: f64) -> Self {
        let mut times: Vec<i64> = data.floating.points.iter().map(|p| p.timestamp_ms).collect();
        times.extend(data.implied.points.iter().map(|p| p.timestamp_ms));
        times.sort_unstable();
        times.dedup();
        FixedYieldEngine { strategy, data, costs, initial_cash, times }
    }

    /// The state before the first step.
    pub fn start(&self) -> FixedYieldSnapshot<S::State> {
        let empty = MarketView { step: 0, timestamp_ms: 0, assets: Vec::new(), lending: Vec::new() };
        let t0 = self.times.first().copied().unwrap_or(0);
        FixedYieldSnapshot {
            next_step: 0,
            cash: units(self.initial_cash, &self.data.asset),
            index: (aave_v3::RAY, t0),
            scaled: U256::ZERO,
            pt: U256::ZERO,
            strategy: self.strategy.init(&empty),
            flows: FlowStats::default(),
            totals: CostTotals::default(),
            equity: Vec::new(),
            benchmark: Vec::new(),
            decisions: Vec::new(),
            pt_steps: 0,
        }
    }

    fn pt_market(&self, point: Option<&RatePoint>, t: i64) -> PtMarket {
        PtMarket {
            implied_apy: point.map_or(0.0, |p| p.supply_apy),
            secs_to_maturity: ((self.data.maturity_ms - t) as f64 / 1000.0).max(0.0),
            ln_fee_rate_root: self.data.ln_fee_rate_root,
        }
    }

    /// Runs the whole backtest.
    pub fn run(&self) -> FixedYieldResult {
        let mut snap = self.start();
        self.advance(&mut snap, None);
        self.finish(snap)
    }

    /// Runs until `until` (or the end).
    pub fn advance(&self, snap: &mut FixedYieldSnapshot<S::State>, until: Option<usize>) {
        let (asset, pt) = (&self.data.asset, &self.data.pt);
        let end = until.unwrap_or(self.times.len()).min(self.times.len());
        let retry = RetryPolicy { max_attempts: self.costs.max_attempts, base_delay_ms: 0, max_delay_ms: 0 };
        while snap.next_step < end {
            let step = snap.next_step;
            let t = self.times[step];
            // floating accrual at the rate in force since the last step
            let (index, last) = snap.index;
            if t > last {
                let apy = self.data.floating.at(last).map_or(0.0, |p| p.supply_apy + p.reward_apy);
                let next = aave_v3::grow_liquidity_index(index, apy, ((t - last) / 1000) as u64).unwrap_or(index);
                snap.index = (next, t);
            }
            let fp = self.data.floating.at(t).copied();
            let pp = self.data.implied.at(t).copied();
            let ptm = self.pt_market(pp.as_ref(), t);
            let view = MarketView {
                step,
                timestamp_ms: t,
                assets: Vec::new(),
                lending: vec![
                    LendingView {
                        market: self.data.floating.market.clone(),
                        protocol: LendingProtocol::AaveV3,
                        address: self.data.floating.market.clone(),
                        rate: fp,
                        maturity_ms: None,
                    },
                    LendingView {
                        market: self.data.implied.market.clone(),
                        protocol: LendingProtocol::PendlePt,
                        address: self.data.implied.market.clone(),
                        rate: pp,
                        maturity_ms: Some(self.data.maturity_ms),
                    },
                ],
            };
            let supplied = f(aave_v3::ray_mul(snap.scaled, snap.index.0).unwrap_or_default(), asset);
            let portfolio = PortfolioView {
                quote: asset.clone(),
                cash: f(snap.cash, asset),
                positions: vec![PositionView { base: pt.clone(), quantity: f(snap.pt, asset), entry_price: None }],
                lp: Vec::new(),
                lending: if supplied > 0.0 {
                    vec![LendingPositionView {
                        market: self.data.floating.market.clone(),
                        supplied,
                        borrowed: 0.0,
                        shares: 0.0,
                        rewards: 0.0,
                        value_quote: supplied,
                    }]
                } else {
                    Vec::new()
                },
            };
            let mut intents = Vec::new();
            self.strategy.on_step(&mut snap.strategy, &view, &portfolio, &mut intents);
            let mut exec = Exec {
                data: self.data,
                costs: &self.costs,
                cash: &mut snap.cash,
                scaled: &mut snap.scaled,
                pt: &mut snap.pt,
                totals: &mut snap.totals,
                index: snap.index.0,
                pt_market: ptm,
                time: t,
            };
            run_intents(self.strategy, &mut snap.strategy, &mut snap.flows, &retry, &intents, &mut exec);
            let mut decided = self.strategy.take_decisions(&mut snap.strategy);
            snap.decisions.append(&mut decided);
            if !snap.pt.is_zero() {
                snap.pt_steps += 1;
            }
            let floating_value = f(aave_v3::ray_mul(snap.scaled, snap.index.0).unwrap_or_default(), asset);
            let equity = f(snap.cash, asset) + floating_value + f(snap.pt, asset) * ptm.pt_price() - snap.totals.gas;
            snap.equity.push(EquityPoint { timestamp_ms: t, equity });
            let bench = self.initial_cash * f64::from(snap.index.0) / 1e27;
            snap.benchmark.push(EquityPoint { timestamp_ms: t, equity: bench });
            snap.next_step += 1;
        }
    }

    /// Ends the backtest, positions valued where they stand.
    pub fn finish(&self, snap: FixedYieldSnapshot<S::State>) -> FixedYieldResult {
        let metrics = compute_metrics(self.initial_cash, &snap.equity, &[], &snap.totals);
        let years = match (snap.equity.first(), snap.equity.last()) {
            (Some(a), Some(b)) => (b.timestamp_ms - a.timestamp_ms) as f64 / YEAR_MS,
            _ => 0.0,
        };
        let ann = |g: f64| if years > 0.0 && g > 0.0 { g.powf(1.0 / years) - 1.0 } else { 0.0 };
        let realised_apy = ann(metrics.final_equity / self.initial_cash);
        let floating_apy = ann(snap.benchmark.last().map_or(1.0, |b| b.equity / self.initial_cash));
        let time_in_pt = snap.pt_steps as f64 / snap.equity.len().max(1) as f64;
        FixedYieldResult {
            result: BacktestResult {
                strategy: self.strategy.name(),
                markets: vec![self.data.source.clone()],
                metrics,
                trades: Vec::new(),
                equity: snap.equity,
                flows: snap.flows,
            },
            benchmark: snap.benchmark,
            realised_apy,
            floating_apy,
            time_in_pt,
            decisions: snap.decisions,
        }
    }
}
