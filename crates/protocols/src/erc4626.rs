//! ERC-4626 share accounting as OpenZeppelin 5's `ERC4626` does it: conversions through virtual shares
//! (`10 ** decimalsOffset`) and one virtual asset, with the standard's rounding directions (a deposit or a redeem
//! rounds against the caller: down; a mint or a withdraw rounds up). Morpho vaults, Euler v2, Fluid fTokens, Yearn v3
//! and Aave's static aToken wrappers all expose this interface; most of them use this same virtual-offset form.

use crate::uniswap_v3::math::{mul_div, mul_div_up};
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which way a conversion rounds (`Math.Rounding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Toward zero.
    Floor,
    /// Away from zero.
    Ceil,
}

/// A vault operation the contract would revert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultError {
    /// `ERC4626ExceededMaxDeposit` / `ERC4626ExceededMaxMint` / `ERC4626ExceededMaxWithdraw` /
    /// `ERC4626ExceededMaxRedeem`: the amount is over the limit.
    ExceededMax {
        /// The operation.
        op: &'static str,
        /// What was asked.
        amount: U256,
        /// The limit.
        max: U256,
    },
    /// Arithmetic overflow or a zero denominator (the contract panics).
    Overflow,
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaultError::ExceededMax { op, amount, max } => {
                write!(f, "vault refuses to {op} {amount}: the maximum is {max}")
            }
            VaultError::Overflow => write!(f, "vault arithmetic overflows"),
        }
    }
}

impl std::error::Error for VaultError {}

/// A vault's totals. `deposit_cap` models a curator's supply cap (`maxDeposit` returns what is left under it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vault {
    /// Assets the vault manages (`totalAssets`).
    pub total_assets: U256,
    /// Shares outstanding (`totalSupply`).
    pub total_supply: U256,
    /// `_decimalsOffset()`: share decimals above the asset's (0 in OpenZeppelin's default).
    pub decimals_offset: u8,
    /// Most assets the vault accepts in total; `None` for no cap (`maxDeposit` = `type(uint256).max`).
    pub deposit_cap: Option<U256>,
}

impl Vault {
    /// An empty vault.
    pub fn new(decimals_offset: u8, deposit_cap: Option<U256>) -> Self {
        Vault { total_assets: U256::ZERO, total_supply: U256::ZERO, decimals_offset, deposit_cap }
    }

    fn virtual_shares(&self) -> Option<U256> {
        self.total_supply.checked_add(U256::from(10u8).checked_pow(U256::from(self.decimals_offset))?)
    }

    fn round(a: U256, b: U256, d: U256, r: Rounding) -> Option<U256> {
        match r {
            Rounding::Floor => mul_div(a, b, d),
            Rounding::Ceil => mul_div_up(a, b, d),
        }
    }

    // mirrors ERC4626._convertToShares
    /// Shares worth `assets`.
    pub fn to_shares(&self, assets: U256, r: Rounding) -> Option<U256> {
        Self::round(assets, self.virtual_shares()?, self.total_assets.checked_add(U256::from(1u8))?, r)
    }

    // mirrors ERC4626._convertToAssets
    /// Assets worth `shares`.
    pub fn to_assets(&self, shares: U256, r: Rounding) -> Option<U256> {
        Self::round(shares, self.total_assets.checked_add(U256::from(1u8))?, self.virtual_shares()?, r)
    }

    /// `previewDeposit`: shares a deposit of `assets` mints (rounded down).
    pub fn preview_deposit(&self, assets: U256) -> Option<U256> {
        self.to_shares(assets, Rounding::Floor)
    }

    /// `previewMint`: assets that minting `shares` costs (rounded up).
    pub fn preview_mint(&self, shares: U256) -> Option<U256> {
        self.to_assets(shares, Rounding::Ceil)
    }

    /// `previewWithdraw`: shares burnt to withdraw `assets` (rounded up).
    pub fn preview_withdraw(&self, assets: U256) -> Option<U256> {
        self.to_shares(assets, Rounding::Ceil)
    }

    /// `previewRedeem`: assets that redeeming `shares` pays (rounded down).
    pub fn preview_redeem(&self, shares: U256) -> Option<U256> {
        self.to_assets(shares, Rounding::Floor)
    }

    /// `maxDeposit`: what is left under the cap.
    pub fn max_deposit(&self) -> U256 {
        self.deposit_cap.map_or(U256::MAX, |cap| cap.saturating_sub(self.total_assets))
    }

    /// `maxMint`: shares the remaining cap buys (all of them without a cap).
    pub fn max_mint(&self) -> U256 {
        match self.deposit_cap {
            None => U256::MAX,
            Some(_) => self.to_shares(self.max_deposit(), Rounding::Floor).unwrap_or(U256::MAX),
        }
    }

    /// `maxWithdraw(owner)` for an owner of `shares`.
    pub fn max_withdraw(&self, shares: U256) -> Option<U256> {
        self.to_assets(shares, Rounding::Floor)
    }

    /// Deposits `assets`; returns the shares minted.
    ///
    /// # Errors
    /// Over [`Vault::max_deposit`], or overflow.
    pub fn deposit(&mut self, assets: U256) -> Result<U256, VaultError> {
        let max = self.max_deposit();
        if assets > max {
            return Err(VaultError::ExceededMax { op: "deposit", amount: assets, max });
        }
        let shares = self.preview_deposit(assets).ok_or(VaultError::Overflow)?;
        self.apply(assets, shares, true)?;
        Ok(shares)
    }

    /// Mints exactly `shares`; returns the assets taken.
    ///
    /// # Errors
    /// Over [`Vault::max_mint`], or overflow.
    pub fn mint(&mut self, shares: U256) -> Result<U256, VaultError> {
        let max = self.max_mint();
        if shares > max {
            return Err(VaultError::ExceededMax { op: "mint", amount: shares, max });
        }
        let assets = self.preview_mint(shares).ok_or(VaultError::Overflow)?;
        self.apply(assets, shares, true)?;
        Ok(assets)
    }

    /// Withdraws exactly `assets` from an owner of `owner_shares`; returns the shares burnt.
    ///
    /// # Errors
    /// Over what the owner's shares are worth, or overflow.
    pub fn withdraw(&mut self, assets: U256, owner_shares: U256) -> Result<U256, VaultError> {
        let max = self.max_withdraw(owner_shares).ok_or(VaultError::Overflow)?;
        if assets > max {
            return Err(VaultError::ExceededMax { op: "withdraw", amount: assets, max });
        }
        let shares = self.preview_withdraw(assets).ok_or(VaultError::Overflow)?;
        self.apply(assets, shares, false)?;
        Ok(shares)
    }

    /// Redeems `shares` of an owner of `owner_shares`; returns the assets paid.
    ///
    /// # Errors
    /// Over the owner's shares, or overflow.
    pub fn redeem(&mut self, shares: U256, owner_shares: U256) -> Result<U256, VaultError> {
        if shares > owner_shares {
            return Err(VaultError::ExceededMax { op: "redeem", amount: shares, max: owner_shares });
        }
        let assets = self.preview_redeem(shares).ok_or(VaultError::Overflow)?;
        self.apply(assets, shares, false)?;
        Ok(assets)
    }

    fn apply(&mut self, assets: U256, shares: U256, inflow: bool) -> Result<(), VaultError> {
        if inflow {
            self.total_assets = self.total_assets.checked_add(assets).ok_or(VaultError::Overflow)?;
            self.total_supply = self.total_supply.checked_add(shares).ok_or(VaultError::Overflow)?;
        } else {
            self.total_assets = self.total_assets.checked_sub(assets).ok_or(VaultError::Overflow)?;
            self.total_supply = self.total_supply.checked_sub(shares).ok_or(VaultError::Overflow)?;
        }
        Ok(())
    }

    /// The vault's strategies earned (or, negative, lost) assets: the share price moves, shares do not.
    pub fn accrue(&mut self, gain: i128) {
        let g = U256::from(gain.unsigned_abs());
        self.total_assets =
            if gain >= 0 { self.total_assets.saturating_add(g) } else { self.total_assets.saturating_sub(g) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(x: u64) -> U256 {
        U256::from(x)
    }

    #[test]
    fn rounding_never_favours_the_caller() {
        let mut v = Vault::new(0, None);
        v.deposit(u(1_000_000)).unwrap();
        v.accrue(333_333);
        for a in [1u64, 7, 999, 123_457] {
            let shares = v.preview_deposit(u(a)).unwrap();
            assert!(v.preview_redeem(shares).unwrap() <= u(a));
            let cost = v.preview_mint(shares).unwrap();
            assert!(cost <= u(a) && v.preview_withdraw(cost).unwrap() >= shares);
        }
    }

    #[test]
    fn the_virtual_offset_blunts_a_donation_attack() {
        // An attacker deposits 1 wei, donates 1e6 to the vault: with offset 6 a victim's 1e6 still mints shares.
        let mut v = Vault::new(6, None);
        let attacker = v.deposit(u(1)).unwrap();
        v.accrue(1_000_000);
        let victim = v.deposit(u(1_000_000)).unwrap();
        assert!(!victim.is_zero());
        let back = v.preview_redeem(victim).unwrap();
        assert!(back > u(999_000), "victim keeps almost all: {back}");
        assert!(v.preview_redeem(attacker).unwrap() < u(1_000_000));
    }

    #[test]
    fn caps_bound_deposits() {
        let mut v = Vault::new(0, Some(u(100)));
        v.deposit(u(60)).unwrap();
        assert_eq!(v.max_deposit(), u(40));
        assert!(matches!(v.deposit(u(41)), Err(VaultError::ExceededMax { op: "deposit", .. })));
        assert!(matches!(v.redeem(u(61), u(60)), Err(VaultError::ExceededMax { op: "redeem", .. })));
    }
}
