//! The Uniswap v3 core libraries in Rust, result for result: `FullMath`, `TickMath`, `SqrtPriceMath`, `SwapMath`,
//! `LiquidityMath`, `BitMath`. Wrapping where Solidity 0.7 wraps, `None` where the contract reverts. Where a shorter
//! computation gives the same result (an integer identity, or a float bound far from the rounding that matters) it is
//! used, and says so; the differential tests against the contracts hold all of it.

use super::wide;
use alloy_primitives::U256;

/// The lowest tick a price can have.
pub const MIN_TICK: i32 = -887_272;
/// The highest tick a price can have.
pub const MAX_TICK: i32 = 887_272;
/// `getSqrtRatioAtTick(MIN_TICK)`.
pub const MIN_SQRT_RATIO: U256 = U256::from_limbs([4_295_128_739, 0, 0, 0]);
/// `getSqrtRatioAtTick(MAX_TICK)`.
pub const MAX_SQRT_RATIO: U256 = U256::from_limbs([0x5d95_1d52_6398_8d26, 0xefd1_fc6a_5064_8849, 0xfffd_8963, 0]);
/// 2^96.
pub const Q96: U256 = U256::from_limbs([0, 1 << 32, 0, 0]);
/// 2^128.
pub const Q128: U256 = U256::from_limbs([0, 0, 1, 0]);

/// `floor(a / d)` and whether a remainder was left; `(0, false)` when `d` is 0, as the EVM's `DIV` and `MOD` give
/// (callers check their divisors first).
fn div_rem(a: U256, d: U256) -> (U256, bool) {
    wide::mul_div_rem(a, U256::from(1u8), d).unwrap_or_default()
}

/// `FullMath.mulDiv`: floor(a * b / d) with a 512-bit product; None when d is 0 or the result overflows.
pub fn mul_div(a: U256, b: U256, d: U256) -> Option<U256> {
    wide::mul_div_rem(a, b, d).map(|(q, _)| q)
}

/// `FullMath.mulDivRoundingUp`.
pub fn mul_div_up(a: U256, b: U256, d: U256) -> Option<U256> {
    let (q, rem) = wide::mul_div_rem(a, b, d)?;
    if rem { q.checked_add(U256::from(1u8)) } else { Some(q) }
}

/// `UnsafeMath.divRoundingUp` (d > 0).
fn div_up(a: U256, d: U256) -> U256 {
    let (q, rem) = div_rem(a, d);
    if rem { q + U256::from(1u8) } else { q }
}

const TICK_FACTORS: [(u32, U256); 19] = {
    const fn h(hi: u64, lo: u64) -> U256 {
        U256::from_limbs([lo, hi, 0, 0])
    }
    [
        (0x2, h(0xfff9_7272_373d_4132, 0x59a4_6990_580e_213a)),
        (0x4, h(0xfff2_e50f_5f65_6932, 0xef12_357c_f3c7_fdcc)),
        (0x8, h(0xffe5_caca_7e10_e4e6, 0x1c36_24ea_a094_1cd0)),
        (0x10, h(0xffcb_9843_d60f_6159, 0xc9db_5883_5c92_6644)),
        (0x20, h(0xff97_3b41_fa98_c081, 0x472e_6896_dfb2_54c0)),
        (0x40, h(0xff2e_a164_66c9_6a38, 0x43ec_78b3_26b5_2861)),
        (0x80, h(0xfe5d_ee04_6a99_a2a8, 0x11c4_61f1_969c_3053)),
        (0x100, h(0xfcbe_86c7_900a_88ae, 0xdcff_c83b_479a_a3a4)),
        (0x200, h(0xf987_a725_3ac4_1317, 0x6f2b_074c_f781_5e54)),
        (0x400, h(0xf339_2b08_22b7_0005, 0x940c_7a39_8e4b_70f3)),
        (0x800, h(0xe715_9475_a2c2_9b74, 0x43b2_9c7f_a6e8_89d9)),
        (0x1000, h(0xd097_f3bd_fd20_22b8, 0x845a_d8f7_92aa_5825)),
        (0x2000, h(0xa9f7_4646_2d87_0fdf, 0x8a65_dc1f_90e0_61e5)),
        (0x4000, h(0x70d8_69a1_56d2_a1b8, 0x90bb_3df6_2baf_32f7)),
        (0x8000, h(0x31be_135f_97d0_8fd9, 0x8123_1505_542f_cfa6)),
        (0x10000, h(0x09aa_508b_5b7a_84e1, 0xc677_de54_f3e9_9bc9)),
        (0x20000, h(0x005d_6af8_dedb_8119, 0x6699_c329_225e_e604)),
        (0x40000, h(0x0000_2216_e584_f5fa, 0x1ea9_2604_1bed_fe98)),
        (0x80000, h(0x0000_0000_048a_1703, 0x91f7_dc42_444e_8fa2)),
    ]
};

