//! The deployment config: the backtest's `[strategy]` and `[risk]` tables plus `[live]`. The backtest-only tables
//! (`[market]`, `[execution]`, `[portfolio]`, `[pool]`) are accepted and ignored, so one file serves `sextant backtest` and
//! `sextant run`.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sextant_strategies::{RiskSettings, StrategySpec};
use std::path::Path;

/// `[live]`: where and how the strategy trades.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// Chain name in the registry (`devnet`, `ethereum`, `base`, `arbitrum`).
    pub chain: String,
    /// The traded asset (a token symbol of the chain).
    pub base: String,
    /// The asset cash is held in.
    pub quote: String,
    /// Minimum output below the quote, in basis points: what a price move or a sandwich between the quote and
    /// the block may cost at most (the strategy's `max_slippage_bps`, when tighter, wins).
    pub slippage_bps: u32,
    /// Approve unlimited amounts (off: every approval is exactly what the next call spends).
    pub unlimited_approvals: bool,
    /// Swap deadlines, seconds after planning.
    pub deadline_secs: u64,
    /// Blocks a receipt needs (its own included) before a step counts as done.
    pub confirmations: u64,
    /// How often pending transactions are polled, in milliseconds.
    pub poll_ms: u64,
    /// Replace a transaction with a fee bump after this many seconds unmined.
    pub stuck_after_secs: u64,
    /// Replacements at most per step.
    pub max_bumps: u32,
    /// Stop tracking (and retry at the next attempt) after this many seconds.
    pub track_timeout_secs: u64,
    /// Gas limit margin over the estimate, in percent.
    pub gas_margin_pct: u64,
    /// Fee cap per gas, in gwei.
    pub max_fee_gwei: Option<f64>,
    /// Priority fee per gas, in gwei (default: the node's suggestion).
    pub priority_fee_gwei: Option<f64>,
    /// Attempts per intent flow before it waits for the next tick.
    pub max_attempts: u32,
    /// First retry delay (doubles), in milliseconds.
    pub retry_base_ms: u64,
    /// Timeout of one RPC request, in seconds.
    pub rpc_timeout_secs: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            chain: "devnet".into(),
            base: "WETH".into(),
            quote: "USDC".into(),
            slippage_bps: 100,
            unlimited_approvals: false,
            deadline_secs: 1800,
            confirmations: 1,
            poll_ms: 500,
            stuck_after_secs: 60,
            max_bumps: 5,
            track_timeout_secs: 600,
            gas_margin_pct: 25,
            max_fee_gwei: None,
            priority_fee_gwei: None,
            max_attempts: 3,
            retry_base_ms: 1_000,
            rpc_timeout_secs: 10,
        }
    }
}

/// A deployment config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// `[strategy]`.
    pub strategy: StrategySpec,
    /// `[risk]`.
    #[serde(default)]
    pub risk: RiskSettings,
    /// `[live]`.
    #[serde(default)]
    pub live: LiveConfig,
    /// Backtest-only; ignored here.
    #[serde(default, skip_serializing)]
    pub market: Option<toml::Table>,
    /// Backtest-only; ignored here.
    #[serde(default, skip_serializing)]
    pub execution: Option<toml::Table>,
    /// Backtest-only; ignored here.
    #[serde(default, skip_serializing)]
    pub portfolio: Option<toml::Table>,
    /// Backtest-only (an LP strategy's simulated pool); ignored here: live, the pool is the registry's for
    /// `live.base` and `live.quote`.
    #[serde(default, skip_serializing)]
    pub pool: Option<toml::Table>,
    /// Backtest-only (lending, leverage and fixed-yield markets); ignored here.
    #[serde(default, skip_serializing)]
    pub lending: Option<toml::Table>,
    /// Backtest-only; ignored here.
    #[serde(default, skip_serializing)]
    pub leverage: Option<toml::Table>,
    /// Backtest-only; ignored here.
    #[serde(default, skip_serializing)]
    pub fixed_yield: Option<toml::Table>,
    /// `[permissions]`: the deployment key's policy, and the module calls go through.
    #[serde(default)]
    pub permissions: crate::permissions::PermissionsConfig,
    /// `[vault]`: a strategy vault this deployment settles (its curator and Safe are the deployment's Safe).
    #[serde(default)]
    pub vault: Option<VaultConfig>,
    /// The config's text (the policy is derived from it).
    #[serde(skip)]
    pub text: String,
}

/// `[vault]`: the Sextant vault whose epochs the deployment settles, at the NAV of the Safe's positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// The vault's address.
    pub address: String,
    /// Settle when this many seconds have passed since the last settlement (checked at every tick).
    #[serde(default = "default_settle_every")]
    pub settle_every_secs: u64,
    /// An Aave v3 pool where the Safe supplies or borrows the deployment's base or quote token: its positions there
    /// (supplies with interest, less debts) count in the NAV.
    #[serde(default)]
    pub aave_pool: Option<String>,
}

fn default_settle_every() -> u64 {
    86_400
}

impl DeploymentConfig {
    /// Parses a config's text; `origin` names it in errors.
    ///
    /// # Errors
    /// TOML errors, unknown keys, out-of-range values.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut cfg: DeploymentConfig =
            toml::from_str(text).map_err(|e| Error::Config(format!("{origin}: {}", e.to_string().trim_end())))?;
        cfg.text = text.to_string();
        let l = &cfg.live;
        let bad = |k: &str, why: &str| Err(Error::Config(format!("{origin}: live.{k} {why}")));
        if l.slippage_bps == 0 || l.slippage_bps > 5_000 {
            return bad("slippage_bps", "must be between 1 and 5000");
        }
        if l.confirmations == 0 {
            return bad("confirmations", "must be at least 1");
        }
        if l.max_attempts == 0 {
            return bad("max_attempts", "must be at least 1");
        }
        if l.base == l.quote {
            return bad("base", "must differ from live.quote");
        }
        Ok(cfg)
    }

    /// Reads and parses a config file.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        DeploymentConfig::parse(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backtest_config_with_a_live_table_is_a_deployment_config() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rsi.toml")).unwrap();
        let cfg = DeploymentConfig::parse(&text, "rsi.toml").unwrap();
        assert_eq!(cfg.live, LiveConfig::default());
        let cfg =
            DeploymentConfig::parse(&format!("{text}\n[live]\nchain = \"base\"\nslippage_bps = 30\n"), "x").unwrap();
        assert_eq!((cfg.live.chain.as_str(), cfg.live.slippage_bps), ("base", 30));
        let e = DeploymentConfig::parse(&format!("{text}\n[live]\nslipage_bps = 30\n"), "x.toml").unwrap_err();
        assert!(e.to_string().contains("slipage_bps"), "{e}");
        let e = DeploymentConfig::parse(&format!("{text}\n[live]\nconfirmations = 0\n"), "x.toml").unwrap_err();
        assert!(e.to_string().contains("live.confirmations"), "{e}");
    }
}
