//! The backtest config file (TOML): strategy, risk, market, execution costs and portfolio.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_data::synth_pool::PoolStep;
use sextant_data::{Interval, Profile, SynthSpec};
use sextant_market::CandleSeries;
use sextant_strategies::{RiskSettings, StrategySpec};
use sextant_types::Token;
use std::path::{Path, PathBuf};

/// The longest synthetic market a config may ask for (a year of 1-minute bars is about 525,600).
pub const MAX_SYNTH_BARS: usize = 100_000_000;

/// A whole backtest config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestConfig {
    /// `[strategy]`: kind and parameters.
    pub strategy: StrategySpec,
    /// `[risk]`: shared risk settings.
    #[serde(default)]
    pub risk: RiskSettings,
    /// `[market]`: where bars come from.
    #[serde(default)]
    pub market: MarketConfig,
    /// `[execution]`: fill model and on-chain costs.
    #[serde(default)]
    pub execution: ExecutionConfig,
    /// `[portfolio]`: starting capital.
    #[serde(default)]
    pub portfolio: PortfolioConfig,
    /// `[pool]`: the Uniswap v3 pool LP strategies provide to (synthetic from `[market]`'s price path, or a
    /// demeter minute file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolConfig>,
    /// `[lending]`: the lending markets and vaults lending strategies allocate between (a rate CSV, or seeded
    /// synthetic markets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lending: Option<LendingConfig>,
    /// `[leverage]`: the Aave market a leverage loop runs on (its reserves' risk parameters, curves and size) and
    /// an optional synthetic crash; the collateral's price comes from `[market]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leverage: Option<LeverageConfig>,
    /// `[fixed_yield]`: the floating market and the Pendle PT a fixed-yield strategy chooses between.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_yield: Option<FixedYieldConfig>,
    /// `[live]`: how `sextant run` deploys this strategy; the backtest ignores it, so one file serves both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<toml::Table>,
    /// `[permissions]`: the deployment key's on-chain permissions (`sextant permissions`); the backtest ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<toml::Table>,
    /// `[vault]`: the strategy vault `sextant run` settles; the backtest ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<toml::Table>,
}

/// `[market]`: one asset (`data` or the synthetic defaults) or several (`[[market.assets]]`), all priced in `quote`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketConfig {
    /// OHLCV file of the single asset; without it the asset trades on a synthetic market.
    pub data: Option<PathBuf>,
    /// Symbol of the single asset.
    pub symbol: String,
    /// Quote (cash) token symbol.
    pub quote: String,
    /// Synthetic market seed (asset i of `assets` uses seed + i unless it sets its own).
    pub seed: u64,
    /// Synthetic market length in bars.
    pub bars: usize,
    /// Synthetic bar interval: 1m, 5m, 15m, 1h, 4h, 1d.
    pub interval: String,
    /// Synthetic start price.
    pub start_price: f64,
    /// Synthetic profile: volatile or stable.
    pub profile: String,
    /// Several assets sharing the cash; replaces `data` / `symbol`.
    pub assets: Vec<AssetConfig>,
}

impl Default for MarketConfig {
    fn default() -> Self {
        let synth = SynthSpec::default();
        MarketConfig {
            data: None,
            symbol: "WETH".into(),
            quote: "USDC".into(),
            seed: synth.seed,
            bars: synth.bars,
            interval: "1h".into(),
            start_price: synth.start_price,
            profile: "volatile".into(),
            assets: Vec::new(),
        }
    }
}

/// One entry of `[[market.assets]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    /// Asset symbol.
    pub symbol: String,
    /// OHLCV file; without it a synthetic market.
    pub data: Option<PathBuf>,
    /// Synthetic seed for this asset.
    pub seed: Option<u64>,
    /// Synthetic start price for this asset.
    pub start_price: Option<f64>,
    /// Synthetic profile for this asset.
    pub profile: Option<String>,
}

/// `[pool]`: the pool an LP strategy backtests on. Without `data` the pool is synthetic: `[market]` gives its price
/// path (seed, bars, interval, start_price, profile; `symbol` is token0, `quote` token1) and these keys its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// A minute file in demeter's format to replay instead of a synthetic pool.
    pub data: Option<PathBuf>,
    /// Swap fee in pips (500 = 0.05 %).
    pub fee: u32,
    /// Tick spacing.
    pub tick_spacing: i32,
    /// Decimals of token0.
    pub decimals0: u8,
    /// Decimals of token1.
    pub decimals1: u8,
    /// The asset (`market.symbol`) is token0 and the quote token1; false for pools ordered the other way (USDC/WETH
    /// on Ethereum has USDC as token0). Synthetic pools always have the asset as token0.
    pub asset_is_token0: bool,
    /// Synthetic pool: value locked at the start, in quote units.
    pub tvl: f64,
    /// Synthetic pool: swap volume per day, in quote units.
    pub daily_volume: f64,
    /// The pool's address as intents name it (any label in a backtest).
    pub address: String,
}

impl Default for PoolConfig {
    fn default() -> Self {
        let synth = sextant_data::synth_pool::PoolSynthSpec::default();
        PoolConfig {
            data: None,
            fee: synth.fee,
            tick_spacing: synth.tick_spacing,
            decimals0: synth.decimals.0,
            decimals1: synth.decimals.1,
            asset_is_token0: true,
            tvl: synth.tvl,
            daily_volume: synth.daily_volume,
            address: "0x0000000000000000000000000000000000005e57".into(),
        }
    }
}

/// `[lending]`: the asset and the markets of a lending backtest. Without `data`, seeded synthetic markets: the six
/// built-in USDC markets (Aave v3, Compound v3, Morpho, Euler v2, Fluid, Yearn v3; the Euler-style vault is drained and
/// frozen 70 % of the way through), or the `[[lending.markets]]` listed, each overriding a built-in one of the same id
/// or describing a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LendingConfig {
    /// The asset supplied, which is also the portfolio's cash (default USDC).
    pub asset: String,
    /// Its decimals (default 6).
    pub decimals: u8,
    /// A lending-rate CSV (timestamp, market, supply_apy, borrow_apy, tvl_usd, utilization[, reward_apy, frozen,
    /// bad_debt]) instead of synthetic markets.
    pub data: Option<PathBuf>,
    /// Synthetic markets: seed.
    pub seed: u64,
    /// Synthetic markets: number of observations.
    pub steps: usize,
    /// Synthetic markets: time between observations (`1h`, `4h`, `1d`, ...).
    pub interval: String,
    /// Markets: overrides of the synthetic defaults, new synthetic markets, or the protocol, address and curve of
    /// a CSV's markets.
    pub markets: Vec<LendingMarketConfig>,
}

impl Default for LendingConfig {
    fn default() -> Self {
        LendingConfig {
            asset: "USDC".into(),
            decimals: 6,
            data: None,
            seed: 7,
            steps: 24 * 365,
            interval: "1h".into(),
            markets: Vec::new(),
        }
    }
}

/// `[leverage]`: the two-reserve Aave v3 market of a leverage loop. The collateral is `market.symbol` and the debt
/// `market.quote`; others' deposits and borrows give each reserve its size and starting utilisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeverageConfig {
    /// The market's id as intents and reports name it.
    pub market: String,
    /// The collateral's loan-to-value (fraction).
    pub ltv: f64,
    /// The collateral's liquidation threshold.
    pub liquidation_threshold: f64,
    /// The liquidation bonus liquidators take (0.05 = 5 %).
    pub liquidation_bonus: f64,
    /// The protocol's share of that bonus.
    pub liquidation_protocol_fee: f64,
    /// Decimals of the collateral and the debt asset.
    pub collateral_decimals: u8,
    /// Decimals of the debt asset.
    pub debt_decimals: u8,
    /// The collateral reserve's curve.
    pub collateral_curve: sextant_data::rates::RateCurve,
    /// The debt reserve's curve.
    pub debt_curve: sextant_data::rates::RateCurve,
    /// Others' deposits of the collateral, USD.
    pub collateral_liquidity_usd: f64,
    /// Share of them others borrow.
    pub collateral_utilization: f64,
    /// Others' deposits of the debt asset, USD.
    pub debt_liquidity_usd: f64,
    /// Share of them others borrow.
    pub debt_utilization: f64,
    /// A synthetic crash at this fraction of the run: the price falls `crash_pct` % within one bar and stays there.
    pub crash_at: Option<f64>,
    /// The crash's depth, percent.
    pub crash_pct: f64,
}

