//! Aave v3 (core 1.19, the v3.0.x pool) in the contracts' own integer arithmetic: `WadRayMath` and
//! `PercentageMath` with their half-up rounding, `MathUtils`' linear and compounded interest, the
//! `DefaultReserveInterestRateStrategy` kinked curve, a reserve's indexes accrued per second with the reserve factor
//! going to the treasury, scaled aToken and variable-debt balances, `GenericLogic`'s account data and health factor,
//! and `LiquidationLogic`'s close factor, liquidation bonus and protocol fee.
//!
//! Every function returns what the contract returns, or `None` / an error where the contract reverts. Stable-rate
//! debt (disabled on every live v3 market) and e-mode are left out of the pool model; the rate strategy still takes
//! stable debt as an input so it can be compared with the contract's.

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};
use std::fmt;

/// 1e18.
pub const WAD: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);
/// 0.5e18.
pub const HALF_WAD: U256 = U256::from_limbs([500_000_000_000_000_000, 0, 0, 0]);
/// 1e27.
pub const RAY: U256 = U256::from_limbs([0x9fd0_803c_e800_0000, 0x033b_2e3c, 0, 0]);
/// 0.5e27.
pub const HALF_RAY: U256 = U256::from_limbs([0x4fe8_401e_7400_0000, 0x019d_971e, 0, 0]);
/// 1e9, from wad to ray.
pub const WAD_RAY_RATIO: U256 = U256::from_limbs([1_000_000_000, 0, 0, 0]);
/// 100.00 % in `PercentageMath`'s basis points.
pub const PERCENTAGE_FACTOR: u64 = 10_000;
/// `MathUtils.SECONDS_PER_YEAR` (365 days, leap years ignored).
pub const SECONDS_PER_YEAR: u64 = 31_536_000;
/// A health factor below this (1.0 in wad) may be liquidated.
pub const HEALTH_FACTOR_LIQUIDATION_THRESHOLD: U256 = WAD;
/// Below this health factor (0.95) a liquidation may repay all of the debt, above it half.
pub const CLOSE_FACTOR_HF_THRESHOLD: U256 = U256::from_limbs([950_000_000_000_000_000, 0, 0, 0]);
/// Share of the debt one liquidation may repay above [`CLOSE_FACTOR_HF_THRESHOLD`], in basis points.
pub const DEFAULT_LIQUIDATION_CLOSE_FACTOR: u64 = 5_000;
/// Share of the debt one liquidation may repay below [`CLOSE_FACTOR_HF_THRESHOLD`], in basis points.
pub const MAX_LIQUIDATION_CLOSE_FACTOR: u64 = 10_000;

fn u(x: u64) -> U256 {
    U256::from(x)
}

// mirrors WadRayMath.wadMul: a * b / WAD rounded half up; reverts when a * b + HALF_WAD overflows.
/// `a * b / 1e18`, rounded half up. `None` where the contract reverts (overflow).
pub fn wad_mul(a: U256, b: U256) -> Option<U256> {
    if !b.is_zero() && a > (U256::MAX - HALF_WAD) / b {
        return None;
    }
    Some((a * b + HALF_WAD) / WAD)
}

/// `a * 1e18 / b`, rounded half up. `None` where the contract reverts (zero divisor, overflow).
pub fn wad_div(a: U256, b: U256) -> Option<U256> {
    if b.is_zero() || a > (U256::MAX - b / u(2)) / WAD {
        return None;
    }
    Some((a * WAD + b / u(2)) / b)
}

/// `a * b / 1e27`, rounded half up. `None` where the contract reverts (overflow).
pub fn ray_mul(a: U256, b: U256) -> Option<U256> {
    if !b.is_zero() && a > (U256::MAX - HALF_RAY) / b {
        return None;
    }
    Some((a * b + HALF_RAY) / RAY)
}

/// `a * 1e27 / b`, rounded half up. `None` where the contract reverts (zero divisor, overflow).
pub fn ray_div(a: U256, b: U256) -> Option<U256> {
    if b.is_zero() || a > (U256::MAX - b / u(2)) / RAY {
        return None;
    }
    Some((a * RAY + b / u(2)) / b)
}

/// A ray as a wad, rounded half up (never reverts).
pub fn ray_to_wad(a: U256) -> U256 {
    let b = a / WAD_RAY_RATIO;
    if a % WAD_RAY_RATIO >= WAD_RAY_RATIO / u(2) { b + U256::from(1u8) } else { b }
}

/// A wad as a ray. `None` on overflow.
pub fn wad_to_ray(a: U256) -> Option<U256> {
    a.checked_mul(WAD_RAY_RATIO)
}

/// `value * percentage / 10_000`, rounded half up. `None` where the contract reverts.
pub fn percent_mul(value: U256, percentage: U256) -> Option<U256> {
    let half = u(PERCENTAGE_FACTOR / 2);
    if !percentage.is_zero() && value > (U256::MAX - half) / percentage {
        return None;
    }
    Some((value * percentage + half) / u(PERCENTAGE_FACTOR))
}

/// `value * 10_000 / percentage`, rounded half up. `None` where the contract reverts.
pub fn percent_div(value: U256, percentage: U256) -> Option<U256> {
    if percentage.is_zero() || value > (U256::MAX - percentage / u(2)) / u(PERCENTAGE_FACTOR) {
        return None;
    }
    Some((value * u(PERCENTAGE_FACTOR) + percentage / u(2)) / percentage)
}

/// `MathUtils.calculateLinearInterest`: `1 + rate * elapsed / year`, in ray. `None` on overflow.
pub fn linear_interest(rate_ray: U256, elapsed_secs: u64) -> Option<U256> {
    let result = rate_ray.checked_mul(u(elapsed_secs))? / u(SECONDS_PER_YEAR);
    RAY.checked_add(result)
}

/// `MathUtils.calculateCompoundedInterest`: the binomial approximation of `(1 + rate / year)^elapsed` to the third
/// term, in ray. `None` where the contract reverts.
pub fn compounded_interest(rate_ray: U256, elapsed_secs: u64) -> Option<U256> {
    let exp = u(elapsed_secs);
    if exp.is_zero() {
        return Some(RAY);
    }
    let exp_minus_one = exp - U256::from(1u8);
    let exp_minus_two = if elapsed_secs > 2 { exp - u(2) } else { U256::ZERO };
    let year = u(SECONDS_PER_YEAR);
    // unchecked in the contract: the divisions cannot overflow, rayMul still reverts on its own.
    let base_power_two = ray_mul(rate_ray, rate_ray)? / (year * year);
    let base_power_three = ray_mul(base_power_two, rate_ray)? / year;
    let second_term = exp.checked_mul(exp_minus_one)?.checked_mul(base_power_two)? / u(2);
    let third_term = exp.checked_mul(exp_minus_one)?.checked_mul(exp_minus_two)?.checked_mul(base_power_three)? / u(6);
    RAY.checked_add(rate_ray.checked_mul(exp)? / year)?.checked_add(second_term)?.checked_add(third_term)
}

