//! Fixed-width integer division for the pool maths: `floor(a * b / d)` of 256-bit operands through a 512-bit
//! product, on 64-bit limbs sized to the operands actually present.
//!
//! The quotient digits come from Möller and Granlund's 3-by-2 division with a precomputed reciprocal ("Improved
//! division by invariant integers", IEEE Trans. Computers 2011, algorithms 5 and 6), inside Knuth's long division.
//! A swap step's products are 3 to 6 limbs over divisors of 2 to 4, so the work is a few digits, not a generic
//! 512-bit division; results are checked against ruint's division over random operands of every width.

use alloy_primitives::U256;

/// Limbs in use (the index past the highest non-zero limb).
fn len(x: &[u64; 4]) -> usize {
    if x[3] != 0 {
        4
    } else if x[2] != 0 {
        3
    } else if x[1] != 0 {
        2
    } else {
        usize::from(x[0] != 0)
    }
}

fn mul_wide(a: u64, b: u64) -> (u64, u64) {
    let p = u128::from(a) * u128::from(b);
    ((p >> 64) as u64, p as u64)
}

/// `floor((2^19 - 3 * 2^8) / d9)` for every 9-bit `d9` from 256: the first 11 bits of a reciprocal.
const RECIPROCAL_SEEDS: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (((1u32 << 19) - 3 * (1 << 8)) / (i as u32 + 256)) as u16;
        i += 1;
    }
    t
};

/// `floor((2^128 - 1) / d) - 2^64` for a normalized `d` (top bit set), by Newton steps from a table seed
/// (algorithm 2 of the paper). A hardware 128-by-64 division takes several times as long on the CPUs we run
/// on, and a swap step needs one reciprocal per division it makes.
fn reciprocal_word(d: u64) -> u64 {
    let d0 = d & 1;
    let d9 = d >> 55;
    let d40 = (d >> 24) + 1;
    let d63 = (d >> 1) + d0;
    let v0 = u64::from(RECIPROCAL_SEEDS[(d9 - 256) as usize]);
    let v1 = (v0 << 11) - ((v0 * v0 * d40) >> 40) - 1;
    let v2 = (v1 << 13) + ((v1 * ((1u64 << 60) - v1 * d40)) >> 47);
    let e = ((v2 >> 1) & d0.wrapping_neg()).wrapping_sub(v2.wrapping_mul(d63));
    let v3 = (mul_wide(v2, e).0 >> 1).wrapping_add(v2 << 31);
    let (hi, lo) = mul_wide(v3, d);
    let carry = u64::from(lo.overflowing_add(d).1);
    v3.wrapping_sub(hi.wrapping_add(carry).wrapping_add(d))
}

/// Divides `(u1, u0)` by the normalized `d` given `u1 < d`: quotient and remainder (algorithm 4), with `v` the
/// reciprocal of `d`.
fn div_2by1(u1: u64, u0: u64, d: u64, v: u64) -> (u64, u64) {
    let q = u128::from(v) * u128::from(u1) + ((u128::from(u1) << 64) | u128::from(u0));
    let (mut q1, q0) = ((q >> 64) as u64, q as u64);
    q1 = q1.wrapping_add(1);
    let mut r = u0.wrapping_sub(q1.wrapping_mul(d));
    if r > q0 {
        q1 = q1.wrapping_sub(1);
        r = r.wrapping_add(d);
    }
    if r >= d {
        q1 = q1.wrapping_add(1);
        r -= d;
    }
    (q1, r)
}

