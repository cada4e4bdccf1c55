//! The accounting of Sextant's strategy vault (`contracts/src/SextantVault.sol`), step for step: ERC-7540 requests
//! held until the curator settles an epoch at a posted NAV; fees charged first at that settlement (management by
//! time, performance above the high-water mark, as minted shares); every pending deposit and redemption of the epoch
//! priced at one price with `10 ** 6` virtual shares and one virtual asset; claims at their epoch's price, rounding
//! for the vault. The property test drives the contract and this model with the same operations and compares them
//! after each one.

use crate::uniswap_v3::math::{mul_div, mul_div_up};
use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Virtual shares (`10 ** DECIMALS_OFFSET`).
pub const VIRTUAL_SHARES: u64 = 1_000_000;
/// Prices are assets per share scaled by this.
pub const PRICE_SCALE: u64 = 1_000_000_000_000_000_000;
/// The fee year, seconds.
pub const YEAR_SECS: u64 = 365 * 86_400;
/// Highest management fee, basis points a year.
pub const MAX_MANAGEMENT_FEE_BPS: u64 = 500;
/// Highest performance fee, basis points of the gain.
pub const MAX_PERFORMANCE_FEE_BPS: u64 = 5_000;

/// Why the vault refuses an operation (the contract's custom errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VaultError {
    /// `Unauthorized()`.
    Unauthorized,
    /// `ZeroAmount()`.
    ZeroAmount,
    /// `IsPaused()`.
    IsPaused,
    /// `IsFrozen()`.
    IsFrozen,
    /// `CapExceeded(cap, wanted)`.
    CapExceeded,
    /// `ExceedsClaimable(asked, claimable)`.
    ExceedsClaimable,
    /// `FeeTooHigh()`.
    FeeTooHigh,
    /// `SafeCannotPay(needed, available)`: the Safe's balance or allowance is short of the epoch's net redemptions.
    SafeCannotPay,
    /// `InvalidAddress()`: a zero controller, a zero or vault receiver.
    InvalidAddress,
    /// An ERC-20 failure (balance or allowance too small), or arithmetic the contract would panic on.
    Token,
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            VaultError::Unauthorized => "not allowed for this caller",
            VaultError::ZeroAmount => "amount is zero",
            VaultError::IsPaused => "deposits are paused",
            VaultError::IsFrozen => "settlement is frozen",
            VaultError::CapExceeded => "deposit cap exceeded",
            VaultError::ExceedsClaimable => "more than is claimable",
            VaultError::FeeTooHigh => "fee above the maximum",
            VaultError::SafeCannotPay => "the Safe cannot pay the redemptions now",
            VaultError::InvalidAddress => "invalid address (zero, or the vault itself)",
            VaultError::Token => "token balance or allowance too small",
        };
        f.write_str(s)
    }
}

impl std::error::Error for VaultError {}

type R<T> = Result<T, VaultError>;

fn md(a: U256, b: U256, d: U256) -> R<U256> {
    mul_div(a, b, d).ok_or(VaultError::Token)
}

fn md_up(a: U256, b: U256, d: U256) -> R<U256> {
    mul_div_up(a, b, d).ok_or(VaultError::Token)
}

fn sub(a: U256, b: U256) -> R<U256> {
    a.checked_sub(b).ok_or(VaultError::Token)
}

/// One epoch's settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Settlement {
    /// Assets deposited in the epoch.
    pub deposit_assets: U256,
    /// Shares they were priced at.
    pub deposit_shares: U256,
    /// Shares redeemed in the epoch.
    pub redeem_shares: U256,
    /// Assets they were priced at.
    pub redeem_assets: U256,
}

/// A pending request: its epoch and amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Request {
    /// The epoch it was made in.
    pub epoch: u64,
    /// Assets (deposit) or shares (redemption).
    pub amount: U256,
}