/// `floor(a * b / 2^128)`, exactly: the top half of the 256-bit product.
pub(crate) fn mul_shr128(a: u128, b: u128) -> u128 {
    let p = super::narrow::mul(a, b);
    (u128::from(p[3]) << 64) | u128::from(p[2])
}

/// `TickMath.getSqrtRatioAtTick`: sqrt(1.0001^tick) as a Q64.96, rounded up. None outside the tick range.
///
/// The contract's running ratio never exceeds 2^128 and every factor is below it, so its `(ratio * factor) >> 128`
/// is done in 128-bit halves here (the start value 2^128 is carried as "none yet": times a factor it is the factor).
pub fn sqrt_ratio_at_tick(tick: i32) -> Option<U256> {
    if tick.unsigned_abs() > MAX_TICK as u32 {
        return None;
    }
    // Prices hover: most ticks asked for were asked for moments ago. A small per-thread cache of exact results.
    thread_local! {
        static CACHE: [std::cell::Cell<(i32, U256)>; 4096] =
            const { [const { std::cell::Cell::new((i32::MIN, U256::ZERO)) }; 4096] };
    }
    let slot = (tick as u32 & 4095) as usize;
    Some(CACHE.with(|c| {
        let (cached, v) = c[slot].get();
        if cached == tick {
            return v;
        }
        let v = sqrt_ratio_uncached(tick);
        c[slot].set((tick, v));
        v
    }))
}

#[cold]
fn sqrt_ratio_uncached(tick: i32) -> U256 {
    let abs = tick.unsigned_abs();
    let mut ratio: Option<u128> = (abs & 1 != 0).then_some(0xfffc_b933_bd6f_ad37_aa2d_162d_1a59_4001);
    for (bit, factor) in TICK_FACTORS_128 {
        if abs & bit != 0 {
            ratio = Some(match ratio {
                Some(r) => mul_shr128(r, factor),
                None => factor,
            });
        }
    }
    let ratio = match ratio {
        Some(r) => U256::from(r),
        None => U256::from_limbs([0, 0, 1, 0]),
    };
    let ratio = if tick > 0 { U256::MAX / ratio } else { ratio };
    let rem = ratio & U256::from(0xffff_ffffu64);
    (ratio >> 32) + if rem.is_zero() { U256::ZERO } else { U256::from(1u8) }
}

/// The tick factors as 128-bit numbers (each is below 2^128).
const TICK_FACTORS_128: [(u32, u128); 19] = {
    let mut out = [(0u32, 0u128); 19];
    let mut i = 0;
    while i < 19 {
        let limbs = TICK_FACTORS[i].1.as_limbs();
        out[i] = (TICK_FACTORS[i].0, ((limbs[1] as u128) << 64) | limbs[0] as u128);
        i += 1;
    }
    out
};

/// `TickMath.getTickAtSqrtRatio`: the greatest tick whose sqrt ratio is at most `sqrt_price`. None outside
/// [MIN_SQRT_RATIO, MAX_SQRT_RATIO).
pub fn tick_at_sqrt_ratio(sqrt_price: U256) -> Option<i32> {
    if sqrt_price < MIN_SQRT_RATIO || sqrt_price >= MAX_SQRT_RATIO {
        return None;
    }
    // The price's logarithm in tick units, in floating point. `getSqrtRatioAtTick` is within a relative 3e-10 of
    // the true sqrt(1.0001^t) * 2^96 (its 128-bit products truncate at 2^-64 of the running ratio, and the last
    // shift rounds by less than one unit of a value at least 2^32), which is 6e-6 of a tick; the logarithm below
    // is off by less than 1e-7 of a tick. So when it is more than 1e-4 of a tick from an integer, its floor is the
    // tick; only prices that close to a tick's own price take the exact steps.
    let x = ln(approx(sqrt_price), -96) * TICKS_PER_LN_SQRT;
    // The floor by truncation (|x| is below 2^20): no library call.
    let floor = {
        let t = x as i64 as f64;
        if t > x { t - 1.0 } else { t }
    };
    let mut t = (floor as i64).clamp(i64::from(MIN_TICK), i64::from(MAX_TICK)) as i32;
    if x - floor > 1e-4 && x - floor < 1.0 - 1e-4 {
        return Some(t);
    }
    while t > MIN_TICK && sqrt_ratio_at_tick(t)? > sqrt_price {
        t -= 1;
    }
    while t < MAX_TICK && sqrt_ratio_at_tick(t + 1)? <= sqrt_price {
        t += 1;
    }
    Some(t)
}