/// `floor((2^192 - 1) / (d1, d0)) - 2^64` for a normalized `d1` (algorithm 6).
fn reciprocal_3by2(d1: u64, d0: u64) -> u64 {
    let mut v = reciprocal_word(d1);
    let mut p = d1.wrapping_mul(v).wrapping_add(d0);
    if p < d0 {
        v = v.wrapping_sub(1);
        if p >= d1 {
            v = v.wrapping_sub(1);
            p = p.wrapping_sub(d1);
        }
        p = p.wrapping_sub(d1);
    }
    let (t1, t0) = mul_wide(v, d0);
    let p2 = p.wrapping_add(t1);
    if p2 < t1 {
        v = v.wrapping_sub(1);
        if (p2, t0) >= (d1, d0) {
            v = v.wrapping_sub(1);
        }
    }
    v
}

/// Divides `(u2, u1, u0)` by the normalized `(d1, d0)` given `(u2, u1) < (d1, d0)`: quotient digit and the
/// two-limb remainder (algorithm 5).
fn div_3by2(u2: u64, u1: u64, u0: u64, d1: u64, d0: u64, v: u64) -> (u64, u64, u64) {
    let q = u128::from(v) * u128::from(u2) + ((u128::from(u2) << 64) | u128::from(u1));
    let (mut q1, q0) = ((q >> 64) as u64, q as u64);
    let r1 = u1.wrapping_sub(q1.wrapping_mul(d1));
    let d = (u128::from(d1) << 64) | u128::from(d0);
    let t = u128::from(d0) * u128::from(q1);
    let mut r = ((u128::from(r1) << 64) | u128::from(u0)).wrapping_sub(t).wrapping_sub(d);
    q1 = q1.wrapping_add(1);
    if (r >> 64) as u64 >= q0 {
        q1 = q1.wrapping_sub(1);
        r = r.wrapping_add(d);
    }
    if r >= d {
        q1 = q1.wrapping_add(1);
        r -= d;
    }
    (q1, (r >> 64) as u64, r as u64)
}

/// `a * b` when it fits in 256 bits.
pub fn mul(a: U256, b: U256) -> Option<U256> {
    let (a, b) = (a.as_limbs(), b.as_limbs());
    let (la, lb) = (len(a), len(b));
    if la + lb > 5 {
        return None;
    }
    let p = product(a, la, b, lb);
    (p[4] == 0).then(|| U256::from_limbs([p[0], p[1], p[2], p[3]]))
}

/// The product of `a`'s first `la` limbs and `b`'s first `lb`, in `la + lb` limbs (the rest, up to one spare limb
/// above 512 bits for a normalising shift, zero).
fn product(a: &[u64; 4], la: usize, b: &[u64; 4], lb: usize) -> [u64; 9] {
    let mut p = [0u64; 9];
    for i in 0..la {
        let mut carry = 0u64;
        for j in 0..lb {
            let t = u128::from(a[i]) * u128::from(b[j]) + u128::from(p[i + j]) + u128::from(carry);
            p[i + j] = t as u64;
            carry = (t >> 64) as u64;
        }
        p[i + lb] = carry;
    }
    p
}

/// `floor(a * b / d)` and whether a remainder was left; None when `d` is 0 or the quotient needs more than 256
/// bits (`FullMath.mulDiv`'s two reverts).
pub fn mul_div_rem(a: U256, b: U256, d: U256) -> Option<(U256, bool)> {
    let (a, b, d) = (a.as_limbs(), b.as_limbs(), d.as_limbs());
    let (la, lb, ld) = (len(a), len(b), len(d));
    if ld == 0 {
        return None;
    }
    if la == 0 || lb == 0 {
        return Some((U256::ZERO, false));
    }
    let p = product(a, la, b, lb);
    let lp = if p[la + lb - 1] == 0 { la + lb - 1 } else { la + lb };
    div_rem_limbs(&p, lp, d, ld)
}

