//! The lending backtest: a strategy holds one asset (a stablecoin) across lending markets and ERC-4626 vaults whose
//! rates come from a rate series (a CSV or a seeded synthetic set). Each position accrues with its protocol's own
//! arithmetic from `protocols`: an Aave v3 position is scaled aTokens on a liquidity index grown by
//! `MathUtils.calculateLinearInterest` at every observation, a Compound v3 position is a principal on a supply
//! index, a vault position is shares of an OpenZeppelin-style ERC-4626 vault whose assets grow with the vault's APY.
//! Balances are integers in base units.
//!
//! Rates: the series' supply APY applies from one observation to the next. The strategy's own money dilutes it: with
//! the market's curve known the utilisation falls to `u * T / (T + S)` and the curve gives the rate, otherwise the
//! borrow rate is held and the supply APY scales by `T / (T + S)` (T: the series' TVL, which does not include the
//! backtested money; S: the money the strategy has there). Rewards accrue at the series' reward APY in the quote
//! token. A withdrawal needs the market's free liquidity (`TVL * (1 - utilisation)`); a frozen market takes no
//! deposits; a `bad_debt` observation cuts every supplier's balance by that fraction. Gas is paid by the deployment
//! key in the native token: it never needs the asset, and equity is the asset held minus the gas spent.

use crate::config::Costs;
use crate::engine::{BacktestResult, CostTotals, EquityPoint, FlowStats};
use crate::flows::{Atomic, run_intents};
use crate::metrics::compute_metrics;
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};
use sextant_data::rates::RateCurve;
use sextant_market::{LendingProtocol, LendingView, MarketView, RatePoint, RateSeries};
use sextant_protocols::aave_v3::apy_of_apr;
use sextant_protocols::{aave_v3, compound_v3, erc4626::Vault};
use sextant_strategies::rotator::{GAS_CLAIM, gas_units};
use sextant_strategy::{Decision, ExecError, ExecErrorKind, LendingPositionView, PortfolioView, RetryPolicy, Strategy};
use sextant_types::{Amount, AmountSpec, Fill, Intent, Token};

const YEAR_MS: f64 = 365.0 * 86_400_000.0;

/// One market of a lending backtest.
#[derive(Debug, Clone, PartialEq)]
pub struct LendingMarketSpec {
    /// Contract family.
    pub protocol: LendingProtocol,
    /// The address intents name (the id when none is configured).
    pub address: String,
    /// Its rates.
    pub series: RateSeries,
    /// Its borrow curve, when known: the strategy's own supply then moves the rate along it.
    pub curve: Option<RateCurve>,
}

/// Lending markets and the steps to run them over.
#[derive(Debug, Clone, PartialEq)]
pub struct RateMarket {
    /// The asset supplied (and the portfolio's quote token).
    pub asset: Token,
    /// The markets, in config order.
    pub markets: Vec<LendingMarketSpec>,
    /// Step times: every distinct observation time, in order.
    pub times: Vec<i64>,
    /// Where the rates came from, for reports.
    pub source: String,
}

impl RateMarket {
    /// Markets over `series`, stepping at every distinct observation time.
    pub fn new(asset: Token, markets: Vec<LendingMarketSpec>, source: String) -> Self {
        let mut times: Vec<i64> = markets.iter().flat_map(|m| m.series.points.iter().map(|p| p.timestamp_ms)).collect();
        times.sort_unstable();
        times.dedup();
        RateMarket { asset, markets, times, source }
    }
}

/// The strategy's position in one market, in the protocol's own units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Position {
    /// Scaled aTokens on the reserve's liquidity index (ray).
    AaveV3 {
        /// Liquidity index.
        index: U256,
        /// Scaled balance.
        scaled: U256,
    },
    /// A Comet principal on its supply index.
    CompoundV3 {
        /// Base supply index.
        index: u64,
        /// Principal.
        principal: u128,
    },
    /// Shares of the vault.
    Erc4626 {
        /// The vault's totals (other depositors included).
        vault: Vault,
        /// Shares held.
        shares: U256,
    },
}

/// A market's running state in the backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// The position (and the index or vault it sits on).
    pub position: Position,
    /// Rewards earned, not claimed, quote units.
    pub rewards: f64,
    /// Time accrued to.
    pub accrued_to: i64,
    /// Interest earned, quote units.
    pub interest: f64,
    /// Lost to bad debt, quote units.
    pub lost: f64,
    /// Steps a position was held here.
    pub held_steps: usize,
}