/// `ReserveLogic.getNormalizedIncome` from a reserve's stored liquidity index, current liquidity rate and last
/// update: the index at `now`, linear interest since the update. `None` where the contract reverts (`now` before the
/// update, overflow).
pub fn normalized_income(index: U256, rate_ray: U256, last_update: u64, now: u64) -> Option<U256> {
    if now == last_update {
        return Some(index);
    }
    ray_mul(linear_interest(rate_ray, now.checked_sub(last_update)?)?, index)
}

/// `ReserveLogic.getNormalizedDebt`: the variable borrow index at `now`, compounded interest since the last update.
pub fn normalized_debt(index: U256, rate_ray: U256, last_update: u64, now: u64) -> Option<U256> {
    if now == last_update {
        return Some(index);
    }
    ray_mul(compounded_interest(rate_ray, now.checked_sub(last_update)?)?, index)
}

/// An annual rate in ray as the APY it compounds to per second (what Aave's interface shows), as f64.
pub fn apy_of_rate(rate_ray: U256) -> f64 {
    apy_of_apr(f64::from(rate_ray) / 1e27)
}

/// The APY an annual rate (a fraction) compounds to when it accrues every second.
pub fn apy_of_apr(apr: f64) -> f64 {
    ((apr / SECONDS_PER_YEAR as f64).ln_1p() * SECONDS_PER_YEAR as f64).exp_m1()
}

/// A liquidity index grown for `elapsed_secs` at a supply rate that compounds per second to `apy`
/// (`calculateLinearInterest` at [`rate_of_apy`]); `None` where the contract would revert.
pub fn grow_liquidity_index(index: U256, apy: f64, elapsed_secs: u64) -> Option<U256> {
    ray_mul(linear_interest(rate_of_apy(apy.max(0.0)), elapsed_secs)?, index)
}

/// The annual rate in ray whose per-second compounding gives `apy` (the inverse of [`apy_of_rate`]).
pub fn rate_of_apy(apy: f64) -> U256 {
    let per_second = (apy.ln_1p() / SECONDS_PER_YEAR as f64).exp_m1();
    U256::from((per_second * SECONDS_PER_YEAR as f64 * 1e27).max(0.0) as u128)
}

/// A revert of the Aave pool: the `Errors` library's code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AaveError(pub &'static str);

impl fmt::Display for AaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let meaning = match self.0 {
            "26" => "invalid amount (zero)",
            "32" => "not enough available user balance",
            "34" => "collateral balance is zero",
            "35" => "health factor is lesser than the liquidation threshold",
            "36" => "there is not enough collateral to cover a new borrow",
            "39" => "no debt of the selected type",
            "45" => "health factor is not below the threshold",
            "46" => "the collateral chosen cannot be liquidated",
            "47" => "user did not borrow the specified currency",
            "57" => "ltv validation failed",
            "24" => "invalid amount to mint (rounds to zero shares)",
            "25" => "invalid amount to burn (rounds to zero shares)",
            "CONFIG" => "invalid reserve configuration",
            "SAME_RESERVE" => "collateral and debt are the same reserve (not modelled)",
            "UNDERFLOW" => "arithmetic underflow (panic 0x11)",
            "M" => "arithmetic overflow",
            _ => "reverted",
        };
        write!(f, "aave v3 reverted {:?}: {meaning}", self.0)
    }
}

impl std::error::Error for AaveError {}

type R<T> = Result<T, AaveError>;

fn m<T>(x: Option<T>) -> R<T> {
    x.ok_or(AaveError("M"))
}

fn sub(a: U256, b: U256) -> R<U256> {
    a.checked_sub(b).ok_or(AaveError("UNDERFLOW"))
}

/// `DefaultReserveInterestRateStrategy`'s parameters, all in ray.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateStrategy {
    /// Usage ratio at the kink.
    pub optimal_usage_ratio: U256,
    /// Variable borrow rate at zero usage.
    pub base_variable_borrow_rate: U256,
    /// Variable rate added between zero usage and the kink.
    pub variable_rate_slope1: U256,
    /// Variable rate added between the kink and full usage.
    pub variable_rate_slope2: U256,
    /// Stable rate added between zero usage and the kink.
    pub stable_rate_slope1: U256,
    /// Stable rate added between the kink and full usage.
    pub stable_rate_slope2: U256,
    /// Premium of the base stable rate over `variable_rate_slope1`.
    pub base_stable_rate_offset: U256,
    /// Stable rate premium when stable debt exceeds its optimal share.
    pub stable_rate_excess_offset: U256,
    /// Optimal share of stable debt in the total debt.
    pub optimal_stable_to_total_debt_ratio: U256,
}

/// Inputs of `calculateInterestRates` (`DataTypes.CalculateInterestRatesParams`, with the aToken's underlying
/// balance in place of the `balanceOf` call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateParams {
    /// Unbacked aTokens minted through a bridge.
    pub unbacked: U256,
    /// The underlying the aToken holds before the operation.
    pub a_token_balance: U256,
    /// Liquidity the operation adds.
    pub liquidity_added: U256,
    /// Liquidity the operation takes.
    pub liquidity_taken: U256,
    /// Total stable debt.
    pub total_stable_debt: U256,
    /// Total variable debt.
    pub total_variable_debt: U256,
    /// Average stable borrow rate, ray.
    pub average_stable_borrow_rate: U256,
    /// Reserve factor, basis points.
    pub reserve_factor_bps: u64,
}

/// The rates `calculateInterestRates` returns, in ray per year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rates {
    /// Supply (liquidity) rate.
    pub liquidity_rate: U256,
    /// Stable borrow rate.
    pub stable_borrow_rate: U256,
    /// Variable borrow rate.
    pub variable_borrow_rate: U256,
}

impl RateStrategy {
    /// A variable-only curve (stable slopes and offsets zero, optimal stable ratio 20 %), the shape of every v3
    /// market today. Rates in ray.
    pub fn variable(optimal_usage_ratio: U256, base: U256, slope1: U256, slope2: U256) -> Self {
        RateStrategy {
            optimal_usage_ratio,
            base_variable_borrow_rate: base,
            variable_rate_slope1: slope1,
            variable_rate_slope2: slope2,
            stable_rate_slope1: U256::ZERO,
            stable_rate_slope2: U256::ZERO,
            base_stable_rate_offset: U256::ZERO,
            stable_rate_excess_offset: U256::ZERO,
            optimal_stable_to_total_debt_ratio: RAY / u(5),
        }
    }

