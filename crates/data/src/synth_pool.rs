//! Seeded synthetic Uniswap v3 pools: a synthetic price path (the same generator as the synthetic markets) turned
//! into order flow against a liquidity profile. Each step is a list of swaps: round trips drawn from a volume
//! distribution (they earn LPs fees and barely move the price) and one swap with a price limit that carries the
//! pool to the step's close. The swaps are requests, not results: a backtest replays them through its own pool,
//! where its positions change what each swap does, exactly as on chain.

use crate::synth::{Rng, SynthSpec};
use crate::{Error, Result};
use alloy_primitives::{Address, I256, U256};
use serde::{Deserialize, Serialize};
use sextant_protocols::uniswap_v3::Pool;
use sextant_protocols::uniswap_v3::liquidity::liquidity_for_amounts;
use sextant_protocols::uniswap_v3::math::{
    MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK, sqrt_ratio_at_tick, tick_at_sqrt_ratio,
};

/// The owner of the synthetic pool's background liquidity.
pub const BACKGROUND_LP: Address = Address::repeat_byte(0xee);

/// One liquidity band of the background: a share of the pool's value in a range of ± `width_pct` around the start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Half-width of the range in percent of the price (None: full range).
    pub width_pct: Option<f64>,
    /// Share of the pool's value in this band.
    pub share: f64,
}

/// Everything that defines a synthetic pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolSynthSpec {
    /// The price path (token1 per token0 in human units) and its timing.
    pub market: SynthSpec,
    /// Decimals of token0 and token1.
    pub decimals: (u8, u8),
    /// Fee (pips) and tick spacing.
    pub fee: u32,
    /// Tick spacing.
    pub tick_spacing: i32,
    /// Value locked at the start, in token1 units.
    pub tvl: f64,
    /// Swap volume per day, in token1 units.
    pub daily_volume: f64,
    /// Background liquidity bands.
    pub bands: Vec<Band>,
}

impl Default for PoolSynthSpec {
    /// A WETH/USDC-like 0.05 % pool: $20M locked, $30M traded a day, liquidity concentrated near the price.
    fn default() -> Self {
        PoolSynthSpec {
            market: SynthSpec { bars: 24 * 90, ..SynthSpec::default() },
            decimals: (18, 6),
            fee: 500,
            tick_spacing: 10,
            tvl: 20e6,
            daily_volume: 30e6,
            bands: vec![
                Band { width_pct: None, share: 0.2 },
                Band { width_pct: Some(30.0), share: 0.3 },
                Band { width_pct: Some(10.0), share: 0.3 },
                Band { width_pct: Some(3.0), share: 0.2 },
            ],
        }
    }
}

/// A swap request: exact input (positive) or output (negative) up to a price limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapRequest {
    /// Selling token0.
    pub zero_for_one: bool,
    /// Amount, as `UniswapV3Pool.swap` takes it.
    pub amount_specified: I256,
    /// Price limit (sqrtPriceX96).
    pub sqrt_price_limit_x96: U256,
}

/// One step of order flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStep {
    /// Time of the step, unix milliseconds UTC.
    pub timestamp_ms: i64,
    /// When set, the background's in-range liquidity is brought to this before the swaps (minute files record the
    /// pool's liquidity; a synthetic pool keeps its bands and leaves this unset).
    pub background_liquidity: Option<u128>,
    /// Swaps, in order (they earn LPs fees; a failing one is skipped, as a reverted transaction would be).
    pub swaps: Vec<SwapRequest>,
    /// token0 and token1 sold into the pool in the step when only totals are known (minute files): they are sold
    /// around the move to the close (first toward it, stopping there; then the other token in full; then the rest
    /// toward the close again), so the step's volume is at least the recorded one whatever the backtest's positions
    /// do (more when the recorded volume does not reach the close and the last swap carries the price there).
    pub volume_in: Option<(U256, U256)>,
    /// Before the swaps, the background's banded liquidity moves to ranges of the same widths centred on the price
    /// (other LPs following the market; a synthetic pool does it once a day).
    #[serde(default)]
    pub recentre: bool,
    /// The price the step closes at: after the swaps, one more swap with this as its limit carries the pool there
    /// (its direction depends on where the swaps left the price, which the backtest's own positions influence).
    pub close_sqrt_price_x96: Option<U256>,
}

