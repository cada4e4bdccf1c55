use crate::{Amount, ChainId, Token};
use serde::{Deserialize, Serialize};

/// How much of a balance an intent moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountSpec {
    /// Exactly this many base units.
    Exact(Amount),
    /// Everything held at execution time (balances may move between decision and fill).
    All,
}

/// A Uniswap-v3-style pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PoolRef {
    /// Chain of the pool.
    pub chain: ChainId,
    /// Pool contract address.
    pub address: String,
    /// Swap fee in hundredths of a basis point (500 = 0.05 %).
    pub fee_pips: u32,
}

/// An LP position, as the position manager's token id or the simulator's handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LpPositionId(pub String);

/// A lending market (an Aave v3 pool, a Compound v3 comet, a Morpho market...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LendingMarket {
    /// Chain of the market.
    pub chain: ChainId,
    /// Protocol name, e.g. `aave-v3`.
    pub protocol: String,
    /// Entry-point contract.
    pub address: String,
}

/// An ERC-4626 / ERC-7540 vault.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VaultRef {
    /// Chain of the vault.
    pub chain: ChainId,
    /// Vault (share token) address.
    pub address: String,
    /// The underlying asset.
    pub asset: Token,
}

/// What a strategy wants done. Strategies emit intents and never calldata: turning an intent into a transaction (or
/// a simulated fill) is the executor's job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "intent", rename_all = "snake_case")]
pub enum Intent {
    /// Sell `amount` of `sell` for `buy`, failing rather than accepting more than `max_slippage_bps` below the quote.
    Swap {
        /// Token given.
        sell: Token,
        /// Token received.
        buy: Token,
        /// How much of `sell` to give.
        amount: AmountSpec,
        /// Slippage tolerance against the quote, in basis points.
        max_slippage_bps: u32,
    },
    /// Open a concentrated-liquidity position.
    LpOpen {
        /// Pool to provide to.
        pool: PoolRef,
        /// Lower tick of the range.
        tick_lower: i32,
        /// Upper tick of the range.
        tick_upper: i32,
        /// Maximum token0 to deposit.
        amount0: Amount,
        /// Maximum token1 to deposit.
        amount1: Amount,
    },
    /// Remove all liquidity of a position and collect everything owed.
    LpClose {
        /// Position to close.
        position: LpPositionId,
    },
    /// Collect a position's accrued fees, leaving its liquidity in place.
    LpCollectFees {
        /// Position to collect from.
        position: LpPositionId,
    },
    /// Supply collateral or savings to a lending market.
    Supply {
        /// Market.
        market: LendingMarket,
        /// Asset supplied.
        token: Token,
        /// How much.
        amount: AmountSpec,
    },
    /// Withdraw a supplied asset.
    Withdraw {
        /// Market.
        market: LendingMarket,
        /// Asset withdrawn.
        token: Token,
        /// How much.
        amount: AmountSpec,
    },
    /// Borrow against supplied collateral.
    Borrow {
        /// Market.
        market: LendingMarket,
        /// Asset borrowed.
        token: Token,
        /// How much.
        amount: Amount,
    },
    /// Repay a borrow.
    Repay {
        /// Market.
        market: LendingMarket,
        /// Asset repaid.
        token: Token,
        /// How much (`All` repays the whole debt).
        amount: AmountSpec,
    },
    /// Claim a lending market's or vault's incentive rewards and swap them into the quote token.
    ClaimRewards {
        /// Market (or vault, as a market of protocol `erc4626`) the rewards were earned in.
        market: LendingMarket,
    },
    /// Deposit assets into an ERC-4626 / ERC-7540 vault.
    VaultDeposit {
        /// Vault.
        vault: VaultRef,
        /// Assets deposited.
        amount: AmountSpec,
    },
    /// Redeem vault shares for assets.
    VaultRedeem {
        /// Vault.
        vault: VaultRef,
        /// Shares redeemed.
        shares: AmountSpec,
    },
    /// Settle a strategy vault's open epoch at `nav` (sent by the Safe as the vault's curator): the deployment
    /// emits it on its settlement schedule, valuing the Safe's positions; strategies do not.
    VaultSettle {
        /// The vault (an ERC-7540 Sextant vault whose curator and Safe are the deployment's Safe).
        vault: VaultRef,
        /// The net asset value, base units of the vault's asset.
        nav: Amount,
    },
    /// Wrap the native token (ETH -> WETH).
    Wrap {
        /// Chain whose native token is wrapped.
        chain: ChainId,
        /// Native amount.
        amount: Amount,
    },
    /// Unwrap the wrapped native token (WETH -> ETH).
    Unwrap {
        /// Chain whose wrapped native token is unwrapped.
        chain: ChainId,
        /// Wrapped amount.
        amount: AmountSpec,
    },
    /// Do nothing this step, saying why (kept in logs and reports).
    Hold {
        /// Why the strategy holds.
        reason: String,
    },
}

