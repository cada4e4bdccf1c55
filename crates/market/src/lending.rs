use serde::{Deserialize, Serialize};

/// Which contract family a lending market is, so its position accrues with the right arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LendingProtocol {
    /// An Aave v3 reserve (aTokens on a liquidity index).
    AaveV3,
    /// A Compound v3 Comet's base asset (principal on a supply index).
    CompoundV3,
    /// Any ERC-4626 vault: Morpho vaults, Euler v2, Fluid fTokens, Yearn v3, static aTokens.
    Erc4626,
    /// A Pendle principal-token market (its `supply_apy` is the PT's implied APY).
    PendlePt,
}

impl LendingProtocol {
    /// The name used in configs, CSV files and intents (`aave-v3`, `compound-v3`, `erc4626`).
    pub fn name(self) -> &'static str {
        match self {
            LendingProtocol::AaveV3 => "aave-v3",
            LendingProtocol::CompoundV3 => "compound-v3",
            LendingProtocol::Erc4626 => "erc4626",
            LendingProtocol::PendlePt => "pendle-pt",
        }
    }

    /// Parses a protocol name: the canonical ones, plus the names of the ERC-4626 families.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "aave-v3" | "aave" => LendingProtocol::AaveV3,
            "compound-v3" | "compound" | "comet" => LendingProtocol::CompoundV3,
            "erc4626" | "erc-4626" | "morpho" | "euler-v2" | "euler" | "fluid" | "yearn-v3" | "yearn" => {
                LendingProtocol::Erc4626
            }
            "pendle-pt" | "pendle" => LendingProtocol::PendlePt,
            _ => return None,
        })
    }
}

/// One observation of a lending market: the row of a lending-rate series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    /// Time, unix milliseconds UTC.
    pub timestamp_ms: i64,
    /// Supply APY, a fraction (0.045 = 4.5 %).
    pub supply_apy: f64,
    /// Variable borrow APY, a fraction.
    pub borrow_apy: f64,
    /// Total supplied, USD.
    pub tvl_usd: f64,
    /// Borrowed over supplied, 0..=1.
    pub utilization: f64,
    /// Incentives paid on top of the supply APY, a fraction (0 when absent).
    pub reward_apy: f64,
    /// The market accepts no deposits (frozen, paused or exploited).
    pub frozen: bool,
    /// Fraction of supplied funds lost at this time (an exploit or bad debt socialised to suppliers; 0 normally).
    #[serde(default)]
    pub bad_debt: f64,
}

/// A lending market's rate history, in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateSeries {
    /// The market's id (e.g. `aave-v3-usdc`).
    pub market: String,
    /// Observations, strictly increasing in time.
    pub points: Vec<RatePoint>,
}

impl RateSeries {
    /// The latest observation at or before `t` (None before the first).
    pub fn at(&self, t: i64) -> Option<&RatePoint> {
        let i = self.points.partition_point(|p| p.timestamp_ms <= t);
        i.checked_sub(1).map(|i| &self.points[i])
    }
}

/// A lending market as a strategy sees it at a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LendingView {
    /// The market's id.
    pub market: String,
    /// Its contract family.
    pub protocol: LendingProtocol,
    /// The entry-point contract (pool, comet or vault) that intents name; the id itself in a backtest without one.
    pub address: String,
    /// The latest observation (None before the market's first one).
    pub rate: Option<RatePoint>,
    /// When the market's instrument matures (Pendle PTs), unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maturity_ms: Option<i64>,
}

impl LendingView {
    /// Supply plus reward APY now (0 without an observation).
    pub fn total_apy(&self) -> f64 {
        self.rate.map_or(0.0, |r| r.supply_apy + r.reward_apy)
    }

    /// What can be withdrawn from the market now, USD: the supplied liquidity not lent out.
    pub fn available_usd(&self) -> f64 {
        self.rate.map_or(0.0, |r| r.tvl_usd * (1.0 - r.utilization).max(0.0))
    }
}