/// What a controller can claim: the assets paid and shares due (deposits), or shares given and assets due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Claim {
    /// Assets.
    pub assets: U256,
    /// Shares.
    pub shares: U256,
}

/// What a settlement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleReport {
    /// Fee shares minted.
    pub fee_shares: U256,
    /// The epoch's flows.
    pub settlement: Settlement,
    /// Assets moved to the Safe (positive) or taken from it (negative), as (to_safe, from_safe).
    pub to_safe: U256,
    /// Assets taken from the Safe.
    pub from_safe: U256,
}

/// The vault's whole state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultModel {
    /// The vault's own address (it holds shares for claims and in escrow).
    pub vault: Address,
    /// The Safe that manages the assets (it is given the shares of value no shareholder owns).
    pub safe: Address,
    /// Share balances.
    pub balances: BTreeMap<Address, U256>,
    /// Share allowances (owner, spender).
    pub allowances: BTreeMap<(Address, Address), U256>,
    /// Total shares.
    pub total_supply: U256,
    /// NAV after the last settlement's flows.
    pub total_assets: U256,
    /// Asset tokens the vault holds (pending deposits and reserved redemptions, plus any donation).
    pub asset_balance: U256,
    /// Owner.
    pub owner: Address,
    /// Curator (settles).
    pub curator: Address,
    /// Guardian (pauses, freezes).
    pub guardian: Address,
    /// Fee recipient.
    pub fee_recipient: Address,
    /// Management fee in force, bps a year.
    pub management_fee_bps: u64,
    /// Performance fee in force, bps of the gain.
    pub performance_fee_bps: u64,
    /// Rates taking effect at the next settlement.
    pub next_fees: (u64, u64),
    /// Deposit cap.
    pub deposit_cap: U256,
    /// Deposits paused.
    pub paused: bool,
    /// Settlement frozen.
    pub frozen: bool,
    /// High-water mark (price scaled by 1e18).
    pub high_water_mark: U256,
    /// Time of the last fee accrual.
    pub last_fee_accrual: u64,
    /// The open epoch.
    pub epoch: u64,
    /// Pending deposits of the open epoch.
    pub pending_deposit_assets: U256,
    /// Pending redemptions of the open epoch.
    pub pending_redeem_shares: U256,
    /// Assets set aside for redemption claims.
    pub reserved_assets: U256,
    /// Settlements by epoch.
    pub settlements: BTreeMap<u64, Settlement>,
    /// Deposit requests by controller.
    pub deposit_requests: BTreeMap<Address, Request>,
    /// Redemption requests by controller.
    pub redeem_requests: BTreeMap<Address, Request>,
    /// Claimable deposits by controller.
    pub claimable_deposits: BTreeMap<Address, Claim>,
    /// Claimable redemptions by controller.
    pub claimable_redeems: BTreeMap<Address, Claim>,
    /// Operators: (controller, operator).
    pub operators: BTreeMap<(Address, Address), bool>,
}

fn u(x: u64) -> U256 {
    U256::from(x)
}

impl VaultModel {
    /// A vault as its constructor leaves it, deployed at `now`.
    pub fn new(
        vault: Address,
        safe: Address,
        owner: Address,
        curator: Address,
        guardian: Address,
        fee_recipient: Address,
        now: u64,
    ) -> Self {
        let mut v = VaultModel {
            vault,
            safe,
            balances: BTreeMap::new(),
            allowances: BTreeMap::new(),
            total_supply: U256::ZERO,
            total_assets: U256::ZERO,
            asset_balance: U256::ZERO,
            owner,
            curator,
            guardian,
            fee_recipient,
            management_fee_bps: 0,
            performance_fee_bps: 0,
            next_fees: (0, 0),
            deposit_cap: U256::MAX,
            paused: false,
            frozen: false,
            high_water_mark: U256::ZERO,
            last_fee_accrual: now,
            epoch: 1,
            pending_deposit_assets: U256::ZERO,
            pending_redeem_shares: U256::ZERO,
            reserved_assets: U256::ZERO,
            settlements: BTreeMap::new(),
            deposit_requests: BTreeMap::new(),
            redeem_requests: BTreeMap::new(),
            claimable_deposits: BTreeMap::new(),
            claimable_redeems: BTreeMap::new(),
            operators: BTreeMap::new(),
        };
        v.high_water_mark = v.price(U256::ZERO, U256::ZERO).unwrap_or_default();
        v
    }

