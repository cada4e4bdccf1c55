use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Moving-average flavour of `ma_cross`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaKind {
    /// Simple moving average.
    #[default]
    Sma,
    /// Exponential moving average.
    Ema,
}

/// Which band closes a `bollinger` position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BandExit {
    /// Sell when the close rises above the middle band (the mean).
    #[default]
    Middle,
    /// Sell when the close rises above the upper band.
    Upper,
}

/// The `[strategy]` table: which built-in strategy and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StrategySpec {
    /// RSI mean reversion: buy when RSI < oversold, sell when RSI > overbought.
    Rsi {
        /// RSI period (Wilder), default 14.
        #[serde(default = "default_rsi_period")]
        period: usize,
        /// Buy below this RSI, default 30.
        #[serde(default = "default_oversold")]
        oversold: f64,
        /// Sell above this RSI, default 70.
        #[serde(default = "default_overbought")]
        overbought: f64,
    },
    /// Moving-average crossover: buy when the fast average crosses above the slow one, sell on the opposite cross.
    MaCross {
        /// Fast period, default 10.
        #[serde(default = "default_fast")]
        fast: usize,
        /// Slow period, default 30.
        #[serde(default = "default_slow")]
        slow: usize,
        /// `sma` (default) or `ema`.
        #[serde(default)]
        ma: MaKind,
    },
    /// Bollinger-band mean reversion: buy on a close below the lower band, sell on a close above the exit band.
    Bollinger {
        /// Band period, default 20.
        #[serde(default = "default_bb_period")]
        period: usize,
        /// Band width in standard deviations, default 2.0.
        #[serde(default = "default_nbdev")]
        nbdev: f64,
        /// `middle` (default) or `upper`.
        #[serde(default)]
        exit: BandExit,
    },
    /// Concentrated liquidity in one Uniswap v3 pool, re-ranged when the price leaves the range, drifts from its
    /// centre or the range grows old, and only when the fees a new range is expected to earn over the horizon
    /// exceed the gas and swap cost of moving. Every field but `profile` defaults from the profile.
    DynamicLp {
        /// `blue_chip` (deep pools: wide ranges, few rebalances) or `degen` (volatile pools: narrow ranges,
        /// frequent rebalances).
        #[serde(default)]
        profile: LpProfile,
        /// A fixed half-width of the range in ticks; without it the width follows recent volatility.
        width_ticks: Option<u32>,
        /// Bars of log returns the volatility is measured over.
        vol_window: Option<usize>,
        /// Half-width in standard deviations of the price over the horizon (σ per bar × √horizon_bars).
        width_sigmas: Option<f64>,
        /// Smallest half-width in ticks when the width follows volatility.
        min_width_ticks: Option<u32>,
        /// Largest half-width in ticks when the width follows volatility.
        max_width_ticks: Option<u32>,
        /// Bars ahead the cost rule weighs expected fees over (and the volatility is scaled to).
        horizon_bars: Option<usize>,
        /// Re-range when the price is this far from the range's centre, as a fraction of the half-width
        /// (1 = only when it leaves the range).
        recenter_at: Option<f64>,
        /// Re-range a range this many bars old, whatever the price (None: never by age).
        max_age_bars: Option<usize>,
        /// Gas a re-range costs (close, swap, open), in quote units, as the cost rule counts it.
        rebalance_gas: Option<f64>,
    },
    /// A stablecoin kept in the best lending markets and vaults within risk limits, moved only when the extra yield
    /// over a horizon beats gas, slippage and a margin.
    StableRotator(crate::rotator::RotatorParams),
    /// Supply collateral, borrow, swap and re-supply up to a target health factor; deleverage below a threshold.
    LeverageLoop(crate::leverage::LeverageParams),
    /// Buy a Pendle PT when its implied APY beats the floating rate; hold to maturity or exit when the spread inverts.
    FixedYield(crate::fixed_yield::FixedYieldParams),
}

/// The two families of the Dynamic LP strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LpProfile {
    /// Deep pools: wide ranges, few rebalances.
    #[default]
    BlueChip,
    /// Volatile pools: narrow ranges, frequent rebalances.
    Degen,
}

/// `dynamic_lp` parameters with the profile's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LpParams {
    /// The profile the defaults came from.
    pub profile: LpProfile,
    /// Fixed half-width in ticks, if any.
    pub width_ticks: Option<u32>,
    /// Volatility window, bars.
    pub vol_window: usize,
    /// Half-width in σ over the horizon.
    pub width_sigmas: f64,
    /// Smallest half-width, ticks.
    pub min_width_ticks: u32,
    /// Largest half-width, ticks.
    pub max_width_ticks: u32,
    /// Horizon, bars.
    pub horizon_bars: usize,
    /// Distance from the centre that triggers a re-range, fraction of the half-width.
    pub recenter_at: f64,
    /// Age that triggers a re-range, bars.
    pub max_age_bars: Option<usize>,
    /// Gas of a re-range, quote units.
    pub rebalance_gas: f64,
}