impl Default for LeverageConfig {
    fn default() -> Self {
        use sextant_data::rates::RateCurve;
        LeverageConfig {
            market: "aave-v3".into(),
            ltv: 0.80,
            liquidation_threshold: 0.825,
            liquidation_bonus: 0.05,
            liquidation_protocol_fee: 0.10,
            collateral_decimals: 18,
            debt_decimals: 6,
            collateral_curve: RateCurve { optimal: 0.80, base: 0.0, slope1: 0.033, slope2: 0.80, reserve_factor: 0.15 },
            debt_curve: RateCurve { optimal: 0.92, base: 0.0, slope1: 0.065, slope2: 0.60, reserve_factor: 0.10 },
            collateral_liquidity_usd: 2e9,
            collateral_utilization: 0.3,
            debt_liquidity_usd: 1e9,
            debt_utilization: 0.85,
            crash_at: None,
            crash_pct: 35.0,
        }
    }
}

/// `[fixed_yield]`: a floating lending market and a Pendle PT on the same asset. Without `data` both are synthetic:
/// the built-in Aave-style USDC market and a PT whose implied APY follows the floating rate's 30-day average plus a
/// mean-reverting spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FixedYieldConfig {
    /// The asset (also the cash).
    pub asset: String,
    /// Its decimals.
    pub decimals: u8,
    /// The floating market's id.
    pub floating: String,
    /// The PT market's id.
    pub pt_market: String,
    /// The PT token's symbol.
    pub pt: String,
    /// Maturity, days after the first observation.
    pub maturity_days: f64,
    /// Pendle's `lnFeeRateRoot` (ln(1 + fee) a year).
    pub ln_fee_rate_root: f64,
    /// The PT pool's liquidity, USD.
    pub pt_liquidity_usd: f64,
    /// How far a trade moves the implied APY per unit of the pool it takes (0.1: buying a tenth of the pool lowers
    /// the implied APY it pays by 1 %).
    pub rate_impact: f64,
    /// A rate CSV holding both markets (the PT's `supply_apy` column is its implied APY).
    pub data: Option<PathBuf>,
    /// Synthetic: seed.
    pub seed: u64,
    /// Synthetic: observations.
    pub steps: usize,
    /// Synthetic: spacing.
    pub interval: String,
    /// Synthetic: mean of implied minus floating APY.
    pub spread_mean: f64,
    /// Synthetic: the spread's volatility, a year.
    pub spread_vol: f64,
}

impl Default for FixedYieldConfig {
    fn default() -> Self {
        FixedYieldConfig {
            asset: "USDC".into(),
            decimals: 6,
            floating: "aave-v3-usdc".into(),
            pt_market: "pendle-pt-usdc".into(),
            pt: "PT-USDC".into(),
            maturity_days: 180.0,
            ln_fee_rate_root: 0.001,
            pt_liquidity_usd: 50e6,
            rate_impact: 0.1,
            data: None,
            seed: 7,
            steps: 24 * 210,
            interval: "1h".into(),
            spread_mean: 0.003,
            spread_vol: 0.04,
        }
    }
}

/// One `[[lending.markets]]` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LendingMarketConfig {
    /// Market id (as the CSV's `market` column names it).
    pub id: String,
    /// `aave-v3`, `compound-v3` or `erc4626` (also `morpho`, `euler-v2`, `fluid`, `yearn-v3`); by default read from
    /// the id's prefix (`aave...`, `compound...`/`comet...`, anything else a vault).
    pub protocol: Option<String>,
    /// The contract intents name (default: the id).
    pub address: Option<String>,
    /// Borrow curve (optimal, base, slope1, slope2, reserve_factor); with it the strategy's own deposits move the
    /// rate along the curve.
    pub curve: Option<sextant_data::rates::RateCurve>,
    /// Synthetic: starting TVL, USD.
    pub tvl_usd: Option<f64>,
    /// Synthetic: mean utilisation.
    pub utilization: Option<f64>,
    /// Synthetic: utilisation volatility (logit scale, a year).
    pub utilization_vol: Option<f64>,
    /// Synthetic: borrow-demand spikes a year.
    pub spikes_per_year: Option<f64>,
    /// Synthetic: mean reward APY.
    pub reward_apy: Option<f64>,
    /// Synthetic: drain and freeze the market at this fraction of the run.
    pub exploit_at: Option<f64>,
    /// Synthetic: the fraction of supplied funds lost when it is exploited.
    pub exploit_loss: Option<f64>,
    /// Synthetic: leave the market out (to run on some of the built-in markets).
    pub disabled: bool,
}

impl LendingMarketConfig {
    fn protocol_of(&self) -> Option<sextant_market::LendingProtocol> {
        use sextant_market::LendingProtocol;
        match &self.protocol {
            Some(p) => LendingProtocol::parse(p),
            None => Some(protocol_from_id(&self.id)),
        }
    }
}

/// The protocol a market id names by its prefix.
pub fn protocol_from_id(id: &str) -> sextant_market::LendingProtocol {
    use sextant_market::LendingProtocol;
    let id = id.to_ascii_lowercase();
    if id.starts_with("aave") {
        LendingProtocol::AaveV3
    } else if id.starts_with("compound") || id.starts_with("comet") {
        LendingProtocol::CompoundV3
    } else {
        LendingProtocol::Erc4626
    }
}

/// When a decision fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillModel {
    /// At the open of the next bar (no look-ahead; the default).
    #[default]
    NextOpen,
    /// At the close of the decision bar.
    Close,
}

/// How price impact is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlippageKind {
    /// No price impact.
    None,
    /// A fixed `slippage_bps` on every swap.
    Fixed,
    /// A constant-product pool holding `pool_depth_usd` in all, half on each side, at the bar's price.
    #[default]
    ConstantProduct,
}

/// The `costs` shortcut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostsPreset {
    /// Zero fee, gas, slippage, MEV and latency.
    None,
}

/// `[execution]` as written: every cost optional so `costs = "none"` can refuse contradicting keys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    /// `"none"` zeroes every cost and latency.
    pub costs: Option<CostsPreset>,
    /// `next_open` (default) or `close`.
    pub fill: FillModel,
    /// DEX fee per swap, basis points (default 30).
    pub fee_bps: Option<f64>,
    /// Gas units per swap (default 150000).
    pub gas_units: Option<u64>,
    /// Gas price in gwei (default 10).
    pub gas_price_gwei: Option<f64>,
    /// Native token price in USD for gas (default 3000).
    pub native_price_usd: Option<f64>,
    /// `none`, `fixed` or `constant_product` (default).
    pub slippage: Option<SlippageKind>,
    /// Impact of `slippage = "fixed"`, basis points (default 5).
    pub slippage_bps: Option<f64>,
    /// Pool depth of `slippage = "constant_product"` in USD, both sides together (default 10000000).
    pub pool_depth_usd: Option<f64>,
    /// Sandwich loss per swap, basis points, capped by what the slippage tolerance leaves (default 5).
    pub mev_bps: Option<f64>,
    /// Bars between decision and fill (default 0).
    pub latency_bars: Option<usize>,
    /// Min-out tolerance every swap is sent with, basis points (default 100): a quote worse than this is skipped.
    pub slippage_tolerance_bps: Option<u32>,
    /// Attempts per intent before a transient failure is final (default 3).
    pub max_attempts: Option<u32>,
    /// Probability that a swap's transaction is dropped (a transient failure, retried up to `max_attempts` times
    /// at the same bar); default 0.
    pub failure_rate: Option<f64>,
}

