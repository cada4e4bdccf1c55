//! A Uniswap v3 pool in Rust, state for state: slot0's price and tick, in-range liquidity, global fee growth,
//! protocol fees, ticks (liquidity gross/net, fee growth outside), the initialized-tick bitmap and positions with
//! their fees owed. Swaps cross any number of initialized ticks, exact in or exact out, to a price limit; mint, burn
//! and collect follow `UniswapV3Pool` exactly. The oracle (observations, seconds and tick accumulators) is not
//! modelled: it changes no price, liquidity or fee.

use super::math::{self, MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK, Q128};
use alloy_primitives::{Address, I256, U256};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// A fast, deterministic hasher for the pool's small integer keys (word positions, owner and ticks): a multiply and
/// rotate per word. The keys are not attacker-chosen inside a backtest or a quote, so no SipHash is needed.
#[derive(Debug, Clone, Copy, Default)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn write_i32(&mut self, x: i32) {
        self.write_u64(u64::from(x as u32));
    }

    fn write_i16(&mut self, x: i16) {
        self.write_u64(u64::from(x as u16));
    }
}

/// A hash map with [`WordHasher`].
pub type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;
use std::fmt;

/// A revert of the pool contract, with its reason code ("AS", "SPL", "LO", "TLU"...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolError(pub &'static str);

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let meaning = match self.0 {
            "AS" => "amount specified is zero",
            "SPL" => "price limit on the wrong side of the price or out of range",
            "LO" => "liquidity per tick would exceed the maximum",
            "TLU" => "lower tick not below upper tick",
            "TLM" => "lower tick below the minimum",
            "TUM" => "upper tick above the maximum",
            "NP" => "no position to poke",
            "TS" => "tick not a multiple of the tick spacing",
            "LS" | "LA" => "liquidity would underflow or overflow",
            "M" => "arithmetic overflow",
            "L" => "no in-range liquidity",
            "CFG" => "fee must be below 100 % and tick spacing between 1 and 16384",
            _ => "reverted",
        };
        write!(f, "pool reverted {:?}: {meaning}", self.0)
    }
}

impl std::error::Error for PoolError {}

type R<T> = Result<T, PoolError>;

fn m<T>(x: Option<T>) -> R<T> {
    x.ok_or(PoolError("M"))
}

/// A tick's state (`Tick.Info` without the oracle fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TickInfo {
    /// Total liquidity referencing the tick.
    pub liquidity_gross: u128,
    /// Liquidity added when crossed left to right.
    pub liquidity_net: i128,
    /// Fee growth of token0 on the other side of the tick.
    pub fee_growth_outside0_x128: U256,
    /// Fee growth of token1 on the other side of the tick.
    pub fee_growth_outside1_x128: U256,
}

/// A position's state (`Position.Info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PositionInfo {
    /// Liquidity.
    pub liquidity: u128,
    /// Fee growth inside the range for token0 at the last update.
    pub fee_growth_inside0_last_x128: U256,
    /// Same for token1.
    pub fee_growth_inside1_last_x128: U256,
    /// token0 owed (fees and burned principal).
    pub tokens_owed0: u128,
    /// token1 owed.
    pub tokens_owed1: u128,
}

impl PositionInfo {
    /// What the position would be owed if poked with its range's fee growth inside at `inside0` / `inside1`: its
    /// `tokens_owed` plus the fees earned since its last update, truncated to uint128 as `Position.update` does.
    pub fn owed_at(&self, inside0: U256, inside1: U256) -> (u128, u128) {
        let f0 = fees_earned(inside0, self.fee_growth_inside0_last_x128, self.liquidity);
        let f1 = fees_earned(inside1, self.fee_growth_inside1_last_x128, self.liquidity);
        (
            self.tokens_owed0.wrapping_add(f0.wrapping_to::<u128>()),
            self.tokens_owed1.wrapping_add(f1.wrapping_to::<u128>()),
        )
    }
}

/// A position's key: owner and range.
pub type PositionKey = (Address, i32, i32);

/// What a swap moved: positive is paid into the pool, negative paid out (as `UniswapV3Pool.swap` returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapResult {
    /// token0 delta.
    pub amount0: I256,
    /// token1 delta.
    pub amount1: I256,
    /// Initialized ticks crossed.
    pub ticks_crossed: u32,
}

/// The parts of a pool one position change can touch.
struct PositionSnapshot {
    ticks: [(i32, Option<TickInfo>); 2],
    words: [(i16, Option<U256>); 2],
    position: Option<PositionInfo>,
    key: PositionKey,
    liquidity: u128,
}

/// What undoes a swap: the scalars before it and every tick it crossed.
#[derive(Debug, Clone)]
pub struct SwapUndo {
    sqrt_price_x96: U256,
    tick: i32,
    liquidity: u128,
    fee_growth: (U256, U256),
    protocol_fees: (u128, u128),
    crossed: Vec<(i32, Option<TickInfo>)>,
}