/// `floor(p / d)` of the `lp`-limb `p` (its limbs above `lp` zero, and at least one spare limb above 512 bits) by
/// the `ld`-limb `d` (`ld` >= 1), and whether a remainder was left; None when the quotient needs more than 256 bits.
pub(crate) fn div_rem_limbs(p: &[u64; 9], lp: usize, d: &[u64; 4], ld: usize) -> Option<(U256, bool)> {
    if lp == 0 {
        return Some((U256::ZERO, false));
    }
    if lp <= 2 && ld <= 2 {
        let n = (u128::from(p[1]) << 64) | u128::from(p[0]);
        let dd = (u128::from(d[1]) << 64) | u128::from(d[0]);
        let q = n / dd;
        return Some((U256::from(q), n != q * dd));
    }
    if lp < ld {
        return Some((U256::ZERO, true));
    }
    let s = d[ld - 1].leading_zeros();
    if d[ld - 1].is_power_of_two() && d[..ld - 1].iter().all(|&w| w == 0) {
        // A power of two (the Q96 and Q128 of the fixed-point maths): a shift.
        let k = ld - 1;
        let sh = 63 - s;
        let rem = p[..k].iter().any(|&w| w != 0) || p[k] & ((1u64 << sh) - 1) != 0;
        let mut q = [0u64; 5];
        for (i, out) in q.iter_mut().enumerate() {
            let two = (u128::from(p.get(i + k + 1).copied().unwrap_or(0)) << 64) | u128::from(p[i + k]);
            *out = (two >> sh) as u64;
        }
        if q[4] != 0 || p[k + 5..].iter().any(|&w| w != 0) {
            return None;
        }
        return Some((U256::from_limbs([q[0], q[1], q[2], q[3]]), rem));
    }
    let (q, rem) = match ld {
        1 => {
            // One-limb divisor: 2-by-1 steps in u128 (one hardware division each).
            let dv = u128::from(d[0]);
            let mut q = [0u64; 8];
            let mut r = 0u128;
            for i in (0..lp).rev() {
                let n = (r << 64) | u128::from(p[i]);
                let qi = n / dv;
                q[i] = qi as u64;
                r = n - qi * dv;
            }
            (q, r != 0)
        }
        2 => long_division::<2>(p, lp, d, s),
        3 => long_division::<3>(p, lp, d, s),
        _ => long_division::<4>(p, lp, d, s),
    };
    if q[4..].iter().any(|&w| w != 0) {
        return None;
    }
    Some((U256::from_limbs([q[0], q[1], q[2], q[3]]), rem))
}

/// `(hi, lo) << s >> 64` for s in 0..64 (`lo >> 1 >> (63 - s)` is `lo >> (64 - s)`, and 0 when s is 0).
fn shl_top(hi: u64, lo: u64, s: u32) -> u64 {
    (hi << s) | ((lo >> 1) >> (63 - s))
}

/// Knuth's long division of the `lp`-limb `p` by the `D`-limb `d` (D >= 2, `s` the divisor's leading zeros), one
/// 3-by-2 digit at a time: quotient digits and whether a remainder was left.
fn long_division<const D: usize>(p: &[u64; 9], lp: usize, d: &[u64; 4], s: u32) -> ([u64; 8], bool) {
    // Normalise: the divisor's top bit set, the dividend shifted by as much (into one more limb).
    let mut dn = [0u64; D];
    for i in 0..D {
        dn[i] = shl_top(d[i], if i > 0 { d[i - 1] } else { 0 }, s);
    }
    let mut u = [0u64; 9];
    u[lp] = shl_top(0, p[lp - 1], s);
    for i in (1..lp).rev() {
        u[i] = shl_top(p[i], p[i - 1], s);
    }
    u[0] = p[0] << s;
    let (d1, d0) = (dn[D - 1], dn[D - 2]);
    let v = reciprocal_3by2(d1, d0);
    let mut q = [0u64; 8];
    for j in (0..=lp - D).rev() {
        q[j] = digit(&mut u[j..=j + D], &dn, v);
    }
    (q, u[..D].iter().any(|&w| w != 0))
}

