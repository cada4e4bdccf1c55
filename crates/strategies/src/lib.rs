//! Sextant's built-in strategy families, configurable from TOML: for now the indicator strategies (RSI mean reversion,
//! SMA/EMA crossover, Bollinger-band mean reversion) with shared risk settings.

mod error;
mod indicator;
mod spec;

pub use error::{Error, Result};
pub use indicator::{AssetState, IndicatorState, IndicatorStrategy, SignalState};
pub use spec::{BandExit, MaKind, RiskSettings, StrategySpec};