    fn price(&self, nav: U256, supply: U256) -> R<U256> {
        md(nav + u(1), u(PRICE_SCALE), supply + u(VIRTUAL_SHARES))
    }

    /// A share balance.
    pub fn balance_of(&self, a: Address) -> U256 {
        self.balances.get(&a).copied().unwrap_or_default()
    }

    fn transfer(&mut self, from: Address, to: Address, shares: U256) -> R<()> {
        let b = self.balance_of(from);
        if b < shares {
            return Err(VaultError::Token);
        }
        self.balances.insert(from, b - shares);
        *self.balances.entry(to).or_default() += shares;
        Ok(())
    }

    fn mint_to(&mut self, to: Address, shares: U256) {
        *self.balances.entry(to).or_default() += shares;
        self.total_supply += shares;
    }

    fn burn_from(&mut self, from: Address, shares: U256) -> R<()> {
        let b = self.balance_of(from);
        self.balances.insert(from, sub(b, shares)?);
        self.total_supply = sub(self.total_supply, shares)?;
        Ok(())
    }

    /// ERC-20 `transfer` of shares by `sender`.
    pub fn erc20_transfer(&mut self, sender: Address, to: Address, shares: U256) -> R<()> {
        if to == Address::ZERO {
            return Err(VaultError::Token);
        }
        self.transfer(sender, to, shares)
    }

    /// ERC-20 `approve`.
    pub fn approve(&mut self, owner: Address, spender: Address, shares: U256) {
        self.allowances.insert((owner, spender), shares);
    }

    /// `setOperator` by `controller`.
    pub fn set_operator(&mut self, controller: Address, operator: Address, approved: bool) {
        self.operators.insert((controller, operator), approved);
    }

    /// `isOperator`.
    pub fn is_operator(&self, controller: Address, operator: Address) -> bool {
        self.operators.get(&(controller, operator)).copied().unwrap_or(false)
    }

    fn receiver_ok(&self, receiver: Address) -> R<()> {
        if receiver == Address::ZERO || receiver == self.vault {
            return Err(VaultError::InvalidAddress);
        }
        Ok(())
    }

    fn authorized(&self, sender: Address, controller: Address) -> R<()> {
        if sender != controller && !self.is_operator(controller, sender) {
            return Err(VaultError::Unauthorized);
        }
        Ok(())
    }

    /// `requestDeposit(assets, controller, owner)` sent by `sender`; `owner_assets` is what the owner holds and
    /// `owner_allowance` what it allows the vault (a failing token transfer reverts).
    #[allow(clippy::too_many_arguments)]
    pub fn request_deposit(
        &mut self,
        sender: Address,
        assets: U256,
        controller: Address,
        owner: Address,
        owner_assets: U256,
        owner_allowance: U256,
    ) -> R<()> {
        if self.paused {
            return Err(VaultError::IsPaused);
        }
        if assets.is_zero() {
            return Err(VaultError::ZeroAmount);
        }
        if controller == Address::ZERO {
            return Err(VaultError::InvalidAddress);
        }
        if sender != owner && !self.is_operator(owner, sender) {
            return Err(VaultError::Unauthorized);
        }
        if owner_assets < assets || owner_allowance < assets {
            return Err(VaultError::Token);
        }
        let wanted = self.total_assets + self.pending_deposit_assets + assets;
        if wanted > self.deposit_cap {
            return Err(VaultError::CapExceeded);
        }
        self.settle_requests(controller)?;
        let epoch = self.epoch;
        let r = self.deposit_requests.entry(controller).or_default();
        r.epoch = epoch;
        r.amount += assets;
        self.pending_deposit_assets += assets;
        self.asset_balance += assets;
        Ok(())
    }

