//! Stress testing: a strategy run over many Monte-Carlo paths of its market, and over named crisis scenarios laid on
//! top of them, to see the distribution of its results rather than one history's.
//!
//! Paths come from the config's own data:
//! - **block bootstrap**: the bars' log returns resampled in blocks of consecutive bars (volatility clustering and
//!   short-range dependence survive inside a block), each block taking its bars' shapes (open, high and low relative
//!   to the close) and volumes along; several assets draw the same blocks, so their co-movement survives too;
//! - **regime-switching jumps**: returns drawn from a two-state Markov chain (calm at 0.7x the data's volatility,
//!   stressed at 2x; a calm bar turns stressed with probability 1 %, a stressed one calms with 5 %), plus jumps at the
//!   rate and size of the data's moves beyond four standard deviations (or, without any, one in 500 bars of about
//!   -4 sigma); other assets' shocks are correlated with the first's as their returns are in the data.
//!
//! Scenarios apply to each path from its middle bar on: `flash_crash` (-40 % within an hour, recovering to -20 %
//! over the next day), `slow_bear` (-50 % spread over the rest of the path), `vol_spike` (moves three times as large
//! for a tenth of the path), `depeg` (assets trading near 1 fall to 0.90 over a day, stay a week, recover over three
//! days), `liquidity_drain` (pool depth / 10 in the cost model), `gas_spike` (gas price x20). Price scenarios move
//! the risk assets (a depeg moves only the stable ones).
//!
//! Path `i` depends only on the seed and `i`, so shards and resumed runs produce the same paths; results stream to a
//! file as for sweeps ([`crate::sweep::run_indexed`]) and summaries keep bounded samples.

use crate::config::Costs;
use crate::engine::Engine;
use crate::lending::RateMarket;
use crate::sweep::{Search, Shard, SweepHeader, SweepOutcome, config_hash, run_indexed};
use crate::{BacktestConfig, Error, Market, Metrics, Result, build_strategy};
use serde::Serialize;
use sextant_market::Candle;

/// How paths are made from the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PathModel {
    /// The data itself (one path), for scenarios on the real history.
    History,
    /// Block bootstrap of the returns, blocks of `block` bars.
    Bootstrap {
        /// Bars per block.
        block: usize,
    },
    /// Regime-switching returns with jumps, fitted to the data.
    Regime,
}

/// A named crisis laid on every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// -40 % within an hour, back to -20 % over the next day.
    FlashCrash,
    /// -50 % spread over the rest of the path.
    SlowBear,
    /// Moves three times as large for a tenth of the path.
    VolSpike,
    /// Stable assets to 0.90 over a day, a week there, three days back.
    Depeg,
    /// Pool depth divided by 10.
    LiquidityDrain,
    /// Gas price times 20.
    GasSpike,
    /// Lending rates spike (lending configs).
    RateSpike,
}

impl Scenario {
    /// Every scenario, in the order `--help` lists them.
    pub const ALL: [Scenario; 7] = [
        Scenario::FlashCrash,
        Scenario::SlowBear,
        Scenario::VolSpike,
        Scenario::Depeg,
        Scenario::LiquidityDrain,
        Scenario::GasSpike,
        Scenario::RateSpike,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::FlashCrash => "flash_crash",
            Scenario::SlowBear => "slow_bear",
            Scenario::VolSpike => "vol_spike",
            Scenario::Depeg => "depeg",
            Scenario::LiquidityDrain => "liquidity_drain",
            Scenario::GasSpike => "gas_spike",
            Scenario::RateSpike => "rate_spike",
        }
    }

    /// Parses a name.
    ///
    /// # Errors
    /// An unknown name (the message lists the known ones).
    pub fn parse(name: &str) -> Result<Self> {
        Scenario::ALL.into_iter().find(|s| s.name() == name.trim()).ok_or_else(|| {
            let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            Error::Stress(format!("unknown scenario {name:?}; expected one of {}", known.join(", ")))
        })
    }
}

/// What a stress run does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StressSpec {
    /// How many paths.
    pub paths: usize,
    /// Seed of the paths.
    pub seed: u64,
    /// How paths are made.
    pub model: PathModel,
    /// Scenarios laid on every path, in order.
    pub scenarios: Vec<Scenario>,
}

