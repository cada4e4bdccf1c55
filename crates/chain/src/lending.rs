//! Lending positions read from the chain and valued with the protocol models: what an account holds in an Aave v3
//! pool, from the reserve's stored indexes and rates and the account's scaled balances, brought to a timestamp the
//! way the pool's own `balanceOf` does it (`sextant_protocols::aave_v3`), so a NAV counts interest accrued since the
//! reserve's last update.

use crate::bindings::{IAaveScaledToken, IAaveV3Pool};
use crate::{Error, Result, Rpc};
use alloy::primitives::{Address, Bytes, U256};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use sextant_protocols::aave_v3;

/// An account's position in one reserve of an Aave v3 pool, in the underlying's base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AavePosition {
    /// The reserve's underlying asset.
    pub asset: Address,
    /// Supplied, with interest: what the aToken's `balanceOf` says at the timestamp.
    pub supplied: U256,
    /// Owed at the variable rate, with interest: the variable debt token's `balanceOf` at the timestamp.
    pub debt: U256,
}

impl AavePosition {
    /// Supplied minus owed, as a signed amount of the underlying (f64 base units).
    pub fn net_units(&self) -> f64 {
        f64::from(self.supplied) - f64::from(self.debt)
    }
}

fn read<C: SolCall>(rpc: &Rpc, to: Address, call: &C, block: u64) -> Result<C::Return> {
    let req = TransactionRequest::default().to(to).input(Bytes::from(call.abi_encode()).into());
    let out = rpc.call_at(&req, block)?;
    C::abi_decode_returns(&out)
        .map_err(|e| Error::Read { what: format!("{} of {to}", C::SIGNATURE), reason: e.to_string() })
}

/// `holder`'s position in `asset`'s reserve of the Aave v3 `pool`, read at `block` and valued at `now` (that block's
/// timestamp gives what the pool itself would report in it); `None` when the pool does not list `asset`.
/// Stable-rate debt, retired by Aave, is not counted.
///
/// # Errors
/// RPC failures (a `pool` that is not an Aave v3 pool reverts or answers garbage); `now` before the reserve's last
/// update, or indexes that overflow as the contract's would.
pub fn aave_position(
    rpc: &Rpc,
    pool: Address,
    asset: Address,
    holder: Address,
    block: u64,
    now: u64,
) -> Result<Option<AavePosition>> {
    let data = read(rpc, pool, &IAaveV3Pool::getReserveDataCall { asset }, block)?;
    if data.aTokenAddress == Address::ZERO {
        return Ok(None);
    }
    let last = u64::try_from(data.lastUpdateTimestamp).unwrap_or(u64::MAX);
    let bad = |what: &str| Error::Read {
        what: format!("the {what} of {asset} in {pool}"),
        reason: format!("the index cannot be brought from {last} to {now}"),
    };
    let income =
        aave_v3::normalized_income(U256::from(data.liquidityIndex), U256::from(data.currentLiquidityRate), last, now)
            .ok_or_else(|| bad("normalized income"))?;
    let debt_index = aave_v3::normalized_debt(
        U256::from(data.variableBorrowIndex),
        U256::from(data.currentVariableBorrowRate),
        last,
        now,
    )
    .ok_or_else(|| bad("normalized debt"))?;
    let scaled = |token: Address| read(rpc, token, &IAaveScaledToken::scaledBalanceOfCall { user: holder }, block);
    let supplied = aave_v3::ray_mul(scaled(data.aTokenAddress)?, income).ok_or_else(|| bad("aToken balance"))?;
    let debt = if data.variableDebtTokenAddress == Address::ZERO {
        U256::ZERO
    } else {
        aave_v3::ray_mul(scaled(data.variableDebtTokenAddress)?, debt_index).ok_or_else(|| bad("debt balance"))?
    };
    Ok(Some(AavePosition { asset, supplied, debt }))
}