/// Everything needed to resume a lending backtest after any step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LendingSnapshot<St> {
    /// The next step to run.
    pub next_step: usize,
    /// Cash, base units.
    pub cash: U256,
    /// One slot per market.
    pub slots: Vec<Slot>,
    /// The strategy's state.
    pub strategy: St,
    /// Intent outcomes.
    pub flows: FlowStats,
    /// Costs paid.
    pub totals: CostTotals,
    /// Rewards claimed, quote units.
    pub rewards_claimed: f64,
    /// Equity after each step.
    pub equity: Vec<EquityPoint>,
    /// The decision log.
    pub decisions: Vec<Decision>,
    /// Each executed deposit or withdrawal: (step, market, +in/-out quote units).
    pub movements: Vec<Movement>,
}

/// A deposit into or withdrawal from a market that was carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    /// Step.
    pub step: usize,
    /// Market id.
    pub market: String,
    /// Quote units: positive in, negative out.
    pub amount: f64,
}

/// Per-market results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketRecord {
    /// Market id.
    pub market: String,
    /// Protocol.
    pub protocol: LendingProtocol,
    /// Interest earned there, quote units.
    pub interest: f64,
    /// Lost to bad debt there.
    pub lost: f64,
    /// Share of steps a position was held there.
    pub time_held: f64,
    /// Held at the end (quote units; stuck in a frozen market, or not withdrawn).
    pub held_at_end: f64,
    /// Mean supply APY of the market over the run.
    pub mean_supply_apy: f64,
}

/// What a lending backtest reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LendingBacktestResult {
    /// Equity, metrics and intent outcomes, as for every backtest.
    pub result: BacktestResult,
    /// Per-market results.
    pub markets: Vec<MarketRecord>,
    /// Every decision the strategy explained.
    pub decisions: Vec<Decision>,
    /// Every deposit and withdrawal carried out.
    pub movements: Vec<Movement>,
    /// APY realised over the run (equity growth annualised by compounding).
    pub realised_apy: f64,
    /// APY of the best single market held throughout without costs, for comparison.
    pub best_single_apy: f64,
    /// Rewards claimed, quote units.
    pub rewards_claimed: f64,
}

fn err(kind: ExecErrorKind, message: impl Into<String>) -> ExecError {
    ExecError::new(kind, message.into())
}

/// The effective supply APY of a market for the strategy's `ours` (quote units) in it.
fn effective_apy(spec: &LendingMarketSpec, p: &RatePoint, ours: f64) -> f64 {
    if ours <= 0.0 || p.tvl_usd <= 0.0 {
        return p.supply_apy;
    }
    let share = p.tvl_usd / (p.tvl_usd + ours);
    match spec.curve {
        Some(c) => apy_of_apr(c.supply_apr(p.utilization * share)),
        None => p.supply_apy * share,
    }
}

/// A slot's value in base units of the asset.
fn slot_value(slot: &Slot) -> U256 {
    match &slot.position {
        Position::AaveV3 { index, scaled } => aave_v3::ray_mul(*scaled, *index).unwrap_or(U256::MAX),
        Position::CompoundV3 { index, principal } => compound_v3::present_value_supply(*index, *principal),
        Position::Erc4626 { vault, shares } => vault.preview_redeem(*shares).unwrap_or_default(),
    }
}

fn f(x: U256, token: &Token) -> f64 {
    f64::from(x) / token.scale()
}

fn base_units(x: f64, token: &Token) -> U256 {
    U256::from(Amount::from_units(x.max(0.0), token).map_or(0, |a| a.0))
}

/// Executes lending intents against the slots.
struct LendingExecutor<'a> {
    market: &'a RateMarket,
    costs: &'a Costs,
    slots: &'a mut [Slot],
    cash: &'a mut U256,
    totals: &'a mut CostTotals,
    claimed: &'a mut f64,
    movements: &'a mut Vec<Movement>,
    step: usize,
    time: i64,
    points: &'a [Option<RatePoint>],
}