/// 2 / ln(1.0001): ticks per unit of the sqrt price's logarithm (a multiplication where a division takes longer).
const TICKS_PER_LN_SQRT: f64 = 20_000.999_983_336_37;

/// (1 / c, ln c) for the centres c = 1 + (i + 1/2) / 256 of the 256 slices of [1, 2): ln c from the series
/// 2 atanh((c - 1) / (c + 1)), summed to f64's precision when the crate is compiled.
const LN_TABLE: [(f64, f64); 256] = {
    let mut t = [(0.0, 0.0); 256];
    let mut i = 0;
    while i < 256 {
        let c = 1.0 + (i as f64 + 0.5) / 256.0;
        let z = (c - 1.0) / (c + 1.0);
        let (mut sum, mut power, mut k) = (0.0, z, 0);
        while k < 40 {
            sum += power / (2 * k + 1) as f64;
            power *= z * z;
            k += 1;
        }
        t[i] = (1.0 / c, 2.0 * sum);
        i += 1;
    }
    t
};

/// `ln(x * 2^scale)` for a positive normal `x`, within 1e-12: the exponent's share, the table's logarithm of the
/// centre c of the mantissa's slice, and ln(1 + r) for r = m / c - 1 (|r| <= 1/512) from four terms of its series
/// (the next adds less than 6e-15). A fraction of a library logarithm's time, no division, and the tick needs no
/// better.
fn ln(x: f64, scale: i32) -> f64 {
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32 - 1023 + scale;
    let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    let (inv, ln_c) = LN_TABLE[((bits >> 44) & 255) as usize];
    let r = m * inv - 1.0;
    let series = r + r * r * (-0.5 + r * (1.0 / 3.0 - r * 0.25));
    f64::from(e) * std::f64::consts::LN_2 + (ln_c + series)
}

/// `SqrtPriceMath.getNextSqrtPriceFromAmount0RoundingUp`.
pub fn next_sqrt_price_from_amount0_up(sqrt_p: U256, liquidity: u128, amount: U256, add: bool) -> Option<U256> {
    if amount.is_zero() {
        return Some(sqrt_p);
    }
    let numerator1: U256 = U256::from(liquidity) << 96;
    let (product, overflow) = amount.overflowing_mul(sqrt_p);
    if add {
        if !overflow {
            let (denominator, carry) = numerator1.overflowing_add(product);
            if !carry {
                return mul_div_up(numerator1, sqrt_p, denominator);
            }
        }
        Some(div_up(numerator1, div_rem(numerator1, sqrt_p).0.checked_add(amount)?))
    } else {
        if overflow || numerator1 <= product {
            return None;
        }
        let r = mul_div_up(numerator1, sqrt_p, numerator1 - product)?;
        (r.bit_len() <= 160).then_some(r)
    }
}

/// `SqrtPriceMath.getNextSqrtPriceFromAmount1RoundingDown`.
pub fn next_sqrt_price_from_amount1_down(sqrt_p: U256, liquidity: u128, amount: U256, add: bool) -> Option<U256> {
    let l = U256::from(liquidity);
    let fits = amount.bit_len() <= 160;
    if add {
        let quotient = if fits { div_rem(amount << 96, l).0 } else { mul_div(amount, Q96, l)? };
        let r = sqrt_p.checked_add(quotient)?;
        (r.bit_len() <= 160).then_some(r)
    } else {
        let quotient = if fits { div_up(amount << 96, l) } else { mul_div_up(amount, Q96, l)? };
        (sqrt_p > quotient).then(|| sqrt_p - quotient)
    }
}

/// `SqrtPriceMath.getNextSqrtPriceFromInput`.
pub fn next_sqrt_price_from_input(sqrt_p: U256, liquidity: u128, amount_in: U256, zero_for_one: bool) -> Option<U256> {
    if sqrt_p.is_zero() || liquidity == 0 {
        return None;
    }
    if zero_for_one {
        next_sqrt_price_from_amount0_up(sqrt_p, liquidity, amount_in, true)
    } else {
        next_sqrt_price_from_amount1_down(sqrt_p, liquidity, amount_in, true)
    }
}

/// `SqrtPriceMath.getNextSqrtPriceFromOutput`.
pub fn next_sqrt_price_from_output(
    sqrt_p: U256,
    liquidity: u128,
    amount_out: U256,
    zero_for_one: bool,
) -> Option<U256> {
    if sqrt_p.is_zero() || liquidity == 0 {
        return None;
    }
    if zero_for_one {
        next_sqrt_price_from_amount1_down(sqrt_p, liquidity, amount_out, false)
    } else {
        next_sqrt_price_from_amount0_up(sqrt_p, liquidity, amount_out, false)
    }
}