impl LpProfile {
    /// The profile's defaults.
    pub fn defaults(self) -> LpParams {
        match self {
            LpProfile::BlueChip => LpParams {
                profile: self,
                width_ticks: None,
                vol_window: 72,
                width_sigmas: 2.0,
                min_width_ticks: 200,
                max_width_ticks: 6000,
                horizon_bars: 168,
                recenter_at: 1.0,
                max_age_bars: None,
                rebalance_gas: 20.0,
            },
            LpProfile::Degen => LpParams {
                profile: self,
                width_ticks: None,
                vol_window: 24,
                width_sigmas: 1.0,
                min_width_ticks: 60,
                max_width_ticks: 2000,
                horizon_bars: 24,
                recenter_at: 0.6,
                max_age_bars: Some(72),
                rebalance_gas: 2.0,
            },
        }
    }
}

fn default_rsi_period() -> usize {
    14
}
fn default_oversold() -> f64 {
    30.0
}
fn default_overbought() -> f64 {
    70.0
}
fn default_fast() -> usize {
    10
}
fn default_slow() -> usize {
    30
}
fn default_bb_period() -> usize {
    20
}
fn default_nbdev() -> f64 {
    2.0
}

impl StrategySpec {
    /// The `kind` string.
    pub fn kind(&self) -> &'static str {
        match self {
            StrategySpec::Rsi { .. } => "rsi",
            StrategySpec::MaCross { .. } => "ma_cross",
            StrategySpec::Bollinger { .. } => "bollinger",
            StrategySpec::DynamicLp { .. } => "dynamic_lp",
            StrategySpec::StableRotator(_) => "stable_rotator",
            StrategySpec::LeverageLoop(_) => "leverage_loop",
            StrategySpec::FixedYield(_) => "fixed_yield",
        }
    }

    /// The resolved parameters of a `dynamic_lp` spec (None for the other kinds).
    pub fn lp_params(&self) -> Option<LpParams> {
        let StrategySpec::DynamicLp {
            profile,
            width_ticks,
            vol_window,
            width_sigmas,
            min_width_ticks,
            max_width_ticks,
            horizon_bars,
            recenter_at,
            max_age_bars,
            rebalance_gas,
        } = *self
        else {
            return None;
        };
        let d = profile.defaults();
        Some(LpParams {
            profile,
            width_ticks,
            vol_window: vol_window.unwrap_or(d.vol_window),
            width_sigmas: width_sigmas.unwrap_or(d.width_sigmas),
            min_width_ticks: min_width_ticks.unwrap_or(d.min_width_ticks),
            max_width_ticks: max_width_ticks.unwrap_or(d.max_width_ticks),
            horizon_bars: horizon_bars.unwrap_or(d.horizon_bars),
            recenter_at: recenter_at.unwrap_or(d.recenter_at),
            max_age_bars: max_age_bars.or(d.max_age_bars),
            rebalance_gas: rebalance_gas.unwrap_or(d.rebalance_gas),
        })
    }

    /// Checks parameter ranges.
    ///
    /// # Errors
    /// Names the key and what was expected.
    pub fn validate(&self) -> Result<()> {
        let period = |key: &str, v: usize| {
            if (2..=100_000).contains(&v) {
                Ok(())
            } else {
                Err(Error::new(format!("strategy.{key}"), format!("must be between 2 and 100000, got {v}")))
            }
        };
        match *self {
            StrategySpec::Rsi { period: p, oversold, overbought } => {
                period("period", p)?;
                for (key, v) in [("oversold", oversold), ("overbought", overbought)] {
                    if !(v.is_finite() && (0.0..=100.0).contains(&v)) {
                        return Err(Error::new(
                            format!("strategy.{key}"),
                            format!("must be between 0 and 100, got {v}"),
                        ));
                    }
                }
                if oversold >= overbought {
                    return Err(Error::new(
                        "strategy.oversold",
                        format!("must be below strategy.overbought ({overbought}), got {oversold}"),
                    ));
                }
            }
            StrategySpec::MaCross { fast, slow, .. } => {
                period("fast", fast)?;
                period("slow", slow)?;
                if fast >= slow {
                    return Err(Error::new(
                        "strategy.fast",
                        format!("must be below strategy.slow ({slow}), got {fast}"),
                    ));
                }
            }
            StrategySpec::Bollinger { period: p, nbdev, .. } => {
                period("period", p)?;
                if !(nbdev.is_finite() && nbdev > 0.0) {
                    return Err(Error::new("strategy.nbdev", format!("must be a positive number, got {nbdev}")));
                }
            }
            StrategySpec::DynamicLp { .. } => {
                let p = self.lp_params().expect("a dynamic_lp spec");
                period("vol_window", p.vol_window)?;
                if !(1..=1_000_000).contains(&p.horizon_bars) {
                    return Err(Error::new(
                        "strategy.horizon_bars",
                        format!("must be between 1 and 1000000, got {}", p.horizon_bars),
                    ));
                }
                let ticks = |key: &str, v: u32| {
                    if (1..=400_000).contains(&v) {
                        Ok(())
                    } else {
                        Err(Error::new(format!("strategy.{key}"), format!("must be between 1 and 400000, got {v}")))
                    }
                };
                if let Some(w) = p.width_ticks {
                    ticks("width_ticks", w)?;
                }
                ticks("min_width_ticks", p.min_width_ticks)?;
                ticks("max_width_ticks", p.max_width_ticks)?;
                if p.min_width_ticks > p.max_width_ticks {
                    return Err(Error::new(
                        "strategy.min_width_ticks",
                        format!(
                            "must not exceed strategy.max_width_ticks ({}), got {}",
                            p.max_width_ticks, p.min_width_ticks
                        ),
                    ));
                }
                if !(p.width_sigmas.is_finite() && p.width_sigmas > 0.0) {
                    return Err(Error::new(
                        "strategy.width_sigmas",
                        format!("must be a positive number, got {}", p.width_sigmas),
                    ));
                }
                if !(p.recenter_at.is_finite() && p.recenter_at > 0.0 && p.recenter_at <= 1.0) {
                    return Err(Error::new(
                        "strategy.recenter_at",
                        format!("must be in (0, 1], got {}", p.recenter_at),
                    ));
                }
                if p.max_age_bars == Some(0) {
                    return Err(Error::new("strategy.max_age_bars", "must be at least 1 (leave it out for never)"));
                }
                if !(p.rebalance_gas.is_finite() && p.rebalance_gas >= 0.0) {
                    return Err(Error::new(
                        "strategy.rebalance_gas",
                        format!("must be a non-negative number, got {}", p.rebalance_gas),
                    ));
                }
            }
            StrategySpec::StableRotator(ref p) => p.validate()?,
            StrategySpec::LeverageLoop(ref p) => p.validate()?,
            StrategySpec::FixedYield(ref p) => p.validate()?,
        }
        Ok(())
    }
}