impl StressSpec {
    /// The description results headers carry: `model=bootstrap(24);scenarios=flash_crash,gas_spike`
    /// (`model=regime` without scenarios).
    pub fn describe(&self) -> String {
        let model = match self.model {
            PathModel::History => "history".to_string(),
            PathModel::Bootstrap { block } => format!("bootstrap({block})"),
            PathModel::Regime => "regime".to_string(),
        };
        let scenarios: Vec<&str> = self.scenarios.iter().map(|s| s.name()).collect();
        if scenarios.is_empty() {
            format!("model={model}")
        } else {
            format!("model={model};scenarios={}", scenarios.join(","))
        }
    }

    /// The results header of this run over `base`, for `shard`.
    pub fn header(&self, base: &toml::Table, shard: Shard) -> SweepHeader {
        SweepHeader {
            sextant_sweep: 1,
            kind: "stress".into(),
            config_hash: config_hash(base),
            grid: self.describe(),
            search: Search::Random { samples: self.paths, seed: self.seed },
            points: self.paths,
            shard,
        }
    }
}

/// SplitMix64: small, fast, and any path's stream can be started from its index.
#[derive(Debug, Clone)]
pub struct PathRng(u64);

impl PathRng {
    /// The stream of path `index` under `seed`.
    pub fn for_path(seed: u64, index: usize) -> Self {
        PathRng(seed ^ (index as u64).wrapping_add(1).wrapping_mul(0xd1b5_4a32_d192_ed03))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn log_returns(candles: &[Candle]) -> Vec<f64> {
    candles.windows(2).map(|w| (w[1].close / w[0].close).ln()).collect()
}

fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len().max(1) as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// Checks the markets can be resampled together: at least 3 bars each, all at the same times.
fn aligned(markets: &[Market]) -> Result<usize> {
    let n = markets.first().map_or(0, |m| m.series.len());
    if n < 3 {
        return Err(Error::Stress(format!("stress paths need at least 3 bars of data, got {n}")));
    }
    for m in &markets[1..] {
        let same = m.series.len() == n
            && m.series.candles.iter().zip(&markets[0].series.candles).all(|(a, b)| a.timestamp_ms == b.timestamp_ms);
        if !same {
            return Err(Error::Stress(format!(
                "stress paths of several assets need their bars at the same times; {} and {} differ",
                markets[0].base.symbol, m.base.symbol
            )));
        }
    }
    Ok(n)
}

/// A block-bootstrap path of the markets.
fn bootstrap(markets: &[Market], block: usize, rng: &mut PathRng) -> Result<Vec<Market>> {
    let n = aligned(markets)?;
    let block = block.clamp(1, n - 1);
    let mut out: Vec<Market> = markets.to_vec();
    // bar t >= 1 of the path takes the return and shape of source bar src[t]
    let mut src = Vec::with_capacity(n);
    src.push(0);
    while src.len() < n {
        let start = 1 + rng.below(n - block);
        src.extend((start..start + block).take(n - src.len()));
    }
    for (m, o) in markets.iter().zip(out.iter_mut()) {
        let c = &m.series.candles;
        let mut close = c[0].close;
        for t in 1..n {
            let s = src[t];
            close *= c[s].close / c[s - 1].close;
            let k = close / c[s].close;
            o.series.candles[t] = Candle {
                timestamp_ms: c[t].timestamp_ms,
                open: c[s].open * k,
                high: c[s].high * k,
                low: c[s].low * k,
                close,
                volume: c[s].volume,
            };
        }
    }
    Ok(out)
}

/// A regime-switching jump path fitted to the markets.
fn regime(markets: &[Market], rng: &mut PathRng) -> Result<Vec<Market>> {
    let n = aligned(markets)?;
    let returns: Vec<Vec<f64>> = markets.iter().map(|m| log_returns(&m.series.candles)).collect();
    let fits: Vec<(f64, f64)> = returns.iter().map(|r| mean_sd(r)).collect();
    let (_, sd0) = fits[0];
    let jumps: Vec<f64> = returns[0].iter().copied().filter(|r| r.abs() > 4.0 * sd0 && sd0 > 0.0).collect();
    let (rate, jump_mean, jump_sd) = if jumps.is_empty() {
        (1.0 / 500.0, -4.0 * sd0, 2.0 * sd0)
    } else {
        let (m, s) = mean_sd(&jumps);
        (jumps.len() as f64 / returns[0].len() as f64, m, if jumps.len() > 1 { s } else { m.abs() / 2.0 })
    };
    // each asset's correlation with the first
    let rho: Vec<f64> = returns
        .iter()
        .zip(&fits)
        .map(|(r, &(m, s))| {
            let (m0, s0) = fits[0];
            let cov = r.iter().zip(&returns[0]).map(|(a, b)| (a - m) * (b - m0)).sum::<f64>() / (r.len() as f64 - 1.0);
            if s > 0.0 && s0 > 0.0 { (cov / (s * s0)).clamp(-1.0, 1.0) } else { 0.0 }
        })
        .collect();
    let mut out: Vec<Market> = markets.to_vec();
    let mut closes: Vec<f64> = markets.iter().map(|m| m.series.candles[0].close).collect();
    let mut stressed = false;
    for t in 1..n {
        stressed = if stressed { rng.uniform() >= 0.05 } else { rng.uniform() < 0.01 };
        let scale = if stressed { 2.0 } else { 0.7 };
        let common = rng.normal();
        let jump = if rng.uniform() < rate { jump_mean + jump_sd * rng.normal() } else { 0.0 };
        for (k, o) in out.iter_mut().enumerate() {
            let (mean, sd) = fits[k];
            let z = rho[k] * common + (1.0 - rho[k] * rho[k]).sqrt() * rng.normal();
            let r = mean + scale * sd * z + jump * rho[k];
            let open = closes[k];
            let close = open * r.exp();
            let wick = |rng: &mut PathRng| (0.3 * scale * sd * rng.normal().abs()).exp();
            let high = open.max(close) * wick(rng);
            let low = open.min(close) / wick(rng);
            let c = &markets[k].series.candles[t];
            o.series.candles[t] = Candle { timestamp_ms: c.timestamp_ms, open, high, low, close, volume: c.volume };
            closes[k] = close;
        }
    }
    Ok(out)
}

/// Whether a market trades near 1 (a stablecoin against a dollar quote): its mean close within 3 % of 1.
fn is_stable(m: &Market) -> bool {
    let c = &m.series.candles;
    let mean = c.iter().map(|b| b.close).sum::<f64>() / c.len().max(1) as f64;
    (0.97..=1.03).contains(&mean)
}

/// Multiplies the bars of `m` from bar `from` on by `factor(i)` (the close by bar i's factor, the open by the
/// previous bar's, high and low by whichever stretches them).
fn reshape(m: &mut Market, from: usize, factor: &dyn Fn(usize) -> f64) {
    let candles = &mut m.series.candles;
    for (i, c) in candles.iter_mut().enumerate().skip(from) {
        let (f0, f1) = (if i == from { 1.0 } else { factor(i - 1) }, factor(i));
        let (open, close) = (c.open * f0, c.close * f1);
        c.high = (c.high * f0.max(f1)).max(open).max(close);
        c.low = (c.low * f0.min(f1)).min(open).min(close);
        c.open = open;
        c.close = close;
    }
}

/// Lays `scenarios` on `markets` (from their middle bar on) and on `costs`.
///
/// # Errors
/// A depeg with no stable asset; a rate spike (lending configs only).
pub fn apply_scenarios(markets: &mut [Market], costs: &mut Costs, scenarios: &[Scenario]) -> Result<()> {
    let n = markets.first().map_or(0, |m| m.series.len());
    let interval = markets.first().and_then(|m| m.series.median_interval_ms()).unwrap_or(3_600_000).max(1);
    // bars per hour (below 1 for daily data); a scenario's phases last at least one bar
    let per_hour = 3_600_000.0 / interval as f64;
    let t0 = n / 2;
    for &s in scenarios {
        let ramp = |from: f64, to: f64, start: usize, len: f64, i: usize| -> f64 {
            let x = ((i as f64 - start as f64 + 1.0) / len).clamp(0.0, 1.0);
            (from.ln() + (to.ln() - from.ln()) * x).exp()
        };
        match s {
            Scenario::FlashCrash => {
                let fall = per_hour.max(1.0);
                let back = (24.0 * per_hour).max(1.0);
                let f = |i: usize| {
                    let k = (i - t0) as f64;
                    if k < fall { ramp(1.0, 0.6, t0, fall, i) } else { ramp(0.6, 0.8, t0 + fall as usize, back, i) }
                };
                markets.iter_mut().filter(|m| !is_stable(m)).for_each(|m| reshape(m, t0, &f));
            }
            Scenario::SlowBear => {
                let len = (n - t0) as f64;
                markets
                    .iter_mut()
                    .filter(|m| !is_stable(m))
                    .for_each(|m| reshape(m, t0, &|i| ramp(1.0, 0.5, t0, len, i)));
            }
            Scenario::VolSpike => {
                let end = (t0 + (n / 10).max(1)).min(n - 1);
                for m in markets.iter_mut().filter(|m| !is_stable(m)) {
                    let closes: Vec<f64> = m.series.candles.iter().map(|c| c.close).collect();
                    let f = |i: usize| (closes[i.min(end)] / closes[t0]).powi(2);
                    reshape(m, t0, &f);
                }
            }
            Scenario::Depeg => {
                if !markets.iter().any(is_stable) {
                    return Err(Error::Stress(
                        "the depeg scenario needs a stablecoin among the assets (a price near 1 against the quote)"
                            .into(),
                    ));
                }
                let day = (24.0 * per_hour).max(1.0);
                let f = |i: usize| {
                    let k = (i - t0) as f64;
                    if k < day {
                        ramp(1.0, 0.9, t0, day, i)
                    } else if k < 8.0 * day {
                        0.9
                    } else {
                        ramp(0.9, 1.0, t0 + (8.0 * day) as usize, 3.0 * day, i)
                    }
                };
                markets.iter_mut().filter(|m| is_stable(m)).for_each(|m| reshape(m, t0, &f));
            }
            Scenario::LiquidityDrain => costs.pool_depth_usd /= 10.0,
            Scenario::GasSpike => costs.gas_price_gwei *= 20.0,
            Scenario::RateSpike => {
                return Err(Error::Stress(
                    "the rate_spike scenario moves lending rates: it applies to lending configs (stable_rotator)"
                        .into(),
                ));
            }
        }
    }
    Ok(())
}

/// Points of each path's equity curve kept for fan charts.
pub const CURVE_POINTS: usize = 100;

/// What a stress run's paths are made from.
#[derive(Clone, Copy)]
pub enum StressData<'a> {
    /// Candle markets (indicator strategies).
    Candles(&'a [Market]),
    /// Lending markets (the stable rotator).
    Lending(&'a RateMarket),
    /// A synthetic pool (LP strategies): paths of its price path, the pool's flow generated along each.
    Pool(&'a PoolStress),
}

/// The synthetic pool of an LP config, for stress paths: the candles its flow follows, and the pool's parameters.
pub struct PoolStress {
    /// The price path (one market).
    pub candles: Vec<Market>,
    /// The pool: bands, TVL, volume, fee.
    pub spec: sextant_data::synth_pool::PoolSynthSpec,
}

/// A block-bootstrap path of lending markets: observations resampled in blocks of consecutive steps (all markets
/// draw the same steps), at the original times.
fn bootstrap_rates(market: &RateMarket, block: usize, rng: &mut PathRng) -> Result<RateMarket> {
    let first = market.markets.first().ok_or_else(|| Error::Stress("no lending markets".into()))?;
    let n = first.series.points.len();
    let aligned = market.markets.iter().all(|m| {
        m.series.points.len() == n
            && m.series.points.iter().zip(&first.series.points).all(|(a, b)| a.timestamp_ms == b.timestamp_ms)
    });
    if !aligned || n < 3 {
        return Err(Error::Stress(
            "bootstrap paths of lending markets need every market observed at the same times (at least 3)".into(),
        ));
    }
    let block = block.clamp(1, n - 1);
    let mut src = Vec::with_capacity(n);
    src.push(0);
    while src.len() < n {
        let start = 1 + rng.below(n - block);
        src.extend((start..start + block).take(n - src.len()));
    }
    let mut out = market.clone();
    for (o, m) in out.markets.iter_mut().zip(&market.markets) {
        for (t, p) in o.series.points.iter_mut().enumerate() {
            *p = sextant_market::RatePoint { timestamp_ms: p.timestamp_ms, ..m.series.points[src[t]] };
        }
    }
    Ok(out)
}

/// Lays `scenarios` on lending markets (from the middle step on) and on `costs`: `rate_spike` pins every market's
/// utilisation at 97 % or more for three days (supply and borrow rates from its curve there, or four times the
/// observed without one), so withdrawals find little free liquidity; `liquidity_drain` divides every market's TVL
/// (and the swap pool depth) by 10; `gas_spike` multiplies gas by 20.
///
/// # Errors
/// A price scenario (candle configs only).
pub fn apply_lending_scenarios(market: &mut RateMarket, costs: &mut Costs, scenarios: &[Scenario]) -> Result<()> {
    let t0 = market.times.get(market.times.len() / 2).copied().unwrap_or(0);
    for &s in scenarios {
        match s {
            Scenario::RateSpike => {
                let end = t0 + 3 * 86_400_000;
                for m in &mut market.markets {
                    for p in m.series.points.iter_mut().filter(|p| p.timestamp_ms >= t0 && p.timestamp_ms < end) {
                        let u = p.utilization.max(0.97);
                        p.utilization = u;
                        match &m.curve {
                            Some(c) => {
                                p.borrow_apy = sextant_protocols::aave_v3::apy_of_apr(c.borrow_apr(u));
                                p.supply_apy = sextant_protocols::aave_v3::apy_of_apr(c.supply_apr(u));
                            }
                            None => {
                                p.borrow_apy *= 4.0;
                                p.supply_apy *= 4.0;
                            }
                        }
                    }
                }
            }
            Scenario::LiquidityDrain => {
                costs.pool_depth_usd /= 10.0;
                for m in &mut market.markets {
                    m.series.points.iter_mut().filter(|p| p.timestamp_ms >= t0).for_each(|p| p.tvl_usd /= 10.0);
                }
            }
            Scenario::GasSpike => costs.gas_price_gwei *= 20.0,
            other => {
                return Err(Error::Stress(format!(
                    "the {} scenario moves prices: it applies to candle configs, not lending ones",
                    other.name()
                )));
            }
        }
    }
    Ok(())
}

/// A stress run.
pub struct Stress<'a> {
    /// The config (its strategy, costs and cash).
    pub config: &'a BacktestConfig,
    /// The data paths are made from.
    pub data: StressData<'a>,
    /// Paths and scenarios.
    pub spec: &'a StressSpec,
    /// The slice run here.
    pub shard: Shard,
    /// Worker threads.
    pub jobs: usize,
}

impl Stress<'_> {
    /// Checks the run can start: the strategy builds, the data can be resampled, the scenarios apply.
    ///
    /// # Errors
    /// What would make every path fail.
    pub fn check(&self) -> Result<()> {
        match self.data {
            StressData::Candles(_) => drop(build_strategy(self.config)?),
            StressData::Lending(_) => drop(crate::build_rotator(self.config)?),
            StressData::Pool(_) => {}
        }
        if self.spec.model == PathModel::History && self.spec.paths != 1 {
            return Err(Error::Stress(format!(
                "--model history is one path (the data); got --paths {}",
                self.spec.paths
            )));
        }
        if !(1..=crate::sweep::MAX_POINTS).contains(&self.spec.paths) {
            return Err(Error::Stress(format!(
                "paths must be between 1 and {}, got {}",
                crate::sweep::MAX_POINTS,
                self.spec.paths
            )));
        }
        match self.data {
            StressData::Candles(_) => {
                let mut markets = self.path(0)?;
                apply_scenarios(&mut markets, &mut self.config.costs(), &self.spec.scenarios)
            }
            StressData::Pool(_) => self.run_path(0).map(drop),
            StressData::Lending(_) => {
                let mut market = self.lending_path(0)?;
                apply_lending_scenarios(&mut market, &mut self.config.costs(), &self.spec.scenarios)
            }
        }
    }

    /// Path `index`'s candle markets, before scenarios.
    ///
    /// # Errors
    /// Data that cannot be resampled; lending data.
    pub fn path(&self, index: usize) -> Result<Vec<Market>> {
        let markets = match self.data {
            StressData::Candles(markets) => markets,
            StressData::Pool(p) => &p.candles,
            StressData::Lending(_) => return Err(Error::Stress("the data are lending markets, not candles".into())),
        };
        let mut rng = PathRng::for_path(self.spec.seed, index);
        match self.spec.model {
            PathModel::History => Ok(markets.to_vec()),
            PathModel::Bootstrap { block } => bootstrap(markets, block, &mut rng),
            PathModel::Regime => regime(markets, &mut rng),
        }
    }

    /// Path `index`'s lending markets, before scenarios.
    ///
    /// # Errors
    /// Data that cannot be resampled; the regime model (fitted to candle returns); candle data.
    pub fn lending_path(&self, index: usize) -> Result<RateMarket> {
        let StressData::Lending(market) = self.data else {
            return Err(Error::Stress("the data are candles, not lending markets".into()));
        };
        let mut rng = PathRng::for_path(self.spec.seed, index);
        match self.spec.model {
            PathModel::History => Ok(market.clone()),
            PathModel::Bootstrap { block } => bootstrap_rates(market, block, &mut rng),
            PathModel::Regime => Err(Error::Stress(
                "the regime model is fitted to candle returns; lending configs stress with --model bootstrap or history"
                    .into(),
            )),
        }
    }

    /// Runs path `index` with the scenarios: the engine's result.
    ///
    /// # Errors
    /// As [`Stress::check`].
    pub fn run_path(&self, index: usize) -> Result<crate::BacktestResult> {
        let mut costs = self.config.costs();
        let cash = self.config.portfolio.initial_cash;
        match self.data {
            StressData::Candles(_) => {
                let mut markets = self.path(index)?;
                apply_scenarios(&mut markets, &mut costs, &self.spec.scenarios)?;
                let strategy = build_strategy(self.config)?;
                Ok(Engine::new(&strategy, &markets, costs, cash).run())
            }
            StressData::Lending(_) => {
                let mut market = self.lending_path(index)?;
                apply_lending_scenarios(&mut market, &mut costs, &self.spec.scenarios)?;
                let strategy = crate::build_rotator(self.config)?;
                Ok(crate::lending::LendingEngine::new(&strategy, &market, costs, cash).run(&mut |_| {}).result)
            }
            StressData::Pool(p) => {
                let mut markets = self.path(index)?;
                apply_scenarios(&mut markets, &mut costs, &self.spec.scenarios)?;
                // the pool's own depth drains with the market's
                let mut spec = p.spec.clone();
                if self.spec.scenarios.contains(&Scenario::LiquidityDrain) {
                    spec.tvl /= 10.0;
                }
                let (pool, steps) = spec.generate_from(&markets[0].series)?;
                let market = self.config.pool_market(pool, steps, format!("stress path {index}"))?;
                let strategy = crate::build_lp_strategy(self.config, &market)?;
                Ok(crate::lp::LpEngine::new(&strategy, &market, costs, cash).run(&mut |_| {}).result)
            }
        }
    }

    /// Path `index`'s results line: `index`, `metrics`, and `curve` (equity over initial cash at
    /// [`CURVE_POINTS`] evenly spaced steps), or `error`.
    pub fn evaluate(&self, index: usize) -> String {
        match self.run_path(index) {
            Ok(r) => {
                let initial = self.config.portfolio.initial_cash;
                let n = r.equity.len();
                let curve: Vec<f64> = (0..CURVE_POINTS)
                    .map(|k| {
                        let at = if n == 0 { None } else { Some(k * (n - 1) / (CURVE_POINTS - 1)) };
                        at.map_or(1.0, |i| (r.equity[i].equity / initial * 1e6).round() / 1e6)
                    })
                    .collect();
                serde_json::json!({ "index": index, "metrics": r.metrics, "curve": curve }).to_string()
            }
            Err(e) => serde_json::json!({ "index": index, "error": e.to_string() }).to_string(),
        }
    }

    /// Runs the shard's paths in index order, streaming each line to `emit` (see
    /// [`crate::sweep::run_indexed`]).
    ///
    /// # Errors
    /// What `emit` or `previous` return; a thread pool that cannot start.
    pub fn run(
        &self,
        previous: &mut dyn Iterator<Item = Result<(usize, String)>>,
        stop: &std::sync::atomic::AtomicBool,
        progress: &(dyn Fn() + Sync),
        emit: &mut dyn FnMut(usize, &str) -> Result<()>,
    ) -> Result<SweepOutcome> {
        let pool = crate::sweep::thread_pool(self.jobs)?;
        run_indexed(
            &pool,
            self.jobs,
            self.shard,
            self.spec.paths,
            &|i| self.evaluate(i),
            previous,
            stop,
            progress,
            emit,
        )
    }
}

/// The distribution of a stress run's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StressSummary {
    /// Paths that ran.
    pub paths: usize,
    /// Paths that failed to run.
    pub failed: usize,
    /// Paths kept in the sample the percentiles come from (all of them up to [`SAMPLE_CAP`]).
    pub sampled: usize,
    /// Per metric: (name, [p5, p25, p50, p75, p95], mean over every path).
    pub metrics: Vec<(String, [f64; 5], f64)>,
    /// Share of paths that lost money (total return below 0).
    pub p_loss: f64,
    /// Share of paths ruined: a drawdown at least `ruin_drawdown`.
    pub p_ruin: f64,
    /// The drawdown that counts as ruin.
    pub ruin_drawdown: f64,
    /// The path with the lowest total return: (index, total return, max drawdown).
    pub worst: Option<(usize, f64, f64)>,
    /// Equity over initial cash at each curve point: [p5, p25, p50, p75, p95].
    pub fan: Vec<[f64; 5]>,
    /// The worst path's curve.
    pub worst_curve: Vec<f64>,
}

/// The most paths whose metrics and curves a summary keeps for percentiles (a uniform sample beyond).
pub const SAMPLE_CAP: usize = 20_000;

/// Builds a [`StressSummary`] from results lines as they stream past, in bounded memory: exact counts and means, a
/// uniform reservoir sample of [`SAMPLE_CAP`] paths for the percentiles and the fan.
pub struct SummaryBuilder {
    ruin_drawdown: f64,
    seen: usize,
    failed: usize,
    losses: usize,
    ruins: usize,
    /// Per metric: the sum and count of its finite values.
    sums: Vec<(f64, usize)>,
    worst: Option<(usize, f64, f64, Vec<f64>)>,
    sample: Vec<(Vec<f64>, Vec<f64>)>,
    rng: PathRng,
}

impl SummaryBuilder {
    /// An empty summary; a path is ruined when its max drawdown reaches `ruin_drawdown`.
    pub fn new(ruin_drawdown: f64) -> Self {
        SummaryBuilder {
            ruin_drawdown,
            seen: 0,
            failed: 0,
            losses: 0,
            ruins: 0,
            sums: vec![(0.0, 0); Metrics::NAMES.len()],
            worst: None,
            sample: Vec::new(),
            rng: PathRng(0x5eed),
        }
    }