impl LendingExecutor<'_> {
    fn find(&self, protocol: &str, address: &str) -> Result<usize, ExecError> {
        self.market
            .markets
            .iter()
            .position(|m| {
                m.address == address
                    && (m.protocol.name() == protocol || LendingProtocol::parse(protocol) == Some(m.protocol))
            })
            .ok_or_else(|| err(ExecErrorKind::Unsupported, format!("no {protocol} market {address} in this backtest")))
    }

    /// Gas is paid in the native token by the deployment key, not from the Safe's asset: it is counted as an
    /// expense (taken off equity) and never blocks a move for want of cash.
    fn gas(&mut self, units: u64) -> Result<f64, ExecError> {
        let usd = units as f64 * self.costs.gas_price_gwei * 1e-9 * self.costs.native_price_usd;
        self.totals.gas += usd;
        Ok(usd)
    }

    fn fill(&self, token_in: &Token, amount_in: U256, amount_out: U256, gas: f64, slippage: f64) -> Fill {
        let a = |x: U256| Amount(u128::try_from(x).unwrap_or(u128::MAX));
        Fill {
            timestamp_ms: self.time,
            token_in: token_in.clone(),
            amount_in: a(amount_in),
            token_out: self.market.asset.clone(),
            amount_out: a(amount_out),
            mid_price: 1.0,
            exec_price: 1.0,
            fee_paid: 0.0,
            gas_paid: gas,
            slippage_paid: slippage,
            mev_paid: 0.0,
            lp_position: None,
        }
    }

    fn deposit(&mut self, i: usize, amount: &AmountSpec) -> Result<Fill, ExecError> {
        let spec = &self.market.markets[i];
        let id = &spec.series.market;
        let point = self.points[i].ok_or_else(|| err(ExecErrorKind::Reverted, format!("{id} has no data yet")))?;
        if point.frozen {
            return Err(err(ExecErrorKind::Reverted, format!("{id} is frozen: it takes no deposits")));
        }
        let gas = self.gas(gas_units(spec.protocol, true))?;
        let amount = match amount {
            AmountSpec::Exact(a) => U256::from(a.0),
            AmountSpec::All => *self.cash,
        };
        if amount.is_zero() {
            return Err(err(ExecErrorKind::InsufficientBalance, format!("nothing to deposit into {id}")));
        }
        if amount > *self.cash {
            return Err(err(
                ExecErrorKind::InsufficientBalance,
                format!("deposit of {} needs more than the cash held", f(amount, &self.market.asset)),
            ));
        }
        *self.cash -= amount;
        let mut slippage = 0.0;
        let slot = &mut self.slots[i];
        match &mut slot.position {
            Position::AaveV3 { index, scaled } => {
                let s = aave_v3::ray_div(amount, *index).unwrap_or_default();
                if s.is_zero() {
                    return Err(err(ExecErrorKind::Reverted, "aave v3: amount rounds to zero scaled tokens"));
                }
                *scaled += s;
            }
            Position::CompoundV3 { index, principal } => {
                let now = compound_v3::present_value_supply(*index, *principal) + amount;
                *principal = compound_v3::principal_value_supply(*index, now)
                    .ok_or_else(|| err(ExecErrorKind::Reverted, "compound v3: principal overflows"))?;
            }
            Position::Erc4626 { vault, shares } => {
                let cost = amount * U256::from((self.costs.slippage_bps * 100.0) as u64) / U256::from(1_000_000u64);
                slippage = f(cost, &self.market.asset);
                let minted =
                    vault.deposit(amount - cost).map_err(|e| err(ExecErrorKind::Reverted, format!("{id}: {e}")))?;
                *shares += minted;
            }
        }
        self.totals.slippage += slippage;
        let quote = f(amount, &self.market.asset);
        self.movements.push(Movement { step: self.step, market: id.clone(), amount: quote });
        Ok(self.fill(&self.market.asset, amount, U256::ZERO, gas, slippage))
    }

    fn withdraw(&mut self, i: usize, amount: &AmountSpec, in_shares: bool) -> Result<Fill, ExecError> {
        let spec = &self.market.markets[i];
        let id = &spec.series.market;
        let asset = &self.market.asset;
        let point = self.points[i].ok_or_else(|| err(ExecErrorKind::Reverted, format!("{id} has no data yet")))?;
        let gas = self.gas(gas_units(spec.protocol, false))?;
        let held = slot_value(&self.slots[i]);
        // what is asked, in assets
        let (assets, shares_burnt) = match (&self.slots[i].position, amount, in_shares) {
            (Position::Erc4626 { vault, shares }, AmountSpec::All, _) => {
                (vault.preview_redeem(*shares).unwrap_or_default(), Some(*shares))
            }
            (Position::Erc4626 { vault, shares }, AmountSpec::Exact(a), true) => {
                let s = U256::from(a.0).min(*shares);
                (vault.preview_redeem(s).unwrap_or_default(), Some(s))
            }
            (_, AmountSpec::All, _) => (held, None),
            (_, AmountSpec::Exact(a), _) => (U256::from(a.0), None),
        };
        if assets.is_zero() {
            return Err(err(ExecErrorKind::InsufficientBalance, format!("nothing to withdraw from {id}")));
        }
        if assets > held {
            return Err(err(
                ExecErrorKind::InsufficientBalance,
                format!("{id} holds {}, less than the {} asked", f(held, asset), f(assets, asset)),
            ));
        }
        let free = point.tvl_usd * (1.0 - point.utilization).max(0.0);
        if f(assets, asset) > free * (1.0 + 1e-9) {
            return Err(err(
                ExecErrorKind::Reverted,
                format!("{id} has {free:.2} of free liquidity, less than the {:.2} asked", f(assets, asset)),
            ));
        }
        let mut slippage = 0.0;
        let slot = &mut self.slots[i];
        let paid = match &mut slot.position {
            Position::AaveV3 { index, scaled } => {
                let burn = if assets == held { *scaled } else { aave_v3::ray_div(assets, *index).unwrap_or_default() };
                if burn.is_zero() {
                    return Err(err(ExecErrorKind::Reverted, "aave v3: amount rounds to zero scaled tokens"));
                }
                *scaled = scaled.saturating_sub(burn);
                assets
            }
            Position::CompoundV3 { index, principal } => {
                let left = compound_v3::present_value_supply(*index, *principal) - assets;
                *principal = compound_v3::principal_value_supply(*index, left).unwrap_or(0);
                assets
            }
            Position::Erc4626 { vault, shares } => {
                let got = match shares_burnt {
                    Some(s) => {
                        let got =
                            vault.redeem(s, *shares).map_err(|e| err(ExecErrorKind::Reverted, format!("{id}: {e}")))?;
                        *shares -= s;
                        got
                    }
                    None => {
                        let burnt = vault
                            .withdraw(assets, *shares)
                            .map_err(|e| err(ExecErrorKind::Reverted, format!("{id}: {e}")))?;
                        *shares -= burnt;
                        assets
                    }
                };
                let cost = got * U256::from((self.costs.slippage_bps * 100.0) as u64) / U256::from(1_000_000u64);
                slippage = f(cost, asset);
                got - cost
            }
        };
        *self.cash += paid;
        self.totals.slippage += slippage;
        let gross = f(paid, asset) + slippage;
        self.movements.push(Movement { step: self.step, market: id.clone(), amount: -gross });
        Ok(self.fill(asset, U256::ZERO, paid, gas, slippage))
    }

    fn claim(&mut self, i: usize) -> Result<Fill, ExecError> {
        let id = self.market.markets[i].series.market.clone();
        let rewards = self.slots[i].rewards;
        if rewards <= 0.0 {
            return Err(err(ExecErrorKind::InsufficientBalance, format!("no rewards to claim in {id}")));
        }
        let gas = self.gas(GAS_CLAIM)?;
        // the reward token is sold for the asset at the DEX fee
        let fee = rewards * self.costs.fee_bps / 10_000.0;
        let got = base_units(rewards - fee, &self.market.asset);
        *self.cash += got;
        self.totals.fees += fee;
        *self.claimed += rewards - fee;
        self.slots[i].rewards = 0.0;
        let mut fill = self.fill(&self.market.asset, U256::ZERO, got, gas, 0.0);
        fill.fee_paid = fee;
        Ok(fill)
    }
}

