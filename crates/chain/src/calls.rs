//! Calldata for the protocol actions intents become: ERC-20 approvals, WETH wrap/unwrap, Uniswap v3 swaps and
//! positions, ERC-4626 vaults and the Aave v3 pool. Pure encoders: the TransactionManager decides amounts (from
//! balances, quotes and slippage caps) and the order of calls; every call here is made by the Safe.

use crate::bindings::{IAaveV3Pool, IERC20, IERC4626, INonfungiblePositionManager, ISwapRouter, ISwapRouter02, IWETH9};
use alloy::primitives::{Address, Bytes, U256, aliases::I24, aliases::U24, aliases::U160};
use alloy::sol_types::SolCall;
use serde::{Deserialize, Serialize};

/// One call the Safe makes: target, native value and calldata, with a line for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Target contract.
    pub to: Address,
    /// Native value sent (wei).
    pub value: U256,
    /// Calldata.
    pub data: Bytes,
    /// What the call does, e.g. `approve 100 USDC to SwapRouter`.
    pub label: String,
}

impl Call {
    fn new(to: Address, value: U256, data: Vec<u8>, label: impl Into<String>) -> Self {
        Call { to, value, data: data.into(), label: label.into() }
    }
}

/// `token.approve(spender, amount)`: Sextant approves exact amounts unless a config says otherwise.
pub fn approve(token: Address, spender: Address, amount: U256, label: &str) -> Call {
    Call::new(token, U256::ZERO, IERC20::approveCall { spender, amount }.abi_encode(), label)
}

/// `weth.deposit{value: amount}()`.
pub fn wrap(weth: Address, amount: U256) -> Call {
    Call::new(weth, amount, IWETH9::depositCall {}.abi_encode(), format!("wrap {amount} wei"))
}

/// `weth.withdraw(amount)`.
pub fn unwrap(weth: Address, amount: U256) -> Call {
    Call::new(weth, U256::ZERO, IWETH9::withdrawCall { amount }.abi_encode(), format!("unwrap {amount} wei"))
}

/// Which Uniswap v3 router a chain has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterKind {
    /// The original SwapRouter (parameters carry a deadline).
    V1,
    /// SwapRouter02 (no deadline in the parameters).
    V02,
}

/// An exact-input single-pool swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapParams {
    /// Router address.
    pub router: Address,
    /// Router flavour.
    pub kind: RouterKind,
    /// Token given.
    pub token_in: Address,
    /// Token received.
    pub token_out: Address,
    /// Pool fee tier (pips).
    pub fee_pips: u32,
    /// Who receives the output: always the Safe.
    pub recipient: Address,
    /// Exact input.
    pub amount_in: U256,
    /// Minimum output (from the quote and the slippage cap).
    pub min_out: U256,
    /// Unix deadline (in the parameters for SwapRouter, through `multicall(deadline, ..)` for SwapRouter02).
    pub deadline: u64,
}

/// `router.exactInputSingle(...)`.
pub fn swap_exact_in(p: &SwapParams, label: &str) -> Call {
    let fee = U24::from(p.fee_pips);
    let data = match p.kind {
        RouterKind::V1 => ISwapRouter::exactInputSingleCall {
            params: ISwapRouter::ExactInputSingleParams {
                tokenIn: p.token_in,
                tokenOut: p.token_out,
                fee,
                recipient: p.recipient,
                deadline: U256::from(p.deadline),
                amountIn: p.amount_in,
                amountOutMinimum: p.min_out,
                sqrtPriceLimitX96: U160::ZERO,
            },
        }
        .abi_encode(),
        // SwapRouter02's parameters carry no deadline: the router's `multicall(deadline, data)` adds one.
        RouterKind::V02 => {
            let inner = ISwapRouter02::exactInputSingleCall {
                params: ISwapRouter02::ExactInputSingleParams {
                    tokenIn: p.token_in,
                    tokenOut: p.token_out,
                    fee,
                    recipient: p.recipient,
                    amountIn: p.amount_in,
                    amountOutMinimum: p.min_out,
                    sqrtPriceLimitX96: U160::ZERO,
                },
            }
            .abi_encode();
            ISwapRouter02::multicallCall { deadline: U256::from(p.deadline), data: vec![inner.into()] }.abi_encode()
        }
    };
    Call::new(p.router, U256::ZERO, data, label)
}

