//! The `SqrtPriceMath` functions a swap step needs (and so, through [`super::math::StepNum`], the step itself) for
//! operands that fit in 128 bits: prices below 2^128 (every pool whose raw price, token1 units per token0 unit, is
//! below 2^64), liquidity, and amounts.
//! Their numerators and divisors are built from 128-bit products and shifts straight into limbs, with no 256-bit
//! arithmetic around the one division each needs.
//!
//! Each function gives the [`super::math`] function's result or None; None means "not here", never "the contract
//! reverts": the caller then runs the general function, which gives the contract's answer either way (a revert, or
//! a result that does not fit in 128 bits). Random operands of every size check the two against each other.

use super::wide;

/// The 256-bit product of two 128-bit numbers, as limbs (least significant first).
pub(crate) fn mul(a: u128, b: u128) -> [u64; 4] {
    let (a0, a1) = (u128::from(a as u64), a >> 64);
    let (b0, b1) = (u128::from(b as u64), b >> 64);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    // Below 3 * 2^64: no overflow.
    let mid = (p00 >> 64) + (p01 & u128::from(u64::MAX)) + (p10 & u128::from(u64::MAX));
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    [p00 as u64, mid as u64, hi as u64, (hi >> 64) as u64]
}

/// `x << 96` in six limbs (`x` below 2^256).
fn shl96(x: [u64; 4]) -> [u64; 6] {
    [0, x[0] << 32, (x[1] << 32) | (x[0] >> 32), (x[2] << 32) | (x[1] >> 32), (x[3] << 32) | (x[2] >> 32), x[3] >> 32]
}

/// The limbs of a 128-bit number.
fn limbs(x: u128) -> [u64; 4] {
    [x as u64, (x >> 64) as u64, 0, 0]
}

/// `ceil(a * fee / (10^6 - fee))`: the fee on an input of `a` that reached its target, for `fee` below 10^6.
fn fee_on(a: u128, fee: u32) -> Option<u128> {
    let d = 1_000_000 - fee;
    let p = a.checked_mul(u128::from(fee))?.checked_add(u128::from(d) - 1)?;
    // The standard fee tiers divide by constants, which the compiler turns into multiplications; other fees by the
    // hardware (a 64-bit dividend) or the library.
    Some(match fee {
        100 => div_by::<999_900>(p),
        500 => div_by::<999_500>(p),
        3000 => div_by::<997_000>(p),
        10_000 => div_by::<990_000>(p),
        _ => match u64::try_from(p) {
            Ok(p) => u128::from(p / u64::from(d)),
            Err(_) => p / u128::from(d),
        },
    })
}

/// `x / D` for a constant `D` below 2^32, every division by the constant (multiplications): one step for a 64-bit
/// `x`; below 2^96 its top 64 bits, then one 32-bit digit with the remainder (below `D`) in front; else the top 64
/// bits and two such digits.
fn div_by<const D: u64>(x: u128) -> u128 {
    if let Ok(x) = u64::try_from(x) {
        return u128::from(x / D);
    }
    let (shifts, top): (&[u32], u64) =
        if x >> 96 == 0 { (&[0], (x >> 32) as u64) } else { (&[32, 0], (x >> 64) as u64) };
    let (mut r, mut q) = (top % D, u128::from(top / D));
    for &shift in shifts {
        let digit = (r << 32) | u64::from((x >> shift) as u32);
        let d = digit / D;
        r = digit - d * D;
        q = (q << 32) | u128::from(d);
    }
    q
}

/// `floor(a * (10^6 - f) / 10^6)`: what is left of `a` after a fee of `f` pips, for `f` below 10^6. The product
/// (up to 148 bits) is held as the bits above 128 and the 128 below; the division by the constant goes 32 bits at a
/// time in 64-bit arithmetic, which the compiler turns into multiplications (a 128-bit division is a library call).
/// A 64-bit amount needs two steps ([`div_by`]), a wider one four.
fn less_fee(a: u128, f: u32) -> u128 {
    let m = u128::from(1_000_000 - f);
    if let Ok(a) = u64::try_from(a) {
        // A 64-bit amount: the product is below 2^84, two steps rather than four.
        return div_by::<1_000_000>(u128::from(a) * m);
    }
    let (lo, hi) = ((a & u128::from(u64::MAX)) * m, (a >> 64) * m);
    let (low, carry) = lo.overflowing_add(hi << 64);
    // The quotient is below a, so below 2^128: the bits above 128 are less than the divisor.
    let mut r = (hi >> 64) as u64 + u64::from(carry);
    let mut q = 0u128;
    for shift in [96, 64, 32, 0] {
        let digit = (r << 32) | u64::from((low >> shift) as u32);
        let d = digit / 1_000_000;
        r = digit - d * 1_000_000;
        q |= u128::from(d) << shift;
    }
    q
}