    /// The curve from fractions (0.9 = 90 %), rounded to the nearest ray unit.
    pub fn from_fractions(optimal_usage: f64, base: f64, slope1: f64, slope2: f64) -> Self {
        // nine decimals of the fraction are kept exactly (1e-9 = 0.0000001 %), then scaled to ray
        let ray = |x: f64| U256::from((x * 1e9).round().max(0.0) as u128) * U256::from(1_000_000_000_000_000_000u128);
        Self::variable(ray(optimal_usage), ray(base), ray(slope1), ray(slope2))
    }

    /// The constructor's checks: both optimal ratios at most 100 %.
    ///
    /// # Errors
    /// `CONFIG` when a ratio exceeds one ray.
    pub fn validate(&self) -> R<()> {
        if self.optimal_usage_ratio > RAY || self.optimal_stable_to_total_debt_ratio > RAY {
            return Err(AaveError("CONFIG"));
        }
        Ok(())
    }

    /// `getBaseStableBorrowRate`.
    pub fn base_stable_borrow_rate(&self) -> Option<U256> {
        self.variable_rate_slope1.checked_add(self.base_stable_rate_offset)
    }

    // mirrors DefaultReserveInterestRateStrategy.calculateInterestRates
    /// The liquidity, stable and variable rates for a reserve's state. `None` where the contract reverts.
    pub fn calculate_interest_rates(&self, p: &RateParams) -> Option<Rates> {
        let max_excess_usage = RAY.checked_sub(self.optimal_usage_ratio)?;
        let max_excess_stable = RAY.checked_sub(self.optimal_stable_to_total_debt_ratio)?;
        let total_debt = p.total_stable_debt.checked_add(p.total_variable_debt)?;
        let mut variable = self.base_variable_borrow_rate;
        let mut stable = self.base_stable_borrow_rate()?;
        let (mut stable_to_total, mut borrow_usage, mut supply_usage) = (U256::ZERO, U256::ZERO, U256::ZERO);
        if !total_debt.is_zero() {
            stable_to_total = ray_div(p.total_stable_debt, total_debt)?;
            let available = p.a_token_balance.checked_add(p.liquidity_added)?.checked_sub(p.liquidity_taken)?;
            let available_plus_debt = available.checked_add(total_debt)?;
            borrow_usage = ray_div(total_debt, available_plus_debt)?;
            supply_usage = ray_div(total_debt, available_plus_debt.checked_add(p.unbacked)?)?;
        }
        if borrow_usage > self.optimal_usage_ratio {
            let excess = ray_div(borrow_usage - self.optimal_usage_ratio, max_excess_usage)?;
            stable =
                stable.checked_add(self.stable_rate_slope1.checked_add(ray_mul(self.stable_rate_slope2, excess)?)?)?;
            variable = variable
                .checked_add(self.variable_rate_slope1.checked_add(ray_mul(self.variable_rate_slope2, excess)?)?)?;
        } else {
            stable = stable
                .checked_add(ray_div(ray_mul(self.stable_rate_slope1, borrow_usage)?, self.optimal_usage_ratio)?)?;
            variable = variable
                .checked_add(ray_div(ray_mul(self.variable_rate_slope1, borrow_usage)?, self.optimal_usage_ratio)?)?;
        }
        if stable_to_total > self.optimal_stable_to_total_debt_ratio {
            let excess = ray_div(stable_to_total - self.optimal_stable_to_total_debt_ratio, max_excess_stable)?;
            stable = stable.checked_add(ray_mul(self.stable_rate_excess_offset, excess)?)?;
        }
        let overall =
            overall_borrow_rate(p.total_stable_debt, p.total_variable_debt, variable, p.average_stable_borrow_rate)?;
        let keep = u(PERCENTAGE_FACTOR).checked_sub(u(p.reserve_factor_bps))?;
        let liquidity = percent_mul(ray_mul(overall, supply_usage)?, keep)?;
        Some(Rates { liquidity_rate: liquidity, stable_borrow_rate: stable, variable_borrow_rate: variable })
    }
}

// mirrors DefaultReserveInterestRateStrategy._getOverallBorrowRate
fn overall_borrow_rate(stable_debt: U256, variable_debt: U256, variable_rate: U256, avg_stable: U256) -> Option<U256> {
    let total = stable_debt.checked_add(variable_debt)?;
    if total.is_zero() {
        return Some(U256::ZERO);
    }
    let weighted_variable = ray_mul(wad_to_ray(variable_debt)?, variable_rate)?;
    let weighted_stable = ray_mul(wad_to_ray(stable_debt)?, avg_stable)?;
    ray_div(weighted_variable.checked_add(weighted_stable)?, wad_to_ray(total)?)
}

/// A reserve's risk parameters (`ReserveConfiguration`), without e-mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveConfig {
    /// Decimals of the underlying.
    pub decimals: u8,
    /// Loan-to-value, basis points.
    pub ltv_bps: u64,
    /// Liquidation threshold, basis points.
    pub liquidation_threshold_bps: u64,
    /// Liquidation bonus, basis points above 100 % (10_500 = a 5 % bonus).
    pub liquidation_bonus_bps: u64,
    /// Share of the liquidation bonus that goes to the treasury, basis points.
    pub liquidation_protocol_fee_bps: u64,
    /// Share of borrow interest that goes to the treasury, basis points.
    pub reserve_factor_bps: u64,
    /// The interest-rate curve.
    pub strategy: RateStrategy,
}

/// One reserve of a pool: its indexes, rates and totals (`DataTypes.ReserveData` plus the aToken's and the
/// variable-debt token's scaled total supplies and the underlying the aToken holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserve {
    /// Risk parameters and rate curve.
    pub config: ReserveConfig,
    /// Liquidity (supply) index, ray.
    pub liquidity_index: U256,
    /// Variable borrow index, ray.
    pub variable_borrow_index: U256,
    /// Current supply rate, ray per year.
    pub current_liquidity_rate: U256,
    /// Current variable borrow rate, ray per year.
    pub current_variable_borrow_rate: U256,
    /// Timestamp of the last index update.
    pub last_update: u64,
    /// Scaled aToken supply (the treasury's minted share included).
    pub scaled_a_supply: U256,
    /// Scaled variable debt.
    pub scaled_variable_debt: U256,
    /// Scaled aTokens accrued to the treasury and not yet minted.
    pub accrued_to_treasury: U256,
    /// Underlying held by the aToken (available liquidity).
    pub cash: U256,
}

