//! Uniswap v3 swap maths for a swap that stays within the pool's current liquidity range, in the contracts' integer
//! arithmetic (`SqrtPriceMath`, `SwapMath` rounding): exact for the TransactionManager's quotes whenever no
//! initialized tick is crossed (always, for full-range liquidity). The engine that crosses ticks comes with the
//! Uniswap v3 pool engine and will replace this module's callers.

pub mod liquidity;
pub mod math;
pub mod pool;

pub use pool::{Pool, PoolError, PositionInfo, SwapResult, TickInfo};

use alloy_primitives::{U256, U512};

/// 2^96, the fixed-point scale of `sqrtPriceX96`.
pub const Q96_SHIFT: usize = 96;

fn mul_div(a: U256, b: U256, d: U256, round_up: bool) -> Option<U256> {
    if d.is_zero() {
        return None;
    }
    let p: U512 = a.widening_mul(b);
    let d512 = U512::from(d);
    let (q, r) = p.div_rem(d512);
    let q = if round_up && !r.is_zero() { q + U512::from(1u8) } else { q };
    let limbs = q.as_limbs();
    if limbs[4..].iter().any(|&l| l != 0) {
        return None;
    }
    Some(U256::from_limbs([limbs[0], limbs[1], limbs[2], limbs[3]]))
}

/// The output of an exact-input swap of `amount_in` (before the fee) into a pool at `sqrt_price_x96` with in-range
/// liquidity `liquidity` and fee `fee_pips`, selling token0 when `zero_for_one`. None when the pool is empty or the
/// swap would leave the range of representable prices.
pub fn exact_input_within_range(
    sqrt_price_x96: U256,
    liquidity: u128,
    fee_pips: u32,
    amount_in: U256,
    zero_for_one: bool,
) -> Option<U256> {
    if liquidity == 0 || sqrt_price_x96.is_zero() || fee_pips >= 1_000_000 {
        return None;
    }
    let l = U256::from(liquidity);
    // SwapMath.computeSwapStep: the fee comes off the input first.
    let in_less_fee = mul_div(amount_in, U256::from(1_000_000 - fee_pips), U256::from(1_000_000u32), false)?;
    if zero_for_one {
        // SqrtPriceMath.getNextSqrtPriceFromAmount0RoundingUp(sqrtP, L, amount, add = true).
        let numerator1 = l << Q96_SHIFT;
        let product = in_less_fee.checked_mul(sqrt_price_x96)?;
        let denominator = numerator1.checked_add(product)?;
        let next = mul_div(numerator1, sqrt_price_x96, denominator, true)?;
        // getAmount1Delta(next, sqrtP, L, roundUp = false).
        mul_div(l, sqrt_price_x96 - next, U256::from(1u8) << Q96_SHIFT, false)
    } else {
        // getNextSqrtPriceFromAmount1RoundingDown(sqrtP, L, amount, add = true).
        let quotient = (in_less_fee << Q96_SHIFT) / l;
        let next = sqrt_price_x96.checked_add(quotient)?;
        // getAmount0Delta(sqrtP, next, L, roundUp = false): (L << 96) * (next - sqrtP) / next / sqrtP.
        let numerator1 = l << Q96_SHIFT;
        let step = mul_div(numerator1, next - sqrt_price_x96, next, false)?;
        Some(step / sqrt_price_x96)
    }
}

/// The price of token0 in token1, in human units, from `sqrtPriceX96` and the tokens' decimals.
pub fn price_token0_in_token1(sqrt_price_x96: U256, decimals0: u8, decimals1: u8) -> f64 {
    let s = f64::from(sqrt_price_x96) / 2f64.powi(96);
    s * s * 10f64.powi(i32::from(decimals0) - i32::from(decimals1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_range_swap_matches_the_constant_product_of_virtual_reserves() {
        // Price 1 (sqrtP = 2^96), L = 1e18: virtual reserves x = y = 1e18.
        let sqrt_p = U256::from(1u8) << 96;
        let l = 10u128.pow(18);
        let out = exact_input_within_range(sqrt_p, l, 3000, U256::from(10u128.pow(15)), true).unwrap();
        // x*y=k on the fee-reduced input: 1e18 * 0.997e15 / (1e18 + 0.997e15), within rounding.
        let cp = crate::constant_product::amount_out(0.997e15, 1e18, 1e18);
        let got = f64::from(out);
        assert!((got - cp).abs() <= 2.0, "{got} vs {cp}");
        let back = exact_input_within_range(sqrt_p, l, 3000, U256::from(10u128.pow(15)), false).unwrap();
        assert!((f64::from(back) - cp).abs() <= 2.0);
        // Rounding always favours the pool: never more than the real-valued output.
        assert!(got <= cp + 1e-6);
        assert_eq!(exact_input_within_range(sqrt_p, 0, 3000, U256::from(1u8), true), None);
    }

    #[test]
    fn price_from_sqrt_price_and_decimals() {
        // WETH (18) / USDC (6) at 2000 USDC per WETH: raw price 2000e6 / 1e18.
        let raw: f64 = 2000e6 / 1e18;
        let sqrt = U256::from((raw.sqrt() * 2f64.powi(96)) as u128);
        let p = price_token0_in_token1(sqrt, 18, 6);
        assert!((p - 2000.0).abs() < 1e-6, "{p}");
    }
}