/// A new concentrated-liquidity position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MintParams {
    /// Position manager.
    pub manager: Address,
    /// token0 of the pool.
    pub token0: Address,
    /// token1 of the pool.
    pub token1: Address,
    /// Fee tier (pips).
    pub fee_pips: u32,
    /// Lower tick.
    pub tick_lower: i32,
    /// Upper tick.
    pub tick_upper: i32,
    /// token0 offered.
    pub amount0: U256,
    /// token1 offered.
    pub amount1: U256,
    /// Minimum token0 deposited.
    pub amount0_min: U256,
    /// Minimum token1 deposited.
    pub amount1_min: U256,
    /// Owner of the position NFT: always the Safe.
    pub recipient: Address,
    /// Unix deadline.
    pub deadline: u64,
}

/// `positionManager.mint(...)`.
pub fn lp_mint(p: &MintParams) -> Call {
    let data = INonfungiblePositionManager::mintCall {
        params: INonfungiblePositionManager::MintParams {
            token0: p.token0,
            token1: p.token1,
            fee: U24::from(p.fee_pips),
            tickLower: I24::try_from(p.tick_lower).unwrap_or(I24::ZERO),
            tickUpper: I24::try_from(p.tick_upper).unwrap_or(I24::ZERO),
            amount0Desired: p.amount0,
            amount1Desired: p.amount1,
            amount0Min: p.amount0_min,
            amount1Min: p.amount1_min,
            recipient: p.recipient,
            deadline: U256::from(p.deadline),
        },
    }
    .abi_encode();
    Call::new(p.manager, U256::ZERO, data, format!("mint position [{}, {}]", p.tick_lower, p.tick_upper))
}

/// `positionManager.decreaseLiquidity(...)` removing `liquidity` from `token_id`.
pub fn lp_decrease(manager: Address, token_id: U256, liquidity: u128, deadline: u64) -> Call {
    let data = INonfungiblePositionManager::decreaseLiquidityCall {
        params: INonfungiblePositionManager::DecreaseLiquidityParams {
            tokenId: token_id,
            liquidity,
            amount0Min: U256::ZERO,
            amount1Min: U256::ZERO,
            deadline: U256::from(deadline),
        },
    }
    .abi_encode();
    Call::new(manager, U256::ZERO, data, format!("remove liquidity of position {token_id}"))
}

/// `positionManager.collect(...)` of everything owed to `token_id`, paid to `recipient`.
pub fn lp_collect(manager: Address, token_id: U256, recipient: Address) -> Call {
    let data = INonfungiblePositionManager::collectCall {
        params: INonfungiblePositionManager::CollectParams {
            tokenId: token_id,
            recipient,
            amount0Max: u128::MAX,
            amount1Max: u128::MAX,
        },
    }
    .abi_encode();
    Call::new(manager, U256::ZERO, data, format!("collect position {token_id}"))
}

/// `positionManager.burn(token_id)` of an emptied position.
pub fn lp_burn(manager: Address, token_id: U256) -> Call {
    let data = INonfungiblePositionManager::burnCall { tokenId: token_id }.abi_encode();
    Call::new(manager, U256::ZERO, data, format!("burn position {token_id}"))
}

/// `vault.deposit(assets, receiver)`.
pub fn vault_deposit(vault: Address, assets: U256, receiver: Address) -> Call {
    let data = IERC4626::depositCall { assets, receiver }.abi_encode();
    Call::new(vault, U256::ZERO, data, format!("deposit {assets} into vault {vault}"))
}

/// `vault.settle(nav)` on a Sextant strategy vault (sent by its curator).
pub fn vault_settle(vault: Address, nav: U256) -> Call {
    let data = crate::bindings::ISextantVault::settleCall { nav }.abi_encode();
    Call::new(vault, U256::ZERO, data, format!("settle vault {vault} at NAV {nav}"))
}

/// `vault.withdraw(assets, receiver, owner)`.
pub fn vault_withdraw(vault: Address, assets: U256, receiver: Address, owner: Address) -> Call {
    let data = IERC4626::withdrawCall { assets, receiver, owner }.abi_encode();
    Call::new(vault, U256::ZERO, data, format!("withdraw {assets} from vault {vault}"))
}