/// One quotient digit of Knuth's long division: divides the `D + 1` limbs of `w` (a partial remainder below
/// `dn * 2^64`) by the normalized `D`-limb `dn` (`v` its 3-by-2 reciprocal), leaving the remainder in `w`.
#[inline(always)]
fn digit<const D: usize>(w: &mut [u64], dn: &[u64; D], v: u64) -> u64 {
    let w = &mut w[..=D];
    let (d1, d0) = (dn[D - 1], dn[D - 2]);
    let (u2, u1, u0) = (w[D], w[D - 1], w[D - 2]);
    if (u2, u1) == (d1, d0) {
        // The digit is 2^64 - 1 (the remainder's top limbs equal the divisor's), subtracted over all limbs.
        let mut qd = u64::MAX;
        let mut borrow = 0u64;
        let mut carry = 0u64;
        for i in 0..=D {
            let prod = if i < D { u128::from(qd) * u128::from(dn[i]) } else { 0 } + u128::from(carry);
            carry = (prod >> 64) as u64;
            let (x, b1) = w[i].overflowing_sub(prod as u64);
            let (x, b2) = x.overflowing_sub(borrow);
            w[i] = x;
            borrow = u64::from(b1 | b2);
        }
        if borrow != 0 {
            qd -= 1;
            add_back(w, dn);
        }
        return qd;
    }
    let (mut qd, r1, r0) = div_3by2(u2, u1, u0, d1, d0, v);
    // Subtract qd times the divisor's limbs below (d1, d0), borrowing into the two-limb remainder.
    let mut borrow = 0u64;
    let mut carry = 0u64;
    for i in 0..D - 2 {
        let prod = u128::from(qd) * u128::from(dn[i]) + u128::from(carry);
        carry = (prod >> 64) as u64;
        let (x, b1) = w[i].overflowing_sub(prod as u64);
        let (x, b2) = x.overflowing_sub(borrow);
        w[i] = x;
        borrow = u64::from(b1 | b2);
    }
    let r = (u128::from(r1) << 64) | u128::from(r0);
    let (r, under) = r.overflowing_sub(u128::from(carry) + u128::from(borrow));
    w[D - 2] = r as u64;
    w[D - 1] = (r >> 64) as u64;
    w[D] = 0;
    if under {
        qd = qd.wrapping_sub(1);
        add_back(&mut w[..D], dn);
    }
    qd
}

/// `floor(n / d)` and whether a remainder was left, for a quotient below 2^128 (the swap step's case): None when
/// `d` is 0 or the quotient is not below 2^128. `n` is below 2^384 and `d` below 2^256, so the quotient is two
/// digits of the long division, done with the divisor's width fixed and no lengths to find.
pub(crate) fn div_to_128(n: &[u64; 6], d: &[u64; 4]) -> Option<(u128, bool)> {
    if d[3] != 0 {
        two_digits::<4>(n, d)
    } else if d[2] != 0 {
        two_digits::<3>(n, d)
    } else if d[1] != 0 {
        two_digits::<2>(n, d)
    } else if d[0] != 0 {
        // A one-limb divisor: two 2-by-1 digits. n < d * 2^128, so n << s keeps three limbs.
        if n[3] | n[4] | n[5] != 0 || n[2] >= d[0] {
            return None;
        }
        let s = d[0].leading_zeros();
        let dn = d[0] << s;
        // One-limb divisors are a pool's liquidity, which stays put for many steps: the last reciprocal is kept.
        thread_local! {
            static LAST: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
        }
        let v = LAST.with(|last| {
            let (d, v) = last.get();
            if d == dn {
                return v;
            }
            let v = reciprocal_word(dn);
            last.set((dn, v));
            v
        });
        let (q1, r) = div_2by1(shl_top(n[2], n[1], s), shl_top(n[1], n[0], s), dn, v);
        let (q0, r) = div_2by1(r, n[0] << s, dn, v);
        Some(((u128::from(q1) << 64) | u128::from(q0), r != 0))
    } else {
        None
    }
}