/// A float of `x` (relative error below 2^-52).
fn float(x: u128) -> f64 {
    (x >> 64) as u64 as f64 * 2f64.powi(64) + x as u64 as f64
}

/// `SqrtPriceMath.getAmount0Delta` (see [`super::math::amount0_delta`]): one division by the product of the prices.
/// The contract's first quotient, `(liquidity << 96) * (b - a) / b`, is below `liquidity << 96` and so below 2^224:
/// with 128-bit operands it never overflows.
pub fn amount0_delta(a: u128, b: u128, liquidity: u128, round_up: bool) -> Option<u128> {
    let (a, b) = if a > b { (b, a) } else { (a, b) };
    if a == 0 {
        return None;
    }
    let (q, rem) = wide::div_to_128(&shl96(mul(liquidity, b - a)), &mul(a, b))?;
    if round_up && rem { q.checked_add(1) } else { Some(q) }
}

/// `SqrtPriceMath.getAmount1Delta`: `liquidity * (b - a) / 2^96`, a product and a shift.
pub fn amount1_delta(a: u128, b: u128, liquidity: u128, round_up: bool) -> Option<u128> {
    let (a, b) = if a > b { (b, a) } else { (a, b) };
    let p = mul(liquidity, b - a);
    if p[3] >> 32 != 0 {
        return None;
    }
    let q = (u128::from(p[3]) << 96) | (u128::from(p[2]) << 32) | u128::from(p[1] >> 32);
    let rem = p[0] != 0 || p[1] & 0xffff_ffff != 0;
    if round_up && rem { q.checked_add(1) } else { Some(q) }
}

/// `SqrtPriceMath.getNextSqrtPriceFromAmount0RoundingUp`, where `amount * price` and `(liquidity << 96)` add
/// without a carry out of 256 bits (else the contract's other formula applies: None).
fn next_from_amount0_up(p: u128, liquidity: u128, amount: u128, add: bool) -> Option<u128> {
    if amount == 0 {
        return Some(p);
    }
    let numerator1 = shl96(limbs(liquidity));
    let product = mul(amount, p);
    let mut denominator = [0u64; 4];
    let mut carry = false;
    let mut borrow = false;
    for i in 0..4 {
        if add {
            let (s, c1) = numerator1[i].overflowing_add(product[i]);
            let (s, c2) = s.overflowing_add(u64::from(carry));
            denominator[i] = s;
            carry = c1 || c2;
        } else {
            let (s, b1) = numerator1[i].overflowing_sub(product[i]);
            let (s, b2) = s.overflowing_sub(u64::from(borrow));
            denominator[i] = s;
            borrow = b1 || b2;
        }
    }
    // A carry: the other formula; a borrow or a zero difference: the contract reverts.
    if carry || borrow || denominator == [0; 4] {
        return None;
    }
    let (q, rem) = wide::div_to_128(&shl96(mul(liquidity, p)), &denominator)?;
    if rem { q.checked_add(1) } else { Some(q) }
}

/// `SqrtPriceMath.getNextSqrtPriceFromAmount1RoundingDown`.
fn next_from_amount1_down(p: u128, liquidity: u128, amount: u128, add: bool) -> Option<u128> {
    let (q, rem) = wide::div_to_128(&shl96(limbs(amount)), &limbs(liquidity))?;
    if add {
        p.checked_add(q)
    } else {
        let q = if rem { q.checked_add(1)? } else { q };
        (p > q).then(|| p - q)
    }
}