/// A pool. Serialisable (positions as a list of key and state), so a backtest holding one can be saved and resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Fee in hundredths of a basis point.
    pub fee: u32,
    /// Tick spacing.
    pub tick_spacing: i32,
    /// Max liquidity per tick.
    pub max_liquidity_per_tick: u128,
    /// Current price, Q64.96.
    pub sqrt_price_x96: U256,
    /// Current tick.
    pub tick: i32,
    /// Protocol fee as the contract packs it (token0 in the low 4 bits, token1 in the high 4).
    pub fee_protocol: u8,
    /// In-range liquidity.
    pub liquidity: u128,
    /// Fee growth per unit of liquidity, token0, Q128.128.
    pub fee_growth_global0_x128: U256,
    /// Same for token1.
    pub fee_growth_global1_x128: U256,
    /// Protocol fees owed, token0.
    pub protocol_fees0: u128,
    /// Protocol fees owed, token1.
    pub protocol_fees1: u128,
    /// Initialized ticks.
    pub ticks: BTreeMap<i32, TickInfo>,
    /// The initialized-tick bitmap: word position -> 256 bits.
    pub bitmap: WordMap<i16, U256>,
    /// Positions.
    #[serde(with = "positions_as_list")]
    pub positions: WordMap<PositionKey, PositionInfo>,
}

/// Positions keyed by (owner, lower, upper) as a list: JSON maps take only string keys.
mod positions_as_list {
    use super::{PositionInfo, PositionKey, WordMap};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(map: &WordMap<PositionKey, PositionInfo>, s: S) -> Result<S::Ok, S::Error> {
        // Sorted, so the same pool always serialises the same way.
        let mut list: Vec<(&PositionKey, &PositionInfo)> = map.iter().collect();
        list.sort_unstable_by_key(|(k, _)| **k);
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<WordMap<PositionKey, PositionInfo>, D::Error> {
        Ok(Vec::<(PositionKey, PositionInfo)>::deserialize(d)?.into_iter().collect())
    }
}

/// `tick / spacing` rounded towards negative infinity, as `TickBitmap` compresses a tick (the spacing is positive).
/// The standard spacings are constants the compiler divides by with multiplications; a hardware division takes
/// tens of cycles, once per swap step.
fn compress(tick: i32, spacing: i32) -> i32 {
    match spacing {
        1 => tick,
        10 => tick.div_euclid(10),
        60 => tick.div_euclid(60),
        200 => tick.div_euclid(200),
        s => tick.div_euclid(s),
    }
}

/// `Tick.tickSpacingToMaxLiquidityPerTick`.
pub fn max_liquidity_per_tick(tick_spacing: i32) -> u128 {
    let min = (MIN_TICK / tick_spacing) * tick_spacing;
    let max = (MAX_TICK / tick_spacing) * tick_spacing;
    let n = ((max - min) / tick_spacing) as u128 + 1;
    u128::MAX / n
}

/// `Tick.getFeeGrowthInside` for one token: fee growth inside [lower, upper) at `tick`, from the global growth and
/// the two ticks' growth outside. Pools read from a chain use it as the in-memory [`Pool`] does.
pub fn fee_growth_inside_of(
    tick: i32,
    (lower, upper): (i32, i32),
    global: U256,
    lower_outside: U256,
    upper_outside: U256,
) -> U256 {
    let below = if tick >= lower { lower_outside } else { global.wrapping_sub(lower_outside) };
    let above = if tick < upper { upper_outside } else { global.wrapping_sub(upper_outside) };
    global.wrapping_sub(below).wrapping_sub(above)
}

/// `Position.update`'s fees: what `liquidity` earned since the inside growth was `last` (the contract truncates the
/// result to uint128 when adding it to `tokensOwed`). The contract's `mulDiv` by 2^128 cannot overflow here: a
/// 256-bit growth times a 128-bit liquidity, over 2^128, is below 2^256.
pub fn fees_earned(inside: U256, last: U256, liquidity: u128) -> U256 {
    let growth = inside.wrapping_sub(last);
    // growth = hi * 2^128 + lo, so growth * liquidity / 2^128 = hi * liquidity + floor(lo * liquidity / 2^128):
    // a 256-bit product and the top half of another, whose sum is at most (2^128 - 1) * 2^128.
    let g = growth.as_limbs();
    let (hi, lo) = ((u128::from(g[3]) << 64) | u128::from(g[2]), (u128::from(g[1]) << 64) | u128::from(g[0]));
    U256::from_limbs(super::narrow::mul(hi, liquidity)) + U256::from(math::mul_shr128(lo, liquidity))
}

fn i256(x: U256) -> R<I256> {
    I256::try_from(x).map_err(|_| PoolError("M"))
}

impl Pool {
    /// A pool initialized at `sqrt_price_x96` (`UniswapV3Pool.initialize`).
    ///
    /// # Errors
    /// A price outside the tick range ("R"), or a fee or tick spacing the factory would not accept ("CFG").
    pub fn new(fee: u32, tick_spacing: i32, sqrt_price_x96: U256) -> R<Self> {
        if fee >= 1_000_000 || tick_spacing <= 0 || tick_spacing > 16_384 {
            return Err(PoolError("CFG"));
        }
        let tick = math::tick_at_sqrt_ratio(sqrt_price_x96).ok_or(PoolError("R"))?;
        Ok(Pool {
            fee,
            tick_spacing,
            max_liquidity_per_tick: max_liquidity_per_tick(tick_spacing),
            sqrt_price_x96,
            tick,
            fee_protocol: 0,
            liquidity: 0,
            fee_growth_global0_x128: U256::ZERO,
            fee_growth_global1_x128: U256::ZERO,
            protocol_fees0: 0,
            protocol_fees1: 0,
            ticks: BTreeMap::new(),
            bitmap: WordMap::default(),
            positions: WordMap::default(),
        })
    }

