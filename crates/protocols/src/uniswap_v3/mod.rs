//! Uniswap v3 in the contracts' own integer arithmetic: the core libraries (`math`), the periphery's
//! `LiquidityAmounts` (`liquidity`) and a whole pool (`pool`: swaps across initialized ticks, positions, fees),
//! equal to the contracts bit for bit. The backtest's LP engine and the TransactionManager's quotes both use it.

pub mod liquidity;
pub mod math;
pub mod narrow;
pub mod pool;
pub mod wide;

pub use pool::{Pool, PoolError, PositionInfo, SwapResult, TickInfo};

use alloy_primitives::U256;

/// The price of token0 in token1, in human units, from `sqrtPriceX96` and the tokens' decimals.
pub fn price_token0_in_token1(sqrt_price_x96: U256, decimals0: u8, decimals1: u8) -> f64 {
    let s = f64::from(sqrt_price_x96) / 2f64.powi(96);
    s * s * 10f64.powi(i32::from(decimals0) - i32::from(decimals1))
}

/// The tests' random numbers: xorshift64, the same sequence from the same seed on every machine.
#[cfg(test)]
pub(crate) struct TestRng(pub u64);

#[cfg(test)]
impl TestRng {
    /// The next word.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, I256};

    #[test]
    fn full_range_swaps_match_the_constant_product_of_virtual_reserves() {
        // Price 1 (sqrtP = 2^96); full-range liquidity 1e18: virtual reserves x = y = 1e18.
        let mut pool = Pool::new(3000, 60, U256::from(1u8) << 96).unwrap();
        pool.mint(Address::ZERO, -887_220, 887_220, 10u128.pow(18)).unwrap();
        let far = math::MIN_SQRT_RATIO + U256::from(1u8);
        let r = pool.clone().swap(true, I256::try_from(10u128.pow(15)).unwrap(), far).unwrap();
        let got = f64::from((-r.amount1).into_raw());
        // x*y=k on the fee-reduced input; the finite range leaves the reserves a hair short of the ideal.
        let cp = crate::constant_product::amount_out(0.997e15, 1e18, 1e18);
        assert!((got - cp).abs() / cp < 1e-6, "{got} vs {cp}");
        // Rounding always favours the pool.
        assert!(got <= cp);
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
