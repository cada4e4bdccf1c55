//! Running a config end to end.

use crate::lp::{LpBacktestResult, LpEngine, PoolMarket};
use crate::{BacktestConfig, BacktestResult, Engine, Market, Result};
use sextant_strategies::{DynamicLp, IndicatorStrategy};

/// The strategy a config describes.
///
/// # Errors
/// When its parameters are out of range.
pub fn build_strategy(config: &BacktestConfig) -> Result<IndicatorStrategy> {
    IndicatorStrategy::new(config.strategy.clone(), config.risk.clone()).map_err(|e| crate::Error::ConfigValue {
        path: "<config>".into(),
        key: e.key,
        message: e.message,
    })
}

/// Backtests `config` on already loaded `markets`.
///
/// # Errors
/// When the strategy parameters are out of range.
pub fn run_backtest(config: &BacktestConfig, markets: &[Market]) -> Result<BacktestResult> {
    let strategy = build_strategy(config)?;
    Ok(Engine::new(&strategy, markets, config.costs(), config.portfolio.initial_cash).run())
}

/// The LP strategy a config describes, on `market`'s pool.
///
/// # Errors
/// When the config's strategy is not an LP strategy or its parameters are out of range.
pub fn build_lp_strategy(config: &BacktestConfig, market: &PoolMarket) -> Result<DynamicLp> {
    DynamicLp::new(&config.strategy, market.pool_ref.clone(), market.pool.tick_spacing, market.base_is_token0)
        .map_err(|e| crate::Error::ConfigValue { path: "<config>".into(), key: e.key, message: e.message })
}

/// Backtests an LP config on its pool (loaded or generated here); `progress` is called every 65536 steps.
///
/// # Errors
/// When the pool cannot be loaded or the strategy parameters are out of range.
pub fn run_lp_backtest(config: &BacktestConfig, progress: &mut dyn FnMut(usize)) -> Result<LpBacktestResult> {
    let market = config.load_pool()?;
    let strategy = build_lp_strategy(config, &market)?;
    Ok(LpEngine::new(&strategy, &market, config.costs(), config.portfolio.initial_cash).run(progress))
}