impl Atomic for LendingExecutor<'_> {
    type Saved = (U256, Vec<Slot>, CostTotals, f64, usize);

    fn save(&self) -> Self::Saved {
        (*self.cash, self.slots.to_vec(), *self.totals, *self.claimed, self.movements.len())
    }

    fn restore(&mut self, (cash, slots, totals, claimed, moves): Self::Saved) {
        *self.cash = cash;
        self.slots.clone_from_slice(&slots);
        *self.totals = totals;
        *self.claimed = claimed;
        self.movements.truncate(moves);
    }

    fn run(&mut self, intent: &Intent) -> Result<Option<Fill>, ExecError> {
        let e = self;
        let check_token = |t: &Token| {
            if t.symbol == e.market.asset.symbol {
                Ok(())
            } else {
                Err(err(
                    ExecErrorKind::Unsupported,
                    format!("this backtest holds {}, not {}", e.market.asset.symbol, t.symbol),
                ))
            }
        };
        match intent {
            Intent::Supply { market, token, amount } => {
                check_token(token)?;
                let i = e.find(&market.protocol, &market.address)?;
                e.deposit(i, amount).map(Some)
            }
            Intent::Withdraw { market, token, amount } => {
                check_token(token)?;
                let i = e.find(&market.protocol, &market.address)?;
                e.withdraw(i, amount, false).map(Some)
            }
            Intent::VaultDeposit { vault, amount } => {
                check_token(&vault.asset)?;
                let i = e.find("erc4626", &vault.address)?;
                e.deposit(i, amount).map(Some)
            }
            Intent::VaultRedeem { vault, shares } => {
                check_token(&vault.asset)?;
                let i = e.find("erc4626", &vault.address)?;
                e.withdraw(i, shares, true).map(Some)
            }
            Intent::ClaimRewards { market } => {
                let i = e.find(&market.protocol, &market.address)?;
                e.claim(i).map(Some)
            }
            Intent::Hold { .. } => Ok(None),
            other => Err(err(
                ExecErrorKind::Unsupported,
                format!("the lending backtest cannot execute {:?} intents", other.kind()),
            )),
        }
    }
}

