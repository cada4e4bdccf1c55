//! The backtest: the engine loop, the simulated executor with on-chain costs (DEX fee, gas, price impact, MEV,
//! block latency), the portfolio, metrics, reports and parameter sweeps.

pub mod config;
mod engine;
mod error;
pub mod fixed_yield;
mod flows;
pub mod lending;
pub mod leverage;
pub mod lp;
pub mod metrics;
pub mod report;
mod run;
pub mod sim;
pub mod stress;
pub mod sweep;
pub mod tpe;
pub mod walk_forward;

pub use config::{BacktestConfig, Costs, Market};
pub use engine::{BacktestResult, CostTotals, Engine, EquityPoint, FillAt, FlowStats, Pending, Snapshot, Trade};
pub use error::{Error, Result};
pub use lending::{LendingBacktestResult, LendingEngine, LendingSnapshot, RateMarket};
pub use leverage::{LeverageBacktestResult, LeverageEngine, LeverageMarket, LeverageSnapshot};
pub use lp::{LpBacktestResult, LpEngine, LpMetrics, LpRecord, LpSnapshot, PoolMarket};
pub use metrics::Metrics;
pub use run::{
    build_fixed_yield, build_leverage, build_lp_strategy, build_rotator, build_strategy, run_backtest,
    run_backtest_from, run_fixed_yield_backtest, run_lending_backtest, run_leverage_backtest, run_lp_backtest,
};