/// [`div_to_128`] by a divisor of exactly `D` limbs (D >= 2).
fn two_digits<const D: usize>(n: &[u64; 6], d: &[u64; 4]) -> Option<(u128, bool)> {
    // The quotient is below 2^128 exactly when n < d * 2^128: n's limbs from D + 2 up are zero and the D limbs
    // below them are less than d.
    if n[D + 2..].iter().any(|&w| w != 0) || n[2..D + 2].iter().rev().cmp(d[..D].iter().rev()).is_ge() {
        return None;
    }
    let s = d[D - 1].leading_zeros();
    let mut dn = [0u64; D];
    for i in 0..D {
        dn[i] = shl_top(d[i], if i > 0 { d[i - 1] } else { 0 }, s);
    }
    // n << s fits in D + 2 limbs (n < d * 2^128), and its top D limbs are below the shifted divisor.
    let mut u = [0u64; 6];
    for i in (1..D + 2).rev() {
        u[i] = shl_top(n[i], n[i - 1], s);
    }
    u[0] = n[0] << s;
    let v = reciprocal_3by2(dn[D - 1], dn[D - 2]);
    // A quotient below 2^64 (n < d * 2^64; the amount of token0 in a step, most often) has a top digit of 0, which
    // leaves the remainder as it was: skipped.
    let below_64 = n[D + 1] == 0 && n[1..D + 1].iter().rev().cmp(d[..D].iter().rev()).is_lt();
    let q1 = if below_64 { 0 } else { digit(&mut u[1..D + 2], &dn, v) };
    let q0 = digit(&mut u[..D + 1], &dn, v);
    Some(((u128::from(q1) << 64) | u128::from(q0), u[..D].iter().any(|&w| w != 0)))
}