    /// `requestRedeem(shares, controller, owner)` sent by `sender`.
    pub fn request_redeem(&mut self, sender: Address, shares: U256, controller: Address, owner: Address) -> R<()> {
        if shares.is_zero() {
            return Err(VaultError::ZeroAmount);
        }
        if controller == Address::ZERO {
            return Err(VaultError::InvalidAddress);
        }
        let saved = self.clone();
        let result = (|| {
            if sender != owner && !self.is_operator(owner, sender) {
                let a = self.allowances.get(&(owner, sender)).copied().unwrap_or_default();
                if a != U256::MAX {
                    self.allowances.insert((owner, sender), a.checked_sub(shares).ok_or(VaultError::Token)?);
                }
            }
            self.transfer(owner, self.vault, shares)?;
            self.settle_requests(controller)?;
            let epoch = self.epoch;
            let r = self.redeem_requests.entry(controller).or_default();
            r.epoch = epoch;
            r.amount += shares;
            self.pending_redeem_shares += shares;
            Ok(())
        })();
        if result.is_err() {
            *self = saved;
        }
        result
    }

    /// `pendingDepositRequest(0, controller)`.
    pub fn pending_deposit(&self, controller: Address) -> U256 {
        self.deposit_requests.get(&controller).filter(|r| r.epoch == self.epoch).map_or(U256::ZERO, |r| r.amount)
    }

    /// `pendingRedeemRequest(0, controller)`.
    pub fn pending_redeem(&self, controller: Address) -> U256 {
        self.redeem_requests.get(&controller).filter(|r| r.epoch == self.epoch).map_or(U256::ZERO, |r| r.amount)
    }

    /// What `controller` can claim of its deposits (`maxDeposit` is `.assets`, `maxMint` `.shares`).
    pub fn claimable_deposit(&self, controller: Address) -> R<Claim> {
        let mut c = self.claimable_deposits.get(&controller).copied().unwrap_or_default();
        if let Some(d) = self.deposit_requests.get(&controller)
            && !d.amount.is_zero()
            && d.epoch < self.epoch
        {
            let s = self.settlements.get(&d.epoch).copied().unwrap_or_default();
            c.assets += d.amount;
            c.shares += md(d.amount, s.deposit_shares, s.deposit_assets)?;
        }
        Ok(c)
    }

    /// What `controller` can claim of its redemptions (`maxRedeem` is `.shares`, `maxWithdraw` `.assets`).
    pub fn claimable_redeem(&self, controller: Address) -> R<Claim> {
        let mut c = self.claimable_redeems.get(&controller).copied().unwrap_or_default();
        if let Some(r) = self.redeem_requests.get(&controller)
            && !r.amount.is_zero()
            && r.epoch < self.epoch
        {
            let s = self.settlements.get(&r.epoch).copied().unwrap_or_default();
            c.shares += r.amount;
            c.assets += md(r.amount, s.redeem_assets, s.redeem_shares)?;
        }
        Ok(c)
    }

    fn settle_requests(&mut self, controller: Address) -> R<()> {
        if self.deposit_requests.get(&controller).is_some_and(|d| !d.amount.is_zero() && d.epoch < self.epoch) {
            let c = self.claimable_deposit(controller)?;
            self.claimable_deposits.insert(controller, c);
            self.deposit_requests.remove(&controller);
        }
        if self.redeem_requests.get(&controller).is_some_and(|r| !r.amount.is_zero() && r.epoch < self.epoch) {
            let c = self.claimable_redeem(controller)?;
            self.claimable_redeems.insert(controller, c);
            self.redeem_requests.remove(&controller);
        }
        Ok(())
    }