/// The lending backtest of one strategy over a set of markets.
pub struct LendingEngine<'a, S: Strategy> {
    strategy: &'a S,
    market: &'a RateMarket,
    costs: Costs,
    initial_cash: f64,
}

impl<'a, S: Strategy> LendingEngine<'a, S> {
    /// An engine for `strategy` on `market`, starting with `initial_cash` of the asset.
    pub fn new(strategy: &'a S, market: &'a RateMarket, costs: Costs, initial_cash: f64) -> Self {
        LendingEngine { strategy, market, costs, initial_cash }
    }

    fn empty_view(&self) -> MarketView {
        MarketView {
            step: 0,
            timestamp_ms: 0,
            assets: Vec::new(),
            lending: self
                .market
                .markets
                .iter()
                .map(|m| LendingView {
                    market: m.series.market.clone(),
                    protocol: m.protocol,
                    address: m.address.clone(),
                    rate: None,
                    maturity_ms: None,
                })
                .collect(),
        }
    }

    /// The state before the first step.
    pub fn start(&self) -> LendingSnapshot<S::State> {
        let t0 = self.market.times.first().copied().unwrap_or(0);
        let slots = self
            .market
            .markets
            .iter()
            .map(|m| {
                let tvl = m.series.points.first().map_or(0.0, |p| p.tvl_usd);
                let position = match m.protocol {
                    // PT markets are not lending positions; the config refuses them here
                    LendingProtocol::PendlePt => Position::Erc4626 { vault: Vault::new(0, None), shares: U256::ZERO },
                    LendingProtocol::AaveV3 => Position::AaveV3 { index: aave_v3::RAY, scaled: U256::ZERO },
                    LendingProtocol::CompoundV3 => {
                        Position::CompoundV3 { index: compound_v3::BASE_INDEX_SCALE, principal: 0 }
                    }
                    LendingProtocol::Erc4626 => {
                        // the other depositors: the vault's TVL at one share per asset unit
                        let assets = base_units(tvl, &self.market.asset);
                        let vault =
                            Vault { total_assets: assets, total_supply: assets, decimals_offset: 0, deposit_cap: None };
                        Position::Erc4626 { vault, shares: U256::ZERO }
                    }
                };
                Slot { position, rewards: 0.0, accrued_to: t0, interest: 0.0, lost: 0.0, held_steps: 0 }
            })
            .collect();
        let view = self.empty_view();
        LendingSnapshot {
            next_step: 0,
            cash: base_units(self.initial_cash, &self.market.asset),
            slots,
            strategy: self.strategy.init(&view),
            flows: FlowStats::default(),
            totals: CostTotals::default(),
            rewards_claimed: 0.0,
            equity: Vec::new(),
            decisions: Vec::new(),
            movements: Vec::new(),
        }
    }