/// Resolved execution costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// Fill model.
    pub fill: FillModel,
    /// DEX fee, basis points.
    pub fee_bps: f64,
    /// Gas units per swap.
    pub gas_units: u64,
    /// Gas price, gwei.
    pub gas_price_gwei: f64,
    /// Native token price, USD.
    pub native_price_usd: f64,
    /// Impact model.
    pub slippage: SlippageKind,
    /// Fixed impact, basis points.
    pub slippage_bps: f64,
    /// Constant-product pool depth, USD.
    pub pool_depth_usd: f64,
    /// MEV loss, basis points.
    pub mev_bps: f64,
    /// Bars between decision and fill.
    pub latency_bars: usize,
    /// Swap tolerance, basis points.
    pub slippage_tolerance_bps: u32,
    /// Attempts per intent.
    pub max_attempts: u32,
    /// Probability that a swap attempt fails transiently.
    pub failure_rate: f64,
}

impl Costs {
    /// Gas cost of one swap in USD.
    pub fn gas_usd(&self) -> f64 {
        self.gas_units as f64 * self.gas_price_gwei * 1e-9 * self.native_price_usd
    }
}

impl ExecutionConfig {
    /// Resolves defaults and the `costs` shortcut.
    ///
    /// # Errors
    /// When `costs = "none"` is combined with an explicit cost, or a value is out of range; names the key.
    pub fn resolve(&self) -> std::result::Result<Costs, (String, String)> {
        let none = self.costs == Some(CostsPreset::None);
        if none {
            let set = [
                ("fee_bps", self.fee_bps.is_some()),
                ("gas_units", self.gas_units.is_some()),
                ("gas_price_gwei", self.gas_price_gwei.is_some()),
                ("slippage", self.slippage.is_some()),
                ("slippage_bps", self.slippage_bps.is_some()),
                ("pool_depth_usd", self.pool_depth_usd.is_some()),
                ("mev_bps", self.mev_bps.is_some()),
                ("latency_bars", self.latency_bars.is_some()),
            ];
            if let Some((key, _)) = set.iter().find(|(_, s)| *s) {
                return Err((format!("execution.{key}"), "cannot be set together with costs = \"none\"".into()));
            }
        }
        let zero_or = |v: Option<f64>, d: f64| if none { 0.0 } else { v.unwrap_or(d) };
        let costs = Costs {
            fill: self.fill,
            fee_bps: zero_or(self.fee_bps, 30.0),
            gas_units: if none { 0 } else { self.gas_units.unwrap_or(150_000) },
            gas_price_gwei: zero_or(self.gas_price_gwei, 10.0),
            native_price_usd: self.native_price_usd.unwrap_or(3000.0),
            slippage: if none { SlippageKind::None } else { self.slippage.unwrap_or_default() },
            slippage_bps: zero_or(self.slippage_bps, 5.0),
            pool_depth_usd: self.pool_depth_usd.unwrap_or(10_000_000.0),
            mev_bps: zero_or(self.mev_bps, 5.0),
            latency_bars: if none { 0 } else { self.latency_bars.unwrap_or(0) },
            slippage_tolerance_bps: self.slippage_tolerance_bps.unwrap_or(100),
            max_attempts: self.max_attempts.unwrap_or(3),
            failure_rate: self.failure_rate.unwrap_or(0.0),
        };
        let checks: [(&str, f64, f64, f64); 7] = [
            ("fee_bps", costs.fee_bps, 0.0, 10_000.0),
            ("gas_price_gwei", costs.gas_price_gwei, 0.0, 1e9),
            ("native_price_usd", costs.native_price_usd, 0.0, 1e12),
            ("slippage_bps", costs.slippage_bps, 0.0, 10_000.0),
            ("pool_depth_usd", costs.pool_depth_usd, f64::MIN_POSITIVE, 1e15),
            ("mev_bps", costs.mev_bps, 0.0, 10_000.0),
            ("slippage_tolerance_bps", f64::from(costs.slippage_tolerance_bps), 0.0, 10_000.0),
        ];
        for (key, v, lo, hi) in checks {
            if !(v.is_finite() && v >= lo && v <= hi) {
                return Err((format!("execution.{key}"), format!("must be between {lo} and {hi}, got {v}")));
            }
        }
        if !(0.0..1.0).contains(&costs.failure_rate) {
            return Err(("execution.failure_rate".into(), format!("must be in [0, 1), got {}", costs.failure_rate)));
        }
        if costs.max_attempts == 0 {
            return Err(("execution.max_attempts".into(), "must be >= 1, got 0".into()));
        }
        Ok(costs)
    }
}

/// `[portfolio]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortfolioConfig {
    /// Starting cash in the quote token (default 10000).
    pub initial_cash: f64,
}

impl Default for PortfolioConfig {
    fn default() -> Self {
        PortfolioConfig { initial_cash: 10_000.0 }
    }
}

/// One market to trade: the asset, its quote, and its bars.
#[derive(Debug, Clone, PartialEq)]
pub struct Market {
    /// Asset.
    pub base: Token,
    /// Cash token.
    pub quote: Token,
    /// Bars.
    pub series: CandleSeries,
    /// Where the bars came from, for reports: a file path or `synthetic(seed=.., ...)`.
    pub source: String,
}