/// `SqrtPriceMath.getAmount0Delta` (unsigned).
///
/// The contract divides twice, by the upper price and then by the lower, rounding each time; for integers
/// `ceil(ceil(x / b) / a) = ceil(x / (a * b))` and the same holds for floors, so one division by `a * b` gives the
/// same amount whenever that product fits in 256 bits and the first quotient cannot overflow (where the contract
/// would revert); otherwise the contract's two steps are followed.
pub fn amount0_delta(a: U256, b: U256, liquidity: u128, round_up: bool) -> Option<U256> {
    if let (Some(x), Some(y)) = (narrow(a), narrow(b))
        && let Some(amount) = super::narrow::amount0_delta(x, y, liquidity, round_up)
    {
        return Some(U256::from(amount));
    }
    general_amount0_delta(a, b, liquidity, round_up)
}

/// [`amount0_delta`] in 256-bit arithmetic (the reference the 128-bit path is tested against).
pub(crate) fn general_amount0_delta(a: U256, b: U256, liquidity: u128, round_up: bool) -> Option<U256> {
    let (a, b) = if a > b { (b, a) } else { (a, b) };
    if a.is_zero() {
        return None;
    }
    let numerator1: U256 = U256::from(liquidity) << 96;
    let numerator2 = b - a;
    // The product has at most bit_len(numerator1) + bit_len(numerator2) bits; below 2^(254 + bit_len(b)) the
    // first quotient is below 2^255.
    if numerator1.bit_len() + numerator2.bit_len() <= 254 + b.bit_len()
        && let Some(ab) = wide::mul(a, b)
    {
        let (q, rem) = wide::mul_div_rem(numerator1, numerator2, ab)?;
        return Some(if round_up && rem { q + U256::from(1u8) } else { q });
    }
    if round_up {
        Some(div_up(mul_div_up(numerator1, numerator2, b)?, a))
    } else {
        Some(div_rem(mul_div(numerator1, numerator2, b)?, a).0)
    }
}

/// `SqrtPriceMath.getAmount1Delta` (unsigned).
pub fn amount1_delta(a: U256, b: U256, liquidity: u128, round_up: bool) -> Option<U256> {
    if let (Some(x), Some(y)) = (narrow(a), narrow(b))
        && let Some(amount) = super::narrow::amount1_delta(x, y, liquidity, round_up)
    {
        return Some(U256::from(amount));
    }
    general_amount1_delta(a, b, liquidity, round_up)
}

/// [`amount1_delta`] in 256-bit arithmetic.
pub(crate) fn general_amount1_delta(a: U256, b: U256, liquidity: u128, round_up: bool) -> Option<U256> {
    let (a, b) = if a > b { (b, a) } else { (a, b) };
    if round_up { mul_div_up(U256::from(liquidity), b - a, Q96) } else { mul_div(U256::from(liquidity), b - a, Q96) }
}

/// One step of a swap (`SwapMath.computeSwapStep`): (next sqrt price, amount in, amount out, fee).
/// `amount_remaining` is positive for exact input, negative for exact output (as an i256 magnitude and sign).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapStep {
    /// Price after the step.
    pub sqrt_price_next: U256,
    /// Input taken (before the fee).
    pub amount_in: U256,
    /// Output given.
    pub amount_out: U256,
    /// Fee taken.
    pub fee_amount: U256,
}

/// `x` as a float (from its top two limbs: relative error below 2^-51).
fn approx(x: U256) -> f64 {
    let l = x.as_limbs();
    let top = l.iter().rposition(|&w| w != 0).unwrap_or(0);
    if top == 0 {
        return l[0] as f64;
    }
    (l[top] as f64 * 2f64.powi(64) + l[top - 1] as f64) * f64::from_bits((1023 + 64 * (top as u64 - 1)) << 52)
}