    /// Accrues every slot from its last time to `t` at the rate in force (the observation at the start of the
    /// interval), applies bad debt observed in between, and adds rewards.
    fn accrue(&self, slots: &mut [Slot], t: i64) {
        let asset = &self.market.asset;
        for (spec, slot) in self.market.markets.iter().zip(slots.iter_mut()) {
            let from = slot.accrued_to;
            if t <= from {
                continue;
            }
            let Some(p) = spec.series.at(from).copied() else {
                slot.accrued_to = t;
                continue;
            };
            let before = slot_value(slot);
            let ours = f(before, asset);
            let apy = effective_apy(spec, &p, ours);
            let secs = ((t - from) / 1000) as u64;
            let years = (t - from) as f64 / YEAR_MS;
            match &mut slot.position {
                Position::AaveV3 { index, .. } => {
                    if let Some(next) = aave_v3::grow_liquidity_index(*index, apy, secs) {
                        *index = next;
                    }
                }
                Position::CompoundV3 { index, .. } => {
                    *index = compound_v3::grow_index(*index, compound_v3::rate_of_apy(apy), secs).unwrap_or(u64::MAX);
                }
                Position::Erc4626 { vault, .. } => {
                    let growth = (1.0 + apy.max(-0.99)).powf(years) - 1.0;
                    let gain = f64::from(vault.total_assets) * growth;
                    vault.accrue(gain as i128);
                }
            }
            let after = slot_value(slot);
            slot.interest += f(after, asset) - ours;
            slot.rewards += ours * p.reward_apy * years;
            // bad debt observed in (from, t]
            let lo = spec.series.points.partition_point(|q| q.timestamp_ms <= from);
            let hi = spec.series.points.partition_point(|q| q.timestamp_ms <= t);
            for q in &spec.series.points[lo..hi] {
                if q.bad_debt > 0.0 {
                    let keep = 1.0 - q.bad_debt;
                    let value = f(slot_value(slot), asset);
                    match &mut slot.position {
                        Position::AaveV3 { scaled, .. } => *scaled = scale(*scaled, keep),
                        Position::CompoundV3 { principal, .. } => *principal = (*principal as f64 * keep) as u128,
                        Position::Erc4626 { vault, .. } => vault.total_assets = scale(vault.total_assets, keep),
                    }
                    slot.lost += value - f(slot_value(slot), asset);
                }
            }
            slot.accrued_to = t;
        }
    }

    fn portfolio(&self, snap: &LendingSnapshot<S::State>) -> PortfolioView {
        let asset = &self.market.asset;
        PortfolioView {
            quote: asset.clone(),
            cash: f(snap.cash, asset),
            positions: Vec::new(),
            lp: Vec::new(),
            lending: self
                .market
                .markets
                .iter()
                .zip(&snap.slots)
                .filter_map(|(m, s)| {
                    let supplied = f(slot_value(s), asset);
                    let shares = match &s.position {
                        Position::Erc4626 { shares, .. } => f(*shares, asset),
                        _ => 0.0,
                    };
                    (supplied > 0.0 || s.rewards > 0.0).then(|| LendingPositionView {
                        market: m.series.market.clone(),
                        supplied,
                        borrowed: 0.0,
                        shares,
                        rewards: s.rewards,
                        value_quote: supplied + s.rewards,
                    })
                })
                .collect(),
        }
    }

    /// Runs the whole backtest.
    pub fn run(&self, progress: &mut dyn FnMut(usize)) -> LendingBacktestResult {
        let mut snap = self.start();
        self.advance(&mut snap, None, progress);
        self.finish(snap)
    }

    /// Runs steps until `until` (or the end).
    pub fn advance(&self, snap: &mut LendingSnapshot<S::State>, until: Option<usize>, progress: &mut dyn FnMut(usize)) {
        let end = until.unwrap_or(self.market.times.len()).min(self.market.times.len());
        let retry = RetryPolicy { max_attempts: self.costs.max_attempts, base_delay_ms: 0, max_delay_ms: 0 };
        let mut view = self.empty_view();
        while snap.next_step < end {
            let step = snap.next_step;
            let t = self.market.times[step];
            self.accrue(&mut snap.slots, t);
            view.step = step;
            view.timestamp_ms = t;
            let points: Vec<Option<RatePoint>> = self.market.markets.iter().map(|m| m.series.at(t).copied()).collect();
            for (v, p) in view.lending.iter_mut().zip(&points) {
                v.rate = *p;
            }
            let portfolio = self.portfolio(snap);
            let mut intents = Vec::new();
            self.strategy.on_step(&mut snap.strategy, &view, &portfolio, &mut intents);
            self.execute(snap, &intents, step, t, &points, &retry);
            for (slot, _) in snap.slots.iter_mut().zip(&points) {
                if !slot_value(slot).is_zero() {
                    slot.held_steps += 1;
                }
            }
            // gas was paid by the deployment key in the native token: an expense of the strategy all the same
            let equity = self.portfolio(snap).equity(&view) - snap.totals.gas;
            snap.equity.push(EquityPoint { timestamp_ms: t, equity });
            snap.next_step += 1;
            if snap.next_step % 65_536 == 0 {
                progress(snap.next_step);
            }
        }
    }