impl BacktestConfig {
    /// Parses a config from TOML text; `path` names it in errors.
    ///
    /// # Errors
    /// Syntax errors, unknown keys and wrong types (with the line and key), and out-of-range values (with the key).
    pub fn parse(text: &str, path: &str) -> Result<Self> {
        let config: BacktestConfig =
            toml::from_str(text).map_err(|e| Error::ConfigSyntax { path: path.into(), message: e.to_string() })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Reads and parses a config file.
    ///
    /// # Errors
    /// As [`BacktestConfig::parse`], or when the file cannot be read.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::ConfigSyntax { path: name.clone(), message: format!("cannot read: {e}") })?;
        let mut config = Self::parse(&text, &name)?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    /// Makes relative data paths relative to `dir` (the config file's directory).
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p
                && path.is_relative()
            {
                *path = dir.join(&*path);
            }
        };
        fix(&mut self.market.data);
        self.market.assets.iter_mut().for_each(|a| fix(&mut a.data));
        if let Some(lending) = &mut self.lending {
            fix(&mut lending.data);
        }
        if let Some(fy) = &mut self.fixed_yield {
            fix(&mut fy.data);
        }
        if let Some(pool) = &mut self.pool {
            fix(&mut pool.data);
        }
    }

    /// Checks every value, naming the key at fault.
    ///
    /// # Errors
    /// [`Error::ConfigValue`].
    pub fn validate(&self, path: &str) -> Result<()> {
        let value_err = |key: String, message: String| Error::ConfigValue { path: path.into(), key, message };
        self.strategy.validate().map_err(|e| value_err(e.key, e.message))?;
        self.risk.validate().map_err(|e| value_err(e.key, e.message))?;
        self.execution.resolve().map_err(|(k, m)| value_err(k, m))?;
        let cash = self.portfolio.initial_cash;
        if !(cash.is_finite() && cash > 0.0) {
            return Err(value_err("portfolio.initial_cash".into(), format!("must be a positive number, got {cash}")));
        }
        let m = &self.market;
        if self.is_fixed_yield() {
            let c = self.fixed_yield.clone().unwrap_or_default();
            c.interval.parse::<Interval>().map_err(|e| value_err("fixed_yield.interval".into(), strip_prefix(e)))?;
            let pos = |k: &str, v: f64| {
                if v.is_finite() && v > 0.0 {
                    Ok(())
                } else {
                    Err(value_err(format!("fixed_yield.{k}"), format!("must be a positive number, got {v}")))
                }
            };
            pos("maturity_days", c.maturity_days)?;
            pos("pt_liquidity_usd", c.pt_liquidity_usd)?;
            if !(c.rate_impact.is_finite() && c.rate_impact >= 0.0) {
                return Err(value_err(
                    "fixed_yield.rate_impact".into(),
                    format!("must be a non-negative number, got {}", c.rate_impact),
                ));
            }
            if !(c.ln_fee_rate_root.is_finite() && (0.0..1.0).contains(&c.ln_fee_rate_root)) {
                return Err(value_err(
                    "fixed_yield.ln_fee_rate_root".into(),
                    format!("must be in [0, 1), got {}", c.ln_fee_rate_root),
                ));
            }
            if c.data.is_none() && !(2..=10_000_000).contains(&c.steps) {
                return Err(value_err(
                    "fixed_yield.steps".into(),
                    format!("must be between 2 and 10000000, got {}", c.steps),
                ));
            }
            if c.floating == c.pt_market || c.pt.eq_ignore_ascii_case(&c.asset) {
                return Err(value_err(
                    "fixed_yield.pt_market".into(),
                    "the PT market and token must differ from the floating market and asset".into(),
                ));
            }
            if self.pool.is_some() || self.lending.is_some() || self.leverage.is_some() {
                return Err(value_err(
                    "fixed_yield".into(),
                    "a fixed-yield strategy runs on [fixed_yield] only".into(),
                ));
            }
            return Ok(());
        } else if self.fixed_yield.is_some() {
            return Err(value_err(
                "fixed_yield".into(),
                format!("is for fixed_yield; {} does not use it", self.strategy.kind()),
            ));
        }
        if self.is_leverage() {
            let l = self.leverage.clone().unwrap_or_default();
            let frac = |k: &str, v: f64, lo: f64, hi: f64| {
                if v.is_finite() && v > lo && v < hi {
                    Ok(())
                } else {
                    Err(value_err(format!("leverage.{k}"), format!("must be between {lo} and {hi}, got {v}")))
                }
            };
            frac("ltv", l.ltv, 0.0, 1.0)?;
            frac("liquidation_threshold", l.liquidation_threshold, 0.0, 1.0)?;
            if l.ltv > l.liquidation_threshold {
                return Err(value_err(
                    "leverage.ltv".into(),
                    format!("must not exceed liquidation_threshold ({}), got {}", l.liquidation_threshold, l.ltv),
                ));
            }
            frac("liquidation_bonus", l.liquidation_bonus, 0.0, 0.5)?;
            if l.liquidation_threshold * (1.0 + l.liquidation_bonus) >= 1.0 {
                return Err(value_err(
                    "leverage.liquidation_bonus".into(),
                    "liquidation_threshold x (1 + liquidation_bonus) must stay below 1, as Aave requires".into(),
                ));
            }
            frac("liquidation_protocol_fee", l.liquidation_protocol_fee, -1e-12, 1.0)?;
            frac("collateral_utilization", l.collateral_utilization, -1e-12, 1.0)?;
            frac("debt_utilization", l.debt_utilization, -1e-12, 1.0)?;
            frac("collateral_liquidity_usd", l.collateral_liquidity_usd, 0.0, 1e13)?;
            frac("debt_liquidity_usd", l.debt_liquidity_usd, 0.0, 1e13)?;
            frac("crash_pct", l.crash_pct, 0.0, 100.0)?;
            if let Some(at) = l.crash_at {
                frac("crash_at", at, -1e-12, 1.0)?;
            }
            for (k, c) in [("collateral_curve", l.collateral_curve), ("debt_curve", l.debt_curve)] {
                c.validate(&format!("leverage.{k}")).map_err(|e| value_err(format!("leverage.{k}"), e.to_string()))?;
            }
            if l.collateral_decimals > 36 || l.debt_decimals > 36 {
                return Err(value_err("leverage.collateral_decimals".into(), "decimals must be at most 36".into()));
            }
            if self.pool.is_some() || self.lending.is_some() || !m.assets.is_empty() {
                return Err(value_err(
                    "leverage".into(),
                    "a leverage loop runs on [market] (one asset, the collateral) and [leverage] only".into(),
                ));
            }
        } else if self.leverage.is_some() {
            return Err(value_err(
                "leverage".into(),
                format!("is for leverage_loop; {} does not use it", self.strategy.kind()),
            ));
        }
        if self.is_lending() {
            let l = self.lending.clone().unwrap_or_default();
            l.interval.parse::<Interval>().map_err(|e| value_err("lending.interval".into(), strip_prefix(e)))?;
            if l.data.is_none() && !(1..=10_000_000).contains(&l.steps) {
                return Err(value_err(
                    "lending.steps".into(),
                    format!("must be between 1 and 10000000, got {}", l.steps),
                ));
            }
            if l.decimals > 36 || l.asset.is_empty() {
                return Err(value_err("lending.asset".into(), "needs a symbol and at most 36 decimals".into()));
            }
            for (i, mc) in l.markets.iter().enumerate() {
                if mc.id.is_empty() {
                    return Err(value_err(format!("lending.markets[{i}].id"), "is required".into()));
                }
                if l.markets[..i].iter().any(|o| o.id == mc.id) {
                    return Err(value_err(format!("lending.markets[{i}].id"), format!("{:?} is listed twice", mc.id)));
                }
                if mc.protocol_of() == Some(sextant_market::LendingProtocol::PendlePt) {
                    return Err(value_err(
                        format!("lending.markets[{i}].protocol"),
                        "a Pendle PT is not a lending market: fixed_yield trades it ([fixed_yield])".into(),
                    ));
                }
                if mc.protocol_of().is_none() {
                    return Err(value_err(
                        format!("lending.markets[{i}].protocol"),
                        format!(
                            "must be aave-v3, compound-v3 or erc4626 (or morpho, euler-v2, fluid, yearn-v3), got {:?}",
                            mc.protocol.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                if let Some(c) = &mc.curve {
                    c.validate(&format!("lending.markets[{i}]"))
                        .map_err(|e| value_err(format!("lending.markets[{i}].curve"), e.to_string()))?;
                }
            }
            if self.pool.is_some() {
                return Err(value_err("pool".into(), "is for LP strategies; a lending strategy uses [lending]".into()));
            }
            return Ok(());
        } else if self.lending.is_some() {
            return Err(value_err(
                "lending".into(),
                format!("is for lending strategies (stable_rotator); {} does not use it", self.strategy.kind()),
            ));
        }
        if self.is_lp() {
            if m.data.is_some() || !m.assets.is_empty() {
                return Err(value_err(
                    "market.data".into(),
                    "an LP strategy trades a pool: give a demeter minute file as pool.data, not candles".into(),
                ));
            }
            let p = self.pool.clone().unwrap_or_default();
            if p.fee >= 1_000_000 {
                return Err(value_err("pool.fee".into(), format!("must be below 1000000 pips, got {}", p.fee)));
            }
            if !(1..=16_384).contains(&p.tick_spacing) {
                return Err(value_err(
                    "pool.tick_spacing".into(),
                    format!("must be between 1 and 16384, got {}", p.tick_spacing),
                ));
            }
            for (key, v) in [("pool.decimals0", p.decimals0), ("pool.decimals1", p.decimals1)] {
                if v > 36 {
                    return Err(value_err(key.into(), format!("must be at most 36, got {v}")));
                }
            }
            if !p.asset_is_token0 && p.data.is_none() {
                return Err(value_err(
                    "pool.asset_is_token0".into(),
                    "can be false only for a minute file (pool.data): synthetic pools have the asset as token0".into(),
                ));
            }
            if !(p.tvl.is_finite() && p.tvl > 0.0) {
                return Err(value_err("pool.tvl".into(), format!("must be a positive number, got {}", p.tvl)));
            }
            if !(p.daily_volume.is_finite() && p.daily_volume >= 0.0) {
                return Err(value_err(
                    "pool.daily_volume".into(),
                    format!("must be a non-negative number, got {}", p.daily_volume),
                ));
            }
        } else if self.pool.is_some() {
            return Err(value_err(
                "pool".into(),
                format!("is for LP strategies (dynamic_lp); {} trades candles", self.strategy.kind()),
            ));
        }
        if !m.assets.is_empty() && m.data.is_some() {
            return Err(value_err(
                "market.data".into(),
                "cannot be combined with [[market.assets]]; give each asset its own data".into(),
            ));
        }
        m.interval.parse::<Interval>().map_err(|e| value_err("market.interval".into(), strip_prefix(e)))?;
        m.profile.parse::<Profile>().map_err(|e| value_err("market.profile".into(), strip_prefix(e)))?;
        for (i, a) in m.assets.iter().enumerate() {
            if let Some(p) = &a.profile {
                p.parse::<Profile>().map_err(|e| value_err(format!("market.assets[{i}].profile"), strip_prefix(e)))?;
            }
            // Token ids ignore case, so symbols must differ in more than case.
            let same = |x: &str, y: &str| x.eq_ignore_ascii_case(y);
            if m.assets[..i].iter().any(|b| same(&b.symbol, &a.symbol)) || same(&a.symbol, &m.quote) {
                return Err(value_err(
                    format!("market.assets[{i}].symbol"),
                    format!("must be unique and differ from the quote, got {:?}", a.symbol),
                ));
            }
        }
        if m.assets.is_empty() && m.symbol.eq_ignore_ascii_case(&m.quote) {
            return Err(value_err(
                "market.symbol".into(),
                format!("must differ from market.quote, got {:?}", m.symbol),
            ));
        }
        if m.data.is_none() || !m.assets.is_empty() {
            if !(1..=MAX_SYNTH_BARS).contains(&m.bars) {
                return Err(value_err(
                    "market.bars".into(),
                    format!("must be between 1 and {MAX_SYNTH_BARS}, got {}", m.bars),
                ));
            }
            let prices = std::iter::once(("market.start_price".to_string(), m.start_price)).chain(
                m.assets
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| a.start_price.map(|p| (format!("market.assets[{i}].start_price"), p))),
            );
            for (key, price) in prices {
                if !(price.is_finite() && (1e-6..=1e12).contains(&price)) {
                    return Err(value_err(key, format!("must be between 1e-6 and 1e12, got {price}")));
                }
            }
        }
        Ok(())
    }

    /// Whether the strategy trades fixed against floating yield (and so backtests on `[fixed_yield]`).
    pub fn is_fixed_yield(&self) -> bool {
        matches!(self.strategy, StrategySpec::FixedYield(_))
    }

    /// The floating market and the PT a fixed-yield config runs on.
    ///
    /// # Errors
    /// An unreadable CSV, a market missing from it, or bad synthetic parameters.
    pub fn load_fixed_yield(&self) -> Result<crate::fixed_yield::PtMarketData> {
        let c = self.fixed_yield.clone().unwrap_or_default();
        let value_err =
            |key: &str, message: String| Error::ConfigValue { path: "<config>".into(), key: key.into(), message };
        let asset =
            Token::simulated(&c.asset, c.decimals).map_err(|e| value_err("fixed_yield.asset", e.to_string()))?;
        let pt = Token::simulated(&c.pt, c.decimals).map_err(|e| value_err("fixed_yield.pt", e.to_string()))?;
        let (floating, implied, source) = match &c.data {
            Some(path) => {
                let mut series = sextant_data::load_rates(path)?;
                let mut take = |id: &str, key: &str| {
                    let i = series
                        .iter()
                        .position(|s| s.market == id)
                        .ok_or_else(|| value_err(key, format!("{id:?} is not a market of {}", path.display())))?;
                    Ok::<_, Error>(series.remove(i))
                };
                let floating = take(&c.floating, "fixed_yield.floating")?;
                let implied = take(&c.pt_market, "fixed_yield.pt_market")?;
                (floating, implied, format!("{}", path.display()))
            }
            None => {
                let mut spec = sextant_data::rates::SynthPt::usdc_defaults(c.seed, c.steps);
                spec.interval_ms = c.interval.parse::<Interval>()?.millis();
                spec.floating.id = c.floating.clone();
                spec.pt_id = c.pt_market.clone();
                spec.spread_mean = c.spread_mean;
                spec.spread_vol = c.spread_vol;
                let (floating, implied) = spec.generate()?;
                let source = format!(
                    "synthetic PT market(seed={}, steps={}, interval={}, spread_mean={}, spread_vol={})",
                    c.seed, c.steps, c.interval, c.spread_mean, c.spread_vol
                );
                (floating, implied, source)
            }
        };
        let t0 = floating.points.first().map_or(0, |p| p.timestamp_ms);
        let maturity_ms = t0 + (c.maturity_days * 86_400_000.0) as i64;
        Ok(crate::fixed_yield::PtMarketData {
            asset,
            pt,
            floating,
            implied,
            maturity_ms,
            ln_fee_rate_root: c.ln_fee_rate_root,
            pt_liquidity_usd: c.pt_liquidity_usd,
            rate_impact: c.rate_impact,
            source: format!("{source}, PT maturing {} days in", c.maturity_days),
        })
    }

    /// Whether the strategy is a leverage loop (and so backtests on `[market]` and `[leverage]`).
    pub fn is_leverage(&self) -> bool {
        matches!(self.strategy, StrategySpec::LeverageLoop(_))
    }

    /// The Aave market and collateral prices a leverage config runs on: `[market]`'s candles (with the synthetic
    /// crash, if any), and a two-reserve market with others' deposits and borrows at the configured utilisation.
    ///
    /// # Errors
    /// When the candles cannot be loaded or the market cannot be built (a parameter out of range).
    pub fn load_leverage(&self) -> Result<crate::leverage::LeverageMarket> {
        use sextant_protocols::aave_v3::{Holding, Market, RateStrategy, Reserve, ReserveConfig};
        let l = self.leverage.clone().unwrap_or_default();
        let value_err =
            |key: &str, message: String| Error::ConfigValue { path: "<config>".into(), key: key.into(), message };
        let mut markets = self.load_markets()?;
        let mut m = markets.remove(0);
        let collateral = Token::simulated(&self.market.symbol, l.collateral_decimals)
            .map_err(|e| value_err("market.symbol", e.to_string()))?;
        let debt = Token::simulated(&self.market.quote, l.debt_decimals)
            .map_err(|e| value_err("market.quote", e.to_string()))?;
        let mut source = m.source.clone();
        if let Some(at) = l.crash_at {
            let n = m.series.candles.len();
            let k = ((at * n as f64) as usize).min(n.saturating_sub(1));
            let f = 1.0 - l.crash_pct / 100.0;
            for (i, c) in m.series.candles.iter_mut().enumerate().skip(k) {
                if i == k {
                    // the fall happens inside the bar: it opens where it was and closes at the bottom
                    c.low = c.low.min(c.open * f);
                    c.close *= f;
                    c.high = c.high.max(c.close);
                } else {
                    c.open *= f;
                    c.high *= f;
                    c.low *= f;
                    c.close *= f;
                }
            }
            source = format!("{source}, crash of {}% at {:.0}% of the run", l.crash_pct, at * 100.0);
        }
        let t0 = m.series.candles.first().map_or(0, |c| (c.timestamp_ms / 1000).max(0) as u64);
        let p0 = m.series.candles.first().map_or(1.0, |c| c.open);
        let bps = |x: f64| (x * 10_000.0).round() as u64;
        let strategy =
            |c: sextant_data::rates::RateCurve| RateStrategy::from_fractions(c.optimal, c.base, c.slope1, c.slope2);
        let coll_cfg = ReserveConfig {
            decimals: l.collateral_decimals,
            ltv_bps: bps(l.ltv),
            liquidation_threshold_bps: bps(l.liquidation_threshold),
            liquidation_bonus_bps: 10_000 + bps(l.liquidation_bonus),
            liquidation_protocol_fee_bps: bps(l.liquidation_protocol_fee),
            reserve_factor_bps: bps(l.collateral_curve.reserve_factor),
            strategy: strategy(l.collateral_curve),
        };
        // the debt asset is collateral for others (a stablecoin's usual parameters)
        let debt_cfg = ReserveConfig {
            decimals: l.debt_decimals,
            ltv_bps: 7_700,
            liquidation_threshold_bps: 8_000,
            liquidation_bonus_bps: 10_450,
            liquidation_protocol_fee_bps: 1_000,
            reserve_factor_bps: bps(l.debt_curve.reserve_factor),
            strategy: strategy(l.debt_curve),
        };
        let build =
            |e: sextant_protocols::aave_v3::AaveError| value_err("leverage", format!("cannot set up the market: {e}"));
        let mut aave = Market {
            reserves: vec![Reserve::new(coll_cfg, t0).map_err(build)?, Reserve::new(debt_cfg, t0).map_err(build)?],
            prices: vec![crate::leverage::oracle_price(p0), crate::leverage::oracle_price(1.0)],
        };
        let u = |x: f64, t: &Token| {
            alloy_primitives::U256::from(sextant_types::Amount::from_units(x, t).map_or(0, |a| a.0))
        };
        let mut lender = vec![Holding::default(); 2];
        aave.supply(&mut lender, 0, u(l.collateral_liquidity_usd / p0, &collateral), t0).map_err(build)?;
        aave.supply(&mut lender, 1, u(l.debt_liquidity_usd, &debt), t0).map_err(build)?;
        // others borrow the debt asset against three times its value in collateral, and the collateral against
        // three times its value in the debt asset
        let mut debt_borrower = vec![Holding::default(); 2];
        let debt_borrowed = l.debt_liquidity_usd * l.debt_utilization;
        if debt_borrowed > 0.0 {
            aave.supply(&mut debt_borrower, 0, u(3.0 * debt_borrowed / p0, &collateral), t0).map_err(build)?;
            aave.borrow(&mut debt_borrower, 1, u(debt_borrowed, &debt), t0).map_err(build)?;
        }
        let mut coll_borrower = vec![Holding::default(); 2];
        let coll_borrowed = l.collateral_liquidity_usd * l.collateral_utilization;
        if coll_borrowed > 0.0 {
            aave.supply(&mut coll_borrower, 1, u(3.0 * coll_borrowed, &debt), t0).map_err(build)?;
            aave.borrow(&mut coll_borrower, 0, u(coll_borrowed / p0, &collateral), t0).map_err(build)?;
        }
        Ok(crate::leverage::LeverageMarket {
            collateral,
            debt,
            id: l.market.clone(),
            aave,
            others: vec![lender, debt_borrower, coll_borrower],
            candles: m.series,
            source,
        })
    }

    /// Whether the strategy allocates between lending markets (and so backtests on `[lending]`).
    pub fn is_lending(&self) -> bool {
        matches!(self.strategy, StrategySpec::StableRotator(_))
    }

    /// The lending markets a lending config runs on: the rate CSV of `lending.data`, or synthetic markets.
    ///
    /// # Errors
    /// When the CSV cannot be read, a listed market is not in it, or a synthetic market lacks a parameter.
    pub fn load_lending(&self) -> Result<crate::lending::RateMarket> {
        use crate::lending::{LendingMarketSpec, RateMarket};
        use sextant_data::rates::{SynthRateMarket, SynthRates};
        let l = self.lending.clone().unwrap_or_default();
        let value_err = |key: String, message: String| Error::ConfigValue { path: "<config>".into(), key, message };
        let asset =
            Token::simulated(&l.asset, l.decimals).map_err(|e| value_err("lending.asset".into(), e.to_string()))?;
        let interval: Interval = l.interval.parse()?;
        let (series, curves, protocols, source) = match &l.data {
            Some(path) => {
                let series = sextant_data::load_rates(path)?;
                for (i, mc) in l.markets.iter().enumerate() {
                    if !series.iter().any(|s| s.market == mc.id) {
                        return Err(value_err(
                            format!("lending.markets[{i}].id"),
                            format!("{:?} is not a market of {}", mc.id, path.display()),
                        ));
                    }
                }
                let curves =
                    series.iter().map(|s| l.markets.iter().find(|m| m.id == s.market).and_then(|m| m.curve)).collect();
                let source = format!("{} ({} lending markets)", path.display(), series.len());
                let protocols = vec![None; series.len()];
                (series, curves, protocols, source)
            }
            None => {
                let mut spec = SynthRates::usdc_defaults(l.seed, l.steps);
                spec.interval_ms = interval.millis();
                for (i, mc) in l.markets.iter().enumerate() {
                    let key = |k: &str| format!("lending.markets[{i}].{k}");
                    let existing = spec.markets.iter().position(|m| m.id == mc.id);
                    if mc.disabled {
                        match existing {
                            Some(j) => {
                                spec.markets.remove(j);
                            }
                            None => {
                                return Err(value_err(
                                    key("disabled"),
                                    format!("{:?} is not a built-in market", mc.id),
                                ));
                            }
                        }
                        continue;
                    }
                    let mut m = match existing {
                        Some(j) => spec.markets[j].clone(),
                        None => {
                            let need = |v: Option<f64>, k: &str| {
                                v.ok_or_else(|| {
                                    value_err(key(k), format!("is required for the new synthetic market {:?}", mc.id))
                                })
                            };
                            SynthRateMarket {
                                id: mc.id.clone(),
                                protocol: mc.protocol_of().unwrap_or(sextant_market::LendingProtocol::Erc4626),
                                curve: mc.curve.ok_or_else(|| {
                                    value_err(
                                        key("curve"),
                                        format!("is required for the new synthetic market {:?}", mc.id),
                                    )
                                })?,
                                tvl_usd: need(mc.tvl_usd, "tvl_usd")?,
                                utilization: need(mc.utilization, "utilization")?,
                                utilization_vol: 1.5,
                                spikes_per_year: 6.0,
                                reward_apy: 0.0,
                                exploit_at: None,
                                exploit_loss: 0.0,
                            }
                        }
                    };
                    if let Some(p) = mc.protocol_of().filter(|_| mc.protocol.is_some()) {
                        m.protocol = p;
                    }
                    m.curve = mc.curve.unwrap_or(m.curve);
                    m.tvl_usd = mc.tvl_usd.unwrap_or(m.tvl_usd);
                    m.utilization = mc.utilization.unwrap_or(m.utilization);
                    m.utilization_vol = mc.utilization_vol.unwrap_or(m.utilization_vol);
                    m.spikes_per_year = mc.spikes_per_year.unwrap_or(m.spikes_per_year);
                    m.reward_apy = mc.reward_apy.unwrap_or(m.reward_apy);
                    if mc.exploit_at.is_some() || mc.exploit_loss.is_some() {
                        m.exploit_at = mc.exploit_at.or(m.exploit_at);
                        m.exploit_loss = mc.exploit_loss.unwrap_or(if m.exploit_at.is_some() { 0.3 } else { 0.0 });
                    }
                    match existing {
                        Some(j) => spec.markets[j] = m,
                        None => spec.markets.push(m),
                    }
                }
                if spec.markets.is_empty() {
                    return Err(value_err("lending.markets".into(), "every market is disabled".into()));
                }
                let series = spec.generate()?;
                let curves = spec.markets.iter().map(|m| Some(m.curve)).collect();
                let protocols = spec.markets.iter().map(|m| Some(m.protocol)).collect();
                let source = format!(
                    "synthetic lending markets(seed={}, steps={}, interval={}, markets={})",
                    l.seed,
                    l.steps,
                    l.interval,
                    spec.markets.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(" ")
                );
                (series, curves, protocols, source)
            }
        };
        let curves: Vec<Option<sextant_data::rates::RateCurve>> = curves;
        let protocols: Vec<Option<sextant_market::LendingProtocol>> = protocols;
        let markets = series
            .into_iter()
            .zip(curves)
            .zip(protocols)
            .map(|((s, curve), synth_protocol)| {
                let mc = l.markets.iter().find(|m| m.id == s.market);
                let explicit = mc.filter(|m| m.protocol.is_some()).and_then(LendingMarketConfig::protocol_of);
                LendingMarketSpec {
                    protocol: explicit.or(synth_protocol).unwrap_or_else(|| protocol_from_id(&s.market)),
                    address: mc.and_then(|m| m.address.clone()).unwrap_or_else(|| s.market.clone()),
                    curve,
                    series: s,
                }
            })
            .collect();
        Ok(RateMarket::new(asset, markets, source))
    }

    /// Whether the strategy provides liquidity (and so backtests on `[pool]`).
    pub fn is_lp(&self) -> bool {
        matches!(self.strategy, StrategySpec::DynamicLp { .. })
    }

    /// The pool an LP config trades: the demeter minute file of `pool.data`, or a synthetic pool on `[market]`'s
    /// price path.
    ///
    /// # Errors
    /// When the minute file cannot be read or the pool cannot be built.
    pub fn load_pool(&self) -> Result<crate::lp::PoolMarket> {
        let p = self.pool.clone().unwrap_or_default();
        let (pool, steps, source) = match (&p.data, self.pool_synth()?) {
            (Some(path), _) => {
                let (pool, steps) = sextant_data::pool_minutes::load_pool_flow(path, p.fee, p.tick_spacing)?;
                (pool, steps, minutes_source(path, p.fee))
            }
            (None, Some(spec)) => {
                let (pool, steps) = spec.generate()?;
                let m = &self.market;
                let source = format!(
                    "synthetic pool(seed={}, bars={}, interval={}, start_price={}, profile={}, fee={} pips, tvl={}, daily_volume={})",
                    m.seed, m.bars, m.interval, m.start_price, m.profile, p.fee, p.tvl, p.daily_volume
                );
                (pool, steps, source)
            }
            (None, None) => unreachable!("pool_synth gives a spec when there is no pool file"),
        };
        self.pool_market(pool, steps, source)
    }

    /// [`BacktestConfig::load_pool`] with the flow handed to `run` in blocks as another thread reads the minute file,
    /// so the file is read while the backtest runs rather than before it, and is never held whole. `run` gets the
    /// market (its `steps` left empty) and the blocks, in order; a synthetic pool's flow comes as one block. Should
    /// reading fail part way, the blocks end there and the error is returned in place of `run`'s result.
    ///
    /// # Errors
    /// When the minute file cannot be read or the pool cannot be built.
    pub fn stream_pool<T>(
        &self,
        run: impl FnOnce(&crate::lp::PoolMarket, &mut dyn Iterator<Item = Vec<PoolStep>>) -> T,
    ) -> Result<T> {
        use sextant_data::pool_minutes::stream_pool_flow;
        type Block = sextant_data::Result<(Option<sextant_protocols::uniswap_v3::Pool>, Vec<PoolStep>)>;
        let p = self.pool.clone().unwrap_or_default();
        let Some(path) = p.data.clone() else {
            let mut market = self.load_pool()?;
            let steps = std::mem::take(&mut market.steps);
            return Ok(run(&market, &mut std::iter::once(steps)));
        };
        let source = minutes_source(&path, p.fee);
        // Two blocks in flight at most: the reader stays a block or two ahead of the backtest.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Block>(2);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut first = true;
                let read = stream_pool_flow(&path, p.fee, p.tick_spacing, |pool, steps| {
                    let pool = std::mem::take(&mut first).then(|| pool.clone());
                    tx.send(Ok((pool, steps)))
                        .map_err(|_| sextant_data::Error::Invalid("the backtest stopped reading".into()))
                });
                if let Err(e) = read {
                    // Nobody to tell when the backtest has gone.
                    let _ = tx.send(Err(e));
                }
            });
            let (pool, first) = match rx.recv() {
                Ok(Ok((Some(pool), steps))) => (pool, steps),
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok((None, _))) | Err(_) => {
                    return Err(Error::Data(sextant_data::Error::Invalid("the minute file has no rows".into())));
                }
            };
            let market = self.pool_market(pool, Vec::new(), source)?;
            let mut failed = None;
            let failed_at = &mut failed;
            // The receiver moves into the blocks: when `run` is done with them, however early, it is dropped and the
            // reader stops at its next send.
            let mut blocks = std::iter::once(first).chain(std::iter::from_fn(move || match rx.recv() {
                Ok(Ok((_, steps))) => Some(steps),
                Ok(Err(e)) => {
                    *failed_at = Some(e);
                    None
                }
                Err(_) => None,
            }));
            let out = run(&market, &mut blocks);
            drop(blocks);
            match failed {
                Some(e) => Err(e.into()),
                None => Ok(out),
            }
        })
    }

    /// The synthetic pool of an LP config without a `pool.data` file: `[market]`'s price path and the `[pool]`
    /// parameters. None when the pool comes from a file.
    ///
    /// # Errors
    /// Unparseable market settings.
    pub fn pool_synth(&self) -> Result<Option<sextant_data::synth_pool::PoolSynthSpec>> {
        use sextant_data::synth_pool::PoolSynthSpec;
        let p = self.pool.clone().unwrap_or_default();
        if p.data.is_some() {
            return Ok(None);
        }
        let m = &self.market;
        let market = SynthSpec {
            seed: m.seed,
            bars: m.bars,
            interval: m.interval.parse()?,
            start_price: m.start_price,
            profile: m.profile.parse()?,
            ..SynthSpec::default()
        };
        Ok(Some(PoolSynthSpec {
            market,
            decimals: (p.decimals0, p.decimals1),
            fee: p.fee,
            tick_spacing: p.tick_spacing,
            tvl: p.tvl,
            daily_volume: p.daily_volume,
            bands: PoolSynthSpec::default().bands,
        }))
    }

    /// The pool market of an LP config over a given pool and order flow.
    ///
    /// # Errors
    /// Token symbols the config cannot use.
    pub fn pool_market(
        &self,
        pool: sextant_protocols::uniswap_v3::Pool,
        steps: Vec<sextant_data::synth_pool::PoolStep>,
        source: String,
    ) -> Result<crate::lp::PoolMarket> {
        let p = self.pool.clone().unwrap_or_default();
        let m = &self.market;
        let bad_token = |e: sextant_types::Error| Error::ConfigValue {
            path: "<config>".into(),
            key: "market".into(),
            message: e.to_string(),
        };
        let (base_decimals, quote_decimals) =
            if p.asset_is_token0 { (p.decimals0, p.decimals1) } else { (p.decimals1, p.decimals0) };
        let base = Token::simulated(&m.symbol, base_decimals).map_err(bad_token)?;
        let quote = Token::simulated(&m.quote, quote_decimals).map_err(bad_token)?;
        let pool_ref = sextant_types::PoolRef {
            chain: sextant_types::ChainId::SIMULATED,
            address: p.address.clone(),
            fee_pips: p.fee,
        };
        Ok(crate::lp::PoolMarket { base, quote, pool_ref, pool, base_is_token0: p.asset_is_token0, steps, source })
    }

    /// Resolved execution costs (validated already by `parse`).
    pub fn costs(&self) -> Costs {
        // validate() has resolved these successfully; fall back to defaults on a hand-built invalid config.
        self.execution.resolve().unwrap_or_else(|_| ExecutionConfig::default().resolve().expect("defaults are valid"))
    }

    /// The single market of a config that trades one asset from a data file, without its bars (left empty for a
    /// streaming feed to supply), and the file. None for synthetic or multi-asset configs.
    pub fn stream_market(&self) -> Option<(Market, PathBuf)> {
        let m = &self.market;
        let path = m.data.clone().filter(|_| m.assets.is_empty())?;
        let base = Token::simulated(&m.symbol, 18).ok()?;
        let quote = Token::simulated(&m.quote, 6).ok()?;
        let source = path.display().to_string();
        Some((Market { base, quote, series: CandleSeries::default(), source }, path))
    }

    /// Loads or generates every market of the config.
    ///
    /// # Errors
    /// When a data file cannot be read or parsed.
    pub fn load_markets(&self) -> Result<Vec<Market>> {
        let m = &self.market;
        let bad_token = |e: sextant_types::Error| Error::ConfigValue {
            path: "<config>".into(),
            key: "market".into(),
            message: e.to_string(),
        };
        let quote = Token::simulated(&m.quote, 6).map_err(bad_token)?;
        let interval: Interval = m.interval.parse()?;
        let profile: Profile = m.profile.parse()?;
        let synth = |seed: u64, start_price: f64, profile: Profile| -> Result<(CandleSeries, String)> {
            let spec = SynthSpec { seed, bars: m.bars, interval, start_price, profile, ..SynthSpec::default() };
            let source = format!(
                "synthetic(seed={seed}, bars={}, interval={}, start_price={start_price}, profile={})",
                m.bars,
                m.interval,
                if profile == Profile::Stable { "stable" } else { "volatile" }
            );
            Ok((spec.generate()?, source))
        };
        let load = |data: &Option<PathBuf>, seed, price, profile| -> Result<(CandleSeries, String)> {
            match data {
                Some(path) => Ok((sextant_data::load_ohlcv(path)?, path.display().to_string())),
                None => synth(seed, price, profile),
            }
        };
        let token = |symbol: &str| Token::simulated(symbol, 18).map_err(bad_token);
        if m.assets.is_empty() {
            let (series, source) = load(&m.data, m.seed, m.start_price, profile)?;
            return Ok(vec![Market { base: token(&m.symbol)?, quote, series, source }]);
        }
        m.assets
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let profile = a.profile.as_deref().map_or(Ok(profile), str::parse)?;
                let (series, source) = load(
                    &a.data,
                    a.seed.unwrap_or(m.seed + i as u64),
                    a.start_price.unwrap_or(m.start_price),
                    profile,
                )?;
                Ok(Market { base: token(&a.symbol)?, quote: quote.clone(), series, source })
            })
            .collect()
    }
}