    /// Loads an initialized tick read from a pool contract (marks it in the bitmap too).
    ///
    /// # Errors
    /// A tick that is not a multiple of the spacing.
    pub fn load_tick(&mut self, tick: i32, info: TickInfo) -> R<()> {
        if !self.ticks.contains_key(&tick) {
            self.flip_tick(tick)?;
        }
        self.ticks.insert(tick, info);
        Ok(())
    }

    /// The bitmap word holding `tick` (for reading a window of a live pool's ticks).
    pub fn word_of(&self, tick: i32) -> i16 {
        Pool::word(compress(tick, self.tick_spacing)).0
    }

    fn word(compressed: i32) -> (i16, u8) {
        ((compressed >> 8) as i16, (compressed & 0xff) as u8)
    }

    fn flip_tick(&mut self, tick: i32) -> R<()> {
        if tick % self.tick_spacing != 0 {
            return Err(PoolError("TS"));
        }
        let (w, b) = Pool::word(tick / self.tick_spacing);
        let e = self.bitmap.entry(w).or_insert(U256::ZERO);
        *e ^= U256::from(1u8) << b;
        if e.is_zero() {
            self.bitmap.remove(&w);
        }
        Ok(())
    }

    /// `TickBitmap.nextInitializedTickWithinOneWord`.
    pub fn next_initialized_tick_within_one_word(&self, tick: i32, lte: bool) -> (i32, bool) {
        let s = self.tick_spacing;
        let compressed = compress(tick, s);
        // The word's bits at or below `b` (lte) or at or above it, a 64-bit limb at a time.
        let limbs = |w: i16| self.bitmap.get(&w).map_or([0u64; 4], |x| *x.as_limbs());
        if lte {
            let (w, b) = Pool::word(compressed);
            let x = limbs(w);
            let (at, bit) = (usize::from(b / 64), b % 64);
            let below = if bit == 63 { u64::MAX } else { (1u64 << (bit + 1)) - 1 };
            let msb = std::iter::once((at, x[at] & below))
                .chain((0..at).rev().map(|k| (k, x[k])))
                .find(|&(_, v)| v != 0)
                .map(|(k, v)| 64 * k as i32 + 63 - v.leading_zeros() as i32);
            match msb {
                None => ((compressed - i32::from(b)) * s, false),
                Some(msb) => ((compressed - (i32::from(b) - msb)) * s, true),
            }
        } else {
            let (w, b) = Pool::word(compressed + 1);
            let x = limbs(w);
            let (at, bit) = (usize::from(b / 64), b % 64);
            let lsb = std::iter::once((at, x[at] & (u64::MAX << bit)))
                .chain((at + 1..4).map(|k| (k, x[k])))
                .find(|&(_, v)| v != 0)
                .map(|(k, v)| 64 * k as i32 + v.trailing_zeros() as i32);
            match lsb {
                None => ((compressed + 1 + (255 - i32::from(b))) * s, false),
                Some(lsb) => ((compressed + 1 + (lsb - i32::from(b))) * s, true),
            }
        }
    }

    /// `Tick.getFeeGrowthInside` for a range at the current tick.
    pub fn fee_growth_inside(&self, lower: i32, upper: i32) -> (U256, U256) {
        let lo = self.ticks.get(&lower).copied().unwrap_or_default();
        let up = self.ticks.get(&upper).copied().unwrap_or_default();
        let range = (lower, upper);
        (
            fee_growth_inside_of(
                self.tick,
                range,
                self.fee_growth_global0_x128,
                lo.fee_growth_outside0_x128,
                up.fee_growth_outside0_x128,
            ),
            fee_growth_inside_of(
                self.tick,
                range,
                self.fee_growth_global1_x128,
                lo.fee_growth_outside1_x128,
                up.fee_growth_outside1_x128,
            ),
        )
    }

