//! Sextant's built-in strategy families, configurable from TOML: the indicator strategies (RSI mean reversion,
//! SMA/EMA crossover, Bollinger-band mean reversion) with shared risk settings, and Dynamic LP (concentrated
//! liquidity re-ranged by volatility and a cost rule; profiles blue_chip and degen), and the Stable Rotator (a
//! stablecoin kept in the best lending markets and vaults within risk limits).

mod builtin;
mod dynamic_lp;
mod error;
pub mod fixed_yield;
mod indicator;
pub mod leverage;
pub mod rotator;
mod spec;

pub use builtin::{BuiltIn, BuiltInState};
pub use dynamic_lp::{DynamicLp, DynamicLpState, RangeState};
pub use error::{Error, Result};
pub use fixed_yield::{FixedYield, FixedYieldMarkets, FixedYieldParams, FixedYieldState};
pub use indicator::{
    AssetState, IndicatorCache, IndicatorState, IndicatorStrategy, MovingAverage, SharedSeries, SignalState,
};
pub use leverage::{LeverageLoop, LeverageParams, LeverageState, LoopMarket};
pub use rotator::{MoveCosts, RotatorParams, RotatorState, StableRotator};
pub use spec::{BandExit, LpParams, LpProfile, MaKind, RiskSettings, StrategySpec};