impl super::math::StepNum for u128 {
    fn float(self) -> f64 {
        float(self)
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
        if p == 0 || liquidity == 0 {
            return None;
        }
        if zero_for_one {
            next_from_amount0_up(p, liquidity, amount, true)
        } else {
            next_from_amount1_down(p, liquidity, amount, true)
        }
    }
    fn next_from_output(p: Self, liquidity: u128, amount: Self, zero_for_one: bool) -> Option<Self> {
        if p == 0 || liquidity == 0 {
            return None;
        }
        if zero_for_one {
            next_from_amount1_down(p, liquidity, amount, false)
        } else {
            next_from_amount0_up(p, liquidity, amount, false)
        }
    }
    fn less_fee(amount: Self, fee_pips: u32) -> Option<Self> {
        Some(less_fee(amount, fee_pips))
    }
    fn fee_on(amount_in: Self, fee_pips: u32) -> Option<Self> {
        fee_on(amount_in, fee_pips)
    }
    fn amount0_returns(p: Self, liquidity: u128) -> bool {
        amount0_returns(p, liquidity)
    }
}

/// Whether `liquidity * 2^96 <= (p - 1) * p` (see [`super::math::StepNum::amount0_returns`]).
fn amount0_returns(p: u128, liquidity: u128) -> bool {
    let square = mul(p.saturating_sub(1), p);
    let n = [0u64, (liquidity as u64) << 32, (liquidity >> 32) as u64, (liquidity >> 96) as u64];
    n.iter().rev().cmp(square.iter().rev()).is_le()
}

/// `FullMath.mulDiv(fee, 2^128, liquidity)`: the fee growth a step adds, when it is below 2^128 (a fee below the
/// liquidity). None otherwise, and for a zero liquidity.
pub fn fee_growth(fee: u128, liquidity: u128) -> Option<u128> {
    let n = [0, 0, fee as u64, (fee >> 64) as u64, 0, 0];
    wide::div_to_128(&n, &limbs(liquidity)).map(|(q, _)| q)
}

#[cfg(test)]
mod tests {
    use super::super::math;
    use super::*;
    use alloy_primitives::U256;

    /// Random numbers of every width up to `max_bits`, with runs of ones and zeros.
    struct Gen(super::super::TestRng);
    impl Gen {
        fn word(&mut self) -> u64 {
            self.0.next()
        }
        fn int(&mut self, max_bits: u32) -> u128 {
            let bits = (self.word() % u64::from(max_bits + 1)) as u32;
            let v = (u128::from(self.word()) << 64) | u128::from(self.word());
            let v = match self.word() % 8 {
                0 => u128::MAX,
                1 => 1u128 << (bits.max(1) - 1),
                _ => v,
            };
            if bits >= 128 { v } else { v & ((1u128 << bits) - 1) }
        }
    }

    fn wide(x: u128) -> U256 {
        U256::from(x)
    }

    /// Whether the 128-bit function handled the case (and then gave the general function's result).
    fn same(narrow: Option<u128>, general: Option<U256>, what: &str) -> bool {
        if let Some(x) = narrow {
            assert_eq!(Some(wide(x)), general, "{what}");
        }
        narrow.is_some()
    }

    #[test]
    fn the_128_bit_functions_equal_the_general_ones() {
        let mut g = Gen(super::super::TestRng(0x9e37_79b9_7f4a_7c15));
        let mut handled = [0usize; 4];
        for _ in 0..200_000 {
            let (a, b, l, x) = (g.int(128), g.int(128), g.int(128), g.int(128));
            let up = g.word().is_multiple_of(2);
            let what = format!("a={a} b={b} l={l} x={x} up={up}");
            handled[0] += usize::from(same(
                amount0_delta(a, b, l, up),
                math::general_amount0_delta(wide(a), wide(b), l, up),
                &format!("amount0 {what}"),
            ));
            handled[1] += usize::from(same(
                amount1_delta(a, b, l, up),
                math::general_amount1_delta(wide(a), wide(b), l, up),
                &format!("amount1 {what}"),
            ));
            if a > 0 && l > 0 {
                handled[2] += usize::from(same(
                    next_from_amount0_up(a, l, x, up),
                    math::next_sqrt_price_from_amount0_up(wide(a), l, wide(x), up),
                    &format!("next0 {what}"),
                ));
                handled[3] += usize::from(same(
                    next_from_amount1_down(a, l, x, up),
                    math::next_sqrt_price_from_amount1_down(wide(a), l, wide(x), up),
                    &format!("next1 {what}"),
                ));
            }
            if l > 0 {
                let general = math::mul_div(wide(x), math::Q128, wide(l));
                assert_eq!(fee_growth(x, l).is_some(), x < l, "fee growth handled {what}");
                same(fee_growth(x, l), general, &format!("fee growth {what}"));
            }
            assert_eq!(Some(wide(math::mul_shr128(x, l))), math::mul_div(wide(x), wide(l), math::Q128), "fees {what}");
        }
        // Most operands are handled here, not passed on.
        assert!(handled.iter().all(|&n| n > 50_000), "{handled:?}");
    }