/// What one replayed step did to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepTrace {
    /// Price before the step.
    pub open_sqrt_price_x96: U256,
    /// Lowest price reached.
    pub low_sqrt_price_x96: U256,
    /// Highest price reached.
    pub high_sqrt_price_x96: U256,
    /// token0 paid into the pool by swaps (base units).
    pub in0: U256,
    /// token1 paid into the pool by swaps.
    pub in1: U256,
    /// token0 paid out by the pool.
    pub out0: U256,
    /// token1 paid out by the pool.
    pub out1: U256,
    /// Swaps that went through.
    pub swaps: u32,
    /// Swaps refused by the pool (no liquidity left, a bad limit).
    pub failed: u32,
    /// Initialized ticks crossed.
    pub ticks_crossed: u32,
}

/// The lowest and highest price limits a swap may name.
pub fn limit_for(zero_for_one: bool) -> U256 {
    if zero_for_one { MIN_SQRT_RATIO + U256::from(1u8) } else { MAX_SQRT_RATIO - U256::from(1u8) }
}

/// Replays one step on `pool`: the background liquidity (when the step sets it), the swaps, then the move to the
/// close. Swaps the pool refuses are skipped and counted.
pub fn replay_step(pool: &mut Pool, step: &PoolStep) -> StepTrace {
    let start = pool.sqrt_price_x96;
    let mut t = StepTrace {
        open_sqrt_price_x96: start,
        low_sqrt_price_x96: start,
        high_sqrt_price_x96: start,
        ..StepTrace::default()
    };
    if let Some(target) = step.background_liquidity {
        set_background(pool, target);
    }
    if step.recentre {
        recentre_background(pool);
    }
    let run = |pool: &mut Pool, t: &mut StepTrace, zero_for_one: bool, amount: I256, limit: U256| match pool.swap(
        zero_for_one,
        amount,
        limit,
    ) {
        Ok(r) => {
            t.swaps += 1;
            t.ticks_crossed += r.ticks_crossed;
            for (delta, paid_in, paid_out) in
                [(r.amount0, &mut t.in0, &mut t.out0), (r.amount1, &mut t.in1, &mut t.out1)]
            {
                if delta.is_positive() {
                    *paid_in += delta.into_raw();
                } else {
                    *paid_out += (-delta).into_raw();
                }
            }
            t.low_sqrt_price_x96 = t.low_sqrt_price_x96.min(pool.sqrt_price_x96);
            t.high_sqrt_price_x96 = t.high_sqrt_price_x96.max(pool.sqrt_price_x96);
        }
        Err(_) => t.failed += 1,
    };
    for s in &step.swaps {
        run(pool, &mut t, s.zero_for_one, s.amount_specified, s.sqrt_price_limit_x96);
    }
    if let (Some((in0, in1)), Some(target)) = (step.volume_in, step.close_sqrt_price_x96) {
        let toward = target < pool.sqrt_price_x96;
        let (mut left, other) = if toward { (in0, in1) } else { (in1, in0) };
        let paid = |t: &StepTrace| if toward { t.in0 } else { t.in1 };
        for (zero_for_one, amount, limit) in [(toward, true, true), (!toward, false, false), (toward, true, true)] {
            let amount = if amount { left } else { other };
            let limit = if limit { target } else { limit_for(zero_for_one) };
            let before = paid(&t);
            if let Ok(a) = I256::try_from(amount)
                && a > I256::ZERO
                && (if zero_for_one { limit < pool.sqrt_price_x96 } else { limit > pool.sqrt_price_x96 })
            {
                run(pool, &mut t, zero_for_one, a, limit);
            }
            if zero_for_one == toward {
                left = left.saturating_sub(paid(&t) - before);
            }
        }
    }
    if let Some(target) = step.close_sqrt_price_x96
        && target != pool.sqrt_price_x96
    {
        // An exact input larger than any pool holds, stopped by the close as its limit.
        let big = I256::try_from(10u128.pow(36)).unwrap_or(I256::MAX);
        run(pool, &mut t, target < pool.sqrt_price_x96, big, target);
    }
    t
}

