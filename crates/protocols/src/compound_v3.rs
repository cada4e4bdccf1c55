//! Compound v3 (Comet) base-asset accounting in the contract's integer arithmetic: kinked per-second supply and
//! borrow rate curves (`getSupplyRate`, `getBorrowRate`), utilisation from the present values, indexes accrued per
//! second (`accruedInterestIndices`), and principal <-> present value with Comet's rounding (supply rounds down,
//! borrow rounds up).
//!
//! Comet's bytecode is not published on any package registry this project can install from, so this model is checked
//! against hand-computed cases, not differentially.

use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

/// 1e18: the scale of factors (utilisation, kinks, per-second rates).
pub const FACTOR_SCALE: u64 = 1_000_000_000_000_000_000;
/// 1e15: the scale of the base supply and borrow indexes.
pub const BASE_INDEX_SCALE: u64 = 1_000_000_000_000_000;
/// Comet's year, 365 days.
pub const SECONDS_PER_YEAR: u64 = 31_536_000;

/// One side's rate curve, per second, in factor units (1e18 = 100 % a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateCurve {
    /// Utilisation where the slope changes.
    pub kink: u64,
    /// Rate at zero utilisation.
    pub per_second_base: u64,
    /// Slope below the kink.
    pub per_second_slope_low: u64,
    /// Slope above the kink.
    pub per_second_slope_high: u64,
}

fn mul_factor(n: u128, factor: u128) -> u128 {
    // mirrors CometMath-free `mulFactor`: n * factor / FACTOR_SCALE (checked in 0.8: these fit in u128 for
    // 64-bit operands)
    n * factor / u128::from(FACTOR_SCALE)
}

impl RateCurve {
    /// From per-year configuration values as the constructor divides them (`perYear / SECONDS_PER_YEAR`).
    pub fn from_per_year(kink: u64, base: u64, slope_low: u64, slope_high: u64) -> Self {
        RateCurve {
            kink,
            per_second_base: base / SECONDS_PER_YEAR,
            per_second_slope_low: slope_low / SECONDS_PER_YEAR,
            per_second_slope_high: slope_high / SECONDS_PER_YEAR,
        }
    }

    /// From fractions a year (0.8 kink, 0.04 slope...).
    pub fn from_fractions(kink: f64, base: f64, slope_low: f64, slope_high: f64) -> Self {
        let f = |x: f64| (x * 1e18).round().max(0.0) as u64;
        Self::from_per_year(f(kink), f(base), f(slope_low), f(slope_high))
    }

    // mirrors Comet.getSupplyRate / getBorrowRate (safe64 on the result)
    /// The per-second rate at `utilization` (factor units). `None` when it does not fit 64 bits (the contract
    /// reverts).
    pub fn rate(&self, utilization: u128) -> Option<u64> {
        let (kink, base) = (u128::from(self.kink), u128::from(self.per_second_base));
        let r = if utilization <= kink {
            base + mul_factor(u128::from(self.per_second_slope_low), utilization)
        } else {
            base + mul_factor(u128::from(self.per_second_slope_low), kink)
                + mul_factor(u128::from(self.per_second_slope_high), utilization - kink)
        };
        u64::try_from(r).ok()
    }
}

/// A Comet's base-asset state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comet {
    /// Supply curve.
    pub supply: RateCurve,
    /// Borrow curve.
    pub borrow: RateCurve,
    /// Supply index, [`BASE_INDEX_SCALE`] = 1.
    pub base_supply_index: u64,
    /// Borrow index.
    pub base_borrow_index: u64,
    /// Sum of suppliers' principals.
    pub total_supply_base: u128,
    /// Sum of borrowers' principals.
    pub total_borrow_base: u128,
    /// Last accrual, unix seconds.
    pub last_accrual: u64,
}

/// `presentValueSupply`: principal times index, rounded down.
pub fn present_value_supply(index: u64, principal: u128) -> U256 {
    U256::from(principal) * U256::from(index) / U256::from(BASE_INDEX_SCALE)
}