/// `u += d` over `d`'s limbs, dropping the carry out of the top (it cancels the borrow that made the add-back due).
fn add_back(u: &mut [u64], d: &[u64]) {
    let mut carry = false;
    for (x, &y) in u.iter_mut().zip(d) {
        let (s, c1) = x.overflowing_add(y);
        let (s, c2) = s.overflowing_add(u64::from(carry));
        *x = s;
        carry = c1 || c2;
    }
    if let Some(top) = u.get_mut(d.len()) {
        *top = top.wrapping_add(u64::from(carry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U512;

    fn reference(a: U256, b: U256, d: U256) -> Option<(U256, bool)> {
        if d.is_zero() {
            return None;
        }
        let p: U512 = a.widening_mul::<256, 4, 512, 8>(b);
        let (q, r) = p.div_rem(U512::from(d));
        let l = q.as_limbs();
        if l[4..].iter().any(|&w| w != 0) {
            return None;
        }
        Some((U256::from_limbs([l[0], l[1], l[2], l[3]]), !r.is_zero()))
    }

    #[test]
    fn equals_the_general_division_at_every_width() {
        let mut rng = super::super::TestRng(0x243f_6a88_85a3_08d3u64);
        let mut next = || rng.next();
        let mut overflows = 0;
        for i in 0..300_000 {
            let mut pick = || {
                let bits = next() % 257;
                // Limbs of all ones and all zeros stress the digit corrections.
                let mut limbs = [next(), next(), next(), next()];
                if next() % 4 == 0 {
                    for l in &mut limbs {
                        *l = if next() % 2 == 0 { u64::MAX } else { 0 };
                    }
                }
                let v = U256::from_limbs(limbs);
                if bits >= 256 { v } else { v & ((U256::from(1u8) << bits as usize) - U256::from(1u8)) }
            };
            let (a, b) = (pick(), pick());
            let d = match i % 11 {
                0 => a,
                1 => U256::from(1u8) << (next() % 256) as usize,
                _ => pick(),
            };
            assert_eq!(mul(a, b), a.checked_mul(b), "{a} * {b}");
            let got = mul_div_rem(a, b, d);
            assert_eq!(got, reference(a, b, d), "{a} * {b} / {d}");
            overflows += usize::from(got.is_none() && !d.is_zero());
        }
        assert!(overflows > 1000, "the overflow path was exercised {overflows} times");
    }

    #[test]
    fn the_two_digit_division_equals_the_general_one() {
        let mut rng = super::super::TestRng(0x1319_8a2e_0370_7344u64);
        let (mut handled, mut refused) = (0, 0);
        for i in 0..300_000 {
            let mut next = || rng.next();
            let word = |next: &mut dyn FnMut() -> u64| match next() % 8 {
                0 => u64::MAX,
                1 => 0,
                _ => next(),
            };
            let ld = (next() % 5) as usize;
            let mut d = [0u64; 4];
            for w in &mut d[..ld] {
                *w = word(&mut next);
            }
            // Numerators around d * 2^128, where the quotient stops fitting, and well below it.
            let mut n = [0u64; 6];
            let top = match i % 3 {
                0 => (ld + 2).min(6),
                1 => (ld + 1).min(6),
                _ => (next() % 7) as usize,
            };
            for w in &mut n[..top] {
                *w = word(&mut next);
            }
            if i % 5 == 0 && ld > 0 {
                // The top limbs equal the divisor's: the digit-is-all-ones case.
                n[2..2 + ld].copy_from_slice(&d[..ld]);
                n[1 + ld] = n[1 + ld].wrapping_sub(next() % 2);
            }
            let wide_n = U512::from_limbs([n[0], n[1], n[2], n[3], n[4], n[5], 0, 0]);
            let expected = (!d.iter().all(|&w| w == 0)).then(|| wide_n.div_rem(U512::from(U256::from_limbs(d))));
            let expected = expected.and_then(|(q, r)| {
                let q = q.as_limbs();
                q[2..].iter().all(|&w| w == 0).then(|| ((u128::from(q[1]) << 64) | u128::from(q[0]), !r.is_zero()))
            });
            assert_eq!(div_to_128(&n, &d), expected, "{n:?} / {d:?}");
            if expected.is_some() { handled += 1 } else { refused += 1 }
        }
        assert!(handled > 100_000 && refused > 50_000, "{handled} handled, {refused} refused");
    }

    #[test]
    fn the_table_reciprocal_equals_the_division() {
        let by_division = |d: u64| (((u128::from(!d)) << 64 | u128::from(u64::MAX)) / u128::from(d)) as u64;
        let mut rng = super::super::TestRng(0xa409_3822_299f_31d0u64);
        // Every seed's first and last divisor, their neighbours, and random ones with runs of ones and zeros.
        let mut ds = vec![1u64 << 63, u64::MAX, (1u64 << 63) + 1, u64::MAX - 1];
        for d9 in 256u64..512 {
            let first = d9 << 55;
            ds.extend([first, first + 1, first | ((1u64 << 55) - 1), (first | ((1u64 << 55) - 1)) - 1]);
        }
        for _ in 0..2_000_000 {
            let x = rng.next();
            let mask = match x % 4 {
                0 => rng.next() | rng.next(),
                1 => rng.next() & rng.next(),
                _ => rng.next(),
            };
            ds.push(mask | (1u64 << 63));
        }
        for d in ds {
            assert_eq!(reciprocal_word(d), by_division(d), "reciprocal of {d:#x}");
        }
    }

    #[test]
    fn top_digit_cases() {
        // (u2, u1) equal to the divisor's top limbs, and add-backs.
        let d = U256::from_limbs([1, u64::MAX, u64::MAX, 0]);
        for a in [U256::MAX, U256::MAX - U256::from(1u8), U256::from_limbs([0, 0, u64::MAX, u64::MAX])] {
            for b in [U256::from(1u8), U256::from(u64::MAX), U256::from_limbs([0, 0, 1, 0])] {
                assert_eq!(mul_div_rem(a, b, d), reference(a, b, d), "{a} * {b} / {d}");
            }
        }
    }
}