/// What a supplier or borrower holds in one reserve, in scaled units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Holding {
    /// Scaled aToken balance.
    pub scaled_supply: U256,
    /// Scaled variable-debt balance.
    pub scaled_debt: U256,
    /// Whether the supply counts as collateral.
    pub collateral: bool,
}

impl Reserve {
    /// A freshly initialised reserve (`ReserveLogic.init`: both indexes one ray, rates zero until the first action).
    ///
    /// # Errors
    /// `CONFIG` when the curve or the parameters are out of range.
    pub fn new(config: ReserveConfig, now: u64) -> R<Self> {
        config.strategy.validate()?;
        if config.ltv_bps > config.liquidation_threshold_bps
            || config.liquidation_threshold_bps > PERCENTAGE_FACTOR
            || config.reserve_factor_bps > PERCENTAGE_FACTOR
            || config.liquidation_protocol_fee_bps > PERCENTAGE_FACTOR
            || (config.liquidation_threshold_bps != 0 && config.liquidation_bonus_bps <= PERCENTAGE_FACTOR)
            || config.decimals > 38
        {
            return Err(AaveError("CONFIG"));
        }
        Ok(Reserve {
            config,
            liquidity_index: RAY,
            variable_borrow_index: RAY,
            current_liquidity_rate: U256::ZERO,
            current_variable_borrow_rate: U256::ZERO,
            last_update: now,
            scaled_a_supply: U256::ZERO,
            scaled_variable_debt: U256::ZERO,
            accrued_to_treasury: U256::ZERO,
            cash: U256::ZERO,
        })
    }

    /// One unit of the underlying in base units.
    pub fn unit(&self) -> U256 {
        U256::from(10u8).pow(U256::from(self.config.decimals))
    }

    /// `getNormalizedIncome`: the liquidity index at `now` (linear interest since the last update).
    pub fn normalized_income(&self, now: u64) -> Option<U256> {
        normalized_income(self.liquidity_index, self.current_liquidity_rate, self.last_update, now)
    }

    /// `getNormalizedDebt`: the variable borrow index at `now` (compounded interest since the last update).
    pub fn normalized_debt(&self, now: u64) -> Option<U256> {
        normalized_debt(self.variable_borrow_index, self.current_variable_borrow_rate, self.last_update, now)
    }

    /// Total supplied, aTokens at `now`.
    pub fn total_supply(&self, now: u64) -> Option<U256> {
        ray_mul(self.scaled_a_supply, self.normalized_income(now)?)
    }

    /// Total variable debt at `now`.
    pub fn total_debt(&self, now: u64) -> Option<U256> {
        ray_mul(self.scaled_variable_debt, self.normalized_debt(now)?)
    }

    /// Borrow usage (debt over debt plus cash), as a fraction.
    pub fn utilization(&self, now: u64) -> f64 {
        let debt = self.total_debt(now).map_or(0.0, f64::from);
        let cash = f64::from(self.cash);
        if debt + cash == 0.0 { 0.0 } else { debt / (debt + cash) }
    }

    // mirrors ReserveLogic.updateState (_updateIndexes, then _accrueToTreasury)
    /// Accrues the indexes to `now` and the treasury's share of the interest.
    ///
    /// # Errors
    /// Overflow, or `now` before the last update.
    pub fn update_state(&mut self, now: u64) -> R<()> {
        if now == self.last_update {
            return Ok(());
        }
        let elapsed = now.checked_sub(self.last_update).ok_or(AaveError("UNDERFLOW"))?;
        let (prev_liquidity_index, prev_borrow_index) = (self.liquidity_index, self.variable_borrow_index);
        if !self.current_liquidity_rate.is_zero() {
            self.liquidity_index =
                m(ray_mul(m(linear_interest(self.current_liquidity_rate, elapsed))?, prev_liquidity_index))?;
            m(u128::try_from(self.liquidity_index).ok())?;
        }
        if !self.scaled_variable_debt.is_zero() {
            self.variable_borrow_index =
                m(ray_mul(m(compounded_interest(self.current_variable_borrow_rate, elapsed))?, prev_borrow_index))?;
            m(u128::try_from(self.variable_borrow_index).ok())?;
        }
        if self.config.reserve_factor_bps != 0 {
            let prev_debt = m(ray_mul(self.scaled_variable_debt, prev_borrow_index))?;
            let curr_debt = m(ray_mul(self.scaled_variable_debt, self.variable_borrow_index))?;
            let accrued = sub(curr_debt, prev_debt)?;
            let to_mint = m(percent_mul(accrued, u(self.config.reserve_factor_bps)))?;
            if !to_mint.is_zero() {
                self.accrued_to_treasury += m(ray_div(to_mint, self.liquidity_index))?;
            }
        }
        self.last_update = now;
        Ok(())
    }

    // mirrors ReserveLogic.updateInterestRates
    /// Recomputes the rates for an operation adding or taking liquidity (called before the underlying moves).
    ///
    /// # Errors
    /// Where the rate strategy reverts: `UNDERFLOW` when the reserve has debt and less than `taken` to give.
    pub fn update_interest_rates(&mut self, added: U256, taken: U256) -> R<()> {
        let total_variable_debt = m(ray_mul(self.scaled_variable_debt, self.variable_borrow_index))?;
        // the strategy takes `balance + added - taken` only when there is debt: taking more than the reserve holds
        // is a checked-arithmetic panic there (a borrow or withdrawal beyond the available liquidity)
        if !total_variable_debt.is_zero() && m(self.cash.checked_add(added))? < taken {
            return Err(AaveError("UNDERFLOW"));
        }
        let rates = m(self.config.strategy.calculate_interest_rates(&RateParams {
            a_token_balance: self.cash,
            liquidity_added: added,
            liquidity_taken: taken,
            total_variable_debt,
            reserve_factor_bps: self.config.reserve_factor_bps,
            ..RateParams::default()
        }))?;
        self.current_liquidity_rate = rates.liquidity_rate;
        self.current_variable_borrow_rate = rates.variable_borrow_rate;
        Ok(())
    }

    // mirrors SupplyLogic.executeSupply and ScaledBalanceTokenBase._mintScaled
    /// Supplies `amount` at `now`; returns the scaled aTokens minted.
    ///
    /// # Errors
    /// `26` for a zero amount, `24` when it rounds to zero shares.
    pub fn supply(&mut self, holding: &mut Holding, amount: U256, now: u64) -> R<U256> {
        self.atomic(holding, |r, h| r.supply_inner(h, amount, now))
    }