/// The numbers a swap step runs on: `U256`, the contract's width, or `u128`, the narrow path for operands that fit
/// ([`super::narrow`]). Each function is the contract's; None where it reverts or, on `u128`, where the result does
/// not fit (the caller then runs the step on `U256`, which decides).
pub(crate) trait StepNum: Copy + Ord {
    /// The value as a float (relative error below 2^-51).
    fn float(self) -> f64;
    /// `self - other`, wrapping as Solidity 0.7 does.
    fn minus(self, other: Self) -> Self;
    /// `getAmount0Delta`.
    fn amount0(a: Self, b: Self, liquidity: u128, round_up: bool) -> Option<Self>;
    /// `getAmount1Delta`.
    fn amount1(a: Self, b: Self, liquidity: u128, round_up: bool) -> Option<Self>;
    /// `getNextSqrtPriceFromInput`.
    fn next_from_input(p: Self, liquidity: u128, amount: Self, zero_for_one: bool) -> Option<Self>;
    /// `getNextSqrtPriceFromOutput`.
    fn next_from_output(p: Self, liquidity: u128, amount: Self, zero_for_one: bool) -> Option<Self>;
    /// `mulDiv(amount, 1e6 - fee, 1e6)`: an exact input less its fee.
    fn less_fee(amount: Self, fee_pips: u32) -> Option<Self>;
    /// `mulDivRoundingUp(amount_in, fee, 1e6 - fee)`: the fee on an input that reached its target.
    fn fee_on(amount_in: Self, fee_pips: u32) -> Option<Self>;
    /// Whether `liquidity * 2^96 <= (p - 1) * p`: then a price `p` that `getNextSqrtPriceFromAmount0RoundingUp`
    /// gave for an amount of token0 gives that amount back through `getAmount0Delta` (see [`swap_step`]). Always
    /// false on `U256`, which stays the reference.
    fn amount0_returns(p: Self, liquidity: u128) -> bool;
}

impl StepNum for U256 {
    fn float(self) -> f64 {
        approx(self)
    }
    fn minus(self, other: Self) -> Self {
        self.wrapping_sub(other)
    }
    fn amount0(a: Self, b: Self, liquidity: u128, round_up: bool) -> Option<Self> {
        amount0_delta(a, b, liquidity, round_up)
    }
    fn amount1(a: Self, b: Self, liquidity: u128, round_up: bool) -> Option<Self> {
        amount1_delta(a, b, liquidity, round_up)
    }
    fn next_from_input(p: Self, liquidity: u128, amount: Self, zero_for_one: bool) -> Option<Self> {
        next_sqrt_price_from_input(p, liquidity, amount, zero_for_one)
    }
    fn next_from_output(p: Self, liquidity: u128, amount: Self, zero_for_one: bool) -> Option<Self> {
        next_sqrt_price_from_output(p, liquidity, amount, zero_for_one)
    }
    fn less_fee(amount: Self, fee_pips: u32) -> Option<Self> {
        match u64::try_from(amount) {
            // A 64-bit amount times a factor below 2^20 fits in 128 bits: native arithmetic, same floor.
            Ok(r) => Some(U256::from(u128::from(r) * u128::from(1_000_000 - fee_pips) / 1_000_000)),
            Err(_) => mul_div(amount, U256::from(1_000_000 - fee_pips), U256::from(1_000_000u32)),
        }
    }
    fn fee_on(amount_in: Self, fee_pips: u32) -> Option<Self> {
        mul_div_up(amount_in, U256::from(fee_pips), U256::from(1_000_000 - fee_pips))
    }
    fn amount0_returns(_: Self, _: u128) -> bool {
        false
    }
}

/// Whether `amount` is certainly below the exact amount that moves the price from `a` to `b` (token0 when
/// `token0`), judged in floating point with a margin far above its rounding error: a step that stops short of its
/// target then skips computing the exact amount to the target, which it would only compare.
fn certainly_short<N: StepNum>(amount: N, a: N, b: N, liquidity: u128, token0: bool) -> bool {
    let (lo, hi) = if a > b { (b, a) } else { (a, b) };
    let l = (liquidity >> 64) as u64 as f64 * 2f64.powi(64) + liquidity as u64 as f64;
    // amount < estimate * (1 - 1e-9) - 4, with token0's estimate L * 2^96 * (hi - lo) / (lo * hi) multiplied out
    // (a float division takes several times a multiplication's time).
    if token0 {
        let product = lo.float() * hi.float();
        (amount.float() + 4.0) * product < l * 2f64.powi(96) * hi.minus(lo).float() * (1.0 - 1e-9)
    } else {
        amount.float() < l * hi.minus(lo).float() / 2f64.powi(96) * (1.0 - 1e-9) - 4.0
    }
}