/// The kind of an intent, without its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentKind {
    /// [`Intent::Swap`]
    Swap,
    /// [`Intent::LpOpen`]
    LpOpen,
    /// [`Intent::LpClose`]
    LpClose,
    /// [`Intent::LpCollectFees`]
    LpCollectFees,
    /// [`Intent::Supply`]
    Supply,
    /// [`Intent::Withdraw`]
    Withdraw,
    /// [`Intent::Borrow`]
    Borrow,
    /// [`Intent::Repay`]
    Repay,
    /// [`Intent::ClaimRewards`]
    ClaimRewards,
    /// [`Intent::VaultDeposit`]
    VaultDeposit,
    /// [`Intent::VaultRedeem`]
    VaultRedeem,
    /// [`Intent::VaultSettle`]
    VaultSettle,
    /// [`Intent::Wrap`]
    Wrap,
    /// [`Intent::Unwrap`]
    Unwrap,
    /// [`Intent::Hold`]
    Hold,
}

impl Intent {
    /// The intent's kind.
    pub fn kind(&self) -> IntentKind {
        match self {
            Intent::Swap { .. } => IntentKind::Swap,
            Intent::LpOpen { .. } => IntentKind::LpOpen,
            Intent::LpClose { .. } => IntentKind::LpClose,
            Intent::LpCollectFees { .. } => IntentKind::LpCollectFees,
            Intent::Supply { .. } => IntentKind::Supply,
            Intent::Withdraw { .. } => IntentKind::Withdraw,
            Intent::Borrow { .. } => IntentKind::Borrow,
            Intent::Repay { .. } => IntentKind::Repay,
            Intent::ClaimRewards { .. } => IntentKind::ClaimRewards,
            Intent::VaultDeposit { .. } => IntentKind::VaultDeposit,
            Intent::VaultRedeem { .. } => IntentKind::VaultRedeem,
            Intent::VaultSettle { .. } => IntentKind::VaultSettle,
            Intent::Wrap { .. } => IntentKind::Wrap,
            Intent::Unwrap { .. } => IntentKind::Unwrap,
            Intent::Hold { .. } => IntentKind::Hold,
        }
    }

    /// Position of this intent in a safe unwind: fees are collected and LPs closed first, debts repaid before
    /// collateral is withdrawn, vault shares redeemed, and only then are the freed tokens unwrapped and swapped.
    pub fn unwind_rank(&self) -> u8 {
        match self.kind() {
            IntentKind::LpCollectFees | IntentKind::ClaimRewards => 0,
            IntentKind::LpClose => 1,
            IntentKind::Repay => 2,
            IntentKind::Withdraw | IntentKind::VaultRedeem => 3,
            IntentKind::Unwrap => 4,
            IntentKind::Swap => 5,
            IntentKind::Hold => 7,
            // Opening anything during an unwind is out of place; it goes last so it cannot block the exits.
            _ => 6,
        }
    }

    /// Sorts teardown intents into the safe unwind order of [`Intent::unwind_rank`], stably.
    pub fn sort_for_unwind(intents: &mut [Intent]) {
        intents.sort_by_key(Intent::unwind_rank);
    }
}

/// The outcome of an executed intent that moved tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    /// When the fill happened (unix milliseconds, UTC).
    pub timestamp_ms: i64,
    /// Token given.
    pub token_in: Token,
    /// Base units given.
    pub amount_in: Amount,
    /// Token received.
    pub token_out: Token,
    /// Base units received.
    pub amount_out: Amount,
    /// Reference (mid) price of the traded asset in quote units at fill time, before slippage.
    pub mid_price: f64,
    /// Effective price in quote units per base unit, after slippage and MEV, before the DEX fee.
    pub exec_price: f64,
    /// DEX fee paid, in quote units.
    pub fee_paid: f64,
    /// Gas paid, in quote units (USD).
    pub gas_paid: f64,
    /// Price impact paid, in quote units.
    pub slippage_paid: f64,
    /// Sandwich (MEV) loss, in quote units.
    pub mev_paid: f64,
    /// The LP position an `LpOpen` created (None for every other intent, and where the executor cannot tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lp_position: Option<LpPositionId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn market() -> LendingMarket {
        LendingMarket { chain: ChainId::ETHEREUM, protocol: "aave-v3".into(), address: "0xpool".into() }
    }

    #[test]
    fn unwind_repays_before_withdrawing_and_closes_lp_before_swapping() {
        let usdc = Token::simulated("USDC", 6).unwrap();
        let weth = Token::simulated("WETH", 18).unwrap();
        let mut intents = vec![
            Intent::Swap { sell: weth.clone(), buy: usdc.clone(), amount: AmountSpec::All, max_slippage_bps: 50 },
            Intent::Withdraw { market: market(), token: weth.clone(), amount: AmountSpec::All },
            Intent::LpClose { position: LpPositionId("7".into()) },
            Intent::Repay { market: market(), token: usdc.clone(), amount: AmountSpec::All },
        ];
        Intent::sort_for_unwind(&mut intents);
        let kinds: Vec<_> = intents.iter().map(Intent::kind).collect();
        assert_eq!(kinds, [IntentKind::LpClose, IntentKind::Repay, IntentKind::Withdraw, IntentKind::Swap]);
    }

    #[test]
    fn intents_serialise_with_a_tag() {
        let i = Intent::Hold { reason: "warming up".into() };
        let json = serde_json::to_string(&i).unwrap();
        assert_eq!(json, r#"{"intent":"hold","reason":"warming up"}"#);
        let back: Intent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, i);
    }
}