/// `presentValueBorrow`.
pub fn present_value_borrow(index: u64, principal: u128) -> U256 {
    U256::from(principal) * U256::from(index) / U256::from(BASE_INDEX_SCALE)
}

/// `principalValueSupply`: present value over index, rounded down.
pub fn principal_value_supply(index: u64, present: U256) -> Option<u128> {
    u128::try_from(present.checked_mul(U256::from(BASE_INDEX_SCALE))? / U256::from(index)).ok()
}

/// `principalValueBorrow`: present value over index, rounded up.
pub fn principal_value_borrow(index: u64, present: U256) -> Option<u128> {
    let i = U256::from(index);
    u128::try_from((present.checked_mul(U256::from(BASE_INDEX_SCALE))? + i - U256::from(1u8)) / i).ok()
}

/// An index grown by a per-second rate over `elapsed` seconds, as `accruedInterestIndices` does
/// (`index + index * rate * elapsed / 1e18`); `None` when it leaves 64 bits.
pub fn grow_index(index: u64, rate_per_sec: u64, elapsed: u64) -> Option<u64> {
    let step = U256::from(index) * U256::from(rate_per_sec) * U256::from(elapsed) / U256::from(FACTOR_SCALE);
    index.checked_add(u64::try_from(step).ok()?)
}

/// The per-second rate (factor units) that compounds to `apy` over a year.
pub fn rate_of_apy(apy: f64) -> u64 {
    (apy.max(0.0).ln_1p() / SECONDS_PER_YEAR as f64 * 1e18) as u64
}

impl Comet {
    /// A market just initialised at `now` (`initializeStorage`: both indexes one).
    pub fn new(supply: RateCurve, borrow: RateCurve, now: u64) -> Self {
        Comet {
            supply,
            borrow,
            base_supply_index: BASE_INDEX_SCALE,
            base_borrow_index: BASE_INDEX_SCALE,
            total_supply_base: 0,
            total_borrow_base: 0,
            last_accrual: now,
        }
    }

    /// `getUtilization`: borrows over supply at the stored indexes, factor units.
    pub fn utilization(&self) -> u128 {
        let supply = present_value_supply(self.base_supply_index, self.total_supply_base);
        let borrow = present_value_borrow(self.base_borrow_index, self.total_borrow_base);
        if supply.is_zero() {
            return 0;
        }
        u128::try_from(borrow * U256::from(FACTOR_SCALE) / supply).unwrap_or(u128::MAX)
    }

    // mirrors Comet.accruedInterestIndices, applied as accrueInternal does
    /// Accrues both indexes to `now`.
    ///
    /// # Errors
    /// `None` when an index or rate leaves 64 bits (the contract reverts), or `now` is before the last accrual.
    pub fn accrue(&mut self, now: u64) -> Option<()> {
        let elapsed = now.checked_sub(self.last_accrual)?;
        if elapsed > 0 {
            let u = self.utilization();
            let supply_rate = self.supply.rate(u)?;
            let borrow_rate = self.borrow.rate(u)?;
            self.base_supply_index = grow_index(self.base_supply_index, supply_rate, elapsed)?;
            self.base_borrow_index = grow_index(self.base_borrow_index, borrow_rate, elapsed)?;
            self.last_accrual = now;
        }
        Some(())
    }

    /// Supplies `amount` for a supplier with `principal` (no borrow position); returns the new principal.
    pub fn supply(&mut self, principal: u128, amount: U256, now: u64) -> Option<u128> {
        self.accrue(now)?;
        let balance = present_value_supply(self.base_supply_index, principal).checked_add(amount)?;
        let new_principal = principal_value_supply(self.base_supply_index, balance)?;
        self.total_supply_base = self.total_supply_base.checked_add(new_principal - principal)?;
        Some(new_principal)
    }

