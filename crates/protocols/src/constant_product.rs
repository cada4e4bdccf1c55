//! Constant-product (x * y = k) pool maths, as Uniswap v2 prices swaps.
//!
//! Floating-point here: the backtest uses it to price the impact of a trade on a pool of given depth. The integer,
//! bit-exact form for on-chain quotes mirrors `UniswapV2Library.getAmountOut` and lives beside it.

/// Output of swapping `amount_in` (after fees) into a pool with reserves `reserve_in` / `reserve_out`.
/// Mirrors `UniswapV2Library.getAmountOut` with a zero fee: `out = reserve_out * in / (reserve_in + in)`.
pub fn amount_out(amount_in: f64, reserve_in: f64, reserve_out: f64) -> f64 {
    if amount_in <= 0.0 || reserve_in <= 0.0 || reserve_out <= 0.0 {
        return 0.0;
    }
    reserve_out * amount_in / (reserve_in + amount_in)
}

/// Price impact, as a fraction of the notional, of swapping `amount_in` into a pool whose input-side reserve is
/// `reserve_in`: the output falls short of the mid-price value by `in / (reserve_in + in)`.
pub fn price_impact(amount_in: f64, reserve_in: f64) -> f64 {
    if amount_in <= 0.0 || reserve_in <= 0.0 {
        return 0.0;
    }
    amount_in / (reserve_in + amount_in)
}

/// Integer form: `UniswapV2Library.getAmountOut` with the fee in basis points (30 for v2's 0.3 %).
/// Returns None when reserves are empty or the intermediate product overflows.
pub fn amount_out_exact(amount_in: u128, reserve_in: u128, reserve_out: u128, fee_bps: u32) -> Option<u128> {
    if amount_in == 0 || reserve_in == 0 || reserve_out == 0 || fee_bps >= 10_000 {
        return None;
    }
    let in_with_fee = amount_in.checked_mul(u128::from(10_000 - fee_bps))?;
    let numerator = in_with_fee.checked_mul(reserve_out)?;
    let denominator = reserve_in.checked_mul(10_000)?.checked_add(in_with_fee)?;
    Some(numerator / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impact_matches_output_shortfall() {
        // Pool 1,000,000 USDC / 500 WETH, mid 2000. Buying with 10,000 USDC.
        let (rin, rout) = (1_000_000.0, 500.0);
        let out = amount_out(10_000.0, rin, rout);
        let mid_value = out * 2000.0;
        let shortfall = (10_000.0 - mid_value) / 10_000.0;
        assert!((shortfall - price_impact(10_000.0, rin)).abs() < 1e-12);
        assert!((shortfall - 10_000.0 / 1_010_000.0).abs() < 1e-12);
    }

    #[test]
    fn exact_form_matches_v2_with_fee() {
        // 1 USDC (6 decimals) into 1000 / 1000 reserves at 0.3 %: floor(997e4 * 1e9 / (1e13 + 997e4)).
        let out = amount_out_exact(1_000_000, 1_000_000_000, 1_000_000_000, 30).unwrap();
        assert_eq!(out, 996_006);
        assert_eq!(amount_out_exact(0, 1, 1, 30), None);
        // Products that overflow 128 bits are refused rather than wrapped.
        assert_eq!(amount_out_exact(u128::MAX / 2, u128::MAX / 2, u128::MAX / 2, 30), None);
    }
}