    /// Runs one operation as a transaction: on an error the reserve and the holding are left as they were, as a
    /// revert leaves the contract's storage (the state update at the start of every operation included).
    fn atomic<T>(&mut self, holding: &mut Holding, f: impl FnOnce(&mut Self, &mut Holding) -> R<T>) -> R<T> {
        let (saved, saved_holding) = (self.clone(), *holding);
        let result = f(self, holding);
        if result.is_err() {
            *self = saved;
            *holding = saved_holding;
        }
        result
    }

    fn supply_inner(&mut self, holding: &mut Holding, amount: U256, now: u64) -> R<U256> {
        self.update_state(now)?;
        if amount.is_zero() {
            return Err(AaveError("26"));
        }
        self.update_interest_rates(amount, U256::ZERO)?;
        let scaled = m(ray_div(amount, self.liquidity_index))?;
        if scaled.is_zero() {
            return Err(AaveError("24"));
        }
        self.cash += amount;
        if holding.scaled_supply.is_zero() {
            holding.collateral = self.config.ltv_bps != 0;
        }
        holding.scaled_supply += scaled;
        self.scaled_a_supply += scaled;
        Ok(scaled)
    }

    /// The withdrawal half of `SupplyLogic.executeWithdraw` (no health check: see [`Market::withdraw`]); `None` for
    /// `amount` withdraws everything. Returns the underlying paid out.
    ///
    /// # Errors
    /// `26` for zero, `32` for more than the balance, `25`.
    pub fn withdraw(&mut self, holding: &mut Holding, amount: Option<U256>, now: u64) -> R<U256> {
        self.atomic(holding, |r, h| r.withdraw_inner(h, amount, now))
    }

    fn withdraw_inner(&mut self, holding: &mut Holding, amount: Option<U256>, now: u64) -> R<U256> {
        self.update_state(now)?;
        let balance = m(ray_mul(holding.scaled_supply, self.liquidity_index))?;
        let amount = amount.unwrap_or(balance);
        if amount.is_zero() {
            return Err(AaveError("26"));
        }
        if amount > balance {
            return Err(AaveError("32"));
        }
        self.update_interest_rates(U256::ZERO, amount)?;
        let scaled = m(ray_div(amount, self.liquidity_index))?;
        if scaled.is_zero() {
            return Err(AaveError("25"));
        }
        holding.scaled_supply = sub(holding.scaled_supply, scaled)?;
        self.scaled_a_supply = sub(self.scaled_a_supply, scaled)?;
        self.cash = sub(self.cash, amount)?;
        if amount == balance {
            holding.collateral = false;
        }
        Ok(amount)
    }

    /// The debt half of `BorrowLogic.executeBorrow` after validation: mints scaled debt, updates rates, pays out.
    fn borrow_unchecked(&mut self, holding: &mut Holding, amount: U256) -> R<()> {
        let scaled = m(ray_div(amount, self.variable_borrow_index))?;
        if scaled.is_zero() {
            return Err(AaveError("24"));
        }
        holding.scaled_debt += scaled;
        self.scaled_variable_debt += scaled;
        self.update_interest_rates(U256::ZERO, amount)?;
        self.cash = sub(self.cash, amount)?;
        Ok(())
    }

    // mirrors BorrowLogic.executeRepay (variable debt, paid in the underlying)
    /// Repays up to `amount` (`None`: all) of the holding's debt at `now`; returns what was paid back.
    ///
    /// # Errors
    /// `26` for zero, `39` when there is no debt, `25`.
    pub fn repay(&mut self, holding: &mut Holding, amount: Option<U256>, now: u64) -> R<U256> {
        self.atomic(holding, |r, h| r.repay_inner(h, amount, now))
    }

    fn repay_inner(&mut self, holding: &mut Holding, amount: Option<U256>, now: u64) -> R<U256> {
        self.update_state(now)?;
        let debt = m(ray_mul(holding.scaled_debt, self.variable_borrow_index))?;
        if amount == Some(U256::ZERO) {
            return Err(AaveError("26"));
        }
        if debt.is_zero() {
            return Err(AaveError("39"));
        }
        let payback = amount.map_or(debt, |a| a.min(debt));
        self.burn_debt(holding, payback)?;
        self.update_interest_rates(payback, U256::ZERO)?;
        self.cash += payback;
        Ok(payback)
    }

    fn burn_debt(&mut self, holding: &mut Holding, amount: U256) -> R<()> {
        let scaled = m(ray_div(amount, self.variable_borrow_index))?;
        if scaled.is_zero() {
            return Err(AaveError("25"));
        }
        holding.scaled_debt = sub(holding.scaled_debt, scaled)?;
        self.scaled_variable_debt = sub(self.scaled_variable_debt, scaled)?;
        Ok(())
    }
}

/// `calculateUserAccountData`'s results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountData {
    /// Collateral in the oracle's base currency.
    pub total_collateral_base: U256,
    /// Debt in the base currency.
    pub total_debt_base: U256,
    /// Collateral-weighted LTV, basis points.
    pub avg_ltv_bps: U256,
    /// Collateral-weighted liquidation threshold, basis points.
    pub avg_liquidation_threshold_bps: U256,
    /// Health factor, wad (`U256::MAX` without debt).
    pub health_factor: U256,
}

/// The result of a liquidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liquidation {
    /// Debt repaid by the liquidator, in the debt asset.
    pub debt_repaid: U256,
    /// Collateral the liquidator received, in the collateral asset.
    pub collateral_to_liquidator: U256,
    /// Collateral taken as the protocol's share of the bonus.
    pub protocol_fee: U256,
    /// The health factor that allowed it, wad.
    pub health_factor_before: U256,
}

/// A pool: reserves in id order and the oracle's price of each in the base currency (8 decimals, USD, on every v3
/// market).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Market {
    /// Reserves, indexed by reserve id.
    pub reserves: Vec<Reserve>,
    /// Oracle price of each reserve's underlying, base currency units.
    pub prices: Vec<U256>,
}

/// A user of a [`Market`]: one holding per reserve, in the same order.
pub type Account = Vec<Holding>;

impl Market {
    fn reserve_pair(&mut self, a: usize, b: usize) -> R<(&mut Reserve, &mut Reserve)> {
        if a == b {
            return Err(AaveError("SAME_RESERVE"));
        }
        if a < b {
            let (lo, hi) = self.reserves.split_at_mut(b);
            Ok((&mut lo[a], &mut hi[0]))
        } else {
            let (lo, hi) = self.reserves.split_at_mut(a);
            Ok((&mut hi[0], &mut lo[b]))
        }
    }