    /// `Tick.update`: returns whether the tick flipped between initialized and not.
    fn update_tick(&mut self, tick: i32, delta: i128, upper: bool) -> R<bool> {
        let current = self.tick;
        let (g0, g1) = (self.fee_growth_global0_x128, self.fee_growth_global1_x128);
        let max = self.max_liquidity_per_tick;
        let info = self.ticks.entry(tick).or_default();
        let before = info.liquidity_gross;
        let after = math::add_delta(before, delta).ok_or(PoolError(if delta < 0 { "LS" } else { "LA" }))?;
        if after > max {
            return Err(PoolError("LO"));
        }
        let flipped = (after == 0) != (before == 0);
        if before == 0 && tick <= current {
            info.fee_growth_outside0_x128 = g0;
            info.fee_growth_outside1_x128 = g1;
        }
        info.liquidity_gross = after;
        info.liquidity_net =
            if upper { info.liquidity_net.checked_sub(delta) } else { info.liquidity_net.checked_add(delta) }
                .ok_or(PoolError("M"))?;
        Ok(flipped)
    }

    /// `_modifyPosition`: returns the token amounts owed to (positive) or by (negative) the pool.
    fn modify_position(&mut self, owner: Address, lower: i32, upper: i32, delta: i128) -> R<(I256, I256)> {
        if lower >= upper {
            return Err(PoolError("TLU"));
        }
        if lower < MIN_TICK {
            return Err(PoolError("TLM"));
        }
        if upper > MAX_TICK {
            return Err(PoolError("TUM"));
        }
        // _updatePosition
        let key = (owner, lower, upper);
        let mut flipped = (false, false);
        if delta != 0 {
            // Validate both before touching state, as a revert would undo both.
            let snapshot = (self.ticks.get(&lower).copied(), self.ticks.get(&upper).copied());
            let l = self.update_tick(lower, delta, false);
            let u = l.and_then(|fl| self.update_tick(upper, delta, true).map(|fu| (fl, fu)));
            match u {
                Ok(f) => flipped = f,
                Err(e) => {
                    for (t, old) in [(lower, snapshot.0), (upper, snapshot.1)] {
                        match old {
                            Some(o) => self.ticks.insert(t, o),
                            None => self.ticks.remove(&t),
                        };
                    }
                    return Err(e);
                }
            }
            if flipped.0 {
                self.flip_tick(lower)?;
            }
            if flipped.1 {
                self.flip_tick(upper)?;
            }
        }
        let (in0, in1) = self.fee_growth_inside(lower, upper);
        let pos = self.positions.entry(key).or_default();
        let next = if delta == 0 {
            if pos.liquidity == 0 {
                return Err(PoolError("NP"));
            }
            pos.liquidity
        } else {
            math::add_delta(pos.liquidity, delta).ok_or(PoolError(if delta < 0 { "LS" } else { "LA" }))?
        };
        let owed0 = fees_earned(in0, pos.fee_growth_inside0_last_x128, pos.liquidity);
        let owed1 = fees_earned(in1, pos.fee_growth_inside1_last_x128, pos.liquidity);
        if delta != 0 {
            pos.liquidity = next;
        }
        pos.fee_growth_inside0_last_x128 = in0;
        pos.fee_growth_inside1_last_x128 = in1;
        // uint128(...) truncates, and 0.7's += wraps.
        pos.tokens_owed0 =
            pos.tokens_owed0.wrapping_add(owed0.as_limbs()[0] as u128 | ((owed0.as_limbs()[1] as u128) << 64));
        pos.tokens_owed1 =
            pos.tokens_owed1.wrapping_add(owed1.as_limbs()[0] as u128 | ((owed1.as_limbs()[1] as u128) << 64));
        if delta < 0 {
            if flipped.0 {
                self.ticks.remove(&lower);
            }
            if flipped.1 {
                self.ticks.remove(&upper);
            }
        }
        if delta == 0 {
            return Ok((I256::ZERO, I256::ZERO));
        }
        let (sa, sb) = (m(math::sqrt_ratio_at_tick(lower))?, m(math::sqrt_ratio_at_tick(upper))?);
        let signed0 = |a: U256, b: U256| -> R<I256> {
            if delta < 0 {
                Ok(-i256(m(math::amount0_delta(a, b, delta.unsigned_abs(), false))?)?)
            } else {
                i256(m(math::amount0_delta(a, b, delta as u128, true))?)
            }
        };
        let signed1 = |a: U256, b: U256| -> R<I256> {
            if delta < 0 {
                Ok(-i256(m(math::amount1_delta(a, b, delta.unsigned_abs(), false))?)?)
            } else {
                i256(m(math::amount1_delta(a, b, delta as u128, true))?)
            }
        };
        if self.tick < lower {
            Ok((signed0(sa, sb)?, I256::ZERO))
        } else if self.tick < upper {
            let a0 = signed0(self.sqrt_price_x96, sb)?;
            let a1 = signed1(sa, self.sqrt_price_x96)?;
            self.liquidity = math::add_delta(self.liquidity, delta).ok_or(PoolError("LA"))?;
            Ok((a0, a1))
        } else {
            Ok((I256::ZERO, signed1(sa, sb)?))
        }
    }