/// `interval must be one of ...` -> `must be one of ...`, so the config key can lead the message.
fn strip_prefix(e: sextant_data::Error) -> String {
    let s = e.to_string();
    s.split_once(' ').map_or(s.clone(), |(_, rest)| rest.to_string())
}

/// How an LP report names a minute file's flow.
fn minutes_source(path: &Path, fee: u32) -> String {
    format!("{} (demeter minutes, fee {fee} pips)", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = BacktestConfig::parse("[strategy]\nkind = \"rsi\"\n", "t.toml").unwrap();
        assert_eq!(c.portfolio.initial_cash, 10_000.0);
        let costs = c.costs();
        assert_eq!((costs.fee_bps, costs.gas_units, costs.fill), (30.0, 150_000, FillModel::NextOpen));
        assert!((costs.gas_usd() - 4.5).abs() < 1e-12);
    }

    #[test]
    fn costs_none_zeroes_everything_and_refuses_contradictions() {
        let c =
            BacktestConfig::parse("[strategy]\nkind = \"rsi\"\n[execution]\ncosts = \"none\"\nfill = \"close\"\n", "t")
                .unwrap();
        let k = c.costs();
        assert_eq!(
            (k.fee_bps, k.gas_usd(), k.slippage, k.mev_bps, k.latency_bars),
            (0.0, 0.0, SlippageKind::None, 0.0, 0)
        );
        let err =
            BacktestConfig::parse("[strategy]\nkind = \"rsi\"\n[execution]\ncosts = \"none\"\nfee_bps = 5\n", "t")
                .unwrap_err();
        assert_eq!(err.to_string(), "t: execution.fee_bps cannot be set together with costs = \"none\"");
    }

    #[test]
    fn errors_name_keys_and_lines() {
        let err = BacktestConfig::parse("[strategy]\nkind = \"rsi\"\nperiod = 0\n", "s.toml").unwrap_err();
        assert_eq!(err.to_string(), "s.toml: strategy.period must be between 2 and 100000, got 0");
        let err = BacktestConfig::parse("[strategy]\nkind = \"rsi\"\n[portfolio]\ninitial_cash = \"lots\"\n", "s.toml")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 4") && msg.contains("initial_cash"), "{msg}");
        let err = BacktestConfig::parse("[strategy]\nkind = \"rsi\"\n[execution]\nfees = 3\n", "s.toml").unwrap_err();
        assert!(err.to_string().contains("unknown field `fees`"), "{err}");
        let err =
            BacktestConfig::parse("[strategy]\nkind = \"rsi\"\n[market]\ninterval = \"2h\"\n", "s.toml").unwrap_err();
        assert!(err.to_string().starts_with("s.toml: market.interval must be one of"), "{err}");
    }

    #[test]
    fn symbols_must_differ_beyond_case_and_from_the_quote() {
        let two =
            "[strategy]\nkind = \"rsi\"\n[[market.assets]]\nsymbol = \"WETH\"\n[[market.assets]]\nsymbol = \"weth\"\n";
        let err = BacktestConfig::parse(two, "t").unwrap_err().to_string();
        assert!(err.starts_with("t: market.assets[1].symbol must be unique"), "{err}");
        let err = BacktestConfig::parse("[strategy]\nkind = \"rsi\"\n[market]\nsymbol = \"usdc\"\n", "t").unwrap_err();
        assert_eq!(err.to_string(), "t: market.symbol must differ from market.quote, got \"usdc\"");
    }

    #[test]
    fn several_assets_get_distinct_synthetic_markets() {
        let text = "[strategy]\nkind = \"rsi\"\n[market]\nbars = 100\n[[market.assets]]\nsymbol = \"WETH\"\n[[market.assets]]\nsymbol = \"WBTC\"\nstart_price = 60000\n";
        let markets = BacktestConfig::parse(text, "t").unwrap().load_markets().unwrap();
        assert_eq!(markets.len(), 2);
        assert_eq!(markets[1].base.symbol, "WBTC");
        assert!(markets[1].series.candles[0].open > 10_000.0);
        assert_ne!(
            markets[0].series.candles[50].close / markets[0].series.candles[0].open,
            markets[1].series.candles[50].close / markets[1].series.candles[0].open
        );
    }
}