    #[test]
    fn a_price_from_an_amount_of_token0_gives_that_amount_back() {
        // Where `amount0_returns` holds, getAmount0Delta over the price getNextSqrtPriceFromAmount0RoundingUp gave
        // for an amount is that amount (rounded up for an input, down for an output); the step relies on it.
        let mut g = Gen(super::super::TestRng(0x5be0_cd19_137e_2179));
        let (mut held, mut checked) = (0, 0);
        for _ in 0..200_000 {
            let (p, l, a) = (g.int(128).max(1), g.int(128).max(1), g.int(128));
            let add = g.word().is_multiple_of(2);
            let Some(next) = next_from_amount0_up(p, l, a, add) else { continue };
            checked += 1;
            if amount0_returns(next, l) {
                held += 1;
                assert_eq!(amount0_delta(next, p, l, add), Some(a), "p={p} l={l} a={a} add={add}");
            }
        }
        assert!(held > 20_000 && checked > 50_000, "{held} of {checked}");
    }

    #[test]
    fn the_fee_comes_off_as_the_contract_takes_it() {
        let mut g = Gen(super::super::TestRng(0x1234_5678_9abc_def1));
        for _ in 0..100_000 {
            let (a, f) = (g.int(128), (g.word() % 1_000_000) as u32);
            let general = math::mul_div(wide(a), U256::from(1_000_000 - f), U256::from(1_000_000u32));
            assert_eq!(Some(wide(less_fee(a, f))), general, "a={a} f={f}");
        }
        // The fee on an input, at the standard tiers (constant divisors) and others, over 64-bit and wider inputs.
        for i in 0..200_000 {
            let f = [100, 500, 3000, 10_000, (g.word() % 1_000_000) as u32][i % 5];
            let a = g.int(if i % 3 == 0 { 128 } else { 44 });
            let general = math::mul_div_up(wide(a), U256::from(f), U256::from(1_000_000 - f));
            // None (the step then runs on U256) only where the product leaves 128 bits.
            match fee_on(a, f) {
                Some(fee) => assert_eq!(Some(wide(fee)), general, "fee on a={a} f={f}"),
                None => assert!(a.checked_mul(u128::from(f)).is_none(), "fee on a={a} f={f} refused"),
            }
        }
    }

    #[test]
    fn the_128_bit_step_equals_the_general_one() {
        let mut g = Gen(super::super::TestRng(0x2545_f491_4f6c_dd1d));
        let mut handled = 0;
        let cases = 200_000;
        for i in 0..cases {
            // Prices a few ticks to far apart, amounts from dust to more than the range holds.
            let current = g.int(128).max(1);
            let target = match i % 3 {
                0 => current.saturating_add(g.int(100)),
                1 => current.saturating_sub(g.int(100)),
                _ => g.int(128),
            };
            let (l, remaining) = (g.int(128), g.int(128));
            let exact_in = g.word().is_multiple_of(2);
            let fee = [0, 100, 500, 3000, 10_000, 999_999][(g.word() % 6) as usize];
            let general = math::swap_step(wide(current), wide(target), l, wide(remaining), exact_in, fee);
            if let Some((next, a_in, a_out, f)) = math::swap_step(current, target, l, remaining, exact_in, fee) {
                handled += 1;
                let s = general.expect("the general step succeeds where the narrow one does");
                assert_eq!(
                    s,
                    (wide(next), wide(a_in), wide(a_out), wide(f)),
                    "current={current} target={target} l={l} remaining={remaining} exact_in={exact_in} fee={fee}"
                );
            }
        }
        assert!(handled > cases / 2, "{handled} of {cases} steps handled");
    }
}