    // mirrors GenericLogic.calculateUserAccountData (no e-mode)
    /// The user's collateral, debt, average LTV and liquidation threshold and health factor at `now`.
    ///
    /// # Errors
    /// Overflow.
    pub fn account_data(&self, account: &[Holding], now: u64) -> R<AccountData> {
        let (mut collateral, mut debt, mut avg_ltv, mut avg_lt) = (U256::ZERO, U256::ZERO, U256::ZERO, U256::ZERO);
        for (i, (reserve, h)) in self.reserves.iter().zip(account).enumerate() {
            let price = self.prices[i];
            let unit = reserve.unit();
            if reserve.config.liquidation_threshold_bps != 0 && h.collateral && !h.scaled_supply.is_zero() {
                let balance = m(ray_mul(h.scaled_supply, m(reserve.normalized_income(now))?))?;
                let in_base = m(balance.checked_mul(price))? / unit;
                collateral = m(collateral.checked_add(in_base))?;
                avg_ltv = m(avg_ltv.checked_add(m(in_base.checked_mul(u(reserve.config.ltv_bps)))?))?;
                avg_lt = m(avg_lt.checked_add(m(in_base.checked_mul(u(reserve.config.liquidation_threshold_bps)))?))?;
            }
            if !h.scaled_debt.is_zero() {
                let owed = m(ray_mul(h.scaled_debt, m(reserve.normalized_debt(now))?))?;
                debt = m(debt.checked_add(m(owed.checked_mul(price))? / unit))?;
            }
        }
        if !collateral.is_zero() {
            avg_ltv /= collateral;
            avg_lt /= collateral;
        }
        let health_factor =
            if debt.is_zero() { U256::MAX } else { m(wad_div(m(percent_mul(collateral, avg_lt))?, debt))? };
        Ok(AccountData {
            total_collateral_base: collateral,
            total_debt_base: debt,
            avg_ltv_bps: avg_ltv,
            avg_liquidation_threshold_bps: avg_lt,
            health_factor,
        })
    }

    /// Supplies `amount` of reserve `i`.
    ///
    /// # Errors
    /// As [`Reserve::supply`].
    pub fn supply(&mut self, account: &mut [Holding], i: usize, amount: U256, now: u64) -> R<U256> {
        self.reserves[i].supply(&mut account[i], amount, now)
    }

    // mirrors SupplyLogic.executeWithdraw: withdraw, then validateHFAndLtv when the user borrows
    /// Withdraws `amount` (`None`: all) of reserve `i`, refused when it would leave the health factor below one.
    ///
    /// # Errors
    /// As [`Reserve::withdraw`]; `35` when the health factor would fall below one.
    pub fn withdraw(&mut self, account: &mut [Holding], i: usize, amount: Option<U256>, now: u64) -> R<U256> {
        self.atomic(account, |market, account| {
            let was_collateral = account[i].collateral;
            let out = market.reserves[i].withdraw(&mut account[i], amount, now)?;
            if was_collateral
                && account.iter().any(|h| !h.scaled_debt.is_zero())
                && market.account_data(account, now)?.health_factor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD
            {
                return Err(AaveError("35"));
            }
            Ok(out)
        })
    }

    // mirrors BorrowLogic.executeBorrow with ValidationLogic.validateBorrow's collateral checks
    /// Borrows `amount` of reserve `i` at a variable rate.
    ///
    /// # Errors
    /// `26`, `34` (no collateral), `57` (zero LTV), `35` (health factor at or below one), `36` (not enough
    /// collateral for the new debt at the LTV), then `24` and `UNDERFLOW` when the reserve lacks the cash (the
    /// contract validates first and fails computing the rates).
    pub fn borrow(&mut self, account: &mut [Holding], i: usize, amount: U256, now: u64) -> R<()> {
        self.atomic(account, |market, account| market.borrow_inner(account, i, amount, now))
    }

    /// Runs one operation as a transaction: on an error the pool and the account are left as they were.
    fn atomic<T>(&mut self, account: &mut [Holding], f: impl FnOnce(&mut Self, &mut [Holding]) -> R<T>) -> R<T> {
        let (saved, saved_account) = (self.clone(), account.to_vec());
        let result = f(self, account);
        if result.is_err() {
            *self = saved;
            account.copy_from_slice(&saved_account);
        }
        result
    }

    fn borrow_inner(&mut self, account: &mut [Holding], i: usize, amount: U256, now: u64) -> R<()> {
        self.reserves[i].update_state(now)?;
        if amount.is_zero() {
            return Err(AaveError("26"));
        }
        let data = self.account_data(account, now)?;
        if data.total_collateral_base.is_zero() {
            return Err(AaveError("34"));
        }
        if data.avg_ltv_bps.is_zero() {
            return Err(AaveError("57"));
        }
        if data.health_factor <= HEALTH_FACTOR_LIQUIDATION_THRESHOLD {
            return Err(AaveError("35"));
        }
        let amount_base = m(self.prices[i].checked_mul(amount))? / self.reserves[i].unit();
        let needed = m(percent_div(m(data.total_debt_base.checked_add(amount_base))?, data.avg_ltv_bps))?;
        if needed > data.total_collateral_base {
            return Err(AaveError("36"));
        }
        self.reserves[i].borrow_unchecked(&mut account[i], amount)
    }

    /// Repays up to `amount` (`None`: all) of the debt in reserve `i`.
    ///
    /// # Errors
    /// As [`Reserve::repay`].
    pub fn repay(&mut self, account: &mut [Holding], i: usize, amount: Option<U256>, now: u64) -> R<U256> {
        self.reserves[i].repay(&mut account[i], amount, now)
    }