/// Moves each banded background position to a range of the same width centred on the current tick, keeping its
/// value at the current price (the background is not a book the backtest keeps, so its tokens are not tracked).
fn recentre_background(pool: &mut Pool) {
    let s = pool.tick_spacing;
    let full = (MIN_TICK / s * s, MAX_TICK / s * s);
    let mut bands: Vec<(i32, i32, u128)> = pool
        .positions
        .iter()
        .filter(|((owner, lo, hi), p)| *owner == BACKGROUND_LP && (*lo, *hi) != full && p.liquidity > 0)
        .map(|((_, lo, hi), p)| (*lo, *hi, p.liquidity))
        .collect();
    bands.sort_unstable();
    let sp = f64::from(pool.sqrt_price_x96) / 2f64.powi(96);
    // Value of liquidity `l` over [a, b] at the current price, in token1 (raw units), and its value per unit.
    let per_unit = |a: f64, b: f64| {
        let p = sp.clamp(a, b);
        (1.0 / p - 1.0 / b) * sp * sp + (p - a)
    };
    let sqrt_at = |t: i32| sqrt_ratio_at_tick(t).map(|x| f64::from(x) / 2f64.powi(96));
    for (lo, hi, l) in bands {
        let (Some(a), Some(b)) = (sqrt_at(lo), sqrt_at(hi)) else { continue };
        let value = l as f64 * per_unit(a, b);
        // The same width (a multiple of the spacing), its lower edge on the spacing, centred as near as it goes.
        let width = hi - lo;
        let centre = pool.tick.div_euclid(s) * s;
        let nlo = (centre - (width / 2).div_euclid(s) * s).max(full.0);
        let nhi = (nlo + width).min(full.1);
        if (nlo, nhi) == (lo, hi) {
            continue;
        }
        let (Some(na), Some(nb)) = (sqrt_at(nlo), sqrt_at(nhi)) else { continue };
        let new_l = (value / per_unit(na, nb)) as u128;
        if pool.burn(BACKGROUND_LP, lo, hi, l).is_ok() {
            let _ = pool.collect(BACKGROUND_LP, lo, hi, u128::MAX, u128::MAX);
            pool.positions.remove(&(BACKGROUND_LP, lo, hi));
            if new_l > 0 {
                let _ = pool.mint(BACKGROUND_LP, nlo, nhi, new_l);
            }
        }
    }
}

/// Brings the background's full-range liquidity to `target` (minting or burning the difference).
fn set_background(pool: &mut Pool, target: u128) {
    let s = pool.tick_spacing;
    let (lo, hi) = (MIN_TICK / s * s, MAX_TICK / s * s);
    let now = pool.positions.get(&(BACKGROUND_LP, lo, hi)).map_or(0, |p| p.liquidity);
    // Failures (liquidity per tick above the maximum) leave the background as it was.
    if target > now {
        let _ = pool.mint(BACKGROUND_LP, lo, hi, target - now);
    } else if target < now {
        let _ = pool.burn(BACKGROUND_LP, lo, hi, now - target);
    }
}

fn sqrt_price_of(price_raw: f64) -> Option<U256> {
    let s = price_raw.sqrt() * 2f64.powi(96);
    if !(s.is_finite() && s > 0.0) {
        return None;
    }
    let v = U256::try_from(s.floor()).ok()?;
    (v > MIN_SQRT_RATIO && v < MAX_SQRT_RATIO).then_some(v)
}