/// The `[risk]` table, shared by the indicator strategies. Everything is off by default; `position_size` is 1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskSettings {
    /// After the strategy sends a trade for an asset (signal or stop), ignore that asset's signals for this many of
    /// its bars; stops still fire.
    pub cooldown_bars: usize,
    /// Skip a swap whose expected slippage is above this (basis points).
    pub max_slippage_bps: Option<u32>,
    /// Skip signals on bars whose volume is below this (protective stops still fire).
    pub min_volume: Option<f64>,
    /// Fraction of equity to put into each entry (0 < x <= 1).
    pub position_size: f64,
    /// Sell when the close falls this many percent below the entry price (5.0 = 5 %).
    pub stop_loss_pct: Option<f64>,
    /// Sell when the close rises this many percent above the entry price.
    pub take_profit_pct: Option<f64>,
}

impl Default for RiskSettings {
    fn default() -> Self {
        RiskSettings {
            cooldown_bars: 0,
            max_slippage_bps: None,
            min_volume: None,
            position_size: 1.0,
            stop_loss_pct: None,
            take_profit_pct: None,
        }
    }
}

impl RiskSettings {
    /// Checks ranges.
    ///
    /// # Errors
    /// Names the key and what was expected.
    pub fn validate(&self) -> Result<()> {
        if !(self.position_size > 0.0 && self.position_size <= 1.0) {
            return Err(Error::new("risk.position_size", format!("must be in (0, 1], got {}", self.position_size)));
        }
        if let Some(v) = self.min_volume
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(Error::new("risk.min_volume", format!("must be >= 0, got {v}")));
        }
        for (key, v) in [("stop_loss_pct", self.stop_loss_pct), ("take_profit_pct", self.take_profit_pct)] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(Error::new(format!("risk.{key}"), format!("must be a positive percentage, got {v}")));
            }
        }
        if let Some(v) = self.stop_loss_pct
            && v >= 100.0
        {
            return Err(Error::new("risk.stop_loss_pct", format!("must be below 100, got {v}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults_and_rejects_unknown_keys() {
        let spec: StrategySpec = toml::from_str("kind = \"ma_cross\"\nfast = 5\nma = \"ema\"").unwrap();
        assert_eq!(spec, StrategySpec::MaCross { fast: 5, slow: 30, ma: MaKind::Ema });
        let err = toml::from_str::<StrategySpec>("kind = \"rsi\"\nperiodd = 5").unwrap_err();
        assert!(err.to_string().contains("unknown field `periodd`"), "{err}");
        let err = toml::from_str::<StrategySpec>("kind = \"macd\"").unwrap_err();
        assert!(err.to_string().contains("unknown variant `macd`"), "{err}");
        let err = toml::from_str::<RiskSettings>("cooldown = 3").unwrap_err();
        assert!(err.to_string().contains("unknown field `cooldown`"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let bad = StrategySpec::Rsi { period: 1, oversold: 30.0, overbought: 70.0 };
        assert_eq!(bad.validate().unwrap_err().to_string(), "strategy.period must be between 2 and 100000, got 1");
        let bad = StrategySpec::MaCross { fast: 30, slow: 10, ma: MaKind::Sma };
        assert_eq!(bad.validate().unwrap_err().to_string(), "strategy.fast must be below strategy.slow (10), got 30");
        let bad = RiskSettings { position_size: 1.5, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().key, "risk.position_size");
        assert!(RiskSettings::default().validate().is_ok());
    }
}