    fn claim<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        let saved = self.clone();
        let r = f(self);
        if r.is_err() {
            *self = saved;
        }
        r
    }

    /// `deposit(assets, receiver, controller)`: claims shares for `assets` of settled deposits.
    pub fn deposit(&mut self, sender: Address, assets: U256, receiver: Address, controller: Address) -> R<U256> {
        self.claim(|v| {
            v.receiver_ok(receiver)?;
            v.authorized(sender, controller)?;
            v.settle_requests(controller)?;
            let c = v.claimable_deposits.get(&controller).copied().unwrap_or_default();
            if assets.is_zero() {
                return Err(VaultError::ZeroAmount);
            }
            if assets > c.assets {
                return Err(VaultError::ExceedsClaimable);
            }
            let shares = if assets == c.assets { c.shares } else { md(assets, c.shares, c.assets)? };
            v.claimable_deposits
                .insert(controller, Claim { assets: c.assets - assets, shares: sub(c.shares, shares)? });
            let vault = v.vault;
            v.transfer(vault, receiver, shares)?;
            Ok(shares)
        })
    }

    /// `mint(shares, receiver, controller)`: claims exactly `shares`, for the assets they cost (rounded up).
    pub fn mint(&mut self, sender: Address, shares: U256, receiver: Address, controller: Address) -> R<U256> {
        self.claim(|v| {
            v.receiver_ok(receiver)?;
            v.authorized(sender, controller)?;
            v.settle_requests(controller)?;
            let c = v.claimable_deposits.get(&controller).copied().unwrap_or_default();
            if shares.is_zero() {
                return Err(VaultError::ZeroAmount);
            }
            if shares > c.shares {
                return Err(VaultError::ExceedsClaimable);
            }
            let assets = if shares == c.shares { c.assets } else { md_up(shares, c.assets, c.shares)? };
            v.claimable_deposits
                .insert(controller, Claim { assets: sub(c.assets, assets)?, shares: c.shares - shares });
            let vault = v.vault;
            v.transfer(vault, receiver, shares)?;
            Ok(assets)
        })
    }

    /// `redeem(shares, receiver, controller)`: claims the assets of `shares` of settled redemptions.
    pub fn redeem(&mut self, sender: Address, shares: U256, receiver: Address, controller: Address) -> R<U256> {
        self.claim(|v| {
            v.receiver_ok(receiver)?;
            v.authorized(sender, controller)?;
            v.settle_requests(controller)?;
            let c = v.claimable_redeems.get(&controller).copied().unwrap_or_default();
            if shares.is_zero() {
                return Err(VaultError::ZeroAmount);
            }
            if shares > c.shares {
                return Err(VaultError::ExceedsClaimable);
            }
            let assets = if shares == c.shares { c.assets } else { md(shares, c.assets, c.shares)? };
            v.claimable_redeems.insert(controller, Claim { assets: sub(c.assets, assets)?, shares: c.shares - shares });
            v.reserved_assets = sub(v.reserved_assets, assets)?;
            v.asset_balance = sub(v.asset_balance, assets)?;
            Ok(assets)
        })
    }

    /// `withdraw(assets, receiver, controller)`: claims exactly `assets`, for the shares they cost (rounded up).
    pub fn withdraw(&mut self, sender: Address, assets: U256, receiver: Address, controller: Address) -> R<U256> {
        self.claim(|v| {
            v.receiver_ok(receiver)?;
            v.authorized(sender, controller)?;
            v.settle_requests(controller)?;
            let c = v.claimable_redeems.get(&controller).copied().unwrap_or_default();
            if assets.is_zero() {
                return Err(VaultError::ZeroAmount);
            }
            if assets > c.assets {
                return Err(VaultError::ExceedsClaimable);
            }
            let shares = if assets == c.assets { c.shares } else { md_up(assets, c.shares, c.assets)? };
            let left = Claim { assets: c.assets - assets, shares: sub(c.shares, shares)? };
            // a claim whose shares are used up has nothing left: its dust assets stay reserved
            let left = if left.shares.is_zero() { Claim::default() } else { left };
            v.claimable_redeems.insert(controller, left);
            v.reserved_assets = sub(v.reserved_assets, assets)?;
            v.asset_balance = sub(v.asset_balance, assets)?;
            Ok(shares)
        })
    }

    fn charge_fees(&mut self, nav: U256, now: u64) -> R<U256> {
        let supply = self.total_supply + u(VIRTUAL_SHARES);
        let elapsed = now.checked_sub(self.last_fee_accrual).ok_or(VaultError::Token)?;
        self.last_fee_accrual = now;
        let management = nav.min(md(nav, u(self.management_fee_bps) * u(elapsed), u(10_000) * u(YEAR_SECS))?);
        let price = md(nav - management + u(1), u(PRICE_SCALE), supply)?;
        let mut performance = U256::ZERO;
        if price > self.high_water_mark {
            let gain = md(price - self.high_water_mark, supply, u(PRICE_SCALE))?;
            performance = md(gain, u(self.performance_fee_bps), u(10_000))?;
        }
        let fee_assets = management + performance;
        let mut fee_shares = U256::ZERO;
        if !fee_assets.is_zero() {
            fee_shares = md(fee_assets, supply, sub(nav, fee_assets)? + u(1))?;
            if !fee_shares.is_zero() {
                let to = self.fee_recipient;
                self.mint_to(to, fee_shares);
            }
        }
        let after = self.price(nav, self.total_supply)?;
        if after > self.high_water_mark {
            self.high_water_mark = after;
        }
        Ok(fee_shares)
    }

    /// `settle(nav)` by `sender` at time `now`; `safe_assets` and `safe_allowance` are what the Safe holds and
    /// allows the vault (a redemption larger than the deposits pulls the difference from it).
    pub fn settle(
        &mut self,
        sender: Address,
        nav: U256,
        now: u64,
        safe_assets: U256,
        safe_allowance: U256,
    ) -> R<SettleReport> {
        if sender != self.curator {
            return Err(VaultError::Unauthorized);
        }
        if self.frozen {
            return Err(VaultError::IsFrozen);
        }
        let saved = self.clone();
        let result = (|| {
            // value no shareholder owns becomes the Safe's shares at the empty vault's price
            if self.total_supply.is_zero() && !nav.is_zero() {
                let seeded = md(nav, u(VIRTUAL_SHARES), self.total_assets + u(1))?;
                self.last_fee_accrual = now;
                let safe = self.safe;
                if !seeded.is_zero() {
                    self.mint_to(safe, seeded);
                }
            }
            let fee_shares = self.charge_fees(nav, now)?;
            let supply = self.total_supply + u(VIRTUAL_SHARES);
            let deposit_assets = self.pending_deposit_assets;
            let redeem_shares = self.pending_redeem_shares;
            let deposit_shares = md(deposit_assets, supply, nav + u(1))?;
            let redeem_assets = md(redeem_shares, nav + u(1), supply)?;
            if redeem_assets > deposit_assets && redeem_assets - deposit_assets > safe_assets.min(safe_allowance) {
                return Err(VaultError::SafeCannotPay);
            }
            let settlement = Settlement { deposit_assets, deposit_shares, redeem_shares, redeem_assets };
            self.settlements.insert(self.epoch, settlement);
            self.epoch += 1;
            self.pending_deposit_assets = U256::ZERO;
            self.pending_redeem_shares = U256::ZERO;
            self.total_assets = sub(nav.checked_add(deposit_assets).ok_or(VaultError::Token)?, redeem_assets)?;
            self.reserved_assets += redeem_assets;
            let vault = self.vault;
            if !deposit_shares.is_zero() {
                self.mint_to(vault, deposit_shares);
            }
            if !redeem_shares.is_zero() {
                self.burn_from(vault, redeem_shares)?;
            }
            let (mut to_safe, mut from_safe) = (U256::ZERO, U256::ZERO);
            if deposit_assets > redeem_assets {
                to_safe = deposit_assets - redeem_assets;
                self.asset_balance = sub(self.asset_balance, to_safe)?;
            } else if redeem_assets > deposit_assets {
                from_safe = redeem_assets - deposit_assets;
                if safe_assets < from_safe || safe_allowance < from_safe {
                    return Err(VaultError::Token);
                }
                self.asset_balance += from_safe;
            }
            (self.management_fee_bps, self.performance_fee_bps) = self.next_fees;
            Ok(SettleReport { fee_shares, settlement, to_safe, from_safe })
        })();
        if result.is_err() {
            *self = saved;
        }
        result
    }

    /// `setFees` by `sender`.
    pub fn set_fees(&mut self, sender: Address, management_bps: u64, performance_bps: u64) -> R<()> {
        if sender != self.owner {
            return Err(VaultError::Unauthorized);
        }
        if management_bps > MAX_MANAGEMENT_FEE_BPS || performance_bps > MAX_PERFORMANCE_FEE_BPS {
            return Err(VaultError::FeeTooHigh);
        }
        self.next_fees = (management_bps, performance_bps);
        Ok(())
    }

    /// `setDepositCap` by `sender`.
    pub fn set_deposit_cap(&mut self, sender: Address, cap: U256) -> R<()> {
        if sender != self.owner {
            return Err(VaultError::Unauthorized);
        }
        self.deposit_cap = cap;
        Ok(())
    }

    /// `setPaused` by `sender`: the owner or the guardian pause, only the owner unpauses.
    pub fn set_paused(&mut self, sender: Address, paused: bool) -> R<()> {
        if sender != self.owner && sender != self.guardian {
            return Err(VaultError::Unauthorized);
        }
        if !paused && sender != self.owner {
            return Err(VaultError::Unauthorized);
        }
        self.paused = paused;
        Ok(())
    }

    /// `setFrozen` by `sender`: the guardian or the owner freeze, only the owner thaws.
    pub fn set_frozen(&mut self, sender: Address, frozen: bool) -> R<()> {
        let allowed = if frozen { sender == self.guardian || sender == self.owner } else { sender == self.owner };
        if !allowed {
            return Err(VaultError::Unauthorized);
        }
        self.frozen = frozen;
        Ok(())
    }

    /// `convertToShares`.
    pub fn convert_to_shares(&self, assets: U256) -> R<U256> {
        md(assets, self.total_supply + u(VIRTUAL_SHARES), self.total_assets + u(1))
    }

    /// `convertToAssets`.
    pub fn convert_to_assets(&self, shares: U256) -> R<U256> {
        md(shares, self.total_assets + u(1), self.total_supply + u(VIRTUAL_SHARES))
    }

    /// The shares the vault holds for claims and in escrow must cover every claim and pending redemption, and its
    /// assets every reserved redemption plus pending deposits: the vault never owes more than it holds.
    pub fn solvent(&self) -> bool {
        let owed_shares: U256 = self
            .claimable_deposits
            .keys()
            .chain(self.deposit_requests.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|c| self.claimable_deposit(*c).map_or(U256::MAX, |x| x.shares))
            .fold(U256::ZERO, |a, b| a.saturating_add(b))
            .saturating_add(self.pending_redeem_shares);
        let owed_assets: U256 = self
            .claimable_redeems
            .keys()
            .chain(self.redeem_requests.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|c| self.claimable_redeem(*c).map_or(U256::MAX, |x| x.assets))
            .fold(U256::ZERO, |a, b| a.saturating_add(b));
        owed_shares <= self.balance_of(self.vault)
            && owed_assets <= self.reserved_assets
            && self.reserved_assets + self.pending_deposit_assets <= self.asset_balance
    }
}