    // mirrors LiquidationLogic.executeLiquidationCall with receiveAToken = false
    /// A liquidator repays up to `debt_to_cover` (`U256::MAX`: as much as allowed) of the user's debt in reserve
    /// `debt_i` and receives collateral of reserve `coll_i` plus the bonus; the treasury takes its fee.
    ///
    /// # Errors
    /// `45` when the health factor is not below one, `46` when the collateral is not enabled, `47` without debt.
    pub fn liquidate(
        &mut self,
        account: &mut [Holding],
        coll_i: usize,
        debt_i: usize,
        debt_to_cover: U256,
        now: u64,
    ) -> R<Liquidation> {
        let (coll_price, debt_price) = (self.prices[coll_i], self.prices[debt_i]);
        let saved = self.clone();
        let saved_account = account.to_vec();
        let result = (|| {
            self.reserve_pair(coll_i, debt_i)?.1.update_state(now)?;
            let hf = self.account_data(account, now)?.health_factor;
            let (coll, debt) = self.reserve_pair(coll_i, debt_i)?;
            let user_debt = m(ray_mul(account[debt_i].scaled_debt, debt.variable_borrow_index))?;
            let close_factor = if hf > CLOSE_FACTOR_HF_THRESHOLD {
                DEFAULT_LIQUIDATION_CLOSE_FACTOR
            } else {
                MAX_LIQUIDATION_CLOSE_FACTOR
            };
            let max_liquidatable = m(percent_mul(user_debt, u(close_factor)))?;
            let mut actual_debt = debt_to_cover.min(max_liquidatable);
            if hf >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD {
                return Err(AaveError("45"));
            }
            if coll.config.liquidation_threshold_bps == 0 || !account[coll_i].collateral {
                return Err(AaveError("46"));
            }
            if user_debt.is_zero() {
                return Err(AaveError("47"));
            }
            let user_collateral = m(ray_mul(account[coll_i].scaled_supply, m(coll.normalized_income(now))?))?;
            let (collateral_out, debt_needed, mut fee) = available_collateral_to_liquidate(
                coll_price,
                debt_price,
                coll.config.decimals,
                debt.config.decimals,
                coll.config.liquidation_bonus_bps,
                coll.config.liquidation_protocol_fee_bps,
                actual_debt,
                user_collateral,
            )?;
            actual_debt = debt_needed;
            if m(collateral_out.checked_add(fee))? == user_collateral {
                account[coll_i].collateral = false;
            }
            debt.burn_debt(&mut account[debt_i], actual_debt)?;
            debt.update_interest_rates(actual_debt, U256::ZERO)?;
            // _burnCollateralATokens
            coll.update_state(now)?;
            coll.update_interest_rates(U256::ZERO, collateral_out)?;
            let scaled_out = m(ray_div(collateral_out, coll.liquidity_index))?;
            if scaled_out.is_zero() {
                return Err(AaveError("25"));
            }
            account[coll_i].scaled_supply = sub(account[coll_i].scaled_supply, scaled_out)?;
            coll.scaled_a_supply = sub(coll.scaled_a_supply, scaled_out)?;
            coll.cash = sub(coll.cash, collateral_out)?;
            if !fee.is_zero() {
                // the fee moves to the treasury as aTokens: the user's scaled balance shrinks, the supply does not
                let index = coll.liquidity_index;
                let scaled_fee = m(ray_div(fee, index))?;
                if scaled_fee > account[coll_i].scaled_supply {
                    fee = m(ray_mul(account[coll_i].scaled_supply, index))?;
                }
                let scaled_fee = m(ray_div(fee, index))?;
                account[coll_i].scaled_supply = sub(account[coll_i].scaled_supply, scaled_fee)?;
            }
            debt.cash += actual_debt;
            Ok(Liquidation {
                debt_repaid: actual_debt,
                collateral_to_liquidator: collateral_out,
                protocol_fee: fee,
                health_factor_before: hf,
            })
        })();
        if result.is_err() {
            *self = saved;
            account.copy_from_slice(&saved_account);
        }
        result
    }
}