impl PoolSynthSpec {
    /// Generates the pool (initialized at the first open, with the background liquidity minted) and its order flow.
    ///
    /// # Errors
    /// Invalid market parameters, bands whose shares do not sum to 1, or non-positive sizes.
    pub fn generate(&self) -> Result<(Pool, Vec<PoolStep>)> {
        self.generate_from(&self.market.generate()?)
    }

    /// As [`PoolSynthSpec::generate`], along `candles` instead of the spec's own market (a stress path of it): the
    /// pool starts at the first bar's open and its flow follows the bars' closes.
    ///
    /// # Errors
    /// No bars, bands whose shares do not sum to 1, or non-positive sizes.
    pub fn generate_from(&self, candles: &sextant_market::CandleSeries) -> Result<(Pool, Vec<PoolStep>)> {
        let start_price = candles.candles.first().map(|c| c.open).ok_or_else(|| Error::Invalid("no bars".into()))?;
        let share: f64 = self.bands.iter().map(|b| b.share).sum();
        if self.bands.is_empty() || (share - 1.0).abs() > 1e-9 || self.bands.iter().any(|b| b.share <= 0.0) {
            return Err(Error::Invalid(format!("pool bands' shares must be positive and sum to 1, got {share}")));
        }
        if !(self.tvl > 0.0 && self.daily_volume >= 0.0 && self.tick_spacing > 0) {
            return Err(Error::Invalid("pool tvl must be positive, volume non-negative, tick spacing positive".into()));
        }
        let scale = 10f64.powi(i32::from(self.decimals.1) - i32::from(self.decimals.0));
        let raw = |human: f64| human * scale;
        let start = sqrt_price_of(raw(start_price))
            .ok_or_else(|| Error::Invalid(format!("start price {start_price} is out of range")))?;
        let invalid = |e: sextant_protocols::uniswap_v3::PoolError| Error::Invalid(format!("synthetic pool: {e}"));
        let mut pool = Pool::new(self.fee, self.tick_spacing, start).map_err(invalid)?;
        let spacing = self.tick_spacing;
        let align = |t: i32| {
            (t.div_euclid(spacing) * spacing).clamp(MIN_TICK / spacing * spacing, MAX_TICK / spacing * spacing)
        };
        for band in &self.bands {
            let (lo, hi) = match band.width_pct {
                None => (MIN_TICK / spacing * spacing, MAX_TICK / spacing * spacing),
                Some(w) => {
                    let p = start_price;
                    let tick = |h: f64| sqrt_price_of(raw(h)).and_then(tick_at_sqrt_ratio);
                    let lo = tick(p * (1.0 - w / 100.0)).ok_or_else(|| Error::Invalid("band out of range".into()))?;
                    let hi = tick(p * (1.0 + w / 100.0)).ok_or_else(|| Error::Invalid("band out of range".into()))?;
                    (align(lo), align(hi) + spacing)
                }
            };
            // Half the band's value in each token, in base units; the liquidity that buys is what is minted.
            let value = self.tvl * band.share / 2.0;
            let amount1 = U256::from((value * 10f64.powi(i32::from(self.decimals.1))) as u128);
            let amount0 = U256::from((value / start_price * 10f64.powi(i32::from(self.decimals.0))) as u128);
            let (sa, sb) = (sqrt_ratio_at_tick(lo).unwrap_or(start), sqrt_ratio_at_tick(hi).unwrap_or(start));
            let l = liquidity_for_amounts(pool.sqrt_price_x96, sa, sb, amount0, amount1).unwrap_or(0);
            if l > 0 {
                pool.mint(BACKGROUND_LP, lo, hi, l).map_err(invalid)?;
            }
        }
        let initial = pool.clone();
        let mut rng = Rng::new(self.market.seed ^ 0x5107_f00d);
        let per_step = self.daily_volume * self.market.interval.millis() as f64 / 86_400_000.0;
        let mut steps = Vec::with_capacity(candles.len());
        let per_day = (86_400_000 / self.market.interval.millis().max(1)).max(1) as usize;
        for (i, c) in candles.candles.iter().enumerate() {
            let mut swaps = Vec::new();
            // Round trips: a buy and a sell of similar size, log-normally distributed around the step's volume.
            let trips = 1 + (rng.uniform() * 4.0) as usize;
            for _ in 0..trips {
                let size = per_step / 2.0 / trips as f64 * (0.5 * rng.normal()).exp();
                let amount1 =
                    I256::try_from((size * 10f64.powi(i32::from(self.decimals.1))) as u128).unwrap_or(I256::ZERO);
                let amount0 = I256::try_from((size / c.open * 10f64.powi(i32::from(self.decimals.0))) as u128)
                    .unwrap_or(I256::ZERO);
                if amount0.is_zero() || amount1.is_zero() {
                    continue;
                }
                let (first, second) = if rng.uniform() < 0.5 {
                    ((true, amount0), (false, amount1))
                } else {
                    ((false, amount1), (true, amount0))
                };
                for (zero_for_one, amount) in [first, second] {
                    swaps.push(SwapRequest {
                        zero_for_one,
                        amount_specified: amount,
                        sqrt_price_limit_x96: limit_for(zero_for_one),
                    });
                }
            }
            let step = PoolStep {
                timestamp_ms: c.timestamp_ms,
                background_liquidity: None,
                recentre: i > 0 && i % per_day == 0,
                swaps,
                volume_in: None,
                close_sqrt_price_x96: sqrt_price_of(raw(c.close)),
            };
            replay_step(&mut pool, &step);
            steps.push(step);
        }
        Ok((initial, steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> PoolSynthSpec {
        PoolSynthSpec { market: SynthSpec { bars: 200, ..SynthSpec::default() }, ..PoolSynthSpec::default() }
    }

    #[test]
    fn a_synthetic_pool_follows_its_price_path_and_earns_fees() {
        let spec = small();
        let (mut pool, steps) = spec.generate().unwrap();
        assert_eq!(steps.len(), 200);
        let candles = spec.market.generate().unwrap();
        let scale = 1e-12; // USDC (6) per WETH (18)
        for (step, c) in steps.iter().zip(&candles.candles) {
            let t = replay_step(&mut pool, step);
            assert_eq!(t.failed, 0);
            assert!(t.low_sqrt_price_x96 <= t.high_sqrt_price_x96 && t.swaps as usize >= step.swaps.len());
            let p = sextant_protocols::uniswap_v3::price_token0_in_token1(pool.sqrt_price_x96, 18, 6);
            assert!((p - c.close).abs() / c.close < 1e-9, "pool price {p} vs close {} ({scale})", c.close);
        }
        assert!(!pool.fee_growth_global0_x128.is_zero() && !pool.fee_growth_global1_x128.is_zero());
        // Seeded: the same spec gives the same flow.
        assert_eq!(spec.generate().unwrap().1, steps);
    }

    #[test]
    fn re_centred_bands_keep_their_width() {
        let spec =
            PoolSynthSpec { market: SynthSpec { bars: 24 * 20, ..SynthSpec::default() }, ..PoolSynthSpec::default() };
        let (mut pool, steps) = spec.generate().unwrap();
        let widths = |p: &Pool| {
            let mut w: Vec<i32> = p
                .positions
                .iter()
                .filter(|(k, v)| k.0 == BACKGROUND_LP && v.liquidity > 0)
                .map(|(k, _)| k.2 - k.1)
                .collect();
            w.sort_unstable();
            w
        };
        let before = widths(&pool);
        assert_eq!(before.len(), 4);
        for step in &steps {
            replay_step(&mut pool, step);
        }
        assert_eq!(widths(&pool), before, "20 daily re-centrings must keep every band's width");
    }

    #[test]
    fn bad_bands_are_refused() {
        let mut spec = small();
        spec.bands[0].share = 0.5;
        assert!(spec.generate().unwrap_err().to_string().contains("sum to 1"));
    }
}