/// `SwapMath.computeSwapStep`. `exact_in` with `remaining` the amount left (input or output).
///
/// The contract computes the amount to the target, compares it with what is left and, unless the step ends at the
/// target, recomputes the amounts at the price it ends at. The amounts it returns are always those between the
/// current and the final price; here the amount to the target is computed only when the comparison needs it
/// exactly, and reused when the step ends there. Operands that fit in 128 bits run the step on `u128` first.
#[inline]
pub fn compute_swap_step(
    sqrt_current: U256,
    sqrt_target: U256,
    liquidity: u128,
    remaining: U256,
    exact_in: bool,
    fee_pips: u32,
) -> Option<SwapStep> {
    let narrow_step = match (narrow(sqrt_current), narrow(sqrt_target), narrow(remaining)) {
        (Some(current), Some(target), Some(rest)) => swap_step(current, target, liquidity, rest, exact_in, fee_pips)
            .map(|(n, i, o, f)| (U256::from(n), U256::from(i), U256::from(o), U256::from(f))),
        _ => None,
    };
    let (sqrt_price_next, amount_in, amount_out, fee_amount) = match narrow_step {
        Some(step) => step,
        None => swap_step(sqrt_current, sqrt_target, liquidity, remaining, exact_in, fee_pips)?,
    };
    Some(SwapStep { sqrt_price_next, amount_in, amount_out, fee_amount })
}

/// [`compute_swap_step`] on numbers of either width: (next price, amount in, amount out, fee).
pub(crate) fn swap_step<N: StepNum>(
    current: N,
    target: N,
    liquidity: u128,
    remaining: N,
    exact_in: bool,
    fee_pips: u32,
) -> Option<(N, N, N, N)> {
    if fee_pips >= 1_000_000 {
        return None;
    }
    let zero_for_one = current >= target;
    // Input is token0 when selling token0 (rounded up); output the other token (rounded down).
    let amount_in_to = |p: N| {
        if zero_for_one { N::amount0(p, current, liquidity, true) } else { N::amount1(current, p, liquidity, true) }
    };
    let amount_out_to = |p: N| {
        if zero_for_one { N::amount1(p, current, liquidity, false) } else { N::amount0(current, p, liquidity, false) }
    };
    let next;
    let mut amount_in = None;
    let mut amount_out = None;
    // The amount of token0 the step's price came from, when it came from one (selling token0 for an exact input,
    // buying it for an exact output) rather than being the target.
    let mut token0_given = None;
    if exact_in {
        let less_fee = N::less_fee(remaining, fee_pips)?;
        if !certainly_short(less_fee, current, target, liquidity, zero_for_one) {
            amount_in = Some(amount_in_to(target)?);
        }
        next = match amount_in {
            Some(a) if less_fee >= a => target,
            _ => {
                token0_given = zero_for_one.then_some(less_fee);
                N::next_from_input(current, liquidity, less_fee, zero_for_one)?
            }
        };
    } else {
        if !certainly_short(remaining, current, target, liquidity, !zero_for_one) {
            amount_out = Some(amount_out_to(target)?);
        }
        next = match amount_out {
            Some(a) if remaining >= a => target,
            _ => {
                token0_given = (!zero_for_one).then_some(remaining);
                N::next_from_output(current, liquidity, remaining, zero_for_one)?
            }
        };
    }
    // The price for an amount A of token0 is ceil(x), x = L * 2^96 * c / (L * 2^96 +- A * c) from the current c;
    // the token0 between c and ceil(x) is then A minus (or plus) d, d = L * 2^96 * (ceil(x) - x) / (x * ceil(x))
    // in [0, L * 2^96 / (x * ceil(x))): below 1 when L * 2^96 <= (ceil(x) - 1) * ceil(x), and the contract's
    // rounding (up for an input, down for an output) then gives back exactly A. So that division is skipped.
    let returned = token0_given.filter(|_| N::amount0_returns(next, liquidity));
    let at_target = next == target;
    let amount_in = match amount_in {
        Some(a) if at_target => a,
        _ => match returned {
            Some(a) if exact_in => a,
            _ => amount_in_to(next)?,
        },
    };
    let mut amount_out = match amount_out {
        Some(a) if at_target => a,
        _ => match returned {
            Some(a) if !exact_in => a,
            _ => amount_out_to(next)?,
        },
    };
    if !exact_in && amount_out > remaining {
        amount_out = remaining;
    }
    let fee = if exact_in && !at_target { remaining.minus(amount_in) } else { N::fee_on(amount_in, fee_pips)? };
    Some((next, amount_in, amount_out, fee))
}

/// `x` when it fits in 128 bits.
pub(crate) fn narrow(x: U256) -> Option<u128> {
    let l = x.as_limbs();
    (l[2] == 0 && l[3] == 0).then(|| (u128::from(l[1]) << 64) | u128::from(l[0]))
}

/// `FullMath.mulDiv(fee, 2^128, liquidity)`: the fee growth per unit of liquidity a swap step adds. None when
/// `liquidity` is 0 or the result overflows.
pub fn fee_growth_delta(fee: U256, liquidity: u128) -> Option<U256> {
    match narrow(fee).and_then(|f| super::narrow::fee_growth(f, liquidity)) {
        Some(g) => Some(U256::from(g)),
        None => mul_div(fee, Q128, U256::from(liquidity)),
    }
}

