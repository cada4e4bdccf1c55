//! `LiquidityAmounts` of the Uniswap v3 periphery: the liquidity a deposit of token amounts buys over a range at a
//! price (what the position manager mints), and the token amounts a liquidity is worth (a position's value).

use super::math::{Q96, amount0_delta, amount1_delta, mul_div};
use alloy_primitives::U256;

fn to_u128(x: U256) -> Option<u128> {
    (x.bit_len() <= 128).then(|| x.to::<u128>())
}

fn sorted(a: U256, b: U256) -> (U256, U256) {
    if a > b { (b, a) } else { (a, b) }
}

/// `getLiquidityForAmount0`.
pub fn liquidity_for_amount0(a: U256, b: U256, amount0: U256) -> Option<u128> {
    let (a, b) = sorted(a, b);
    if a == b {
        return None;
    }
    let intermediate = mul_div(a, b, Q96)?;
    to_u128(mul_div(amount0, intermediate, b - a)?)
}

/// `getLiquidityForAmount1`.
pub fn liquidity_for_amount1(a: U256, b: U256, amount1: U256) -> Option<u128> {
    let (a, b) = sorted(a, b);
    if a == b {
        return None;
    }
    to_u128(mul_div(amount1, Q96, b - a)?)
}

/// `getLiquidityForAmounts`: the most liquidity `amount0` and `amount1` buy over [a, b] at price `p`.
pub fn liquidity_for_amounts(p: U256, a: U256, b: U256, amount0: U256, amount1: U256) -> Option<u128> {
    let (a, b) = sorted(a, b);
    if p <= a {
        liquidity_for_amount0(a, b, amount0)
    } else if p < b {
        Some(liquidity_for_amount0(p, b, amount0)?.min(liquidity_for_amount1(a, p, amount1)?))
    } else {
        liquidity_for_amount1(a, b, amount1)
    }
}

/// `getAmountsForLiquidity`: what `liquidity` over [a, b] holds at price `p` (rounded down, as a withdrawal pays).
/// Its `getAmount0ForLiquidity` and `getAmount1ForLiquidity` are `SqrtPriceMath`'s amount deltas rounded down,
/// formula for formula.
pub fn amounts_for_liquidity(p: U256, a: U256, b: U256, liquidity: u128) -> Option<(U256, U256)> {
    let (a, b) = sorted(a, b);
    if a.is_zero() {
        return None;
    }
    let amount0 = |lo: U256, hi: U256| amount0_delta(lo, hi, liquidity, false);
    let amount1 = |lo: U256, hi: U256| amount1_delta(lo, hi, liquidity, false);
    if p <= a {
        Some((amount0(a, b)?, U256::ZERO))
    } else if p < b {
        Some((amount0(p, b)?, amount1(a, p)?))
    } else {
        Some((U256::ZERO, amount1(a, b)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::math::sqrt_ratio_at_tick;
    use super::*;

    #[test]
    fn liquidity_and_amounts_invert_within_rounding() {
        let (a, b) = (sqrt_ratio_at_tick(-600).unwrap(), sqrt_ratio_at_tick(600).unwrap());
        let p = sqrt_ratio_at_tick(17).unwrap();
        let (x, y) = (U256::from(10u128.pow(18)), U256::from(3 * 10u128.pow(18)));
        let l = liquidity_for_amounts(p, a, b, x, y).unwrap();
        let (x2, y2) = amounts_for_liquidity(p, a, b, l).unwrap();
        // One side is used fully (within rounding), the other no more than offered.
        assert!(x2 <= x && y2 <= y);
        assert!(x - x2 <= U256::from(2u8) || y - y2 <= U256::from(2u8), "{x} {x2} {y} {y2}");
        // Out of range below: only token0 counts; above: only token1.
        let below = sqrt_ratio_at_tick(-1_000).unwrap();
        assert_eq!(liquidity_for_amounts(below, a, b, x, y), liquidity_for_amount0(a, b, x));
        assert_eq!(amounts_for_liquidity(below, a, b, l).unwrap().1, U256::ZERO);
    }
}
