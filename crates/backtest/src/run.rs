//! Running a config end to end.

use crate::{BacktestConfig, BacktestResult, Engine, Market, Result};
use sextant_strategies::IndicatorStrategy;

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