    /// Takes a results line into account.
    ///
    /// # Errors
    /// A line that is not a stress path.
    pub fn push(&mut self, line: &str) -> Result<()> {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| Error::Stress(format!("not a stress path ({e}): {line:.80}")))?;
        let index = v["index"].as_u64().ok_or_else(|| Error::Stress(format!("a path without an index: {line:.80}")))?;
        if v["error"].is_string() {
            self.failed += 1;
            return Ok(());
        }
        let values: Vec<f64> = Metrics::NAMES.iter().map(|m| v["metrics"][m].as_f64().unwrap_or(f64::NAN)).collect();
        let curve: Vec<f64> = v["curve"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
            .unwrap_or_default();
        let get = |name: &str| values[Metrics::NAMES.iter().position(|m| *m == name).unwrap_or(0)];
        let (ret, dd) = (get("total_return"), get("max_drawdown"));
        self.losses += usize::from(ret < 0.0);
        self.ruins += usize::from(dd >= self.ruin_drawdown);
        for (s, x) in self.sums.iter_mut().zip(&values).filter(|(_, x)| x.is_finite()) {
            s.0 += x;
            s.1 += 1;
        }
        if ret.is_finite() && self.worst.as_ref().is_none_or(|w| ret < w.1) {
            self.worst = Some((index as usize, ret, dd, curve.clone()));
        }
        self.seen += 1;
        // reservoir sampling (algorithm R)
        if self.sample.len() < SAMPLE_CAP {
            self.sample.push((values, curve));
        } else {
            let j = self.rng.below(self.seen);
            if j < SAMPLE_CAP {
                self.sample[j] = (values, curve);
            }
        }
        Ok(())
    }