    /// What a position change may touch, saved so a failure part way leaves the pool as it was (without copying
    /// every tick and position).
    fn position_snapshot(&self, owner: Address, lower: i32, upper: i32) -> PositionSnapshot {
        let word = |t: i32| {
            let w = self.word_of(t);
            (w, self.bitmap.get(&w).copied())
        };
        PositionSnapshot {
            ticks: [(lower, self.ticks.get(&lower).copied()), (upper, self.ticks.get(&upper).copied())],
            words: [word(lower), word(upper)],
            position: self.positions.get(&(owner, lower, upper)).copied(),
            key: (owner, lower, upper),
            liquidity: self.liquidity,
        }
    }

    fn restore(&mut self, snap: PositionSnapshot) {
        for (t, old) in snap.ticks {
            match old {
                Some(o) => self.ticks.insert(t, o),
                None => self.ticks.remove(&t),
            };
        }
        for (w, old) in snap.words {
            match old {
                Some(o) => self.bitmap.insert(w, o),
                None => self.bitmap.remove(&w),
            };
        }
        match snap.position {
            Some(p) => self.positions.insert(snap.key, p),
            None => self.positions.remove(&snap.key),
        };
        self.liquidity = snap.liquidity;
    }

    /// `mint`: adds `amount` liquidity to `owner`'s range; returns the tokens owed to the pool.
    ///
    /// # Errors
    /// The contract's reverts.
    pub fn mint(&mut self, owner: Address, lower: i32, upper: i32, amount: u128) -> R<(U256, U256)> {
        if amount == 0 || amount > i128::MAX as u128 {
            return Err(PoolError(if amount == 0 { "0" } else { "M" }));
        }
        let before = self.position_snapshot(owner, lower, upper);
        match self.modify_position(owner, lower, upper, amount as i128) {
            Ok((a0, a1)) => Ok((a0.into_raw(), a1.into_raw())),
            Err(e) => {
                self.restore(before);
                Err(e)
            }
        }
    }

    /// `burn`: removes `amount` liquidity; the tokens become owed to the position. Returns them.
    ///
    /// # Errors
    /// The contract's reverts.
    pub fn burn(&mut self, owner: Address, lower: i32, upper: i32, amount: u128) -> R<(U256, U256)> {
        if amount > i128::MAX as u128 {
            return Err(PoolError("M"));
        }
        let before = self.position_snapshot(owner, lower, upper);
        let (a0, a1) = match self.modify_position(owner, lower, upper, -(amount as i128)) {
            Ok(v) => v,
            Err(e) => {
                self.restore(before);
                return Err(e);
            }
        };
        let (a0, a1) = ((-a0).into_raw(), (-a1).into_raw());
        if let Some(p) = self.positions.get_mut(&(owner, lower, upper))
            && (!a0.is_zero() || !a1.is_zero())
        {
            p.tokens_owed0 = p.tokens_owed0.wrapping_add(a0.wrapping_to::<u128>());
            p.tokens_owed1 = p.tokens_owed1.wrapping_add(a1.wrapping_to::<u128>());
        }
        Ok((a0, a1))
    }

    /// `collect`: pays out up to the requested amounts of what the position is owed. Returns what was paid.
    pub fn collect(&mut self, owner: Address, lower: i32, upper: i32, max0: u128, max1: u128) -> (u128, u128) {
        let Some(p) = self.positions.get_mut(&(owner, lower, upper)) else { return (0, 0) };
        let a0 = max0.min(p.tokens_owed0);
        let a1 = max1.min(p.tokens_owed1);
        p.tokens_owed0 -= a0;
        p.tokens_owed1 -= a1;
        (a0, a1)
    }

    /// What a position is owed if it were poked now: its `tokens_owed` plus the fees earned since its last update
    /// (the arithmetic of `Position.update`, truncated to uint128 as the contract does). None for no position.
    pub fn owed_now(&self, owner: Address, lower: i32, upper: i32) -> Option<(u128, u128)> {
        let p = self.positions.get(&(owner, lower, upper))?;
        let (in0, in1) = self.fee_growth_inside(lower, upper);
        Some(p.owed_at(in0, in1))
    }

    /// The fees a `flash` of `amount0` / `amount1` costs (rounded up, as the pool charges them).
    ///
    /// # Errors
    /// "L" when the pool has no in-range liquidity (the contract refuses flash loans then).
    pub fn flash_fees(&self, amount0: U256, amount1: U256) -> R<(U256, U256)> {
        if self.liquidity == 0 {
            return Err(PoolError("L"));
        }
        let (fee, million) = (U256::from(self.fee), U256::from(1_000_000u32));
        Ok((m(math::mul_div_up(amount0, fee, million))?, m(math::mul_div_up(amount1, fee, million))?))
    }