    /// Withdraws `amount` (`None`: everything) of a supplier's balance; returns `(new principal, amount paid)`.
    /// Withdrawing into a borrow is not modelled (`None`).
    pub fn withdraw(&mut self, principal: u128, amount: Option<U256>, now: u64) -> Option<(u128, U256)> {
        self.accrue(now)?;
        let balance = present_value_supply(self.base_supply_index, principal);
        let amount = amount.unwrap_or(balance);
        let left = balance.checked_sub(amount)?;
        let new_principal = principal_value_supply(self.base_supply_index, left)?;
        self.total_supply_base = self.total_supply_base.checked_sub(principal - new_principal)?;
        Some((new_principal, amount))
    }

    /// Adds a borrower's principal for `amount` borrowed (collateral checks are the caller's).
    pub fn borrow(&mut self, principal: u128, amount: U256, now: u64) -> Option<u128> {
        self.accrue(now)?;
        let owed = present_value_borrow(self.base_borrow_index, principal).checked_add(amount)?;
        let new_principal = principal_value_borrow(self.base_borrow_index, owed)?;
        self.total_borrow_base = self.total_borrow_base.checked_add(new_principal - principal)?;
        Some(new_principal)
    }

    /// The supply APR at the current utilisation, as a fraction (per-second rate times a year, Comet's convention).
    pub fn supply_apr(&self) -> f64 {
        self.supply.rate(self.utilization()).map_or(f64::NAN, |r| r as f64 * SECONDS_PER_YEAR as f64 / 1e18)
    }

    /// The borrow APR at the current utilisation.
    pub fn borrow_apr(&self) -> f64 {
        self.borrow.rate(self.utilization()).map_or(f64::NAN, |r| r as f64 * SECONDS_PER_YEAR as f64 / 1e18)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_the_kink_in_per_second_units() {
        let c = RateCurve::from_per_year(800_000_000_000_000_000, 0, 40_000_000_000_000_000, 3_000_000_000_000_000_000);
        // 0.04 / year -> 1_268_391_679 per second (integer division, as the constructor does).
        assert_eq!(c.per_second_slope_low, 1_268_391_679);
        assert_eq!(c.rate(0), Some(0));
        assert_eq!(c.rate(400_000_000_000_000_000), Some(1_268_391_679 * 4 / 10));
        let above = c.rate(900_000_000_000_000_000).unwrap();
        let expect = 1_268_391_679u64 * 8 / 10 + c.per_second_slope_high / 10;
        assert_eq!(above, expect);
    }

    #[test]
    fn suppliers_earn_and_rounding_favours_the_protocol() {
        let now = 1_700_000_000;
        let mut comet = Comet::new(
            RateCurve::from_fractions(0.9, 0.0, 0.05, 2.0),
            RateCurve::from_fractions(0.9, 0.01, 0.06, 2.5),
            now,
        );
        let lender = comet.supply(0, U256::from(1_000_000_000_000u64), now).unwrap();
        let debt = comet.borrow(0, U256::from(800_000_000_000u64), now).unwrap();
        assert_eq!(comet.utilization(), 800_000_000_000_000_000);
        comet.accrue(now + SECONDS_PER_YEAR).unwrap();
        let owed = present_value_borrow(comet.base_borrow_index, debt);
        let held = present_value_supply(comet.base_supply_index, lender);
        // supply APR 0.05 * 0.8 = 4 % simple over the year; borrow 1 % + 0.06 * 0.8 = 5.8 %.
        assert!((f64::from(held) / 1e12 - 1.04).abs() < 1e-6, "{held}");
        assert!((f64::from(owed) / 8e11 - 1.058).abs() < 1e-6, "{owed}");
        assert!(principal_value_borrow(comet.base_borrow_index, owed).unwrap() >= debt);
        let (left, paid) = comet.withdraw(lender, None, now + SECONDS_PER_YEAR).unwrap();
        assert_eq!(left, 0);
        assert_eq!(paid, held);
    }
}