    /// The summary.
    pub fn finish(self) -> StressSummary {
        let pct = |mut xs: Vec<f64>| -> [f64; 5] {
            xs.retain(|x| x.is_finite());
            if xs.is_empty() {
                return [f64::NAN; 5];
            }
            xs.sort_by(f64::total_cmp);
            [0.05, 0.25, 0.5, 0.75, 0.95].map(|q| {
                // linear interpolation between closest ranks
                let pos = q * (xs.len() - 1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
            })
        };
        let n = self.seen.max(1) as f64;
        let metrics = Metrics::NAMES
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let column: Vec<f64> = self.sample.iter().map(|(v, _)| v[k]).collect();
                let (sum, count) = self.sums[k];
                ((*name).to_string(), pct(column), if count > 0 { sum / count as f64 } else { f64::NAN })
            })
            .collect();
        let points = self.sample.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
        let fan =
            (0..points).map(|i| pct(self.sample.iter().filter_map(|(_, c)| c.get(i).copied()).collect())).collect();
        StressSummary {
            paths: self.seen,
            failed: self.failed,
            sampled: self.sample.len(),
            metrics,
            p_loss: self.losses as f64 / n,
            p_ruin: self.ruins as f64 / n,
            ruin_drawdown: self.ruin_drawdown,
            worst: self.worst.as_ref().map(|w| (w.0, w.1, w.2)),
            fan,
            worst_curve: self.worst.map(|w| w.3).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_by_name() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()).unwrap(), s);
        }
        let e = Scenario::parse("meteor").unwrap_err().to_string();
        assert!(e.contains("flash_crash, slow_bear"), "{e}");
    }

    #[test]
    fn percentiles_interpolate_and_the_reservoir_is_bounded() {
        let mut b = SummaryBuilder::new(0.5);
        for i in 0..101 {
            let r = f64::from(i) / 100.0 - 0.3; // -0.30 ..= 0.70
            let line = serde_json::json!({"index": i, "metrics": {"total_return": r, "max_drawdown": if i < 10 { 0.6 } else { 0.1 }}, "curve": [1.0, 1.0 + r]});
            b.push(&line.to_string()).unwrap();
        }
        b.push(r#"{"index": 101, "error": "boom"}"#).unwrap();
        let s = b.finish();
        assert_eq!((s.paths, s.failed, s.sampled), (101, 1, 101));
        let ret = &s.metrics.iter().find(|m| m.0 == "total_return").unwrap().1;
        let expect = [-0.25, -0.05, 0.2, 0.45, 0.65];
        for (a, b) in ret.iter().zip(expect) {
            assert!((a - b).abs() < 1e-12, "{ret:?}");
        }
        assert!((s.p_loss - 30.0 / 101.0).abs() < 1e-12);
        assert!((s.p_ruin - 10.0 / 101.0).abs() < 1e-12);
        assert_eq!(s.worst.unwrap().0, 0);
        assert_eq!(s.fan.len(), 2);
        assert!((s.fan[1][2] - 1.2).abs() < 1e-12);
    }
}