    /// What `flash` does to the pool once the borrower has paid `paid0` / `paid1` in fees: the protocol's share
    /// (with the fee protocol of each side) and fee growth for in-range liquidity.
    ///
    /// # Errors
    /// Fee growth overflow ("M").
    pub fn flash_paid(&mut self, paid0: U256, paid1: U256) -> R<()> {
        for (paid, fp, growth, protocol) in [
            (paid0, self.fee_protocol % 16, &mut self.fee_growth_global0_x128, &mut self.protocol_fees0),
            (paid1, self.fee_protocol >> 4, &mut self.fee_growth_global1_x128, &mut self.protocol_fees1),
        ] {
            if paid.is_zero() {
                continue;
            }
            let fees = if fp == 0 { U256::ZERO } else { paid / U256::from(fp) };
            let fees128 = fees.wrapping_to::<u128>();
            if fees128 > 0 {
                *protocol = protocol.wrapping_add(fees128);
            }
            // mulDiv by a zero liquidity reverts in the contract, as here.
            *growth = growth.wrapping_add(m(math::mul_div(paid - fees, Q128, U256::from(self.liquidity)))?);
        }
        Ok(())
    }

    /// `setFeeProtocol` (each side 0 or 4..=10).
    ///
    /// # Errors
    /// Other values.
    pub fn set_fee_protocol(&mut self, p0: u8, p1: u8) -> R<()> {
        let ok = |p: u8| p == 0 || (4..=10).contains(&p);
        if !ok(p0) || !ok(p1) {
            return Err(PoolError("FP"));
        }
        self.fee_protocol = p0 + (p1 << 4);
        Ok(())
    }

    /// `swap`: `amount_specified` > 0 is exact input, < 0 exact output; the price will not pass
    /// `sqrt_price_limit_x96`.
    ///
    /// # Errors
    /// "AS" for a zero amount, "SPL" for a bad limit, and arithmetic overflow.
    pub fn swap(&mut self, zero_for_one: bool, amount_specified: I256, sqrt_price_limit_x96: U256) -> R<SwapResult> {
        self.check_swap(zero_for_one, amount_specified, sqrt_price_limit_x96)?;
        // A failing swap has changed only the ticks it crossed (the loop sets the rest when it is done).
        let mut crossed = Vec::new();
        let r = self.swap_inner(zero_for_one, amount_specified, sqrt_price_limit_x96, &mut crossed);
        if r.is_err() {
            self.restore_ticks(&mut crossed);
        }
        r
    }

    /// The checks `swap` makes before it moves anything: "AS" for a zero amount, "SPL" for a bad limit.
    fn check_swap(&self, zero_for_one: bool, amount_specified: I256, sqrt_price_limit_x96: U256) -> R<()> {
        if amount_specified.is_zero() {
            return Err(PoolError("AS"));
        }
        let limit_ok = if zero_for_one {
            sqrt_price_limit_x96 < self.sqrt_price_x96 && sqrt_price_limit_x96 > MIN_SQRT_RATIO
        } else {
            sqrt_price_limit_x96 > self.sqrt_price_x96 && sqrt_price_limit_x96 < MAX_SQRT_RATIO
        };
        if limit_ok { Ok(()) } else { Err(PoolError("SPL")) }
    }

    /// [`Pool::swap`], also returning what undoes it ([`Pool::undo_swap`]): trying a swap costs only the ticks it
    /// crosses, not a copy of the pool.
    ///
    /// # Errors
    /// As [`Pool::swap`]; the pool is unchanged then.
    pub fn swap_with_undo(
        &mut self,
        zero_for_one: bool,
        amount_specified: I256,
        sqrt_price_limit_x96: U256,
    ) -> R<(SwapResult, SwapUndo)> {
        self.check_swap(zero_for_one, amount_specified, sqrt_price_limit_x96)?;
        let mut undo = SwapUndo {
            sqrt_price_x96: self.sqrt_price_x96,
            tick: self.tick,
            liquidity: self.liquidity,
            fee_growth: (self.fee_growth_global0_x128, self.fee_growth_global1_x128),
            protocol_fees: (self.protocol_fees0, self.protocol_fees1),
            crossed: Vec::new(),
        };
        match self.swap_inner(zero_for_one, amount_specified, sqrt_price_limit_x96, &mut undo.crossed) {
            Ok(r) => Ok((r, undo)),
            Err(e) => {
                self.undo_swap(undo);
                Err(e)
            }
        }
    }

    /// Puts the pool back as it was before the swap `undo` came from (undo swaps newest first).
    pub fn undo_swap(&mut self, mut undo: SwapUndo) {
        self.restore_ticks(&mut undo.crossed);
        self.sqrt_price_x96 = undo.sqrt_price_x96;
        self.tick = undo.tick;
        self.liquidity = undo.liquidity;
        (self.fee_growth_global0_x128, self.fee_growth_global1_x128) = undo.fee_growth;
        (self.protocol_fees0, self.protocol_fees1) = undo.protocol_fees;
    }

    /// Puts back the ticks a swap crossed, newest first, emptying the list.
    fn restore_ticks(&mut self, crossed: &mut Vec<(i32, Option<TickInfo>)>) {
        while let Some((tick, info)) = crossed.pop() {
            match info {
                Some(i) => self.ticks.insert(tick, i),
                None => self.ticks.remove(&tick),
            };
        }
    }