    fn execute(
        &self,
        snap: &mut LendingSnapshot<S::State>,
        intents: &[Intent],
        step: usize,
        t: i64,
        points: &[Option<RatePoint>],
        retry: &RetryPolicy,
    ) {
        let mut exec = LendingExecutor {
            market: self.market,
            costs: &self.costs,
            slots: &mut snap.slots,
            cash: &mut snap.cash,
            totals: &mut snap.totals,
            claimed: &mut snap.rewards_claimed,
            movements: &mut snap.movements,
            step,
            time: t,
            points,
        };
        run_intents(self.strategy, &mut snap.strategy, &mut snap.flows, retry, intents, &mut exec);
        let mut decided = self.strategy.take_decisions(&mut snap.strategy);
        snap.decisions.append(&mut decided);
    }

    /// Ends the backtest: positions are valued where they stand (a position stuck in a frozen market counts at its
    /// book value, bad debt already taken), and the metrics computed.
    pub fn finish(&self, snap: LendingSnapshot<S::State>) -> LendingBacktestResult {
        let asset = &self.market.asset;
        let metrics = compute_metrics(self.initial_cash, &snap.equity, &[], &snap.totals);
        let years = match (snap.equity.first(), snap.equity.last()) {
            (Some(a), Some(b)) => (b.timestamp_ms - a.timestamp_ms) as f64 / YEAR_MS,
            _ => 0.0,
        };
        let annualise = |growth: f64| if years > 0.0 && growth > 0.0 { growth.powf(1.0 / years) - 1.0 } else { 0.0 };
        let steps = snap.equity.len().max(1);
        let markets: Vec<MarketRecord> = self
            .market
            .markets
            .iter()
            .zip(&snap.slots)
            .map(|(m, s)| MarketRecord {
                market: m.series.market.clone(),
                protocol: m.protocol,
                interest: s.interest,
                lost: s.lost,
                time_held: s.held_steps as f64 / steps as f64,
                held_at_end: f(slot_value(s), asset),
                mean_supply_apy: if m.series.points.is_empty() {
                    0.0
                } else {
                    m.series.points.iter().map(|p| p.supply_apy + p.reward_apy).sum::<f64>()
                        / m.series.points.len() as f64
                },
            })
            .collect();
        // The best single market held from start to end, costs aside: compound its APY over each interval.
        let best_single_apy = self
            .market
            .markets
            .iter()
            .map(|m| {
                let mut growth = 1.0;
                for w in m.series.points.windows(2) {
                    let dt = (w[1].timestamp_ms - w[0].timestamp_ms) as f64 / YEAR_MS;
                    growth *= (1.0 + w[0].supply_apy + w[0].reward_apy).powf(dt) * (1.0 - w[1].bad_debt);
                }
                annualise(growth)
            })
            .fold(f64::MIN, f64::max);
        let realised_apy = annualise(metrics.final_equity / self.initial_cash);
        let result = BacktestResult {
            strategy: self.strategy.name(),
            markets: vec![self.market.source.clone()],
            metrics,
            trades: Vec::new(),
            equity: snap.equity,
            flows: snap.flows,
        };
        LendingBacktestResult {
            result,
            markets,
            decisions: snap.decisions,
            movements: snap.movements,
            realised_apy,
            best_single_apy: if best_single_apy == f64::MIN { 0.0 } else { best_single_apy },
            rewards_claimed: snap.rewards_claimed,
        }
    }
}

fn scale(x: U256, keep: f64) -> U256 {
    let ppm = U256::from((keep.clamp(0.0, 1.0) * 1e9).round() as u64);
    x * ppm / U256::from(1_000_000_000u64)
}