// mirrors LiquidationLogic._calculateAvailableCollateralToLiquidate
/// How much collateral a liquidation of `debt_to_cover` seizes: `(collateral to the liquidator, debt actually
/// repaid, protocol fee)`. `None`-like overflow is an error.
///
/// # Errors
/// Overflow, or a zero price.
#[allow(clippy::too_many_arguments)]
pub fn available_collateral_to_liquidate(
    collateral_price: U256,
    debt_price: U256,
    collateral_decimals: u8,
    debt_decimals: u8,
    liquidation_bonus_bps: u64,
    protocol_fee_bps: u64,
    debt_to_cover: U256,
    user_collateral: U256,
) -> R<(U256, U256, U256)> {
    let coll_unit = U256::from(10u8).pow(U256::from(collateral_decimals));
    let debt_unit = U256::from(10u8).pow(U256::from(debt_decimals));
    let bonus = u(liquidation_bonus_bps);
    let num = m(m(debt_price.checked_mul(debt_to_cover))?.checked_mul(coll_unit))?;
    let den = m(collateral_price.checked_mul(debt_unit))?;
    if den.is_zero() {
        return Err(AaveError("M"));
    }
    let base_collateral = num / den;
    let max_collateral = m(percent_mul(base_collateral, bonus))?;
    let (collateral, debt_needed) = if max_collateral > user_collateral {
        let num = m(m(collateral_price.checked_mul(user_collateral))?.checked_mul(debt_unit))?;
        let den = m(debt_price.checked_mul(coll_unit))?;
        if den.is_zero() {
            return Err(AaveError("M"));
        }
        (user_collateral, m(percent_div(num / den, bonus))?)
    } else {
        (max_collateral, debt_to_cover)
    };
    if protocol_fee_bps != 0 {
        let bonus_collateral = sub(collateral, m(percent_div(collateral, bonus))?)?;
        let fee = m(percent_mul(bonus_collateral, u(protocol_fee_bps)))?;
        Ok((sub(collateral, fee)?, debt_needed, fee))
    } else {
        Ok((collateral, debt_needed, U256::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ray(x: f64) -> U256 {
        U256::from((x * 1e9).round() as u128) * U256::from(10u64.pow(18))
    }

    #[test]
    fn constants_are_the_powers_of_ten() {
        assert_eq!(RAY, U256::from(10u8).pow(U256::from(27u8)));
        assert_eq!(HALF_RAY * u(2), RAY);
        assert_eq!(WAD * WAD_RAY_RATIO, RAY);
    }

    #[test]
    fn rounding_is_half_up_and_overflow_reverts() {
        assert_eq!(ray_mul(RAY + u(1), u(1)), Some(u(1)));
        assert_eq!(ray_mul(HALF_RAY, u(1)), Some(u(1)));
        assert_eq!(ray_mul(HALF_RAY - u(1), u(1)), Some(U256::ZERO));
        assert_eq!(wad_div(u(1), u(3)), Some(u(333_333_333_333_333_333)));
        assert_eq!(wad_div(u(2), u(3)), Some(u(666_666_666_666_666_667)));
        assert_eq!(ray_div(u(1), U256::ZERO), None);
        assert_eq!(ray_mul(U256::MAX, u(2)), None);
        assert_eq!(ray_to_wad(u(1_500_000_000)), u(2));
        assert_eq!(ray_to_wad(u(1_499_999_999)), u(1));
        assert_eq!(percent_mul(u(10_001), u(5_000)), Some(u(5_001)));
        assert_eq!(percent_div(u(1), U256::ZERO), None);
    }

    #[test]
    fn compounded_interest_approximates_the_exponential() {
        // 5 % a year for a year: e^0.05 - 1 = 5.127 %; the three-term binomial is a hair below.
        let f = compounded_interest(ray(0.05), SECONDS_PER_YEAR).unwrap();
        let growth = f64::from(f) / 1e27 - 1.0;
        assert!((growth - 0.05127).abs() < 2e-5, "{growth}");
        assert!(
            compounded_interest(ray(0.05), SECONDS_PER_YEAR).unwrap()
                > linear_interest(ray(0.05), SECONDS_PER_YEAR).unwrap()
        );
        assert_eq!(compounded_interest(ray(0.05), 0), Some(RAY));
        assert!((apy_of_rate(rate_of_apy(0.07)) - 0.07).abs() < 1e-12);
    }

    #[test]
    fn the_curve_bends_at_the_kink() {
        let s = RateStrategy::from_fractions(0.9, 0.0, 0.04, 0.6);
        let at = |debt: u64, cash: u64| {
            s.calculate_interest_rates(&RateParams {
                a_token_balance: u(cash),
                total_variable_debt: u(debt),
                reserve_factor_bps: 1_000,
                ..RateParams::default()
            })
            .unwrap()
        };
        let kink = at(90, 10);
        assert_eq!(kink.variable_borrow_rate, ray(0.04));
        // supply = borrow * usage * (1 - reserve factor)
        let expect = 0.04 * 0.9 * 0.9;
        assert!((f64::from(kink.liquidity_rate) / 1e27 - expect).abs() < 1e-15);
        let full = at(100, 0);
        assert_eq!(full.variable_borrow_rate, ray(0.64));
        let half = at(45, 55);
        assert_eq!(half.variable_borrow_rate, ray(0.02));
        assert_eq!(at(0, 100).liquidity_rate, U256::ZERO);
    }

    fn usdc_weth() -> (Market, u64) {
        let now = 1_700_000_000;
        let weth = ReserveConfig {
            decimals: 18,
            ltv_bps: 8_000,
            liquidation_threshold_bps: 8_250,
            liquidation_bonus_bps: 10_500,
            liquidation_protocol_fee_bps: 1_000,
            reserve_factor_bps: 1_500,
            strategy: RateStrategy::from_fractions(0.8, 0.0, 0.033, 0.8),
        };
        let usdc = ReserveConfig {
            decimals: 6,
            ltv_bps: 7_700,
            liquidation_threshold_bps: 8_000,
            liquidation_bonus_bps: 10_450,
            liquidation_protocol_fee_bps: 1_000,
            reserve_factor_bps: 1_000,
            strategy: RateStrategy::from_fractions(0.9, 0.0, 0.06, 0.6),
        };
        let market = Market {
            reserves: vec![Reserve::new(weth, now).unwrap(), Reserve::new(usdc, now).unwrap()],
            prices: vec![u(200_000_000_000), u(100_000_000)],
        };
        (market, now)
    }

    #[test]
    fn supply_borrow_accrue_repay_withdraw() {
        let (mut market, now) = usdc_weth();
        let mut lender = vec![Holding::default(); 2];
        let mut user = vec![Holding::default(); 2];
        market.supply(&mut lender, 1, u(1_000_000_000_000), now).unwrap();
        market.supply(&mut user, 0, u(10) * WAD, now).unwrap();
        // 10 WETH at 2000 with 80 % LTV: 16,000 USDC at most.
        assert_eq!(market.borrow(&mut user, 1, u(16_000_000_001), now + 1), Err(AaveError("36")));
        market.borrow(&mut user, 1, u(12_000_000_000), now + 1).unwrap();
        let hf = market.account_data(&user, now + 1).unwrap().health_factor;
        // 20,000 * 0.825 / 12,000 = 1.375
        assert_eq!(hf, u(1_375_000_000_000_000_000));
        let debt_later = market.reserves[1].total_debt(now + 1 + SECONDS_PER_YEAR).unwrap();
        assert!(debt_later > u(12_000_000_000));
        assert_eq!(market.withdraw(&mut user, 0, None, now + 2), Err(AaveError("35")));
        let paid = market.repay(&mut user, 1, None, now + 1000).unwrap();
        assert!(paid > u(12_000_000_000));
        assert!(user[1].scaled_debt.is_zero());
        let back = market.withdraw(&mut user, 0, None, now + 1001).unwrap();
        assert_eq!(back, u(10) * WAD);
        // The lender earned the interest minus the reserve factor.
        let lent = ray_mul(lender[1].scaled_supply, market.reserves[1].normalized_income(now + 1001).unwrap()).unwrap();
        assert!(lent > u(1_000_000_000_000));
    }

    #[test]
    fn a_crash_lets_a_liquidator_take_collateral_with_the_bonus() {
        let (mut market, now) = usdc_weth();
        let mut lender = vec![Holding::default(); 2];
        let mut user = vec![Holding::default(); 2];
        market.supply(&mut lender, 1, u(1_000_000_000_000), now).unwrap();
        market.supply(&mut user, 0, u(10) * WAD, now).unwrap();
        market.borrow(&mut user, 1, u(15_000_000_000), now).unwrap();
        assert_eq!(market.liquidate(&mut user, 0, 1, U256::MAX, now), Err(AaveError("45")));
        market.prices[0] = u(180_000_000_000); // HF = 18,000 * 0.825 / 15,000 = 0.99
        let l = market.liquidate(&mut user, 0, 1, U256::MAX, now).unwrap();
        assert_eq!(l.debt_repaid, u(7_500_000_000)); // close factor 50 %
        // 7,500 USDC at 1,800 = 4.1666.. WETH, plus 5 % bonus = 4.375 WETH, of which 10 % of the bonus is the fee.
        // floor(7,500e6 * 1e8 * 1e18 / (1,800e8 * 1e6)) = 4.166..e18, times 1.05 rounded half up.
        let seized = l.collateral_to_liquidator + l.protocol_fee;
        assert_eq!(seized, u(4_374_999_999_999_999_999));
        assert!(l.protocol_fee > U256::ZERO && l.protocol_fee < u(21_000_000_000_000_000));
        let left = market.reserves[0].total_supply(now).unwrap();
        assert!(left < u(6) * WAD);
        let data = market.account_data(&user, now).unwrap();
        assert!(data.health_factor > WAD, "one liquidation restores health here");
    }
}