/// `vault.redeem(shares, receiver, owner)`.
pub fn vault_redeem(vault: Address, shares: U256, receiver: Address, owner: Address) -> Call {
    let data = IERC4626::redeemCall { shares, receiver, owner }.abi_encode();
    Call::new(vault, U256::ZERO, data, format!("redeem {shares} shares of vault {vault}"))
}

/// Aave v3's variable interest-rate mode (stable rate is retired).
pub const AAVE_VARIABLE_RATE: u64 = 2;

/// `pool.supply(asset, amount, onBehalfOf, 0)`.
pub fn aave_supply(pool: Address, asset: Address, amount: U256, on_behalf_of: Address) -> Call {
    let data = IAaveV3Pool::supplyCall { asset, amount, onBehalfOf: on_behalf_of, referralCode: 0 }.abi_encode();
    Call::new(pool, U256::ZERO, data, format!("supply {amount} of {asset} to Aave"))
}

/// `pool.withdraw(asset, amount, to)`; `U256::MAX` withdraws everything.
pub fn aave_withdraw(pool: Address, asset: Address, amount: U256, to: Address) -> Call {
    let data = IAaveV3Pool::withdrawCall { asset, amount, to }.abi_encode();
    Call::new(pool, U256::ZERO, data, format!("withdraw {amount} of {asset} from Aave"))
}

/// `pool.borrow(asset, amount, variable, 0, onBehalfOf)`.
pub fn aave_borrow(pool: Address, asset: Address, amount: U256, on_behalf_of: Address) -> Call {
    let data = IAaveV3Pool::borrowCall {
        asset,
        amount,
        interestRateMode: U256::from(AAVE_VARIABLE_RATE),
        referralCode: 0,
        onBehalfOf: on_behalf_of,
    }
    .abi_encode();
    Call::new(pool, U256::ZERO, data, format!("borrow {amount} of {asset} from Aave"))
}

/// `pool.repay(asset, amount, variable, onBehalfOf)`; `U256::MAX` repays the whole debt.
pub fn aave_repay(pool: Address, asset: Address, amount: U256, on_behalf_of: Address) -> Call {
    let data = IAaveV3Pool::repayCall {
        asset,
        amount,
        interestRateMode: U256::from(AAVE_VARIABLE_RATE),
        onBehalfOf: on_behalf_of,
    }
    .abi_encode();
    Call::new(pool, U256::ZERO, data, format!("repay {amount} of {asset} to Aave"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_the_protocols_own() {
        let a = Address::repeat_byte(1);
        // Selectors as published in each protocol's ABI.
        assert_eq!(approve(a, a, U256::from(1), "").data[..4], [0x09, 0x5e, 0xa7, 0xb3]);
        assert_eq!(wrap(a, U256::from(1)).data[..4], [0xd0, 0xe3, 0x0d, 0xb0]);
        assert_eq!(unwrap(a, U256::from(1)).data[..4], [0x2e, 0x1a, 0x7d, 0x4d]);
        let p = SwapParams {
            router: a,
            kind: RouterKind::V1,
            token_in: a,
            token_out: a,
            fee_pips: 500,
            recipient: a,
            amount_in: U256::from(1),
            min_out: U256::ZERO,
            deadline: 1,
        };
        assert_eq!(swap_exact_in(&p, "").data[..4], [0x41, 0x4b, 0xf3, 0x89]);
        // SwapRouter02: exactInputSingle (0x04e45aaf) inside multicall(uint256 deadline, bytes[]) (0x5ae401dc).
        let v02 = swap_exact_in(&RouterKind::V02.with(p), "").data;
        assert_eq!(v02[..4], [0x5a, 0xe4, 0x01, 0xdc]);
        assert!(v02.windows(4).any(|w| w == [0x04, 0xe4, 0x5a, 0xaf]));
        assert_eq!(aave_supply(a, a, U256::from(1), a).data[..4], [0x61, 0x7b, 0xa0, 0x37]);
        assert_eq!(vault_deposit(a, U256::from(1), a).data[..4], [0x6e, 0x55, 0x3f, 0x65]);
        assert_eq!(vault_redeem(a, U256::from(1), a, a).data[..4], [0xba, 0x08, 0x76, 0x52]);
        assert_eq!(wrap(a, U256::from(7)).value, U256::from(7));
    }

    impl RouterKind {
        fn with(self, mut p: SwapParams) -> SwapParams {
            p.kind = self;
            p
        }
    }
}
