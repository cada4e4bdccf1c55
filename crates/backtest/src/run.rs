//! Running a config end to end.

use crate::lending::{LendingBacktestResult, LendingEngine};
use crate::lp::{LpBacktestResult, LpEngine, PoolMarket};
use crate::{BacktestConfig, BacktestResult, Engine, Market, Result};
use sextant_strategies::{
    DynamicLp, FixedYield, FixedYieldMarkets, IndicatorStrategy, LeverageLoop, LoopMarket, MoveCosts, StableRotator,
    StrategySpec,
};

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

/// As [`run_backtest`], trading only from `time_ms`: the bars before it warm the strategy up
/// ([`Engine::trading_from`]).
///
/// # Errors
/// When the strategy parameters are out of range.
pub fn run_backtest_from(config: &BacktestConfig, markets: &[Market], time_ms: i64) -> Result<BacktestResult> {
    let strategy = build_strategy(config)?;
    Ok(Engine::new(&strategy, markets, config.costs(), config.portfolio.initial_cash).trading_from(time_ms).run())
}

/// The LP strategy a config describes, on `market`'s pool.
///
/// # Errors
/// When the config's strategy is not an LP strategy or its parameters are out of range.
pub fn build_lp_strategy(config: &BacktestConfig, market: &PoolMarket) -> Result<DynamicLp> {
    DynamicLp::new(&config.strategy, market.pool_ref.clone(), market.pool.tick_spacing, market.base_is_token0)
        .map_err(|e| crate::Error::ConfigValue { path: "<config>".into(), key: e.key, message: e.message })
}

/// Backtests an LP config on its pool (generated here, or read from its minute file as the backtest runs);
/// `progress` is called every 65536 steps.
///
/// # Errors
/// When the pool cannot be loaded or the strategy parameters are out of range.
pub fn run_lp_backtest(config: &BacktestConfig, progress: &mut dyn FnMut(usize)) -> Result<LpBacktestResult> {
    config.stream_pool(|market, blocks| {
        let strategy = build_lp_strategy(config, market)?;
        Ok(LpEngine::new(&strategy, market, config.costs(), config.portfolio.initial_cash).run_blocks(blocks, progress))
    })?
}

/// The Stable Rotator a config describes, with its cost estimates taken from `[execution]` (the same numbers the
/// backtest charges).
///
/// # Errors
/// When the config's strategy is not `stable_rotator` or its parameters are out of range.
pub fn build_rotator(config: &BacktestConfig) -> Result<StableRotator> {
    let err = |key: String, message: String| crate::Error::ConfigValue { path: "<config>".into(), key, message };
    let StrategySpec::StableRotator(params) = &config.strategy else {
        return Err(err("strategy.kind".into(), format!("{} is not a lending strategy", config.strategy.kind())));
    };
    let costs = config.costs();
    let move_costs = MoveCosts {
        usd_per_gas: costs.gas_price_gwei * 1e-9 * costs.native_price_usd,
        vault_bps: costs.slippage_bps,
        swap_fee_bps: costs.fee_bps,
    };
    StableRotator::new(params.clone(), move_costs).map_err(|e| err(e.key, e.message))
}

/// Backtests a lending config on its markets (loaded or generated here); `progress` is called every 65536 steps.
///
/// # Errors
/// When the markets cannot be loaded or the strategy parameters are out of range.
pub fn run_lending_backtest(config: &BacktestConfig, progress: &mut dyn FnMut(usize)) -> Result<LendingBacktestResult> {
    let market = config.load_lending()?;
    let strategy = build_rotator(config)?;
    Ok(LendingEngine::new(&strategy, &market, config.costs(), config.portfolio.initial_cash).run(progress))
}

/// The leverage loop a config describes, on `market`.
///
/// # Errors
/// When the config's strategy is not `leverage_loop`, or its parameters are out of range for the market.
pub fn build_leverage(config: &BacktestConfig, market: &crate::leverage::LeverageMarket) -> Result<LeverageLoop> {
    let err = |key: String, message: String| crate::Error::ConfigValue { path: "<config>".into(), key, message };
    let StrategySpec::LeverageLoop(params) = &config.strategy else {
        return Err(err("strategy.kind".into(), format!("{} is not a leverage loop", config.strategy.kind())));
    };
    let l = config.leverage.clone().unwrap_or_default();
    let loop_market = LoopMarket {
        market: sextant_types::LendingMarket {
            chain: sextant_types::ChainId::SIMULATED,
            protocol: "aave-v3".into(),
            address: market.id.clone(),
        },
        id: market.id.clone(),
        collateral: market.collateral.clone(),
        debt: market.debt.clone(),
        ltv: l.ltv,
        liquidation_threshold: l.liquidation_threshold,
    };
    LeverageLoop::new(params.clone(), loop_market).map_err(|e| err(e.key, e.message))
}

/// Backtests a leverage config.
///
/// # Errors
/// When the market cannot be built or the strategy parameters are out of range.
pub fn run_leverage_backtest(config: &BacktestConfig) -> Result<crate::leverage::LeverageBacktestResult> {
    let market = config.load_leverage()?;
    let strategy = build_leverage(config, &market)?;
    Ok(crate::leverage::LeverageEngine::new(&strategy, &market, config.costs(), config.portfolio.initial_cash).run())
}

/// The fixed-yield strategy a config describes, on `data`.
///
/// # Errors
/// When the config's strategy is not `fixed_yield` or its parameters are out of range.
pub fn build_fixed_yield(config: &BacktestConfig, data: &crate::fixed_yield::PtMarketData) -> Result<FixedYield> {
    let err = |key: String, message: String| crate::Error::ConfigValue { path: "<config>".into(), key, message };
    let StrategySpec::FixedYield(params) = &config.strategy else {
        return Err(err("strategy.kind".into(), format!("{} is not fixed_yield", config.strategy.kind())));
    };
    let markets = FixedYieldMarkets {
        floating: data.floating.market.clone(),
        pt: data.implied.market.clone(),
        floating_market: sextant_types::LendingMarket {
            chain: sextant_types::ChainId::SIMULATED,
            protocol: "aave-v3".into(),
            address: data.floating.market.clone(),
        },
        pt_token: data.pt.clone(),
    };
    FixedYield::new(params.clone(), markets).map_err(|e| err(e.key, e.message))
}

/// Backtests a fixed-yield config.
///
/// # Errors
/// When the markets cannot be loaded or the strategy parameters are out of range.
pub fn run_fixed_yield_backtest(config: &BacktestConfig) -> Result<crate::fixed_yield::FixedYieldResult> {
    let data = config.load_fixed_yield()?;
    let strategy = build_fixed_yield(config, &data)?;
    Ok(crate::fixed_yield::FixedYieldEngine::new(&strategy, &data, config.costs(), config.portfolio.initial_cash).run())
}