    /// The swap loop. On an error it returns before setting the price, tick, liquidity and fees: only the ticks
    /// it crossed (listed in `crossed_before` with their state before) have changed.
    fn swap_inner(
        &mut self,
        zero_for_one: bool,
        amount_specified: I256,
        limit: U256,
        crossed_before: &mut Vec<(i32, Option<TickInfo>)>,
    ) -> R<SwapResult> {
        let fee_protocol = if zero_for_one { self.fee_protocol % 16 } else { self.fee_protocol >> 4 };
        let exact_in = amount_specified > I256::ZERO;
        let mut remaining = amount_specified;
        let mut calculated = I256::ZERO;
        let mut sqrt_price = self.sqrt_price_x96;
        let mut tick = self.tick;
        let mut fee_growth = if zero_for_one { self.fee_growth_global0_x128 } else { self.fee_growth_global1_x128 };
        let mut protocol_fee: u128 = 0;
        let mut liquidity = self.liquidity;
        let mut crossed = 0;
        while !remaining.is_zero() && sqrt_price != limit {
            let start = sqrt_price;
            let (mut next_tick, initialized) = self.next_initialized_tick_within_one_word(tick, zero_for_one);
            next_tick = next_tick.clamp(MIN_TICK, MAX_TICK);
            let sqrt_next = m(math::sqrt_ratio_at_tick(next_tick))?;
            let target = if (zero_for_one && sqrt_next < limit) || (!zero_for_one && sqrt_next > limit) {
                limit
            } else {
                sqrt_next
            };
            let step = m(math::compute_swap_step(
                sqrt_price,
                target,
                liquidity,
                remaining.unsigned_abs(),
                exact_in,
                self.fee,
            ))?;
            sqrt_price = step.sqrt_price_next;
            let mut fee_amount = step.fee_amount;
            if exact_in {
                remaining -= i256(m(step.amount_in.checked_add(fee_amount))?)?;
                calculated -= i256(step.amount_out)?;
            } else {
                remaining += i256(step.amount_out)?;
                calculated += i256(m(step.amount_in.checked_add(fee_amount))?)?;
            }
            if fee_protocol > 0 {
                let delta = fee_amount / U256::from(fee_protocol);
                fee_amount -= delta;
                protocol_fee = protocol_fee.wrapping_add(delta.wrapping_to::<u128>());
            }
            if liquidity > 0 {
                fee_growth = fee_growth.wrapping_add(m(math::fee_growth_delta(fee_amount, liquidity))?);
            }
            if sqrt_price == sqrt_next {
                if initialized {
                    // Tick.cross: fee growth outside flips to the other side.
                    let (g0, g1) = if zero_for_one {
                        (fee_growth, self.fee_growth_global1_x128)
                    } else {
                        (self.fee_growth_global0_x128, fee_growth)
                    };
                    crossed_before.push((next_tick, self.ticks.get(&next_tick).copied()));
                    let info = self.ticks.entry(next_tick).or_default();
                    info.fee_growth_outside0_x128 = g0.wrapping_sub(info.fee_growth_outside0_x128);
                    info.fee_growth_outside1_x128 = g1.wrapping_sub(info.fee_growth_outside1_x128);
                    let net = if zero_for_one { -info.liquidity_net } else { info.liquidity_net };
                    liquidity = math::add_delta(liquidity, net).ok_or(PoolError(if net < 0 { "LS" } else { "LA" }))?;
                    crossed += 1;
                }
                tick = if zero_for_one { next_tick - 1 } else { next_tick };
            } else if sqrt_price != start {
                tick = m(math::tick_at_sqrt_ratio(sqrt_price))?;
            }
        }
        self.sqrt_price_x96 = sqrt_price;
        self.tick = tick;
        self.liquidity = liquidity;
        if zero_for_one {
            self.fee_growth_global0_x128 = fee_growth;
            if protocol_fee > 0 {
                self.protocol_fees0 = self.protocol_fees0.wrapping_add(protocol_fee);
            }
        } else {
            self.fee_growth_global1_x128 = fee_growth;
            if protocol_fee > 0 {
                self.protocol_fees1 = self.protocol_fees1.wrapping_add(protocol_fee);
            }
        }
        let used = amount_specified - remaining;
        let (amount0, amount1) = if zero_for_one == exact_in { (used, calculated) } else { (calculated, used) };
        Ok(SwapResult { amount0, amount1, ticks_crossed: crossed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool {
        let mut p = Pool::new(500, 10, math::sqrt_ratio_at_tick(100).unwrap()).unwrap();
        p.mint(Address::ZERO, -887_270, 887_270, 10u128.pow(20)).unwrap();
        p.mint(Address::ZERO, 50, 300, 10u128.pow(21)).unwrap();
        p
    }

    #[test]
    fn a_pool_round_trips_through_json() {
        let mut p = pool();
        p.swap(true, I256::try_from(10u128.pow(18)).unwrap(), math::MIN_SQRT_RATIO + U256::from(1u8)).unwrap();
        let text = serde_json::to_string(&p).unwrap();
        let back: Pool = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn a_failed_mint_or_burn_leaves_the_pool_untouched() {
        let mut p = pool();
        let before = p.clone();
        // Ticks off the spacing fail after the tick updates: everything is put back.
        assert_eq!(p.mint(Address::ZERO, 55, 305, 10u128.pow(18)).unwrap_err(), PoolError("TS"));
        assert_eq!(p, before);
        assert_eq!(p.burn(Address::ZERO, 50, 300, 10u128.pow(22)).unwrap_err(), PoolError("LS"));
        assert_eq!(p, before);
        // Collecting from a position that does not exist pays nothing and creates nothing.
        assert_eq!(p.collect(Address::repeat_byte(7), 0, 10, u128::MAX, u128::MAX), (0, 0));
        assert_eq!(p, before);
    }

    #[test]
    fn fees_earned_equals_the_contracts_mul_div() {
        let mut rng = crate::uniswap_v3::TestRng(0x3c6e_f372_fe94_f82bu64);
        for i in 0..200_000 {
            let mut word = || match rng.next() % 6 {
                0 => u64::MAX,
                1 => 0,
                _ => rng.next(),
            };
            let inside = U256::from_limbs([word(), word(), word(), word()]);
            // Growth below and above 2^128, and wrapped below zero.
            let last = match i % 3 {
                0 => inside.wrapping_sub(U256::from(word())),
                1 => inside.wrapping_add(U256::from(word())),
                _ => U256::from_limbs([word(), word(), word(), word()]),
            };
            let liquidity = (u128::from(word()) << 64 | u128::from(word())) >> (rng.next() % 128);
            let expected = math::mul_div(inside.wrapping_sub(last), U256::from(liquidity), Q128);
            assert_eq!(
                Some(fees_earned(inside, last, liquidity)),
                expected,
                "{inside} - {last}, liquidity {liquidity}"
            );
        }
    }

    #[test]
    fn the_bitmap_search_equals_the_contracts_masks() {
        // TickBitmap's own arithmetic on whole 256-bit words, as the reference.
        fn by_masks(word: U256, b: u8, lte: bool) -> Option<i32> {
            let one = U256::from(1u8);
            if lte {
                let masked = word & ((one << b) - one + (one << b));
                (!masked.is_zero()).then(|| masked.bit_len() as i32 - 1)
            } else {
                let masked = word & !((one << b) - one);
                (!masked.is_zero()).then(|| masked.trailing_zeros() as i32)
            }
        }
        let mut rng = super::super::TestRng(0x9e37_79b9_7f4a_7c15u64);
        let mut next = || rng.next();
        for case in 0..20_000 {
            // Sparse words (a few bits) and dense ones, across limb edges.
            let word = if case % 2 == 0 {
                (0..1 + next() % 3).fold(U256::ZERO, |w, _| w | (U256::from(1u8) << (next() % 256) as usize))
            } else {
                U256::from_limbs([next(), next(), next(), next()])
            };
            let mut p = Pool::new(500, 1, math::sqrt_ratio_at_tick(0).unwrap()).unwrap();
            p.bitmap.insert(0, word);
            let b = (next() % 256) as u8;
            let lte = next() % 2 == 0;
            // With spacing 1 and word 0, tick t is bit t; `gt` searches from t + 1.
            let tick = if lte { i32::from(b) } else { i32::from(b) - 1 };
            let (found, init) = p.next_initialized_tick_within_one_word(tick, lte);
            match by_masks(word, b, lte) {
                Some(bit) => assert_eq!((found, init), (bit, true), "word {word:#x} b {b} lte {lte}"),
                None => assert!(!init, "word {word:#x} b {b} lte {lte}"),
            }
        }
    }

    #[test]
    fn a_swap_can_be_undone_exactly() {
        let mut p = pool();
        let before = p.clone();
        let limit = math::MIN_SQRT_RATIO + U256::from(1u8);
        let (r, undo) = p.swap_with_undo(true, I256::try_from(10u128.pow(20)).unwrap(), limit).unwrap();
        assert!(r.ticks_crossed >= 1 && p != before);
        p.undo_swap(undo);
        assert_eq!(p, before);
        assert_eq!(p.swap(true, I256::ZERO, limit).unwrap_err(), PoolError("AS"));
        assert_eq!(p.swap(false, I256::ONE, limit).unwrap_err(), PoolError("SPL"));
        assert_eq!(p, before);
        // A swap that fails after crossing ticks (here a tick whose net liquidity the pool cannot give up) puts
        // back every tick it crossed, and moves nothing else.
        let bad = TickInfo { liquidity_gross: 1, liquidity_net: i128::MAX, ..TickInfo::default() };
        p.load_tick(-1_000, bad).unwrap();
        let before = p.clone();
        let big = I256::try_from(10u128.pow(24)).unwrap();
        assert_eq!(p.swap(true, big, limit).unwrap_err(), PoolError("LS"));
        assert_eq!(p, before);
        assert_eq!(p.swap_with_undo(true, big, limit).unwrap_err(), PoolError("LS"));
        assert_eq!(p, before);
    }
}