/// `LiquidityMath.addDelta`: None on underflow ('LS') or overflow ('LA').
pub fn add_delta(x: u128, y: i128) -> Option<u128> {
    if y < 0 { x.checked_sub(y.unsigned_abs()) } else { x.checked_add(y as u128) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_math_hits_its_published_bounds_and_inverts() {
        assert_eq!(sqrt_ratio_at_tick(MIN_TICK), Some(MIN_SQRT_RATIO));
        assert_eq!(sqrt_ratio_at_tick(MAX_TICK), Some(MAX_SQRT_RATIO));
        assert_eq!(sqrt_ratio_at_tick(0), Some(Q96));
        assert_eq!(sqrt_ratio_at_tick(MAX_TICK + 1), None);
        for t in [MIN_TICK, -200_311, -60, -1, 0, 1, 59, 200_311, MAX_TICK - 1] {
            let s = sqrt_ratio_at_tick(t).unwrap();
            assert_eq!(tick_at_sqrt_ratio(s), Some(t), "tick {t}");
            if t > MIN_TICK {
                assert_eq!(tick_at_sqrt_ratio(s - U256::from(1u8)), Some(t - 1), "just below tick {t}");
            }
        }
        assert_eq!(tick_at_sqrt_ratio(MAX_SQRT_RATIO), None);
    }

    /// The contract's own arithmetic: a 256-bit running ratio, `(ratio * factor) >> 128` in 256 bits.
    fn sqrt_ratio_in_256_bits(tick: i32) -> U256 {
        let abs = tick.unsigned_abs();
        let mut ratio = if abs & 1 != 0 {
            U256::from_limbs([0xaa2d_162d_1a59_4001, 0xfffc_b933_bd6f_ad37, 0, 0])
        } else {
            U256::from_limbs([0, 0, 1, 0])
        };
        for (bit, factor) in TICK_FACTORS {
            if abs & bit != 0 {
                ratio = (ratio * factor) >> 128;
            }
        }
        if tick > 0 {
            ratio = U256::MAX / ratio;
        }
        let rem = ratio & U256::from(0xffff_ffffu64);
        (ratio >> 32) + if rem.is_zero() { U256::ZERO } else { U256::from(1u8) }
    }

    #[test]
    fn the_128_bit_tick_ratio_equals_the_contracts_256_bit_arithmetic() {
        let mut t = MIN_TICK;
        while t <= MAX_TICK {
            assert_eq!(sqrt_ratio_uncached(t), sqrt_ratio_in_256_bits(t), "tick {t}");
            // Through the cache, twice (the second read comes from it).
            assert_eq!(sqrt_ratio_at_tick(t), Some(sqrt_ratio_in_256_bits(t)), "tick {t}");
            assert_eq!(sqrt_ratio_at_tick(t), Some(sqrt_ratio_in_256_bits(t)), "tick {t}");
            t += 37;
        }
        for t in -1030..1030 {
            assert_eq!(sqrt_ratio_at_tick(t), Some(sqrt_ratio_in_256_bits(t)), "tick {t}");
        }
    }

    #[test]
    fn the_series_logarithm_is_within_its_bound() {
        for (i, &(inv, ln_c)) in LN_TABLE.iter().enumerate() {
            let c = 1.0 + (i as f64 + 0.5) / 256.0;
            assert!((ln_c - c.ln()).abs() < 1e-15 && (inv - 1.0 / c).abs() < 1e-15, "table entry {i}");
        }
        let mut rng = super::super::TestRng(0xbb67_ae85_84ca_a73bu64);
        for i in 0..100_000 {
            // Whole range of sqrt prices, and mantissas at the edges of the reduction.
            let x = match i % 3 {
                0 => f64::from_bits((rng.next() & ((1u64 << 52) - 1)) | ((1023 + rng.next() % 64) << 52)),
                // The edges of the table's slices.
                1 => 1.0 + (rng.next() % 257) as f64 / 256.0 + ((rng.next() % 1000) as f64 - 500.0) * 1e-15,
                _ => 1.0 + (rng.next() % 1000) as f64 * 1e-9 - 5e-7,
            };
            let scale = (rng.next() % 200) as i32 - 100;
            let exact = x.ln() + f64::from(scale) * std::f64::consts::LN_2;
            assert!((ln(x, scale) - exact).abs() < 2e-12, "ln({x} * 2^{scale})");
        }
    }

    /// The contract's definition of the tick at a price, searched with the exact ratio function alone.
    fn tick_by_search(sqrt_price: U256) -> i32 {
        let (mut lo, mut hi) = (MIN_TICK, MAX_TICK);
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2;
            if sqrt_ratio_uncached(mid) <= sqrt_price { lo = mid } else { hi = mid - 1 }
        }
        lo
    }

    #[test]
    fn the_tick_at_a_price_equals_the_exact_search() {
        let mut rng = super::super::TestRng(0x6a09_e667_f3bc_c908u64);
        let mut next = || rng.next();
        let mut checked = 0;
        // Every tick's own price and its neighbours, over the whole range (every 97th tick), and random prices.
        let mut t = MIN_TICK;
        while t < MAX_TICK {
            let s = sqrt_ratio_uncached(t);
            for p in [s, s - U256::from(1u8), s + U256::from(1u8)] {
                if (MIN_SQRT_RATIO..MAX_SQRT_RATIO).contains(&p) {
                    assert_eq!(tick_at_sqrt_ratio(p), Some(tick_by_search(p)), "sqrt price {p}");
                    checked += 1;
                }
            }
            t += 97;
        }
        for _ in 0..20_000 {
            let bits = 33 + next() % 127;
            let p = U256::from_limbs([next(), next(), next(), 0]) >> (192 - bits as usize);
            if (MIN_SQRT_RATIO..MAX_SQRT_RATIO).contains(&p) {
                assert_eq!(tick_at_sqrt_ratio(p), Some(tick_by_search(p)), "sqrt price {p}");
                checked += 1;
            }
        }
        assert!(checked > 70_000, "{checked}");
    }

    /// `getAmount0Delta` as the contract writes it: two roundings.
    fn amount0_in_two_steps(a: U256, b: U256, liquidity: u128, round_up: bool) -> Option<U256> {
        let (a, b) = if a > b { (b, a) } else { (a, b) };
        let n1 = U256::from(liquidity) << 96;
        if round_up { Some(div_up(mul_div_up(n1, b - a, b)?, a)) } else { Some(div_rem(mul_div(n1, b - a, b)?, a).0) }
    }

    #[test]
    fn the_one_division_amount0_equals_the_contracts_two() {
        let mut rng = super::super::TestRng(0xbb67_ae85_84ca_a73bu64);
        let mut next = || rng.next();
        for i in 0..100_000 {
            let price = |r: u64| {
                let bits = 32 + r % 129;
                (U256::from_limbs([r, r.rotate_left(17), r.rotate_left(41), 0]) >> (192 - bits as usize))
                    .max(MIN_SQRT_RATIO)
            };
            let a = price(next());
            // Neighbouring prices (a swap step) as well as far ones.
            let b = if i % 2 == 0 { a + U256::from(next() % 1_000_000) } else { price(next()) };
            let l = if i % 3 == 0 { u128::MAX >> (next() % 128) } else { u128::from(next()) << (next() % 64) };
            for up in [true, false] {
                assert_eq!(amount0_delta(a, b, l, up), amount0_in_two_steps(a, b, l, up), "{a} {b} {l} {up}");
            }
        }
    }

    #[test]
    fn division_fast_paths_equal_the_general_division() {
        let mut rng = super::super::TestRng(0x9e37_79b9_7f4a_7c15u64);
        let mut next = || rng.next();
        for _ in 0..20_000 {
            let bits =
                |n: u64, v: U256| if n >= 256 { v } else { v & ((U256::from(1u8) << n as usize) - U256::from(1u8)) };
            let a = bits(next() % 257, U256::from_limbs([next(), next(), next(), next()]));
            let d = bits(1 + next() % 200, U256::from_limbs([next(), next(), next(), next()])).max(U256::from(1u8));
            let (q, r) = a.div_rem(d);
            assert_eq!(div_rem(a, d), (q, !r.is_zero()), "{a} / {d}");
            let p2 = U256::from(1u8) << (next() % 256) as usize;
            let (q, r) = a.div_rem(p2);
            assert_eq!(div_rem(a, p2), (q, !r.is_zero()), "{a} / {p2}");
        }
    }

    #[test]
    fn full_math_rounds_and_refuses_overflow() {
        let a = U256::MAX;
        assert_eq!(mul_div(a, a, a), Some(a));
        assert_eq!(mul_div(U256::from(7u8), U256::from(3u8), U256::from(2u8)), Some(U256::from(10u8)));
        assert_eq!(mul_div_up(U256::from(7u8), U256::from(3u8), U256::from(2u8)), Some(U256::from(11u8)));
        assert_eq!(mul_div(a, U256::from(2u8), U256::from(1u8)), None);
        assert_eq!(mul_div(a, a, U256::ZERO), None);
    }
}
